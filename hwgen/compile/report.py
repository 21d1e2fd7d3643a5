"""Per-layer cost table of a compiled network (printed by ``hwgen compile``), and the summary of a
float reference checked against the golden model (``compile --verify``, ``import --verify``).

For a ConvLayer: MACs per frame = C_out * H_out * W_out * fan_in; weight bits =
C_out * fan_in * weight_bits; thresholds = one per channel or one per output
position, each ``threshold width`` bits (two's complement, covering the values
used, which lie within the accumulator range widened by one for constants);
accumulator width from :func:`~hwgen.compile.ir.accumulator_range`. A residual join: two thresholds
per channel (or position), no MACs; the conv whose accumulator it reads has no thresholds. Each row
is written by the node's kind (:mod:`hwgen.compile.kinds`).
"""

from __future__ import annotations

from typing import Any


from hwgen.compile.ir import Network
from hwgen.compile.kinds import kind_of


def layer_rows(net: Network) -> list[dict[str, Any]]:
    """One row per node (its kind's :meth:`~hwgen.compile.kinds.NodeKind.report_row`), in the topological
    order; a one-input node that does not read the previous one says what it reads in its note (a join's
    row names both its inputs)."""
    rows = []
    for layer in net.layers:
        kind = kind_of(layer)
        row = kind.report_row(layer)
        if layer.inputs and kind.arity == 1:
            row["note"] = f"reads {', '.join(layer.inputs)}; {row['note']}"
        rows.append(row)
    return rows


def format_table(rows: list[dict[str, Any]]) -> str:
    header = ["layer", "type", "in", "out", "MACs", "weight bits", "thresholds", "thr bits", "acc bits", "note"]
    body = [[r["layer"], r["type"], "x".join(map(str, r["in"])), "x".join(map(str, r["out"])), f"{r['macs']:,}",
             f"{r['weight_bits']:,}", f"{r['thresholds']:,}" + (f" x {r['threshold_width']}" if r["thresholds"] else ""),
             f"{r['threshold_bits']:,}", str(r["acc_width"] or ""), r["note"]] for r in rows]
    total = ["total", "", "", "", f"{sum(r['macs'] for r in rows):,}", f"{sum(r['weight_bits'] for r in rows):,}",
             f"{sum(r['thresholds'] for r in rows):,}", f"{sum(r['threshold_bits'] for r in rows):,}", "", ""]
    table = [header, *body, total]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip() for row in table]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def format_agreement(result: Any, *, reference: str, reference_correct: int, dataset: str) -> str:
    """The verification summary of ``result`` (an :class:`~hwgen.compile.verify.Agreement` or
    :class:`~hwgen.interop.reference.ExecutorAgreement`: ``images``, ``same_prediction``, ``float_ties``,
    ``mismatches``, ``golden_correct``) and its first ten ties and mismatches.

    Images identical in every layer = images - ties - mismatches (an image with a difference is one or the other).
    """
    ties, mismatches, n = result.float_ties, result.mismatches, result.images
    lines = [f"{reference} vs golden model on {n} {dataset} test images: {result.same_prediction} same top-1, "
             f"{n - len(ties) - len(mismatches)} identical in every layer, {len(ties)} with a float tie "
             f"({sum(not t['same_prediction'] for t in ties)} changing top-1), {len(mismatches)} mismatches; "
             f"accuracy {reference} {100 * reference_correct / n:.2f}% golden {100 * result.golden_correct / n:.2f}%"]
    lines += [f"  tie: image {item['image']} at {item['layer']}: {item}" for item in ties[:10]]
    lines += [f"  MISMATCH: image {item['image']} at {item['layer']}: {item}" for item in mismatches[:10]]
    return "\n".join(lines)
