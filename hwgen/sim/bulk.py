"""Bulk mode: thousands of frames through the verilated accelerator, driven by a C++ loop (no Python per cycle).

:func:`build_harness` compiles ``harness.cpp`` (shipped in this package; its
header comment documents the file formats) with the design into one
executable, ``verilator --cc --exe --build -O3``, cached like the cocotb
models: ``CACHE/bulk-<top>-<key>`` where the key hashes the Verilog, the
harness source, the options, the memory layout and the Verilator version
(``hwgen sim`` compiles the shell of :mod:`hwgen.sim.memfiles`, whose memories
read their contents at run time from ``+hwgen_mem=DIR``). :func:`run_harness`
writes the frames to a file, runs the executable (reading its progress
lines to call back), and returns the :class:`~hwgen.sim.trace.StreamTrace`;
with ``jobs`` > 1 it runs that many harness processes on contiguous chunks
of the frames at once (frames are independent) and merges their traces.
The comparison with the golden model is the caller's
(:func:`hwgen.sim.scoreboard.check_accelerator` on the whole batch).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np

from hwgen.errors import SimError
from hwgen.sim.formats import pixel_stream, words_per_frame
from hwgen.sim.runner import (
    BASE_ARGS,
    MAKE_VARS,
    cache_root,
    hash_key,
    locked,
    prune_build,
    verilator_version,
)
from hwgen.sim.trace import StreamTrace

__all__ = ["Harness", "build_harness", "harness_source", "run_harness"]

EXE = "hwgen_bulk"
#: Statements per model function (Verilator's ``--output-split-cfuncs``). Verilator's default put CNV
#: ``--pe 32``'s clocked logic in functions of up to 12,000 lines, which GCC -O2 compiles in time far
#: above linear: one file of 1.1 MB still compiling after 11 minutes, the whole model's other files in
#: seconds each. CNV ``--pe 16``, 100 CIFAR-10 images (benchmarks/sim_speed.py, variants ``shell`` and
#: ``shell-splitN``): build 106.7 s -> 33.8-35.1 s, simulation 86,109 -> 108,522-108,655 cycles/s; at
#: 300 statements alike, at 100 and 30 slower to build and to run (86.7 s, 79,964 cycles/s at 100).
SPLIT_CFUNCS = 1000

#: Verilator options of the bulk model: fast code, no assertions, functions split at
#: :data:`SPLIT_CFUNCS` statements. ``-CFLAGS -O2`` replaces Verilator's default ``-Os`` for the model's
#: C++: measured 1.4x faster simulation of CNV (97k vs 70k cycles/s) for a build about twice as long
#: (139 vs 76 s).
BULK_ARGS = ("-O3", "--x-assign", "fast", "--x-initial", "fast", "--noassert", "-CFLAGS", "-O2",
             "--output-split-cfuncs", str(SPLIT_CFUNCS))
_STAMP = "hwgen-build.json"


def harness_source() -> str:
    """The C++ harness shipped with the package."""
    return resources.files("hwgen.sim").joinpath("harness.cpp").read_text()


@dataclass(frozen=True)
class Harness:
    """A built bulk executable, whether it came from the cache, and its build's cost."""

    exe: Path
    cached: bool
    build_s: float
    peak_rss_mb: float | None
    memory_layout: str | None = None  # the layout digest of the memory files it loads (hwgen.sim.memfiles)
    build_cpu_s: float | None = None  # CPU seconds of the build, all its processes (less load-dependent than build_s)


