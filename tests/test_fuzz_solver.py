"""The mutation check's constraint-solver decision (benchmarks/fuzz_solver.py): its encoding against the golden model,
equivalence proofs through later layers, and revealing images checked by the golden model."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

cp_model = pytest.importorskip("ortools.sat.python.cp_model")

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import fuzz_mutants  # noqa: E402
import fuzz_rtl  # noqa: E402
import fuzz_solver  # noqa: E402
from fuzz_mutants import Mutant  # noqa: E402

from hwgen.compile.golden import run_network  # noqa: E402
from hwgen.errors import HwgenError  # noqa: E402
from hwgen.compile.ir import ConvLayer, Network, ScoreOutput, ThresholdOutput  # noqa: E402


def _small_fuzz_networks(count: int):
    """(seed, network, images) of the first ``count`` fuzz draws with at most 300 input pixels."""
    found, seed = [], 40000
    while len(found) < count:
        try:
            _, _, _, net, images = fuzz_rtl.draw(seed, 6)
        except (HwgenError, ValueError):  # the generator refuses some draws, as in the campaign
            seed += 1
            continue
        if int(np.prod(net.input_shape)) <= 300:
            found.append((seed, net, images))
        seed += 1
    return found


def test_the_encoding_with_pinned_pixels_is_the_golden_model() -> None:
    """Pixels pinned to an image: every bit of the network the miter built equals the golden model's, and
    every class's accumulator difference times its scale equals the mutant's score minus the network's."""
    checked = 0
    for seed, net, images in _small_fuzz_networks(3):
        for mutant in fuzz_mutants.draw_mutants(net, np.random.default_rng([seed, 1]), 4):
            for image in images[:2]:
                miter = fuzz_solver.Miter(net, mutant)
                differences = miter.score_differences()
                for (c, y, x), var in miter.pixels.items():
                    miter.model.Add(var == int(image[c, y, x]))
                solver = cp_model.CpSolver()
                assert solver.Solve(miter.model) in (cp_model.OPTIMAL, cp_model.FEASIBLE)
                ours = run_network(net, image[None], keep_intermediates=True)
                theirs = run_network(mutant.net, image[None])
                for k, delta in differences:
                    scale = int(net.layers[-1].output.scale[k])
                    assert solver.Value(delta) * scale == theirs.scores[0, k] - ours.scores[0, k]
                in_cone = {k for k, _ in differences}
                assert all(theirs.scores[0, k] == ours.scores[0, k] for k in range(net.num_classes)
                           if k not in in_cone or net.layers[-1].output.scale[k] == 0)
                for key, bit in miter._memo.items():
                    if key[0] == "out" and key[1] == 0:
                        _, _, i, c, y, x = key
                        assert solver.Value(bit) == ours.intermediates[net.layers[i].name][0, c, y, x], key
                checked += 1
    assert checked == 3 * 4 * 2


def _masked_network(live: bool) -> Network:
    """uint8 4x4 -> 2 threshold channels (4x4 kernel, 1x1 out) -> one binary FC channel -> 2 scores.

    The FC channel's threshold: ``live`` inside its range (0: acc >= 0, acc in {-2, 0, 2}), else below it
    (a constant 1), so nothing of the first layer reaches the scores."""
    rng = np.random.default_rng(3)
    first = ConvLayer(name="f", in_shape=(1, 4, 4), weights=rng.choice([-1, 1], size=(2, 1, 4, 4)), weight_bits=1,
                      stride=1, padding=0, input_kind="uint8", input_offset=np.array([128], np.int64),
                      output=ThresholdOutput(np.array([5, -3], np.int64), np.ones(2, np.int8)))
    fc = ConvLayer(name="fc", in_shape=(2, 1, 1), weights=np.ones((1, 2, 1, 1), np.int64), weight_bits=1, stride=1,
                   padding=0, input_kind="binary",
                   output=ThresholdOutput(np.array([0 if live else -3], np.int64), np.ones(1, np.int8)))
    score = ConvLayer(name="s", in_shape=(1, 1, 1), weights=np.array([[[[1]]], [[[-1]]]], np.int64), weight_bits=1,
                      stride=1, padding=0, input_kind="binary",
                      output=ScoreOutput(np.ones(2, np.int64), np.zeros(2, np.int64)))
    return Network(name="masked", input_shape=(1, 4, 4), layers=[first, fc, score], num_classes=2)


