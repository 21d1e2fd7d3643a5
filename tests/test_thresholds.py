"""Per-position thresholds and ``<=`` directions in the folded engines (MVTU masked / unmasked, MAC unit).

XNOR-Net++ Gamma shapes 2-4 give a threshold per output position, T[c, pos],
and a channel whose scale changes sign across positions compares ``<=`` at
some positions and ``>=`` at others. The engines read T (and an inversion
bit) from a ROM in result order. The reference here is written directly
from the IR's definition (``acc >= T`` or ``acc <= T``, position = vector
index mod P), not from the golden model's ``T + 1`` rewriting. A threshold
word off by one at a position where an accumulator sits exactly on it must
be caught; throughput and latency must equal the per-channel engine's.
"""

from __future__ import annotations

import numpy as np
import pytest
from engine_checks import check_timing, simulate
from streams import mismatches
from test_mac import reference_acc as mac_reference_acc
from test_mvtu import random_vectors, reference_acc

from hwgen.compile.ir import signed_bits
from hwgen.hw.engines import MVTU, MACUnit
from hwgen.hw.engines.thresholds import ThresholdTable, check_thresholds
from hwgen.hw.families import Family
from hwgen.errors import BuildError

pytestmark = pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")


def expected_bits(dut, acc: np.ndarray, t: np.ndarray, d: np.ndarray | None) -> list[int]:
    """Output beats: vector v uses column v mod P of T (C_out, P); bit = acc >= T (d = +1) or acc <= T (d = -1)."""
    t = t.reshape(len(t), -1)
    d = np.ones_like(t) if d is None else d.reshape(t.shape)
    beats = []
    for v, row in enumerate(acc):
        pos = v % t.shape[1]
        bits = [int(a >= tt) if dd == 1 else int(a <= tt) for a, tt, dd in zip(row, t[:, pos], d[:, pos])]
        for nf in range(dut.nf):
            beats.append(sum(b << p for p, b in enumerate(bits[nf * dut.pe:(nf + 1) * dut.pe])))
    return beats


def position_thresholds(rng: np.random.Generator, acc: np.ndarray, positions: int, lo: int, hi: int,
                        *, mixed: bool) -> tuple[np.ndarray, np.ndarray]:
    """T (C_out, P) on accumulators that occur at that position (so off-by-one matters), a few constants;
    directions: +1, or (mixed) -1 on whole channels and on random positions of others."""
    n, c_out = acc.shape
    t = np.empty((c_out, positions), dtype=np.int64)
    for pos in range(positions):
        seen = acc[pos::positions]  # vectors at this position
        t[:, pos] = seen[rng.integers(0, len(seen), size=c_out), np.arange(c_out)]
    t[0, 0] = hi + 1 + int(rng.integers(0, 50))  # constant
    t[-1, -1] = lo - 1 - int(rng.integers(0, 50))  # constant
    d = np.ones_like(t)
    if mixed:
        d[rng.random(c_out) < 0.3] = -1
        d[rng.random(t.shape) < 0.3] = -1
        d[0, 0] = -1  # a constant '<=': always 1
    return t, d


@pytest.mark.parametrize("masked", [True, False], ids=["masked", "unmasked"])
@pytest.mark.parametrize("seed", range(6))
def test_mvtu_per_position_mixed_directions_with_stalls(seed: int, masked: bool) -> None:
    rng = np.random.default_rng(40 + seed)
    c_out = int(rng.choice([2, 4, 6]))
    fan_in = int(rng.choice([4, 9, 12]))
    pe = int(rng.choice([d for d in (1, 2, c_out) if c_out % d == 0]))
    simd = int(rng.choice([d for d in (1, 3, 4, fan_in) if fan_in % d == 0]))
    positions = int(rng.integers(2, 6))
    n = 2 * positions + 1  # two frames and the start of a third: the result counter wraps
    w = rng.choice(np.array([-1, 1]), size=(c_out, fan_in))
    x, valid = random_vectors(rng, n, fan_in)
    if not masked:
        valid = np.ones_like(valid)
    acc = reference_acc(w, x, valid)
    t, d = position_thresholds(rng, acc, positions, -fan_in, fan_in, mixed=seed % 3 != 0)
    dut = MVTU(weights=w, pe=pe, simd=simd, thresholds=t, directions=d, masked=masked)
    assert dut.positions == positions and dut.threshold_table.depth == positions * dut.nf
    trace = simulate(dut, x, valid, seed=seed, gap_p=0.3, stall_p=0.4)
    assert mismatches(trace.outputs, expected_bits(dut, acc, t, d)) == [], (c_out, fan_in, pe, simd, positions)


