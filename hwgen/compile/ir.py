"""The integer IR of a streaming binary network (what the hardware computes).

A network is an input stage and a list of layers, executed in order on one
frame of uint8 pixels (C, H, W). There are two layer types:

:class:`ConvLayer` (convolution; a fully connected layer is a convolution whose
kernel covers its whole input, so flatten needs no layer of its own)
    Input: ``input_kind == "uint8"``: integer pixels ``x`` mapped per
    channel to the integer values ``v = x - p_c`` (``input_offset`` p_c) or,
    when the layer has an ``input_table`` (C_in, 256), ``v = table[c, x]``
    (any exact function of the pixel, e.g. Brevitas CNV's
    ``clip(round(128 * (2x/255 - 1)), -128, 127)``); :func:`input_values`
    gives the table in both cases. Padded taps contribute 0.
    ``input_kind == "binary"``: bits b in
    {0, 1} standing for the values ``2b - 1``; padded taps contribute 0.
    Weights: integers (C_out, C_in, KH, KW), +-1 when ``weight_bits == 1``,
    else in [-(2^(k-1) - 1), 2^(k-1) - 1].
    Accumulator: ``acc[o, y, x] = sum_{c, i, j valid} W[o, c, i, j] * v[c, y*s + i - pad, x*s + j - pad]``.
    For binary inputs and weights: ``acc = 2 * popcount(XNOR(x, w) & valid) - popcount(valid)``.
    Output, one of
      * :class:`ThresholdOutput`: bit ``acc >= T`` where ``direction == +1``,
        ``acc <= T`` where ``direction == -1``; ``T`` and ``direction`` have
        shape (C_out,) (per channel) or (C_out, H_out, W_out) (per position).
        A constant output is a threshold outside the accumulator's range.
      * :class:`ScoreOutput` (last layer only): integer class scores
        ``score_c = scale_c * acc_c + bias_c`` over a (C_out, 1, 1) output;
        the prediction is the argmax, ties to the lowest index.

:class:`MaxPoolLayer`
    Over bits, per channel: OR (``use_and[c] == False``) or AND (True) of each
    ``kernel x kernel`` window, step ``stride``, no padding.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Union

import numpy as np

IR_FORMAT = "hwgen-ir"
#: 2: optional first-layer input tables, and the sha256 covers the network JSON too (1: the arrays only).
IR_VERSION = 2
#: Versions :func:`hwgen.compile.artifact.load_network` reads (1: no input tables, arrays-only digest).
IR_READABLE_VERSIONS = (1, 2)
#: Entries of a first layer's input table: one per uint8 pixel value.
PIXEL_VALUES = 256


@dataclass
class ThresholdOutput:
    """Bits ``acc >= T`` (direction +1) or ``acc <= T`` (direction -1), per channel or per position."""

    thresholds: np.ndarray  # int64, (C_out,) or (C_out, H_out, W_out)
    direction: np.ndarray  # int8 in {+1, -1}, same shape

    @property
    def per_position(self) -> bool:
        return self.thresholds.ndim == 3


@dataclass
class ScoreOutput:
    """Integer class scores ``scale_c * acc_c + bias_c``; prediction = argmax, lowest index on ties."""

    scale: np.ndarray  # int64 (C_out,)
    bias: np.ndarray  # int64 (C_out,)


@dataclass
class ConvLayer:
    """Convolution (or fully connected, as a whole-input kernel) with an integer accumulator."""

    name: str
    in_shape: tuple[int, int, int]  # (C_in, H, W)
    weights: np.ndarray  # int (C_out, C_in, KH, KW)
    weight_bits: int
    stride: int
    padding: int
    input_kind: str  # "uint8" | "binary"
    output: Union[ThresholdOutput, ScoreOutput]
    input_offset: np.ndarray | None = None  # int64 (C_in,), uint8 inputs only
    input_table: np.ndarray | None = None  # int64 (C_in, 256), uint8 inputs only; replaces input_offset
    source: list[str] = field(default_factory=list)  # names of the float layers this came from

    @property
    def out_channels(self) -> int:
        return int(self.weights.shape[0])

    @property
    def kernel(self) -> tuple[int, int]:
        return int(self.weights.shape[2]), int(self.weights.shape[3])

    @property
    def out_shape(self) -> tuple[int, int, int]:
        (kh, kw), (_, h, w) = self.kernel, self.in_shape
        return (self.out_channels, (h + 2 * self.padding - kh) // self.stride + 1,
                (w + 2 * self.padding - kw) // self.stride + 1)

    @property
    def fan_in(self) -> int:
        return int(np.prod(self.weights.shape[1:]))


@dataclass
class MaxPoolLayer:
    """Per-channel OR / AND pooling of bits."""

    name: str
    in_shape: tuple[int, int, int]
    kernel: int
    stride: int
    use_and: np.ndarray  # bool (C,)

    @property
    def out_shape(self) -> tuple[int, int, int]:
        c, h, w = self.in_shape
        return (c, (h - self.kernel) // self.stride + 1, (w - self.kernel) // self.stride + 1)


Layer = Union[ConvLayer, MaxPoolLayer]


@dataclass
class Network:
    """A compiled network: uint8 input of ``input_shape``, layers, ``num_classes`` scores."""

    name: str
    input_shape: tuple[int, int, int]
    layers: list[Layer]
    num_classes: int
    metadata: dict = field(default_factory=dict)


def input_values(layer: ConvLayer) -> np.ndarray:
    """int64 (C_in, 256): the value ``v`` that pixel x of channel c stands for in a uint8-input layer.

    ``layer.input_table`` when it has one, else ``x - input_offset[c]``.
    """
    if layer.input_table is not None:
        return np.asarray(layer.input_table, dtype=np.int64)
    p = np.asarray(layer.input_offset, dtype=np.int64).reshape(-1, 1)
    return np.arange(PIXEL_VALUES, dtype=np.int64)[None, :] - p


def input_range(layer: ConvLayer) -> tuple[np.ndarray, np.ndarray]:
    """Per input channel (lo, hi) of the values a tap can take, 0 (a padded tap) included; int64 (C_in,)."""
    if layer.input_kind == "binary":
        ones = np.ones(layer.in_shape[0], dtype=np.int64)
        return -ones, ones
    v = input_values(layer)
    return np.minimum(v.min(axis=1), 0), np.maximum(v.max(axis=1), 0)


def accumulator_range(layer: ConvLayer) -> tuple[int, int]:
    """Exact (min, max) of ``acc`` over all inputs, from the weights and the input range.

    Per tap the contribution is W * v with v in [-1, 1] (binary, 0 when padded)
    or [min_x v_c(x), max_x v_c(x)] widened to contain 0 (uint8; a padded tap
    gives 0), so the extremes are sums of per-tap extremes.
    """
    w = layer.weights.astype(np.int64)
    lo_c, hi_c = input_range(layer)
    lo = np.broadcast_to(lo_c.reshape(1, -1, 1, 1), w.shape)
    hi = np.broadcast_to(hi_c.reshape(1, -1, 1, 1), w.shape)
    per_tap_max = np.maximum(w * lo, w * hi)
    per_tap_min = np.minimum(w * lo, w * hi)
    sums_max = per_tap_max.reshape(len(w), -1).sum(axis=1)
    sums_min = per_tap_min.reshape(len(w), -1).sum(axis=1)
    return int(sums_min.min()), int(sums_max.max())


def signed_bits(lo: int, hi: int) -> int:
    """Bits of the smallest two's-complement integer holding every value in [lo, hi]."""
    bits = 1
    while not (-(1 << (bits - 1)) <= lo and hi <= (1 << (bits - 1)) - 1):
        bits += 1
    return bits