def _threshold_mutant(net: Network, after: int) -> Mutant:
    mutant_net = Network(name=net.name, input_shape=net.input_shape, num_classes=net.num_classes,
                         layers=[ConvLayer(**{**vars(net.layers[0]), "output": ThresholdOutput(
                             np.array([after, -3], np.int64), np.ones(2, np.int8))})] + net.layers[1:])
    return Mutant("threshold", 0, 0, 0, 5, after, mutant_net)


def test_a_fault_masked_by_a_constant_later_channel_is_proved_equivalent() -> None:
    """The first layer's threshold 5 -> 6 flips its bit at acc == 5 (reachable: not lattice-equivalent), but
    the only reader is a constant channel: the solver proves that no image reveals it."""
    net = _masked_network(live=False)
    mutant = _threshold_mutant(net, 6)
    assert not fuzz_mutants.provably_equivalent(net, mutant)
    assert fuzz_solver.decide(net, mutant, timeout_s=20).verdict == "equivalent"


def test_a_live_fault_gets_a_revealing_image() -> None:
    """The same fault with the FC channel live: the solver's image makes acc == 5 and the FC sum 0, and the
    golden model of the mutant scores it differently (decide checks it; checked here again)."""
    net = _masked_network(live=True)
    mutant = _threshold_mutant(net, 6)
    decision = fuzz_solver.decide(net, mutant, timeout_s=20)
    assert decision.verdict == "revealed"
    assert fuzz_mutants._reveals(net, mutant, decision.image[None]).all()


def test_no_run_calls_a_revealed_mutant_equivalent() -> None:
    """Soundness of every run of :data:`fuzz_solver.RUNS` (the relaxed one included): a mutant some fuzz
    image reveals is never answered infeasible."""
    tried = 0
    for seed, net, images in _small_fuzz_networks(3):
        for mutant in fuzz_mutants.draw_mutants(net, np.random.default_rng([seed, 1]), 6):
            if not fuzz_mutants._reveals(net, mutant, images).any():
                continue
            for local, relax_first, _ in fuzz_solver.RUNS:
                status, _, _ = fuzz_solver._solve(net, mutant, local=local, relax_first=relax_first, timeout_s=5)
                assert status != cp_model.INFEASIBLE, (seed, mutant.kind, mutant.layer, local, relax_first)
            tried += 1
    assert tried >= 5



def test_close_call_images_never_widen_the_gap_and_narrow_it_somewhere() -> None:
    """The close-call search (fuzz_mutants.close_call_images): per class, its image's gap |score_c - max
    other| (golden model) is at most the smallest gap of the images it started from, and on these small
    fuzz networks it is strictly smaller for some class."""
    narrowed = 0
    for seed, net, images in _small_fuzz_networks(4):
        found = fuzz_mutants.close_call_images(net, images, np.random.default_rng(seed))
        assert [c for c, _ in found] == list(range(net.num_classes))
        for c, image in found:
            gap = int(fuzz_mutants.score_gaps(net, image[None], c)[0])
            start = int(fuzz_mutants.score_gaps(net, images, c).min())
            assert gap <= start, (seed, c)
            narrowed += gap < start
    assert narrowed > 0


def test_reachable_score_inputs_are_every_vector_images_give() -> None:
    """On a 2-pixel input all 65,536 images can be run: the solver's witnesses give exactly the distinct
    score-layer accumulator vectors of the whole input space, and it says so; with a lower limit it does not."""
    from irnets import random_network

    for seed in (1, 2, 3):
        net = random_network(np.random.default_rng(seed), (1, 1, 2), [("fc", 6)], num_classes=4)
        every = np.stack(np.meshgrid(np.arange(256), np.arange(256)), axis=-1).reshape(-1, 1, 1, 2).astype(np.uint8)
        name = f"{net.layers[-1].name}.acc"
        truth = {tuple(v) for v in run_network(net, every, keep_intermediates=True).intermediates[name][:, :, 0, 0]}
        images, complete = fuzz_solver.reachable_score_inputs(net, limit=len(truth) + 1)
        found = run_network(net, images, keep_intermediates=True).intermediates[name][:, :, 0, 0]
        assert complete and len(truth) >= 2 and {tuple(v) for v in found} == truth and len(found) == len(truth)
        fewer, complete = fuzz_solver.reachable_score_inputs(net, limit=len(truth) - 1)
        assert not complete and len(fewer) == len(truth) - 1
