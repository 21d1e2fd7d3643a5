"""Max-pool unit vs the golden model (``max_pool_bits``) in Amaranth's simulator.

Random shapes (odd sizes included, so trailing rows / columns are dropped),
random per-channel OR / AND masks, two frames back to back, random input gaps
and output back-pressure; every output beat is compared exactly. Also: one
input beat per cycle (cycles per frame), the documented latency, the checker
catching a wrong beat, parameter validation and Verilog export.
"""

from __future__ import annotations

import random

import numpy as np
import pytest
from streams import beats_to_map, map_beats, mismatches, run_stream

from hwgen.hw.engines import MaxPoolUnit
from hwgen.hw.engines.pool import SlotPhase, axis_slots
from hwgen.compile.golden import max_pool_bits
from hwgen.compile.ir import MaxPoolLayer
from hwgen.errors import BuildError

pytestmark = pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")


def golden_beats(frames: np.ndarray, dut: MaxPoolUnit, use_and: np.ndarray | None = None) -> list[int]:
    layer = MaxPoolLayer(name="pool", in_shape=dut.in_shape, kernel=dut.kernel, stride=dut.stride,
                         use_and=dut.use_and if use_and is None else use_and)
    return map_beats(max_pool_bits(frames, layer), dut.width)


def simulate(dut: MaxPoolUnit, frames: np.ndarray, *, seed: int = 0, gap_p: float = 0.0, stall_p: float = 0.0):
    n = len(frames)
    budget = int(n * dut.beats_per_frame_in / (1 - max(gap_p, stall_p)) * 3) + 100
    return run_stream(dut, map_beats(frames, dut.width), n * dut.beats_per_frame_out,
                      budget=budget, seed=seed, gap_p=gap_p, stall_p=stall_p)


def random_case(seed: int):
    rng = random.Random(seed)
    c, h, w = rng.randint(1, 8), rng.randint(1, 9), rng.randint(1, 9)
    k = rng.randint(1, min(3, h, w))
    if seed % 3 == 0 and min(h, w) >= 2:
        k = 2  # the zoo's 2x2 stride-2 pool
    width = rng.choice([d for d in range(1, c + 1) if c % d == 0])
    nrng = np.random.default_rng(seed)
    use_and = nrng.random(c) < 0.5
    density = rng.choice([0.15, 0.5, 0.85])  # so that both OR and AND windows give both values
    frames = (nrng.random((2, c, h, w)) < density).astype(np.uint8)
    return (c, h, w), k, width, use_and, frames


@pytest.mark.parametrize("seed", range(24))
def test_random_shapes_with_stalls_match_golden(seed: int) -> None:
    shape, k, width, use_and, frames = random_case(seed)
    dut = MaxPoolUnit(in_shape=shape, kernel=k, stride=k, use_and=use_and, width=width)
    trace = simulate(dut, frames, seed=seed, gap_p=0.3, stall_p=0.4)
    assert mismatches(trace.outputs, golden_beats(frames, dut)) == [], (shape, k, width, use_and)