def build_harness(sources: Sequence[str | os.PathLike], top_module: str = "hwgen_top", *,
                  cache_dir: str | os.PathLike | None = None, jobs: int | None = None,
                  memory_layout: str | None = None, verilator_args: Sequence[str] = BULK_ARGS) -> Harness:
    """Compile the harness with the Verilog ``sources`` (top.v first; cached); SimError with the build
    log's tail on failure. ``memory_layout``: for a shell whose memories load their contents at run time
    (:mod:`hwgen.sim.memfiles`), its layout digest, recorded with the executable. ``verilator_args``:
    the model's optimisation options (default :data:`BULK_ARGS`; ``benchmarks/sim_speed.py`` compares others)."""
    import json

    version = verilator_version()
    sources = [Path(s).resolve() for s in sources]
    for s in sources:
        if not s.is_file():
            raise SimError(f"{s} does not exist")
    top_v = sources[0]
    source = harness_source()
    args = [*BASE_ARGS, *verilator_args, *(a for v in MAKE_VARS for a in ("-MAKEFLAGS", v))]
    key = hash_key([version, top_module, " ".join(args), source, str(memory_layout),
                    *(s.read_bytes() for s in sources)])
    root = cache_root(cache_dir)
    out = root / f"bulk-{top_module}-{key}"
    exe = out / EXE
    with locked(root / f".lock-{key}"):
        stamp = out / _STAMP
        if stamp.is_file() and exe.is_file():
            info = json.loads(stamp.read_text())
            return Harness(exe, True, info["build_s"], info.get("peak_rss_mb"), info.get("memory_layout"),
                           info.get("build_cpu_s"))
        shutil.rmtree(out, ignore_errors=True)
        out.mkdir(parents=True)
        (out / "harness.cpp").write_text(source)
        jobs = jobs or max(1, min(4, os.cpu_count() or 1))
        cmd = ["verilator", "--cc", "--exe", "--build", "-j", str(jobs), *args, "--top-module", top_module,
               "--prefix", "Vtop", "-Mdir", str(out), "-o", EXE, str(out / "harness.cpp"), *map(str, sources)]
        log = out / "build.log"
        t0 = time.monotonic()
        with open(log, "w") as fh:
            proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, cwd=out)
            _, status, usage = os.wait4(proc.pid, 0)
            proc.returncode = os.waitstatus_to_exitcode(status)
        build_s = time.monotonic() - t0
        if proc.returncode != 0 or not exe.is_file():
            tail = "\n".join(log.read_text(errors="replace").splitlines()[-25:])
            raise SimError(f"building the bulk harness for {top_v} failed (exit {proc.returncode}); "
                           f"log {log}:\n{tail}")
        # wait4's ru_maxrss: the largest process of the child's tree (verilator, make, the compilers).
        peak = usage.ru_maxrss / 1024.0
        info = {"build_s": round(build_s, 2), "build_cpu_s": round(usage.ru_utime + usage.ru_stime, 1),
                "peak_rss_mb": round(peak, 1), "command": cmd, "verilator": version, "memory_layout": memory_layout}
        stamp.write_text(json.dumps(info, indent=1))
        prune_build(out)
        return Harness(exe, False, info["build_s"], info["peak_rss_mb"], memory_layout, info["build_cpu_s"])


#: Deterministic pause patterns of the harness: output stalls on each frame's last word, output stall bursts,
#: input gaps between frames.
PAUSE_PATTERNS = ("none", "last-beat", "bursts", "frame-gaps")


