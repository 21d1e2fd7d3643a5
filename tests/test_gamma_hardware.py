"""Any legal IR through the whole accelerator: per-position thresholds, mixed directions, overlapping pools.

Random networks whose threshold layers have a threshold per output position
(XNOR-Net++ Gamma shapes 2-4), channels that compare ``<=`` everywhere (the
flip pass, which the accelerator runs itself) and channels whose direction
changes across positions (inversion bits), and max-pools with kernel > stride
(3x3 stride 2, 2x2 stride 1) as well as kernel < stride: in Amaranth's
simulator with random input gaps and output back-pressure, and through
``hwgen build`` + Verilator (cocotb bench and C++ bulk harness), every output
word against the golden model of the IR as given (unflipped); frames per
cycle against the folding estimate; a threshold off by one at one position
must be caught.
"""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
from accel_sim import frame_intervals, golden_words, simulate_accelerator
from irnets import random_network
from streams import mismatches

from hwgen.hw.accelerator import Accelerator
from hwgen.hw.folding import fixed_stages, solve_folding, summarize
from hwgen.compile.artifact import save_network
from hwgen.compile.golden import run_network
from hwgen.compile.ir import ConvLayer, MaxPoolLayer, ThresholdOutput

pytestmark = pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")

#: (input shape, layers, pe, simd, first-layer weight bits, classes)
NETWORKS = {
    "conv_pool3s2_conv_fc": ((2, 9, 9), [("conv", 4, 3, 1, 1), ("pool", 3, 2), ("conv", 8, 3, 1, 0), ("fc", 6)],
                             2, 2, 4, 4),
    "pool2s1_stride2_pool3s2": ((3, 7, 7), [("conv", 4, 3, 1, 1), ("pool", 2, 1), ("conv", 8, 3, 2, 1),
                                            ("pool", 3, 2), ("fc", 8)], 4, 3, 8, 5),
    "pool2s3_gaps": ((2, 8, 8), [("conv", 4, 3, 1, 1), ("pool", 2, 3), ("fc", 6)], 2, 2, 1, 3),
    "mlp": ((1, 6, 6), [("fc", 16), ("fc", 8)], 4, 6, 4, 5),
}


def _net(case: str, seed: int = 0):
    shape, layers, pe, simd, first_bits, classes = NETWORKS[case]
    rng = np.random.default_rng(seed)
    net = random_network(rng, shape, layers, num_classes=classes, first_weight_bits=first_bits,
                         per_position=True, mixed_directions=True)
    images = rng.integers(0, 256, size=(6, *shape), dtype=np.uint8)
    return net, solve_folding(net, pe=pe, simd=simd), images


def test_the_networks_need_what_they_test() -> None:
    """Per-position thresholds everywhere; all-'<=' channels (flipped), mixed channels, pools with K != S."""
    kinds = set()
    for case in NETWORKS:
        net, _, _ = _net(case)
        for layer in net.layers:
            if isinstance(layer, MaxPoolLayer):
                kinds.add("overlap" if layer.kernel > layer.stride else "gap" if layer.kernel < layer.stride
                          else "plain")
            elif isinstance(layer.output, ThresholdOutput):
                assert layer.output.per_position
                d = layer.output.direction.reshape(len(layer.output.direction), -1)
                kinds.update({"all <=" for row in d if np.all(row < 0)} | {"mixed" for row in d if len(set(row)) > 1})
        acc = Accelerator(net, solve_folding(net, pe=2))
        for stage in acc.stages:
            e = stage.engine
            if hasattr(e, "threshold_table") and e.threshold_table is not None and e.threshold_table.has_directions:
                kinds.add("inversion bits")
    assert kinds >= {"overlap", "gap", "all <=", "mixed", "inversion bits"}, kinds


@pytest.mark.parametrize("case", sorted(NETWORKS))
def test_bit_exact_with_stalls_and_back_pressure(case: str) -> None:
    net, folds, images = _net(case)
    acc = Accelerator(net, folds)
    cycles = summarize(folds, fixed_stages(net)).cycles_per_frame
    trace = simulate_accelerator(acc, images, budget=40 * cycles * len(images) + 5000, seed=3,
                                 gap_p=0.3, stall_p=0.4)
    assert not mismatches(trace.outputs, golden_words(net, images))  # the IR as given, not flipped


@pytest.mark.parametrize("case", sorted(NETWORKS))
def test_frame_rate_matches_the_folding_estimate(case: str) -> None:
    net, folds, images = _net(case, seed=1)
    acc = Accelerator(net, folds)
    estimate = summarize(folds, fixed_stages(net)).cycles_per_frame
    trace = simulate_accelerator(acc, images, budget=4 * estimate * len(images) + 5000)
    assert not mismatches(trace.outputs, golden_words(net, images))
    steady = frame_intervals(acc, trace)[1:]
    assert np.all(steady == estimate), (steady, estimate)


def off_by_one(net, images: np.ndarray, rng: np.random.Generator):
    """A copy of ``net`` with one per-position threshold moved by one where the golden words change
    on ``images``; (copy, layer name, (c, h, w), delta)."""
    good = golden_words(net, images)
    layers = [i for i, lay in enumerate(net.layers) if isinstance(lay, ConvLayer)
              and isinstance(lay.output, ThresholdOutput)]
    for _ in range(2000):
        i = int(rng.choice(layers))
        bad = copy.deepcopy(net)
        t = bad.layers[i].output.thresholds
        where = tuple(int(rng.integers(0, n)) for n in t.shape)
        delta = int(rng.choice([-1, 1]))
        t[where] += delta
        if golden_words(bad, images) != good:
            return bad, bad.layers[i].name, where, delta
    raise AssertionError("no observable off-by-one threshold found")