@pytest.mark.parametrize("seed", range(4))
def test_mac_per_position_mixed_directions_with_stalls(seed: int) -> None:
    rng = np.random.default_rng(80 + seed)
    c_in, taps, c_out, pe = 3, 4, 4, int(rng.choice([1, 2, 4]))
    fan_in = c_in * taps
    w = rng.integers(-7, 8, size=(c_out, fan_in)) if seed % 2 else rng.choice(np.array([-1, 1]), (c_out, fan_in))
    offsets = rng.integers(0, 256, size=c_in)
    positions = 3
    n = 2 * positions
    x = rng.integers(0, 256, size=(n, fan_in))
    valid = (rng.random((n, fan_in)) < 0.9).astype(np.uint8)
    acc = mac_reference_acc(w, offsets, x, valid)
    probe = MACUnit(weights=w, input_offset=offsets, in_channels=c_in, pe=pe, simd=c_in, thresholds=None)
    t, d = position_thresholds(rng, acc, positions, *probe.acc_range, mixed=True)
    dut = MACUnit(weights=w, input_offset=offsets, in_channels=c_in, pe=pe, simd=c_in, thresholds=t, directions=d)
    trace = simulate(dut, x, valid, seed=seed, gap_p=0.3, stall_p=0.4)
    assert mismatches(trace.outputs, expected_bits(dut, acc, t, d)) == []


@pytest.mark.parametrize("masked", [True, False], ids=["masked", "unmasked"])
def test_one_threshold_word_off_by_one_is_caught(masked: bool) -> None:
    """The design built with T[c, pos] + 1 at one (channel, position) where an accumulator equals T
    disagrees with the reference of the original T; the original design agrees."""
    rng = np.random.default_rng(3)
    c_out, fan_in, pe, simd, positions = 4, 12, 2, 4, 3
    w = rng.choice(np.array([-1, 1]), size=(c_out, fan_in))
    x, valid = random_vectors(rng, 2 * positions, fan_in)
    if not masked:
        valid = np.ones_like(valid)
    acc = reference_acc(w, x, valid)
    t, d = position_thresholds(rng, acc, positions, -fan_in, fan_in, mixed=True)
    c, pos = 1, 2
    t[c, pos] = acc[pos, c]  # vector `pos` (frame 0) sits exactly on the threshold
    expected = expected_bits(MVTU(weights=w, pe=pe, simd=simd, thresholds=t, directions=d, masked=masked),
                             acc, t, d)
    for delta in (0, 1, -1):
        bad = t.copy()
        bad[c, pos] += delta
        dut = MVTU(weights=w, pe=pe, simd=simd, thresholds=bad, directions=d, masked=masked)
        errors = mismatches(simulate(dut, x, valid, seed=1, gap_p=0.2, stall_p=0.2).outputs, expected)
        # >= T: T + 1 turns the 1 at acc == T into 0; <= T: T - 1 does
        caught = delta == (1 if d[c, pos] == 1 else -1)
        assert bool(errors) == caught, (delta, d[c, pos], errors)


@pytest.mark.parametrize("masked", [True, False], ids=["masked", "unmasked"])
@pytest.mark.parametrize("c_out,fan_in,pe,simd", [(4, 8, 4, 8), (6, 12, 2, 12), (6, 20, 3, 5), (3, 7, 1, 1)])
def test_per_position_thresholds_cost_no_cycle(c_out: int, fan_in: int, pe: int, simd: int, masked: bool) -> None:
    """NF * SF cycles per vector and the per-channel engine's latency, with per-position thresholds."""
    rng = np.random.default_rng(c_out * 100 + fan_in)
    w = rng.choice(np.array([-1, 1]), size=(c_out, fan_in))
    positions, n = 4, 8
    x, valid = random_vectors(rng, n, fan_in)
    if not masked:
        valid = np.ones_like(valid)
    acc = reference_acc(w, x, valid)
    t, d = position_thresholds(rng, acc, positions, -fan_in, fan_in, mixed=True)
    dut = MVTU(weights=w, pe=pe, simd=simd, thresholds=t, directions=d, masked=masked)
    channel = MVTU(weights=w, pe=pe, simd=simd, thresholds=t[:, 0], masked=masked)
    assert (dut.cycles_per_vector, dut.latency) == (channel.cycles_per_vector, channel.latency)
    trace = simulate(dut, x, valid)
    assert mismatches(trace.outputs, expected_bits(dut, acc, t, d)) == []
    check_timing(dut, trace, n)


