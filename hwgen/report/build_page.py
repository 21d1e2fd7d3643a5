"""``report.html`` of a build folder: what was built, how fast, how big, and whether it is bit-exact.

Sections (each from one JSON report, :mod:`hwgen.report.sources`):

* the folding (``report.json``): cycles per frame per stage as a bar chart, the
  bottleneck in red (the input stream and the score unit are stages too),
  and the per-layer table (PE, SIMD, cycles, memory, LUT4 and block RAM estimates);
* memory per layer (weights, thresholds, buffers) against the device's block RAM;
* after ``hwgen synth`` (``synth_report.json``): resources used against the
  device, Fmax against the requested clock, the critical paths, frames/s at Fmax;
* after ``hwgen sim`` (``sim_report.json``): images agreeing with the golden
  model, mismatches, measured cycles per frame and latency against the estimate.

The page is static (no script, no network): charts are inline SVG from
:mod:`hwgen.report.charts`. Numbers a test or a person may want to find carry
``data-field`` attributes with their JSON key.
"""

from __future__ import annotations

from pathlib import Path

from markupsafe import Markup

from hwgen.hw.folding import INPUT_STAGE, SCORE_STAGE
from hwgen.hw.report import budget_bits
from hwgen.report.charts import bar_chart, resource_chart, stacked_bar_chart
from hwgen.report.html import write_page
from hwgen.report.sources import BuildReports, read_build_reports

__all__ = ["REPORT_HTML", "build_page_context", "write_build_report"]

REPORT_HTML = "report.html"


def _cycles_chart(build: dict) -> Markup:
    stages = [(INPUT_STAGE, build["input_cycles"])] + [(r["name"], r["cycles"]) for r in build["layers"]
                                                        if r["cycles"] is not None]
    if "score_cycles" in build:  # builds before the score unit was a stage lack it
        stages.append((SCORE_STAGE, build["score_cycles"]))
    bottleneck = build["summary"]["bottleneck"]
    return Markup(bar_chart([s[0] for s in stages], [s[1] for s in stages], ylabel="cycles per frame",
                            title=f"Cycles per frame per stage (bottleneck: {bottleneck})", highlight=bottleneck,
                            highlight_note="bottleneck"))


def _memory_chart(build: dict) -> Markup:
    layers = build["layers"]
    kbit = {name: [r[f"{key}_bits"] / 1024 for r in layers]
            for name, key in (("weights", "weights"), ("thresholds", "thresholds"), ("buffers", "buffers"))}
    return Markup(stacked_bar_chart([r["name"] for r in layers], kbit, ylabel="Kibit",
                                    title="On-chip memory per layer"))


def _memory_totals(build: dict) -> list[dict]:
    mem, target = build["memory"], build["target"]
    stored = budget_bits(mem)
    return [{"name": "weights + thresholds (bits)", "field": "memory_bits", "used": stored,
             "available": mem["target_bram_bits"]},
            {"name": "block RAMs (estimate)", "field": "bram_blocks_estimate", "used": build["bram_blocks_estimate"],
             "available": target["bram_blocks"]},
            {"name": "LUT4 (estimate)", "field": "lut4_estimate", "used": build["lut4_estimate"],
             "available": target["lut4"]}]


def _synth_section(synth: dict) -> dict:
    res = [{"name": name, **r} for name, r in synth["resources"].items()]
    chart = resource_chart([r["name"] for r in res], [r["used"] for r in res], [r["available"] for r in res],
                           title=f"Resources on {synth['target']['part']} after place and route")
    paths = synth["critical_paths"]
    return {"resources": res, "chart": Markup(chart), "clocks": synth["clocks"], "paths": paths,
            "fmax_mhz": synth["fmax_mhz"], "freq_mhz": synth["freq_mhz"], "timing_met": synth["timing_met"],
            "seed": synth["seed"], "frames_per_second": synth["frames_per_second"],
            "cycles_per_frame": synth["cycles_per_frame"], "stages": synth["stages"],
            "target": synth["target"], "bitstream": synth["bitstream"]}


def build_page_context(reports: BuildReports) -> dict:
    """The template context of ``report.html`` (see the module docstring)."""
    b = reports.build
    return {
        "build": b, "folder": reports.folder.name, "summary": b["summary"],
        "cycles_chart": _cycles_chart(b), "memory_chart": _memory_chart(b), "memory_totals": _memory_totals(b),
        "synth": _synth_section(reports.synth) if reports.synth else None, "synth_stale": reports.synth_stale,
        "sim": reports.sim, "sim_stale": reports.sim_stale,
    }


def write_build_report(folder: Path | str, output: Path | str | None = None) -> Path:
    """Write ``report.html`` (or ``output``) for the build folder ``folder``; its path."""
    reports = read_build_reports(folder)
    return write_page(Path(output) if output else Path(folder) / REPORT_HTML, "report.html.j2",
                      build_page_context(reports))
