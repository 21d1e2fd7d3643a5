"""Sliding-window unit vs a numpy reference in Amaranth's simulator.

Random small shapes (channels, map size, kernel, stride, padding, stream
widths), two or more frames back to back, random input gaps and output
back-pressure; every output beat is compared exactly with a plain numpy
reference of the window definition. The SWU's windows fed through MVTU-style
arithmetic give the golden model's accumulator. Also: the documented timing
(cycles per frame, latency), the checker catching a wrong beat, parameter
validation, and Verilog export.
"""

from __future__ import annotations

import random

import numpy as np
import pytest
from amaranth.hdl import Module
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out
from numpy.lib.stride_tricks import sliding_window_view
from streams import map_beats, mismatches, run_stream

from hwgen.hw.engines import MVTU, MaxPoolUnit, SlidingWindowUnit
from hwgen.compile.golden import apply_threshold, conv_accumulate, max_pool_bits
from hwgen.compile.ir import ConvLayer, MaxPoolLayer, ThresholdOutput
from hwgen.errors import BuildError

pytestmark = pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")


# ---------------------------------------------------------------------------
# Reference
# ---------------------------------------------------------------------------

def reference_windows(frames: np.ndarray, kernel: int, stride: int, padding: int) -> tuple[np.ndarray, np.ndarray]:
    """Window vectors of bit maps (N, C, H, W): (data, valid), each (N, H_out, W_out, K*K*C).

    Element ``(i*K + j)*C + c`` of the vector at (y, x) is channel c of pixel
    ``(y*S + i - P, x*S + j - P)``; ``valid`` is 0 (and data 0) where that pixel is padding.
    """
    n, c, h, w = frames.shape
    k, s, p = kernel, stride, padding
    ho, wo = (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1
    pad = ((0, 0), (p, p), (p, p), (0, 0))
    x = np.pad(frames.transpose(0, 2, 3, 1), pad)
    v = np.pad(np.ones((n, h, w, c), dtype=np.uint8), pad)

    def gather(a: np.ndarray) -> np.ndarray:
        win = sliding_window_view(a, (k, k), axis=(1, 2))[:, : (ho - 1) * s + 1 : s, : (wo - 1) * s + 1 : s]
        return win.transpose(0, 1, 2, 4, 5, 3).reshape(n, ho, wo, k * k * c)  # (i, j, c), c fastest

    return gather(x), gather(v)


def window_beats(data: np.ndarray, valid: np.ndarray, simd: int) -> list[int]:
    """Window vectors -> raw SWU output payloads: ``data`` on bits 0..SIMD-1, ``valid`` above."""
    d = map_beats(data.reshape(-1, simd, 1, 1), simd)
    v = map_beats(valid.reshape(-1, simd, 1, 1), simd)
    return [a | (b << simd) for a, b in zip(d, v)]


def decode_beats(beats: list[int], simd: int, fan_in: int) -> tuple[np.ndarray, np.ndarray]:
    """Raw SWU output payloads -> (data, valid), each (vectors, F)."""
    bits = np.array([[(b >> k) & 1 for k in range(2 * simd)] for b in beats], dtype=np.uint8)
    return bits[:, :simd].reshape(-1, fan_in), bits[:, simd:].reshape(-1, fan_in)


def expected_beats(frames: np.ndarray, dut: SlidingWindowUnit) -> list[int]:
    data, valid = reference_windows(frames, dut.kernel, dut.stride, dut.padding)
    return window_beats(data, valid, dut.simd)


def simulate(dut: SlidingWindowUnit, frames: np.ndarray, *, seed: int = 0, gap_p: float = 0.0,
             stall_p: float = 0.0):
    n = len(frames)
    work = n * (dut.beats_per_frame_in + dut.beats_per_frame_out)
    budget = int(work / (1 - max(gap_p, stall_p)) * 2) + 100
    return run_stream(dut, map_beats(frames, dut.in_width), n * dut.beats_per_frame_out,
                      budget=budget, seed=seed, gap_p=gap_p, stall_p=stall_p)


def random_params(seed: int) -> dict:
    """C in 1..8, H, W in 1..7, K in 1..3 (or K == H on a square map), S in 1..2, P in 0..1."""
    rng = random.Random(seed)
    while True:
        c, h, w = rng.randint(1, 8), rng.randint(1, 7), rng.randint(1, 7)
        k, s, p = rng.randint(1, 3), rng.randint(1, 2), rng.randint(0, 1)
        if seed % 5 == 4:  # whole-map kernel on a square map (a fully connected layer)
            w, k = h, h
        if k <= min(h, w) + 2 * p:
            break
    divs = [d for d in range(1, c + 1) if c % d == 0]
    return dict(in_shape=(c, h, w), kernel=k, stride=s, padding=p,
                in_width=rng.choice(divs), simd=rng.choice(divs))


def random_frames(seed: int, n: int, shape: tuple[int, int, int]) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 2, size=(n,) + tuple(shape), dtype=np.uint8)


