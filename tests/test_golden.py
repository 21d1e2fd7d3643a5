"""The integer golden model against a naive reference written here.

The reference works on explicit int64 values (+-1 for bits, x - p for
pixels), zero-pads them with np.pad and sums over each receptive field with
einsum: independent of the bit-packed / float64 code under test.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hwgen.compile.golden import (
    GoldenResult,
    apply_threshold,
    class_scores,
    conv_accumulate,
    max_pool_bits,
    run_network,
)
from hwgen.compile.ir import (
    ConvLayer,
    MaxPoolLayer,
    Network,
    ScoreOutput,
    ThresholdOutput,
    accumulator_range,
)

# ---------------------------------------------------------------------------
# Naive reference
# ---------------------------------------------------------------------------


def ref_values(layer: ConvLayer, inputs: np.ndarray) -> np.ndarray:
    x = inputs.astype(np.int64)
    if layer.input_kind == "binary":
        return 2 * x - 1
    return x - np.asarray(layer.input_offset, dtype=np.int64).reshape(1, -1, 1, 1)


def ref_conv(layer: ConvLayer, inputs: np.ndarray) -> np.ndarray:
    v = ref_values(layer, inputs)
    pad, s = layer.padding, layer.stride
    v = np.pad(v, ((0, 0), (0, 0), (pad, pad), (pad, pad)))  # padded taps are 0
    w = np.asarray(layer.weights, dtype=np.int64)
    kh, kw = w.shape[2:]
    co, ho, wo = layer.out_shape
    out = np.zeros((inputs.shape[0], co, ho, wo), dtype=np.int64)
    for y in range(ho):
        for x in range(wo):
            patch = v[:, :, y * s:y * s + kh, x * s:x * s + kw]
            out[:, :, y, x] = np.einsum("ncij,ocij->no", patch, w)
    return out


def ref_threshold(acc, t, d):
    n, c, h, w = acc.shape
    t = np.broadcast_to(t.reshape(c, *(t.shape[1:] or (1, 1))), (c, h, w))
    d = np.broadcast_to(d.reshape(c, *(d.shape[1:] or (1, 1))), (c, h, w))
    out = np.zeros(acc.shape, dtype=np.uint8)
    for i in range(n):
        for ch in range(c):
            for y in range(h):
                for x in range(w):
                    a = acc[i, ch, y, x]
                    out[i, ch, y, x] = (a >= t[ch, y, x]) if d[ch, y, x] == 1 else (a <= t[ch, y, x])
    return out


def ref_pool(bits, layer: MaxPoolLayer):
    k, s = layer.kernel, layer.stride
    c, ho, wo = layer.out_shape
    out = np.zeros((bits.shape[0], c, ho, wo), dtype=np.uint8)
    for i in range(bits.shape[0]):
        for ch in range(c):
            for y in range(ho):
                for x in range(wo):
                    win = [int(bits[i, ch, y * s + a, x * s + b]) for a in range(k) for b in range(k)]
                    out[i, ch, y, x] = all(win) if layer.use_and[ch] else any(win)
    return out


def ref_scores(acc, out: ScoreOutput):
    return np.array([[int(out.scale[c]) * int(acc[n, c, 0, 0]) + int(out.bias[c])
                      for c in range(acc.shape[1])] for n in range(acc.shape[0])], dtype=np.int64)


def ref_argmax(scores):
    preds = []
    for row in scores:
        best = 0
        for c in range(1, len(row)):
            if row[c] > row[best]:
                best = c
        preds.append(best)
    return np.array(preds, dtype=np.int64)


def ref_network(net: Network, pixels: np.ndarray):
    x = pixels
    outs = {}
    for layer in net.layers:
        if isinstance(layer, MaxPoolLayer):
            x = ref_pool(x, layer)
        else:
            acc = ref_conv(layer, x)
            outs[f"{layer.name}.acc"] = acc
            if isinstance(layer.output, ScoreOutput):
                x = ref_scores(acc, layer.output)
            else:
                x = ref_threshold(acc, layer.output.thresholds, layer.output.direction)
        outs[layer.name] = x
    return x, outs


# ---------------------------------------------------------------------------
# Builders
# ---------------------------------------------------------------------------


def make_weights(rng, shape, bits):
    if bits == 1:
        return rng.choice(np.array([-1, 1], dtype=np.int64), size=shape)
    m = (1 << (bits - 1)) - 1
    return rng.integers(-m, m + 1, size=shape, dtype=np.int64)


def make_conv(rng, name, in_shape, c_out, k, *, stride=1, padding=0, kind="binary",
              weight_bits=1, output=None, offset=None):
    w = make_weights(rng, (c_out, in_shape[0], k, k), weight_bits)
    layer = ConvLayer(name=name, in_shape=tuple(in_shape), weights=w, weight_bits=weight_bits,
                      stride=stride, padding=padding, input_kind=kind, output=None,
                      input_offset=None)
    if kind == "uint8":
        layer.input_offset = (rng.integers(0, 256, size=in_shape[0]) if offset is None
                              else np.full(in_shape[0], offset)).astype(np.int64)
    if output is None:
        output = ThresholdOutput(np.zeros(c_out, np.int64), np.ones(c_out, np.int8))
    layer.output = output
    return layer


def make_inputs(rng, n, shape, kind):
    hi = 2 if kind == "binary" else 256
    return rng.integers(0, hi, size=(n, *shape), dtype=np.uint8)


def random_thresholds(rng, layer: ConvLayer, per_position: bool):
    lo, hi = accumulator_range(layer)
    shape = layer.out_shape if per_position else (layer.out_channels,)
    # Mostly inside the range, some constants just outside it.
    t = rng.integers(lo - 2, hi + 3, size=shape, dtype=np.int64)
    d = rng.choice(np.array([-1, 1], dtype=np.int8), size=shape)
    return ThresholdOutput(t, d)


# ---------------------------------------------------------------------------
# conv_accumulate
# ---------------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(
    c_in=st.integers(1, 70),
    c_out=st.integers(1, 5),
    k=st.integers(1, 3),
    stride=st.integers(1, 2),
    padding=st.integers(0, 1),
    h=st.integers(1, 6),
    w=st.integers(1, 6),
    kind=st.sampled_from(["binary", "uint8"]),
    weight_bits=st.sampled_from([1, 2, 4, 8]),
    n=st.integers(1, 3),
    seed=st.integers(0, 2**32 - 1),
)
def test_conv_matches_reference(c_in, c_out, k, stride, padding, h, w, kind, weight_bits, n, seed):
    if h + 2 * padding < k or w + 2 * padding < k:
        k = min(h, w) + 2 * padding  # keep the output non-empty
    rng = np.random.default_rng(seed)
    layer = make_conv(rng, "c", (c_in, h, w), c_out, k, stride=stride, padding=padding,
                      kind=kind, weight_bits=weight_bits)
    x = make_inputs(rng, n, layer.in_shape, kind)
    got = conv_accumulate(layer, x)
    assert got.shape == (n, *layer.out_shape)
    assert np.issubdtype(got.dtype, np.signedinteger)
    np.testing.assert_array_equal(got, ref_conv(layer, x))
    lo, hi = accumulator_range(layer)
    assert lo <= got.min() and got.max() <= hi


@pytest.mark.parametrize("c_in", [63, 64, 65, 128, 129])
def test_xnor_word_boundaries(c_in):
    """1x1 and 3x3 binary convs with the fan-in just around multiples of 64."""
    rng = np.random.default_rng(c_in)
    for k, pad in ((1, 0), (3, 1)):
        layer = make_conv(rng, "c", (c_in, 5, 4), 7, k, padding=pad)
        x = make_inputs(rng, 4, layer.in_shape, "binary")
        np.testing.assert_array_equal(conv_accumulate(layer, x), ref_conv(layer, x))


@pytest.mark.parametrize("offset", [0, 128, 255])
def test_uint8_extreme_offsets(offset):
    rng = np.random.default_rng(offset)
    layer = make_conv(rng, "c", (3, 6, 6), 4, 3, padding=1, kind="uint8", weight_bits=8,
                      offset=offset)
    x = make_inputs(rng, 3, layer.in_shape, "uint8")
    x[0] = 255
    x[1] = 0
    np.testing.assert_array_equal(conv_accumulate(layer, x), ref_conv(layer, x))


@pytest.mark.parametrize("c_in", [5, 15, 64])  # fan-in 45 (1 word), 135 (3, partial), 576 (9)
def test_xnor_padding_contributes_zero(c_in):
    """All-ones bits and all +1 weights: acc is C_in times the number of valid taps.

    An XNOR path that ignored the valid mask would count padded taps as -1
    (bit 0 vs weight 1) or +1, and the borders would differ.
    """
    layer = make_conv(np.random.default_rng(0), "c", (c_in, 4, 5), 2, 3, padding=1)
    layer.weights = np.ones_like(layer.weights)
    x = np.ones((1, c_in, 4, 5), dtype=np.uint8)
    acc = conv_accumulate(layer, x)
    rows = np.array([2, 3, 3, 2])[:, None]
    cols = np.array([2, 3, 3, 3, 2])[None, :]
    np.testing.assert_array_equal(acc[0, 0], c_in * rows * cols)
    np.testing.assert_array_equal(acc[0, 1], c_in * rows * cols)
    assert acc[0, 0, 0, 0] == 4 * c_in  # corner: 4 valid taps

    # Padding changes nothing in the interior, only the border.
    unpadded = make_conv(np.random.default_rng(0), "u", (c_in, 4, 5), 2, 3, padding=0)
    unpadded.weights = layer.weights
    acc_u = conv_accumulate(unpadded, x)
    np.testing.assert_array_equal(acc[:, :, 1:-1, 1:-1], acc_u)
    assert np.all(acc_u == 9 * c_in)

    # Zero bits (value -1) with weights +1: padded taps still contribute 0.
    acc0 = conv_accumulate(layer, np.zeros_like(x))
    np.testing.assert_array_equal(acc0[0, 0], -c_in * rows * cols)


def test_xnor_padding_random_against_matmul_path():
    """The bit-packed path equals the float64 path (same layer, weights as 2-bit ints)."""
    rng = np.random.default_rng(1)
    layer = make_conv(rng, "c", (70, 6, 6), 9, 3, padding=1, stride=2)
    x = make_inputs(rng, 5, layer.in_shape, "binary")
    as_int = make_conv(rng, "c2", (70, 6, 6), 9, 3, padding=1, stride=2, weight_bits=2)
    as_int.weights = layer.weights.copy()
    np.testing.assert_array_equal(conv_accumulate(layer, x), conv_accumulate(as_int, x))


def test_conv_rejects_bad_inputs():
    rng = np.random.default_rng(0)
    layer = make_conv(rng, "c", (2, 3, 3), 2, 3)
    with pytest.raises(ValueError):
        conv_accumulate(layer, np.full((1, 2, 3, 3), 2, dtype=np.uint8))  # not bits
    with pytest.raises(ValueError):
        conv_accumulate(layer, np.zeros((1, 3, 3, 3), dtype=np.uint8))  # wrong shape


# ---------------------------------------------------------------------------
# Thresholds, pooling, scores
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("per_position", [False, True])
def test_thresholds(per_position):
    rng = np.random.default_rng(int(per_position))
    acc = rng.integers(-20, 21, size=(4, 6, 3, 5), dtype=np.int64)
    shape = (6, 3, 5) if per_position else (6,)
    t = rng.integers(-10, 11, size=shape, dtype=np.int64)
    d = rng.choice(np.array([-1, 1], dtype=np.int8), size=shape)
    # Constants: thresholds below / above the accumulator range, both directions.
    t.reshape(6, -1)[0], d.reshape(6, -1)[0] = -1000, 1   # always 1
    t.reshape(6, -1)[1], d.reshape(6, -1)[1] = 1000, 1    # always 0
    t.reshape(6, -1)[2], d.reshape(6, -1)[2] = -1000, -1  # always 0
    t.reshape(6, -1)[3], d.reshape(6, -1)[3] = 1000, -1   # always 1
    bits = apply_threshold(acc, ThresholdOutput(t, d))
    assert bits.dtype == np.uint8 and bits.shape == acc.shape
    np.testing.assert_array_equal(bits, ref_threshold(acc, t, d))
    assert np.all(bits[:, 0] == 1) and np.all(bits[:, 1] == 0)
    assert np.all(bits[:, 2] == 0) and np.all(bits[:, 3] == 1)


def test_threshold_equality_is_inclusive():
    acc = np.array([4, 5, 6], dtype=np.int64).reshape(1, 3, 1, 1)
    up = apply_threshold(acc, ThresholdOutput(np.array([5, 5, 5]), np.array([1, 1, 1], np.int8)))
    down = apply_threshold(acc, ThresholdOutput(np.array([5, 5, 5]), np.array([-1, -1, -1], np.int8)))
    assert up.ravel().tolist() == [0, 1, 1]
    assert down.ravel().tolist() == [1, 1, 0]


@pytest.mark.parametrize("in_shape,kernel,stride", [
    ((5, 8, 8), 2, 2),
    ((5, 7, 5), 2, 2),   # non-dividing: last row / column dropped
    ((3, 6, 7), 3, 2),
    ((4, 5, 5), 3, 1),
])
def test_pool(in_shape, kernel, stride):
    rng = np.random.default_rng(kernel * 10 + stride)
    use_and = np.arange(in_shape[0]) % 2 == 1
    layer = MaxPoolLayer("p", in_shape, kernel, stride, use_and)
    bits = (rng.random((3, *in_shape)) < 0.5).astype(np.uint8)
    got = max_pool_bits(bits, layer)
    assert got.dtype == np.uint8 and got.shape == (3, *layer.out_shape)
    np.testing.assert_array_equal(got, ref_pool(bits, layer))


def test_pool_or_and_differ():
    bits = np.array([[1, 0], [0, 0]], dtype=np.uint8).reshape(1, 1, 2, 2).repeat(2, axis=1)
    layer = MaxPoolLayer("p", (2, 2, 2), 2, 2, np.array([False, True]))
    assert max_pool_bits(bits, layer).ravel().tolist() == [1, 0]


def test_scores_and_tie_breaking():
    acc = np.array([[3, 5, 5, 1], [-2, -2, -2, -2], [0, 1, 7, 7]], dtype=np.int64)[:, :, None, None]
    out = ScoreOutput(scale=np.array([1, 1, 1, 1]), bias=np.array([0, 0, 0, 0]))
    s = class_scores(acc, out)
    assert s.dtype == np.int64
    np.testing.assert_array_equal(s, acc[:, :, 0, 0])
    out2 = ScoreOutput(scale=np.array([2, -1, 3, 1]), bias=np.array([1, 0, -4, 6]))
    np.testing.assert_array_equal(class_scores(acc, out2), ref_scores(acc, out2))

    # Through run_network: a 1x1 "network" whose scores are the pixels minus 0.
    net = Network("ties", (4, 1, 1), [ConvLayer(
        "fc", (4, 1, 1), np.eye(4, dtype=np.int64).reshape(4, 4, 1, 1), 2, 1, 0, "uint8",
        out, input_offset=np.zeros(4, np.int64))], num_classes=4)
    px = np.array([[3, 5, 5, 1], [2, 2, 2, 2], [0, 1, 7, 7], [9, 0, 0, 9]], dtype=np.uint8)
    res = run_network(net, px[:, :, None, None])
    np.testing.assert_array_equal(res.scores, px.astype(np.int64))
    assert res.predictions.tolist() == [1, 0, 2, 0]
    np.testing.assert_array_equal(res.predictions, ref_argmax(res.scores))


# ---------------------------------------------------------------------------
# Whole network
# ---------------------------------------------------------------------------


def small_network(rng) -> Network:
    layers = []
    l1 = make_conv(rng, "conv1", (3, 9, 9), 8, 3, padding=1, kind="uint8", weight_bits=8)
    l1.output = random_thresholds(rng, l1, per_position=False)
    l1.output.thresholds[:] = rng.integers(-2000, 2000, size=8)  # informative bits
    layers.append(l1)
    l2 = make_conv(rng, "conv2", (8, 9, 9), 70, 3, padding=1)
    l2.output = ThresholdOutput(rng.integers(-4, 5, size=l2.out_shape),
                                rng.choice(np.array([-1, 1], np.int8), size=l2.out_shape))
    layers.append(l2)
    layers.append(MaxPoolLayer("pool2", (70, 9, 9), 2, 2, rng.random(70) < 0.5))  # 9 -> 4
    l3 = make_conv(rng, "conv3", (70, 4, 4), 6, 3, stride=1, padding=1, weight_bits=2)
    l3.output = ThresholdOutput(rng.integers(-5, 6, size=6), rng.choice(np.array([-1, 1], np.int8), size=6))
    layers.append(l3)
    l4 = make_conv(rng, "conv4", (6, 4, 4), 16, 2, stride=2)  # -> 2x2
    layers.append(l4)
    l5 = make_conv(rng, "fc", (16, 2, 2), 5, 2,
                   output=ScoreOutput(rng.integers(1, 4, size=5), rng.integers(-3, 4, size=5)))
    layers.append(l5)
    return Network("small", (3, 9, 9), layers, num_classes=5)


def test_run_network_matches_reference():
    rng = np.random.default_rng(7)
    net = small_network(rng)
    px = make_inputs(rng, 11, net.input_shape, "uint8")
    res = run_network(net, px, keep_intermediates=True, batch_size=4)  # several batches
    assert isinstance(res, GoldenResult)
    want_scores, want = ref_network(net, px)
    assert res.scores.dtype == np.int64 and res.scores.shape == (11, 5)
    np.testing.assert_array_equal(res.scores, want_scores)
    assert res.predictions.dtype == np.int64
    np.testing.assert_array_equal(res.predictions, ref_argmax(want_scores))

    keys = {"conv1", "conv1.acc", "conv2", "conv2.acc", "pool2", "conv3", "conv3.acc",
            "conv4", "conv4.acc", "fc", "fc.acc"}
    assert set(res.intermediates) == keys
    for layer in net.layers:
        out = res.intermediates[layer.name]
        if layer.name == "fc":
            assert out.shape == (11, 5) and out.dtype == np.int64
        else:
            assert out.shape == (11, *layer.out_shape) and out.dtype == np.uint8
            assert set(np.unique(out)) <= {0, 1}
        np.testing.assert_array_equal(out, want[layer.name])
        if isinstance(layer, ConvLayer):
            acc = res.intermediates[f"{layer.name}.acc"]
            assert acc.shape == (11, *layer.out_shape)
            assert np.issubdtype(acc.dtype, np.signedinteger)
            np.testing.assert_array_equal(acc, want[f"{layer.name}.acc"])
    # Bits are informative (not all constant) so the comparison means something.
    assert 0 < res.intermediates["conv2"].mean() < 1

    # Without intermediates: same scores, nothing kept; batch size does not matter.
    res2 = run_network(net, px, batch_size=256)
    assert res2.intermediates == {}
    np.testing.assert_array_equal(res2.scores, res.scores)


def test_run_network_validates():
    rng = np.random.default_rng(0)
    net = small_network(rng)
    with pytest.raises(ValueError):
        run_network(net, np.zeros((2, 3, 9, 9), dtype=np.int64))   # not uint8
    with pytest.raises(ValueError):
        run_network(net, np.zeros((2, 3, 8, 8), dtype=np.uint8))   # wrong shape
    from hwgen.errors import CompileError
    bad = Network("bad", net.input_shape, net.layers[:-1], num_classes=5)
    with pytest.raises(CompileError):
        run_network(bad, np.zeros((1, 3, 9, 9), dtype=np.uint8))
