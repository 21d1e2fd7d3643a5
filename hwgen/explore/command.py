"""``hwgen explore MODEL --target T (--pe LIST | --fps LIST | --fit) [--seeds LIST] [--clock LIST]
[--workers N | --scheduler ADDR] -o DIR``."""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from pathlib import Path

from hwgen.argtypes import positive_int

__all__ = ["add_parser"]


def add_parser(sub: argparse._SubParsersAction) -> None:
    from hwgen.hw.targets import TARGETS

    p = sub.add_parser("explore", help="sweep foldings x placer seeds x clocks through synthesis on a Dask cluster",
                       description="Build each folding once, then synthesise every (folding, seed, clock) point as "
                                   "a Dask task (a LocalCluster on this machine, or an existing cluster); resumable: "
                                   "a rerun skips finished points. Writes DIR/explore.json, explore.csv and "
                                   "explore.html (Pareto fronts of frames/s against LUT4 and block RAM, the best "
                                   "point per criterion and the command that rebuilds it), and one folder with a "
                                   "report.html per point.")
    p.add_argument("model", type=Path, help="a checkpoint (.ckpt) or a compiled IR (.hwir)")
    p.add_argument("-o", "--output", type=Path, required=True, metavar="DIR", help="sweep folder (reused to resume)")
    p.add_argument("--target", required=True, choices=sorted(TARGETS), help="FPGA to build for and synthesise on")
    fold = p.add_mutually_exclusive_group(required=True)
    fold.add_argument("--pe", metavar="LIST", help="foldings as hwgen build --pe values, e.g. 4,8,16")
    fold.add_argument("--fps", metavar="LIST", help="foldings as hwgen build --fps targets, e.g. 25000,100000 "
                                                    "(built at each --clock)")
    fold.add_argument("--fit", action="store_true", help="one folding: the fastest balanced one that fits --target "
                                                         "by the cost model (hwgen build --fit)")
    p.add_argument("--seeds", default="1", metavar="LIST", help="nextpnr placer seeds (default 1)")
    p.add_argument("--clock", dest="freq", default="100", metavar="LIST",
                   help="clocks in MHz nextpnr must meet (default 100)")
    p.add_argument("--freq", dest="freq", help=argparse.SUPPRESS)  # old spelling of --clock
    where = p.add_mutually_exclusive_group()
    where.add_argument("--workers", type=positive_int, default=None, metavar="N",
                       help="worker processes of a LocalCluster on 127.0.0.1 (default: the CPU count, at most "
                            "the number of points)")
    where.add_argument("--scheduler", default=None, metavar="ADDR",
                       help="an existing Dask scheduler, e.g. tcp://HOST:8786 (its workers must see DIR)")
    p.add_argument("--retry-failed", action="store_true", help="synthesise again the points recorded as failed")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=_run_explore)


def _spec(args: argparse.Namespace):
    from hwgen.explore.spec import Folding, FoldingKind, SweepSpec, parse_list

    if args.fit:
        foldings = (Folding(FoldingKind.FIT),)
    else:
        kind = FoldingKind.PE if args.pe is not None else FoldingKind.FPS
        values = parse_list(args.pe if args.pe is not None else args.fps, f"--{kind.value}",
                            int if kind is FoldingKind.PE else float)
        foldings = tuple(Folding(kind, v) for v in values)
    return SweepSpec(model=str(args.model), target=args.target, foldings=foldings,
                     seeds=parse_list(args.seeds, "--seeds", int), freqs_mhz=parse_list(args.freq, "--clock"))


def _command(args: argparse.Namespace) -> str:
    """The hwgen explore command line that reruns (resumes) this sweep."""
    folding = (["--fit"] if args.fit else
               ["--pe" if args.pe is not None else "--fps", args.pe if args.pe is not None else args.fps])
    words = ["hwgen", "explore", str(args.model), "--target", args.target, *folding,
             "--seeds", args.seeds, "--clock", args.freq]
    if args.scheduler is not None:
        words += ["--scheduler", args.scheduler]
    elif args.workers is not None:
        words += ["--workers", str(args.workers)]
    return shlex.join([*words, "-o", str(args.output)])


def _run_explore(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from hwgen.explore.cluster import dask_client
    from hwgen.explore.page import EXPLORE_HTML
    from hwgen.explore.sweep import run_sweep
    from hwgen.outputs import check_output_dir

    spec = _spec(args)
    check_output_dir(args.output)
    total = len(spec.points())
    workers = args.workers
    if args.scheduler is None and workers is None:
        workers = max(1, min(os.cpu_count() or 1, total))
    cluster = (f"Dask scheduler {args.scheduler}" if args.scheduler else
               f"LocalCluster of {workers} worker(s) on 127.0.0.1")
    print(f"hwgen explore: {len(spec.foldings)} folding(s) x {len(spec.seeds)} seed(s) x {len(spec.freqs_mhz)} "
          f"clock(s) = {total} point(s) on {spec.target}, {cluster}", flush=True)
    bars: list = []  # made at the first finished point, i.e. once the cluster is up

    def on_point(row: dict, done: int, total: int) -> None:
        if args.no_progress:
            return
        if not bars:
            bars.append(tqdm(total=total, unit="point", desc="synthesis", file=sys.stderr))
        bars[0].update(done - bars[0].n)
        bars[0].set_postfix_str(f"{row['point']} {row['status']}")

    try:
        with dask_client(workers=workers if args.scheduler is None else None, scheduler=args.scheduler) as client:
            outcome = run_sweep(spec, args.output, client, retry_failed=args.retry_failed, cluster=cluster,
                                command=_command(args), on_point=on_point)
    finally:
        for bar in bars:
            bar.close()
    print(f"{outcome.ran} point(s) run in {outcome.seconds:.1f} s, {outcome.skipped} finished earlier, "
          f"{len(outcome.failed)} failed")
    for row in outcome.failed[:5]:
        print(f"  failed {row['point']}: {row['error']}")
    for best in outcome.document["best"]:
        print(f"{best['criterion']}: {best['point']}")
    print(f"wrote {args.output}/explore.json, explore.csv, {EXPLORE_HTML} (open it in a browser)")
    if outcome.interrupted:
        pending = sum(r["status"] == "pending" for r in outcome.rows)
        print(f"hwgen: interrupted with {pending} point(s) left; run the same command again to resume",
              file=sys.stderr)
        return 130
    return 0
