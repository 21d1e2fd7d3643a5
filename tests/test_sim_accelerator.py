"""The whole accelerator in cocotb + Verilator and in the C++ bulk harness, against the golden model; ``hwgen sim``.

A small random network (uint8 4-bit first layer, a binary convolution, an
OR/AND pool, a fully connected layer and the score layer: every engine kind)
is built with ``hwgen build``'s Python API; the Verilator models are cached
under ~/.cache/hwgen/sim, so a rerun only simulates. Faults are injected in
the scoreboard's IR (a flipped weight bit, a moved threshold) and in the
Verilog (a flipped weight ROM bit): each must be reported as a mismatch
naming the image, the classes and the scores. ``-m slow`` adds the shipped
TFC model on the whole MNIST test set.
"""

from __future__ import annotations

import copy
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from irnets import random_network, redrawn_weights

from hwgen.cli import main
from hwgen.compile.artifact import save_network
from hwgen.compile.ir import ConvLayer, ThresholdOutput
from hwgen.sim.buildfolder import load_build_folder
from hwgen.sim.session import simulate

REPO = Path(__file__).resolve().parent.parent


def _build(model: Path, out: Path, pe: int) -> Path:
    from hwgen.hw.builder import BuildOptions, build

    build(model, out, BuildOptions(pe=pe), log=lambda *a: None)
    return out


def _small_network():
    rng = np.random.default_rng(5)
    return random_network(rng, (2, 8, 8), [("conv", 4, 3, 1, 1), ("conv", 8, 3, 1, 1), ("pool", 2), ("fc", 8)],
                          num_classes=5, first_weight_bits=4)


