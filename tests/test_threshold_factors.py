"""Per-position thresholds stored factored: S = K + (A[c] * B[pos] >> s) + D (hwgen/hw/engines/threshold_factors.py).

The thresholds here are built as XNOR-Net++ Gamma shape 4 makes them,
T[c, pos] = ceil(tau_c * g_pos), so the factored form applies; the engines
are simulated against the reference of the IR's definition (test_thresholds.
expected_bits), with gaps and stalls, and must keep the plain table's cycles
and latency. A threshold off by one where an accumulator sits on it is caught.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from engine_checks import check_timing, simulate
from streams import mismatches
from test_mac import reference_acc as mac_reference_acc
from test_mvtu import random_vectors, reference_acc
from test_thresholds import expected_bits

from hwgen.hw.cost import folded_bram_blocks, folded_dsp
from hwgen.hw.engines import MVTU, MACUnit
from hwgen.hw.engines.threshold_factors import MAX_SHARE, fit_factors
from hwgen.hw.engines.thresholds import ThresholdTable
from hwgen.hw.families import ECP5
from hwgen.hw.targets import get_target

pytestmark = pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")

#: The ECP5 map without factoring: the plain table, for comparison.
PLAIN = replace(ECP5.memory, factor_thresholds=False)


def gamma4_thresholds(rng: np.random.Generator, c_out: int, positions: int, bound: int) -> np.ndarray:
    """T[c, pos] = ceil(tau_c * g_pos): tau_c in [-bound / 2, bound / 2], g_pos = 1 / (beta_h gamma_w) in [0.5, 2]."""
    tau = rng.uniform(-bound / 2, bound / 2, size=c_out)
    g = 1.0 / (rng.uniform(0.7, 1.4, size=positions) * rng.uniform(0.7, 1.4, size=positions))
    return np.ceil(np.outer(tau, g)).astype(np.int64)


def test_fit_is_exact_and_small_on_gamma4_and_refuses_noise() -> None:
    rng = np.random.default_rng(1)
    t = gamma4_thresholds(rng, 64, 900, 4096)
    start, invert = -t, np.zeros(t.shape, dtype=bool)
    f = fit_factors(start, invert, offset=0, pe=8)
    assert f is not None and np.array_equal(f.starts(), start)
    plain = ThresholdTable.from_channels(start, invert, pe=8).bits
    assert f.bits <= plain / 4 and np.ptp(f.table.start) <= 1  # corrections in two neighbouring values
    assert max(f.a_bits, f.b_bits) <= 18 and f.shift >= 0
    noise = rng.integers(-2048, 2048, size=(64, 900))
    assert fit_factors(noise, invert, offset=0, pe=8) is None
    assert fit_factors(start[:, :1], invert[:, :1], offset=0, pe=8) is None  # per channel: nothing to factor


def mvtu_case(seed: int, masked: bool, mixed: bool):
    rng = np.random.default_rng(seed)
    c_out, fan_in, pe, simd, positions = 32, 64, 4, 16, 9
    w = rng.choice(np.array([-1, 1]), size=(c_out, fan_in))
    x, valid = random_vectors(rng, 2 * positions + 1, fan_in)  # the counters wrap
    if not masked:
        valid = np.ones_like(valid)
    t = gamma4_thresholds(rng, c_out, positions, fan_in)
    d = np.ones_like(t)
    if mixed:
        d[rng.random(c_out) < 0.4] = -1  # whole channels compare '<=' (a negative scale)
    acc = reference_acc(w, x, valid)
    # one accumulator exactly on its threshold: the closest of frame 0, moved there
    gap = np.abs(acc[:positions].T - t)
    c, pos = np.unravel_index(np.argmin(gap), gap.shape)
    t[c, pos] = acc[pos, c]
    return w, x, valid, t, d, acc, dict(pe=pe, simd=simd, masked=masked), (int(c), int(pos))


@pytest.mark.parametrize("masked,mixed", [(True, False), (False, True), (True, True)],
                         ids=["masked", "unmasked-mixed", "masked-mixed"])
def test_mvtu_factored_thresholds_match_the_reference(masked: bool, mixed: bool) -> None:
    w, x, valid, t, d, acc, kw, on = mvtu_case(7 + masked + 2 * mixed, masked, mixed)
    dut = MVTU(weights=w, thresholds=t, directions=d, **kw)
    plain = MVTU(weights=w, thresholds=t, directions=d, memory=PLAIN, **kw)
    f = dut.threshold_factors
    assert f is not None and plain.threshold_factors is None
    assert dut.threshold_rom_bits == f.bits <= MAX_SHARE * plain.threshold_rom_bits
    assert (dut.latency, dut.cycles_per_vector) == (plain.latency, plain.cycles_per_vector)
    expected = expected_bits(dut, acc, t, d)
    trace = simulate(dut, x, valid, seed=2, gap_p=0.3, stall_p=0.4)
    assert mismatches(trace.outputs, expected) == []
    check_timing(dut, simulate(dut, x, valid), len(x))


def test_mac_factored_thresholds_match_the_reference() -> None:
    rng = np.random.default_rng(21)
    c_in, c_out, pe, positions = 3, 16, 4, 9
    fan_in = 4 * c_in
    w = rng.choice(np.array([-1, 1]), size=(c_out, fan_in))
    offsets = rng.integers(0, 256, size=c_in)
    x = rng.integers(0, 256, size=(2 * positions + 1, fan_in))
    valid = (rng.random(x.shape) < 0.9).astype(np.uint8)
    acc = mac_reference_acc(w, offsets, x, valid)
    t = gamma4_thresholds(rng, c_out, positions, int(np.abs(acc).max()))
    args = dict(weights=w, input_offset=offsets, in_channels=c_in, pe=pe, simd=c_in, thresholds=t)
    dut = MACUnit(**args)
    assert dut.threshold_factors is not None and dut.latency == MACUnit(**args, memory=PLAIN).latency
    trace = simulate(dut, x, valid, seed=5, gap_p=0.3, stall_p=0.4)
    assert mismatches(trace.outputs, expected_bits(dut, acc, t, None)) == []


@pytest.mark.parametrize("masked", [True, False], ids=["masked", "unmasked"])
def test_one_threshold_off_by_one_is_caught_when_factored(masked: bool) -> None:
    """T[c, pos] + 1 (>=) where the accumulator of frame 0 equals it: a mismatch; the original agrees."""
    w, x, valid, t, d, acc, kw, on = mvtu_case(11, masked, False)
    expected = expected_bits(MVTU(weights=w, thresholds=t, directions=d, **kw), acc, t, d)
    for delta, caught in ((0, False), (1, True)):
        bad = t.copy()
        bad[on] += delta
        dut = MVTU(weights=w, thresholds=bad, directions=d, **kw)
        assert dut.threshold_factors is not None
        errors = mismatches(simulate(dut, x, valid, seed=1, gap_p=0.2, stall_p=0.2).outputs, expected)
        assert bool(errors) == caught, (delta, errors)


def test_factored_dsp_and_rom_count() -> None:
    """One DSP per PE; three ROMs (corrections, A, B) where the plain engine has one, each counted."""
    w, x, valid, t, d, acc, kw, on = mvtu_case(13, True, False)
    dut = MVTU(weights=w, thresholds=t, directions=d, **kw)
    plain = MVTU(weights=w, thresholds=t, directions=d, memory=PLAIN, **kw)
    target = get_target("ecp5-85k")
    assert folded_dsp(dut, target) == dut.pe and folded_dsp(plain, target) == 0
    f = dut.threshold_factors
    assert dut.threshold_roms() == [(f.table.word_bits, 72), (4 * f.a_bits, 8), (2 * f.b_bits, 9)]
    blocks = ECP5.memory.block_ram.blocks_for  # both tables are 72 words deep (block RAM), A and B 8 and 9 (logic)
    table = plain.threshold_table
    assert (folded_bram_blocks(dut) - blocks(f.table.word_bits, 72)
            == folded_bram_blocks(plain) - blocks(table.word_bits, 72))


def gamma4_network(seed: int):
    """A random network (tests/irnets.py) whose per-position thresholds are redrawn as Gamma shape 4 makes them,
    around each channel's median: conv 32 on 8 x 8 (64 positions) factors, the rest may not."""
    from irnets import random_network

    from hwgen.compile.ir import ConvLayer, ThresholdOutput

    rng = np.random.default_rng(seed)
    net = random_network(rng, (2, 8, 8), [("conv", 32, 3, 1, 1), ("pool", 2, 2), ("conv", 16, 3, 1, 1), ("fc", 8)],
                         num_classes=4, first_weight_bits=4, per_position=True)
    for layer in net.layers:
        if isinstance(layer, ConvLayer) and isinstance(layer.output, ThresholdOutput) and layer.output.per_position:
            c, h, w = layer.out_shape
            tau = np.median(layer.output.thresholds.reshape(c, -1), axis=1)
            g = 1.0 / np.outer(rng.uniform(0.7, 1.4, size=h), rng.uniform(0.7, 1.4, size=w))
            layer.output = ThresholdOutput(np.ceil(tau[:, None, None] * g).astype(np.int64),
                                           layer.output.direction)
    return net


