"""cocotb bench: the first layer's MAC unit (uint8 pixels x k-bit weights) vs the golden model.

Case folder from ``$HWGEN_SIM_CASE`` (see :mod:`cases`); input: the window
vectors of random uint8 images (with padded taps), random gaps; output under
random back-pressure, compared with ``apply_threshold(conv_accumulate(...))``.
"""

import cocotb
from engine_bench import run_case


@cocotb.test()
async def mac_matches_golden(dut):
    await run_case(dut)