# ---------------------------------------------------------------------------
# Tests
# ---------------------------------------------------------------------------

def test_reference_matches_definition_loop() -> None:
    """The vectorised reference against a direct loop over (y, x, i, j, c)."""
    frames = random_frames(0, 2, (3, 5, 4))
    k, s, p = 3, 2, 1
    data, valid = reference_windows(frames, k, s, p)
    n, c, h, w = frames.shape
    for f in range(n):
        for y in range(data.shape[1]):
            for x in range(data.shape[2]):
                for i in range(k):
                    for j in range(k):
                        r, col = y * s + i - p, x * s + j - p
                        inside = 0 <= r < h and 0 <= col < w
                        for ch in range(c):
                            e = (i * k + j) * c + ch
                            assert valid[f, y, x, e] == inside
                            assert data[f, y, x, e] == (frames[f, ch, r, col] if inside else 0)


@pytest.mark.parametrize("seed", range(24))
def test_random_shapes_with_stalls_match_reference(seed: int) -> None:
    params = random_params(seed)
    dut = SlidingWindowUnit(**params)
    frames = random_frames(seed, 2, params["in_shape"])
    trace = simulate(dut, frames, seed=seed, gap_p=0.3, stall_p=0.4)
    assert mismatches(trace.outputs, expected_beats(frames, dut)) == [], params


@pytest.mark.parametrize("params", [
    dict(in_shape=(2, 5, 5), kernel=3, stride=2, padding=1, in_width=1, simd=2),  # stride 2, pad 1
    dict(in_shape=(4, 4, 6), kernel=1, stride=1, padding=0, in_width=2, simd=4),  # K = 1
    dict(in_shape=(3, 4, 4), kernel=4, stride=1, padding=0, in_width=3, simd=1),  # K == H, H_out = 1
    dict(in_shape=(2, 3, 3), kernel=3, stride=1, padding=1, in_width=2, simd=1),  # K == H, padded
    dict(in_shape=(2, 1, 1), kernel=3, stride=1, padding=1, in_width=1, simd=2),  # K > H: all but one tap padded
    dict(in_shape=(1, 5, 5), kernel=1, stride=2, padding=1, in_width=1, simd=1),  # S > K, padded rows
    dict(in_shape=(4, 5, 3), kernel=2, stride=2, padding=0, in_width=4, simd=2),  # trailing row dropped
    dict(in_shape=(8, 2, 7), kernel=2, stride=2, padding=1, in_width=8, simd=8),  # H_out = 2 of 2 rows
], ids=["s2p1", "k1", "k_eq_h", "k_eq_h_pad", "k_gt_h", "s_gt_k", "trailing", "wide"])
def test_edge_cases_three_frames(params: dict) -> None:
    dut = SlidingWindowUnit(**params)
    frames = random_frames(sum(params["in_shape"]), 3, params["in_shape"])
    for seed, (gap_p, stall_p) in enumerate([(0.0, 0.0), (0.5, 0.2), (0.1, 0.7)]):
        trace = simulate(dut, frames, seed=seed, gap_p=gap_p, stall_p=stall_p)
        assert mismatches(trace.outputs, expected_beats(frames, dut)) == [], (params, gap_p, stall_p)


