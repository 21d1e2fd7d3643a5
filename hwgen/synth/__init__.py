"""``hwgen synth``: the open-toolchain stage (Yosys, nextpnr, ecppack / icepack).

* :mod:`~hwgen.synth.scripts`: the toolchain scripts and Makefile rendered from ``templates/``.
* :mod:`~hwgen.synth.tools`: which executables run the stages (YoWASP by default).
* :mod:`~hwgen.synth.stage`: one stage as a logged subprocess with progress.
* :mod:`~hwgen.synth.parse`: readers for Yosys statistics, nextpnr's report and log.
* :mod:`~hwgen.synth.report`: resources vs the device, Fmax, critical paths, frames/s.
* :mod:`~hwgen.synth.runner`: :func:`run_synth`, the three stages and their failures.
* :mod:`~hwgen.synth.command`: the ``hwgen synth`` command line.
"""
