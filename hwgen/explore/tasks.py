"""What a Dask worker runs for ``hwgen explore``: build one folding, synthesise one point.

Both tasks write their result into their folder as JSON (``build.json``,
``point.json``) through a temporary file and a rename, as their last step: a
folder holds a record only when the task finished, so a rerun (or another
worker, after one died) redoes exactly the unfinished work. Failures are
results too: a build the folding solver refuses, or a synthesis whose tools
fail, is recorded with its message, and the sweep goes on.

A point's folder is a copy of its folding's build folder (``top.v``,
``report.json``, ``net.hwir``, ``mem/``...) plus what synthesis writes there
(``synth_report.json``, logs, bitstream) and its ``report.html``.

The synthesis step is a parameter (``synthesise``), a function
``(point_dir, target, freq_mhz, seed) -> synth_report dict`` (the keys of
``synth_report.json``, :meth:`hwgen.synth.report.SynthResult.to_json`);
:func:`synthesise` (Yosys + nextpnr + pack) is the default. Tests may pass a
cheaper function that writes a report of the same form.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import time
from collections.abc import Callable
from pathlib import Path

from hwgen.errors import HwgenError
from hwgen.explore.spec import Point

__all__ = ["BUILD_RECORD", "FIELDS", "POINT_RECORD", "SynthesiseFn", "build_folding", "read_record", "run_point",
           "synth_figures", "synthesise"]

BUILD_RECORD = "build.json"
POINT_RECORD = "point.json"

SynthesiseFn = Callable[[Path, str, float, int], dict]

#: The columns of a point's result (explore.json's points, explore.csv), in order.
FIELDS = ("point", "status", "folding", "seed", "freq_mhz", "build_clock_mhz", "cycles_per_frame", "lut4", "ff",
          "ebr", "dsp", "fmax_mhz", "timing_met", "frames_per_second", "fps_per_klut4", "build_s", "synth_s",
          "pnr_s", "pack_s", "point_s", "error", "worker", "key", "point_dir")


def synthesise(point_dir: Path, target: str, freq_mhz: float, seed: int) -> dict:
    """Yosys + nextpnr + pack on ``point_dir`` (:func:`hwgen.synth.runner.run_synth`, a missed clock is a
    result, not an error); the tools' progress goes to ``point_dir/synth_progress.log``."""
    from hwgen.synth.runner import run_synth

    with open(Path(point_dir) / "synth_progress.log", "w") as progress:
        result = run_synth(point_dir, target, freq_mhz, seed, allow_timing_fail=True, stream=progress)
    return result.to_json()


def synth_figures(report: dict) -> dict:
    """A synth_report dict's figures: lut4, ff, ebr, dsp, fmax_mhz, timing_met, frames_per_second,
    fps_per_klut4 (frames/s per 1,000 LUT4), cycles_per_frame and the synth / pnr / pack wall times."""
    used = {name: r["used"] for name, r in report["resources"].items()}
    stages = {s["name"]: s["seconds"] for s in report["stages"]}
    fps = report["frames_per_second"]
    return {"lut4": used["LUT4"], "ff": used["FF"], "ebr": used["block RAM"], "dsp": used["DSP"],
            "fmax_mhz": report["fmax_mhz"], "timing_met": report["timing_met"], "frames_per_second": fps,
            "fps_per_klut4": round(fps / used["LUT4"] * 1000, 1) if fps and used["LUT4"] else None,
            "cycles_per_frame": report["cycles_per_frame"],
            **{f"{name}_s": stages.get(name) for name in ("synth", "pnr", "pack")}}


def read_record(folder: Path | str, name: str) -> dict | None:
    """The JSON record ``folder/name``, or None when absent or unreadable (an unfinished task)."""
    try:
        data = json.loads((Path(folder) / name).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _write_record(folder: Path, name: str, record: dict) -> None:
    tmp = folder / f".{name}.tmp"
    tmp.write_text(json.dumps(record, indent=1) + "\n")
    tmp.replace(folder / name)


def _worker_name() -> str:
    try:
        from distributed import get_worker

        return str(get_worker().address)
    except (ImportError, ValueError):
        return f"{socket.gethostname()}:{os.getpid()}"


def build_folding(model: str, build_dir: str, point: Point, target: str, key: str) -> dict:
    """Build ``point``'s folding into ``build_dir`` unless it holds a build under ``key``; the build record
    (``status`` ok with ``build_dir``, ``cycles_per_frame``, ``seconds``; or failed with ``error``)."""
    from hwgen.hw.builder import build

    folder = Path(build_dir)
    done = read_record(folder, BUILD_RECORD)
    if done and done.get("key") == key and done.get("status") == "ok":
        return done
    options = point.folding.build_options(target=target, clock_mhz=point.build_clock_mhz)
    if folder.exists():
        shutil.rmtree(folder)
    try:
        result = build(Path(model), folder, options, log=lambda *_: None)
    except HwgenError as exc:
        return {"key": key, "status": "failed", "error": f"build {point.folding.option}: {exc}"}
    record = {"key": key, "status": "ok", "build_dir": str(folder), "folding": point.folding.option,
              "cycles_per_frame": result.report["cycles_per_frame"], "seconds": round(result.seconds["total"], 2)}
    _write_record(folder, BUILD_RECORD, record)
    return record


def run_point(build_record: dict, point_dir: str, point: Point, target: str, key: str,
              synthesise_fn: SynthesiseFn = synthesise) -> dict:
    """Synthesise ``point`` in ``point_dir`` (a fresh copy of its build folder) with ``synthesise_fn``,
    write its report.html and its record; the record (see :data:`FIELDS`)."""
    from hwgen.report.build_page import write_build_report

    started = time.perf_counter()
    folder = Path(point_dir)
    row = dict.fromkeys(FIELDS)
    row.update(point=point.name, folding=point.folding.option, seed=point.seed, freq_mhz=point.freq_mhz,
               build_clock_mhz=point.build_clock_mhz, key=key, point_dir=str(folder), worker=_worker_name(),
               build_s=build_record.get("seconds"))
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    if build_record["status"] != "ok":
        row.update(status="failed", error=build_record["error"])
    else:
        shutil.copytree(build_record["build_dir"], folder, dirs_exist_ok=True,
                        ignore=shutil.ignore_patterns(BUILD_RECORD, "report.html"))
        try:
            report = synthesise_fn(folder, target, point.freq_mhz, point.seed)
            row.update(status="ok", **synth_figures(report))
            write_build_report(folder)
        except HwgenError as exc:
            row.update(status="failed", error=str(exc))
        except Exception as exc:  # noqa: BLE001 - a point's failure is its result; the sweep goes on
            row.update(status="failed", error=f"{type(exc).__name__}: {exc}")
    row["point_s"] = round(time.perf_counter() - started, 2)
    _write_record(folder, POINT_RECORD, row)
    return row
