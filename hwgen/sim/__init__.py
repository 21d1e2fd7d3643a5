"""Bit-exact RTL simulation (DESIGN.md section 4, step 3): the generated Verilog against the golden model.

* :mod:`hwgen.sim.formats`: the stream formats as numpy conversions (pixels in, score words out, engine beats).
* :mod:`hwgen.sim.streams`: cocotb valid/ready driver and monitor with seeded gaps and back-pressure.
* :mod:`hwgen.sim.scoreboard`: comparisons with :mod:`hwgen.compile.golden` that explain the first mismatch.
* :mod:`hwgen.sim.memfiles`: memory contents cut out of ``top.v`` into ``$readmemh`` files loaded at run time,
  so one compiled model serves every weight set of a design; the files' digests checked before each run.
* :mod:`hwgen.sim.runner`: ``cocotb_tools.runner`` builds cached by content hash; bench runs.
* :mod:`hwgen.sim.top_bench`: the whole-accelerator cocotb bench.
* :mod:`hwgen.sim.bulk` + ``harness.cpp``: the C++ Verilator harness for whole test sets.
* :mod:`hwgen.sim.trace`: what a run recorded and the timing derived from it.
* :mod:`hwgen.sim.buildfolder`: reading a ``hwgen build`` folder; :mod:`hwgen.sim.session`: one simulation.
* :mod:`hwgen.sim.command`: ``hwgen sim``.

The engine benches (cocotb test modules) live in the repository's ``sim/`` folder.
"""
