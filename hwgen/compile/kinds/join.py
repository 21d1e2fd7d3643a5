"""The residual join kind (:class:`~hwgen.compile.ir.JoinLayer`): golden arithmetic, checks, file entry, flips, cost row.

``inputs = (main, shortcut)``: the accumulator ``acc`` (C, H, W) of a conv
with an :class:`~hwgen.compile.ir.AccumulatorOutput` and shortcut bits ``s``
of the same shape (docs/residual.md). Output bit (:func:`join_bits`)::

    bit = acc >= T[s]   (direction +1)        bit = acc <= T[s]   (direction -1)

``thresholds`` (2, C) or (2, C, H, W), row 0 for ``s = 0`` (value -1), row 1
for ``s = 1`` (value +1); ``direction`` (C,) or (C, H, W), shared by both
rows. Flipping a channel negates the main conv's weights and both rows. In a
``.hwir`` file (version 3): ``inputs``, and the arrays ``NAME/thresholds`` and
``NAME/direction``.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from hwgen.compile.ir import JoinLayer
from hwgen.compile.kinds.base import FloatModules, Keep, NodeKind
from hwgen.compile.kinds.thresholds import flipped, threshold_fields, threshold_last
from hwgen.errors import CompileError

__all__ = ["JoinKind", "join_bits"]


def join_bits(acc: np.ndarray, shortcut: np.ndarray, layer: JoinLayer) -> np.ndarray:
    """Bits of a residual join: uint8 (N, C, H, W), ``acc >= T[s]`` (or ``<=``) with ``s`` the shortcut bit.

    ``acc``: integer (N, C, H, W) of the main branch's conv; ``shortcut``:
    {0, 1} bits of the same shape. Row ``s`` of ``layer.thresholds`` applies
    where the shortcut bit is ``s`` (:meth:`~hwgen.compile.ir.JoinLayer.row`).
    """
    acc, shortcut = np.asarray(acc), np.asarray(shortcut)
    if acc.ndim != 4 or acc.shape != shortcut.shape or tuple(acc.shape[1:]) != tuple(layer.in_shape):
        raise ValueError(f"join {layer.name!r} expects accumulator and shortcut (N, "
                         f"{', '.join(map(str, layer.in_shape))}), got {acc.shape} and {shortcut.shape}")
    _check_join(layer)
    out = _join_last(acc.transpose(0, 2, 3, 1), shortcut.transpose(0, 2, 3, 1).astype(np.uint8), layer)
    return np.ascontiguousarray(out.transpose(0, 3, 1, 2))


def _check_join(layer: JoinLayer) -> None:
    c = layer.in_shape[0]
    d, t = np.asarray(layer.direction), np.asarray(layer.thresholds)
    if d.shape not in ((c,), tuple(layer.in_shape)) or t.shape != (2, *d.shape):
        raise CompileError(f"join {layer.name!r}: thresholds {t.shape} / direction {d.shape} must be (2, C) / "
                           f"(C,) or (2, C, H, W) / (C, H, W) for its input {tuple(layer.in_shape)}")


def _join_last(acc: np.ndarray, shortcut: np.ndarray, layer: JoinLayer) -> np.ndarray:
    """Channel-last :func:`join_bits`: acc and shortcut bits (N, H, W, C) -> uint8 bits (N, H, W, C)."""
    return np.where(shortcut.astype(bool), threshold_last(acc, layer.row(1)),
                    threshold_last(acc, layer.row(0))).astype(np.uint8)


class JoinKind(NodeKind):
    """Residual join: a conv's accumulator and shortcut bits in, bits out; never the last node."""

    node_type = JoinLayer
    type_name = "join"
    arity = 2

    def check(self, node: JoinLayer, kinds: list[str], last: bool) -> None:
        _check_join(node)
        if kinds != ["acc", "binary"] or last:
            raise CompileError(f"join {node.name!r} must read a conv's accumulator and shortcut bits (it reads "
                               f"{' and '.join(kinds)}) and precede another layer")

    def produces(self, node: JoinLayer) -> str:
        return "binary"

    def evaluate(self, node: JoinLayer, args: list[np.ndarray], keep: Keep) -> np.ndarray:
        return _join_last(args[0], args[1], node)

    def write(self, node: JoinLayer, arrays: dict[str, np.ndarray]) -> dict[str, Any]:
        arrays[f"{node.name}/thresholds"] = node.thresholds.astype(np.int64)
        arrays[f"{node.name}/direction"] = node.direction.astype(np.int8)
        return {"type": self.type_name, "name": node.name, "in_shape": list(node.in_shape), "source": node.source}

    def read(self, entry: dict[str, Any], arrays: dict[str, np.ndarray]) -> JoinLayer:
        n = entry["name"]
        return JoinLayer(name=n, in_shape=tuple(entry["in_shape"]), thresholds=arrays[f"{n}/thresholds"],
                         direction=arrays[f"{n}/direction"], inputs=tuple(entry["inputs"]),
                         source=entry.get("source", []))

    def compared_accumulator(self, node: JoinLayer) -> tuple[str, np.ndarray] | None:
        return node.inputs[0], node.direction

    def flip(self, node: JoinLayer, flips: dict[str, np.ndarray]) -> JoinLayer:
        main = node.inputs[0]
        if main not in flips or not flips[main].any():
            return node
        sign = np.where(flips[main], -1, 1)
        rows = [flipped(node.row(s), sign) for s in (0, 1)]
        return replace(node, thresholds=np.stack([r.thresholds for r in rows]), direction=rows[0].direction)

    def report_row(self, node: JoinLayer) -> dict[str, Any]:
        main, shortcut = node.inputs
        row = {"layer": node.name, "type": "join (threshold pair)", "in": node.in_shape, "out": node.out_shape,
               "macs": 0, "weight_bits": 0, "acc_width": 0, **threshold_fields(node.thresholds, node.per_position)}
        row["note"] = f"acc of {main}, shortcut bits of {shortcut}; 2 thresholds {row['note']}"
        return row

    def float_output(self, node: JoinLayer, modules: FloatModules) -> tuple[str, str, str] | None:
        """The join's u is the output of the float residual module of the same name."""
        return node.name, node.name, modules.first_batchnorm(node.source)
