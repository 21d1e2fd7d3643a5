"""The hardware generator (DESIGN.md section 3, step 2 of the pipeline): integer IR + folding -> Verilog.

Called ``hw`` so that it never reads as the ``build/`` output folder users write; the command is
still ``hwgen build``.

* :mod:`hwgen.hw.folding`: PE x SIMD per engine, chosen by hand, from ``--pe``/``--simd`` or by ``--fps``;
  :mod:`hwgen.hw.fit`: the fastest folding that fits a target (``--fit``).
* :mod:`hwgen.hw.stages`: one stage kind per IR node type (convolution, pool, residual join): its engine,
  how it is fed, its memory, estimates, report columns and ROM files.
* :mod:`hwgen.hw.cost`: the LUT and block RAM formulas of the folded engines and of memories, before any synthesis.
* :mod:`hwgen.hw.families`: one ``FamilySpec`` per FPGA family (block RAM shapes, memory map, costs, tools).
* :mod:`hwgen.hw.targets`: the devices a build budgets for and ``hwgen synth`` places on.
* :mod:`hwgen.hw.engines`: the Amaranth components (MVTU, MAC, SWU, pool, join, fork, converter, scores).
* :mod:`hwgen.hw.graph`: forks, each residual join's shortcut edge and its skip buffer's depth.
* :mod:`hwgen.hw.accelerator`: the top level, the stages connected by streams with AXI4-Stream at both ends.
* :mod:`hwgen.hw.report`: the build report (JSON and markdown).
* :mod:`hwgen.hw.builder`: compile + fold + generate into one build folder; :mod:`hwgen.hw.command`: ``hwgen build``.
"""
