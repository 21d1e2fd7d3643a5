"""A cheap synthesis step for ``hwgen explore`` tests: the build's own estimates in synth_report.json form.

:func:`estimated_synth` has the signature of :func:`hwgen.explore.tasks.synthesise`
and writes a ``synth_report.json`` of the same keys, with LUT4 / block RAM from
the build's estimates and an Fmax that depends on the seed and the size, so
different points give different, reproducible numbers in milliseconds. Every
call appends ``start NAME`` and ``done NAME`` lines to ``SWEEP/synth_calls.log``
(``O_APPEND``: whole lines from concurrent worker processes), which the tests
read to count syntheses.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from hwgen.hw.targets import get_target

CALL_LOG = "synth_calls.log"


def _log(point_dir: Path, what: str) -> None:
    fd = os.open(point_dir.parents[1] / CALL_LOG, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.write(fd, f"{what} {point_dir.name}\n".encode())
    finally:
        os.close(fd)


def calls(sweep_dir: Path) -> list[str]:
    """The lines of the sweep's call log."""
    path = Path(sweep_dir) / CALL_LOG
    return path.read_text().splitlines() if path.is_file() else []


def estimated_synth(point_dir: Path, target: str, freq_mhz: float, seed: int, *, delay: float = 0.0,
                    fail_seed: int | None = None) -> dict:
    """A synth_report dict from the build's report.json (and written as synth_report.json); sleeps ``delay``
    seconds; raises RuntimeError for ``seed == fail_seed`` (a failing tool)."""
    point_dir = Path(point_dir)
    _log(point_dir, "start")
    time.sleep(delay)
    if seed == fail_seed:
        raise RuntimeError(f"yosys crashed on seed {seed}")
    build = json.loads((point_dir / "report.json").read_text())
    t = get_target(target)
    lut4 = build["lut4_estimate"] + 10 * seed
    fmax = round(150.0 - lut4 / 100 + seed, 2)
    cycles = build["cycles_per_frame"]
    used = {"LUT4": (lut4, t.lut4, "TRELLIS_COMB"), "FF": (lut4 // 2, t.ff, "TRELLIS_FF"),
            "block RAM": (build["bram_blocks_estimate"], t.bram_blocks, "DP16KD"), "DSP": (0, t.dsp, "MULT18X18D"),
            "I/O": (48, t.io, "TRELLIS_IO")}
    report = {
        "top": "hwgen_top", "target": {"name": t.name, "family": t.family.value, "part": t.part, "package": t.package},
        "freq_mhz": freq_mhz, "seed": seed,
        "resources": {k: {"used": u, "available": a, "source": s} for k, (u, a, s) in used.items()},
        "cells": {"LUT4": lut4}, "clocks": [{"name": "clk", "net": "clk", "fmax_mhz": fmax,
                                             "constraint_mhz": freq_mhz, "met": fmax >= freq_mhz}],
        "fmax_mhz": fmax, "timing_met": fmax >= freq_mhz, "critical_paths": [],
        "stages": [{"name": "synth", "tool": "estimate", "seconds": delay}], "bitstream": None,
        "cycles_per_frame": cycles, "frames_per_second": round(fmax * 1e6 / cycles, 1),
    }
    (point_dir / "synth_report.json").write_text(json.dumps(report, indent=2))
    _log(point_dir, "done")
    return report


def main(argv: list[str]) -> int:
    """``python explore_fakes.py SWEEP_DIR MODEL DELAY``: a 3 x 2 --pe 1,2,4 sweep on 2 local workers with
    :func:`estimated_synth`; exit 130 when interrupted (as ``hwgen explore``)."""
    import functools

    from hwgen.explore.cluster import dask_client
    from hwgen.explore.sweep import run_sweep

    import signal

    # Ctrl-C raises KeyboardInterrupt, as in a terminal, even when the test runs as a background job (a shell
    # starts those with SIGINT ignored, and an ignored signal is inherited: Python would then never see it)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    sweep, model, delay = Path(argv[0]), argv[1], float(argv[2])
    with dask_client(workers=2) as client:
        outcome = run_sweep(tiny_spec(model), sweep, client, synthesise_fn=functools.partial(estimated_synth,
                                                                                              delay=delay))
    return 130 if outcome.interrupted else 0


def tiny_spec(model: str | Path):
    """The tests' sweep: --pe 1,2,4 x seeds 1,2 at 100 MHz on ecp5-25k."""
    from hwgen.explore.spec import Folding, FoldingKind, SweepSpec

    return SweepSpec(model=str(model), target="ecp5-25k", foldings=tuple(Folding(FoldingKind.PE, v) for v in (1, 2, 4)),
                     seeds=(1, 2))


if __name__ == "__main__":
    import sys

    raise SystemExit(main(sys.argv[1:]))