def run_harness(harness: Harness, images: np.ndarray, num_classes: int, *, in_width: int = 8, seed: int = 0,
                gap_p: float = 0.0,
                stall_p: float = 0.0, idle_limit: int = 1_000_000, workdir: str | os.PathLike | None = None,
                progress: Callable[[int, int], None] | None = None, progress_every: int = 0,
                jobs: int = 1, pattern: str = "none", pattern_len: int = 0,
                plusargs: Sequence[str] = ()) -> StreamTrace:
    """Stream uint8 ``images`` (N, C, H, W) through the harness; the trace of what came out.

    ``jobs`` > 1 splits the images into that many contiguous chunks, each
    simulated by its own harness process from reset (seed ``seed + chunk``),
    all at once; frames are independent, so the outputs are the same, and the
    trace is merged (:meth:`StreamTrace.concat`). ``progress(frames_done,
    cycle)`` is called every ``progress_every`` frames (0: never), frames
    summed over the chunks. ``idle_limit``: cycles without any handshake
    before a run is declared stuck (the trace then has ``stuck`` set).
    ``pattern`` (one of :data:`PAUSE_PATTERNS`) adds deterministic pauses of
    ``pattern_len`` cycles to the random ones (harness.cpp's header says where).
    ``in_width``: bits of the design's ``s_axis_tdata``, ``in_width / 8`` bytes
    of :func:`~hwgen.sim.formats.pixel_stream` per beat, the first on bits 7..0.
    ``plusargs``: passed to every harness process (``+hwgen_mem=DIR``).
    """
    images = np.asarray(images)
    if jobs < 1:
        raise SimError(f"jobs must be at least 1, not {jobs}")
    if pattern not in PAUSE_PATTERNS or (pattern != "none" and not (isinstance(pattern_len, int) and pattern_len > 0)):
        raise SimError(f"pattern must be one of {', '.join(PAUSE_PATTERNS)} with a positive length, "
                       f"not {pattern!r} / {pattern_len!r}")
    chunks = [c for c in np.array_split(images, min(jobs, max(1, len(images)))) if len(c)]
    done = [0] * len(chunks)
    lock = threading.Lock()

    def report(index: int, frames: int, cycle: int) -> None:
        if progress:
            with lock:
                done[index] = frames
                progress(sum(done), cycle)

    with tempfile.TemporaryDirectory(dir=workdir, prefix="hwgen-bulk-") as tmp:
        procs = [_start(harness, chunk, num_classes, Path(tmp) / f"chunk{i}", in_width=in_width, seed=seed + i,
                        gap_p=gap_p,
                        stall_p=stall_p, idle_limit=idle_limit, progress_every=progress_every if progress else 0,
                        pattern=pattern, pattern_len=pattern_len, plusargs=plusargs)
                 for i, chunk in enumerate(chunks)]
        results: list = [None] * len(procs)
        threads = [threading.Thread(target=lambda i=i: results.__setitem__(i, _finish(procs[i], report, i)))
                   for i in range(len(procs))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        traces = []
        for i, (proc, (wall, stderr)) in enumerate(zip(procs, results)):
            if proc.returncode != 0 or wall is None:
                raise SimError(f"the bulk harness failed (exit {proc.returncode}): {stderr.strip()[-2000:]}")
            trace = _read_output(Path(tmp) / f"chunk{i}.out", num_classes, wall)
            trace.protocol_errors += [line for line in stderr.splitlines() if line.startswith("hwgen_bulk:")][:5]
            traces.append(trace)
    return traces[0] if len(traces) == 1 else StreamTrace.concat(traces)


def _start(harness: Harness, images: np.ndarray, num_classes: int, stem: Path, *, in_width: int, seed: int,
           gap_p: float,
           stall_p: float, idle_limit: int, progress_every: int, pattern: str = "none",
           pattern_len: int = 0, plusargs: Sequence[str] = ()) -> subprocess.Popen:
    """Write the frames file ``STEM.bin`` and start the harness writing ``STEM.out``."""
    frames = stem.with_suffix(".bin")
    pixel_stream(images).tofile(frames)
    cmd = [str(harness.exe), "--frames", str(frames), "--frame-bytes", str(int(np.prod(images.shape[1:]))),
           "--words", str(words_per_frame(num_classes)), "--out", str(stem.with_suffix(".out")),
           "--seed", str(seed), "--gap-p", repr(float(gap_p)), "--stall-p", repr(float(stall_p)),
           "--idle-limit", str(int(idle_limit)), "--progress", str(int(progress_every)),
           "--beat-bytes", str(in_width // 8)]
    if pattern != "none":
        cmd += ["--pattern", pattern, "--pattern-len", str(int(pattern_len))]
    cmd += list(plusargs)
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _finish(proc: subprocess.Popen, report: Callable[[int, int, int], None], index: int) -> tuple[float | None, str]:
    """Read a harness's progress lines until it exits; (its simulation seconds or None, the other lines it
    printed and its stderr)."""
    wall, said = None, []
    assert proc.stdout is not None and proc.stderr is not None
    for line in proc.stdout:
        parts = line.split()
        if parts[:1] == ["progress"]:
            report(index, int(parts[1]), int(parts[2]))
        elif parts[:1] == ["done"]:
            wall = float(parts[3])
        else:
            said = [*said[-19:], line]  # the simulator's own messages ($fatal, %Error): the last 20 lines
    stderr = proc.stderr.read()
    proc.wait()
    return wall, "".join(said) + stderr


def _read_output(path: Path, num_classes: int, wall_s: float) -> StreamTrace:
    """Parse the harness's output file (format: harness.cpp's header comment)."""
    raw = path.read_bytes()
    if raw[:8] != b"HWGSIM1\0":
        raise SimError(f"{path} is not a harness output file")
    frames, wpf, received, cycles, status, errors = np.frombuffer(raw, dtype="<u8", count=6, offset=8)
    if wpf != words_per_frame(num_classes):
        raise SimError(f"the harness wrote {wpf} words per frame, expected {words_per_frame(num_classes)}")
    pos = 8 + 48
    words = np.frombuffer(raw, dtype="<u4", count=int(received), offset=pos)
    pos += 4 * int(received)
    lasts = np.frombuffer(raw, dtype=np.uint8, count=int(received), offset=pos)
    pos += int(received)
    per = np.frombuffer(raw, dtype="<u8", count=4 * int(frames), offset=pos).reshape(4, int(frames))
    trace = StreamTrace(num_classes=num_classes, words=words.copy(), lasts=lasts.copy(), in_first=per[0].copy(),
                        in_last=per[1].copy(), out_first=per[2].copy(), out_last=per[3].copy(), cycles=int(cycles),
                        wall_s=wall_s, stuck=bool(status == 1))
    if errors:
        msg = f"{int(errors)} m_axis protocol errors (data or tlast changed, or tvalid dropped, while stalled)"
        trace.protocol_errors = [msg]
    return trace
