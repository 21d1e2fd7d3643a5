"""Engine benches in cocotb + Verilator (sim/bench_*.py) against the golden model.

Each test builds one engine from a random IR layer and a folding, exports it
to Verilog, verilates it (cached by content under ~/.cache/hwgen/sim, so a
rerun only simulates) and runs its bench: random inputs, random input gaps
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
    corrupt_threshold,
    flip_weight,
    random_conv,
    random_inputs,
    random_pool,
    run_engine,
)

pytestmark = pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")


def _assert_passed(result) -> None:
    assert result.passed, "\n".join(result.failures) + f"\nlog: {result.log}"
    assert result.waves is None  # a passing run keeps no waveform


def _hidden_layer():
    """A padded 3x3 binary convolution, 8 -> 6 channels: the MVTU's threshold mode."""
    rng = np.random.default_rng(11)
    layer = random_conv(rng, "conv2", (8, 5, 5), 6, 3, padding=1)
    return layer, random_inputs(rng, 2, layer)


def test_mvtu_hidden_layer_with_stalls(tmp_path: Path) -> None:
    layer, x = _hidden_layer()
    _assert_passed(run_engine(tmp_path, "mvtu", layer, {"pe": 3, "simd": 8}, x, seed=1, gap_p=0.3, stall_p=0.4))


def test_mvtu_full_throughput(tmp_path: Path) -> None:
    """Unstalled: exactly NF * SF * H_out * W_out cycles per frame (the same model as above, from the cache)."""
    layer, x = _hidden_layer()
    _assert_passed(run_engine(tmp_path, "mvtu", layer, {"pe": 3, "simd": 8}, x, check_timing=True))


def test_mvtu_wrong_threshold_is_caught(tmp_path: Path) -> None:
    layer, x = _hidden_layer()
    bad = corrupt_threshold(layer, channel=4)
    result = run_engine(tmp_path, "mvtu", layer, {"pe": 3, "simd": 8}, x, seed=1, gap_p=0.3, stall_p=0.4,
                        scoreboard_layer=bad)
    assert not result.passed
    text = "\n".join(result.failures)
    assert "mvtu layer 'conv2': first mismatch at frame" in text and "c4:" in text, text
    assert result.waves is not None and result.waves.is_file()  # the waveform is kept for the failure


def test_mvtu_wrong_weight_is_caught(tmp_path: Path) -> None:
    layer, x = _hidden_layer()
    result = run_engine(tmp_path, "mvtu", layer, {"pe": 3, "simd": 8}, x, seed=2,
                        scoreboard_layer=flip_weight(layer, channel=2, index=13), waves=False)
    assert not result.passed
    assert "c2:" in "\n".join(result.failures)


def test_mvtu_last_layer_accumulators(tmp_path: Path) -> None:
    """The score layer's engine in accumulator mode: signed sums equal conv_accumulate."""
    rng = np.random.default_rng(12)
    layer = random_conv(rng, "fc3", (16, 2, 2), 10, 2, last=True)
    x = random_inputs(rng, 6, layer)
    _assert_passed(run_engine(tmp_path, "mvtu", layer, {"pe": 5, "simd": 16}, x, seed=3, gap_p=0.2, stall_p=0.5))


def test_mac_first_layer(tmp_path: Path) -> None:
    """uint8 pixels minus per-channel offsets times 4-bit weights, padded 3x3 window, thresholds."""
    rng = np.random.default_rng(13)
    layer = random_conv(rng, "conv0", (3, 5, 5), 4, 3, padding=1, kind="uint8", weight_bits=4)
    x = random_inputs(rng, 2, layer)
    _assert_passed(run_engine(tmp_path, "mac", layer, {"pe": 2, "simd": 3}, x, seed=4, gap_p=0.3, stall_p=0.3))


def test_swu_windows_with_padding_and_stride(tmp_path: Path) -> None:
    rng = np.random.default_rng(14)
    layer = random_conv(rng, "conv1", (4, 6, 5), 2, 3, stride=2, padding=1)
    x = random_inputs(rng, 3, layer)
    _assert_passed(run_engine(tmp_path, "swu", layer, {"in_width": 2, "simd": 4}, x, seed=5, gap_p=0.3, stall_p=0.4))


def test_pool_or_and_channels(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    layer = random_pool(rng, "pool1", (4, 6, 6), 2)
    x = random_inputs(rng, 3, layer)
    _assert_passed(run_engine(tmp_path, "pool", layer, {"width": 2}, x, seed=1, gap_p=0.3, stall_p=0.3))


def test_pool_wrong_mode_is_caught(tmp_path: Path) -> None:
    import copy

    rng = np.random.default_rng(0)
    layer = random_pool(rng, "pool1", (4, 6, 6), 2)
    x = random_inputs(rng, 3, layer)
    bad = copy.deepcopy(layer)
    bad.use_and[1] = not bad.use_and[1]
    result = run_engine(tmp_path, "pool", layer, {"width": 2}, x, seed=1, gap_p=0.3, stall_p=0.3,
                        scoreboard_layer=bad, waves=False)
    assert not result.passed
    assert "pool layer 'pool1': first mismatch at frame 0" in "\n".join(result.failures)


# -- slow: more shapes ------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.parametrize("seed", range(4))
def test_mvtu_random_shapes(tmp_path: Path, seed: int) -> None:
    from hwgen.build.folding import divisors

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