def test_factored_network_in_amaranth_and_verilator(tmp_path) -> None:
    """The whole accelerator against the golden model: Amaranth's simulator with gaps and stalls, then
    ``hwgen build`` (the factor ROMs in mem/) and the Verilator bulk harness; the cycles per frame as estimated."""
    from accel_sim import golden_words, simulate_accelerator

    from hwgen.compile.artifact import save_network
    from hwgen.hw.accelerator import Accelerator
    from hwgen.hw.builder import BuildOptions, build
    from hwgen.hw.folding import solve_folding
    from hwgen.sim.buildfolder import load_build_folder
    from hwgen.sim.session import simulate as simulate_rtl

    net = gamma4_network(3)
    images = np.random.default_rng(4).integers(0, 256, size=(3, *net.input_shape), dtype=np.uint8)
    acc = Accelerator(net, solve_folding(net, pe=4))
    factored = [s.layer_name for s in acc.stages if getattr(getattr(s, "engine", None), "threshold_factors", None)]
    assert factored, "no layer factored: the test does not test what it says"
    trace = simulate_accelerator(acc, images, budget=400_000, seed=1, gap_p=0.2, stall_p=0.3)
    assert mismatches(trace.outputs, golden_words(net, images)) == []

    save_network(tmp_path / "g.hwir", net)
    build(tmp_path / "g.hwir", tmp_path / "g", BuildOptions(pe=4), log=lambda *a: None)
    for name in factored:
        assert (tmp_path / "g" / "mem" / f"{name}.threshold_b.hex").is_file()
    folder = load_build_folder(tmp_path / "g")
    many = np.random.default_rng(5).integers(0, 256, size=(30, *net.input_shape), dtype=np.uint8)
    out = simulate_rtl(folder, many, mode="bulk", seed=2, gap_p=0.2, stall_p=0.4, net=net)
    assert out.ok and out.check.agree.sum() == 30, out.check.first_mismatch
    steady = simulate_rtl(folder, many[:8], mode="bulk", net=net)
    assert steady.ok and steady.timing.cycles_per_frame == folder.cycles_per_frame, steady.timing
