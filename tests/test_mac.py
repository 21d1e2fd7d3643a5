"""MACUnit (first layer: uint8 pixels x k-bit / +-1 weights) vs the golden arithmetic in Amaranth's simulator.

Random small shapes and foldings (binary, 4-bit and 8-bit weights, random
offsets), random pixels and tap masks (padded taps carry garbage data),
random input gaps and output back-pressure; every output beat is compared
exactly with a plain numpy reference of ``sum_valid W * (x - p_c)``, which is
itself cross-checked against :func:`hwgen.compile.golden.conv_accumulate` on
SWU-order window vectors of a padded image. Also: full throughput (NF*SF
cycles per vector), the documented latency, a deliberately wrong expectation
caught by the checker, parameter validation and Verilog export.
"""

from __future__ import annotations

import numpy as np
import pytest
from engine_checks import beats_from_acc, check_timing, simulate
from streams import mismatches

from hwgen.hw.engines import MACUnit
from hwgen.hw.engines.folded import rom_spread
from hwgen.hw.folding import divisors
from hwgen.compile.golden import conv_accumulate
from hwgen.compile.ir import ConvLayer, ThresholdOutput, accumulator_range, signed_bits
from hwgen.errors import BuildError

pytestmark = pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")

# ---------------------------------------------------------------------------
# Reference and driver
# ---------------------------------------------------------------------------

