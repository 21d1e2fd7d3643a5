"""Engine benches in cocotb + Verilator (sim/bench_*.py) against the golden model.

Each test builds an engine from a random IR layer and a folding, exports it
to Verilog, verilates it (cached by content under ~/.cache/hwgen/sim, so a
rerun only simulates; the quick tests' engines share one model) and runs its bench: random inputs, random input gaps
and output back-pressure, every output compared with the golden model. A
corrupted threshold or weight in the scoreboard's copy of the layer must make
the bench fail with the layer, the position and the values. The quick set
runs in the default suite; ``-m slow`` adds more shapes.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

SIM_DIR = Path(__file__).resolve().parent.parent / "sim"
sys.path.insert(0, str(SIM_DIR))

from cases import (
    build_bundle,
    corrupt_threshold,
    flip_weight,
    random_conv,
    random_inputs,
    random_join,
    random_join_inputs,
    random_pool,
    run_engine,
)

pytestmark = pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")


def _assert_passed(result) -> None:
    assert result.passed, "\n".join(result.failures) + f"\nlog: {result.log}"
    assert result.waves is None  # a passing run keeps no waveform


@pytest.fixture(scope="module")
def quick(tmp_path_factory: pytest.TempPathFactory):
    """The quick tests' engines, in one verilated model (one build, cached): name -> (kind, layer, fold), inputs.

    A join's inputs are its (accumulators, shortcut bits).
    """
    specs, inputs = {}, {}
    # A padded 3x3 binary convolution, 8 -> 6 channels: the MVTU's threshold mode.
    rng = np.random.default_rng(11)
    layer = random_conv(rng, "conv2", (8, 5, 5), 6, 3, padding=1)
    specs["hidden"], inputs["hidden"] = ("mvtu", layer, {"pe": 3, "simd": 8}), random_inputs(rng, 2, layer)
    # The score layer's engine in accumulator mode: signed sums equal conv_accumulate.
    rng = np.random.default_rng(12)
    layer = random_conv(rng, "fc3", (16, 2, 2), 10, 2, last=True)
    specs["last"], inputs["last"] = ("mvtu", layer, {"pe": 5, "simd": 16}), random_inputs(rng, 6, layer)
    # uint8 pixels minus per-channel offsets times 4-bit weights, padded 3x3 window, thresholds.
    rng = np.random.default_rng(13)
    layer = random_conv(rng, "conv0", (3, 5, 5), 4, 3, padding=1, kind="uint8", weight_bits=4)
    specs["first"], inputs["first"] = ("mac", layer, {"pe": 2, "simd": 3}), random_inputs(rng, 2, layer)
    # Windows with padding and stride 2.
    rng = np.random.default_rng(14)
    layer = random_conv(rng, "conv1", (4, 6, 5), 2, 3, stride=2, padding=1)
    specs["swu"], inputs["swu"] = ("swu", layer, {"in_width": 2, "simd": 4}), random_inputs(rng, 3, layer)
    rng = np.random.default_rng(0)
    layer = random_pool(rng, "pool1", (4, 6, 6), 2)
    specs["pool"], inputs["pool"] = ("pool", layer, {"width": 2}), random_inputs(rng, 3, layer)
    # Residual joins: per-channel thresholds, all ">=" (constants and a shortcut-following channel), NF = 3;
    # per-position thresholds with mixed directions, NF = 2.
    rng = np.random.default_rng(15)
    fold = {"pe": 2, "acc_range": (-9, 9)}
    layer = random_join(rng, "join1", (6, 3, 2), fold["acc_range"], mixed=False)
    specs["join"], inputs["join"] = ("join", layer, fold), random_join_inputs(rng, 3, layer, fold["acc_range"])
    fold = {"pe": 2, "acc_range": (-20, 7)}
    layer = random_join(rng, "join2", (4, 3, 3), fold["acc_range"], per_position=True)
    specs["join_pos"], inputs["join_pos"] = (("join", layer, fold),
                                             random_join_inputs(rng, 2, layer, fold["acc_range"]))
    # Per-channel thresholds with PE = C (NF = 1): constants in the engine, no ROM; mixed directions.
    fold = {"pe": 4, "acc_range": (-5, 12)}
    layer = random_join(rng, "join3", (4, 2, 3), fold["acc_range"])
    specs["join_const"], inputs["join_const"] = (("join", layer, fold),
                                                 random_join_inputs(rng, 3, layer, fold["acc_range"]))
    return build_bundle(tmp_path_factory.mktemp("engines"), specs), inputs


def _run(quick, name: str, folder: Path, **kw):
    bundle, inputs = quick
    kind, layer, fold = bundle.specs[name]
    if kind == "join":
        acc, shortcut = inputs[name]
        return run_engine(folder, kind, layer, fold, acc, shortcut=shortcut, bundle=bundle, name=name, **kw)
    return run_engine(folder, kind, layer, fold, inputs[name], bundle=bundle, name=name, **kw)


def test_mvtu_hidden_layer_with_stalls(quick, tmp_path: Path) -> None:
    _assert_passed(_run(quick, "hidden", tmp_path, seed=1, gap_p=0.3, stall_p=0.4))


def test_mvtu_full_throughput(quick, tmp_path: Path) -> None:
    """Unstalled: exactly NF * SF * H_out * W_out cycles per frame."""
    _assert_passed(_run(quick, "hidden", tmp_path, check_timing=True))


def test_mvtu_wrong_threshold_is_caught(quick, tmp_path: Path) -> None:
    bad = corrupt_threshold(quick[0].specs["hidden"][1], channel=4)
    result = _run(quick, "hidden", tmp_path, seed=1, gap_p=0.3, stall_p=0.4, scoreboard_layer=bad)
    assert not result.passed
    text = "\n".join(result.failures)
    assert "mvtu layer 'conv2': first mismatch at frame" in text and "c4:" in text, text
    assert result.waves is not None and result.waves.is_file()  # the waveform is kept for the failure


def test_mvtu_wrong_weight_is_caught(quick, tmp_path: Path) -> None:
    bad = flip_weight(quick[0].specs["hidden"][1], channel=2, index=13)
    result = _run(quick, "hidden", tmp_path, seed=2, scoreboard_layer=bad, waves=False)
    assert not result.passed
    assert "c2:" in "\n".join(result.failures)


def test_mvtu_last_layer_accumulators(quick, tmp_path: Path) -> None:
    _assert_passed(_run(quick, "last", tmp_path, seed=3, gap_p=0.2, stall_p=0.5))


def test_mac_first_layer(quick, tmp_path: Path) -> None:
    _assert_passed(_run(quick, "first", tmp_path, seed=4, gap_p=0.3, stall_p=0.3))


def test_swu_windows_with_padding_and_stride(quick, tmp_path: Path) -> None:
    _assert_passed(_run(quick, "swu", tmp_path, seed=5, gap_p=0.3, stall_p=0.4))


def test_pool_or_and_channels(quick, tmp_path: Path) -> None:
    _assert_passed(_run(quick, "pool", tmp_path, seed=1, gap_p=0.3, stall_p=0.3))


def test_pool_wrong_mode_is_caught(quick, tmp_path: Path) -> None:
    import copy

    bad = copy.deepcopy(quick[0].specs["pool"][1])
    bad.use_and[1] = not bad.use_and[1]
    result = _run(quick, "pool", tmp_path, seed=1, gap_p=0.3, stall_p=0.3, scoreboard_layer=bad, waves=False)
    assert not result.passed
    assert "pool layer 'pool1': first mismatch at frame 0" in "\n".join(result.failures)


def test_join_per_channel_thresholds_with_stalls(quick, tmp_path: Path) -> None:
    """Accumulators and shortcut bits from two sources with their own gaps; output under back-pressure."""
    _assert_passed(_run(quick, "join", tmp_path, seed=6, gap_p=0.3, stall_p=0.4))


def test_join_per_position_mixed_directions(quick, tmp_path: Path) -> None:
    layer = quick[0].specs["join_pos"][1]
    assert layer.thresholds.shape == (2, 4, 3, 3) and set(np.unique(layer.direction)) == {-1, 1}
    _assert_passed(_run(quick, "join_pos", tmp_path, seed=7, gap_p=0.2, stall_p=0.3))


def test_join_constant_thresholds(quick, tmp_path: Path) -> None:
    """NF = 1 and per-channel thresholds: the join keeps them as constants (no ROM)."""
    bundle = quick[0]
    assert bundle.duts["join_const"].depth == 1
    _assert_passed(_run(quick, "join_const", tmp_path, seed=8, gap_p=0.3, stall_p=0.3))


def test_join_full_throughput(quick, tmp_path: Path) -> None:
    """Unstalled: one beat per cycle, H * W * NF cycles per frame."""
    _assert_passed(_run(quick, "join", tmp_path, check_timing=True))


def test_join_wrong_threshold_is_caught(quick, tmp_path: Path) -> None:
    _, layer, fold = quick[0].specs["join"]
    bad = corrupt_threshold(layer, channel=3, acc_range=fold["acc_range"])
    result = _run(quick, "join", tmp_path, seed=6, gap_p=0.3, stall_p=0.4, scoreboard_layer=bad, waves=False)
    assert not result.passed
    text = "\n".join(result.failures)
    assert "join layer 'join1': first mismatch at frame" in text and "c3:" in text, text


def test_single_engine_model(tmp_path: Path) -> None:
    """An engine verilated on its own (what the slow tests do), ports without a prefix."""
    rng = np.random.default_rng(0)
    layer = random_pool(rng, "pool0", (2, 4, 4), 2)
    _assert_passed(run_engine(tmp_path, "pool", layer, {"width": 1}, random_inputs(rng, 2, layer), seed=2,
                              gap_p=0.2, stall_p=0.2))


# -- slow: more shapes ------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.parametrize("seed", range(4))
def test_mvtu_random_shapes(tmp_path: Path, seed: int) -> None:
    from hwgen.hw.folding import divisors

    rng = np.random.default_rng(100 + seed)
    c_in, c_out, k = int(rng.choice([2, 4, 8])), int(rng.integers(2, 9)), int(rng.choice([1, 3]))
    layer = random_conv(rng, f"conv{seed}", (c_in, 4, 4), c_out, k, padding=k // 2, last=bool(seed % 2))
    fold = {"pe": int(rng.choice(divisors(c_out))), "simd": int(rng.choice(divisors(c_in * k * k)))}
    _assert_passed(run_engine(tmp_path, "mvtu", layer, fold, random_inputs(rng, 2, layer), seed=seed,
                              gap_p=0.3, stall_p=0.5))


@pytest.mark.slow
@pytest.mark.parametrize("kernel,stride,padding", [(3, 1, 0), (2, 2, 0), (5, 1, 2), (1, 1, 0)])
def test_swu_shapes(tmp_path: Path, kernel: int, stride: int, padding: int) -> None:
    rng = np.random.default_rng(kernel * 10 + stride)
    layer = random_conv(rng, "conv", (4, 5, 6), 2, kernel, stride=stride, padding=padding)
    _assert_passed(run_engine(tmp_path, "swu", layer, {"in_width": 4, "simd": 2}, random_inputs(rng, 2, layer),
                              seed=kernel, gap_p=0.2, stall_p=0.3))


@pytest.mark.slow
def test_mac_binary_first_layer_whole_map(tmp_path: Path) -> None:
    """FINN-style binary first-layer weights on uint8 pixels, a whole-map (fully connected) kernel."""
    rng = np.random.default_rng(21)
    layer = random_conv(rng, "fc0", (2, 3, 3), 4, 3, kind="uint8", weight_bits=1)
    _assert_passed(run_engine(tmp_path, "mac", layer, {"pe": 4, "simd": 6}, random_inputs(rng, 5, layer),
                              seed=6, gap_p=0.3, stall_p=0.3))
