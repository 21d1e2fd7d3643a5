"""One accelerator simulation from a build folder: build (cached), stream images, check against the golden model.

:func:`simulate` is what ``hwgen sim`` and the tests call. Mode ``"cocotb"``
runs :mod:`hwgen.sim.top_bench` under cocotb + Verilator (Python drives every
cycle: for a few images, with a waveform on failure); mode ``"bulk"`` runs
the C++ harness (:mod:`hwgen.sim.bulk`: for whole test sets). Both give a
:class:`~hwgen.sim.trace.StreamTrace`, checked here with
:func:`hwgen.sim.scoreboard.check_accelerator` against
``run_network(net, images)`` on the whole batch.

Both compile the shell of ``top.v`` (:mod:`hwgen.sim.memfiles`: memory
contents out of the Verilog, one model per design structure, whatever its
weights) and load the memory files, written from ``top.v`` and checked
against it, at run time.

``net`` may replace the build folder's IR as the scoreboard's reference (a
deliberately corrupted copy, to show that a mismatch is caught).
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hwgen.compile.artifact import save_network
from hwgen.compile.golden import run_network
from hwgen.compile.ir import Network
from hwgen.errors import SimError
from hwgen.hw.engines.popcount import MODEL_MODULE
from hwgen.sim.buildfolder import MATCH_COUNTS, BuildFolder, verilog_sources
from hwgen.sim.match_counts import check_match_count_model
from hwgen.sim.runner import cache_root
from hwgen.sim.memfiles import check_mem_dir, plusarg, shell_sources, split_memories, write_mem_dir
from hwgen.sim.scoreboard import AcceleratorCheck, check_accelerator
from hwgen.sim.trace import StreamTrace, Timing

__all__ = ["SimOutcome", "cycle_budget", "simulate"]

MODES = ("cocotb", "bulk")


@dataclass
class SimOutcome:
    """A finished simulation: the check, the timing, how the model was built, where the run's files are."""

    mode: str
    check: AcceleratorCheck
    timing: Timing
    trace: StreamTrace
    model_cached: bool
    build_s: float
    peak_rss_mb: float | None
    run_dir: Path | None = None
    waves: Path | None = None
    bench_failures: list[str] | None = None
    verilog: str = "top.v"  # the build folder's file that was simulated (top_sim.v: match counts as their model)

    @property
    def ok(self) -> bool:
        return self.check.ok and not self.bench_failures


def cycle_budget(folder: BuildFolder, n: int, gap_p: float, stall_p: float) -> tuple[int, int]:
    """(max_cycles, idle_limit) for n frames: generous multiples of the folding estimate.

    The first frame crosses every layer (at most about one frame period per
    layer), then one frame per period; random gaps and stalls slow it by up
    to 1 / ((1 - gap_p) * (1 - stall_p)).
    """
    period = max(folder.cycles_per_frame, folder.frame_beats)
    layers = len(folder.net.layers) + 2
    slow = 1.0 / max(0.02, (1 - gap_p) * (1 - stall_p))
    max_cycles = int((period * (n + layers) + folder.frame_beats * n) * slow * 2) + 10_000
    idle_limit = int(period * layers * slow * 2) + 10_000
    return max_cycles, idle_limit


