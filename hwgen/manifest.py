"""A build folder's ``manifest.json``: which command wrote each file, so no stale file survives a rebuild.

Layout (JSON, written atomically by the command that changed the folder)::

    {"format": "hwgen-manifest", "version": 1,
     "stages": {"build": {"command": "hwgen build ... ", "files": {"top.v": "<sha256>", ...}},
                "synth": {"command": "...", "files": {...}}, "board": {...}}}

Stages form a chain: ``build`` writes the design (top.v, mem/, net.hwir,
report.*, scripts); ``board`` (``hwgen synth --board``) and ``synth`` derive
files from it. The rules:

* :func:`install_build` puts a new build in place only when it is complete
  (it was generated into a temporary folder inside the build folder): it
  removes the previous build's files that the new one does not write, and
  every later stage's files (a bitstream or a synthesis report of the old
  design is stale next to a new ``top.v``), then moves the new files in.
  For a folder without a manifest (from an older hwgen) the later stages'
  files are known by name (:func:`derived_names`).
* A stage that succeeds records its files with :func:`record`; a failed
  stage records nothing and leaves the previous files (see hwgen.synth.runner).
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import shutil
import sys
from collections.abc import Iterable
from pathlib import Path

from hwgen.outputs import LOCK_NAME, write_text_atomic

__all__ = ["MANIFEST", "derived_names", "install_build", "read_manifest", "record"]

MANIFEST = "manifest.json"
_FORMAT = "hwgen-manifest"

def derived_names() -> tuple[str, ...]:
    """Files of the stages after ``build``, by name, for a folder without a manifest: synthesis (ECP5 and
    iCE40 names), its reports and logs, and the board wrapper (from the toolchain's and the board's names)."""
    from hwgen.boards.generate import BOARD_INFO, BOARD_VERILOG
    from hwgen.hw.targets import Family
    from hwgen.synth.scripts import toolchain_files

    names = {BOARD_VERILOG, BOARD_INFO}
    for family in Family:
        f = toolchain_files(family)
        names |= {f.netlist, f.stat_text, f.stat_json, f.routed, f.pnr_report, f.bitstream, f.report_md,
                  f.report_json, f.logs.synth, f.logs.pnr, f.logs.pack}
    return tuple(sorted(names))


_COMMAND: list[str] | None = None


def set_command(argv: list[str]) -> None:
    """The command line recorded in manifests written by this process (``hwgen.cli.main`` sets it)."""
    global _COMMAND
    _COMMAND = list(argv)


def _command() -> str:
    return "hwgen " + shlex.join(_COMMAND if _COMMAND is not None else sys.argv[1:])


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def read_manifest(folder: str | os.PathLike) -> dict:
    """The folder's manifest ({} when it has none or it is unreadable: treated as a folder without one)."""
    path = Path(folder) / MANIFEST
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) and data.get("format") == _FORMAT else {}


def record(folder: str | os.PathLike, stage: str, files: Iterable[str], *, command: str | None = None) -> None:
    """Record that ``stage`` (run as ``command``, default this process's command line) wrote ``files``."""
    folder = Path(folder)
    manifest = read_manifest(folder) or {"format": _FORMAT, "version": 1, "stages": {}}
    manifest["stages"][stage] = {
        "command": command or _command(),
        "files": {name: _sha256(folder / name) for name in sorted(set(files)) if (folder / name).is_file()},
    }
    write_text_atomic(folder / MANIFEST, json.dumps(manifest, indent=1, sort_keys=True) + "\n")


def _files_under(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def install_build(new: Path, out: Path) -> list[str]:
    """Move the complete build in ``new`` into ``out`` (see the module docstring); the stale files removed."""
    manifest = read_manifest(out)
    stages = manifest.get("stages", {})
    new_files = _files_under(new)
    old_build = set(stages.get("build", {}).get("files", {}))
    derived = ({name for stage, entry in stages.items() if stage != "build" for name in entry.get("files", {})}
               if manifest else set(derived_names()))
    removed = []
    for name in sorted((old_build - set(new_files)) | derived):
        if name in (MANIFEST, LOCK_NAME):
            continue
        path = out / name
        if path.is_file():
            path.unlink()
            removed.append(name)
    for name in new_files:
        target = out / name
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(new / name, target)
    shutil.rmtree(new, ignore_errors=True)
    manifest = {"format": _FORMAT, "version": 1, "stages": {}}
    write_text_atomic(out / MANIFEST, json.dumps(manifest) + "\n")
    record(out, "build", new_files)
    return removed
