"""cocotb bench: the sliding-window unit's window vectors (data and tap masks) for random bit maps.

Case folder from ``$HWGEN_SIM_CASE`` (see :mod:`cases`); frames back to back
with random gaps and back-pressure; every window beat compared with
:func:`hwgen.sim.formats.window_vectors` (the order the golden model's
convolution sums in).
"""

import cocotb
from engine_bench import run_case


@cocotb.test()
async def swu_matches_golden(dut):
    await run_case(dut)
