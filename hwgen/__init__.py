"""hwgen: an open FPGA accelerator generator for binary neural networks.

The pipeline reads top to bottom (see docs/ and DESIGN.md):
``train`` -> ``compile`` -> ``build`` -> ``sim`` -> ``synth``.
"""

__version__ = "0.1.0"
