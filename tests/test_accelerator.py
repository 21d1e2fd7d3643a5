"""The whole accelerator in Amaranth's simulator: bit-exact with the golden model, throughput as folded.

Also the two stream blocks it adds to the engines: the width converter and the score unit.
"""

from __future__ import annotations

import numpy as np
import pytest
from accel_sim import frame_intervals, golden_words, simulate_accelerator
from irnets import random_network
from streams import mismatches, run_stream

from hwgen.hw.accelerator import Accelerator
from hwgen.hw.engines.convert import WidthConverter
from hwgen.hw.engines.scores import ScoreUnit
from hwgen.hw.folding import SCORE_STAGE, fastest_cycles, fixed_stages, solve_folding, summarize
from hwgen.compile.ir import ThresholdOutput
from hwgen.errors import BuildError

#: (input shape, layers, pe, simd, first-layer weight bits, last-layer weight bits, classes)
NETWORKS = {
    "conv_pad_pool_conv_fc": ((2, 6, 6), [("conv", 4, 3, 1, 1), ("pool", 2), ("conv", 8, 3, 1, 0), ("fc", 6)],
                              2, 2, 1, 1, 4),
    "int8_first_stride2_pool": ((3, 8, 8), [("conv", 8, 3, 1, 1), ("conv", 8, 3, 2, 1), ("pool", 2), ("fc", 8)],
                                4, 3, 8, 1, 4),
    "mlp_int4_first_int8_last": ((1, 8, 8), [("fc", 16), ("fc", 8)], 4, 8, 4, 8, 5),
    "pool_then_fc_int8_last": ((2, 6, 6), [("conv", 4, 3, 1, 1), ("pool", 2), ("fc", 6)], 2, 2, 1, 8, 6),
    "wide_pe_simd": ((4, 5, 5), [("conv", 8, 3, 1, 1), ("conv", 16, 3, 1, 1), ("pool", 2), ("fc", 8)],
                     8, 4, 2, 1, 10),
}


def _build(case: str, seed: int = 0):
    shape, layers, pe, simd, first_bits, last_bits, classes = NETWORKS[case]
    rng = np.random.default_rng(seed)
    net = random_network(rng, shape, layers, num_classes=classes, first_weight_bits=first_bits,
                         last_weight_bits=last_bits)
    folds = solve_folding(net, pe=pe, simd=simd)
    images = rng.integers(0, 256, size=(5, *shape), dtype=np.uint8)
    return net, folds, Accelerator(net, folds), images


@pytest.mark.parametrize("case", sorted(NETWORKS))
def test_bit_exact_with_stalls_and_back_pressure(case: str) -> None:
    net, folds, acc, images = _build(case)
    cycles = summarize(folds, fixed_stages(net)).cycles_per_frame
    trace = simulate_accelerator(acc, images, budget=40 * cycles * len(images) + 5000, seed=3,
                                 gap_p=0.3, stall_p=0.4)
    assert not mismatches(trace.outputs, golden_words(net, images))


@pytest.mark.parametrize("case", sorted(NETWORKS))
def test_frame_rate_matches_the_folding_estimate(case: str) -> None:
    net, folds, acc, images = _build(case, seed=1)
    estimate = summarize(folds, fixed_stages(net)).cycles_per_frame
    trace = simulate_accelerator(acc, images, budget=4 * estimate * len(images) + 5000)
    assert not mismatches(trace.outputs, golden_words(net, images))
    steady = frame_intervals(acc, trace)[1:]  # after the pipeline has filled
    assert np.all(np.abs(steady - estimate) <= 0.05 * estimate), (steady, estimate)


def test_a_score_bound_network_runs_at_the_score_units_interval() -> None:
    """4 pixels and 12 classes: the score unit's 2C + 9 = 33 cycles, not the input's 4, is both the
    folding's estimate (bottleneck named) and the measured frame interval; --fps above it is refused."""
    rng = np.random.default_rng(7)
    net = random_network(rng, (1, 2, 2), [("fc", 8)], num_classes=12)
    balanced = solve_folding(net, pe=4, simd=8)  # fc0 gets the fewest lanes that keep up with the score unit
    assert [f.cycles for f in balanced] == [32, 3]
    folds = solve_folding(net, pe=4, simd=8, overrides={"l0_fc": (8, 4)})  # fc0 unrolled: 1 cycle
    summary = summarize(folds, fixed_stages(net))
    assert (summary.bottleneck, summary.cycles_per_frame) == (SCORE_STAGE, 33)
    assert fastest_cycles(net) == (33, SCORE_STAGE)
    images = rng.integers(0, 256, size=(6, 1, 2, 2), dtype=np.uint8)
    acc = Accelerator(net, folds)
    trace = simulate_accelerator(acc, images, budget=20 * 32 * len(images))
    assert not mismatches(trace.outputs, golden_words(net, images))
    assert frame_intervals(acc, trace)[1:].tolist() == [33] * (len(images) - 2)  # after the first interval
    with pytest.raises(BuildError, match=r"the score unit takes 33"):
        solve_folding(net, fps=4e6, clock_hz=100e6)


