"""Folding solver: cycle formula, balanced pipelines, minimality, and clear errors."""

from __future__ import annotations

import pytest

from hwgen.hw.folding import LayerShape, fewest_lanes, layer_shapes, solve_folding, summarize
from hwgen.compile.compiler import compile_initialised
from hwgen.compile.ir import Network
from hwgen.errors import BuildError
from hwgen.train.architecture import hardware_normalization
from hwgen.train.zoo import make_architecture


def compiled(model: str) -> Network:
    mean, std = hardware_normalization((0.49, 0.48, 0.45), (0.25, 0.24, 0.26))
    arch = make_architecture(model, input_shape=(3, 32, 32), num_classes=10, mean=mean, std=std)
    return compile_initialised(arch)


@pytest.fixture(scope="module")
def vgg() -> Network:
    return compiled("vgg_small")


@pytest.fixture(scope="module")
def cnv() -> Network:
    return compiled("cnv")


def test_cycle_formula() -> None:
    layer = LayerShape(name="l", c_out=128, c_in=64, fan_in=576, positions=100, whole_map=False)
    assert layer.cycles(16, 32) == (128 // 16) * (576 // 32) * 100


def test_vgg_small_pe64_is_balanced_and_minimal(vgg: Network) -> None:
    folds = solve_folding(vgg, pe=64)
    by_name = {f.layer.name: f for f in folds}
    heaviest = max((f.layer for f in folds), key=lambda s: s.macs)
    assert (by_name[heaviest.name].pe, by_name[heaviest.name].simd) == (64, 64)
    target = by_name[heaviest.name].cycles
    summary = summarize(folds)
    assert summary.cycles_per_frame == target
    for fold in folds:
        assert fold.cycles <= target or (fold.pe == fold.layer.c_out and fold.simd == max(fold.layer.legal_simd()))
        cheaper = [(p, s) for p in fold.layer.legal_pe() for s in fold.layer.legal_simd()
                   if p * s < fold.lanes and fold.layer.cycles(p, s) <= target]
        assert not cheaper, (fold.layer.name, fold.pe, fold.simd, cheaper[:3])
        assert fold.layer.c_out % fold.pe == 0
    assert 0 < summary.balance <= 1


def test_fc_layers_may_use_any_divisor_of_the_fan_in(cnv: Network) -> None:
    shapes = {s.name: s for s in layer_shapes(cnv)}
    assert shapes["fc6"].whole_map and shapes["fc6"].fan_in == 256
    assert not shapes["conv1"].whole_map and shapes["conv1"].legal_simd() == [1, 2, 4, 8, 16, 32, 64]


def test_fps_target(cnv: Network) -> None:
    folds = solve_folding(cnv, fps=1000, clock_hz=100e6)
    assert summarize(folds).cycles_per_frame <= 100_000
    assert all(f.lanes == min(p * s for p in f.layer.legal_pe() for s in f.layer.legal_simd()
                              if f.layer.cycles(p, s) <= 100_000) for f in folds)


def test_an_unreachable_fps_is_refused_naming_the_bound(cnv: Network) -> None:
    """CNV's conv0 reads 3 channels (SIMD <= 3): fully unrolled it takes (64/64) * (27/3) * 30*30 = 8,100 cycles,
    so 100 MHz / 8,100 = 12,346 frames/s is the most; the input stream (3 * 32 * 32 = 3,072 cycles) is faster."""
    from hwgen.hw.folding import fastest_cycles

    assert fastest_cycles(cnv) == (8_100, "conv0")
    assert summarize(solve_folding(cnv, fps=12_345, clock_hz=100e6)).cycles_per_frame <= 8_100
    with pytest.raises(BuildError, match=r"--fps 12500 cannot be reached at 100 MHz: it needs <= 8,000 cycles per "
                                         r"frame, but the conv0 takes 8,100 .*at most 12,346 frames/s"):
        solve_folding(cnv, fps=12_500, clock_hz=100e6)


def test_an_input_bound_fps_is_refused() -> None:
    """A 1 x 28 x 28 MLP reads 784 bytes per frame, one per cycle: 100 MHz / 130,000 = 769 cycles is too few."""
    mean, std = hardware_normalization((0.1307,), (0.3081,))
    tfc = compile_initialised(make_architecture("tfc", input_shape=(1, 28, 28), num_classes=10, mean=mean, std=std))
    with pytest.raises(BuildError, match=r"needs <= 769 cycles per frame, but the input stream takes 784 .*at most "
                                         r"127,551 frames/s"):
        solve_folding(tfc, fps=130_000, clock_hz=100e6)


def test_unreachable_target_gives_the_fastest_folding() -> None:
    layer = LayerShape(name="l", c_out=4, c_in=3, fan_in=27, positions=100, whole_map=False)
    assert fewest_lanes(layer, max_cycles=1) == (4, 3)


def test_bad_requests_name_the_layer_and_legal_values(vgg: Network) -> None:
    with pytest.raises(BuildError, match=r"PE must divide C_out \(128\), not 48; nearest legal PE: 32, 64"):
        solve_folding(vgg, pe=48)
    with pytest.raises(BuildError, match=r"layer conv2: SIMD must divide C_in \(128\), not 96"):
        solve_folding(vgg, pe=64, overrides={"conv2": (8, 96)})
    with pytest.raises(BuildError, match="unknown layers: nope"):
        solve_folding(vgg, pe=64, overrides={"nope": (1, 1)})
    with pytest.raises(BuildError, match="exactly one"):
        solve_folding(vgg)
