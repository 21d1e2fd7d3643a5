"""Small random IR networks for hardware tests, with thresholds that make every layer's bits vary.

:func:`random_network` builds a uint8 first layer (sliding or whole-map), optional
pools, binary layers and a score layer from a compact spec; thresholds are
drawn between per-channel quantiles of the accumulators that random images
actually produce (so outputs are neither constant nor trivially balanced),
some channels get constant outputs (thresholds outside the range), pool modes
are random OR / AND, and the score layer gets random integer scales and biases.
With ``per_position`` every threshold layer gets a threshold per output
position (XNOR-Net++ Gamma shapes 2-4), drawn from the accumulators that
occur at that position; with ``mixed_directions`` some channels compare
``<=`` everywhere and others at random positions (a channel whose scale
changes sign), so the flip pass and the engines' inversion bits are both needed.
"""

from __future__ import annotations

import numpy as np

from hwgen.compile.golden import apply_threshold, conv_accumulate, max_pool_bits
from hwgen.compile.ir import ConvLayer, MaxPoolLayer, Network, ScoreOutput, ThresholdOutput, accumulator_range


def _weights(rng: np.random.Generator, shape: tuple[int, ...], bits: int) -> np.ndarray:
    if bits == 1:
        return rng.choice(np.array([-1, 1], dtype=np.int64), size=shape)
    m = (1 << (bits - 1)) - 1
    return rng.integers(-m, m + 1, size=shape, dtype=np.int64)


def _thresholds(rng: np.random.Generator, layer: ConvLayer, acc: np.ndarray, *, per_position: bool = False,
                mixed_directions: bool = False, factored: bool = False) -> ThresholdOutput:
    """Thresholds between the 20 % and 80 % quantiles of ``acc`` (N, C, H, W), per channel or per position
    (C, H, W); a few constants; directions +1, or with ``mixed_directions`` -1 on whole channels and at
    random positions. ``factored`` (per position): as XNOR-Net++ Gamma shape 4 makes them, T[c, h, w] =
    ceil(tau_c / (beta_h gamma_w)) with tau_c the channel's median and beta, gamma in [0.7, 1.4], no constants
    (hwgen/hw/engines/threshold_factors.py stores such thresholds factored where that pays)."""
    c = acc.shape[1]
    if per_position and factored:
        _, h, w = layer.out_shape
        tau = np.median(acc.transpose(1, 0, 2, 3).reshape(c, -1), axis=1)
        g = 1.0 / np.outer(rng.uniform(0.7, 1.4, size=h), rng.uniform(0.7, 1.4, size=w))
        d = np.ones((c, h, w), dtype=np.int8)
        if mixed_directions:
            d[rng.random(c) < 0.3] = -1  # whole channels: a negative alpha_c
        return ThresholdOutput(np.ceil(tau[:, None, None] * g).astype(np.int64), d)
    samples = acc.transpose(1, 2, 3, 0) if per_position else acc.transpose(1, 0, 2, 3).reshape(c, -1)
    lo_q, hi_q = np.quantile(samples, [0.2, 0.8], axis=-1)
    t = np.array([rng.integers(int(a), int(b) + 1) for a, b in zip(lo_q.ravel(), hi_q.ravel())],
                 dtype=np.int64).reshape(lo_q.shape)
    lo, hi = accumulator_range(layer)
    constant = rng.random(t.shape) < 0.1
    t = np.where(constant, rng.choice(np.array([lo, hi + 1]), size=t.shape), t)
    d = np.ones(t.shape, dtype=np.int8)
    if mixed_directions:
        d[rng.random(c) < 0.3] = -1
        if per_position:
            d[rng.random(t.shape) < 0.2] *= -1
    return ThresholdOutput(t, d)


def random_network(rng: np.random.Generator, input_shape: tuple[int, int, int], layers: list[tuple],
                   *, num_classes: int = 10, first_weight_bits: int = 1, last_weight_bits: int = 1,
                   probe_images: int = 64, per_position: bool = False, mixed_directions: bool = False,
                   input_table: bool = False, factored_thresholds: bool = False) -> Network:
    """A random network; ``layers`` lists ("conv", C_out, K, stride, pad), ("pool", K) or ("pool", K, stride)
    and ("fc", C_out).

    The first entry must be a conv or fc layer (uint8 inputs, ``first_weight_bits``);
    the last layer is added: a whole-map score layer with ``num_classes`` outputs
    and ``last_weight_bits`` weights (binary inputs). ``input_table``: the first
    layer maps pixels through a random per-channel table (C, 256) of values in
    [-128, 127] (any function of the pixel, as a QONNX import gives) instead of
    ``x - p_c``.
    """
    probe = rng.integers(0, 256, size=(probe_images, *input_shape), dtype=np.uint8)
    x, shape, kind = probe, tuple(input_shape), "uint8"
    out: list = []
    specs = list(layers) + [("score", num_classes)]
    for index, spec in enumerate(specs):
        name = f"l{index}_{spec[0]}"
        if spec[0] == "pool":
            k = spec[1]
            layer = MaxPoolLayer(name=name, in_shape=shape, kernel=k, stride=spec[2] if len(spec) > 2 else k,
                                 use_and=rng.random(shape[0]) < 0.5)
            x = max_pool_bits(x, layer)
        else:
            if spec[0] == "conv":
                _, c_out, k, stride, pad = spec
                kh = kw = k
            else:  # fc / score: the kernel covers the whole map
                c_out, stride, pad, (kh, kw) = spec[1], 1, 0, shape[1:]
            bits = first_weight_bits if kind == "uint8" else last_weight_bits if spec[0] == "score" else 1
            layer = ConvLayer(name=name, in_shape=shape, weights=_weights(rng, (c_out, shape[0], kh, kw), bits),
                              weight_bits=bits, stride=stride, padding=pad, input_kind=kind, output=None,
                              input_offset=rng.integers(0, 256, size=shape[0]).astype(np.int64)
                              if kind == "uint8" and not input_table else None,
                              input_table=rng.integers(-128, 128, size=(shape[0], 256)).astype(np.int64)
                              if kind == "uint8" and input_table else None)
            acc = conv_accumulate(layer, x)
            if spec[0] == "score":
                layer.output = ScoreOutput(scale=rng.integers(1, 50, size=c_out).astype(np.int64),
                                           bias=rng.integers(-500, 500, size=c_out).astype(np.int64))
            else:
                layer.output = _thresholds(rng, layer, acc, per_position=per_position,
                                           mixed_directions=mixed_directions, factored=factored_thresholds)
                x = apply_threshold(acc, layer.output)
            kind = "binary"
        out.append(layer)
        shape = layer.out_shape
    return Network(name="random", input_shape=tuple(input_shape), layers=out, num_classes=num_classes)


def redrawn_weights(net: Network, seed: int) -> Network:
    """A copy of ``net`` with new random +-1 weights in every hidden layer (the first and last layers and
    every threshold kept): another weight set of the same architecture."""
    import copy

    other = copy.deepcopy(net)
    rng = np.random.default_rng(seed)
    for layer in other.layers[1:-1]:
        w = getattr(layer, "weights", None)
        if w is not None:
            layer.weights = rng.choice(np.array([-1, 1], dtype=w.dtype), size=w.shape)
    return other