def reference_acc(weights: np.ndarray, offsets: np.ndarray, x: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """(N, C_out) accumulators: sum over valid taps f of W[c, f] * (x_f - p[f mod C_in])."""
    p = np.asarray(offsets, dtype=np.int64)[np.arange(x.shape[1]) % len(offsets)]
    v = (x.astype(np.int64) - p) * valid.astype(np.int64)
    return v @ np.asarray(weights, dtype=np.int64).T


def random_weights(rng: np.random.Generator, bits: int, shape: tuple[int, int]) -> np.ndarray:
    if bits == 1:
        return rng.choice(np.array([-1, 1]), size=shape)
    m = (1 << (bits - 1)) - 1
    w = rng.integers(-m, m + 1, size=shape)
    w.flat[0], w.flat[-1] = m, -m  # the extremes occur
    return w


def random_pixels(rng: np.random.Generator, n: int, fan_in: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixels and tap masks: vector 1 partly padded, vector 2 all padded; padded taps hold garbage."""
    x = rng.integers(0, 256, size=(n, fan_in), dtype=np.int64)
    x[0, 0] = 0
    x[0, -1] = 255  # the extremes occur (when F > 1)
    valid = np.ones((n, fan_in), dtype=np.uint8)
    valid[1] = rng.random(fan_in) < 0.6
    valid[2] = 0
    valid[3:] = rng.random((n - 3, fan_in)) < 0.85
    return x, valid


def near_thresholds(rng: np.random.Generator, acc: np.ndarray, lo: int, hi: int) -> np.ndarray:
    """Thresholds that split the observed accumulators, plus constant-output extremes."""
    c_out = acc.shape[1]
    t = acc[rng.integers(0, len(acc), size=c_out), np.arange(c_out)] + rng.integers(-1, 2, size=c_out)
    t[0] = hi + 1 + int(rng.integers(0, 10**6))  # always 0
    if c_out > 2:
        t[1] = lo - int(rng.integers(0, 10**6))  # always 1
    return t.astype(np.int64)


def random_case(seed: int):
    rng = np.random.default_rng(seed)
    bits = (1, 4, 8)[seed % 3]
    accumulator = seed % 2 == 1
    c_in, k, c_out = int(rng.integers(1, 4)), int(rng.integers(1, 4)), int(rng.integers(2, 9))
    fan_in = k * k * c_in
    pe = int(rng.choice(divisors(c_out)))
    simd = int(rng.choice(divisors(fan_in)))
    while (c_out // pe) * (fan_in // simd) > 36:  # keep the simulation short
        simd = min(d for d in divisors(fan_in) if d > simd)
    w = random_weights(rng, bits, (c_out, fan_in))
    offsets = rng.integers(0, 256, size=c_in)
    x, valid = random_pixels(rng, 12, fan_in)
    t = None
    if not accumulator:
        acc = reference_acc(w, offsets, x, valid)
        probe = MACUnit(weights=w, input_offset=offsets, in_channels=c_in, pe=pe, simd=simd, thresholds=None)
        t = near_thresholds(rng, acc, *probe.acc_range)
    return dict(weights=w, input_offset=offsets, in_channels=c_in, pe=pe, simd=simd, thresholds=t), x, valid


def window_vectors(img: np.ndarray, kernel: int, stride: int, pad: int,
                   rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """SWU-order vectors (one per output position, row-major; fan-in in (i, j, c) order) and tap masks.

    The padded border holds random garbage: only the mask says it contributes 0.
    """
    c, h, w = img.shape
    hp, wp = h + 2 * pad, w + 2 * pad
    padded = rng.integers(0, 256, size=(hp, wp, c))
    padded[pad:pad + h, pad:pad + w] = img.transpose(1, 2, 0)
    inside = np.zeros((hp, wp, c), dtype=np.uint8)
    inside[pad:pad + h, pad:pad + w] = 1
    xs, vs = [], []
    for y in range((hp - kernel) // stride + 1):
        for x in range((wp - kernel) // stride + 1):
            win = np.s_[y * stride:y * stride + kernel, x * stride:x * stride + kernel]
            xs.append(padded[win].reshape(-1))
            vs.append(inside[win].reshape(-1))
    return np.array(xs), np.array(vs)


# ---------------------------------------------------------------------------
# Tests
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("seed", range(16))
def test_random_shapes_with_stalls_match_reference(seed: int) -> None:
    kwargs, x, valid = random_case(seed)
    dut = MACUnit(**kwargs)
    trace = simulate(dut, x, valid, seed=seed, gap_p=0.3, stall_p=0.4)
    acc = reference_acc(kwargs["weights"], kwargs["input_offset"], x, valid)
    expected = beats_from_acc(dut, acc, kwargs["thresholds"])
    assert mismatches(trace.outputs, expected) == [], (
        f"C_in={kwargs['in_channels']} shape={kwargs['weights'].shape} PE={dut.pe} SIMD={dut.simd} "
        f"bits={dut.weight_bits} binary={dut.binary_weights}")


@pytest.mark.parametrize("weight_bits,stride,pad", [(8, 1, 1), (1, 2, 1), (4, 1, 0)])
def test_window_vectors_match_golden_conv(weight_bits: int, stride: int, pad: int) -> None:
    rng = np.random.default_rng(weight_bits * 10 + stride)
    c_in, c_out, k, h, w = 3, 4, 3, 4, 5
    wts = random_weights(rng, weight_bits, (c_out, c_in * k * k)).reshape(c_out, c_in, k, k)
    offsets = rng.integers(0, 256, size=c_in)
    layer = ConvLayer(name="conv0", in_shape=(c_in, h, w), weights=wts, weight_bits=weight_bits,
                      stride=stride, padding=pad, input_kind="uint8",
                      output=ThresholdOutput(thresholds=np.zeros(c_out, dtype=np.int64),
                                             direction=np.ones(c_out, dtype=np.int8)),
                      input_offset=offsets)
    img = rng.integers(0, 256, size=(c_in, h, w), dtype=np.uint8)
    golden = conv_accumulate(layer, img[None])[0]  # (C_out, Ho, Wo)
    golden = golden.reshape(c_out, -1).T.astype(np.int64)  # (positions, C_out), row-major
    x, valid = window_vectors(img, k, stride, pad, rng)
    w_ijc = wts.transpose(0, 2, 3, 1).reshape(c_out, -1)
    assert np.array_equal(reference_acc(w_ijc, offsets, x, valid), golden)

    dut = MACUnit(weights=w_ijc, input_offset=offsets, in_channels=c_in, pe=2, simd=c_in, thresholds=None)
    assert dut.acc_range == accumulator_range(layer)
    assert dut.acc_width == signed_bits(*accumulator_range(layer))
    trace = simulate(dut, x, valid, seed=1, gap_p=0.2, stall_p=0.2)
    assert mismatches(trace.outputs, beats_from_acc(dut, golden, None)) == []


@pytest.mark.parametrize("c_in,k,c_out,pe,simd,bits,accumulator", [
    (3, 3, 4, 4, 27, 8, True),   # NF = SF = 1: one vector per cycle, 5-level tree
    (1, 3, 6, 2, 9, 1, False),   # SF = 1, NF = 3, binary weights
    (3, 2, 4, 2, 3, 4, True),    # both folded, SIMD = C_in
    (3, 1, 2, 1, 1, 8, False),   # PE = SIMD = 1, offset period 3, no tree
    (2, 3, 4, 4, 3, 8, False),   # SIMD neither divides nor is a multiple of C_in: period 2
    (3, 3, 4, 2, 1, 8, False),   # SF = 27 > 16, NF = 2: input buffer in block RAM, its read registered
])
def test_throughput_and_latency(c_in: int, k: int, c_out: int, pe: int, simd: int, bits: int,
                                accumulator: bool) -> None:
    rng = np.random.default_rng(c_out * 100 + simd)
    fan_in = k * k * c_in
    w = random_weights(rng, bits, (c_out, fan_in))
    offsets = rng.integers(0, 256, size=c_in)
    n = 8
    x, valid = random_pixels(rng, n, fan_in)
    acc = reference_acc(w, offsets, x, valid)
    dut = MACUnit(weights=w, input_offset=offsets, in_channels=c_in, pe=pe, simd=simd, thresholds=None)
    t = None if accumulator else near_thresholds(rng, acc, *dut.acc_range)
    dut = MACUnit(weights=w, input_offset=offsets, in_channels=c_in, pe=pe, simd=simd, thresholds=t)
    assert dut.cycles_per_vector == (c_out // pe) * (fan_in // simd)
    # ECP5: only the SF = 27 case's buffer is in block RAM (27 words x 9 bits: 6 LUT RAM cells, more than 4)
    assert dut.read_stages == 2 * (dut.sf == 27)
    # a weight ROM of more than 4 words is in block RAM: its word is registered once more in the fabric; 7
    # includes the output FIFO's output register
    assert dut.latency == 7 + dut.read_stages + (dut.nf * dut.sf > 4) + ((simd - 1).bit_length() + 1) // 2
    trace = simulate(dut, x, valid)
    assert mismatches(trace.outputs, beats_from_acc(dut, acc, t)) == []
    check_timing(dut, trace, n)


@pytest.mark.parametrize("c_out,pe,simd,accumulator", [(6, 2, 9, False), (4, 4, 3, True)])
def test_heavy_back_pressure_fills_the_fifo(c_out: int, pe: int, simd: int, accumulator: bool) -> None:
    rng = np.random.default_rng(c_out)
    c_in, fan_in = 1, 9
    w = random_weights(rng, 8, (c_out, fan_in))
    offsets = rng.integers(0, 256, size=c_in)
    x, valid = random_pixels(rng, 10, fan_in)
    acc = reference_acc(w, offsets, x, valid)
    t = None if accumulator else acc[4] + 1
    dut = MACUnit(weights=w, input_offset=offsets, in_channels=c_in, pe=pe, simd=simd, thresholds=t)
    trace = simulate(dut, x, valid, seed=c_out, gap_p=0.05, stall_p=0.85)
    assert mismatches(trace.outputs, beats_from_acc(dut, acc, t)) == []


@pytest.mark.parametrize("masked", [True, False], ids=["masked", "unmasked"])
@pytest.mark.parametrize("sf,groups,buffer_slices", [(3, 3, 3), (17, 3, 1)], ids=["lut-ram", "block-ram"])
def test_lane_groups_and_buffer_slices_match_reference(masked: bool, sf: int, groups: int,
                                                       buffer_slices: int) -> None:
    """SIMD 20 lanes of 8 bits (160 bits, above FANOUT_GROUP_BITS): the stream/buffer select in 3 register
    copies (lanes 0-7, 8-15, 16-19) and, with SF = 3, the input buffer in 3 slices at their own sf counters;
    with SF = 17 the buffer is in block RAM (one memory, read registered twice) and the select copies come
    two registers later. Exact under gaps and stalls, full throughput and the documented latency."""
    rng = np.random.default_rng(40 + sf + masked)
    c_in, c_out, fan_in = 4, 6, 20 * sf
    w = random_weights(rng, 4, (c_out, fan_in))
    offsets = rng.integers(0, 256, size=c_in)
    x, valid = random_pixels(rng, 8, fan_in)
    if not masked:
        valid = np.ones_like(valid)
    acc = reference_acc(w, offsets, x, valid)
    t = near_thresholds(rng, acc, *MACUnit(weights=w, input_offset=offsets, in_channels=c_in, pe=2, simd=20,
                                          thresholds=None).acc_range)
    dut = MACUnit(weights=w, input_offset=offsets, in_channels=c_in, pe=2, simd=20, thresholds=t, masked=masked)
    assert (dut.nf, dut.sf, dut.read_stages) == (3, sf, 2 * (sf > 16))
    assert dut.input_lane_groups == [(0, 8), (8, 16), (16, 20)]
    assert len(dut.input_lane_groups) == groups and len(dut.buffer_lane_groups) == buffer_slices
    trace = simulate(dut, x, valid, seed=sf, gap_p=0.3, stall_p=0.5)
    assert mismatches(trace.outputs, beats_from_acc(dut, acc, t)) == []
    check_timing(dut, simulate(dut, x, valid), len(x))


def test_checker_catches_wrong_expectations() -> None:
    rng = np.random.default_rng(7)
    c_in, c_out, fan_in = 3, 4, 12
    w = random_weights(rng, 8, (c_out, fan_in))
    offsets = np.array([10, 128, 250])
    x = rng.integers(0, 256, size=(3, fan_in))
    x[0, 5] = 0  # element 5 is channel 2: x - p = -250, never 0
    valid = np.ones_like(x)
    weights = w.copy()
    dut = MACUnit(weights=weights, input_offset=offsets, in_channels=c_in, pe=2, simd=6, thresholds=None)
    weights[1, 5] += 1  # after construction: the design keeps its own copy
    trace = simulate(dut, x, valid, seed=3, gap_p=0.2, stall_p=0.2)
    assert mismatches(trace.outputs, beats_from_acc(dut, reference_acc(w, offsets, x, valid), None)) == []
    for wrong_w, wrong_p in ((weights, offsets), (w, offsets + np.array([0, 0, 1]))):
        errors = mismatches(trace.outputs, beats_from_acc(dut, reference_acc(wrong_w, wrong_p, x, valid), None))
        assert errors, "the checker missed a wrong weight / offset"
        assert any(e.startswith("beat 0:") for e in errors)


def test_figures_and_memory_layout() -> None:
    w = np.array([[1, -1, -1, 1], [-1, 1, 1, 1]])
    dut = MACUnit(weights=w, input_offset=np.array([0, 255]), in_channels=2, pe=2, simd=2, thresholds=None)
    assert dut.binary_weights and dut.weight_bits == 1
    assert dut.weight_words() == [0b10_01, 0b11_10]  # word sf, PE p at bits p*SIMD..
    assert dut.offset_period == 1 and dut.offset_words() == [255 << 8]
    # Per tap v in [0, 255] (channel 0) or [-255, 0] (channel 1): row 0 in [-510, 510], row 1 in [-765, 255].
    assert dut.acc_range == (-765, 510) and dut.acc_width == 11

    k4 = MACUnit(weights=np.array([[7, -7, 3], [0, 1, -2]]), input_offset=np.array([1, 2, 3]),
                 in_channels=3, pe=1, simd=1, thresholds=np.array([-10**9, 10**9]))
    assert not k4.binary_weights and k4.weight_bits == 4
    assert k4.weight_words() == [7, 0b1001, 3, 0, 1, 0b1110]
    assert k4.offset_period == 3 and k4.offset_words() == [1, 2, 3]
    lo, hi = k4.acc_range
    assert (lo, hi) == (-1787, 2548)  # row 0: [-7, 1778] + [-1771, 14] + [-9, 756]
    # the accumulator starts at -T (T saturated to [lo, hi + 1]) and adds partial sums in [lo, hi]
    tw = k4.threshold_width
    assert tw == signed_bits(lo - (hi + 1), hi - lo) == 14
    # word nf holds the start values of fold nf + 1 (mod NF = 2): -T[1], then -T[0], in a field of the
    # start values' own width, [-(hi + 1), -lo] = [-2549, 1787]: 13 bits (sign-extended to tw when loaded)
    fw = 13
    assert k4.threshold_table.fields == ((signed_bits(-(hi + 1), -lo), None),) == ((fw, None),)
    assert k4.threshold_words() == [-(hi + 1) & ((1 << fw) - 1), -lo]
    assert k4.threshold_table.start.ravel().tolist() == [-lo, -(hi + 1)]  # saturated, same bits
    assert k4.fifo_depth == k4.latency // k4.sf + 1
    # SIMD = 2 over C_in = 3: lane k of fold sf is channel (2 sf + k) mod 3, period 3.
    p3 = MACUnit(weights=np.ones((1, 6), dtype=int) * 2, input_offset=np.array([1, 2, 3]), in_channels=3,
                 pe=1, simd=2, thresholds=None)
    assert p3.offset_period == 3 and p3.offset_words() == [1 | 2 << 8, 3 | 1 << 8, 2 | 3 << 8]
    assert (p3.weight_bits, p3.binary_weights) == (3, False)  # 2 -> 3-bit two's complement


@pytest.mark.parametrize("kwargs,message", [
    (dict(pe=3), r"PE must divide C_out \(8\)"),
    (dict(simd=5), r"SIMD must divide the fan-in F \(12\).*not 5"),
    (dict(pe=0), r"PE must be a positive integer, not 0"),
    (dict(simd=True), r"SIMD must be a positive integer, not True"),
    (dict(in_channels=5, input_offset=np.zeros(5, dtype=int)), r"in_channels must divide the fan-in F \(12\)"),
    (dict(in_channels=2.0), r"in_channels must be a positive integer, not 2.0"),
    (dict(input_offset=np.zeros(2, dtype=int)), r"input_offset must have shape \(in_channels,\) = \(3,\)"),
    (dict(input_offset=np.array([0, 256, 1])), r"input_offset values must lie in 0..255, found 256"),
    (dict(input_offset=np.zeros(3)), r"input_offset must be an integer array"),
    (dict(weights=np.ones((8, 12))), r"weights must be an integer array"),
    (dict(weights=np.ones(12, dtype=int)), r"\(C_out, F\) array"),
    (dict(weights=np.full((8, 12), 40000)), r"signed 16-bit range .* found 40000"),
    (dict(thresholds=np.zeros(7, dtype=int)), r"shape \(C_out,\) = \(8,\) or \(C_out, positions\), not \(7,\)"),
    (dict(thresholds=np.zeros((8, 2, 2), dtype=int)), r"or \(C_out, positions\), not \(8, 2, 2\)"),
    (dict(thresholds=np.zeros(8)), r"thresholds must be an integer array"),
])
def test_parameter_validation(kwargs: dict, message: str) -> None:
    args = dict(weights=np.ones((8, 12), dtype=int), input_offset=np.array([1, 2, 3]), in_channels=3,
                pe=2, simd=4, thresholds=None)
    args.update(kwargs)
    with pytest.raises(BuildError, match=message):
        MACUnit(**args)


def test_keyword_only() -> None:
    with pytest.raises(TypeError):
        MACUnit(np.ones((2, 2), dtype=int), np.zeros(1, dtype=int), 1, 1, 1, None)  # type: ignore[misc]


def test_verilog_export() -> None:
    from amaranth.back import verilog

    dut = MACUnit(weights=np.array([[3, -2, 1], [-7, 5, 0], [1, 1, 1], [2, 0, -1]]),
                  input_offset=np.array([5, 128, 200]), in_channels=3, pe=2, simd=1,
                  thresholds=np.array([0, 10, -20, 3]))
    text = verilog.convert(dut, name="mac")
    assert "module mac" in text
    for port in ("i__valid", "i__ready", "i__payload", "o__valid", "o__ready", "o__payload"):
        assert port in text


@pytest.mark.parametrize("seed,bits", [(0, 8), (1, 4), (2, 2), (3, 8)])
def test_binary_inputs_with_k_bit_weights_match_golden(seed: int, bits: int) -> None:
    """``input_kind="binary"`` (a k-bit layer after binary ones): bits b stand for 2b - 1, padded taps 0."""
    rng = np.random.default_rng(100 + seed)
    c_in, c_out = int(rng.integers(2, 9)), int(rng.integers(2, 7))
    fan_in = 4 * c_in
    w = random_weights(rng, bits, (c_out, fan_in))
    x = rng.integers(0, 2, size=(10, fan_in), dtype=np.int64)
    valid = (rng.random((10, fan_in)) < 0.8).astype(np.uint8)
    valid[0] = 1
    # golden: a (C_out, C_in, 4, 1) binary-input conv over the vector laid out as 4 taps x C_in channels
    layer = ConvLayer(name="k", in_shape=(c_in, 4, 1), weights=w.reshape(c_out, 4, c_in).transpose(0, 2, 1)[..., None],
                      weight_bits=bits, stride=1, padding=0, input_kind="binary",
                      output=ThresholdOutput(np.zeros(c_out, np.int64), np.ones(c_out, np.int8)))
    golden = conv_accumulate(layer, x[valid.all(axis=1)].reshape(-1, 4, c_in).transpose(0, 2, 1)[..., None]
                             .astype(np.uint8))[:, :, 0, 0]
    acc = ((2 * x - 1) * valid) @ w.T
    assert np.array_equal(golden, acc[valid.all(axis=1)])  # the reference is the golden arithmetic
    thresholds = None if seed % 2 else near_thresholds(rng, acc, *accumulator_range(layer))
    dut = MACUnit(weights=w, input_offset=None, in_channels=c_in, pe=int(rng.choice(divisors(c_out))),
                  simd=c_in, thresholds=thresholds, input_kind="binary")
    assert dut.acc_range == accumulator_range(layer)
    trace = simulate(dut, x, valid, seed=seed, gap_p=0.3, stall_p=0.3)
    assert mismatches(trace.outputs, beats_from_acc(dut, acc, thresholds)) == []


def test_binary_inputs_take_no_offsets() -> None:
    with pytest.raises(BuildError, match="binary inputs take no input_offset"):
        MACUnit(weights=np.ones((2, 4), dtype=np.int64) * 3, input_offset=np.zeros(2, dtype=np.int64),
                in_channels=2, pe=1, simd=2, thresholds=None, input_kind="binary")


def test_weight_rom_split_in_depth_matches_reference() -> None:
    """A MAC unit whose 96-word weight ROM is split into banks of 64 (:func:`test_mvtu.small_bank_memory`):
    exact with stalls, one cycle more latency than one block-RAM bank (each bank reads at its own copy of the
    address; the bank multiplexer's register takes the place of the one bank's fabric register) and one more
    for the spread bank's second fabric register, full throughput."""
    from test_mvtu import small_bank_memory

    rng = np.random.default_rng(12)
    c_in, c_out, pe, simd = 3, 8, 1, 3
    fan_in = 36  # NF * SF = 8 * 12 = 96 words
    w = random_weights(rng, 4, (c_out, fan_in))
    offsets = rng.integers(0, 256, size=c_in)
    x, valid = random_pixels(rng, 4, fan_in)
    acc = reference_acc(w, offsets, x, valid)
    args = dict(weights=w, input_offset=offsets, in_channels=c_in, pe=pe, simd=simd)
    probe = MACUnit(**args, thresholds=None)
    t = near_thresholds(rng, acc, *probe.acc_range)
    dut = MACUnit(**args, thresholds=t, memory=small_bank_memory())
    whole = MACUnit(**args, thresholds=t)
    assert (dut.nf * dut.sf, dut.weight_rom_banks, whole.weight_rom_banks) == (96, 2, 1)
    assert whole.weight_block_ram and whole.weight_address_stages == 0 and dut.weight_address_stages == 1
    # a bank of the small block RAMs holds the 12-bit word in 12 of them: spread, its word registered once more
    assert rom_spread(dut.memory, *dut.weight_rom_shape, block=True)
    assert not rom_spread(whole.memory, *whole.weight_rom_shape, block=True)
    assert dut.latency == whole.latency + 1 + 1
    trace = simulate(dut, x, valid, seed=4, gap_p=0.3, stall_p=0.4)
    assert mismatches(trace.outputs, beats_from_acc(dut, acc, t)) == []
    check_timing(dut, simulate(dut, x, valid), len(x))


@pytest.mark.parametrize("seed", range(4))
def test_inverted_terms_keep_every_bit(seed: int) -> None:
    """Binary weights on uint8 pixels in threshold mode sum ``W ? d : ~d`` and add each channel's count of -1
    weights back through its start value (MACUnit's *Inverted terms*). Channels of all -1 and all +1 weights,
    all-0 and all-255 pixels, padded taps (d = 0 gives ~0 = -1) and thresholds on both sides of every
    observed accumulator and at the range's ends: each output bit equals the reference's."""
    rng = np.random.default_rng(100 + seed)
    c_in, k = 3, 3
    fan_in, c_out = c_in * k * k, 8
    w = rng.choice(np.array([-1, 1]), size=(c_out, fan_in))
    w[0], w[1] = -1, 1
    offsets = rng.integers(0, 256, size=c_in)
    x, valid = random_pixels(rng, 12, fan_in)
    x[4], x[5] = 0, 255
    valid[4:6] = 1
    acc = reference_acc(w, offsets, x, valid)
    lo, hi = MACUnit(weights=w, input_offset=offsets, in_channels=c_in, pe=2, simd=9, thresholds=None).acc_range
    t = acc[rng.integers(0, len(acc), size=c_out), np.arange(c_out)] + rng.integers(0, 2, size=c_out)
    t[2], t[3] = lo, hi + 1
    pe, simd = ((2, 9), (4, 3), (1, 27), (8, 1))[seed]
    dut = MACUnit(weights=w, input_offset=offsets, in_channels=c_in, pe=pe, simd=simd, thresholds=t)
    assert dut.inverted_terms
    trace = simulate(dut, x, valid, seed=seed, gap_p=0.3, stall_p=0.4)
    assert mismatches(trace.outputs, beats_from_acc(dut, acc, t)) == []
    accumulating = MACUnit(weights=w, input_offset=offsets, in_channels=c_in, pe=pe, simd=simd, thresholds=None)
    assert not accumulating.inverted_terms  # the sum itself is the output: no constant to fold into
