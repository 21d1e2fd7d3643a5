"""Charts for the HTML reports: matplotlib figures rendered to SVG text that a page inlines.

Every chart is drawn with matplotlib's object API (:class:`matplotlib.figure.Figure`,
no pyplot state, no GUI backend) and serialised by :func:`figure_svg`, with
text kept as ``<text>`` elements (``svg.fonttype: none``: the numbers on a chart
can be read and searched in the page) and a fixed hash salt and no date, so the
same data gives byte-identical SVG.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

import matplotlib
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

__all__ = ["BOTTLENECK_COLOUR", "bar_chart", "figure_svg", "pareto_chart", "resource_chart", "stacked_bar_chart"]

BOTTLENECK_COLOUR = "#d62728"
_BAR_COLOUR = "#1f77b4"
_THOUSANDS = FuncFormatter(lambda v, _: f"{v:,.0f}")
_RC = {"svg.fonttype": "none", "svg.hashsalt": "hwgen", "font.size": 9, "axes.spines.top": False,
       "axes.spines.right": False}


def figure_svg(fig: Figure) -> str:
    """``fig`` as an ``<svg class="chart">`` element (no XML prolog or DOCTYPE), at its own size."""
    buf = io.StringIO()
    with matplotlib.rc_context(_RC):
        fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": "hwgen (matplotlib)"},
                    bbox_inches="tight")
    text = buf.getvalue()
    text = text[text.index("<svg"):]
    return text.replace("<svg ", '<svg class="chart" ', 1) + "\n"


def _figure(width: float, height: float) -> Figure:
    with matplotlib.rc_context(_RC):
        return Figure(figsize=(width, height), layout="constrained")


def bar_chart(labels: Sequence[str], values: Sequence[float], *, ylabel: str, title: str,
              highlight: str | None = None, highlight_note: str = "") -> str:
    """Vertical bars, one per label, the value written above each; the ``highlight`` label's bar in red
    with ``highlight_note`` next to its value."""
    with matplotlib.rc_context(_RC):
        fig = _figure(max(4.0, 0.55 * len(labels) + 1.5), 3.2)
        ax = fig.add_subplot()
        colours = [BOTTLENECK_COLOUR if label == highlight else _BAR_COLOUR for label in labels]
        bars = ax.bar(range(len(labels)), values, color=colours)
        for bar, label, value in zip(bars, labels, values):
            note = f"{value:,.0f}" + (f"\n{highlight_note}" if label == highlight and highlight_note else "")
            ax.annotate(note, (bar.get_x() + bar.get_width() / 2, bar.get_height()), ha="center", va="bottom",
                        fontsize=7, xytext=(0, 2), textcoords="offset points")
        ax.set_xticks(range(len(labels)), labels, rotation=30 if len(labels) > 6 else 0, ha="right"
                      if len(labels) > 6 else "center")
        ax.set_ylabel(ylabel)
        ax.yaxis.set_major_formatter(_THOUSANDS)
        ax.set_title(title)
        ax.margins(y=0.2)
        return figure_svg(fig)


def stacked_bar_chart(labels: Sequence[str], series: dict[str, Sequence[float]], *, ylabel: str, title: str,
                      limit: float | None = None, limit_label: str = "") -> str:
    """Bars stacked from ``series`` (name: one value per label), with an optional horizontal ``limit`` line."""
    with matplotlib.rc_context(_RC):
        fig = _figure(max(4.0, 0.55 * len(labels) + 2.5), 3.2)
        ax = fig.add_subplot()
        bottom = [0.0] * len(labels)
        for name, values in series.items():
            ax.bar(range(len(labels)), values, bottom=bottom, label=name)
            bottom = [b + v for b, v in zip(bottom, values)]
        if limit is not None:
            ax.axhline(limit, color=BOTTLENECK_COLOUR, linestyle="--", linewidth=1, label=limit_label)
        ax.set_xticks(range(len(labels)), labels, rotation=30 if len(labels) > 6 else 0,
                      ha="right" if len(labels) > 6 else "center")
        ax.set_ylabel(ylabel)
        ax.set_title(title)
        ax.legend(fontsize=7, frameon=False)
        return figure_svg(fig)


def resource_chart(names: Sequence[str], used: Sequence[int], available: Sequence[int], *, title: str) -> str:
    """Horizontal bars of percent used per resource, each labelled ``used / available (p %)``; 100 % marked."""
    with matplotlib.rc_context(_RC):
        fig = _figure(6.0, 0.45 * len(names) + 1.0)
        ax = fig.add_subplot()
        pct = [100.0 * u / a if a else 0.0 for u, a in zip(used, available)]
        colours = [BOTTLENECK_COLOUR if p > 100 else _BAR_COLOUR for p in pct]
        ax.barh(range(len(names)), pct, color=colours)
        for i, (u, a, p) in enumerate(zip(used, available, pct)):
            ax.annotate(f"{u:,} / {a:,} ({p:.1f} %)", (p, i), va="center", fontsize=7, xytext=(3, 0),
                        textcoords="offset points")
        ax.axvline(100, color="grey", linestyle=":", linewidth=1)
        ax.set_yticks(range(len(names)), names)
        ax.invert_yaxis()
        ax.set_xlim(0, max(130.0, max(pct, default=0) * 1.3))
        ax.set_xlabel("% of the device")
        ax.set_title(title)
        return figure_svg(fig)


def pareto_chart(points: Sequence[dict], *, x: str, xlabel: str, y: str, ylabel: str, colour_by: str,
                 front: Sequence[dict], label: str, title: str) -> str:
    """Scatter of ``points`` (dicts) at (p[x], p[y]), one colour per distinct ``p[colour_by]`` (legend),
    each annotated with ``p[label]``; the ``front`` points joined by a step line (its Pareto front)."""
    with matplotlib.rc_context(_RC):
        fig = _figure(6.0, 3.8)
        ax = fig.add_subplot()
        groups = sorted({p[colour_by] for p in points})
        cmap = matplotlib.colormaps["tab10"]
        for i, group in enumerate(groups):
            members = [p for p in points if p[colour_by] == group]
            ax.scatter([p[x] for p in members], [p[y] for p in members], color=cmap(i % 10), s=28,
                       label=f"{colour_by} {group}", zorder=3)
        for p in points:
            ax.annotate(str(p[label]), (p[x], p[y]), fontsize=7, xytext=(4, 3), textcoords="offset points")
        if front:
            ordered = sorted(front, key=lambda p: p[x])
            ax.step([p[x] for p in ordered], [p[y] for p in ordered], where="post", color="grey",
                    linewidth=1, linestyle="--", label="Pareto front", zorder=2)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.yaxis.set_major_formatter(_THOUSANDS)
        ax.set_title(title)
        ax.grid(True, linewidth=0.3)
        ax.legend(fontsize=7, frameon=False)
        return figure_svg(fig)