def test_one_threshold_off_by_one_is_caught() -> None:
    net, folds, images = _net("conv_pool3s2_conv_fc")
    bad, name, where, delta = off_by_one(net, images, np.random.default_rng(0))
    trace = simulate_accelerator(Accelerator(bad, folds), images, budget=200_000)
    assert mismatches(trace.outputs, golden_words(net, images)), (name, where, delta)
    assert not mismatches(trace.outputs, golden_words(bad, images))


def test_threshold_memory_in_the_report_counts_positions(tmp_path: Path) -> None:
    """report.json: per layer H_out * W_out * NF words of the lanes' start-value fields (+ PE inversion bits)."""
    from hwgen.hw.builder import BuildOptions, build

    net, _, _ = _net("conv_pool3s2_conv_fc")
    save_network(tmp_path / "g.hwir", net)
    report = build(tmp_path / "g.hwir", tmp_path / "g", BuildOptions(pe=2), log=lambda *a: None).report
    rows = {r["name"]: r for r in report["layers"]}
    acc = Accelerator(net, solve_folding(net, pe=2))
    for layer in net.layers:
        if isinstance(layer, ConvLayer) and isinstance(layer.output, ThresholdOutput):
            c, h, w = layer.out_shape
            e = next(s.engine for s in acc.stages if s.layer_name == layer.name)
            inversion = bool(np.any(layer.output.direction.reshape(c, -1).min(axis=1)
                                    != layer.output.direction.reshape(c, -1).max(axis=1)))
            lane_bits = sum(bits for bits, _ in e.threshold_table.fields)
            assert rows[layer.name]["thresholds_bits"] == h * w * (c // e.pe) * (lane_bits + e.pe * inversion)
    assert report["memory"]["thresholds_bits"] == sum(r["thresholds_bits"] for r in report["layers"])
    # the IR written next to the design is the flipped one: the same bits as the model's
    from hwgen.compile.artifact import load_network

    flipped = load_network(tmp_path / "g" / "net.hwir")
    probe = np.random.default_rng(9).integers(0, 256, size=(16, *net.input_shape), dtype=np.uint8)
    assert np.array_equal(run_network(flipped, probe).scores, run_network(net, probe).scores)
    assert not any(np.all(lay.output.direction.reshape(len(lay.output.direction), -1) < 0, axis=1).any()
                   for lay in flipped.layers if isinstance(lay, ConvLayer) and isinstance(lay.output, ThresholdOutput))


# -- Verilator: hwgen build, cocotb bench and bulk harness ------------------------

@pytest.fixture(scope="module")
def gamma_build(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, object]:
    from hwgen.hw.builder import BuildOptions, build

    net, _, _ = _net("pool2s1_stride2_pool3s2", seed=2)
    root = tmp_path_factory.mktemp("gamma")
    save_network(root / "g.hwir", net)
    build(root / "g.hwir", root / "g", BuildOptions(pe=4), log=lambda *a: None)
    return root / "g", net


def _images(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(n, *NETWORKS["pool2s1_stride2_pool3s2"][0]),
                                                dtype=np.uint8)


def test_verilator_bulk_and_cocotb_match_golden(gamma_build, tmp_path: Path) -> None:
    from hwgen.sim.buildfolder import load_build_folder
    from hwgen.sim.session import simulate

    folder_path, net = gamma_build
    folder = load_build_folder(folder_path)
    images = _images(40, seed=3)
    bulk = simulate(folder, images, mode="bulk", seed=3, gap_p=0.2, stall_p=0.5, net=net)
    assert bulk.ok and bulk.check.agree.sum() == 40, bulk.check.first_mismatch
    cocotb = simulate(folder, images[:4], mode="cocotb", seed=7, gap_p=0.3, stall_p=0.4, run_dir=tmp_path, net=net)
    assert cocotb.ok, cocotb.check.first_mismatch or cocotb.bench_failures
    steady = simulate(folder, images[:12], mode="bulk", net=net)
    est = folder.cycles_per_frame
    assert steady.ok and abs(steady.timing.cycles_per_frame - est) <= 0.05 * est, (steady.timing, est)


def test_verilator_catches_one_threshold_off_by_one(gamma_build) -> None:
    from hwgen.sim.buildfolder import load_build_folder
    from hwgen.sim.session import simulate

    folder_path, net = gamma_build
    images = _images(40, seed=4)
    bad, name, where, delta = off_by_one(net, images, np.random.default_rng(1))
    out = simulate(load_build_folder(folder_path), images, mode="bulk", net=bad)
    assert not out.ok and out.check.mismatches > 0, (name, where, delta)


def test_cli_refuses_malformed_thresholds_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """What truly cannot be built (thresholds of neither shape) is one line naming the layer, exit 2, and an
    earlier build folder is left alone."""
    from hwgen.cli import main

    net, _, _ = _net("pool2s3_gaps")
    layer = net.layers[0]
    c, h, w = layer.out_shape
    layer.output = ThresholdOutput(np.zeros((c, h, w + 1), np.int64), np.ones((c, h, w + 1), np.int8))
    save_network(tmp_path / "bad.hwir", net)
    out = tmp_path / "out"
    out.mkdir()
    (out / "top.v").write_text("// an earlier good build\n")
    assert main(["build", str(tmp_path / "bad.hwir"), "--pe", "2", "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith(f"hwgen: error: layer {layer.name}: thresholds ({c}, {h}, {w + 1})"), err
    assert (out / "top.v").read_text() == "// an earlier good build\n"
