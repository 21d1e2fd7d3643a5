"""MVTU engine vs the golden model in Amaranth's simulator.

Random shapes and foldings, random tap masks, random input gaps and output
back-pressure; every output beat is compared exactly with the golden model's
arithmetic. Also: full throughput (NF*SF cycles per vector), the documented
latency, a deliberately wrong weight caught by the checker, parameter
validation and Verilog export.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
from engine_checks import beats_from_acc, check_timing, simulate
from streams import mismatches

from hwgen.hw.engines import MVTU
from hwgen.hw.folding import divisors
from hwgen.errors import BuildError

# Tests that only inspect a design's figures never elaborate it.
pytestmark = pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")

# ---------------------------------------------------------------------------
# Reference and driver
# ---------------------------------------------------------------------------

def reference_acc(weights: np.ndarray, x_bits: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """(N, C_out) accumulators: sum over valid taps of w * (2x - 1)."""
    v = (2 * x_bits.astype(np.int64) - 1) * valid
    return v @ weights.astype(np.int64).T


def expected_beats(dut: MVTU, weights: np.ndarray, thresholds: np.ndarray | None,
                   x_bits: np.ndarray, valid: np.ndarray) -> list:
    """Output beats in stream order: per vector, per neuron fold (raw int or tuple of ints)."""
    return beats_from_acc(dut, reference_acc(weights, x_bits, valid), thresholds)


def random_vectors(rng: np.random.Generator, n: int, fan_in: int) -> tuple[np.ndarray, np.ndarray]:
    x = rng.integers(0, 2, size=(n, fan_in), dtype=np.uint8)
    valid = np.ones((n, fan_in), dtype=np.uint8)
    valid[1] = rng.random(fan_in) < 0.7  # some padded taps
    valid[2] = 0  # all padded: acc 0
    if n > 3:
        valid[3:] = rng.random((n - 3, fan_in)) < 0.9
    return x, valid


def random_case(seed: int, accumulator: bool):
    rng = np.random.default_rng(seed)
    c_out = int(rng.integers(2, 13))
    fan_in = int(rng.integers(3, 81))
    pe = int(rng.choice(divisors(c_out)))
    simd = int(rng.choice(divisors(fan_in)))
    # Keep the simulated cycle count small: prefer wider folds for big shapes.
    while (c_out // pe) * (fan_in // simd) > 250:
        simd = min(d for d in divisors(fan_in) if d > simd)
    w = rng.choice(np.array([-1, 1]), size=(c_out, fan_in))
    t = None
    if not accumulator:
        t = rng.integers(-fan_in, fan_in + 1, size=c_out)
        t[::2] = rng.integers(-fan_in // 3, fan_in // 3 + 1, size=len(t[::2]))  # bits not all constant
        t[0] = fan_in + 1 + int(rng.integers(0, 1000))  # always 0
        if c_out > 2:
            t[1] = -fan_in - int(rng.integers(0, 1000))  # always 1
        if c_out > 3:
            t[2] = fan_in  # 1 only when every tap is valid and matches
    x, valid = random_vectors(rng, 8, fan_in)
    return w, t, pe, simd, x, valid


# ---------------------------------------------------------------------------
# Tests
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("accumulator", [False, True], ids=["threshold", "accumulator"])
@pytest.mark.parametrize("seed", range(12))
def test_random_shapes_with_stalls_match_golden(seed: int, accumulator: bool) -> None:
    w, t, pe, simd, x, valid = random_case(100 * seed + accumulator, accumulator)
    dut = MVTU(weights=w, pe=pe, simd=simd, thresholds=t)
    trace = simulate(dut, x, valid, seed=seed, gap_p=0.3, stall_p=0.4)
    expected = expected_beats(dut, w, t, x, valid)
    assert mismatches(trace.outputs, expected) == [], (
        f"C_out={w.shape[0]} F={w.shape[1]} PE={pe} SIMD={simd}")


@pytest.mark.parametrize("accumulator", [False, True], ids=["threshold", "accumulator"])
@pytest.mark.parametrize("seed", range(6))
def test_unmasked_engine_ignores_the_valid_field(seed: int, accumulator: bool) -> None:
    """masked=False (no padded taps): every tap counts whatever ``valid`` carries."""
    w, t, pe, simd, x, _ = random_case(700 + 100 * seed + accumulator, accumulator)
    garbage = np.random.default_rng(seed).integers(0, 2, size=x.shape, dtype=np.uint8)
    dut = MVTU(weights=w, pe=pe, simd=simd, thresholds=t, masked=False)
    trace = simulate(dut, x, garbage, seed=seed, gap_p=0.3, stall_p=0.4)
    expected = expected_beats(dut, w, t, x, np.ones_like(x))
    assert mismatches(trace.outputs, expected) == [], f"C_out={w.shape[0]} F={w.shape[1]} PE={pe} SIMD={simd}"
    assert dut.input_buffer_bits == (0 if dut.nf == 1 else dut.sf * simd)


@pytest.mark.parametrize("c_out,fan_in,pe,simd", [
    (4, 8, 4, 8),     # NF = SF = 1: one vector per cycle
    (6, 12, 2, 12),   # SF = 1, NF = 3: one result per cycle through the credits
    (4, 16, 4, 4),    # NF = 1
    (6, 20, 3, 5),    # both folded
    (3, 7, 1, 1),     # PE = SIMD = 1, no popcount tree
    (4, 40, 2, 2),    # SF = 20 > 16, NF = 2: input buffer in block RAM, its read registered
])
@pytest.mark.parametrize("accumulator", [False, True], ids=["threshold", "accumulator"])
def test_throughput_and_latency(c_out: int, fan_in: int, pe: int, simd: int, accumulator: bool) -> None:
    rng = np.random.default_rng(c_out * 100 + fan_in)
    w = rng.choice(np.array([-1, 1]), size=(c_out, fan_in))
    t = None if accumulator else rng.integers(-fan_in, fan_in + 1, size=c_out)
    n = 8
    x, valid = random_vectors(rng, n, fan_in)
    dut = MVTU(weights=w, pe=pe, simd=simd, thresholds=t)
    assert dut.cycles_per_vector == (c_out // pe) * (fan_in // simd)
    trace = simulate(dut, x, valid)
    assert mismatches(trace.outputs, expected_beats(dut, w, t, x, valid)) == []
    check_timing(dut, trace, n)


@pytest.mark.parametrize("masked", [True, False], ids=["masked", "unmasked"])
@pytest.mark.parametrize("accumulator", [False, True], ids=["threshold", "accumulator"])
def test_block_ram_buffer_read_is_registered(masked: bool, accumulator: bool) -> None:
    """SF = 68 > 16 with NF = 3 (5 LUT RAM cells, more than 4): the input buffer is in block RAM and its read
    data pass two more registers (``read_stages`` = 2, latency two cycles longer than the same engine with
    SF = 8, in LUT RAM); exact with stalls."""
    rng = np.random.default_rng(31 + masked + 2 * accumulator)
    c_out, fan_in = 6, 136
    w = rng.choice(np.array([-1, 1]), size=(c_out, fan_in))
    t = None if accumulator else rng.integers(-fan_in // 4, fan_in // 4 + 1, size=c_out)
    x, valid = random_vectors(rng, 6, fan_in)
    if not masked:
        valid = np.ones_like(x)
    dut = MVTU(weights=w, pe=2, simd=2, thresholds=t, masked=masked)
    wide = MVTU(weights=w, pe=2, simd=17, thresholds=t, masked=masked)
    assert (dut.buffer_in_block_ram, dut.read_stages, wide.buffer_in_block_ram, wide.read_stages) == (True, 2, False, 0)
    assert dut.sum_latency() == dut.term_latency() + 2
    trace = simulate(dut, x, valid, seed=5, gap_p=0.3, stall_p=0.4)
    assert mismatches(trace.outputs, expected_beats(dut, w, t, x, valid)) == []
    check_timing(dut, simulate(dut, x, valid), len(x))


@pytest.mark.parametrize("masked", [True, False], ids=["masked", "unmasked"])
@pytest.mark.parametrize("sf", [2, 3, 4])
def test_block_ram_buffer_written_late(masked: bool, sf: int) -> None:
    """Every input buffer in block RAM (a memory map without LUT RAM buffers): with SF >= 3 it is written from
    the stream's slice registered twice, two cycles after the step (``buffer_written_late``), with SF = 2 one
    cycle after; the first re-read of a word comes SF cycles after its step. Exact under gaps and stalls and
    back to back (NF = 3, so words are re-read twice), full throughput."""
    from dataclasses import replace

    from hwgen.hw.engines.folded import DEFAULT_MEMORY

    memory = replace(DEFAULT_MEMORY, buffer_lut_max_depth=0, buffer_lut_max_cells=0)
    rng = np.random.default_rng(71 + sf + masked)
    c_out, simd = 6, 5
    w = rng.choice(np.array([-1, 1]), size=(c_out, simd * sf))
    t = rng.integers(-sf, sf + 1, size=c_out)
    x, valid = random_vectors(rng, 8, simd * sf)
    if not masked:
        valid = np.ones_like(x)
    dut = MVTU(weights=w, pe=2, simd=simd, thresholds=t, masked=masked, memory=memory)
    assert (dut.nf, dut.sf, dut.read_stages, dut.buffer_written_late) == (3, sf, 2, sf >= 3)
    for seed, gap_p, stall_p in ((1, 0.3, 0.4), (2, 0.0, 0.6), (3, 0.6, 0.0)):
        trace = simulate(dut, x, valid, seed=seed, gap_p=gap_p, stall_p=stall_p)
        assert mismatches(trace.outputs, expected_beats(dut, w, t, x, valid)) == []
    trace = simulate(dut, x, valid)
    assert mismatches(trace.outputs, expected_beats(dut, w, t, x, valid)) == []
    check_timing(dut, trace, len(x))


@pytest.mark.parametrize("masked", [True, False], ids=["masked", "unmasked"])
def test_wide_input_slice_in_lane_groups(masked: bool) -> None:
    """SIMD 150 binary lanes: the stream/buffer select in copies of 64, 64 and 22 lanes, the input buffer in
    those slices (LUT RAM, each at its own sf counter copy); exact under gaps and stalls, full throughput."""
    rng = np.random.default_rng(61 + masked)
    c_out, fan_in = 6, 450
    w = rng.choice(np.array([-1, 1]), size=(c_out, fan_in))
    t = rng.integers(-20, 21, size=c_out)
    x, valid = random_vectors(rng, 6, fan_in)
    if not masked:
        valid = np.ones_like(x)
    dut = MVTU(weights=w, pe=2, simd=150, thresholds=t, masked=masked)
    assert dut.input_lane_groups == dut.buffer_lane_groups == [(0, 64), (64, 128), (128, 150)]
    trace = simulate(dut, x, valid, seed=3, gap_p=0.3, stall_p=0.5)
    assert mismatches(trace.outputs, expected_beats(dut, w, t, x, valid)) == []
    check_timing(dut, simulate(dut, x, valid), len(x))


@pytest.mark.parametrize("c_out,fan_in,pe,simd", [(6, 12, 2, 12), (4, 8, 4, 8), (6, 20, 3, 5)])
@pytest.mark.parametrize("accumulator", [False, True], ids=["threshold", "accumulator"])
def test_heavy_back_pressure_fills_the_fifo(c_out: int, fan_in: int, pe: int, simd: int, accumulator: bool) -> None:
    rng = np.random.default_rng(fan_in)
    w = rng.choice(np.array([-1, 1]), size=(c_out, fan_in))
    t = None if accumulator else rng.integers(-3, 4, size=c_out)
    x, valid = random_vectors(rng, 12, fan_in)
    dut = MVTU(weights=w, pe=pe, simd=simd, thresholds=t)
    trace = simulate(dut, x, valid, seed=fan_in, gap_p=0.05, stall_p=0.85)
    assert mismatches(trace.outputs, expected_beats(dut, w, t, x, valid)) == []


def test_input_ready_is_a_register() -> None:
    """``i.ready`` does not change within a cycle whatever ``i.valid`` and ``o.ready`` do (it is a flip-flop),
    while it does go low and high over a run with output stalls (no credit left, the later neuron folds)."""
    from amaranth.sim import Simulator

    rng = np.random.default_rng(5)
    w = rng.choice(np.array([-1, 1]), size=(6, 20))
    dut = MVTU(weights=w, pe=2, simd=5, thresholds=rng.integers(-3, 4, size=6))
    seen = set()

    async def bench(ctx):
        for _ in range(400):
            before = ctx.get(dut.i.ready)
            for valid, ready in ((0, 0), (1, 0), (0, 1), (1, 1), (int(rng.random() < 0.7), int(rng.random() < 0.3))):
                ctx.set(dut.i.valid, valid)
                ctx.set(dut.o.ready, ready)
                assert ctx.get(dut.i.ready) == before
            seen.add(before)
            ctx.set(dut.i.payload.data, int(rng.integers(0, 1 << 5)))
            ctx.set(dut.i.payload.valid, 0b11111)
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    assert seen == {0, 1}


def test_checker_catches_a_flipped_weight() -> None:
    rng = np.random.default_rng(7)
    c_out, fan_in = 4, 12
    w = rng.choice(np.array([-1, 1]), size=(c_out, fan_in))
    t = np.zeros(c_out, dtype=np.int64)
    x = rng.integers(0, 2, size=(3, fan_in), dtype=np.uint8)
    valid = np.ones_like(x)
    for thresholds in (None, t):
        weights = w.copy()
        dut = MVTU(weights=weights, pe=2, simd=4, thresholds=thresholds)
        weights[1, 5] *= -1  # after construction: the design keeps its own copy
        trace = simulate(dut, x, valid, seed=3, gap_p=0.2, stall_p=0.2)
        assert mismatches(trace.outputs, expected_beats(dut, w, thresholds, x, valid)) == []
        if thresholds is not None:
            # Pick a threshold that the flip moves across: acc(ch1, vector 0) changes by 2.
            acc = reference_acc(weights, x, valid)[0, 1]
            old = reference_acc(w, x, valid)[0, 1]
            thresholds = t.copy()
            thresholds[1] = max(acc, old)
            dut = MVTU(weights=w, pe=2, simd=4, thresholds=thresholds)
            trace = simulate(dut, x, valid, seed=3)
        wrong = expected_beats(dut, weights, thresholds, x, valid)
        errors = mismatches(trace.outputs, wrong)
        assert errors, "the checker missed a flipped weight"
        assert any(e.startswith("beat 0:") for e in errors)


def test_checker_catches_missing_and_extra_beats() -> None:
    assert mismatches([1, 2], [1, 2, 3]) == ["got 2 beats, expected 3"]
    assert mismatches([1, 2, 3, 3], [1, 2, 3]) == ["got 4 beats, expected 3"]


def test_widths_and_figures() -> None:
    w = np.ones((8, 64), dtype=np.int64)
    dut = MVTU(weights=w, pe=4, simd=16, thresholds=np.array([-10**12, 10**12, 0, 1, 2, 3, 4, 5]))
    assert dut.acc_width == 8  # [-64, 64]
    # start values -T, T saturated to [-64, 65], plus partial sums in [-64, 64]: [-129, 128]
    assert dut.threshold_width == 9
    assert (dut.nf, dut.sf, dut.cycles_per_vector) == (2, 4, 8)
    # S1, S2, the weight word's fabric register (8 words: a block-RAM ROM), pair level, tree over 8 pair
    # sums (3 adder levels: 2 registers), dot, accumulator, FIFO, the FIFO's output register
    assert dut.weight_block_ram and dut.weight_rom_banks == 1
    assert dut.latency == 1 + 1 + 1 + 1 + 2 + 1 + 3
    acc = MVTU(weights=w, pe=8, simd=64, thresholds=None)
    assert acc.latency == 1 + 1 + 1 + 3 + 1 + 3  # 32 pair sums: 5 adder levels, 3 registers
    assert acc.fifo_depth == acc.latency + 1  # SF = 1
    words = MVTU(weights=np.array([[1, -1, -1, 1], [-1, 1, 1, 1]]), pe=2, simd=2, thresholds=None).weight_words()
    # word sf, PE p at bits p*SIMD..: ch0 = (1,0 | 0,1), ch1 = (0,1 | 1,1)
    assert words == [0b10_01, 0b11_10]


def test_unmasked_engine_figures() -> None:
    """Not masked: inverted weight bits, match counts accumulated from -ceil((F + T) / 2)."""
    w = np.ones((8, 64), dtype=np.int64)
    dut = MVTU(weights=w, pe=4, simd=16, thresholds=np.array([-10**12, 10**12, 0, 1, 2, 3, 4, 5]), masked=False)
    # T saturated to [-64, 65]: start values in [-ceil(129 / 2), 0] = [-65, 0], plus 0..64 matches
    assert dut.threshold_width == 8
    # 16 lanes: 5 full adders + 1 lane -> weights of (6, 5) bits; carry-save layers -> (2, 5, 1) -> (2, 3, 2)
    # -> (2, 1, 3) -> (2, 1, 1, 1): 4 layers, a register after every second; lane adders + 2 + final adder
    # = 4 stages; S1, S2, the weight word's fabric register (8 words: a block-RAM ROM), accumulator, FIFO,
    # the FIFO's output register
    assert dut.latency == 1 + 1 + 1 + 4 + 3
    acc = MVTU(weights=w, pe=4, simd=16, thresholds=None, masked=False)
    assert acc.latency == dut.latency + 1  # the dot stage
    words = MVTU(weights=np.array([[1, -1, -1, 1], [-1, 1, 1, 1]]), pe=2, simd=2, thresholds=None,
                 masked=False).weight_words()
    assert words == [0b01_10, 0b00_01]  # the masked layout's bits inverted


@pytest.mark.parametrize("kwargs,message", [
    (dict(pe=3, simd=4), r"PE must divide C_out \(8\), not 3"),
    (dict(pe=2, simd=5), r"SIMD must divide the fan-in F \(12\), not 5"),
    (dict(pe=0, simd=4), r"PE must be a positive integer, not 0"),
    (dict(pe=2, simd=True), r"SIMD must be a positive integer, not True"),
    (dict(pe=2.0, simd=4), r"PE must be a positive integer, not 2.0"),
    (dict(pe=2, simd=4, thresholds=np.zeros(7, dtype=int)), r"shape \(C_out,\) = \(8,\) or \(C_out, positions\), not \(7,\)"),
    (dict(pe=2, simd=4, thresholds=np.zeros((8, 2, 2), dtype=int)), r"or \(C_out, positions\), not \(8, 2, 2\)"),
    (dict(pe=2, simd=4, thresholds=np.zeros(8)), r"thresholds must be an integer array"),
    (dict(pe=2, simd=4, weights=np.zeros((8, 12), dtype=int)), r"must be \+-1, found 0"),
    (dict(pe=2, simd=4, weights=np.ones((8, 12))), r"integer array of \+-1"),
    (dict(pe=2, simd=4, weights=np.ones(12, dtype=int)), r"\(C_out, F\) array"),
])
def test_parameter_validation(kwargs: dict, message: str) -> None:
    args = dict(weights=np.ones((8, 12), dtype=int), thresholds=None)
    args.update(kwargs)
    with pytest.raises(BuildError, match=message):
        MVTU(**args)


def test_keyword_only() -> None:
    with pytest.raises(TypeError):
        MVTU(np.ones((2, 2), dtype=int), 1, 1, None)  # type: ignore[misc]


def test_verilog_export() -> None:
    from amaranth.back import verilog

    rng = np.random.default_rng(1)
    dut = MVTU(weights=rng.choice(np.array([-1, 1]), size=(4, 8)), pe=2, simd=4,
               thresholds=np.array([0, 1, -2, 3]))
    text = verilog.convert(dut, name="mvtu")
    assert "module mvtu" in text
    for port in ("i__valid", "i__ready", "i__payload", "o__valid", "o__ready", "o__payload"):
        assert port in text


@pytest.mark.parametrize("masked", [True, False])
def test_each_pe_reads_its_own_copy_of_the_slice(masked: bool) -> None:
    """The slice's last register (x2, and v2 when masked) in one copy per PE, each read by that PE's lanes only."""
    from amaranth.back import verilog

    from hwgen.hw.engines.pipeline import FANOUT_COPY

    rng = np.random.default_rng(2)
    dut = MVTU(weights=rng.choice(np.array([-1, 1]), size=(6, 8)), pe=3, simd=4, thresholds=np.zeros(6, int),
               masked=masked)
    text = verilog.convert(dut, name="mvtu")
    for name in ["x2", "v2"] if masked else ["x2"]:
        copies = sorted(set(re.findall(rf"\b{name}{FANOUT_COPY}(\d+)\b", text)))
        assert copies == ["0", "1", "2"], name
    if masked:  # match{p} = ~(x2_fanout{p} ^ w2[...]) & v2_fanout{p}
        for p in range(3):
            (line,) = [ln for ln in text.splitlines() if re.search(rf"assign match{p} = ", ln)]
            assert line.endswith(f" v2{FANOUT_COPY}{p};"), line


def test_deep_weight_rom_in_slices_matches_golden() -> None:
    """NF * SF = 4,096 words of 8 bits: the ROM is built as two 4-bit slices (4K x 4, no depth cascade)."""
    from hwgen.hw.engines.folded import rom_slice_width

    rng = np.random.default_rng(5)
    c_out, fan_in, pe, simd = 32, 1024, 2, 4
    assert rom_slice_width(pe * simd, (c_out // pe) * (fan_in // simd)) == 4
    w = rng.choice(np.array([-1, 1]), size=(c_out, fan_in))
    t = rng.integers(-40, 41, size=c_out)
    x, valid = random_vectors(rng, 3, fan_in)
    dut = MVTU(weights=w, pe=pe, simd=simd, thresholds=t)
    trace = simulate(dut, x, valid, seed=1, gap_p=0.2, stall_p=0.3)
    assert mismatches(trace.outputs, expected_beats(dut, w, t, x, valid)) == []


@pytest.mark.parametrize("sf", [1, 2, 3])
def test_input_buffer_reread_right_after_the_write(sf: int) -> None:
    """NF = 3 neuron folds re-read the input buffer; its write is registered when SF >= 2, so with
    SF = 2 word 0 is read back two cycles after its step, right after the delayed write."""
    rng = np.random.default_rng(sf)
    pe, simd = 2, 8
    w = rng.choice(np.array([-1, 1]), size=(3 * pe, sf * simd))
    t = rng.integers(-4, 5, size=3 * pe)
    x, valid = random_vectors(rng, 6, sf * simd)
    dut = MVTU(weights=w, pe=pe, simd=simd, thresholds=t)
    for gap_p, stall_p in [(0.0, 0.0), (0.3, 0.4)]:
        trace = simulate(dut, x, valid, seed=sf, gap_p=gap_p, stall_p=stall_p)
        assert mismatches(trace.outputs, expected_beats(dut, w, t, x, valid)) == []


def small_bank_memory():
    """The ECP5 memory map with a block RAM whose deepest configuration is 64 words: a ROM of more than
    64 words is split in depth (:meth:`~hwgen.hw.families.MemoryMap.rom_banks`) at a size that simulates fast."""
    from dataclasses import replace

    from hwgen.hw.families import ECP5, BlockRam

    return replace(ECP5.memory, block_ram=BlockRam("DP16KD", 18 * 1024, ((2, 32), (1, 64))))


@pytest.mark.parametrize("masked,accumulator", [(True, False), (False, False), (True, True)],
                         ids=["masked", "unmasked", "accumulator"])
def test_weight_rom_split_in_depth_matches_golden(masked: bool, accumulator: bool) -> None:
    """NF * SF = 150 words over banks of 64 (64 + 64 + 22): three ROMs, each read at its own copy of the
    address register, each word registered, the bank selected a cycle later (into the register that one
    block RAM's word goes through in the fabric): one cycle more latency than one bank (the address copies),
    exact with stalls, full throughput."""
    from amaranth.back import verilog

    rng = np.random.default_rng(41 + masked + 2 * accumulator)
    c_out, fan_in, pe, simd = 10, 120, 2, 4
    w = rng.choice(np.array([-1, 1]), size=(c_out, fan_in))
    t = None if accumulator else rng.integers(-fan_in // 4, fan_in // 4 + 1, size=c_out)
    x, valid = random_vectors(rng, 4, fan_in)
    if not masked:
        valid = np.ones_like(x)
    dut = MVTU(weights=w, pe=pe, simd=simd, thresholds=t, masked=masked, memory=small_bank_memory())
    whole = MVTU(weights=w, pe=pe, simd=simd, thresholds=t, masked=masked)
    assert (dut.weight_rom_banks, dut.weight_word_stages, whole.weight_rom_banks) == (3, 2, 1)
    assert whole.weight_block_ram and whole.weight_address_stages == 0
    assert dut.sum_latency() == whole.sum_latency() + 1
    text = verilog.convert(dut, name="mvtu")
    assert all(f"weights_b{k}" in text for k in range(3)) and "weights_b3" not in text
    assert all(f"weights_b{k}_addr_fanout0" in text for k in range(3))
    trace = simulate(dut, x, valid, seed=3, gap_p=0.3, stall_p=0.4)
    assert mismatches(trace.outputs, expected_beats(dut, w, t, x, valid)) == []
    check_timing(dut, simulate(dut, x, valid), len(x))


def test_wide_lut_rom_read_in_slices_at_address_copies() -> None:
    """A 4-word weight ROM (in LUTs on the ECP5) of PE 8 x SIMD 16 = 128 bits: two slices of FANOUT_GROUP_BITS,
    each read at its own copy of the address, one cycle more latency than a 4-word ROM of 64 bits; one word
    is a constant, whole. Exact with stalls, full throughput."""
    from amaranth.back import verilog

    from hwgen.hw.engines.pipeline import FANOUT_GROUP_BITS

    rng = np.random.default_rng(23)
    w = rng.choice(np.array([-1, 1]), size=(16, 32))
    t = rng.integers(-8, 9, size=16)
    x, valid = random_vectors(rng, 4, 32)
    dut = MVTU(weights=w, pe=8, simd=16, thresholds=t)
    narrow = MVTU(weights=w[:8], pe=4, simd=16, thresholds=t[:8])
    assert not dut.weight_block_ram and dut.weight_rom_shape == (2 * FANOUT_GROUP_BITS, 4)
    assert not narrow.weight_block_ram and narrow.weight_rom_shape == (FANOUT_GROUP_BITS, 4)
    assert (dut.weight_address_stages, narrow.weight_address_stages) == (1, 0)
    assert dut.latency == narrow.latency + 1
    assert MVTU(weights=w[:8], pe=8, simd=32, thresholds=t[:8]).weight_address_stages == 0  # one word
    text = verilog.convert(dut, name="mvtu")
    assert "weights_s1" in text and "weights_s2" not in text and "weights_addr_fanout1" in text
    trace = simulate(dut, x, valid, seed=6, gap_p=0.3, stall_p=0.4)
    assert mismatches(trace.outputs, expected_beats(dut, w, t, x, valid)) == []
    check_timing(dut, simulate(dut, x, valid), len(x))


def test_spread_weight_rom_word_registered_twice() -> None:
    """A one-bank weight ROM of 32 x 18 bits in the small block RAMs (2 x 32 each) takes 9 of them, more than
    SPREAD_ROM_BLOCKS: its word passes two fabric registers (w20, w21) instead of one, one cycle more than
    the same word in 8 block RAMs (16 bits), exact with stalls, full throughput."""
    from amaranth.back import verilog

    from hwgen.hw.engines.folded import SPREAD_ROM_BLOCKS, rom_spread

    rng = np.random.default_rng(17)
    c_out, fan_in = 12, 48  # NF * SF = 4 * 8 = 32 words
    w = rng.choice(np.array([-1, 1]), size=(c_out, fan_in))
    t = rng.integers(-fan_in // 4, fan_in // 4 + 1, size=c_out)
    x, valid = random_vectors(rng, 4, fan_in)
    memory = small_bank_memory()
    dut = MVTU(weights=w, pe=3, simd=6, thresholds=t, memory=memory)
    narrow = MVTU(weights=w[:, :32], pe=2, simd=8, thresholds=t, memory=memory)
    assert dut.weight_rom_shape == (18, 32) and narrow.weight_rom_shape == (16, 24)
    assert memory.rom_blocks(18, 32) == SPREAD_ROM_BLOCKS + 1 and memory.rom_blocks(16, 24) == SPREAD_ROM_BLOCKS
    assert rom_spread(memory, 18, 32, block=True) and not rom_spread(memory, 16, 24, block=True)
    assert (dut.weight_rom_banks, dut.weight_address_stages, dut.weight_word_stages) == (1, 0, 2)
    assert (narrow.weight_rom_banks, narrow.weight_address_stages, narrow.weight_word_stages) == (1, 0, 1)
    text = verilog.convert(dut, name="mvtu")
    assert "w20" in text and "w21" in text
    trace = simulate(dut, x, valid, seed=5, gap_p=0.3, stall_p=0.4)
    assert mismatches(trace.outputs, expected_beats(dut, w, t, x, valid)) == []
    check_timing(dut, simulate(dut, x, valid), len(x))


@pytest.mark.parametrize("banked", [False, True], ids=["one-bank", "banked"])
def test_threshold_table_in_block_ram_is_read_registered(banked: bool) -> None:
    """NF = 80 results > 64 words: the threshold table goes to block RAM and is read as a registered ROM,
    2 cycles before the accumulator loads it (3 when split in depth, banks of 64 + 16); exact with stalls.
    SF = 1, so that the result (the ROM's address) changes every step: a read a cycle off takes a neighbour's word."""
    rng = np.random.default_rng(7 + banked)
    c_out, fan_in, pe, simd = 160, 4, 2, 4
    w = rng.choice(np.array([-1, 1]), size=(c_out, fan_in))
    t = rng.integers(-fan_in, fan_in + 1, size=c_out)
    x, valid = random_vectors(rng, 3, fan_in)
    memory = small_bank_memory() if banked else None
    dut = MVTU(weights=w, pe=pe, simd=simd, thresholds=t, **({"memory": memory} if banked else {}))
    assert dut.threshold_table_registered and dut.threshold_read_latency == (3 if banked else 2)
    trace = simulate(dut, x, valid, seed=5, gap_p=0.3, stall_p=0.4)
    assert mismatches(trace.outputs, expected_beats(dut, w, t, x, valid)) == []


def test_weight_rom_of_many_slices_reads_at_a_tree_of_address_copies() -> None:
    """A weight ROM of 16 one-bit slices (more than COPY_TREE_ABOVE memories): each slice reads at its own copy
    of the address, and the copies are fed by copies of their own (two address registers, one cycle more
    than a ROM of a few memories); exact with gaps and stalls."""
    from dataclasses import replace

    from amaranth.back import verilog

    from hwgen.hw.engines.pipeline import COPY_TREE_ABOVE

    rng = np.random.default_rng(43)
    c_out, fan_in, pe, simd = 16, 64, 2, 8   # 16-bit words, NF * SF = 8 * 8 = 64 words
    memory = replace(small_bank_memory(), rom_split_min_depth=32)
    w = rng.choice(np.array([-1, 1]), size=(c_out, fan_in))
    t = rng.integers(-fan_in // 4, fan_in // 4 + 1, size=c_out)
    x, valid = random_vectors(rng, 4, fan_in)
    dut = MVTU(weights=w, pe=pe, simd=simd, thresholds=t, memory=memory)
    few = MVTU(weights=w, pe=pe, simd=simd, thresholds=t, memory=replace(memory, rom_split_min_depth=64))
    assert memory.rom_slice_width(pe * simd, 64) == 1 and pe * simd > COPY_TREE_ABOVE
    assert (dut.weight_rom_banks, dut.weight_address_stages, few.weight_address_stages) == (1, 2, 0)
    text = verilog.convert(dut, name="mvtu")
    assert "weights_addr_fanout15" in text and "weights_addr_pre_fanout3" in text
    assert "weights_addr_pre_fanout4" not in text          # ceil(sqrt(16)) = 4 copies feed the 16
    for seed, gap_p, stall_p in [(1, 0.0, 0.0), (2, 0.3, 0.4)]:
        trace = simulate(dut, x, valid, seed=seed, gap_p=gap_p, stall_p=stall_p)
        assert mismatches(trace.outputs, expected_beats(dut, w, t, x, valid)) == []


def test_wide_banked_weight_rom_selects_per_group_of_bits() -> None:
    """An 80-bit weight word over banks of 64 + 6 words: the bank select in one register copy per 64 bits of
    the word (two), each choosing its bits' bank; exact with gaps and stalls."""
    from amaranth.back import verilog

    rng = np.random.default_rng(47)
    c_out, fan_in, pe, simd = 10, 560, 2, 40      # NF * SF = 5 * 14 = 70 words of 80 bits
    w = rng.choice(np.array([-1, 1]), size=(c_out, fan_in))
    t = rng.integers(-fan_in // 8, fan_in // 8 + 1, size=c_out)
    x, valid = random_vectors(rng, 3, fan_in)
    dut = MVTU(weights=w, pe=pe, simd=simd, thresholds=t, memory=small_bank_memory())
    assert dut.weight_rom_banks == 2
    text = verilog.convert(dut, name="mvtu")
    assert "weights_bank_fanout1" in text and "weights_bank_fanout2" not in text
    trace = simulate(dut, x, valid, seed=5, gap_p=0.3, stall_p=0.4)
    assert mismatches(trace.outputs, expected_beats(dut, w, t, x, valid)) == []