@pytest.fixture(scope="module")
def small_build(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A build folder of a small random network (2x8x8 input, 5 classes)."""
    net = _small_network()
    root = tmp_path_factory.mktemp("sim_accel")
    save_network(root / "small.hwir", net)
    return _build(root / "small.hwir", root / "small", pe=4)


def _images(n: int, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(n, 2, 8, 8), dtype=np.uint8)


def _flip_last_weight(net):
    """A copy of the IR with one weight of the score layer negated: every class-0 score moves by 2 * scale."""
    bad = copy.deepcopy(net)
    last = bad.layers[-1]
    last.weights[0].flat[3] *= -1
    return bad


# -- cocotb bench ---------------------------------------------------------------

def test_cocotb_bench_matches_golden_under_back_pressure(small_build: Path, tmp_path: Path) -> None:
    folder = load_build_folder(small_build)
    out = simulate(folder, _images(4), mode="cocotb", seed=7, gap_p=0.3, stall_p=0.4, run_dir=tmp_path)
    assert out.ok, out.check.first_mismatch or out.bench_failures
    assert out.check.agree.all() and len(out.check.agree) == 4
    assert out.timing.latency is not None and out.timing.latency > folder.frame_bytes
    assert out.waves is None  # kept only on failure


def test_cocotb_bench_reports_corrupted_weight(small_build: Path, tmp_path: Path) -> None:
    folder = load_build_folder(small_build)
    out = simulate(folder, _images(3), mode="cocotb", seed=1, stall_p=0.2, net=_flip_last_weight(folder.net),
                   run_dir=tmp_path)
    assert not out.ok and out.check.mismatches == 3
    text = out.check.first_mismatch
    assert text.startswith("image 0: RTL class") and "scores differ for class(es) 0" in text, text
    assert re.search(r"^\s+0\s+-?\d+\s+-?\d+\s+-?\d+\s+-?\d+\s+<--$", text, re.MULTILINE), text  # per-class table
    assert out.bench_failures and "image 0" in out.bench_failures[0]
    assert out.waves is not None and out.waves.is_file() and out.waves.suffix in (".fst", ".vcd")


# -- bulk harness ---------------------------------------------------------------

def test_bulk_agrees_on_20_images_with_stalls(small_build: Path) -> None:
    folder = load_build_folder(small_build)
    out = simulate(folder, _images(20, seed=2), mode="bulk", seed=3, gap_p=0.2, stall_p=0.5)
    assert out.ok, out.check.first_mismatch
    assert out.check.agree.sum() == 20


def test_bulk_parallel_chunks_give_the_same_outputs(small_build: Path) -> None:
    """--jobs 3: three harness processes on chunks of the images; same words, merged trace and timing."""
    folder = load_build_folder(small_build)
    images = _images(11, seed=8)
    one = simulate(folder, images, mode="bulk")
    three = simulate(folder, images, mode="bulk", jobs=3)
    assert one.ok and three.ok
    assert np.array_equal(one.trace.words, three.trace.words)
    assert three.trace.segments == [0, 4, 8] and three.trace.cycles > one.trace.cycles
    assert abs(three.timing.cycles_per_frame - one.timing.cycles_per_frame) <= 0.05 * folder.cycles_per_frame


def test_bulk_throughput_matches_folding_estimate(small_build: Path) -> None:
    folder = load_build_folder(small_build)
    out = simulate(folder, _images(12, seed=3), mode="bulk")
    assert out.ok
    est = folder.cycles_per_frame
    assert abs(out.timing.cycles_per_frame - est) <= 0.05 * est, (out.timing, est)


def test_bulk_and_cocotb_agree_on_cycles(small_build: Path, tmp_path: Path) -> None:
    """Same design, same unstalled stimulus: both benches count the same cycles per frame."""
    folder = load_build_folder(small_build)
    images = _images(3, seed=4)
    a = simulate(folder, images, mode="bulk")
    b = simulate(folder, images, mode="cocotb", run_dir=tmp_path, waves=False)
    assert a.ok and b.ok
    assert np.array_equal(a.trace.out_last, b.trace.out_last)
    assert np.array_equal(a.trace.in_first, b.trace.in_first)


def test_bulk_reports_moved_threshold(small_build: Path) -> None:
    folder = load_build_folder(small_build)
    bad = copy.deepcopy(folder.net)
    layer = next(lay for lay in bad.layers if isinstance(lay, ConvLayer) and isinstance(lay.output, ThresholdOutput)
                 and lay.input_kind == "binary")
    layer.output.thresholds[:] = layer.output.thresholds[::-1].copy()  # reversed: several channels wrong
    out = simulate(folder, _images(30, seed=5), mode="bulk", net=bad)
    assert not out.ok and out.check.mismatches > 0
    assert "golden class" in out.check.first_mismatch


@pytest.mark.parametrize("match_counts", ["model", "cells"])
def test_bulk_catches_a_flipped_rom_bit_in_the_verilog(small_build: Path, tmp_path: Path, match_counts: str) -> None:
    """Change one bit of the score layer's weight ROM in the Verilog simulated (top_sim.v with the match
    counts as their model, or top.v with the cells): every image's scores change."""
    faulty = tmp_path / "faulty"
    shutil.copytree(small_build, faulty)
    simulated = load_build_folder(faulty).verilog(model=match_counts == "model")
    assert simulated.name == ("top_sim.v" if match_counts == "model" else "top.v")
    text = simulated.read_text()
    inits = list(re.finditer(r"^(\s*weights\[0\] = )(\d+)'h([0-9a-f]+);$", text, re.MULTILINE))
    assert inits, f"no weight ROM initialisation found in {simulated.name}"
    m = inits[-1]  # the last engine's ROM: the score layer
    width, value = int(m.group(2)), int(m.group(3), 16) ^ 1
    text = text[:m.start()] + f"{m.group(1)}{width}'h{value:0{(width + 3) // 4}x};" + text[m.end():]
    simulated.write_text(text)
    out = simulate(load_build_folder(faulty), _images(5, seed=6), mode="bulk", match_counts=match_counts)
    assert not out.ok and out.check.mismatches == 5 and out.verilog == simulated.name
    assert "scores differ for class(es)" in out.check.first_mismatch


