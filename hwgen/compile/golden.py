"""The integer golden model: what the hardware computes, bit for bit.

Pure numpy, integer-exact. This module is *the* definition of a compiled
network's output (DESIGN.md section 2); the PyTorch eval model must agree with
it and the RTL must equal it. The semantics are those of :mod:`hwgen.compile.ir`;
each node kind's arithmetic is in its module of :mod:`hwgen.compile.kinds`:

* convolution (:func:`conv_accumulate`): ``acc[n, o, y, x] = sum_{c, i, j valid} W[o, c, i, j] *
  v[n, c, y*s + i - pad, x*s + j - pad]``, bit-packed XNOR-popcount for binary
  inputs and weights, an exact float64 matmul otherwise
  (:mod:`hwgen.compile.kinds.conv`);
* thresholds (:func:`apply_threshold`): bits ``acc >= T`` (direction +1) or ``acc <= T`` (direction -1);
* max-pooling (:func:`max_pool_bits`): the OR or AND of each window of bits, per channel;
* the last layer's scores (:func:`class_scores`): ``scale_c * acc_c + bias_c`` (int64),
  the prediction their argmax, ties to the lowest index;
* a residual join (:func:`join_bits`): a conv's accumulator against the row
  of its two thresholds that the shortcut bit selects.

:func:`run_network` checks the graph and evaluates the nodes in their
topological order, each with its kind's :meth:`~hwgen.compile.kinds.NodeKind.evaluate`.
The public functions take and return NCHW arrays (bits are uint8 in {0, 1},
scores int64); inside :func:`run_network` activations are channel-last
(N, H, W, C), the order in which a streaming engine sees a receptive field.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from hwgen.compile.ir import INPUT, Network
from hwgen.compile.kinds import kind_of
from hwgen.compile.kinds.conv import class_scores, conv_accumulate, pack_bits
from hwgen.compile.kinds.join import join_bits
from hwgen.compile.kinds.pool import max_pool_bits
from hwgen.compile.kinds.thresholds import apply_threshold
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


@dataclass
class GoldenResult:
    """Output of :func:`run_network` on N images.

    ``scores``: int64 (N, num_classes). ``predictions``: int64 (N,), the argmax
    of each row of ``scores`` with ties to the lowest index. ``intermediates``
    (only with ``keep_intermediates=True``): for every layer name its output
    (uint8 bits (N, C, H, W) for threshold, pool and join layers, int64 scores
    (N, num_classes) for the last layer; none for a conv whose output is its
    accumulator) and, for every conv layer,
    ``f"{name}.acc"``: its integer accumulator (N, C_out, H_out, W_out)
    (int32, or int64 for accumulators that do not fit in int32).
    """

    scores: np.ndarray
    predictions: np.ndarray
    intermediates: dict[str, np.ndarray] = field(default_factory=dict)


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
        kind = kind_of(node)
        inputs = net.inputs_of(i)
        if len(inputs) != kind.arity or any(name not in shapes for name in inputs):
            raise CompileError(f"layer {node.name!r} reads {list(inputs)}: it needs {kind.arity} "
                               f"input(s), each the network input or an earlier layer")
        for name in inputs:
            if shapes[name] != tuple(node.in_shape):
                raise CompileError(f"layer {node.name!r} expects input {tuple(node.in_shape)}, "
                                   f"{name!r} gives {shapes[name]}")
        kind.check(node, [kinds[name] for name in inputs], last)
        shapes[node.name], kinds[node.name] = tuple(node.out_shape), kind.produces(node)
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
            kind = kind_of(node)
            x = kind.evaluate(node, [values[name] for name in inputs[i]], keep)
            for name in inputs[i]:
                if last_read[name] == i:
                    del values[name]
            values[node.name] = x
            if kind.produces(node) != "acc":
                keep(node.name, x)
        scores[a:a + batch_size] = values[net.layers[-1].name]
    intermediates = {key: parts[0] if len(parts) == 1 else np.concatenate(parts)
                     for key, parts in inter.items()}
    predictions = np.argmax(scores, axis=1).astype(np.int64)  # first maximum: lowest index
    return GoldenResult(scores=scores, predictions=predictions, intermediates=intermediates)
