"""Folding passes: float stages -> integer IR layers (DESIGN.md section 2).

``fold_batchnorm_into_thresholds``
    For a stage whose output is binarized by the next layer, the bit of output
    element (c, h, w) is ``[a * acc + b >= 0]`` with ``a = bn_scale_c * slope``
    and ``b = bn_scale_c * offset + bn_shift_c``. That is ``acc >= ceil(-b/a)``
    for a > 0, ``acc <= floor(-b/a)`` for a < 0, and the constant ``[b >= 0]``
    for a = 0, written as a threshold just outside the accumulator range.
    Thresholds are computed in float64 and clamped to [lo, hi + 1] (>=) or
    [lo - 1, hi] (<=), where [lo, hi] is the accumulator range.
``pool_mode_from_batchnorm``
    Max-pool sits between the layer and its BatchNorm: sign(BN(max z)) is the
    OR of the window's bits when the BN slope is positive (BN increasing) and
    the AND when it is negative. It depends on the BN slope alone, not on the
    whole slope a (a learned scale may be negative). A pool after the sign
    (QONNX graphs) carries its own choice (``FloatStage.pool_use_and``).
``quantize_scores``
    The last stage gives real scores ``u_c = a_c * acc_c + b_c``; the IR keeps
    ``round(2^f a_c) * acc_c + round(2^f b_c)`` with the largest f such that
    ``max |a_c| * 2^f`` is at most about 2^SCORE_BITS and every score over the
    accumulator range fits a signed SCORE_WORD_BITS integer (the
    accelerator's output word). With acc up to 2^9 that leaves about 2^21 of
    slope resolution: a rounding error near float32 resolution, so only
    (near-)float ties can change the argmax (see docs/compiler.md).
``fold_join_into_threshold_pairs``
    A residual join ``y = u + g_c * s`` (s = +-1 the shortcut bit's value,
    ``u = a * acc + b`` the main branch's stage) gives the bit
    ``[a * acc + b + g_c * s >= 0]``: for each value of s it is the threshold
    of the affine map ``(a, b + g_c * s)``, so the join keeps two thresholds
    per channel (or position), row 0 for s = -1 and row 1 for s = +1, with
    the direction of a shared by both. The main branch's conv passes its
    accumulator on (``AccumulatorOutput``).
``flip_negative_channels`` (IR -> IR)
    A channel whose comparisons are all ``<=`` gets its weights negated and its
    thresholds negated; then every comparison is ``>=``. The output bits are
    unchanged: -acc >= -T exactly when acc <= T. For a join, the weights
    negated are those of the conv whose accumulator it reads, and both
    threshold rows are negated.
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np

from hwgen.compile.ir import (
    AccumulatorOutput,
    ConvLayer,
    JoinLayer,
    Layer,
    MaxPoolLayer,
    Network,
    ScoreOutput,
    ThresholdOutput,
    accumulator_range,
)
from hwgen.compile.kinds import kind_of
from hwgen.compile.kinds.thresholds import all_negative, per_output
from hwgen.compile.stages import FloatJoin, FloatPool, FloatStage
from hwgen.errors import CompileError

SCORE_BITS = 30
#: Every class score fits a signed integer of this many bits (one AXI4-Stream word of the accelerator).
SCORE_WORD_BITS = 32


def stage_affine(stage: FloatStage) -> tuple[np.ndarray, np.ndarray]:
    """(a, b) with the pre-sign value ``u = a * acc + b`` per output element (pool aside)."""
    a = per_output(stage.bn_scale, stage.slope) * stage.slope
    b = per_output(stage.bn_scale, stage.offset) * stage.offset + per_output(stage.bn_shift, stage.offset)
    a, b = np.broadcast_arrays(a, b)
    return np.array(a), np.array(b)


def affine_sign_to_thresholds(a: np.ndarray, b: np.ndarray, lo: int, hi: int) -> ThresholdOutput:
    """Thresholds and directions with ``bit = [a * acc + b >= 0]`` for every integer acc in [lo, hi]."""
    with np.errstate(divide="ignore", invalid="ignore"):
        real = -b / a
    pos, neg = a > 0, a < 0
    t = np.where(pos, np.ceil(real), np.where(neg, np.floor(real), 0.0))
    t = np.where(pos, np.clip(t, lo, hi + 1), np.where(neg, np.clip(t, lo - 1, hi), t))
    zero = ~(pos | neg)
    t = np.where(zero & (b >= 0), lo, np.where(zero, hi + 1, t))
    direction = np.where(neg, -1, 1).astype(np.int8)
    return ThresholdOutput(thresholds=t.astype(np.int64), direction=direction)


def quantize_scores(a: np.ndarray, b: np.ndarray, acc_range: tuple[int, int]) -> ScoreOutput:
    """Integer (scale, bias) approximating u = a * acc + b, scores within SCORE_WORD_BITS for acc in ``acc_range``."""
    peak = float(np.max(np.abs(a)))
    if peak == 0:
        raise CompileError("the last layer's output does not depend on its input (all slopes are zero)")
    acc_peak = max(abs(acc_range[0]), abs(acc_range[1]))
    limit = (1 << (SCORE_WORD_BITS - 1)) - 1
    shift = SCORE_BITS - math.ceil(math.log2(peak))
    while True:
        scale = np.round(np.ldexp(a, shift)).astype(np.int64)
        bias = np.round(np.ldexp(b, shift)).astype(np.int64)
        if int(np.max(np.abs(scale) * acc_peak + np.abs(bias))) <= limit:
            return ScoreOutput(scale=scale, bias=bias)
        if not np.any(scale):
            raise CompileError(f"the last layer's scores cannot fit {SCORE_WORD_BITS} bits: the bias is more "
                               f"than 2^{SCORE_WORD_BITS - 1} times the largest slope")
        shift -= 1


def _conv(stage: FloatStage, output) -> ConvLayer:
    return ConvLayer(name=stage.name, in_shape=stage.in_shape, weights=stage.weights, weight_bits=stage.weight_bits,
                     stride=stage.stride, padding=stage.padding, input_kind=stage.input_kind, output=output,
                     input_offset=stage.input_offset, input_table=stage.input_table,
                     source=[n for n in (stage.name, stage.pool_name, stage.bn_name) if n],
                     inputs=(stage.input,) if stage.input else ())


def fold_batchnorm_into_thresholds(stage: FloatStage) -> list[Layer]:
    """A binarized stage -> [ConvLayer with thresholds, (MaxPoolLayer)]."""
    a, b = stage_affine(stage)
    probe = _conv(stage, ThresholdOutput(np.zeros(1, np.int64), np.ones(1, np.int8)))
    lo, hi = accumulator_range(probe)
    if a.ndim == 3 and a.shape[1:] != probe.out_shape[1:]:
        raise CompileError(f"layer {stage.name!r}: per-position scale shape {a.shape} does not match the output "
                           f"{probe.out_shape}")
    conv = replace(probe, output=affine_sign_to_thresholds(a, b, lo, hi))
    if stage.pool is None:
        return [conv]
    kernel, stride = stage.pool
    use_and = pool_mode_from_batchnorm(stage.bn_scale) if stage.pool_use_and is None else stage.pool_use_and
    return [conv, MaxPoolLayer(name=stage.pool_name, in_shape=conv.out_shape, kernel=kernel, stride=stride,
                               use_and=np.asarray(use_and, dtype=bool),
                               inputs=(stage.name,) if stage.input else ())]


def fold_join_into_threshold_pairs(join: FloatJoin) -> list[Layer]:
    """A residual join -> [the main branch's ConvLayer with an AccumulatorOutput, JoinLayer]."""
    stage = join.main
    a, b = stage_affine(stage)
    conv = _conv(stage, AccumulatorOutput())
    if a.ndim == 3 and a.shape[1:] != conv.out_shape[1:]:
        raise CompileError(f"layer {stage.name!r}: per-position scale shape {a.shape} does not match the output "
                           f"{conv.out_shape}")
    lo, hi = accumulator_range(conv)
    g = per_output(np.asarray(join.scale, dtype=np.float64), b)
    rows = [affine_sign_to_thresholds(a, b + g * s, lo, hi) for s in (-1.0, 1.0)]
    assert np.array_equal(rows[0].direction, rows[1].direction)  # the direction is that of a alone
    return [conv, JoinLayer(name=join.name, in_shape=conv.out_shape,
                            thresholds=np.stack([r.thresholds for r in rows]), direction=rows[0].direction,
                            inputs=(stage.name, join.shortcut),
                            source=[n for n in (stage.bn_name, join.name) if n])]


def fold_pool_of_bits(pool: FloatPool) -> MaxPoolLayer:
    """A max-pool of a complete value -> the OR pool of its bits (sign(max y) = max sign(y))."""
    return MaxPoolLayer(name=pool.name, in_shape=pool.in_shape, kernel=pool.kernel, stride=pool.stride,
                        use_and=np.zeros(pool.in_shape[0], dtype=bool), inputs=(pool.input,))


def pool_mode_from_batchnorm(bn_scale: np.ndarray) -> np.ndarray:
    """use_and[c]: True where the BatchNorm after the pool is decreasing (negative slope)."""
    return np.asarray(bn_scale < 0)


def fold_last_stage_into_scores(stage: FloatStage) -> ConvLayer:
    """The last stage -> ConvLayer with integer class scores."""
    if stage.pool is not None:
        raise CompileError(f"layer {stage.name!r}: a max-pool on the class scores is not supported")
    conv = _conv(stage, None)
    if conv.out_shape[1:] != (1, 1):
        raise CompileError(f"the last layer {stage.name!r} must produce one score per class, "
                           f"not a {conv.out_shape} map")
    a, b = stage_affine(stage)
    conv.output = quantize_scores(a.reshape(-1), b.reshape(-1), accumulator_range(conv))
    return conv


def flip_negative_channels(net: Network) -> Network:
    """Negate the weights and thresholds of channels whose comparisons are all ``<=``.

    Each node's kind says which conv's accumulator its thresholds compare
    (:meth:`~hwgen.compile.kinds.NodeKind.compared_accumulator`) and applies the flips to itself
    (:meth:`~hwgen.compile.kinds.NodeKind.flip`).
    """
    flips: dict[str, np.ndarray] = {}  # conv name -> the channels whose weights are negated
    for layer in net.layers:
        compared = kind_of(layer).compared_accumulator(layer)
        if compared is not None:
            conv, direction = compared
            flips[conv] = all_negative(direction)
    return replace(net, layers=[kind_of(layer).flip(layer, flips) for layer in net.layers])
