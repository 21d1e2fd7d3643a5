"""Run one toolchain stage: a subprocess whose output goes to a log file, with visible progress.

While the tool runs, the stage name, the tool and the elapsed seconds are
shown on ``stream`` (standard error by default): on a terminal one line is
rewritten every second, with the last line of the tool's log; otherwise a line
is printed when the stage starts, every ``heartbeat_s`` seconds and when it ends.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

__all__ = ["StageRun", "run_stage"]

_TICK_S = 1.0


@dataclass(frozen=True)
class StageRun:
    """A finished stage: its exit status and wall time (seconds)."""

    name: str
    tool: str
    returncode: int
    seconds: float


def _last_log_line(log_path: Path, width: int) -> str:
    """The last non-empty line of the log (at most ``width`` characters), '' if none yet."""
    try:
        with open(log_path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 4096))
            lines = [ln.strip() for ln in f.read().decode("utf-8", "replace").splitlines() if ln.strip()]
    except OSError:
        return ""
    return lines[-1][:width] if lines else ""


def run_stage(name: str, tool: str, argv: list[str], *, cwd: Path, env: dict[str, str], log_path: Path,
              stream: TextIO | None = None, heartbeat_s: float = 30.0) -> StageRun:
    """Run ``argv`` in ``cwd`` with ``env``, stdout and stderr into ``log_path``; progress on ``stream``.

    ``stream=None`` means standard error. Ctrl-C stops the tool and re-raises KeyboardInterrupt.
    """
    stream = sys.stderr if stream is None else stream
    live = hasattr(stream, "isatty") and stream.isatty()
    start = time.monotonic()
    if not live:
        print(f"{name}: {tool} (log {log_path.name})", file=stream, flush=True)
    next_beat = heartbeat_s
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL)
        try:
            while True:
                try:
                    returncode = proc.wait(timeout=_TICK_S)
                    break
                except subprocess.TimeoutExpired:
                    elapsed = time.monotonic() - start
                    if live:
                        tail = _last_log_line(log_path, 60)
                        stream.write(f"\r\033[K{name}: {tool} {elapsed:5.0f} s  {tail}")
                        stream.flush()
                    elif elapsed >= next_beat:
                        print(f"{name}: {elapsed:.0f} s", file=stream, flush=True)
                        next_beat += heartbeat_s
        except BaseException:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            if live:
                stream.write("\n")
            raise
    seconds = time.monotonic() - start
    status = "done" if returncode == 0 else f"exit {returncode}"
    prefix = "\r\033[K" if live else ""
    stream.write(f"{prefix}{name}: {status} in {seconds:.1f} s\n")
    stream.flush()
    return StageRun(name, tool, returncode, seconds)
