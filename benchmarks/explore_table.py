"""Markdown tables of ``hwgen explore`` sweeps: each sweep's wall time, and its points with the Pareto fronts.

Usage::

    python benchmarks/explore_table.py runs/explore-tfc-w1 runs/explore-tfc-w2 ...

Reads each SWEEP_DIR/explore.json. First table: one row per sweep (cluster,
points run / skipped, wall time of the last run, mean point time). Then, per
sweep, one row per point: folding, seed, cycles per frame, LUT4, FF, EBR,
Fmax, frames/s at Fmax, frames/s per 1k LUT4, point wall time, and whether it
is on the Pareto front of frames/s against LUT4 (L) and block RAM (B).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def _f(v, digits: int = 0) -> str:
    return "-" if v is None else f"{v:,.{digits}f}"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("sweeps", type=Path, nargs="+")
    args = p.parse_args(argv)
    docs = [(d, json.loads((d / "explore.json").read_text())) for d in args.sweeps]
    print("| sweep | cluster | points run | skipped | wall time (s) | mean point time (s) |")
    print("|---|---|---:|---:|---:|---:|")
    for d, doc in docs:
        ran = [r for r in doc["points"] if r["point_s"] is not None]
        mean = sum(r["point_s"] for r in ran) / len(ran) if ran else None
        print(f"| {d.name} | {doc['cluster']} | {doc['points_run']} | {doc['points_skipped']} | "
              f"{_f(doc['wall_s'], 1)} | {_f(mean, 1)} |")
    for d, doc in docs:
        print(f"\n{d.name}: {doc['model']} on {doc['target']}\n")
        print("| point | cycles/frame | LUT4 | FF | EBR | Fmax (MHz) | frames/s at Fmax | frames/s per 1k LUT4 "
              "| point time (s) | Pareto |")
        print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---|")
        for r in doc["points"]:
            front = "".join(tag for tag, cost in (("L", "lut4"), ("B", "ebr")) if r["point"] in doc["pareto"][cost])
            status = "" if r["status"] == "ok" else f" ({r['status']})"
            print(f"| {r['point']}{status} | {_f(r['cycles_per_frame'])} | {_f(r['lut4'])} | {_f(r['ff'])} | "
                  f"{_f(r['ebr'])} | {_f(r['fmax_mhz'], 2)} | {_f(r['frames_per_second'])} | "
                  f"{_f(r['fps_per_klut4'], 1)} | {_f(r['point_s'], 1)} | {front or '-'} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
