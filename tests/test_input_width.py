"""A wide input stream (``--in-width``): several pixel bytes per ``s_axis`` beat, for every first-layer kind.

Random IR networks with a whole-map (MLP), a sliding-window (CNN) and an
input-table first layer run through the whole accelerator in Amaranth's
simulator at 8 to 128 bits per beat, with random input gaps and output
back-pressure, against the golden model; without them, every steady-state
frame interval equals the folding estimate (the input-bound cycles of an
MLP folded wide). Two classes: the score unit needs about 2C + 6 cycles per
frame (hwgen/hw/engines/scores.py), which the folding estimate leaves out. The input-bound cycle counts below are worked out by hand
from the rule in hwgen/hw/folding.py's docstring, not by calling it.
"""

from __future__ import annotations

import numpy as np
import pytest
from accel_sim import frame_intervals, golden_words, simulate_accelerator
from irnets import random_network
from streams import mismatches

from hwgen.hw.accelerator import Accelerator
from hwgen.hw.folding import fixed_stages, input_cycles, input_stream_bits, layer_shapes, solve_folding, summarize
from hwgen.errors import BuildError
from hwgen.sim.formats import pixel_beats

#: (input shape, layers, pe, simd, input table)
NETWORKS = {
    # 256 bytes a frame; fc0 folded wide, so the input stream is the bottleneck at every width
    "mlp": ((1, 16, 16), [("fc", 16), ("fc", 8)], 16, 64, False),
    # C = 4: 32 bits a pixel, so the SWU reads gcd(W, 32) bits per cycle
    "cnn": ((4, 4, 4), [("conv", 8, 3, 1, 1), ("fc", 8)], 8, 4, False),
    # the table rewrites every byte of a beat at once; 3 channels: a byte's channel depends on its lane
    # and on the beat (L mod 3 = 1 or 2)
    "table_mlp": ((3, 8, 8), [("fc", 8)], 8, 64, True),
    # 2 channels, the SWU reads gcd(W, 16) bits: two table lanes from 16 bits on
    "table_cnn": ((2, 4, 4), [("conv", 4, 3, 1, 1), ("fc", 8)], 4, 2, True),
}

#: Input-bound cycles per frame by hand: frame bits / bits read per cycle.
EXPECTED_INPUT_CYCLES = {
    "mlp": {8: 256, 16: 128, 32: 64, 64: 32, 128: 16},        # whole-map: 2048 bits / W
    "cnn": {8: 64, 16: 32, 32: 16, 64: 16, 128: 16},          # 512 bits / gcd(W, 32)
    "table_mlp": {8: 192, 16: 96, 32: 48, 64: 24, 128: 12},   # 1536 bits / W
    "table_cnn": {8: 32, 16: 16, 32: 16, 64: 16, 128: 16},    # 256 bits / gcd(W, 16)
}

WIDTHS = (8, 32, 64, 128)


def _build(case: str, in_width: int, seed: int = 0):
    shape, layers, pe, simd, table = NETWORKS[case]
    rng = np.random.default_rng(seed)
    net = random_network(rng, shape, layers, num_classes=2, first_weight_bits=4, input_table=table)
    folds = solve_folding(net, pe=pe, simd=simd if simd <= net.layers[0].fan_in else None, in_width=in_width)
    images = rng.integers(0, 256, size=(6, *shape), dtype=np.uint8)
    return net, folds, Accelerator(net, folds, in_width=in_width), images


@pytest.mark.parametrize("case", sorted(NETWORKS))
@pytest.mark.parametrize("in_width", WIDTHS)
def test_bit_exact_with_gaps_and_back_pressure(case: str, in_width: int) -> None:
    net, folds, acc, images = _build(case, in_width)
    assert len(acc.s_axis_tdata) == in_width
    cycles = summarize(folds, fixed_stages(net, in_width)).cycles_per_frame
    trace = simulate_accelerator(acc, images, budget=40 * cycles * len(images) + 5000, seed=in_width,
                                 gap_p=0.3, stall_p=0.4)
    assert not mismatches(trace.outputs, golden_words(net, images))


