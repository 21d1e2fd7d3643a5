"""``hwgen sim BUILD_DIR [--limit N] [--dataset NAME --data-dir DIR] [--bulk] [--seed S] [--stall-p P]``.

Streams test images through the build folder's RTL (cocotb + Verilator, or
the C++ bulk harness with ``--bulk``), compares every image's scores and
class with the golden model, prints a per-image table (few images) or a
progress bar and a summary (many), the measured cycles per frame and
first-frame latency against the folding estimate, and exits 1 on any
mismatch (2 on a usage error, like every hwgen command).
"""

from __future__ import annotations

import argparse
import json
from contextlib import nullcontext
from pathlib import Path

import numpy as np

from hwgen.argtypes import non_negative_int, positive_int
from hwgen.outputs import check_output_file, folder_lock, write_text_atomic
from hwgen.sim.buildfolder import MATCH_COUNTS

__all__ = ["add_parser"]

#: Default image counts: the cocotb bench drives every cycle from Python; bulk mode takes the whole test set.
DEFAULT_COCOTB_IMAGES = 10
TABLE_MAX = 20


def add_parser(sub: argparse._SubParsersAction) -> None:
    from hwgen.data.datasets import DATASET_NAMES

    p = sub.add_parser("sim", help="bit-exact RTL simulation of a build folder against the golden model",
                       description="Simulate the build folder's top.v (cocotb + Verilator, or a C++ Verilator "
                                   "harness with --bulk) on test images; every image's class scores and class "
                                   "must equal the golden model's. Exits 1 on any mismatch.")
    p.add_argument("build_dir", type=Path, help="a folder written by `hwgen build`")
    p.add_argument("--limit", type=positive_int, default=None, metavar="N",
                   help=f"number of test images (default {DEFAULT_COCOTB_IMAGES}; with --bulk the whole test set)")
    p.add_argument("--images", dest="limit", type=positive_int, default=None, help=argparse.SUPPRESS)
    p.add_argument("--offset", type=non_negative_int, default=0, help="first test image index (default 0)")
    p.add_argument("--dataset", choices=[*DATASET_NAMES, "random"], default=None,
                   help="test set (default: the one recorded in the build); 'random': seeded random images")
    p.add_argument("--data-dir", default=None,
                   help="folder of the dataset (default: the one recorded in the build, from here or from the "
                        "build folder and above)")
    p.add_argument("--bulk", action="store_true",
                   help="run a C++ Verilator harness instead of cocotb (no Python per cycle: whole test sets)")
    p.add_argument("--jobs", type=positive_int, default=1,
                   help="--bulk: simulate this many chunks of the images at once, one process each (default 1)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random input gaps and output back-pressure (default 0)")
    p.add_argument("--gap-p", type=float, default=0.0, help="probability of an input gap per cycle (default 0)")
    p.add_argument("--stall-p", type=float, default=0.0,
                   help="probability of output back-pressure (tready low) per cycle (default 0)")
    p.add_argument("--waves", action=argparse.BooleanOptionalAction, default=None,
                   help=f"cocotb: record a waveform, kept only when the run fails (default: on for up to "
                        f"{TABLE_MAX} images)")
    p.add_argument("--cache-dir", type=Path, default=None,
                   help="where Verilator models are cached (default $HWGEN_SIM_CACHE or ~/.cache/hwgen/sim)")
    p.add_argument("--json", type=Path, default=None, metavar="FILE",
                   help="also write the summary as JSON (checked before the simulation starts)")
    p.add_argument("--match-counts", choices=MATCH_COUNTS, default="model",
                   help="model: simulate the build's top_sim.v where it has one, the MVTU match counts as a popcount "
                        "model proven equal to their ECP5 cells first (about 2x faster); cells: top.v as "
                        "synthesised (default model)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=_run_sim)


def _load_images(args: argparse.Namespace, folder) -> tuple[str, np.ndarray, np.ndarray | None]:
    """(dataset name, uint8 images (N, C, H, W), labels (N,) or None) per --dataset/--data-dir/--limit/--offset."""
    from hwgen.data.location import resolve_recorded_data_dir
    from hwgen.errors import ConfigError

    dataset = args.dataset or folder.dataset
    count = args.limit if args.limit is not None else (None if args.bulk else DEFAULT_COCOTB_IMAGES)
    if dataset == "random":
        n = count if count is not None else 100
        rng = np.random.default_rng(args.seed + args.offset)
        return "random", rng.integers(0, 256, size=(n, *folder.input_shape), dtype=np.uint8), None
    data_dir = args.data_dir or folder.report.get("data_dir") or folder.net.metadata.get("data_dir")
    if not dataset or not data_dir:
        raise ConfigError(f"{folder.path} does not record its dataset: pass --dataset and --data-dir "
                          f"(or --dataset random)")
    if args.data_dir is None:
        data_dir = resolve_recorded_data_dir(data_dir, folder.path / "net.hwir")
    from hwgen.data.datasets import load_dataset

    data = load_dataset(dataset, data_dir)
    images, labels = data.test_images.numpy(), data.test_labels.numpy()
    if tuple(images.shape[1:]) != folder.input_shape:
        raise ConfigError(f"{dataset} images have shape {tuple(images.shape[1:])} but {folder.path} expects "
                          f"{folder.input_shape}")
    if args.offset >= len(images):
        raise ConfigError(f"--offset {args.offset} is past the {len(images)} {dataset} test images")
    end = len(images) if count is None else min(len(images), args.offset + count)
    return dataset, images[args.offset:end], labels[args.offset:end]


def _run_sim(args: argparse.Namespace) -> int:
    from hwgen.errors import ConfigError

    for name in ("gap_p", "stall_p"):
        v = getattr(args, name)
        if not 0 <= v < 1:
            raise ConfigError(f"--{name.replace('_', '-')} must lie in [0, 1), not {v}")
    if args.json is not None:
        check_output_file(args.json, option="--json")
    with folder_lock(args.build_dir, shared=True, what="simulate") if args.build_dir.is_dir() else nullcontext():
        return _simulate(args)


def _simulate(args: argparse.Namespace) -> int:
    from hwgen.report.hooks import refresh_report
    from hwgen.sim.buildfolder import load_build_folder
    from hwgen.sim.session import simulate

    folder = load_build_folder(args.build_dir)
    dataset, images, labels = _load_images(args, folder)
    mode = "bulk" if args.bulk else "cocotb"
    n = len(images)
    print(f"hwgen sim {folder.name}: {n} {dataset} test image(s) from index {args.offset}, "
          f"{'C++ bulk harness' if args.bulk else 'cocotb'} + Verilator, seed {args.seed}, "
          f"input gaps {args.gap_p:g}, output stalls {args.stall_p:g}", flush=True)

    bars: list = []  # created at the first progress report, i.e. after the Verilator build
    progress = None
    if args.bulk and n > TABLE_MAX and not args.no_progress:
        from tqdm import tqdm

        def progress(done: int, cycle: int) -> None:
            if not bars:
                bars.append(tqdm(total=n, unit="img", desc="RTL", leave=False))
            bars[0].update(done - bars[0].n)
    try:
        outcome = simulate(folder, images, mode=mode, labels=labels, seed=args.seed, gap_p=args.gap_p,
                           stall_p=args.stall_p, cache_dir=args.cache_dir,
                           waves=args.waves if args.waves is not None else n <= TABLE_MAX,
                           progress=progress, progress_every=max(1, n // 100),
                           log=lambda line: print(line, flush=True), jobs=args.jobs, match_counts=args.match_counts)
    finally:
        for bar in bars:
            bar.close()

    if n <= TABLE_MAX:
        print(format_table(outcome, args.offset))
    summary = summarize(outcome, folder, dataset)
    print(format_summary(summary))
    if outcome.check.first_mismatch:
        print("first mismatch:\n" + outcome.check.first_mismatch)
    for failure in outcome.bench_failures or []:
        if not outcome.check.first_mismatch:
            print("bench failure: " + failure)
    if outcome.waves:
        print(f"waveform kept: {outcome.waves}")
    if args.json:
        write_text_atomic(args.json, json.dumps(summary, indent=1) + "\n")
    refresh_report(args.build_dir, sim_summary=summary)
    return 0 if outcome.ok else 1


def format_table(outcome, offset: int) -> str:
    """One row per image: label, RTL class, golden class, agreement, cycles from first pixel in to class word out."""
    c, t = outcome.check, outcome.trace
    rows = ["image  label  RTL class  golden class  scores+class  cycles in->out"]
    for i in range(len(c.agree)):
        label = "-" if c.labels is None else str(int(c.labels[i]))
        rtl = str(int(c.classes[i])) if c.classes[i] >= 0 else "none"
        span = (str(int(t.out_last[i]) - int(t.in_first[i]) + 1) if i < t.frames_out else "-")
        rows.append(f"{offset + i:5d}  {label:>5}  {rtl:>9}  {int(c.golden_classes[i]):>12}  "
                    f"{'equal' if c.agree[i] else 'MISMATCH':>12}  {span:>14}")
    return "\n".join(rows)


def summarize(outcome, folder, dataset: str) -> dict:
    """The run's figures as a JSON-ready dict (what the summary prints)."""
    c, tm = outcome.check, outcome.timing
    est = folder.cycles_per_frame
    return {
        "build": str(folder.path), "mode": outcome.mode, "verilog": outcome.verilog, "dataset": dataset,
        "images": len(c.agree),
        "agree": int(c.agree.sum()), "mismatches": c.mismatches, "ok": outcome.ok,
        "protocol_errors": c.protocol_errors,
        "rtl_accuracy": c.accuracy(rtl=True), "golden_accuracy": c.accuracy(rtl=False),
        "cycles_per_frame": tm.cycles_per_frame, "cycles_per_frame_estimate": est,
        "latency_cycles": tm.latency, "latency_estimate": folder.latency_estimate,
        "cycles": tm.cycles, "sim_seconds": round(tm.wall_s, 4),
        "cycles_per_second": round(tm.cycles_per_s, 1), "images_per_second": round(tm.images_per_s, 3),
        "model_cached": outcome.model_cached, "build_seconds": outcome.build_s,
        "build_peak_rss_mb": outcome.peak_rss_mb,
        "waves": str(outcome.waves) if outcome.waves else None,
    }


def format_summary(s: dict) -> str:
    lines = [f"RTL vs golden model: {s['agree']}/{s['images']} images agree (scores and class), "
             f"{s['mismatches']} mismatch(es)" + ("" if not s["protocol_errors"] else
                                                  "; protocol: " + "; ".join(s["protocol_errors"][:3]))]
    if s["rtl_accuracy"] is not None:
        lines.append(f"top-1 accuracy on {s['images']} {s['dataset']} images: RTL {100 * s['rtl_accuracy']:.2f}%, "
                     f"golden model {100 * s['golden_accuracy']:.2f}%")
    est = s["cycles_per_frame_estimate"]
    if s["cycles_per_frame"] is not None:
        lines.append(f"cycles per frame (steady state): {s['cycles_per_frame']:,.1f} measured, {est:,} "
                     f"folding estimate ({100 * s['cycles_per_frame'] / est:.1f}%)")
    else:
        lines.append(f"cycles per frame: needs 2 images or more (folding estimate {est:,})")
    if s["latency_cycles"] is not None:
        ref = (f"estimate {s['latency_estimate']:,}" if s["latency_estimate"] else
               f"{s['latency_cycles'] / est:.2f} x the estimated frame period")
        lines.append(f"first-frame latency: {s['latency_cycles']:,} cycles, first pixel in to class word out ({ref})")
    built = "cached model" if s["model_cached"] else f"Verilator build {s['build_seconds']:.1f} s"
    lines.append(f"simulated {s['cycles']:,} cycles of {s['verilog']} in {s['sim_seconds']:.2f} s: "
                 f"{s['cycles_per_second']:,.0f} cycles/s, {s['images_per_second']:,.1f} images/s ({built})")
    return "\n".join(lines)
