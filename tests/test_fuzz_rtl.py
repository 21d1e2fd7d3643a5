"""A small slice of benchmarks/fuzz_rtl.py: random networks and foldings, RTL (Verilator) vs golden model.

The full campaign is run by hand (``python benchmarks/fuzz_rtl.py --nets N --seed S``); here one
network in the default tests and a few more under ``-m slow``. A deliberately broken design (one
weight bit flipped in the golden model's copy) must be caught.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import fuzz_rtl  # noqa: E402


def test_one_random_network(tmp_path: Path) -> None:
    import copy

    from hwgen.sim.buildfolder import load_build_folder
    from hwgen.sim.session import simulate

    result = fuzz_rtl.fuzz_one(3, n_images=6, out=tmp_path, cache_dir=None)
    assert result["status"] == "ok", result
    assert result["mismatches"] == 0 and result["images"] == 6
    # the same check against a golden model with one last-layer weight changed must fail on every image
    # (a score's input bit is +-1, so changing a weight by one step moves that class's score by its scale)
    folder = load_build_folder(tmp_path / "net-3" / "build")
    broken = copy.deepcopy(folder.net)
    last = broken.layers[-1]
    w = last.weights.reshape(-1)
    w[0] = -w[0] if last.weight_bits == 1 else (w[0] - 1 if w[0] > 0 else w[0] + 1)
    images = np.random.default_rng(0).integers(0, 256, size=(4, *folder.input_shape), dtype=np.uint8)
    outcome = simulate(folder, images, mode="bulk", net=broken)
    assert not outcome.ok and outcome.check.mismatches == 4


def test_pause_patterns_pause_and_keep_the_results(tmp_path: Path) -> None:
    """Each harness pause pattern slows the stream (it does something) and the scores stay the golden model's."""
    from hwgen.sim.buildfolder import load_build_folder
    from hwgen.sim.session import simulate

    assert fuzz_rtl.fuzz_one(3, n_images=6, out=tmp_path, cache_dir=None)["status"] == "ok"
    folder = load_build_folder(tmp_path / "net-3" / "build")
    images = np.random.default_rng(1).integers(0, 256, size=(4, *folder.input_shape), dtype=np.uint8)
    plain = simulate(folder, images, mode="bulk").timing.cycles
    for pattern in ("last-beat", "bursts", "frame-gaps"):
        outcome = simulate(folder, images, mode="bulk", pattern=pattern, pattern_len=150)
        assert outcome.ok, (pattern, outcome.check.first_mismatch)
        # the last frame's last word waits 150 cycles; frames wait 150 cycles for the next; a burst that
        # meets an output word delays it by up to 150 cycles
        slower = plain + 150 if pattern != "bursts" else plain + 1
        assert outcome.timing.cycles >= slower, (pattern, outcome.timing.cycles, plain)


@pytest.mark.slow
@pytest.mark.parametrize("seed", [100, 101, 102, 103])
def test_more_random_networks(seed: int, tmp_path: Path) -> None:
    result = fuzz_rtl.fuzz_one(seed, n_images=12, out=tmp_path, cache_dir=None)
    assert result["status"] in ("ok", "no legal folding drawn"), result