@pytest.mark.parametrize("case", sorted(NETWORKS))
@pytest.mark.parametrize("in_width", WIDTHS)
def test_frame_rate_matches_the_estimate(case: str, in_width: int) -> None:
    net, folds, acc, images = _build(case, in_width, seed=1)
    estimate = summarize(folds, fixed_stages(net, in_width)).cycles_per_frame
    trace = simulate_accelerator(acc, images, budget=4 * estimate * len(images) + 5000)
    assert not mismatches(trace.outputs, golden_words(net, images))
    steady = frame_intervals(acc, trace)[1:]
    assert np.all(steady == estimate), (steady, estimate)


@pytest.mark.parametrize("case", sorted(NETWORKS))
def test_input_bound_cycles(case: str) -> None:
    net, *_ = _build(case, 8)
    assert {w: input_cycles(net, w) for w in (8, 16, 32, 64, 128)} == EXPECTED_INPUT_CYCLES[case]


def test_the_mlp_is_input_bound_at_every_width() -> None:
    """fc0 at PE 16 x SIMD 64 takes 4 cycles, so the frame takes the input stream's cycles: 256 / (W / 8)."""
    for w in WIDTHS:
        net, folds, _, _ = _build("mlp", w)
        s = summarize(folds, fixed_stages(net, w))
        assert s.cycles_per_frame == input_cycles(net, w) == 2048 // w
        assert folds[0].cycles == 4


def test_the_first_layers_simd_follows_the_beat() -> None:
    """A whole-map first layer's SIMD is a multiple or a divisor of the pixels per beat (784 = 2^4 x 7^2)."""
    net = random_network(np.random.default_rng(0), (1, 28, 28), [("fc", 8)], num_classes=3, probe_images=4)
    legal = layer_shapes(net, 64)[0].legal_simd()
    assert legal == [1, 2, 4, 8, 16, 56, 112, 392, 784]
    assert layer_shapes(net, 8)[0].legal_simd() == [1, 2, 4, 7, 8, 14, 16, 28, 49, 56, 98, 112, 196, 392, 784]
    assert layer_shapes(net, 64)[1].legal_simd() == layer_shapes(net, 8)[1].legal_simd()  # later layers: any
    with pytest.raises(BuildError, match=r"layer l0_fc: SIMD must divide the fan-in \(784\) and be a multiple or "
                                         r"a divisor of the input stream's 8 pixels per beat .* not 49; "
                                         r"nearest legal SIMD: 16, 56"):
        solve_folding(net, pe=1, in_width=64, overrides={"l0_fc": (1, 49)})
    first = solve_folding(net, pe=8, in_width=64)[0]
    assert (first.pe, first.simd, first.cycles) == (8, 56, 14)  # the largest legal SIMD <= 64


def test_a_frame_must_be_whole_beats() -> None:
    net = random_network(np.random.default_rng(0), (3, 6, 6), [("fc", 8)], num_classes=3, probe_images=4)
    assert input_stream_bits(net, 32) == 32  # 108 bytes = 27 beats of 4
    with pytest.raises(BuildError, match=r"--in-width 64 carries 8 pixel bytes per beat, which must divide a "
                                         r"frame's 108 bytes \(3 x 6 x 6\)"):
        input_cycles(net, 64)
    with pytest.raises(BuildError, match=r"--in-width must be one of 8, 16, 32, 64, 128 bits, not 24"):
        input_cycles(net, 24)


def test_pixel_beats_are_little_endian() -> None:
    images = np.arange(2 * 2 * 2 * 2, dtype=np.uint8).reshape(2, 2, 2, 2)  # (N, C, H, W)
    # (y, x, c) order: image 0 is 0, 4, 1, 5, 2, 6, 3, 7; byte k of a beat on bits 8k..
    assert pixel_beats(images, 32)[:2] == [0x05010400, 0x07030602]
    assert pixel_beats(images, 64) == [0x07030602_05010400, 0x0F0B0E0A_0D090C08]
    assert pixel_beats(images, 8)[:4] == [0, 4, 1, 5]
    with pytest.raises(ValueError, match="must divide a frame of 8 bytes"):
        pixel_beats(images, 128)
