"""cocotb bench: the residual join unit vs ``join_bits`` of the golden model.

Case folder from ``$HWGEN_SIM_CASE`` (see :mod:`cases`); two input streams,
each with its own random gaps: ``main`` (random accumulators within the
case's ``acc_range``, PE signed lanes per beat) and ``shortcut`` (random
bits, PE per beat); output ``o`` under random back-pressure.
"""

import cocotb
from engine_bench import run_case


@cocotb.test()
async def join_matches_golden(dut):
    await run_case(dut)