def test_a_wrong_threshold_is_caught() -> None:
    """The checker can fail: one changed threshold changes some output word."""
    net, folds, acc, images = _build("conv_pad_pool_conv_fc")
    first = net.layers[0]
    t = first.output.thresholds.copy()
    t[1] += 40
    first.output = ThresholdOutput(t, first.output.direction)
    trace = simulate_accelerator(Accelerator(net, folds), images, budget=100_000)
    net_ok, *_ = _build("conv_pad_pool_conv_fc")  # the same seed: the unchanged network
    assert mismatches(trace.outputs, golden_words(net_ok, images))


def test_malformed_thresholds_are_refused_naming_the_layer() -> None:
    net, folds, _, _ = _build("conv_pad_pool_conv_fc")
    layer = net.layers[0]
    c, h, w = layer.out_shape
    layer.output = ThresholdOutput(np.zeros((c, h, w + 1), np.int64), np.ones((c, h, w + 1), np.int8))
    with pytest.raises(BuildError, match=r"layer l0_conv: thresholds \(4, 6, 7\) .* per output position \(4, 6, 6\)"):
        Accelerator(net, folds)
    layer.output = ThresholdOutput(np.zeros(c, np.int64), np.array([1, 0, -1, 1], np.int8))
    with pytest.raises(BuildError, match=r"layer l0_conv: threshold directions must be \+1 .* not \[0\]"):
        Accelerator(net, folds)


# -- width converter ----------------------------------------------------------

@pytest.mark.parametrize("copied", [None, True], ids=["default", "copied"])
@pytest.mark.parametrize("in_width, out_width", [(2, 8), (8, 2), (6, 4), (4, 6), (3, 12), (1, 9), (1, 10), (2, 34)])
def test_width_converter_keeps_the_bit_string(in_width: int, out_width: int, copied: bool | None) -> None:
    """With gaps and stalls; ``copied``: every gather through the copied input register (by default only a
    gather of more than COPY_GATHER_ABOVE parts, here (2, 34))."""
    rng = np.random.default_rng(in_width * 16 + out_width)
    total = 24 * np.lcm(in_width, out_width)
    bits = rng.integers(0, 2, size=total)
    beats_in = [int("".join(map(str, chunk[::-1])), 2) for chunk in bits.reshape(-1, in_width)]
    expected = [int("".join(map(str, chunk[::-1])), 2) for chunk in bits.reshape(-1, out_width)]
    dut = WidthConverter(in_width=in_width, out_width=out_width, copied=copied)
    trace = run_stream(dut, beats_in, len(expected), budget=20 * total, seed=5, gap_p=0.3, stall_p=0.3)
    assert not mismatches(trace.outputs, expected)


@pytest.mark.parametrize("in_width, out_width, copied, latency", [(2, 8, False, 1), (2, 8, True, 2), (2, 34, None, 2),
                                                                  (6, 4, None, 2), (6, 4, True, 3)])
