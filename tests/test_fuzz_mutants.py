"""The fuzz campaign's mutation check (benchmarks/fuzz_mutants.py): equivalence proofs and revealing images."""

from __future__ import annotations

import itertools
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import fuzz_mutants  # noqa: E402
from fuzz_mutants import Mutant, provably_equivalent, seek_image  # noqa: E402

from hwgen.compile.golden import conv_accumulate  # noqa: E402
from hwgen.compile.ir import ConvLayer, Network, ScoreOutput, ThresholdOutput  # noqa: E402


def _binary_layer(rng: np.random.Generator, padding: int, per_position: bool) -> ConvLayer:
    """2x2 kernel of +-1 over a 3x3 binary map: a 2x2 (padding 0) or 4x4 (padding 1) accumulator map."""
    side = 2 + 2 * padding
    shape = (1, side, side) if per_position else (1,)
    return ConvLayer(name="b", in_shape=(1, 3, 3), weights=rng.choice([-1, 1], size=(1, 1, 2, 2)), weight_bits=1,
                     stride=1, padding=padding, input_kind="binary",
                     output=ThresholdOutput(np.zeros(shape, np.int64), np.ones(shape, np.int8)))


@pytest.mark.parametrize("padding,per_position", [(0, False), (1, False), (0, True), (1, True)])
def test_equivalent_exactly_when_no_input_reaches_the_differing_value(padding: int, per_position: bool) -> None:
    """Every input of a 3x3 binary map (512): the values each position's accumulator takes; a threshold move
    is provably equivalent exactly when the value where old and new disagree is never taken there."""
    layer = _binary_layer(np.random.default_rng(padding), padding, per_position)
    net = Network(name="t", input_shape=(1, 3, 3), layers=[layer], num_classes=1)
    inputs = np.array(list(itertools.product([0, 1], repeat=9)), dtype=np.uint8).reshape(-1, 1, 3, 3)
    acc = conv_accumulate(layer, inputs)[:, 0].reshape(len(inputs), -1)  # (512, positions)
    positions = acc.shape[1]
    words = positions if per_position else 1
    checked = 0
    for word in range(words):
        governed = acc[:, [word]] if per_position else acc
        taken = set(governed.ravel().tolist())
        for direction in (1, -1):
            layer.output.direction.reshape(-1)[word] = direction
            for before in range(-6, 7):
                for after in (before - 1, before + 1):
                    v = min(before, after) if direction > 0 else max(before, after)
                    mutant = Mutant("threshold", 0, 0, word, before, after, net)
                    assert provably_equivalent(net, mutant) == (v not in taken), (word, direction, before, after)
                    checked += 1
    assert checked == words * 2 * 13 * 2


def _first_layer_threshold_fault() -> tuple[Network, Mutant, ConvLayer, np.ndarray]:
    """A uint8 4x4 first layer of 2 channels into a 2-class score layer, and its threshold fault 37 -> 38 on
    channel 0: (network, mutant, first layer, 8 random images that do not reveal it)."""
    rng = np.random.default_rng(5)
    first = ConvLayer(name="f", in_shape=(1, 4, 4), weights=rng.choice([-1, 1], size=(2, 1, 4, 4)), weight_bits=1,
                      stride=1, padding=0, input_kind="uint8", input_offset=np.array([128], np.int64),
                      output=ThresholdOutput(np.array([37, -5], np.int64), np.ones(2, np.int8)))
    last = ConvLayer(name="s", in_shape=(2, 1, 1), weights=np.array([[[[1]], [[-1]]], [[[1]], [[1]]]]), weight_bits=1,
                     stride=1, padding=0, input_kind="binary",
                     output=ScoreOutput(np.ones(2, np.int64), np.zeros(2, np.int64)))
    net = Network(name="t", input_shape=(1, 4, 4), layers=[first, last], num_classes=2)
    mutant_net = Network(name="t", input_shape=(1, 4, 4), layers=[
        ConvLayer(**{**first.__dict__, "output": ThresholdOutput(np.array([38, -5], np.int64), np.ones(2, np.int8))}),
        last], num_classes=2)
    mutant = Mutant("threshold", 0, 0, 0, 37, 38, mutant_net)
    images = rng.integers(0, 256, size=(8, 1, 4, 4), dtype=np.uint8)
    return net, mutant, first, images


