"""The hardware generator (DESIGN.md section 3, step 2 of the pipeline): integer IR + folding -> Verilog.

Called ``hw`` so that it never reads as the ``build/`` output folder users write; the command is
still ``hwgen build``.

* :mod:`hwgen.hw.folding`: PE x SIMD per engine, chosen by hand, from ``--pe``/``--simd`` or by ``--fps``.
* :mod:`hwgen.hw.cost`: cycles, memory and LUT estimates per engine, before any synthesis.
* :mod:`hwgen.hw.families`: one ``FamilySpec`` per FPGA family (block RAM shapes, memory map, costs, tools).
* :mod:`hwgen.hw.targets`: the devices a build budgets for and ``hwgen synth`` places on.
* :mod:`hwgen.hw.engines`: one Amaranth component per layer kind (MVTU, MAC, SWU, pool, converter, scores).
* :mod:`hwgen.hw.accelerator`: the top level, the engines chained by streams with AXI4-Stream at both ends.
* :mod:`hwgen.hw.report`: the build report (JSON and markdown).
* :mod:`hwgen.hw.builder`: compile + fold + generate into one build folder; :mod:`hwgen.hw.command`: ``hwgen build``.
"""