def test_width_converter_full_rate(in_width: int, out_width: int, copied: bool | None, latency: int) -> None:
    """Full rate; a gather's output beat ``latency`` cycles after the handshake of its last input beat (copied:
    one more, and the copies in the Verilog)."""
    from amaranth.back import verilog

    dut = WidthConverter(in_width=in_width, out_width=out_width, copied=copied)
    assert dut.latency == latency
    assert ("beat_fanout0" in verilog.convert(dut, name="conv")) == bool(dut.copied)
    # the narrower stream runs at one beat per cycle: the input of a gather, the gcd-wide stream between split
    # and gather (a 6-bit beat every 3 cycles into 2-bit parts)
    g = int(np.gcd(in_width, out_width))
    n_in = 16 * int(np.lcm(in_width, out_width)) // in_width
    dut = WidthConverter(in_width=in_width, out_width=out_width, copied=copied)
    trace = run_stream(dut, [j % (1 << in_width) for j in range(n_in)], n_in * in_width // out_width,
                       budget=4 * n_in * in_width // g + 20)
    assert np.all(np.diff(trace.in_cycles) == in_width // g)
    if out_width % in_width == 0:
        k = out_width // in_width
        assert [o - trace.in_cycles[(n + 1) * k - 1] for n, o in enumerate(trace.out_cycles)] == \
            [latency] * len(trace.out_cycles)


# -- score unit ---------------------------------------------------------------

def _score_words(scale, bias, accs, pe=1, word_bits=32):
    dut = ScoreUnit(scale=np.array(scale), bias=np.array(bias), acc_range=(-64, 64), pe=pe, word_bits=word_bits)
    beats = []
    for row in accs:
        for nf in range(len(scale) // pe):
            raw = 0
            for p in range(pe):
                raw |= (int(row[nf * pe + p]) & ((1 << dut.acc_width) - 1)) << (p * dut.acc_width)
            beats.append(raw)
    n = len(accs) * (len(scale) + 1)
    trace = run_stream(dut, beats, n, budget=50 * n + 100, seed=2, gap_p=0.2, stall_p=0.3)
    return [(v & ((1 << word_bits) - 1), v >> word_bits) for v in trace.outputs]


@pytest.mark.parametrize("classes, pe", [(1, 1), (2, 1), (2, 2), (4, 2), (10, 1), (10, 5)])
def test_score_unit_frame_interval(classes: int, pe: int) -> None:
    """Input always valid, output always ready: a frame's class word every 2C + 9 cycles (the docstring's
    figure: one class per cycle, whatever PE), with the right words."""
    scale, bias = np.arange(1, classes + 1), np.zeros(classes, dtype=np.int64)
    dut = ScoreUnit(scale=scale, bias=bias, acc_range=(-64, 64), pe=pe)
    frames = 6
    width = dut.acc_width
    rng = np.random.default_rng(classes)
    accs = rng.integers(-64, 65, size=(frames, classes))
    beats = [sum((int(row[nf * pe + p]) & ((1 << width) - 1)) << (p * width) for p in range(pe))
             for row in accs for nf in range(classes // pe)]
    trace = run_stream(dut, beats, frames * (classes + 1), budget=100 * frames * (classes + 1))
    class_words = [(v & 0xFFFFFFFF) for k, v in enumerate(trace.outputs) if k % (classes + 1) == classes]
    assert class_words == [int(np.argmax(scale * row)) for row in accs]
    ends = [c for k, c in enumerate(trace.out_cycles) if k % (classes + 1) == classes]
    assert np.diff(ends).tolist() == [2 * classes + 9] * (frames - 1)


def test_scores_ties_go_to_the_lowest_index_and_negatives_sign_extend() -> None:
    scale, bias = [3, 1, 3, 2], [0, 5, 0, -7]
    accs = [[4, 7, 4, -3], [-9, -40, -9, -64], [0, 0, 0, 0]]
    got = _score_words(scale, bias, accs, pe=2)
    expected = []
    for row in accs:
        s = [sc * a + b for sc, a, b in zip(scale, row, bias)]
        expected += [(v & 0xFFFFFFFF, 0) for v in s] + [(int(np.argmax(s)), 1)]
    assert expected[4] == (0, 1) and expected[9] == (0, 1)  # the cases are ties at class 0 vs 2
    assert got == expected


@pytest.mark.parametrize("scale, word_bits", [
    ([(1 << 17) - 1, -(1 << 17), 5, -3], 32),                       # 18 bits: one multiplier operand
    ([(1 << 18) + 12345, -(1 << 18) + 7, 99991, -1], 32),            # 20 bits: a 17-bit chunk + a signed top
    ([(1 << 24) - 3, -(1 << 23) + 4321, (1 << 17), -(1 << 17) - 1], 32),  # 25 bits, chunk edges
    ([(1 << 41) - 12345, -(1 << 40) - 99, 3 << 34, -5], 64),         # 43 bits: three chunks
])
def test_wide_scales_cut_into_chunks_are_exact(scale, word_bits) -> None:
    """Scores of scales wider than one multiplier operand (summed partial products) against Python's integers."""
    bias = [-(1 << 20) + 3, 17, 0, 1 << 19]
    accs = [[-64, 64, 1, -1], [63, -63, -64, 64], [0, 5, -7, 11]]
    got = _score_words(scale, bias, accs, word_bits=word_bits)
    expected = []
    mask = (1 << word_bits) - 1
    for row in accs:
        s = [sc * a + b for sc, a, b in zip(scale, row, bias)]
        expected += [(v & mask, 0) for v in s] + [(max(range(4), key=lambda c: (s[c], -c)), 1)]
    assert got == expected


def test_scores_that_do_not_fit_the_word_are_refused() -> None:
    with pytest.raises(BuildError, match="do not fit 32-bit"):
        ScoreUnit(scale=np.array([1 << 30]), bias=np.array([0]), acc_range=(-64, 64), pe=1)


def test_deep_weight_rom_is_sliced_without_a_depth_cascade() -> None:
    """A ROM deeper than 1,024 words is split into slices of the widest block-RAM shape deep enough
    (8K x 2 for 8,192 words, 2K x 9 for 2,048), when that takes no more block RAMs than the best mapping;
    else one memory."""
    from hwgen.hw.engines.folded import rom_slice_width
    from hwgen.hw.targets import get_target

    ecp5 = get_target("ecp5-85k")
    assert rom_slice_width(32, 8192) == 2 and 32 // 2 == ecp5.bram_blocks_for(32, 8192)
    assert rom_slice_width(8, 4096) == 4                  # 2 slices = 2 blocks, as 512 x 36 x 8 deep
    assert rom_slice_width(4096, 576) == 4096            # a 2:1 cascade at most: left whole
    assert rom_slice_width(128, 4608) == 128             # 4K x 4 is too shallow; 8K x 2 would take 64 > 36
    assert rom_slice_width(24, 24576) == 24              # deeper than any shape: split in depth instead (below)
    assert rom_slice_width(36, 300) == 36                # one tile deep: nothing to split
    assert rom_slice_width(512, 2048) == 9               # LFC's fc1: 57 tiles, each read at its own address
    assert rom_slice_width(512, 1024) == 512             # not deeper than 1,024 words: left whole


def test_cascaded_rom_is_split_in_depth() -> None:
    """A block-RAM ROM that neither slices nor fits one tile deep at its best is split into banks of the
    deepest configuration whose banks take no more block RAMs: CNV --pe 16's conv5 (24,576 x 24: 16K + 8K
    words, 24 + 12 = 36 as whole) and conv4 (2,304 x 128: 2K + 256 words, 15 + 4 = 19 against 20, five
    512 x 36 tiles deep whole); sliced or one-tile ROMs stay one bank."""
    from hwgen.hw.families import ECP5

    memory = ECP5.memory
    assert memory.rom_bank_depth(24, 24576) == 16384 and memory.rom_banks(24, 24576) == 2
    assert memory.rom_blocks(24, 24576) == 24 + 12 == memory.block_ram.blocks_for(24, 24576)
    assert memory.rom_bank_depth(128, 2304) == 2048 and memory.rom_banks(128, 2304) == 2
    assert memory.rom_blocks(128, 2304) == 15 + 4 < memory.block_ram.blocks_for(128, 2304) == 20
    assert memory.rom_blocks(32, 18432) == 32 + 4                    # g4 CNV --fit's conv5: 16K x 1, then 2K x 9
    assert memory.rom_banks(32, 8192) == 1 and memory.rom_blocks(32, 8192) == 16   # sliced 8K x 2
    assert memory.rom_banks(36, 512) == 1 and memory.rom_banks(1024, 144) == 1     # one tile deep
    # LFC's fc0, 3,584 x 224: banks of 2,048 would leave 1,536 words whose best is three 512 x 36 tiles deep
    # (a multiplexer after them again); banks of 1,024 are each one tile deep: 3 x 13 + 7 = 46 <= 49
    assert memory.block_ram.blocks_for(224, 1536) == 21 and not memory.block_ram.one_deep(224, 1536)
    assert memory.rom_bank_depth(224, 3584) == 1024 and memory.rom_banks(224, 3584) == 4
    assert memory.rom_blocks(224, 3584) == 3 * 13 + 7 < memory.block_ram.blocks_for(224, 3584) == 49
