"""cocotb bench: a binary layer's MVTU (threshold mode, or the last layer's accumulator mode) vs the golden model.

Case folder from ``$HWGEN_SIM_CASE`` (see :mod:`cases`); input: the window
vectors of random bit maps (with padded taps), random gaps; output under
random back-pressure, compared with ``apply_threshold(conv_accumulate(...))``
or ``conv_accumulate(...)`` of the layer.
"""

import cocotb
from engine_bench import run_case


@cocotb.test()
async def mvtu_matches_golden(dut):
    await run_case(dut)
