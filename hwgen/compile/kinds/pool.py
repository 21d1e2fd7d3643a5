"""The max-pool kind (:class:`~hwgen.compile.ir.MaxPoolLayer`): golden arithmetic, checks, file entry, cost row.

Over bits, per channel: OR (``use_and[c] == False``) or AND (True) of each
``kernel x kernel`` window, step ``stride``, no padding (:func:`max_pool_bits`).
An AND channel is the pool that follows a BatchNorm of negative slope
(:func:`hwgen.compile.fold.pool_mode_from_batchnorm`). In a ``.hwir`` file:
``kernel``, ``stride`` and the array ``NAME/use_and`` (uint8 (C,)).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from hwgen.compile.ir import MaxPoolLayer
from hwgen.compile.kinds.base import Keep, NodeKind
from hwgen.errors import CompileError

__all__ = ["PoolKind", "max_pool_bits"]


def max_pool_bits(bits: np.ndarray, layer: MaxPoolLayer) -> np.ndarray:
    """Per-channel OR (``use_and[c] == False``) or AND (True) of each window.

    ``bits``: uint8 (N, C, H, W) in {0, 1}. Windows are ``kernel x kernel``,
    step ``stride``, no padding; trailing rows / columns that do not fill a
    window are dropped. Returns uint8 (N, C, (H-k)//s + 1, (W-k)//s + 1).
    """
    bits = np.asarray(bits)
    if bits.ndim != 4 or tuple(bits.shape[1:]) != tuple(layer.in_shape):
        raise ValueError(f"pool {layer.name!r} expects (N, {', '.join(map(str, layer.in_shape))}), "
                         f"got {bits.shape}")
    _check_pool(layer)
    out = _pool_last(bits.transpose(0, 2, 3, 1).astype(np.uint8, copy=False), layer)
    return np.ascontiguousarray(out.transpose(0, 3, 1, 2))


def _check_pool(layer: MaxPoolLayer) -> None:
    if layer.kernel < 1 or layer.stride < 1 or min(layer.out_shape[1:]) < 1:
        raise CompileError(f"pool {layer.name!r}: kernel {layer.kernel} / stride "
                           f"{layer.stride} do not fit {tuple(layer.in_shape)}")
    if np.shape(layer.use_and) != (layer.in_shape[0],):
        raise CompileError(f"pool {layer.name!r}: use_and must have shape ({layer.in_shape[0]},)")


def _pool_last(bits: np.ndarray, layer: MaxPoolLayer) -> np.ndarray:
    """Channel-last pooling (N, H, W, C) -> (N, Ho, Wo, C).

    OR over the window; an AND channel is pooled as ``NOT OR(NOT b)`` (De
    Morgan), by XOR-ing its bits with 1 before and after.
    """
    k, s = layer.kernel, layer.stride
    _, ho, wo = layer.out_shape
    flip = np.asarray(layer.use_and, dtype=bool).astype(np.uint8)
    x = bits ^ flip if flip.any() else bits
    hs, ws = (ho - 1) * s + 1, (wo - 1) * s + 1
    out = np.array(x[:, 0:hs:s, 0:ws:s])
    for a in range(k):
        for b in range(k):
            if a or b:
                np.maximum(out, x[:, a:a + hs:s, b:b + ws:s], out=out)
    if flip.any():
        out ^= flip
    return out


class PoolKind(NodeKind):
    """Max-pool of bits: one binary input, binary output; never the last node."""

    node_type = MaxPoolLayer
    type_name = "maxpool"
    arity = 1

    def check(self, node: MaxPoolLayer, kinds: list[str], last: bool) -> None:
        _check_pool(node)
        if kinds[0] != "binary" or last:
            raise CompileError(f"pool {node.name!r} must follow a threshold layer and precede another layer")

    def produces(self, node: MaxPoolLayer) -> str:
        return "binary"

    def evaluate(self, node: MaxPoolLayer, args: list[np.ndarray], keep: Keep) -> np.ndarray:
        return _pool_last(args[0], node)

    def write(self, node: MaxPoolLayer, arrays: dict[str, np.ndarray]) -> dict[str, Any]:
        arrays[f"{node.name}/use_and"] = node.use_and.astype(np.uint8)
        return {"type": self.type_name, "name": node.name, "in_shape": list(node.in_shape),
                "kernel": node.kernel, "stride": node.stride}

    def read(self, entry: dict[str, Any], arrays: dict[str, np.ndarray]) -> MaxPoolLayer:
        n = entry["name"]
        return MaxPoolLayer(name=n, in_shape=tuple(entry["in_shape"]), kernel=entry["kernel"],
                            stride=entry["stride"], use_and=arrays[f"{n}/use_and"].astype(bool),
                            inputs=tuple(entry.get("inputs", ())))

    def report_row(self, node: MaxPoolLayer) -> dict[str, Any]:
        n_and = int(np.count_nonzero(node.use_and))
        stride = "" if node.stride == node.kernel else f" stride {node.stride}"
        return {"layer": node.name, "type": f"maxpool {node.kernel}x{node.kernel}{stride}",
                "in": node.in_shape, "out": node.out_shape, "macs": 0, "weight_bits": 0,
                "thresholds": 0, "threshold_width": 0, "threshold_bits": 0, "acc_width": 0,
                "note": f"OR {len(node.use_and) - n_and} / AND {n_and} channels"}
