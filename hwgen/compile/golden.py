"""The integer golden model: what the hardware computes, bit for bit.

Pure numpy, integer-exact. This module is *the* definition of a compiled
network's output (DESIGN.md section 2); the PyTorch eval model must agree with
it and the RTL must equal it. The semantics are those of :mod:`hwgen.compile.ir`:

Convolution (:func:`conv_accumulate`), for output channel o and position (y, x)::

    acc[n, o, y, x] = sum_{c, i, j valid} W[o, c, i, j] * v[n, c, y*s + i - pad, x*s + j - pad]

where a tap is *valid* when it falls inside the (unpadded) input; padded taps
contribute 0. The input values ``v`` are

* ``input_kind == "binary"``: bits b in {0, 1} meaning ``v = 2b - 1``;
* ``input_kind == "uint8"``: pixels x in [0, 255] meaning ``v = x - p_c``
  (``p = layer.input_offset``, one integer per input channel), or
  ``v = table[c, x]`` for a layer with an ``input_table`` (C_in, 256)
  (:func:`hwgen.compile.ir.input_values`).

Binary inputs with binary weights (``weight_bits == 1``) use the hardware's own
arithmetic, bit-packed XNOR-popcount over the fan-in ``F = C_in * KH * KW``::

    acc = 2 * popcount(XNOR(x, w) & valid) - popcount(valid)

Every other combination (k-bit weights, or uint8 inputs) is an exact integer
dot product, computed as a float64 matrix product over im2col patches (exact
because every partial sum is bounded below 2**53, which is asserted).

Thresholds (:func:`apply_threshold`) give bits ``acc >= T`` (direction +1) or
``acc <= T`` (direction -1), per channel or per position. Max-pooling
(:func:`max_pool_bits`) ORs or ANDs each window of bits, per channel. The last
layer's scores (:func:`class_scores`) are ``scale_c * acc_c + bias_c`` (int64)
and the prediction is their argmax, ties to the lowest index. A residual join
(:func:`join_bits`) thresholds a conv's accumulator against the row of its
two thresholds that the shortcut bit selects. :func:`run_network` evaluates
the nodes in their topological order, each with the evaluator of its type.

The public functions take and return NCHW arrays (bits are uint8 in {0, 1},
scores int64). Internally :func:`run_network` keeps activations channel-last
(N, H, W, C), the order in which a streaming engine sees a receptive field
(tap by tap, all channels of a tap together); im2col rows therefore take the
fan-in in (i, j, c) order, weights included. The order of the terms of a sum
does not change an exact integer sum, so this is the same accumulator as the
(c, i, j) order of the weights' own layout.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from hwgen.compile.ir import (
    INPUT,
    PIXEL_VALUES,
    AccumulatorOutput,
    ConvLayer,
    JoinLayer,
    MaxPoolLayer,
    Network,
    ScoreOutput,
    ThresholdOutput,
    input_range,
    input_values,
)
from hwgen.errors import CompileError

__all__ = [
    "GoldenResult",
    "apply_threshold",
    "class_scores",
    "conv_accumulate",
    "join_bits",
    "max_pool_bits",
    "pack_bits",
    "run_network",
]

_FLOAT64_EXACT = 1 << 53
_INT32_SAFE = (1 << 31) - 2  # |acc| <= this: int32 accumulators (see _threshold_last)
# Working-set sizes: a (rows, C_out) tile of the XNOR loop has about this many
# elements (fits in L2), and an im2col chunk at most about this many bytes.
_TILE_ELEMS = 1 << 16
_IM2COL_BYTES = 1 << 25


@dataclass
class GoldenResult:
    """Output of :func:`run_network` on N images.

    ``scores``: int64 (N, num_classes). ``predictions``: int64 (N,), the argmax
    of each row of ``scores`` with ties to the lowest index. ``intermediates``
    (only with ``keep_intermediates=True``): for every layer name its output
    (uint8 bits (N, C, H, W) for threshold, pool and join layers, int64 scores
    (N, num_classes) for the last layer; none for a conv whose output is its
    accumulator) and, for every :class:`ConvLayer`,
    ``f"{name}.acc"``: its integer accumulator (N, C_out, H_out, W_out)
    (int32, or int64 for accumulators that do not fit in int32).
    """

    scores: np.ndarray
    predictions: np.ndarray
    intermediates: dict[str, np.ndarray] = field(default_factory=dict)


# ---------------------------------------------------------------------------
# Bit packing
# ---------------------------------------------------------------------------

_popcount = np.bitwise_count  # numpy >= 2.0


def _n_words(f: int) -> int:
    return max(1, -(-f // 64))


def _bytes_to_words(packed: np.ndarray, n_words: int) -> np.ndarray:
    """uint8 (..., B) with B <= 8 * n_words -> uint64 (..., n_words), zero-filled at the end."""
    pad = n_words * 8 - packed.shape[-1]
    if pad:
        packed = np.concatenate(
            [packed, np.zeros(packed.shape[:-1] + (pad,), dtype=np.uint8)], axis=-1)
    return np.ascontiguousarray(packed).view(np.uint64)


def pack_bits(bits: np.ndarray) -> np.ndarray:
    """Pack the last axis of a {0, 1} array into uint64 words.

    ``bits``: (..., F) of 0/1 (any integer or bool dtype). Returns uint64
    (..., ceil(F / 64)); bit f is bit ``f % 64`` (LSB first) of word
    ``f // 64``, and the bits past F in the last word are 0.
    """
    bits = np.asarray(bits)
    packed = np.packbits(bits.astype(np.uint8, copy=False), axis=-1, bitorder="little")
    return _bytes_to_words(packed, _n_words(bits.shape[-1]))


# ---------------------------------------------------------------------------
# Checks and im2col helpers
# ---------------------------------------------------------------------------

def _check_layer(layer: ConvLayer) -> None:
    w = np.asarray(layer.weights)
    if w.ndim != 4 or w.shape[1] != layer.in_shape[0]:
        raise CompileError(f"layer {layer.name!r}: weights {w.shape} do not match "
                           f"input shape {tuple(layer.in_shape)}")
    if not np.issubdtype(w.dtype, np.integer):
        raise CompileError(f"layer {layer.name!r}: weights must be integers, not {w.dtype}")
    if layer.stride < 1 or layer.padding < 0:
        raise CompileError(f"layer {layer.name!r}: stride {layer.stride} / padding "
                           f"{layer.padding} out of range")
    if min(layer.out_shape[1:]) < 1:
        raise CompileError(f"layer {layer.name!r}: empty output {layer.out_shape}")
    if layer.weight_bits == 1:
        if not np.all(np.abs(w) == 1):
            raise CompileError(f"layer {layer.name!r}: 1-bit weights must be +-1")
    elif layer.weight_bits >= 2:
        m = (1 << (layer.weight_bits - 1)) - 1
        if w.size and int(np.abs(w.astype(np.int64)).max()) > m:
            raise CompileError(f"layer {layer.name!r}: {layer.weight_bits}-bit weights "
                               f"outside [-{m}, {m}]")
    else:
        raise CompileError(f"layer {layer.name!r}: weight_bits must be >= 1")
    if layer.input_kind == "uint8":
        p, table = layer.input_offset, layer.input_table
        if table is not None:
            if np.shape(table) != (layer.in_shape[0], PIXEL_VALUES) or not np.issubdtype(
                    np.asarray(table).dtype, np.integer):
                raise CompileError(f"layer {layer.name!r}: input_table must be integers of shape "
                                   f"({layer.in_shape[0]}, {PIXEL_VALUES})")
        elif p is None or np.shape(p) != (layer.in_shape[0],):
            raise CompileError(f"layer {layer.name!r}: uint8 input needs an input_offset "
                               f"of shape ({layer.in_shape[0]},) or an input_table")
    elif layer.input_kind != "binary":
        raise CompileError(f"layer {layer.name!r}: unknown input_kind {layer.input_kind!r}")


def _check_inputs(layer: ConvLayer, inputs: np.ndarray) -> np.ndarray:
    inputs = np.asarray(inputs)
    if inputs.ndim != 4 or tuple(inputs.shape[1:]) != tuple(layer.in_shape):
        raise ValueError(f"layer {layer.name!r} expects inputs (N, "
                         f"{', '.join(map(str, layer.in_shape))}), got {inputs.shape}")
    if not (np.issubdtype(inputs.dtype, np.integer) or inputs.dtype == np.bool_):
        raise ValueError(f"layer {layer.name!r}: inputs must be integers, not {inputs.dtype}")
    hi = 1 if layer.input_kind == "binary" else 255
    if inputs.dtype != np.uint8:
        if inputs.size and (inputs.min() < 0 or inputs.max() > hi):
            raise ValueError(f"layer {layer.name!r}: input values outside [0, {hi}]")
        inputs = inputs.astype(np.uint8)
    elif hi == 1 and inputs.size and inputs.max() > 1:
        raise ValueError(f"layer {layer.name!r}: binary inputs must be 0/1 bits")
    return inputs


def _windows(x: np.ndarray, layer: ConvLayer) -> np.ndarray:
    """Channel-last (N, Hp, Wp, C), already padded -> view (N, Ho, Wo, KH, KW, C)."""
    (kh, kw), (_, ho, wo), s = layer.kernel, layer.out_shape, layer.stride
    win = sliding_window_view(x, (kh, kw), axis=(1, 2))  # (N, Hp-kh+1, Wp-kw+1, C, kh, kw)
    win = win[:, : (ho - 1) * s + 1 : s, : (wo - 1) * s + 1 : s]
    return win.transpose(0, 1, 2, 4, 5, 3)


def _pad_hw(x: np.ndarray, pad: int) -> np.ndarray:
    """Zero-pad the two spatial axes of a channel-last (N, H, W, C) array."""
    return np.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0))) if pad else x


def _weights_ijc(layer: ConvLayer) -> np.ndarray:
    """Weights (C_out, F) with the fan-in in (i, j, c) order."""
    w = np.asarray(layer.weights)
    return w.transpose(0, 2, 3, 1).reshape(w.shape[0], -1)


def _valid_mask(layer: ConvLayer) -> np.ndarray:
    """bool (Ho*Wo, F), fan-in in (i, j, c) order: the tap lies inside the unpadded input."""
    c, h, w = layer.in_shape
    ones = _pad_hw(np.ones((1, h, w, c), dtype=np.bool_), layer.padding)
    return _windows(ones, layer).reshape(-1, layer.fan_in)


def _sample_chunk(per_sample_bytes: int, n: int) -> int:
    return int(max(1, min(n, _IM2COL_BYTES // max(1, per_sample_bytes))))


def _partial_sum_bound(layer: ConvLayer) -> int:
    """A bound B on |every partial sum| of the accumulator (any order of the terms).

    Per tap, ``|W * v| <= |W| * max|v|`` with ``max|v|`` over the channel's
    input values (:func:`hwgen.compile.ir.input_range`: 1 for binary inputs);
    B is the largest per-output-channel sum of these.
    """
    w = np.abs(np.asarray(layer.weights).astype(np.int64))
    lo, hi = input_range(layer)
    per_tap = w * np.maximum(np.abs(lo), np.abs(hi)).reshape(1, -1, 1, 1)
    return int(per_tap.reshape(len(w), -1).sum(axis=1).max()) if w.size else 0


def _acc_dtype(layer: ConvLayer):
    return np.int32 if _partial_sum_bound(layer) <= _INT32_SAFE else np.int64


# ---------------------------------------------------------------------------
# Convolution
# ---------------------------------------------------------------------------

def conv_accumulate(layer: ConvLayer, inputs: np.ndarray) -> np.ndarray:
    """The integer accumulator of ``layer`` on a batch of inputs.

    ``inputs``: (N, C_in, H, W) == (N,) + ``layer.in_shape``; uint8 bits in
    {0, 1} when ``layer.input_kind == "binary"``, uint8 pixels when "uint8".
    Returns ``acc`` (N, C_out, H_out, W_out), int32 when every partial sum
    fits in int32 (always, in practice), else int64::

        acc[n, o, y, x] = sum_{c, i, j valid} W[o, c, i, j] * v[n, c, y*s + i - pad, x*s + j - pad]

    with ``v = 2b - 1`` (binary) or ``v = input_values(layer)[c, x]`` (uint8), and
    padded (invalid) taps contributing 0.

    Binary inputs with 1-bit weights take the bit-packed XNOR-popcount path
    (:func:`_xnor_conv`); everything else the exact float64 matmul path
    (:func:`_matmul_conv`).
    """
    _check_layer(layer)
    inputs = _check_inputs(layer, inputs)
    acc = _conv_last(layer, inputs.transpose(0, 2, 3, 1))
    return np.ascontiguousarray(acc.transpose(0, 3, 1, 2))


def _conv_last(layer: ConvLayer, x: np.ndarray) -> np.ndarray:
    """Channel-last accumulator: (N, H, W, C_in) uint8 -> (N, Ho, Wo, C_out) int32/int64."""
    if layer.input_kind == "binary" and layer.weight_bits == 1:
        return _xnor_conv(layer, x)
    return _matmul_conv(layer, x)


def _xnor_conv(layer: ConvLayer, bits: np.ndarray) -> np.ndarray:
    """Bit-packed XNOR-popcount: ``acc = 2 * popcount(XNOR(x, w) & valid) - popcount(valid)``.

    ``bits``: uint8 {0, 1} (N, H, W, C_in); returns (N, Ho, Wo, C_out).

    Layout: the fan-in f = (i, j, c) is packed LSB-first into ``K = ceil(F /
    64)`` uint64 words (:func:`pack_bits`): the im2col input bits ``x`` (one
    row of K words per sample and output position), the weight bits ``w = (W
    == +1)`` (C_out, K), and the valid mask (1 = tap inside the unpadded
    input; 0 = padded tap, or past F in the last word), which depends only on
    the output position: (Ho*Wo, K). Padded taps of ``x`` and the bits past F
    of ``x`` and ``w`` are 0.

    Per word, with ``a = x ^ w``, ``popcount(~a & valid) = popcount(valid) -
    popcount(a & valid)``, so the loop accumulates ``D = sum_words
    popcount((x ^ w) & valid)`` and returns ``acc = popcount(valid) - 2 * D``,
    which equals the formula above. The ``& valid`` is skipped only where it is
    the identity: for positions whose taps all lie inside the input, the only
    0 bits of ``valid`` are those past F in the last word, where ``x ^ w`` is
    already 0. Those positions are processed as one block, the positions with
    padded taps as another.
    """
    n = bits.shape[0]
    c = layer.in_shape[0]
    co, ho, wo = layer.out_shape
    f, p = layer.fan_in, ho * wo
    k = _n_words(f)
    dtype = _acc_dtype(layer)

    w_packed = pack_bits(_weights_ijc(layer) > 0)  # (C_out, K)
    valid = _valid_mask(layer)                      # (P, F)
    v_packed = pack_bits(valid)                     # (P, K)
    valid_count = valid.sum(axis=1).astype(np.int64)

    # Packed im2col rows (N, P, K). With C_in a multiple of 8 every tap is a
    # whole number of bytes: pack the channels once, then gather bytes.
    x_packed = np.empty((n, p, k), dtype=np.uint64)
    if c % 8 == 0:
        xb = _pad_hw(np.packbits(bits, axis=-1, bitorder="little"), layer.padding)
        step = _sample_chunk(p * f // 8, n)
        for a in range(0, n, step):
            win = _windows(xb[a:a + step], layer).reshape(-1, p, f // 8)
            x_packed[a:a + step] = _bytes_to_words(win, k)
    else:
        xp = _pad_hw(bits, layer.padding)
        step = _sample_chunk(p * f, n)
        for a in range(0, n, step):
            x_packed[a:a + step] = pack_bits(_windows(xp[a:a + step], layer).reshape(-1, p, f))

    out = np.empty((n * p, co), dtype=dtype)
    full = valid.all(axis=1)
    for idx, masked in ((np.flatnonzero(full), False), (np.flatnonzero(~full), True)):
        if idx.size == 0:
            continue
        if idx.size == p:
            rows, dest = x_packed.reshape(n * p, k), None
        else:
            rows = x_packed[:, idx].reshape(-1, k)
            dest = (np.arange(n)[:, None] * p + idx[None, :]).ravel()
        _xnor_rows(rows, np.tile(idx, n), dest, w_packed, v_packed, valid_count, masked, out)
    return out.reshape(n, ho, wo, co)


def _xnor_rows(x: np.ndarray, pos: np.ndarray, dest: np.ndarray | None, w: np.ndarray,
               v: np.ndarray, valid_count: np.ndarray, masked: bool, out: np.ndarray) -> None:
    """``out[dest[r], o] = valid_count[q] - 2 * sum_k popcount((x[r, k] ^ w[o, k]) & v[q, k])``, q = pos[r].

    ``x``: uint64 (R, K) packed im2col rows; ``pos``: (R,) the output position
    of each row; ``dest``: (R,) row of ``out`` (None: the identity); ``w``:
    uint64 (C_out, K); ``v``: uint64 (P, K) valid masks; ``valid_count``:
    int64 (P,) = popcount(v). The ``& v`` is done only when ``masked`` (the
    caller guarantees it is the identity otherwise). Works on (rows, C_out)
    tiles sized for the cache, a word at a time: XOR, AND, popcount to uint8,
    add into a uint16 (uint32 for F >= 2**16) tile accumulator.
    """
    r, k = x.shape
    co = w.shape[0]
    acc_dtype = np.uint16 if 64 * k < (1 << 16) else np.uint32
    work = np.int32 if 128 * k < (1 << 31) else np.int64  # holds valid_count - 2 * D
    valid_count = valid_count.astype(work)
    tile = int(max(8, min(r, _TILE_ELEMS // max(1, co))))
    wt = np.ascontiguousarray(w.T)  # (K, C_out)
    buf = np.empty((tile, co), dtype=np.uint64)
    cnt = np.empty((tile, co), dtype=np.uint8)
    acc = np.empty((tile, co), dtype=acc_dtype)
    for a in range(0, r, tile):
        b = min(r, a + tile)
        m = b - a
        xb, bb, cb, ab = x[a:b], buf[:m], cnt[:m], acc[:m]
        q = pos[a:b]
        vb = v[q] if masked else None
        ab.fill(0)
        for j in range(k):
            np.bitwise_xor(xb[:, j, None], wt[j][None, :], out=bb)
            if masked:
                np.bitwise_and(bb, vb[:, j, None], out=bb)
            _popcount(bb, out=cb)
            np.add(ab, cb, out=ab)
        vals = valid_count[q][:, None] - 2 * ab.astype(work)
        if dest is None:
            out[a:b] = vals
        else:
            out[dest[a:b]] = vals


def _matmul_conv(layer: ConvLayer, x: np.ndarray) -> np.ndarray:
    """Exact integer convolution as a float64 matmul over im2col patches.

    ``x``: uint8 (N, H, W, C_in), bits or pixels; returns (N, Ho, Wo, C_out).
    Values ``v`` (float64): ``2b - 1`` for bits, ``input_values(layer)[c, x]``
    for pixels; the input is zero-padded *after* that mapping, so padded taps
    contribute 0.
    Patches (N*Ho*Wo, F) in (i, j, c) order times the weights (F, C_out) in
    the same order. Every product and partial sum is an integer of magnitude
    at most :func:`_partial_sum_bound` < 2**53 (asserted), so the float64
    result is exact and converts back to integers without rounding.
    """
    bound = _partial_sum_bound(layer)
    assert bound < _FLOAT64_EXACT, (
        f"layer {layer.name!r}: accumulator bound {bound} is not exact in float64")
    n = x.shape[0]
    (co, ho, wo), f = layer.out_shape, layer.fan_in
    p = ho * wo
    wmat = _weights_ijc(layer).astype(np.float64).T  # (F, C_out)
    if layer.input_kind == "uint8":
        table = input_values(layer).astype(np.float64)  # (C_in, 256)
        channels = np.arange(layer.in_shape[0])
    out = np.empty((n, p, co), dtype=_acc_dtype(layer))
    step = _sample_chunk(8 * p * max(f, co), n)
    for a in range(0, n, step):
        if layer.input_kind == "binary":
            vals = 2.0 * x[a:a + step].astype(np.float64) - 1.0
        else:
            vals = table[channels, x[a:a + step]]  # (n, H, W, C_in): v_c(x) per channel
        cols = _windows(_pad_hw(vals, layer.padding), layer).reshape(-1, f)
        out[a:a + step] = (cols @ wmat).reshape(-1, p, co)  # exact integers -> int
    return out.reshape(n, ho, wo, co)


# ---------------------------------------------------------------------------
# Outputs and pooling
# ---------------------------------------------------------------------------

def apply_threshold(acc: np.ndarray, out: ThresholdOutput) -> np.ndarray:
    """Bits of a threshold layer: uint8 (N, C, H, W) in {0, 1}.

    ``bit = acc >= T`` where ``direction == +1`` and ``acc <= T`` where
    ``direction == -1``; ``T`` and ``direction`` are per channel (C,) or per
    position (C, H, W). ``acc``: integer (N, C, H, W).
    """
    acc = np.asarray(acc)
    if acc.ndim != 4:
        raise ValueError(f"accumulator must be (N, C, H, W), got {acc.shape}")
    bits = _threshold_last(acc.transpose(0, 2, 3, 1), out)
    return np.ascontiguousarray(bits.transpose(0, 3, 1, 2))


def _threshold_last(acc: np.ndarray, out: ThresholdOutput) -> np.ndarray:
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


def class_scores(acc: np.ndarray, out: ScoreOutput) -> np.ndarray:
    """int64 (N, C) class scores ``scale_c * acc[:, c, 0, 0] + bias_c``; ``acc``: (N, C, 1, 1)."""
    acc = np.asarray(acc)
    if acc.ndim != 4 or acc.shape[2:] != (1, 1):
        raise CompileError(f"a score layer needs a (C, 1, 1) output, got {acc.shape[1:]}")
    scale = np.asarray(out.scale).astype(np.int64)
    bias = np.asarray(out.bias).astype(np.int64)
    if scale.shape != (acc.shape[1],) or bias.shape != (acc.shape[1],):
        raise CompileError(f"scale {scale.shape} / bias {bias.shape} do not match "
                           f"{acc.shape[1]} classes")
    return scale[None, :] * acc[:, :, 0, 0].astype(np.int64) + bias[None, :]


# ---------------------------------------------------------------------------
# Whole network
# ---------------------------------------------------------------------------

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
    return np.where(shortcut.astype(bool), _threshold_last(acc, layer.row(1)),
                    _threshold_last(acc, layer.row(0))).astype(np.uint8)


# ---------------------------------------------------------------------------
# Whole network: one evaluator per node type, run in the topological order
# ---------------------------------------------------------------------------

def _produces(node) -> str:
    """What a node gives, for the kind checks: "binary" bits, "acc" (a conv's AccumulatorOutput) or
    "scores" (the network input gives "uint8")."""
    if isinstance(node, ConvLayer):
        return {ThresholdOutput: "binary", AccumulatorOutput: "acc", ScoreOutput: "scores"}.get(
            type(node.output), "unknown")
    return "binary"


def _check_conv_node(node: ConvLayer, kinds: list[str], last: bool) -> None:
    _check_layer(node)
    if node.input_kind != kinds[0]:
        raise CompileError(f"layer {node.name!r} takes {node.input_kind} input, its input gives {kinds[0]}")
    if isinstance(node.output, ScoreOutput) != last:
        raise CompileError(f"layer {node.name!r}: exactly the last layer has a ScoreOutput")
    if _produces(node) == "unknown":
        raise CompileError(f"layer {node.name!r}: unknown output {type(node.output).__name__}")


def _check_pool_node(node: MaxPoolLayer, kinds: list[str], last: bool) -> None:
    _check_pool(node)
    if kinds[0] != "binary" or last:
        raise CompileError(f"pool {node.name!r} must follow a threshold layer and precede another layer")


def _check_join_node(node: JoinLayer, kinds: list[str], last: bool) -> None:
    _check_join(node)
    if kinds != ["acc", "binary"] or last:
        raise CompileError(f"join {node.name!r} must read a conv's accumulator and shortcut bits (it reads "
                           f"{' and '.join(kinds)}) and precede another layer")


_NODE_CHECKS = {ConvLayer: _check_conv_node, MaxPoolLayer: _check_pool_node, JoinLayer: _check_join_node}
_ARITY = {ConvLayer: 1, MaxPoolLayer: 1, JoinLayer: 2}


def _check_network(net: Network) -> None:
    """The graph is well formed: inputs name earlier nodes, shapes and kinds match, nothing is left unread."""
    if not net.layers:
        raise CompileError(f"network {net.name!r} has no layers")
    names = [layer.name for layer in net.layers]
    if len(set(names)) != len(names) or any(name.endswith(".acc") or name == INPUT for name in names):
        raise CompileError(f"network {net.name!r}: layer names must be unique, not {INPUT!r}, not end in '.acc'")
    shapes: dict[str, tuple] = {INPUT: tuple(net.input_shape)}
    kinds: dict[str, str] = {INPUT: "uint8"}
    for i, node in enumerate(net.layers):
        last = i == len(net.layers) - 1
        check = _NODE_CHECKS.get(type(node))
        if check is None:
            raise CompileError(f"unknown layer type {type(node).__name__}")
        inputs = net.inputs_of(i)
        if len(inputs) != _ARITY[type(node)] or any(name not in shapes for name in inputs):
            raise CompileError(f"layer {node.name!r} reads {list(inputs)}: it needs {_ARITY[type(node)]} "
                               f"input(s), each the network input or an earlier layer")
        for name in inputs:
            if shapes[name] != tuple(node.in_shape):
                raise CompileError(f"layer {node.name!r} expects input {tuple(node.in_shape)}, "
                                   f"{name!r} gives {shapes[name]}")
        check(node, [kinds[name] for name in inputs], last)
        shapes[node.name], kinds[node.name] = tuple(node.out_shape), _produces(node)
    if shapes[names[-1]] != (net.num_classes, 1, 1):
        raise CompileError(f"the last layer gives {shapes[names[-1]]}, not ({net.num_classes}, 1, 1) scores")
    readers = net.consumers()
    for name in [INPUT, *names[:-1]]:
        if not readers[name]:
            raise CompileError(f"network {net.name!r}: the output of {name!r} is never read")
        if kinds[name] == "acc" and (len(readers[name]) != 1 or
                                     net.inputs_of(names.index(readers[name][0]))[0] != name):
            raise CompileError(f"layer {name!r}: an accumulator output is read by exactly one join, "
                               f"as its first input")


def _eval_conv(node: ConvLayer, args: list[np.ndarray], keep) -> np.ndarray:
    acc = _conv_last(node, args[0])
    keep(f"{node.name}.acc", acc)
    if isinstance(node.output, ScoreOutput):
        return class_scores(acc.transpose(0, 3, 1, 2), node.output)
    if isinstance(node.output, AccumulatorOutput):
        return acc
    return _threshold_last(acc, node.output)


def _eval_pool(node: MaxPoolLayer, args: list[np.ndarray], keep) -> np.ndarray:
    return _pool_last(args[0], node)


def _eval_join(node: JoinLayer, args: list[np.ndarray], keep) -> np.ndarray:
    return _join_last(args[0], args[1], node)


_EVALUATE = {ConvLayer: _eval_conv, MaxPoolLayer: _eval_pool, JoinLayer: _eval_join}


def run_network(net: Network, pixels: np.ndarray, *, keep_intermediates: bool = False,
                batch_size: int = 256) -> GoldenResult:
    """Run the compiled network on uint8 images.

    ``pixels``: uint8 (N, C, H, W) with (C, H, W) == ``net.input_shape`` (a
    single (C, H, W) image is taken as N = 1). Works on ``batch_size`` images
    at a time, channel-last inside, evaluating the nodes in their topological
    order (a node's output is dropped after its last reader). Returns
    :class:`GoldenResult`: int64 ``scores`` (N, num_classes), int64
    ``predictions`` (N,) (argmax, lowest index on ties) and, if
    ``keep_intermediates``, every bit-producing node's output bits (N, C, H, W)
    and the last layer's scores (N, num_classes) under its name, and every
    conv layer's accumulator (N, C_out, H_out, W_out) under ``f"{name}.acc"``.
    """
    _check_network(net)
    pixels = np.asarray(pixels)
    if pixels.ndim == 3:
        pixels = pixels[None]
    if pixels.dtype != np.uint8:
        raise ValueError(f"pixels must be uint8, not {pixels.dtype}")
    if pixels.ndim != 4 or tuple(pixels.shape[1:]) != tuple(net.input_shape):
        raise ValueError(f"pixels must be (N, {', '.join(map(str, net.input_shape))}), "
                         f"got {pixels.shape}")
    if batch_size < 1:
        raise ValueError("batch_size must be >= 1")
    n = pixels.shape[0]
    scores = np.empty((n, net.num_classes), dtype=np.int64)
    inter: dict[str, list[np.ndarray]] = {}
    inputs = [net.inputs_of(i) for i in range(len(net.layers))]
    last_read = {name: i for i, names in enumerate(inputs) for name in names}

    def keep(key: str, x: np.ndarray) -> None:
        if keep_intermediates:
            inter.setdefault(key, []).append(
                x if x.ndim == 2 else np.ascontiguousarray(x.transpose(0, 3, 1, 2)))

    for a in range(0, n, batch_size):
        values = {INPUT: pixels[a:a + batch_size].transpose(0, 2, 3, 1)}  # channel-last view
        for i, node in enumerate(net.layers):
            x = _EVALUATE[type(node)](node, [values[name] for name in inputs[i]], keep)
            for name in inputs[i]:
                if last_read[name] == i:
                    del values[name]
            values[node.name] = x
            if not (isinstance(node, ConvLayer) and isinstance(node.output, AccumulatorOutput)):
                keep(node.name, x)
        scores[a:a + batch_size] = values[net.layers[-1].name]
    intermediates = {key: parts[0] if len(parts) == 1 else np.concatenate(parts)
                     for key, parts in inter.items()}
    predictions = np.argmax(scores, axis=1).astype(np.int64)  # first maximum: lowest index
    return GoldenResult(scores=scores, predictions=predictions, intermediates=intermediates)