def test_a_first_layer_threshold_fault_random_images_miss_is_found() -> None:
    """A per-channel threshold T -> T + 1 on uint8 pixels: only acc == T reveals it; the search finds such
    an image (checked by the golden model through the score layer) where the given images miss it."""
    net, mutant, first, images = _first_layer_threshold_fault()
    acc = conv_accumulate(first, images)[:, 0].ravel()
    assert not (acc == 37).any() and not fuzz_mutants._reveals(net, mutant, images).any()
    found = seek_image(net, mutant, images, np.random.default_rng(0))
    assert found is not None
    assert conv_accumulate(first, found[None])[0, 0, 0, 0] == 37
    assert fuzz_mutants._reveals(net, mutant, found[None]).all()


def test_pixel_layer_equivalence_is_exact_on_a_single_tap() -> None:
    """A 1x1 layer on one uint8 channel: acc = w (x - p) takes 256 values 52 apart. Over every threshold move
    near and inside that range, equivalence holds exactly when no pixel x gives the differing value."""
    layer = ConvLayer(name="f", in_shape=(1, 2, 2), weights=np.array([[[[52]]]]), weight_bits=8, stride=1,
                      padding=0, input_kind="uint8", input_offset=np.array([100], np.int64),
                      output=ThresholdOutput(np.zeros(1, np.int64), np.ones(1, np.int8)))
    net = Network(name="t", input_shape=(1, 2, 2), layers=[layer], num_classes=1)
    taken = set((52 * (np.arange(256) - 100)).tolist())
    candidates = sorted({v + d for v in (-5200, -52, 0, 104, 8060) for d in range(-3, 4)})
    for before in candidates:
        for after in (before - 1, before + 1):
            mutant = Mutant("threshold", 0, 0, 0, before, after, net)
            assert provably_equivalent(net, mutant) == (min(before, after) not in taken), (before, after)


@pytest.mark.parametrize("threshold,equivalent", [(99, True), (-99, True), (3, False)])
def test_a_weight_fault_in_a_constant_channel_is_equivalent(threshold: int, equivalent: bool) -> None:
    """A 2x2 binary kernel with padding 1 over a 3x3 map: |acc| <= 4 everywhere, so a threshold of +-99 makes
    the channel's bit constant whatever one weight is; at 3 the bit depends on the weights (and a flip
    changes it for the all-ones input of the taps)."""
    layer = _binary_layer(np.random.default_rng(1), 1, False)
    layer.output.thresholds[:] = threshold
    net = Network(name="t", input_shape=(1, 3, 3), layers=[layer], num_classes=1)
    mutant_layer = ConvLayer(**{**layer.__dict__, "weights": layer.weights.copy()})
    mutant_layer.weights[0, 0, 0, 0] *= -1
    mutant = Mutant("weight", 0, 0, 0, int(layer.weights[0, 0, 0, 0]), int(mutant_layer.weights[0, 0, 0, 0]),
                    Network(name="t", input_shape=(1, 3, 3), layers=[mutant_layer], num_classes=1))
    assert provably_equivalent(net, mutant) is equivalent
    inputs = np.array(list(itertools.product([0, 1], repeat=9)), dtype=np.uint8).reshape(-1, 1, 3, 3)
    bits = [conv_accumulate(x, inputs) >= threshold for x in (layer, mutant_layer)]  # direction +1
    assert bool((bits[0] != bits[1]).any()) is not equivalent


def test_a_mutant_the_solver_leaves_open_is_given_a_second_longer_run(monkeypatch) -> None:
    """_settle: a solver run that ends undecided is followed by one with SOLVER_RETRY_FACTOR times the time,
    whose verdict counts; a settled first run is not repeated."""
    import fuzz_solver

    net, mutant, _, quiet = _first_layer_threshold_fault()
    assert not fuzz_mutants._reveals(net, mutant, quiet).any() and not provably_equivalent(net, mutant)
    for verdicts, outcome, retried in ((["undecided", "equivalent"], "solver_equivalent", True),
                                       (["undecided", "undecided"], "undecided", True),
                                       (["equivalent"], "solver_equivalent", False)):
        asked = []

        def decide(net_, mutant_, *, timeout_s, base=None, _verdicts=iter(verdicts)):
            asked.append(timeout_s)
            return fuzz_solver.Decision(next(_verdicts), None, 0.0)

        monkeypatch.setattr(fuzz_solver, "decide", decide)
        got = fuzz_mutants._settle(net, mutant, quiet, np.random.default_rng(0), seek=False, solver_timeout_s=3.0)
        assert got[0] == outcome and got[2] is retried
        assert asked == [3.0, 3.0 * fuzz_mutants.SOLVER_RETRY_FACTOR][:len(verdicts)]