def test_the_generator_covers_the_edges() -> None:
    """Over 40 seeds: strides 2, kernels 1 and 5, pools (overlapping too), k-bit first and last layers,
    per-position thresholds, input tables, negative slopes (whole channels and single positions), bounds."""
    from hwgen.compile.ir import ConvLayer, ThresholdOutput, accumulator_range

    seen = {"stride2": 0, "k1": 0, "k5": 0, "pool": 0, "overlapping_pool": 0, "first_kbit": 0, "last_kbit": 0,
            "negative": 0, "negative_position": 0, "per_position": 0, "input_table": 0, "at_bound": 0}
    for seed in range(40):
        _, spec, raw, _, _ = fuzz_rtl.draw(seed, 4)
        convs = [x for x in spec["layers"] if x[0] == "conv"]
        pools = [x for x in spec["layers"] if x[0] == "pool"]
        seen["stride2"] += any(x[3] == 2 for x in convs)
        seen["k1"] += any(x[2] == 1 for x in convs)
        seen["k5"] += any(x[2] == 5 for x in convs)
        seen["pool"] += bool(pools)
        seen["overlapping_pool"] += any(x[2] < x[1] for x in pools)
        seen["first_kbit"] += spec["first_weight_bits"] > 1
        seen["last_kbit"] += spec["last_weight_bits"] > 1
        seen["input_table"] += raw.layers[0].input_table is not None
        for layer in raw.layers:
            if isinstance(layer, ConvLayer) and isinstance(layer.output, ThresholdOutput):
                lo, hi = accumulator_range(layer)
                d = layer.output.direction
                seen["per_position"] += layer.output.per_position
                seen["negative"] += bool((d < 0).any())
                seen["negative_position"] += bool(d.ndim == 3 and (np.ptp(d.reshape(len(d), -1), axis=1) > 0).any())
                seen["at_bound"] += bool(np.isin(layer.output.thresholds, [lo, hi]).any())
    assert all(v > 0 for v in seen.values()), seen


def test_no_drawn_network_computes_a_constant() -> None:
    """Seeds whose first draw gives one score vector whatever the image (a 3 x 3 pool of dense activations
    is 1 everywhere: seeds 1, 9, 15 and 35 of these 40) are drawn again, so that every network's scores
    depend on its image and a fault in its data path can show."""
    from hwgen.compile.golden import run_network

    redrawn = 0
    for seed in range(40):
        _, spec, _, net, images = fuzz_rtl.draw(seed, 4)
        redrawn += spec["redraws"] > 0
        more = np.random.default_rng([seed, 99]).integers(0, 256, size=(200, *images.shape[1:]), dtype=np.uint8)
        scores = run_network(net, np.concatenate([images, more])).scores
        assert len(np.unique(scores, axis=0)) > 1, seed
    assert redrawn >= 4


def test_varied_images_draw_each_distribution() -> None:
    """The register check's extra images: uniform, black and white, sparse on 0 and on 255, one level with
    +-3 of noise, half at one level; uint8 of the requested shape."""
    shape = (3, 8, 8)
    images = fuzz_rtl.varied_images(np.random.default_rng(0), shape, 60)
    assert images.shape == (60, *shape) and images.dtype == np.uint8
    kinds = [images[k::6] for k in range(6)]
    assert all(np.unique(im).size > 100 for im in kinds[0])                    # uniform
    assert all(set(np.unique(im)) <= {0, 255} for im in kinds[1])              # black and white
    assert all((im == 0).mean() > 0.8 for im in kinds[2])                      # sparse on 0
    assert all((im == 255).mean() > 0.8 for im in kinds[3])                    # sparse on 255
    assert all(int(im.max()) - int(im.min()) <= 6 for im in kinds[4])          # one level, +-3
    assert all(np.bincount(im.ravel()).max() >= im.size // 3 for im in kinds[5])  # half at one level


def test_a_mutation_report_of_a_bad_log_stops_before_any_work(tmp_path: Path, capsys, monkeypatch) -> None:
    """``--mutation-report`` reads every line first: a line that is not a campaign record (not JSON, or a
    simulated network without its images) is named in one line, exit 2, before any network is drawn again
    (a refused network's record, without images, is a record)."""
    def drawn(*_):
        raise AssertionError("a network was drawn before the log was checked")

    monkeypatch.setattr(fuzz_rtl, "draw", drawn)
    log = tmp_path / "fuzz-seed0.jsonl"
    for text, line in (('{"seed": 5, "status": "generator refused", "why": "x"}\n{"seed": 3, "status": "ok"}\n', 2),
                       ("not json\n", 1)):
        log.write_text(text)
        assert fuzz_rtl.main(["--mutation-report", str(log)]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and f"line {line} is not a campaign record" in err[0], err
