"""The JSON files of a build folder that its report page is made from.

* ``report.json`` (``hwgen build``): required;
* ``synth_report.json`` (``hwgen synth``): resources, Fmax, critical paths;
* ``sim_report.json`` (``hwgen sim``, written by :func:`hwgen.report.hooks.refresh_report`):
  bit-exactness and measured cycles.

A synthesis or simulation report older than the folder's ``top.v`` belongs to
an earlier build: it is read but marked stale, and the page says so.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from hwgen.errors import HwgenError

__all__ = ["BUILD_REPORT", "SIM_REPORT", "SYNTH_REPORT", "BuildReports", "ReportError", "read_build_reports",
           "read_json"]

BUILD_REPORT = "report.json"
SYNTH_REPORT = "synth_report.json"
SIM_REPORT = "sim_report.json"


class ReportError(HwgenError):
    """A build folder whose reports cannot be read."""


@dataclass(frozen=True)
class BuildReports:
    """What a build folder holds: the build report and, when present, synthesis and simulation reports."""

    folder: Path
    build: dict
    synth: dict | None
    sim: dict | None
    synth_stale: bool
    sim_stale: bool


def read_json(path: Path) -> dict:
    """The JSON object in ``path``; ReportError naming the file when it is unreadable or not an object."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise ReportError(f"{path} cannot be read: {exc}") from None
    if not isinstance(data, dict):
        raise ReportError(f"{path} must hold a JSON object")
    return data


def _older_than(path: Path, reference: Path) -> bool:
    return reference.is_file() and path.stat().st_mtime < reference.stat().st_mtime


def read_build_reports(folder: Path | str) -> BuildReports:
    """Read ``folder``'s reports (see the module docstring); ReportError without a build report."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ReportError(f"build folder {folder} does not exist (create it with `hwgen build ... -o {folder}`)")
    if not (folder / BUILD_REPORT).is_file():
        raise ReportError(f"{folder} has no {BUILD_REPORT}: is it a folder written by `hwgen build`?")
    build = read_json(folder / BUILD_REPORT)
    if build.get("format") != "hwgen-build" or "layers" not in build:
        raise ReportError(f"{folder / BUILD_REPORT} is not a hwgen build report (no format hwgen-build / layers)")
    top = folder / build.get("verilog", "top.v")
    synth_path, sim_path = folder / SYNTH_REPORT, folder / SIM_REPORT
    synth = read_json(synth_path) if synth_path.is_file() else None
    sim = read_json(sim_path) if sim_path.is_file() else None
    return BuildReports(folder=folder, build=build, synth=synth, sim=sim,
                        synth_stale=synth is not None and _older_than(synth_path, top),
                        sim_stale=sim is not None and _older_than(sim_path, top))
