"""Threshold outputs, shared by the kinds that compare an accumulator (conv, residual join).

A :class:`~hwgen.compile.ir.ThresholdOutput` gives bits ``acc >= T``
(direction +1) or ``acc <= T`` (direction -1), per channel (C,) or per
position (C, H, W):

* :func:`apply_threshold` (NCHW) and :func:`threshold_last` (channel-last) evaluate it;
* :func:`flipped` negates some channels (``-acc >= -T`` exactly when
  ``acc <= T``), for the flip pass (:mod:`hwgen.compile.fold`);
  :func:`all_negative` says which channels compare only with ``<=``;
* :func:`threshold_fields` is its part of a row of the cost table
  (:mod:`hwgen.compile.report`): count, two's-complement width of the values used, bits.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from hwgen.compile.ir import ThresholdOutput, signed_bits
from hwgen.errors import CompileError

__all__ = ["all_negative", "apply_threshold", "flipped", "per_output", "threshold_fields", "threshold_last"]


def apply_threshold(acc: np.ndarray, out: ThresholdOutput) -> np.ndarray:
    """Bits of a threshold layer: uint8 (N, C, H, W) in {0, 1}.

    ``bit = acc >= T`` where ``direction == +1`` and ``acc <= T`` where
    ``direction == -1``; ``T`` and ``direction`` are per channel (C,) or per
    position (C, H, W). ``acc``: integer (N, C, H, W).
    """
    acc = np.asarray(acc)
    if acc.ndim != 4:
        raise ValueError(f"accumulator must be (N, C, H, W), got {acc.shape}")
    bits = threshold_last(acc.transpose(0, 2, 3, 1), out)
    return np.ascontiguousarray(bits.transpose(0, 3, 1, 2))


def threshold_last(acc: np.ndarray, out: ThresholdOutput) -> np.ndarray:
    """Channel-last :func:`apply_threshold`: acc (N, H, W, C) -> uint8 bits (N, H, W, C).

    Computed as ``(acc >= T') XOR neg`` with ``neg = (direction == -1)`` and
    ``T' = T + neg``: for integers, ``acc <= T`` is ``NOT (acc >= T + 1)``.
    """
    t = np.asarray(out.thresholds)
    d = np.asarray(out.direction)
    c = acc.shape[-1]
    if t.shape != d.shape:
        raise CompileError(f"thresholds {t.shape} and direction {d.shape} differ in shape")
    if not np.all((d == 1) | (d == -1)):
        raise CompileError("threshold direction must be +1 or -1")
    if t.shape == (c,):
        pass
    elif t.ndim == 3 and t.shape == (c, *acc.shape[1:3]):
        t, d = t.transpose(1, 2, 0), d.transpose(1, 2, 0)
    else:
        raise CompileError(f"thresholds {t.shape} do not fit accumulator channels {c}, "
                           f"spatial {acc.shape[1:3]}")
    if not np.issubdtype(acc.dtype, np.signedinteger):
        acc = acc.astype(np.int64)
    neg = d == -1
    t1 = np.clip(t.astype(np.int64), -(1 << 62), 1 << 62) + neg
    info = np.iinfo(acc.dtype)
    if t1.size and info.min <= t1.min() and t1.max() <= info.max:
        t1 = t1.astype(acc.dtype)  # compare without widening acc
    return np.bitwise_xor(acc >= t1, neg).view(np.uint8)


def all_negative(direction: np.ndarray) -> np.ndarray:
    """bool (C,): the channels whose every comparison is ``<=``."""
    return np.all(direction.reshape(len(direction), -1) < 0, axis=1)


def per_output(channel_values: np.ndarray, like: np.ndarray) -> np.ndarray:
    """(C,) values broadcast to ``like``'s (C,) or (C, H, W) shape."""
    return channel_values.reshape((-1,) + (1,) * (like.ndim - 1))


def flipped(out: ThresholdOutput, sign: np.ndarray) -> ThresholdOutput:
    """``out`` with the channels where ``sign`` (C,) is -1 negated: thresholds and directions."""
    return ThresholdOutput(thresholds=out.thresholds * per_output(sign, out.thresholds),
                           direction=out.direction * per_output(sign, out.direction).astype(np.int8))


def threshold_fields(t: np.ndarray, per_position: bool) -> dict[str, Any]:
    """Cost-table fields of the thresholds ``t``: count, width (two's complement of [min, max]), bits, note."""
    width = signed_bits(int(t.min()), int(t.max()))
    return {"thresholds": int(t.size), "threshold_width": width, "threshold_bits": int(t.size) * width,
            "note": "per position" if per_position else "per channel"}