def simulate(folder: BuildFolder, images: np.ndarray, *, mode: str = "cocotb", labels: np.ndarray | None = None,
             seed: int = 0, gap_p: float = 0.0, stall_p: float = 0.0, net: Network | None = None,
             run_dir: str | os.PathLike | None = None, cache_dir: str | os.PathLike | None = None,
             waves: bool = True, progress: Callable[[int, int], None] | None = None,
             progress_every: int = 0, log: Callable[[str], None] | None = None, jobs: int = 1,
             pattern: str = "none", pattern_len: int = 0, match_counts: str = "model") -> SimOutcome:
    """Simulate ``images`` (uint8 (N, C, H, W)) on the build folder's RTL and compare with the golden model.

    ``run_dir``: where the cocotb run keeps its log, trace and (on failure)
    waveform (default: ``BUILD/sim/cocotb``). ``progress(frames, cycle)``:
    bulk mode only. ``jobs``: bulk harness processes running at once (on
    contiguous chunks of the images). ``log``: called with a line before and after the
    Verilator build (which can take minutes for a large design). ``pattern``,
    ``pattern_len``: bulk mode only, deterministic pauses
    (:data:`hwgen.sim.bulk.PAUSE_PATTERNS`) on top of the random ones.
    ``match_counts``: ``"model"`` compiles the folder's ``top_sim.v`` where it has
    one (the MVTU match counts as their simulation model, proven equal to the
    cells first: :mod:`hwgen.sim.match_counts`), ``"cells"`` always ``top.v``.
    """
    log = log or (lambda line: None)
    if mode not in MODES:
        raise SimError(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
    images = np.ascontiguousarray(images, dtype=np.uint8)
    if images.ndim != 4 or tuple(images.shape[1:]) != folder.input_shape:
        raise SimError(f"images must be (N, {', '.join(map(str, folder.input_shape))}) for {folder.path}, "
                       f"not {images.shape}")
    if not 0 <= gap_p < 1 or not 0 <= stall_p < 1:
        raise SimError(f"gap and stall probabilities must lie in [0, 1), not {gap_p} / {stall_p}")
    if match_counts not in MATCH_COUNTS:
        raise SimError(f"match_counts must be one of {', '.join(MATCH_COUNTS)}, not {match_counts!r}")
    ref = net if net is not None else folder.net
    max_cycles, idle_limit = cycle_budget(folder, len(images), gap_p, stall_p)
    golden = run_network(ref, images)
    top = folder.verilog(model=match_counts == "model")
    if match_counts == "model" and folder.sim_v is not None and not folder.model_current:
        log(f"{folder.sim_v.name} was written by another version of the match-count code: simulating "
            f"{top.name} (the cells)")
    design = split_memories(top.read_text())
    if MODEL_MODULE in design.shell:
        check_match_count_model(design.shell, cache_root(cache_dir) / "proofs", log)
    if mode == "bulk":
        from hwgen.sim.bulk import build_harness, run_harness

        log("Verilator model for the bulk harness (built once, then cached; memory contents load at run time) ...")
        with shell_sources(design, verilog_sources(top)) as sources:
            harness = build_harness(sources, folder.top_module, cache_dir=cache_dir,
                                    memory_layout=design.layout_sha256)
        log(_built(harness.cached, harness.build_s, harness.exe.parent))
        with tempfile.TemporaryDirectory(prefix="hwgen-mem-") as tmp:
            mem = write_mem_dir(design, Path(tmp) / "mem")
            check_mem_dir(design, mem, harness.memory_layout)
            trace = run_harness(harness, images, folder.num_classes, in_width=folder.in_width, seed=seed,
                                gap_p=gap_p, stall_p=stall_p, idle_limit=idle_limit, progress=progress,
                                progress_every=progress_every, jobs=jobs, pattern=pattern, pattern_len=pattern_len,
                                plusargs=[plusarg(mem)])
        check = check_accelerator(ref, images, *trace.decoded(), labels=labels, golden=golden,
                                  protocol_errors=trace.errors())
        return SimOutcome("bulk", check, trace.timing(), trace, harness.cached, harness.build_s,
                          harness.peak_rss_mb, verilog=top.name)

    if pattern != "none":
        raise SimError(f"pause patterns ({pattern}) are a feature of the bulk harness: use mode='bulk'")
    from hwgen.sim.runner import build_model, run_bench

    log("Verilator model for cocotb (built once, then cached; memory contents load at run time) ...")
    with shell_sources(design, verilog_sources(top)) as sources:
        model = build_model(sources, folder.top_module, cache_dir=cache_dir, memory_layout=design.layout_sha256)
    log(_built(model.cached, model.build_s, model.path))
    # absolute: the bench runs in another working folder and reads the config's paths from there
    run_dir = (Path(run_dir) if run_dir is not None else folder.path / "sim" / "cocotb").resolve()
    run_dir.mkdir(parents=True, exist_ok=True)
    mem = write_mem_dir(design, run_dir / "mem")
    check_mem_dir(design, mem, model.memory_layout)
    trace_path = run_dir / "trace.npz"
    trace_path.unlink(missing_ok=True)
    with tempfile.TemporaryDirectory(dir=run_dir, prefix="inputs-") as tmp:
        hwir = Path(tmp) / "reference.hwir"
        save_network(hwir, ref)
        np.save(Path(tmp) / "images.npy", images)
        config = Path(tmp) / "config.json"
        config.write_text(json.dumps({
            "hwir": str(hwir), "images": str(Path(tmp) / "images.npy"), "trace": str(trace_path),
            "seed": seed, "gap_p": gap_p, "stall_p": stall_p, "max_cycles": max_cycles, "idle_limit": idle_limit,
            "in_width": folder.in_width}))
        result = run_bench(model, "hwgen.sim.top_bench", run_dir, env={"HWGEN_SIM_CONFIG": str(config)},
                           waves=waves, seed=seed, plusargs=[plusarg(mem)])
    if not trace_path.is_file():
        raise SimError(f"the cocotb bench did not finish: {'; '.join(result.failures)}\nlog {result.log}:\n"
                       f"{result.log_tail()}")
    trace = StreamTrace.load(trace_path)
    check = check_accelerator(ref, images, *trace.decoded(), labels=labels, golden=golden,
                              protocol_errors=trace.errors())
    failures = None if result.passed else result.failures
    return SimOutcome("cocotb", check, trace.timing(), trace, model.cached, model.build_s, model.peak_rss_mb,
                      run_dir=run_dir, waves=result.waves, bench_failures=failures, verilog=top.name)


def _built(cached: bool, seconds: float, where: Path) -> str:
    return f"  {'cached' if cached else f'built in {seconds:.1f} s'}: {where}"
