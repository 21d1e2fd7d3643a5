"""The convolution kind (:class:`~hwgen.compile.ir.ConvLayer`): golden arithmetic, checks, file entry, flips, cost row.

A fully connected layer is a convolution whose kernel covers its whole input.
For output channel o and position (y, x) (:func:`conv_accumulate`)::

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

The output is one of: threshold bits (:func:`~hwgen.compile.kinds.thresholds.apply_threshold`),
the last layer's scores ``scale_c * acc_c + bias_c`` (:func:`class_scores`,
int64; the prediction is their argmax, ties to the lowest index), or the
accumulator itself, passed to the residual join that reads it.

Inside the golden model activations are channel-last (N, H, W, C), the order
in which a streaming engine sees a receptive field (tap by tap, all channels
of a tap together); im2col rows therefore take the fan-in in (i, j, c) order,
weights included. The order of the terms of a sum does not change an exact
integer sum, so this is the same accumulator as the (c, i, j) order of the
weights' own layout.

In a ``.hwir`` file (:mod:`hwgen.compile.artifact`): binary weights as packed
bits ``NAME/weight_bits_packed`` (uint8, bit = weight == +1, :func:`pack_binary_weights`)
in the streaming order (C_out, KH, KW, C_in), channels fastest, MSB first;
k-bit weights as ``NAME/weights`` (int16, (C_out, C_in, KH, KW));
``NAME/thresholds`` and ``NAME/direction``, or ``NAME/score_scale`` and
``NAME/score_bias``; ``NAME/input_offset`` or ``NAME/input_table`` (int32 (C_in, 256)).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from hwgen.compile.ir import (
    PIXEL_VALUES,
    AccumulatorOutput,
    ConvLayer,
    ScoreOutput,
    ThresholdOutput,
    accumulator_range,
    input_range,
    input_values,
    signed_bits,
)
from hwgen.compile.kinds.base import FloatModules, Keep, NodeKind
from hwgen.compile.kinds.thresholds import flipped, threshold_fields, threshold_last
from hwgen.errors import CompileError

__all__ = ["ConvKind", "class_scores", "conv_accumulate", "pack_binary_weights", "pack_bits", "stream_weights",
           "unpack_binary_weights"]

_FLOAT64_EXACT = 1 << 53
_INT32_SAFE = (1 << 31) - 2  # |acc| <= this: int32 accumulators (see threshold_last)
# Working-set sizes: a (rows, C_out) tile of the XNOR loop has about this many
# elements (fits in L2), and an im2col chunk at most about this many bytes.
_TILE_ELEMS = 1 << 16
_IM2COL_BYTES = 1 << 25


# -- bit packing ------------------------------------------------------------

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


# -- checks and im2col helpers ----------------------------------------------

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


def stream_weights(layer: ConvLayer) -> np.ndarray:
    """int64 weights (C_out, F) with the fan-in in the stream's (i, j, c) order, channel fastest: the order
    of the golden model's im2col rows and of the engines' weight ROMs (a sliding window emits a tap's
    channels together)."""
    w = np.asarray(layer.weights, dtype=np.int64)
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


# -- convolution ------------------------------------------------------------

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

    w_packed = pack_bits(stream_weights(layer) > 0)  # (C_out, K)
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
    wmat = stream_weights(layer).astype(np.float64).T  # (F, C_out)
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


# -- the .hwir weight packing ----------------------------------------------------

def pack_binary_weights(weights: np.ndarray) -> np.ndarray:
    """+-1 weights (C_out, C_in, KH, KW) -> uint8 bits in (C_out, KH, KW, C_in) order, per output channel."""
    bits = (weights.transpose(0, 2, 3, 1) > 0).reshape(len(weights), -1)
    return np.packbits(bits, axis=1)


def unpack_binary_weights(packed: np.ndarray, shape: tuple[int, int, int, int]) -> np.ndarray:
    """The inverse of :func:`pack_binary_weights`: int64 +-1 weights of ``shape`` (C_out, C_in, KH, KW)."""
    c_out, c_in, kh, kw = shape
    bits = np.unpackbits(packed, axis=1, count=c_in * kh * kw).reshape(c_out, kh, kw, c_in)
    return (bits.astype(np.int64) * 2 - 1).transpose(0, 3, 1, 2)


#: The value kind of each output type, and its name in a ``.hwir`` entry's ``"output"``.
_PRODUCES = {ThresholdOutput: "binary", AccumulatorOutput: "acc", ScoreOutput: "scores"}
_OUTPUT_NAMES = {ThresholdOutput: "threshold", AccumulatorOutput: "accumulator", ScoreOutput: "scores"}


class ConvKind(NodeKind):
    """Convolution / fully connected: one input (pixels or bits), output bits, accumulator or scores."""

    node_type = ConvLayer
    type_name = "conv"
    arity = 1

    def check(self, node: ConvLayer, kinds: list[str], last: bool) -> None:
        _check_layer(node)
        if node.input_kind != kinds[0]:
            raise CompileError(f"layer {node.name!r} takes {node.input_kind} input, its input gives {kinds[0]}")
        if type(node.output) not in _PRODUCES:
            raise CompileError(f"layer {node.name!r}: unknown output {type(node.output).__name__}")
        if isinstance(node.output, ScoreOutput) != last:
            raise CompileError(f"layer {node.name!r}: exactly the last layer has a ScoreOutput")

    def produces(self, node: ConvLayer) -> str:
        return _PRODUCES.get(type(node.output), "unknown")

    def evaluate(self, node: ConvLayer, args: list[np.ndarray], keep: Keep) -> np.ndarray:
        acc = _conv_last(node, args[0])
        keep(f"{node.name}.acc", acc)
        if isinstance(node.output, ScoreOutput):
            return class_scores(acc.transpose(0, 3, 1, 2), node.output)
        if isinstance(node.output, AccumulatorOutput):
            return acc
        return threshold_last(acc, node.output)

    def write(self, node: ConvLayer, arrays: dict[str, np.ndarray]) -> dict[str, Any]:
        n = node.name
        entry = {"type": self.type_name, "name": n, "in_shape": list(node.in_shape),
                 "weight_shape": list(node.weights.shape), "weight_bits": node.weight_bits, "stride": node.stride,
                 "padding": node.padding, "input_kind": node.input_kind, "source": node.source,
                 "output": _OUTPUT_NAMES[type(node.output)]}
        if node.weight_bits == 1:
            arrays[f"{n}/weight_bits_packed"] = pack_binary_weights(node.weights)
        else:
            arrays[f"{n}/weights"] = node.weights.astype(np.int16)
        if node.input_offset is not None:
            arrays[f"{n}/input_offset"] = node.input_offset.astype(np.int64)
        if node.input_table is not None:
            arrays[f"{n}/input_table"] = np.ascontiguousarray(node.input_table, dtype=np.int32)
        if isinstance(node.output, ThresholdOutput):
            arrays[f"{n}/thresholds"] = node.output.thresholds.astype(np.int64)
            arrays[f"{n}/direction"] = node.output.direction.astype(np.int8)
        elif isinstance(node.output, ScoreOutput):
            arrays[f"{n}/score_scale"] = node.output.scale.astype(np.int64)
            arrays[f"{n}/score_bias"] = node.output.bias.astype(np.int64)
        return entry

    def read(self, entry: dict[str, Any], arrays: dict[str, np.ndarray]) -> ConvLayer:
        n, shape = entry["name"], tuple(entry["weight_shape"])
        weights = (unpack_binary_weights(arrays[f"{n}/weight_bits_packed"], shape) if entry["weight_bits"] == 1
                   else arrays[f"{n}/weights"].astype(np.int64))
        output = {"threshold": lambda: ThresholdOutput(arrays[f"{n}/thresholds"], arrays[f"{n}/direction"]),
                  "accumulator": AccumulatorOutput,
                  "scores": lambda: ScoreOutput(arrays[f"{n}/score_scale"], arrays[f"{n}/score_bias"]),
                  }[entry["output"]]()
        return ConvLayer(name=n, in_shape=tuple(entry["in_shape"]), weights=weights,
                         weight_bits=entry["weight_bits"], stride=entry["stride"], padding=entry["padding"],
                         input_kind=entry["input_kind"], output=output,
                         input_offset=arrays.get(f"{n}/input_offset"),
                         input_table=(arrays[f"{n}/input_table"].astype(np.int64)
                                      if f"{n}/input_table" in arrays else None),
                         source=entry.get("source", []), inputs=tuple(entry.get("inputs", ())))

    def compared_accumulator(self, node: ConvLayer) -> tuple[str, np.ndarray] | None:
        if isinstance(node.output, ThresholdOutput):
            return node.name, node.output.direction
        return None

    def flip(self, node: ConvLayer, flips: dict[str, np.ndarray]) -> ConvLayer:
        if node.name not in flips or not flips[node.name].any():
            return node
        sign = np.where(flips[node.name], -1, 1)
        node = replace(node, weights=node.weights * sign.reshape(-1, 1, 1, 1))
        if isinstance(node.output, ThresholdOutput):
            node.output = flipped(node.output, sign)
        return node

    def report_row(self, node: ConvLayer) -> dict[str, Any]:
        lo, hi = accumulator_range(node)
        c, h, w = node.out_shape
        row = {"layer": node.name, "in": node.in_shape, "out": node.out_shape,
               "macs": c * h * w * node.fan_in, "weight_bits": c * node.fan_in * node.weight_bits,
               "acc_width": signed_bits(lo, hi), "thresholds": 0, "threshold_width": 0, "threshold_bits": 0}
        shape = "conv" if node.kernel != node.in_shape[1:] or node.padding else "fc"
        kind = f"{shape} {node.kernel[0]}x{node.kernel[1]} W{node.weight_bits}A{'1' if node.input_kind == 'binary' else '8'}"
        if isinstance(node.output, ThresholdOutput):
            row.update(type=kind, **threshold_fields(node.output.thresholds, node.output.per_position))
        elif isinstance(node.output, AccumulatorOutput):
            row.update(type=f"{kind} acc", note="accumulator to its join")
        else:
            s, b = node.output.scale, node.output.bias
            row.update(type=f"{kind} scores", note=f"score scale {signed_bits(int(s.min()), int(s.max()))} b, "
                                                   f"bias {signed_bits(int(b.min()), int(b.max()))} b")
        return row

    def float_output(self, node: ConvLayer, modules: FloatModules) -> tuple[str, str, str] | None:
        """A threshold conv's u is the output of the last float module it came from (after its pool and
        BatchNorm); its golden key is the pool's name when a pool follows (the IR pool node's bits)."""
        if not node.source or not isinstance(node.output, ThresholdOutput):
            return None
        weight_name, *rest = node.source
        pool = modules.first_pool(rest)
        return pool or node.name, (rest[-1] if rest else weight_name), modules.first_batchnorm(rest)
