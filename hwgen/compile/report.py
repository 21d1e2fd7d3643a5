"""Per-layer cost table of a compiled network (printed by ``hwgen compile``), and the summary of a
float reference checked against the golden model (``compile --verify``, ``import --verify``).

For a ConvLayer: MACs per frame = C_out * H_out * W_out * fan_in; weight bits =
C_out * fan_in * weight_bits; thresholds = one per channel or one per output
position, each ``threshold width`` bits (two's complement, covering the values
used, which lie within the accumulator range widened by one for constants);
accumulator width from :func:`~hwgen.compile.ir.accumulator_range`. A residual join: two thresholds
per channel (or position), no MACs; the conv whose accumulator it reads has no thresholds.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from hwgen.compile.ir import (
    AccumulatorOutput,
    ConvLayer,
    JoinLayer,
    MaxPoolLayer,
    Network,
    ThresholdOutput,
    accumulator_range,
    signed_bits,
)


def _pool_row(layer: MaxPoolLayer) -> dict[str, Any]:
    n_and = int(np.count_nonzero(layer.use_and))
    stride = "" if layer.stride == layer.kernel else f" stride {layer.stride}"
    return {"layer": layer.name, "type": f"maxpool {layer.kernel}x{layer.kernel}{stride}",
            "in": layer.in_shape, "out": layer.out_shape, "macs": 0, "weight_bits": 0,
            "thresholds": 0, "threshold_width": 0, "threshold_bits": 0, "acc_width": 0,
            "note": f"OR {len(layer.use_and) - n_and} / AND {n_and} channels"}


def _threshold_fields(t: np.ndarray, per_position: bool) -> dict[str, Any]:
    width = signed_bits(int(t.min()), int(t.max()))
    return {"thresholds": int(t.size), "threshold_width": width, "threshold_bits": int(t.size) * width,
            "note": "per position" if per_position else "per channel"}


def _join_row(layer: JoinLayer) -> dict[str, Any]:
    main, shortcut = layer.inputs
    row = {"layer": layer.name, "type": "join (threshold pair)", "in": layer.in_shape, "out": layer.out_shape,
           "macs": 0, "weight_bits": 0, "acc_width": 0, **_threshold_fields(layer.thresholds, layer.per_position)}
    row["note"] = f"acc of {main}, shortcut bits of {shortcut}; 2 thresholds {row['note']}"
    return row


def _conv_row(layer: ConvLayer) -> dict[str, Any]:
    lo, hi = accumulator_range(layer)
    c, h, w = layer.out_shape
    row = {"layer": layer.name, "in": layer.in_shape, "out": layer.out_shape,
           "macs": c * h * w * layer.fan_in, "weight_bits": c * layer.fan_in * layer.weight_bits,
           "acc_width": signed_bits(lo, hi)}
    kind = f"{'conv' if layer.kernel != layer.in_shape[1:] or layer.padding else 'fc'} {layer.kernel[0]}x{layer.kernel[1]}"
    prec = f"W{layer.weight_bits}A{'1' if layer.input_kind == 'binary' else '8'}"
    if isinstance(layer.output, ThresholdOutput):
        row.update(type=f"{kind} {prec}", **_threshold_fields(layer.output.thresholds, layer.output.per_position))
    elif isinstance(layer.output, AccumulatorOutput):
        row.update(type=f"{kind} {prec} acc", thresholds=0, threshold_width=0, threshold_bits=0,
                   note="accumulator to its join")
    else:
        s, b = layer.output.scale, layer.output.bias
        row.update(type=f"{kind} {prec} scores", thresholds=0, threshold_width=0, threshold_bits=0,
                   note=f"score scale {signed_bits(int(s.min()), int(s.max()))} b, "
                        f"bias {signed_bits(int(b.min()), int(b.max()))} b")
    return row


_ROWS = {ConvLayer: _conv_row, MaxPoolLayer: _pool_row, JoinLayer: _join_row}


def layer_rows(net: Network) -> list[dict[str, Any]]:
    """One row per node, in the topological order; a node that does not read the previous one says what
    it reads in its note."""
    rows = []
    for i, layer in enumerate(net.layers):
        row = _ROWS[type(layer)](layer)
        if layer.inputs and not isinstance(layer, JoinLayer):
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