def test_a_model_from_other_match_count_code_is_not_used(small_build: Path, tmp_path: Path) -> None:
    """report.json records the match-count code top_sim.v was written with; under other code (an
    upgraded hwgen) the simulation runs top.v, whose cells it has not proven against the model."""
    folder = load_build_folder(small_build)
    assert folder.model_current and folder.verilog().name == "top_sim.v"
    old = tmp_path / "old"
    shutil.copytree(small_build, old)
    report = json.loads((old / "report.json").read_text())
    report["match_count_code"] = "0" * 16
    (old / "report.json").write_text(json.dumps(report))
    lines: list[str] = []
    out = simulate(load_build_folder(old), _images(3), mode="bulk", log=lines.append)
    assert out.ok and out.verilog == "top.v"
    assert any("another version of the match-count code" in line for line in lines)


def test_the_match_count_model_and_the_cells_give_the_same_cycles(small_build: Path) -> None:
    """The folder's top_sim.v (its match counts as their model) and top.v (the cells), 12 images under the
    same gaps and stalls: both bit-exact, and the same output words in the same cycles."""
    folder = load_build_folder(small_build)
    assert folder.sim_v is not None and "hwgen_match_count" in folder.sim_v.read_text()
    assert "hwgen_match_count" not in folder.top_v.read_text() and "CCU2C" in folder.top_v.read_text()
    outs = [simulate(folder, _images(12, seed=4), mode="bulk", seed=3, gap_p=0.3, stall_p=0.3, match_counts=kind)
            for kind in ("model", "cells")]
    assert all(out.ok for out in outs), [out.check.first_mismatch for out in outs]
    assert [out.verilog for out in outs] == ["top_sim.v", "top.v"]
    a, b = (out.trace for out in outs)
    assert np.array_equal(a.words, b.words) and np.array_equal(a.out_last, b.out_last)


# -- one compiled model per architecture and folding ---------------------------

def test_a_second_weight_set_reuses_the_compiled_models(small_build: Path, tmp_path: Path) -> None:
    """Another weight set, same architecture and folding: both benches reuse the models compiled for the
    first (memory contents are loaded at run time), and each weight set is bit-exact against its own golden
    model with outputs that differ from the other's (so the new contents were loaded)."""
    save_network(tmp_path / "other.hwir", redrawn_weights(_small_network(), seed=11))
    first, other = load_build_folder(small_build), load_build_folder(_build(tmp_path / "other.hwir",
                                                                             tmp_path / "other", pe=4))
    cache, images = tmp_path / "cache", _images(8, seed=9)
    outs = {}
    for name, folder in (("first", first), ("other", other)):
        outs[name, "bulk"] = simulate(folder, images, mode="bulk", seed=2, stall_p=0.3, cache_dir=cache)
        outs[name, "cocotb"] = simulate(folder, images[:2], mode="cocotb", seed=2, stall_p=0.3, cache_dir=cache,
                                        run_dir=tmp_path / f"cocotb-{name}", waves=False)
    for key, out in outs.items():
        assert out.ok, (key, out.check.first_mismatch, out.bench_failures)
        assert out.model_cached == (key[0] == "other"), key
    assert not np.array_equal(outs["first", "bulk"].trace.words, outs["other", "bulk"].trace.words)
    models = {p.name for p in cache.iterdir() if not p.name.startswith(".") and p.name != "proofs"}
    assert len(models) == 2  # one bulk, one cocotb (and the match-count proofs, made once)


def test_memory_files_are_required_and_checked(small_build: Path, tmp_path: Path) -> None:
    """A harness run without +hwgen_mem stops; a memory file edited after it was written is refused."""
    from hwgen.errors import SimError
    from hwgen.sim.bulk import build_harness, run_harness
    from hwgen.sim.memfiles import check_mem_dir, shell_sources, split_memories, write_mem_dir

    folder = load_build_folder(small_build)
    design = split_memories(folder.verilog().read_text())
    with shell_sources(design, folder.sources) as sources:
        harness = build_harness(sources, folder.top_module, memory_layout=design.layout_sha256)
    with pytest.raises(SimError, match="hwgen_mem"):
        run_harness(harness, _images(1), folder.num_classes)
    mem = write_mem_dir(design, tmp_path / "mem")
    victim = mem / design.memories[0].file
    text = victim.read_text()
    victim.write_text(format(int(text[0], 16) ^ 1, "x") + text[1:])  # one bit of word 0 flipped
    with pytest.raises(SimError, match="stale or edited"):
        check_mem_dir(design, mem, harness.memory_layout)