def test_table_layout_and_memory_bits() -> None:
    """Word r = pos * NF + nf: the next result's start values (-T) in one field per lane, then this result's
    inversion bits."""
    t = np.array([[10, 11, 12], [20, 21, 22], [30, 31, 32], [40, 41, 42]])  # (C_out = 4, P = 3)
    d = np.ones_like(t)
    d[2, 1] = -1
    w = np.ones((4, 64), dtype=np.int64)
    dut = MVTU(weights=w, pe=2, simd=16, thresholds=t, directions=d)
    table = dut.threshold_table
    # results in order: (pos 0, nf 0) = channels 0, 1; (pos 0, nf 1) = channels 2, 3; (pos 1, nf 0) ...
    order = [(0, 0), (0, 1), (1, 0), (1, 1), (2, 0), (2, 1)]
    starts = [[-t[2 * nf, pos], -t[2 * nf + 1, pos]] for pos, nf in order]
    starts[3][0] -= 1  # channel 2 at position 1 is '<=': T + 1
    # lane 0 (channels 0, 2) starts in [-32, -10]: -32 = ...1110_0000 and -10 = ...1111_0110 differ in the low
    # 5 bits, so 5 bits under a constant -1 (start = -32 + field); lane 1 (channels 1, 3) in [-42, -20]:
    # ...1101_0110 and ...1110_1100 differ in 6 bits, start = -64 + field
    assert table.fields == ((5, -1), (6, -1))
    assert dut.threshold_width == 8  # the accumulator adds dot products in [-64, 64]: [-106, 54], 8 bits
    assert (table.depth, table.word_bits) == (6, 5 + 6 + 2)
    assert dut.threshold_rom_bits == 6 * 13
    for r, word in enumerate(dut.threshold_words()):
        nxt = starts[(r + 1) % 6]
        assert (word & 31, (word >> 5) & 63) == (nxt[0] + 32, nxt[1] + 64), r
        assert word >> 11 == (0b01 if order[r] == (1, 1) else 0), r
    # without any '<=' no inversion bits are stored
    plain = MVTU(weights=w, pe=2, simd=16, thresholds=t)
    assert plain.threshold_rom_bits == 6 * (5 + 6)
    assert not plain.threshold_table.has_directions


def test_rom_placement_rule() -> None:
    for family in Family:
        memory = family.spec.memory
        assert not memory.threshold_rom_in_block_ram(64) and memory.threshold_rom_in_block_ram(65)
    start = np.zeros((4, 50), dtype=np.int64)
    start[1, 3] = -5
    table = ThresholdTable.from_channels(start, np.zeros((4, 50), bool), pe=2)
    # lane 0 (channels 0, 2) is always 0: no bits; lane 1 spans -5 .. 0: 4 bits, two's complement
    assert table.depth == 100 and table.fields == ((0, 0), (4, None)) and table.word_bits == 4


def test_lane_fields_narrow_far_from_zero_and_constant() -> None:
    """Each lane stores only the bits its own start values need: thresholds in a narrow band far from 0
    give a few bits under a constant high part, a channel with one threshold at every position gives a
    0-bit field; the engine (first-layer MAC, 8-bit pixels) still computes every output bit."""
    rng = np.random.default_rng(7)
    c_in, taps, c_out, positions = 3, 4, 4, 4
    fan_in = c_in * taps
    w = rng.integers(3, 8, size=(c_out, fan_in))
    offsets = np.zeros(c_in, dtype=np.int64)
    n = 3 * positions
    x = rng.integers(240, 256, size=(n, fan_in))
    valid = np.ones((n, fan_in), dtype=np.uint8)
    acc = mac_reference_acc(w, offsets, x, valid)  # about 12 * 5 * 248: thousands, a few hundred apart
    t = np.empty((c_out, positions), dtype=np.int64)
    for pos in range(positions):
        seen = acc[pos::positions]
        t[:, pos] = seen[rng.integers(0, len(seen), size=c_out), np.arange(c_out)]
    t[1] = t[1, 0]  # one threshold for channel 1
    dut = MACUnit(weights=w, input_offset=offsets, in_channels=c_in, pe=c_out, simd=c_in, thresholds=t)
    table = dut.threshold_table
    assert table.fields[1][0] == 0
    # a band that straddles a power of two (lane 0 here: -16,461 .. -16,295 around -2^14) keeps its low
    # 15 bits; the others sit under a constant high part
    assert sum(high is not None and high < -1 for _, high in table.fields) >= 2, table.fields
    shared = signed_bits(int(table.start.min()), int(table.start.max()))
    assert table.word_bits < c_out * shared  # narrower than one signed field for every lane
    trace = simulate(dut, x, valid, seed=7, gap_p=0.3, stall_p=0.4)
    assert mismatches(trace.outputs, expected_bits(dut, acc, t, None)) == []


@pytest.mark.parametrize("kwargs,message", [
    (dict(thresholds=np.zeros((4, 3)), directions=None), r"integer array"),
    (dict(thresholds=np.zeros((4, 3), int), directions=np.ones((4, 2), int)), r"the thresholds' shape \(4, 3\)"),
    (dict(thresholds=np.zeros((4, 3), int), directions=np.zeros((4, 3), int)), r"\+1 \('>='\) or -1"),
    (dict(thresholds=None, directions=np.ones(4, int)), r"directions need thresholds"),
    (dict(thresholds=np.zeros((5, 3), int), directions=None), r"not \(5, 3\)"),
])
def test_validation(kwargs: dict, message: str) -> None:
    with pytest.raises(BuildError, match=message):
        check_thresholds("MVTU", kwargs["thresholds"], 4, kwargs["directions"])
