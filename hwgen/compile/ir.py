"""The integer IR of a streaming binary network (what the hardware computes).

A network is a graph of nodes (layers) listed in a topological order,
executed on one frame of uint8 pixels (C, H, W). Every node has a unique
``name`` and reads the outputs of the nodes named in ``inputs`` (the network
input is :data:`INPUT`); an empty ``inputs`` means the previous node of the
list (the network input for the first), so a straight chain is a plain list
whose nodes all have ``inputs == ()`` (:attr:`Network.is_chain`). A node
read by several nodes is a *fork* (its stream is duplicated); a
:class:`JoinLayer` is a residual *join*. There are three node types:

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
      * :class:`AccumulatorOutput`: the integer accumulator itself, read by
        exactly one node, a :class:`JoinLayer` (as its first input).

:class:`MaxPoolLayer`
    Over bits, per channel: OR (``use_and[c] == False``) or AND (True) of each
    ``kernel x kernel`` window, step ``stride``, no padding.

:class:`JoinLayer` (residual join, docs/residual.md)
    ``inputs = (main, shortcut)``: the accumulator ``acc`` (C, H, W) of a conv
    with an :class:`AccumulatorOutput` and shortcut bits ``s`` of the same
    shape. Output bit ``acc >= T[s]`` (direction +1) or ``acc <= T[s]``
    (direction -1): the shortcut bit selects one of two thresholds per channel
    (or per position), ``thresholds`` (2, C) or (2, C, H, W), row 0 for
    ``s = 0`` (value -1) and row 1 for ``s = 1`` (value +1); ``direction``
    (C,) or (C, H, W) is shared by both rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Union

import numpy as np

from hwgen.errors import CompileError

IR_FORMAT = "hwgen-ir"
#: 3: nodes with named inputs (graphs: forks and residual joins, accumulator outputs);
#: 2: optional first-layer input tables, and the sha256 covers the network JSON too (1: the arrays only).
IR_VERSION = 3
#: Versions :func:`hwgen.compile.artifact.load_network` reads (1: no input tables, arrays-only digest;
#: 1 and 2: chains only).
IR_READABLE_VERSIONS = (1, 2, 3)
#: The name under which a node's ``inputs`` refer to the network's input pixels.
INPUT = "input"
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
class AccumulatorOutput:
    """The conv's integer accumulator, passed on unthresholded to the one :class:`JoinLayer` that reads it."""


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
    output: Union[ThresholdOutput, ScoreOutput, AccumulatorOutput]
    input_offset: np.ndarray | None = None  # int64 (C_in,), uint8 inputs only
    input_table: np.ndarray | None = None  # int64 (C_in, 256), uint8 inputs only; replaces input_offset
    source: list[str] = field(default_factory=list)  # names of the float layers this came from
    inputs: tuple[str, ...] = ()  # () = the previous node (see the module docstring)

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
    inputs: tuple[str, ...] = ()  # () = the previous node

    @property
    def out_shape(self) -> tuple[int, int, int]:
        c, h, w = self.in_shape
        return (c, (h - self.kernel) // self.stride + 1, (w - self.kernel) // self.stride + 1)


@dataclass
class JoinLayer:
    """Residual join: bit ``acc >= T[s]`` (or ``<=``), the shortcut bit ``s`` selecting the threshold row.

    ``inputs = (main, shortcut)``; ``in_shape`` = out_shape = (C, H, W) of
    both inputs; ``thresholds`` int64 (2, C) or (2, C, H, W); ``direction``
    int8 in {+1, -1}, (C,) or (C, H, W). ``source``: the float layers it came from.
    """

    name: str
    in_shape: tuple[int, int, int]
    thresholds: np.ndarray
    direction: np.ndarray
    inputs: tuple[str, str]
    source: list[str] = field(default_factory=list)

    @property
    def out_shape(self) -> tuple[int, int, int]:
        return tuple(self.in_shape)

    @property
    def per_position(self) -> bool:
        return self.thresholds.ndim == 4

    def row(self, s: int) -> ThresholdOutput:
        """The thresholds used where the shortcut bit is ``s`` (0 or 1)."""
        return ThresholdOutput(thresholds=self.thresholds[s], direction=self.direction)


Layer = Union[ConvLayer, MaxPoolLayer, JoinLayer]


@dataclass
class Network:
    """A compiled network: uint8 input of ``input_shape``, nodes in topological order, ``num_classes`` scores.

    ``layers`` is the topological list of nodes; for a chain (every node
    reads the previous one, :attr:`is_chain`) it is the whole network, as
    version-2 readers expect. Graph structure is read through
    :meth:`inputs_of`, which resolves the ``()`` default.
    """

    name: str
    input_shape: tuple[int, int, int]
    layers: list[Layer]
    num_classes: int
    metadata: dict = field(default_factory=dict)

    def inputs_of(self, index: int) -> tuple[str, ...]:
        """The names the node at ``index`` reads: its ``inputs``, or the previous node (:data:`INPUT` first)."""
        node = self.layers[index]
        if node.inputs:
            return tuple(node.inputs)
        return (self.layers[index - 1].name if index else INPUT,)

    @property
    def is_chain(self) -> bool:
        """Every node reads exactly the previous one (no fork, no join)."""
        return all(self.inputs_of(i) == ((self.layers[i - 1].name if i else INPUT),)
                   for i in range(len(self.layers)))

    @property
    def joins(self) -> list[JoinLayer]:
        return [node for node in self.layers if isinstance(node, JoinLayer)]

    def consumers(self) -> dict[str, list[str]]:
        """For :data:`INPUT` and every node name, the names of the nodes that read it (topological order)."""
        readers: dict[str, list[str]] = {INPUT: [], **{node.name: [] for node in self.layers}}
        for i, node in enumerate(self.layers):
            for name in self.inputs_of(i):
                readers.setdefault(name, []).append(node.name)
        return readers

    def require_chain(self, what: str) -> None:
        """CompileError unless the network is a chain; ``what`` says which stage needs one."""
        if not self.is_chain:
            joins = ", ".join(j.name for j in self.joins) or "none"
            raise CompileError(f"{self.name!r} is a residual network (joins: {joins}); {what}")


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