# -- hwgen sim -----------------------------------------------------------------

def test_cli_table_and_exit_status(small_build: Path, capsys: pytest.CaptureFixture) -> None:
    rc = main(["sim", str(small_build), "--dataset", "random", "--images", "3", "--stall-p", "0.3", "--seed", "2"])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "image  label  RTL class  golden class" in out
    assert "RTL vs golden model: 3/3 images agree" in out
    assert "folding estimate" in out and "first-frame latency" in out


def test_cli_bulk_summary_json(small_build: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    import json

    rc = main(["sim", str(small_build), "--bulk", "--dataset", "random", "--images", "40", "--no-progress",
               "--json", str(tmp_path / "s.json")])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "image  label" not in out  # a summary, not a table, for many images
    s = json.loads((tmp_path / "s.json").read_text())
    assert s["agree"] == 40 and s["mismatches"] == 0 and s["mode"] == "bulk"
    assert s["cycles_per_frame_estimate"] == load_build_folder(small_build).cycles_per_frame


def test_cli_exits_1_on_mismatch(small_build: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    broken = tmp_path / "broken"
    shutil.copytree(small_build, broken)
    save_network(broken / "net.hwir", _flip_last_weight(load_build_folder(small_build).net))
    rc = main(["sim", str(broken), "--bulk", "--dataset", "random", "--images", "4"])
    out = capsys.readouterr().out
    assert rc == 1
    assert "0/4 images agree" in out and "first mismatch:" in out and "scores differ for class(es) 0" in out


def test_cli_missing_folder(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["sim", str(tmp_path / "nope"), "--dataset", "random"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("hwgen: error: build folder") and "does not exist" in err


def test_cli_folder_without_top_v(small_build: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    partial = tmp_path / "partial"
    partial.mkdir()
    shutil.copy(small_build / "net.hwir", partial)
    shutil.copy(small_build / "report.json", partial)
    assert main(["sim", str(partial), "--dataset", "random"]) == 2
    assert "has no top.v" in capsys.readouterr().err


def test_cli_top_without_contract_ports(small_build: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    odd = tmp_path / "odd"
    shutil.copytree(small_build, odd)
    (odd / "top.v").write_text((odd / "top.v").read_text().replace("m_axis_tlast", "m_axis_tend"))
    assert main(["sim", str(odd), "--dataset", "random"]) == 2
    assert "lacks the port(s) m_axis_tlast" in capsys.readouterr().err


def test_cli_bad_options(small_build: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["sim", str(small_build), "--dataset", "random", "--stall-p", "1.5"]) == 2
    assert "--stall-p must lie in [0, 1)" in capsys.readouterr().err
    assert main(["sim", str(small_build), "--dataset", "random", "--images", "0"]) == 2
    assert "--images: must be a positive integer, not '0'" in capsys.readouterr().err


def test_cli_needs_a_dataset(small_build: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["sim", str(small_build)]) == 2  # a random IR records no dataset
    assert "pass --dataset and --data-dir" in capsys.readouterr().err


# -- wide input streams (--in-width) ---------------------------------------------

#: (input shape, layers, --pe, --in-width): an MLP input-bound at 16 / 64 cycles per frame, a CNN with
#: 4 channels whose SWU reads gcd(64, 32) = 32 bits a cycle (tests/test_input_width.py has the rules).
WIDE = {
    "mlp128": ((1, 16, 16), [("fc", 16), ("fc", 8)], 16, 128),
    "mlp32": ((1, 16, 16), [("fc", 16), ("fc", 8)], 16, 32),
    "cnn64": ((4, 4, 4), [("conv", 8, 3, 1, 1), ("fc", 8)], 8, 64),
}


@pytest.fixture(scope="module")
def wide_builds(tmp_path_factory: pytest.TempPathFactory):
    from hwgen.hw.builder import BuildOptions, build

    root = tmp_path_factory.mktemp("sim_wide")
    folders = {}

    def get(case: str) -> Path:
        if case not in folders:
            shape, layers, pe, width = WIDE[case]
            net = random_network(np.random.default_rng(7), shape, layers, num_classes=2, first_weight_bits=4)
            save_network(root / f"{case}.hwir", net)
            # simulated only: mlp128's 1,024 lanes of 4-bit weights x pixels would need 1,024 DSP multipliers,
            # more than any target has, so the build's resource checks are off
            build(root / f"{case}.hwir", root / case, BuildOptions(pe=pe, in_width=width, check_memory=False),
                  log=lambda *a: None)
            folders[case] = root / case
        return folders[case]
    return get


@pytest.mark.parametrize("case", sorted(WIDE))
def test_bulk_wide_input_bit_exact_with_stalls_and_as_fast_as_estimated(wide_builds, case: str) -> None:
    folder = load_build_folder(wide_builds(case))
    shape, _, _, width = WIDE[case]
    assert folder.in_width == width
    images = np.random.default_rng(2).integers(0, 256, size=(40, *shape), dtype=np.uint8)
    out = simulate(folder, images, mode="bulk", seed=5, gap_p=0.2, stall_p=0.5)
    assert out.ok, out.check.first_mismatch
    assert out.check.agree.sum() == 40
    fast = simulate(folder, images, mode="bulk")
    assert fast.ok and fast.timing.cycles_per_frame == folder.cycles_per_frame, (fast.timing, folder.report)


def test_cocotb_wide_input_agrees_with_bulk(wide_builds, tmp_path: Path) -> None:
    """128-bit beats through cocotb (a Python int per beat) and the harness (Verilator's 4-word port)."""
    folder = load_build_folder(wide_builds("mlp128"))
    images = np.random.default_rng(4).integers(0, 256, size=(4, 1, 16, 16), dtype=np.uint8)
    a = simulate(folder, images, mode="bulk")
    b = simulate(folder, images, mode="cocotb", run_dir=tmp_path, waves=False, seed=1, gap_p=0.3, stall_p=0.3)
    c = simulate(folder, images, mode="cocotb", run_dir=tmp_path / "plain", waves=False)
    assert a.ok and b.ok and c.ok, b.check.first_mismatch
    assert np.array_equal(a.trace.out_last, c.trace.out_last)
    assert np.array_equal(a.trace.in_first, c.trace.in_first)


def test_a_report_that_disagrees_with_top_v_is_refused(wide_builds, tmp_path: Path) -> None:
    import json

    from hwgen.errors import SimError

    copy_dir = tmp_path / "mixed"
    shutil.copytree(wide_builds("mlp32"), copy_dir)
    report = json.loads((copy_dir / "report.json").read_text())
    report["in_width"] = 64
    (copy_dir / "report.json").write_text(json.dumps(report))
    with pytest.raises(SimError, match=r"declares s_axis_tdata\[31:0\] but report.json says in_width 64"):
        load_build_folder(copy_dir)


# -- slow: the shipped MNIST model on real data -----------------------------------

@pytest.fixture(scope="module")
def tfc_build(tmp_path_factory: pytest.TempPathFactory) -> Path:
    ckpt = REPO / "models" / "tfc_mnist.ckpt"
    if not ckpt.is_file():
        pytest.skip("models/tfc_mnist.ckpt is absent")
    return _build(ckpt, tmp_path_factory.mktemp("tfc") / "tfc", pe=16)


@pytest.mark.slow
def test_tfc_whole_mnist_test_set_in_bulk(tfc_build: Path, mnist_dir: Path, capsys: pytest.CaptureFixture) -> None:
    rc = main(["sim", str(tfc_build), "--bulk", "--dataset", "mnist", "--data-dir", str(mnist_dir), "--no-progress"])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "10000/10000 images agree" in out


@pytest.mark.slow
def test_tfc_cocotb_mnist_with_back_pressure(tfc_build: Path, mnist_dir: Path, capsys: pytest.CaptureFixture) -> None:
    rc = main(["sim", str(tfc_build), "--dataset", "mnist", "--data-dir", str(mnist_dir), "--images", "8",
               "--stall-p", "0.3", "--gap-p", "0.2", "--seed", "3"])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "8/8 images agree" in out
