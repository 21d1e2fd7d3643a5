"""Run one toolchain stage: a subprocess whose output goes to a log file, with visible progress.

While the tool runs, the stage name, the tool and the elapsed seconds are
shown on ``stream`` (standard error by default): on a terminal one line is
rewritten every second, with the last line of the tool's log; otherwise a line
is printed when the stage starts, every ``heartbeat_s`` seconds and when it ends.

The tool dies with the process that started it: on Linux it is started through a
one-line launcher that asks the kernel for SIGTERM when its parent dies
(``prctl(PR_SET_PDEATHSIG)``, kept across ``exec``; the stage scripts ``exec``
their tool), so a killed ``hwgen synth`` or a killed ``hwgen explore`` worker
leaves no Yosys or nextpnr running on.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

__all__ = ["StageRun", "run_stage", "tied_to_this_process"]

_TICK_S = 1.0
_PR_SET_PDEATHSIG = 1
# argv: PARENT_PID PROGRAM ARGS...; exits at once if the parent is already gone (the race before prctl)
_LAUNCHER = ("import ctypes, os, signal, sys; ctypes.CDLL(None, use_errno=True).prctl({op}, signal.SIGTERM); "
             "os.getppid() == int(sys.argv[1]) or sys.exit(143); os.execvp(sys.argv[2], sys.argv[2:])")


def tied_to_this_process(argv: list[str]) -> list[str]:
    """``argv`` wrapped so that the program gets SIGTERM when this process dies (Linux); unchanged elsewhere."""
    if not sys.platform.startswith("linux"):
        return list(argv)
    return [sys.executable, "-c", _LAUNCHER.format(op=_PR_SET_PDEATHSIG), str(os.getpid()), *argv]


@dataclass(frozen=True)
class StageRun:
    """A finished stage: its exit status and wall time (seconds); ``stopped``: why ``run_stage``'s ``stop``
    ended it early (None when the tool ended by itself)."""

    name: str
    tool: str
    returncode: int
    seconds: float
    stopped: str | None = None


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


def _end(proc: subprocess.Popen) -> None:
    """SIGTERM, then SIGKILL after 10 s; waits for the tool."""
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def run_stage(name: str, tool: str, argv: list[str], *, cwd: Path, env: dict[str, str], log_path: Path,
              stream: TextIO | None = None, heartbeat_s: float = 30.0,
              stop: Callable[[float], str | None] | None = None) -> StageRun:
    """Run ``argv`` in ``cwd`` with ``env``, stdout and stderr into ``log_path``; progress on ``stream``.

    ``stream=None`` means standard error. Ctrl-C stops the tool and re-raises KeyboardInterrupt.
    ``stop``: asked every second with the elapsed seconds while the tool runs; a reason (a string) ends the
    tool there, and the run comes back with that reason as :attr:`StageRun.stopped`.
    """
    stream = sys.stderr if stream is None else stream
    live = hasattr(stream, "isatty") and stream.isatty()
    start = time.monotonic()
    if not live:
        print(f"{name}: {tool} (log {log_path.name})", file=stream, flush=True)
    next_beat = heartbeat_s
    stopped = None
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(tied_to_this_process(argv), cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL)
        try:
            while True:
                try:
                    returncode = proc.wait(timeout=_TICK_S)
                    break
                except subprocess.TimeoutExpired:
                    elapsed = time.monotonic() - start
                    stopped = stop(elapsed) if stop is not None else None
                    if stopped is not None:
                        _end(proc)
                        returncode = proc.returncode
                        break
                    if live:
                        tail = _last_log_line(log_path, 60)
                        stream.write(f"\r\033[K{name}: {tool} {elapsed:5.0f} s  {tail}")
                        stream.flush()
                    elif elapsed >= next_beat:
                        print(f"{name}: {elapsed:.0f} s", file=stream, flush=True)
                        next_beat += heartbeat_s
        except BaseException:
            _end(proc)
            if live:
                stream.write("\n")
            raise
    seconds = time.monotonic() - start
    status = f"stopped ({stopped})" if stopped else "done" if returncode == 0 else f"exit {returncode}"
    prefix = "\r\033[K" if live else ""
    stream.write(f"{prefix}{name}: {status} in {seconds:.1f} s\n")
    stream.flush()
    return StageRun(name, tool, returncode, seconds, stopped)