@pytest.mark.parametrize("params,groups", [
    (dict(in_shape=(160, 4, 5), kernel=3, stride=1, padding=1, in_width=32, simd=40),
     [(0, 64), (64, 128), (128, 160)]),                                           # whole lanes, a short last slice
    (dict(in_shape=(256, 3, 4), kernel=2, stride=2, padding=0, in_width=128, simd=64),
     [(0, 64), (64, 128), (128, 192), (192, 256)]),                               # lanes wider than a slice
    (dict(in_shape=(96, 5, 3), kernel=3, stride=2, padding=1, in_width=96, simd=32),
     [(0, 48), (48, 96)]),                                                        # one lane of 96: two halves
    (dict(in_shape=(130, 3, 3), kernel=1, stride=1, padding=0, in_width=65, simd=130),
     [(0, 13), (13, 26), (26, 39), (39, 52), (52, 65), (65, 78), (78, 91), (91, 104), (104, 117), (117, 130)]),
], ids=["lanes", "wide_lanes", "half_lane", "odd_lane"])
def test_line_buffer_slices_match_reference(params: dict, groups: list) -> None:
    """A line buffer outside block RAM wider than FANOUT_GROUP_BITS is one memory per slice, each read at its
    own copy of the read address: the same beats as the reference under gaps and stalls, over three frames
    (the copies follow every move of the reader: next tap, next row, next window, next row of windows, frame)."""
    dut = SlidingWindowUnit(**params)
    assert dut.buffer_groups == groups
    frames = random_frames(sum(params["in_shape"]), 3, params["in_shape"])
    for seed, (gap_p, stall_p) in enumerate([(0.0, 0.0), (0.5, 0.2), (0.1, 0.7)]):
        trace = simulate(dut, frames, seed=seed, gap_p=gap_p, stall_p=stall_p)
        assert mismatches(trace.outputs, expected_beats(frames, dut)) == [], (params, gap_p, stall_p)


def test_line_buffer_in_block_ram_or_narrow_is_one_memory() -> None:
    """No slices where Yosys puts the buffer in block RAM (its output register must stay one word) or where
    it is at most FANOUT_GROUP_BITS wide; a memory map that is not one is refused."""
    from hwgen.hw.targets import get_target

    ecp5 = get_target("ecp5-85k").spec.memory
    deep = SlidingWindowUnit(in_shape=(128, 12, 12), kernel=3, stride=1, padding=0, in_width=64, simd=32, memory=ecp5)
    assert ecp5.ram_in_block_ram(128, deep.rows * 12) and deep.buffer_groups == [(0, 128)]
    shallow = SlidingWindowUnit(in_shape=(128, 5, 5), kernel=3, stride=1, padding=0, in_width=64, simd=32, memory=ecp5)
    assert shallow.buffer_groups == [(0, 64), (64, 128)]
    narrow = SlidingWindowUnit(in_shape=(64, 5, 5), kernel=3, stride=1, padding=0, in_width=64, simd=32, memory=ecp5)
    assert narrow.buffer_groups == [(0, 64)]
    with pytest.raises(BuildError, match="memory must be a MemoryMap"):
        SlidingWindowUnit(in_shape=(64, 5, 5), kernel=3, stride=1, padding=0, in_width=64, simd=32, memory="ecp5")


@pytest.mark.parametrize("seed", range(4))
def test_windows_give_the_golden_accumulator(seed: int) -> None:
    """MVTU arithmetic on the SWU's beats == golden.conv_accumulate: ties the window order to the golden model."""
    rng = np.random.default_rng(100 + seed)
    params = [dict(in_shape=(3, 5, 5), kernel=3, stride=1, padding=1, in_width=3, simd=3),
              dict(in_shape=(4, 6, 5), kernel=3, stride=2, padding=1, in_width=2, simd=4),
              dict(in_shape=(2, 4, 4), kernel=2, stride=2, padding=0, in_width=1, simd=2),
              dict(in_shape=(2, 3, 3), kernel=3, stride=1, padding=0, in_width=2, simd=1)][seed]
    c, _, _ = params["in_shape"]
    k, c_out = params["kernel"], 5
    weights = rng.choice(np.array([-1, 1]), size=(c_out, c, k, k))
    layer = ConvLayer(name="conv", in_shape=params["in_shape"], weights=weights, weight_bits=1,
                      stride=params["stride"], padding=params["padding"], input_kind="binary",
                      output=ThresholdOutput(thresholds=np.zeros(c_out, dtype=np.int64),
                                             direction=np.ones(c_out, dtype=np.int8)))
    dut = SlidingWindowUnit(**params)
    frames = random_frames(seed, 2, params["in_shape"])
    trace = simulate(dut, frames, seed=seed, gap_p=0.2, stall_p=0.2)
    x, valid = (a.astype(np.int64) for a in decode_beats(trace.outputs, dut.simd, dut.fan_in))
    w_ijc = weights.transpose(0, 2, 3, 1).reshape(c_out, -1)  # (C_out, KH, KW, C_in): the stream's order
    # MVTU: acc = 2 * popcount(XNOR(x, w) & valid) - popcount(valid), per window vector.
    w_bits = (w_ijc == 1).astype(np.int64)
    xnor = 1 - (x[:, None, :] ^ w_bits[None, :, :])
    acc = 2 * (xnor & valid[:, None, :]).sum(axis=2) - valid.sum(axis=1)[:, None]
    _, ho, wo = layer.out_shape
    got = acc.reshape(2, ho, wo, c_out).transpose(0, 3, 1, 2)
    np.testing.assert_array_equal(got, conv_accumulate(layer, frames))


