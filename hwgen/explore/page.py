"""``explore.html``: a sweep's Pareto fronts, its best points and the table of every point.

Two charts (frames/s at Fmax against LUT4, and against block RAMs), points
coloured by placer seed and labelled by folding, the Pareto front as a dashed
step line; the best point per criterion with the command that rebuilds it;
one table row per point (failed ones with their error). Made from the
explore.json document (:func:`hwgen.explore.results.write_results`).
"""

from __future__ import annotations

from pathlib import Path

from markupsafe import Markup

from hwgen.explore.results import pareto_front
from hwgen.report.charts import pareto_chart
from hwgen.report.html import write_page

__all__ = ["EXPLORE_HTML", "explore_page_context", "write_explore_page"]

EXPLORE_HTML = "explore.html"


def _chart(ok: list[dict], cost: str, label: str, target: str) -> Markup | None:
    if not ok:
        return None
    points = [{**r, "label": r["folding"].replace("--", "").replace(" ", "")} for r in ok]
    front_names = {r["point"] for r in pareto_front(ok, cost)}
    return Markup(pareto_chart(points, x=cost, xlabel=f"{label} (after place and route)", y="frames_per_second",
                               ylabel="frames/s at Fmax", colour_by="seed",
                               front=[p for p in points if p["point"] in front_names], label="label",
                               title=f"frames/s against {label} on {target}"))


def explore_page_context(doc: dict) -> dict:
    """The template context of explore.html from the explore.json document ``doc``."""
    rows = doc["points"]
    ok = [r for r in rows if r["status"] == "ok" and r["frames_per_second"] is not None]
    pareto = {name for names in doc["pareto"].values() for name in names}
    return {"doc": doc, "rows": rows, "pareto": pareto, "best": doc["best"],
            "lut_chart": _chart(ok, "lut4", "LUT4", doc["target"]),
            "ebr_chart": _chart(ok, "ebr", "block RAMs", doc["target"]),
            "counts": {s: sum(r["status"] == s for r in rows) for s in ("ok", "failed", "pending")}}


def write_explore_page(out_dir: Path | str, doc: dict) -> Path:
    """Write ``out_dir/explore.html`` from the explore.json document ``doc``; its path."""
    return write_page(Path(out_dir) / EXPLORE_HTML, "explore.html.j2", explore_page_context(doc))
