"""cocotb bench: the max-pool unit (per-channel OR / AND) vs ``max_pool_bits`` of the golden model.

Case folder from ``$HWGEN_SIM_CASE`` (see :mod:`cases`); random bit maps with
random gaps and back-pressure.
"""

import cocotb
from engine_bench import run_case


@cocotb.test()
async def pool_matches_golden(dut):
    await run_case(dut)