@pytest.mark.parametrize("shape,k,width", [
    ((4, 5, 5), 2, 2),   # 5x5 -> 2x2, trailing row and column dropped
    ((3, 7, 4), 3, 1),   # 7x4 -> 2x1
    ((8, 4, 4), 2, 8),   # one beat per pixel
    ((2, 3, 3), 1, 1),   # K = 1: every beat completes a window
    ((6, 2, 2), 2, 3),   # one output pixel
    ((1, 1, 1), 1, 1),
])
def test_shapes_with_heavy_back_pressure(shape: tuple, k: int, width: int) -> None:
    rng = np.random.default_rng(sum(shape))
    use_and = np.arange(shape[0]) % 2 == 1
    frames = (rng.random((3,) + shape) < 0.5).astype(np.uint8)
    dut = MaxPoolUnit(in_shape=shape, kernel=k, stride=k, use_and=use_and, width=width)
    assert dut.out_shape == (shape[0], (shape[1] - k) // k + 1, (shape[2] - k) // k + 1)
    for seed, (gap_p, stall_p) in enumerate([(0.0, 0.0), (0.05, 0.85), (0.6, 0.1)]):
        trace = simulate(dut, frames, seed=seed, gap_p=gap_p, stall_p=stall_p)
        expected = golden_beats(frames, dut)
        assert mismatches(trace.outputs, expected) == [], (gap_p, stall_p)
        np.testing.assert_array_equal(beats_to_map(trace.outputs, dut.out_shape, width),
                                      max_pool_bits(frames, MaxPoolLayer("p", shape, k, k, use_and)))


def test_or_and_semantics_by_hand() -> None:
    """2x2 windows: channel 0 OR, channel 1 AND."""
    frames = np.zeros((1, 2, 2, 4), dtype=np.uint8)
    frames[0, 0, 1, 1] = 1            # ch 0: one bit in the left window -> OR = 1, right window 0
    frames[0, 1, :, :2] = 1           # ch 1: left window all ones -> AND = 1
    frames[0, 1, :, 2:] = [[1, 1], [1, 0]]  # right window one zero -> AND = 0
    dut = MaxPoolUnit(in_shape=(2, 2, 4), kernel=2, stride=2, use_and=np.array([False, True]), width=2)
    trace = simulate(dut, frames)
    assert trace.outputs == [0b11, 0b00]  # pixel 0: ch0=1, ch1=1; pixel 1: ch0=0, ch1=0


@pytest.mark.parametrize("shape,k,s,width", [((4, 6, 6), 2, 2, 2), ((3, 5, 7), 2, 2, 1), ((2, 3, 3), 1, 1, 2),
                                             ((8, 6, 6), 3, 3, 4), ((4, 7, 9), 3, 2, 2), ((2, 6, 6), 3, 1, 1),
                                             ((3, 7, 7), 2, 3, 3)])
def test_cycles_per_frame_and_latency(shape: tuple, k: int, s: int, width: int) -> None:
    """One input beat per cycle, never refused, overlapping windows (3x3 / 2, 3x3 / 1) and gaps (2x2 / 3) too."""
    rng = np.random.default_rng(3)
    frames = rng.integers(0, 2, size=(3,) + shape, dtype=np.uint8)
    use_and = rng.random(shape[0]) < 0.5
    dut = MaxPoolUnit(in_shape=shape, kernel=k, stride=s, use_and=use_and, width=width)
    trace = simulate(dut, frames)
    assert mismatches(trace.outputs, golden_beats(frames, dut)) == []
    n_in = len(trace.in_cycles)
    assert n_in == 3 * dut.beats_per_frame_in
    assert trace.in_cycles == list(range(n_in))  # one input beat every cycle, never refused
    bo = dut.beats_per_frame_out
    period = [trace.out_cycles[f * bo] - trace.out_cycles[(f - 1) * bo] for f in (1, 2)]
    assert period == [dut.cycles_per_frame] * 2 == [dut.beats_per_frame_in] * 2
    # Latency: the first output beat leaves 2 cycles after the first window's last input beat.
    c, _, w = shape
    lanes = c // width
    last_tap = ((k - 1) * w + (k - 1)) * lanes  # first beat of the window's last pixel
    assert trace.out_cycles[0] - trace.in_cycles[last_tap] == dut.latency == 4
    assert trace.out_cycles[:lanes] == [trace.out_cycles[0] + q for q in range(lanes)]


def test_figures() -> None:
    dut = MaxPoolUnit(in_shape=(64, 9, 7), kernel=2, stride=2, use_and=np.zeros(64, bool), width=16)
    assert dut.out_shape == (64, 4, 3)
    assert dut.beats_per_frame_in == 9 * 7 * 4
    assert dut.beats_per_frame_out == 4 * 3 * 4
    assert dut.buffer_bits == 3 * 64  # one row of W_out partial pixels
    assert MaxPoolUnit(in_shape=(4, 2, 2), kernel=1, stride=1, use_and=np.zeros(4, bool), width=4).buffer_bits == 0
    flips = np.array([True, False, True, True])
    d = MaxPoolUnit(in_shape=(4, 2, 2), kernel=2, stride=2, use_and=flips, width=2)
    assert d.flip_word() == 0b1101
    flips[1] = True  # the design keeps its own copy
    assert d.flip_word() == 0b1101


def test_checker_catches_a_wrong_beat() -> None:
    rng = np.random.default_rng(9)
    shape = (4, 4, 4)
    frames = (rng.random((2,) + shape) < 0.5).astype(np.uint8)
    use_and = np.array([False, True, False, True])
    dut = MaxPoolUnit(in_shape=shape, kernel=2, stride=2, use_and=use_and, width=2)
    trace = simulate(dut, frames, seed=1, gap_p=0.3, stall_p=0.3)
    good = golden_beats(frames, dut)
    assert mismatches(trace.outputs, good) == []
    wrong = list(good)
    wrong[5] ^= 0b10
    assert mismatches(trace.outputs, wrong) == [f"beat 5: got {good[5]:#x}, expected {wrong[5]:#x}"]
    # OR where the design ANDs (and vice versa): caught on these frames.
    assert mismatches(trace.outputs, golden_beats(frames, dut, use_and=~use_and))
    assert mismatches(trace.outputs[1:], good)


@pytest.mark.parametrize("kwargs,message", [
    (dict(stride=0), r"stride must be a positive integer, not 0"),
    (dict(kernel=6, stride=6), r"kernel must be at most min\(H, W\) = 5 \(legal: 1..5\), not 6"),
    (dict(kernel=0), r"kernel must be a positive integer, not 0"),
    (dict(width=5), r"width must divide C \(12\): one of 1, 2, 3, 4, 6, 12; not 5"),
    (dict(width=0), r"width must be a positive integer, not 0"),
    (dict(use_and=np.zeros(11, bool)), r"use_and must have shape \(C,\) = \(12,\), not \(11,\)"),
    (dict(use_and=np.zeros(12)), r"use_and must be a bool array"),
    (dict(use_and=np.full(12, 2)), r"use_and must be a bool array"),
    (dict(in_shape=(12, 5, 6, 1)), r"in_shape must be \(C, H, W\)"),
])
def test_parameter_validation(kwargs: dict, message: str) -> None:
    args = dict(in_shape=(12, 5, 6), kernel=2, stride=2, use_and=np.zeros(12, bool), width=4)
    args.update(kwargs)
    with pytest.raises(BuildError, match=message):
        MaxPoolUnit(**args)


def test_keyword_only() -> None:
    with pytest.raises(TypeError):
        MaxPoolUnit((1, 2, 2), 2, 2, np.zeros(1, bool), 1)  # type: ignore[misc]


def test_verilog_export() -> None:
    from amaranth.back import verilog

    dut = MaxPoolUnit(in_shape=(4, 5, 5), kernel=2, stride=2, use_and=np.array([0, 1, 1, 0], bool), width=2)
    text = verilog.convert(dut, name="pool")
    assert "module pool" in text
    for port in ("i__valid", "i__ready", "i__payload", "o__valid", "o__ready", "o__payload"):
        assert port in text


# -- overlapping windows (kernel > stride) and gaps (kernel < stride) -----------

@pytest.mark.parametrize("seed", range(24))
def test_any_stride_random_shapes_with_stalls_match_golden(seed: int) -> None:
    rng = random.Random(1000 + seed)
    c, h, w = rng.randint(1, 6), rng.randint(1, 11), rng.randint(1, 11)
    k = rng.randint(1, min(4, h, w))
    s = rng.randint(1, k + 1)
    if seed % 4 == 0 and min(h, w) >= 3:
        k, s = 3, 2  # AlexNet's pool
    width = rng.choice([d for d in range(1, c + 1) if c % d == 0])
    nrng = np.random.default_rng(seed)
    use_and = nrng.random(c) < 0.5
    frames = (nrng.random((2, c, h, w)) < rng.choice([0.15, 0.5, 0.85])).astype(np.uint8)
    dut = MaxPoolUnit(in_shape=(c, h, w), kernel=k, stride=s, use_and=use_and, width=width)
    trace = simulate(dut, frames, seed=seed, gap_p=0.3, stall_p=0.4)
    assert mismatches(trace.outputs, golden_beats(frames, dut)) == [], ((c, h, w), k, s, width, use_and)


def test_overlapping_or_and_by_hand() -> None:
    """3x3 stride 2 on 5x5: four windows sharing the middle row and column; channel 0 OR, channel 1 AND."""
    frames = np.zeros((1, 2, 5, 5), dtype=np.uint8)
    frames[0, 0, 2, 2] = 1  # ch 0: the centre pixel lies in all four windows -> OR = 1 everywhere
    frames[0, 1] = 1
    frames[0, 1, 0, 4] = 0  # ch 1: a zero only in the top-right window -> AND = 0 there
    dut = MaxPoolUnit(in_shape=(2, 5, 5), kernel=3, stride=2, use_and=np.array([False, True]), width=2)
    assert dut.out_shape == (2, 2, 2) and dut.slots == 2
    trace = simulate(dut, frames)
    assert trace.outputs == [0b11, 0b01, 0b11, 0b11]  # (0,0), (0,1), (1,0), (1,1): bit 1 = AND channel


def test_axis_slots() -> None:
    """3 / 2: period 4; window i covers 2i .. 2i + 2, slot i mod 2."""
    table = axis_slots(3, 2)
    # coordinate 2 (u = 2): last of window 0 (slot 0), first of window 1 (slot 1)
    assert table[2][0] == SlotPhase(inside=True, first=False, last=True, wrapped=False)
    assert table[2][1] == SlotPhase(inside=True, first=True, last=False, wrapped=False)
    # coordinate 4 (u = 0 of the next period): window 2 (slot 0) starts, window 1 (slot 1, wrapped) ends
    assert table[0][0] == SlotPhase(inside=True, first=True, last=False, wrapped=False)
    assert table[0][1] == SlotPhase(inside=True, first=False, last=True, wrapped=True)
    # 2 / 3: gaps; coordinate 2 lies in no window
    assert axis_slots(2, 3)[2][0].inside is False
    for k in range(1, 6):
        for s in range(1, 6):
            for z in range(40):  # every coordinate: the windows covering it, from the definition
                covering = {i for i in range(z + 1) if i * s <= z < i * s + k}
                r, period = -(-k // s), -(-k // s) * s
                got = {(z // period - row.wrapped) * r + j for j, row in enumerate(axis_slots(k, s)[z % period])
                       if row.inside} - {j - r for j in range(r)}  # window indices < 0 do not exist
                assert got == covering, (k, s, z)


def test_overlapping_buffer_bits() -> None:
    dut = MaxPoolUnit(in_shape=(16, 13, 13), kernel=3, stride=2, use_and=np.zeros(16, bool), width=8)
    assert dut.out_shape == (16, 6, 6)
    assert dut.buffer_bits == 2 * 2 * 3 * 16  # R x R slots of ceil(W_out / R) pixels