@pytest.mark.parametrize("params", [
    dict(in_shape=(4, 6, 6), kernel=3, stride=1, padding=1, in_width=4, simd=4),  # output-bound, no frame stall
    dict(in_shape=(4, 6, 6), kernel=3, stride=1, padding=0, in_width=4, simd=4),  # frame-start stall
    dict(in_shape=(2, 6, 5), kernel=1, stride=2, padding=0, in_width=1, simd=2),  # input-bound
    dict(in_shape=(2, 4, 4), kernel=4, stride=1, padding=0, in_width=2, simd=2),  # whole map
    dict(in_shape=(6, 5, 7), kernel=2, stride=2, padding=1, in_width=3, simd=2),
    dict(in_shape=(1, 3, 3), kernel=1, stride=1, padding=1, in_width=1, simd=1),  # all-padding rows
])
def test_cycles_per_frame_and_latency(params: dict) -> None:
    dut = SlidingWindowUnit(**params)
    n = 4
    frames = random_frames(1, n, params["in_shape"])
    trace = simulate(dut, frames)
    assert mismatches(trace.outputs, expected_beats(frames, dut)) == []
    bo, bi = dut.beats_per_frame_out, dut.beats_per_frame_in
    # Measured period between the first output beats of consecutive frames.
    period = [trace.out_cycles[f * bo] - trace.out_cycles[(f - 1) * bo] for f in range(1, n)]
    assert period[-1] == dut.cycles_per_frame
    assert max(bi, bo) <= dut.cycles_per_frame <= bi + bo
    # The row-level model is exact, row by row, from the first frame on.
    per_row = bo // dut.h_out
    starts = [t + dut.latency - 1 for t in dut.row_schedule(n)["reader_start"]]
    assert [trace.out_cycles[r * per_row] for r in range(n * dut.h_out)] == starts
    # Within an output row, one beat per cycle.
    for r in range(n * dut.h_out):
        row = trace.out_cycles[r * per_row:(r + 1) * per_row]
        assert row[-1] - row[0] == per_row - 1
    # Latency: first beat of frame 0 three cycles after the handshake completing the rows it needs.
    c, h, w = dut.in_shape
    needed_rows = min(h, max(1, dut.kernel - dut.padding))
    last_in = trace.in_cycles[needed_rows * w * c // dut.in_width - 1]
    assert trace.out_cycles[0] - last_in == dut.latency == 5


def test_cycles_per_frame_figures() -> None:
    """Documented examples: CNV-like 3x3 layers (steady state, no simulation)."""
    pad1 = SlidingWindowUnit(in_shape=(64, 32, 32), kernel=3, stride=1, padding=1, in_width=32, simd=32)
    assert pad1.cycles_per_frame == pad1.beats_per_frame_out == 32 * 32 * 9 * 2
    pad0 = SlidingWindowUnit(in_shape=(64, 32, 32), kernel=3, stride=1, padding=0, in_width=32, simd=32)
    assert pad0.beats_per_frame_out == 30 * 30 * 9 * 2
    # No frame-start stall: 2 * (K - P) = 6 rows, so the next frame's first 3 rows are written
    # while the last output row is emitted (with K + S = 4 rows the reader waited 2 input rows).
    assert pad0.rows == 6 and pad0.buffer_bits == 6 * 32 * 64
    assert pad0.cycles_per_frame == pad0.beats_per_frame_out
    assert pad1.rows == 4  # padded: the last and the first output rows need K - P = 2 rows each
    # Whole-map kernel: two frames' rows, so input and output overlap completely.
    for shape, iw, simd in [((128, 5, 5), 4, 8), ((4, 3, 3), 1, 4), ((8, 4, 4), 8, 1)]:
        fc = SlidingWindowUnit(in_shape=shape, kernel=shape[1], stride=1, padding=0, in_width=iw, simd=simd)
        assert fc.rows == 2 * shape[1]
        assert fc.cycles_per_frame == max(fc.beats_per_frame_in, fc.beats_per_frame_out)


def test_figures() -> None:
    dut = SlidingWindowUnit(in_shape=(6, 5, 7), kernel=3, stride=2, padding=1, in_width=3, simd=2)
    assert (dut.h_out, dut.w_out) == (3, 4)
    assert dut.out_shape == (54, 3, 4)
    assert dut.fan_in == 54
    assert dut.beats_per_frame_in == 5 * 7 * 2
    assert dut.beats_per_frame_out == 3 * 4 * 27
    assert dut.rows == 3 + 2
    assert dut.buffer_bits == 5 * 7 * 6
    whole = SlidingWindowUnit(in_shape=(4, 3, 3), kernel=3, stride=1, padding=0, in_width=4, simd=4)
    assert whole.out_shape == (36, 1, 1) and whole.buffer_bits == 2 * 3 * 3 * 4


def test_checker_catches_a_wrong_beat() -> None:
    params = dict(in_shape=(2, 4, 4), kernel=3, stride=1, padding=1, in_width=1, simd=2)
    dut = SlidingWindowUnit(**params)
    frames = random_frames(5, 2, params["in_shape"])
    trace = simulate(dut, frames, seed=5, gap_p=0.3, stall_p=0.3)
    good = expected_beats(frames, dut)
    assert mismatches(trace.outputs, good) == []
    # One data bit flipped in one beat.
    wrong = list(good)
    wrong[37] ^= 1
    errors = mismatches(trace.outputs, wrong)
    assert errors == [f"beat 37: got {good[37]:#x}, expected {wrong[37]:#x}"]
    # A wrong window order (taps transposed, (j, i) instead of (i, j)).
    data, valid = reference_windows(frames, 3, 1, 1)
    swap = lambda a: a.reshape(a.shape[:3] + (3, 3, 2)).swapaxes(3, 4).reshape(a.shape)
    assert mismatches(trace.outputs, window_beats(swap(data), swap(valid), 2))
    # Padding marked valid (pad with -1 instead of 0).
    assert mismatches(trace.outputs, window_beats(data, np.ones_like(valid), 2))
    # Missing / extra beats.
    assert mismatches(trace.outputs[:-1], good) == [f"got {len(good) - 1} beats, expected {len(good)}"]
    assert mismatches(trace.outputs + [0], good) == [f"got {len(good) + 1} beats, expected {len(good)}"]


@pytest.mark.parametrize("kwargs,message", [
    (dict(in_width=5), r"in_width must divide C \(12\): one of 1, 2, 3, 4, 6, 12; not 5"),
    (dict(simd=8), r"SIMD must divide C \(12\): one of 1, 2, 3, 4, 6, 12; not 8"),
    (dict(simd=0), r"SIMD must be a positive integer, not 0"),
    (dict(in_width=2.0), r"in_width must be a positive integer, not 2.0"),
    (dict(kernel=8), (r"kernel must be at most the padded map size min\(H, W\) \+ 2\*padding = 7 "
                      r"\(legal: 1..7\), not 8")),
    (dict(kernel=0), r"kernel must be a positive integer, not 0"),
    (dict(stride=True), r"stride must be a positive integer, not True"),
    (dict(padding=-1), r"padding must be a non-negative integer, not -1"),
    (dict(in_shape=(12, 5)), r"in_shape must be \(C, H, W\), three positive integers, not \(12, 5\)"),
    (dict(in_shape=(12, 0, 6)), r"in_shape must be \(C, H, W\)"),
])
def test_parameter_validation(kwargs: dict, message: str) -> None:
    args = dict(in_shape=(12, 5, 6), kernel=3, stride=1, padding=1, in_width=4, simd=6)
    args.update(kwargs)
    with pytest.raises(BuildError, match=message):
        SlidingWindowUnit(**args)


def test_keyword_only() -> None:
    with pytest.raises(TypeError):
        SlidingWindowUnit((1, 3, 3), 3, 1, 0, 1, 1)  # type: ignore[misc]


class _Chain(wiring.Component):
    """SWU -> MVTU (thresholds) -> max-pool -> SWU -> MVTU (accumulators), connected stream to stream."""

    def __init__(self, engines: list) -> None:
        self.engines = engines
        super().__init__({"i": In(stream.Signature(engines[0].in_width)),
                          "o": Out(engines[-1].o.signature)})

    def elaborate(self, platform) -> Module:
        m = Module()
        for n, e in enumerate(self.engines):
            m.submodules[f"e{n}"] = e
        wiring.connect(m, wiring.flipped(self.i), self.engines[0].i)
        for a, b in zip(self.engines, self.engines[1:]):
            wiring.connect(m, a.o, b.i)
        wiring.connect(m, self.engines[-1].o, wiring.flipped(self.o))
        return m


def _conv(name: str, rng: np.random.Generator, in_shape: tuple, c_out: int, k: int, s: int, p: int,
          thresholds: np.ndarray) -> ConvLayer:
    w = rng.choice(np.array([-1, 1]), size=(c_out, in_shape[0], k, k))
    return ConvLayer(name=name, in_shape=in_shape, weights=w, weight_bits=1, stride=s, padding=p,
                     input_kind="binary", output=ThresholdOutput(thresholds=thresholds.astype(np.int64),
                                                                 direction=np.ones(c_out, dtype=np.int8)))


def test_chain_mvtu_pool_swu_mvtu_matches_golden() -> None:
    """The stream formats chain: SWU -> MVTU -> pool -> SWU -> MVTU equals the golden model, with stalls."""
    rng = np.random.default_rng(11)
    conv1 = _conv("conv1", rng, (2, 6, 6), 4, 3, 1, 1, rng.integers(-3, 4, size=4))
    pool = MaxPoolLayer(name="pool", in_shape=(4, 6, 6), kernel=2, stride=2, use_and=np.array([0, 1, 0, 1], bool))
    conv2 = _conv("conv2", rng, (4, 3, 3), 3, 3, 1, 1, np.zeros(3))

    def ijc(layer: ConvLayer) -> np.ndarray:
        return layer.weights.transpose(0, 2, 3, 1).reshape(layer.out_channels, -1)

    engines = [
        SlidingWindowUnit(in_shape=(2, 6, 6), kernel=3, stride=1, padding=1, in_width=1, simd=2),
        MVTU(weights=ijc(conv1), pe=2, simd=2, thresholds=conv1.output.thresholds),
        MaxPoolUnit(in_shape=(4, 6, 6), kernel=2, stride=2, use_and=pool.use_and, width=2),
        SlidingWindowUnit(in_shape=(4, 3, 3), kernel=3, stride=1, padding=1, in_width=2, simd=4),
        MVTU(weights=ijc(conv2), pe=3, simd=4, thresholds=None),
    ]
    frames = random_frames(3, 2, (2, 6, 6))
    bits1 = apply_threshold(conv_accumulate(conv1, frames), conv1.output)
    acc2 = conv_accumulate(conv2, max_pool_bits(bits1, pool))  # (2, 3, 3, 3)
    expected = [tuple(int(v) for v in acc2[f, :, y, x]) for f in range(2) for y in range(3) for x in range(3)]

    chain = _Chain(engines)
    trace = run_stream(chain, map_beats(frames, 1), len(expected), budget=20000, seed=2, gap_p=0.2, stall_p=0.3)
    aw = engines[-1].acc_width
    got = [tuple(((raw >> (p * aw)) & ((1 << aw) - 1)) - (((raw >> (p * aw + aw - 1)) & 1) << aw)
                 for p in range(3)) for raw in trace.outputs]
    assert mismatches(got, expected) == []


def test_verilog_export() -> None:
    from amaranth.back import verilog

    dut = SlidingWindowUnit(in_shape=(4, 5, 5), kernel=3, stride=2, padding=1, in_width=2, simd=2)
    text = verilog.convert(dut, name="swu")
    assert "module swu" in text
    for port in ("i__valid", "i__ready", "i__payload", "o__valid", "o__ready", "o__payload"):
        assert port in text
