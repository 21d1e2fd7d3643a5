"""A sweep's results: ``explore.json``, ``explore.csv``, the Pareto fronts and the best point per criterion.

Pareto front of frames/s against a cost (LUT4, block RAM): the points that no
other point beats, i.e. none has a cost <= and frames/s >= with one of the
two strictly better. Only points that synthesised (``status`` ok) take part.

Best point per criterion (ties: more frames/s, then the earlier point):
most frames/s, most frames/s per 1,000 LUT4, fewest LUT4, fewest block RAMs,
highest Fmax; each with the commands that rebuild it
(:func:`rebuild_command`).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

from hwgen.explore.tasks import FIELDS

__all__ = ["CRITERIA", "EXPLORE_CSV", "EXPLORE_JSON", "best_points", "pareto_front", "rebuild_command",
           "write_results"]

EXPLORE_JSON = "explore.json"
EXPLORE_CSV = "explore.csv"

#: (name, field, +1 to maximise / -1 to minimise)
CRITERIA = (("most frames/s", "frames_per_second", 1), ("most frames/s per 1k LUT4", "fps_per_klut4", 1),
            ("fewest LUT4", "lut4", -1), ("fewest block RAMs", "ebr", -1), ("highest Fmax", "fmax_mhz", 1))


def _ok(rows: list[dict]) -> list[dict]:
    return [r for r in rows if r["status"] == "ok" and r["frames_per_second"] is not None]


def pareto_front(rows: list[dict], cost: str, value: str = "frames_per_second") -> list[dict]:
    """The rows (status ok) that no other ok row dominates: lower-or-equal ``cost`` and higher-or-equal
    ``value``, one of them strictly; in order of increasing ``cost``."""
    ok = _ok(rows)
    front = [r for r in ok if not any(o[cost] <= r[cost] and o[value] >= r[value]
                                      and (o[cost] < r[cost] or o[value] > r[value]) for o in ok)]
    return sorted(front, key=lambda r: (r[cost], -r[value]))


def best_points(rows: list[dict]) -> list[tuple[str, dict]]:
    """(criterion, row) for every criterion of :data:`CRITERIA` that some ok row has a value for."""
    ok = _ok(rows)
    out = []
    for name, field, sign in CRITERIA:
        candidates = [(i, r) for i, r in enumerate(ok) if r[field] is not None]
        if candidates:
            _, best = max(candidates, key=lambda ir: (sign * ir[1][field], ir[1]["frames_per_second"], -ir[0]))
            out.append((name, best))
    return out


def rebuild_command(row: dict, *, model: str, target: str) -> str:
    """The hwgen commands that rebuild and synthesise the point ``row`` into ``build/<point>``."""
    folder = f"build/{row['point']}"
    return (f"hwgen build {model} {row['folding']} --target {target} --clock {row['build_clock_mhz']:g} "
            f"-o {folder} && hwgen synth {folder} --target {target} --clock {row['freq_mhz']:g} --seed {row['seed']}")


def write_results(out_dir: Path, rows: list[dict], meta: dict) -> dict:
    """Write ``explore.json`` (``meta``, the points, the Pareto fronts and the best points) and
    ``explore.csv`` (one line per point, :data:`FIELDS`); the JSON document."""
    out_dir = Path(out_dir)
    model, target = meta["model"], meta["target"]
    doc = {
        "format": "hwgen-explore", "version": 1, **meta,
        "points": rows,
        "pareto": {cost: [r["point"] for r in pareto_front(rows, cost)] for cost in ("lut4", "ebr")},
        "best": [{"criterion": name, "field": next(f for n, f, _ in CRITERIA if n == name), "point": r["point"],
                  "command": rebuild_command(r, model=model, target=target)} for name, r in best_points(rows)],
    }
    tmp = out_dir / f".{EXPLORE_JSON}.tmp"
    tmp.write_text(json.dumps(doc, indent=1) + "\n")
    tmp.replace(out_dir / EXPLORE_JSON)
    with open(out_dir / EXPLORE_CSV, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=FIELDS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    return doc
