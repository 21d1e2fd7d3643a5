"""Nothing lost, nothing crashes: every command on bad input and interruption (issue 16, docs/outputs.md).

Each case runs the real command line (``hwgen.cli.main`` in-process, or a
subprocess where the working folder matters) and checks the three things a
user sees: the exit status, a one-line ``hwgen: error: ...`` without a
traceback, and that earlier good output is still there, byte for byte.
"""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from irnets import random_network

import hwgen.train.trainer as trainer_module
from hwgen.cli import main
from hwgen.compile.artifact import save_network
from hwgen.compile.golden import run_network
from hwgen.manifest import MANIFEST, read_manifest, record
from hwgen.outputs import folder_lock, write_bytes_atomic
from hwgen.train.checkpoint import load_checkpoint, tensor_digest
from hwgen.train.trainer import train_state_path

REPO = Path(__file__).resolve().parents[1]
SHIPPED = REPO / "models" / "tfc_mnist.ckpt"


def one_line_error(capsys: pytest.CaptureFixture, *needles: str) -> str:
    err = capsys.readouterr().err
    assert err.startswith("hwgen: error:"), err
    assert err.strip().count("\n") == 0 and "Traceback" not in err, err
    for needle in needles:
        assert needle in err, err
    return err


def train_args(data: Path, out: Path, *extra: str) -> list[str]:
    return ["train", "tfc", "--dataset", "mnist", "--data-dir", str(data), "--epochs", "1", "--batch-size", "64",
            "--dropout", "0", "-o", str(out), "--no-progress", *extra]


@pytest.fixture(scope="module")
def trained(tiny_mnist_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("trained") / "m.ckpt"
    assert main(train_args(tiny_mnist_dir, out)) == 0
    return out


@pytest.fixture(scope="module")
def small_ir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The network of tests/test_sim_accelerator.py's small_build (its Verilator model is then cached)."""
    rng = np.random.default_rng(5)
    net = random_network(rng, (2, 8, 8), [("conv", 4, 3, 1, 1), ("conv", 8, 3, 1, 1), ("pool", 2), ("fc", 8)],
                         num_classes=5, first_weight_bits=4)
    path = tmp_path_factory.mktemp("safety_ir") / "small.hwir"
    save_network(path, net)
    return path


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and p.name != ".hwgen.lock"}


# -- bad values: one line, exit 2, before any work -----------------------------------------------------------

@pytest.mark.parametrize("extra, needle", [
    (["--dropout", "1.5"], "--dropout"),
    (["--batch-size", "0"], "--batch-size"),
    (["--limit-train", "-5"], "--limit-train"),
    (["--limit", "-5"], "--limit"),
    (["--limit-test", "0"], "--limit-test"),  # the old spelling, still checked
    (["--lr", "nan"], "--lr"),
    (["--epochs", "1", "--warmup-epochs", "5"], "warm-up epochs"),
    (["--momentum", "0.5"], "--momentum applies to --optimizer sgd only"),
    (["--optimizer", "adamw", "--momentum", "0.5"], "not adamw"),
])
def test_train_refuses_bad_values(extra: list[str], needle: str, tiny_mnist_dir: Path, tmp_path: Path,
                                  capsys: pytest.CaptureFixture) -> None:
    assert main(train_args(tiny_mnist_dir, tmp_path / "x.ckpt", *extra)) == 2
    one_line_error(capsys, needle)
    assert not (tmp_path / "x.ckpt").exists()


def test_sgd_takes_momentum(tiny_mnist_dir: Path, tmp_path: Path) -> None:
    assert main(train_args(tiny_mnist_dir, tmp_path / "s.ckpt", "--optimizer", "sgd", "--momentum", "0.5",
                           "--lr", "0.05")) == 0
    assert load_checkpoint(tmp_path / "s.ckpt").train_config["momentum"] == 0.5


@pytest.mark.parametrize("args, needle", [
    (["eval", "{ckpt}", "--limit", "0"], "--limit"),
    (["eval", "{ckpt}", "--limit", "-5"], "--limit"),
    (["eval", "{ckpt}", "--batch-size", "0"], "--batch-size"),
    (["compile", "{ckpt}", "-o", "{tmp}/x.hwir", "--verify", "--limit", "-1"], "--limit"),
    (["build", "{ckpt}", "--fps", "nan", "-o", "{tmp}/b"], "--fps"),
    (["build", "{ckpt}", "--fps", "inf", "-o", "{tmp}/b"], "--fps"),
    (["build", "{ckpt}", "--pe", "0", "-o", "{tmp}/b"], "--pe"),
    (["build", "{ckpt}", "--fps", "1000", "--simd", "8", "-o", "{tmp}/b"], "--simd applies with --pe"),
    (["build", "{ckpt}", "--pe", "4", "--clock", "0", "-o", "{tmp}/b"], "--clock"),
    (["sim", "{tmp}", "--limit", "0"], "--limit"),
    (["sim", "{tmp}", "--offset", "-1"], "--offset"),
    (["run", "x.png"], "--port"),
])
def test_bad_values_are_one_line_errors(args: list[str], needle: str, trained: Path, tmp_path: Path,
                                        capsys: pytest.CaptureFixture) -> None:
    argv = [a.format(ckpt=trained, tmp=tmp_path) for a in args]
    assert main(argv) == 2
    one_line_error(capsys, needle)
    assert not (tmp_path / "b").exists() and not (tmp_path / "x.hwir").exists()


# -- outputs checked before the work -----------------------------------------------------------------------

def test_output_paths_are_checked_before_any_work(tiny_mnist_dir: Path, trained: Path, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture) -> None:
    adir = tmp_path / "adir"
    adir.mkdir()
    assert main(train_args(tiny_mnist_dir, adir)) == 2
    one_line_error(capsys, "is a directory")
    assert main(train_args(tiny_mnist_dir, Path("/proc/hwgen-test/x.ckpt"))) == 2
    one_line_error(capsys, "/proc")
    assert main(["compile", str(trained), "-o", str(adir)]) == 2
    one_line_error(capsys, "is a directory")
    assert list(adir.iterdir()) == [] and not list(tmp_path.glob("*.tmp"))  # no adir.tmp left behind
    a_file = tmp_path / "file"
    a_file.write_text("keep")
    assert main(["build", str(trained), "--pe", "4", "-o", str(a_file)]) == 2
    one_line_error(capsys, "is a file")
    assert main(["sim", str(tmp_path), "--json", str(adir)]) == 2  # before the build folder is even read
    one_line_error(capsys, "--json", "is a directory")


def test_missing_output_folders_are_created(trained: Path, tmp_path: Path) -> None:
    out = tmp_path / "new" / "sub" / "x.hwir"
    assert main(["compile", str(trained), "-o", str(out)]) == 0
    assert out.is_file()


def test_compile_refuses_its_input_as_output(trained: Path, tmp_path: Path, capsys: pytest.CaptureFixture,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    before = trained.read_bytes()
    monkeypatch.chdir(trained.parent)
    for spelling in (str(trained), trained.name, f"./{trained.name}"):
        assert main(["compile", trained.name, "-o", spelling]) == 2
        one_line_error(capsys, "this command's input")
    assert trained.read_bytes() == before


def test_export_and_import_refuse_their_input_as_output(small_ir: Path, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture) -> None:
    """hwgen export -o onto its checkpoint/IR (and import -o onto its .onnx) is refused before any work."""
    before = small_ir.read_bytes()
    assert main(["export", str(small_ir), "-o", str(small_ir)]) == 2
    one_line_error(capsys, "this command's input")
    assert small_ir.read_bytes() == before
    onnx = tmp_path / "net.onnx"
    assert main(["export", str(small_ir), "-o", str(onnx)]) == 0
    capsys.readouterr()
    exported = onnx.read_bytes()
    assert main(["import", str(onnx), "-o", str(onnx)]) == 2
    one_line_error(capsys, "this command's input")
    assert onnx.read_bytes() == exported


@pytest.mark.parametrize("command", [["export", "{ir}", "-o", "/proc/x.onnx"],
                                     ["explore", "{ir}", "--target", "ecp5-25k", "--pe", "1", "-o", "/proc/sweep"]])
def test_export_and_explore_check_their_output_first(command: list[str], small_ir: Path,
                                                     capsys: pytest.CaptureFixture) -> None:
    assert main([w.format(ir=small_ir) for w in command]) == 2
    one_line_error(capsys, "/proc")


def test_atomic_write_survives_an_interruption(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "good.ckpt"
    path.write_bytes(b"good")

    def interrupted(*_):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        write_bytes_atomic(path, b"half")
    assert path.read_bytes() == b"good" and [p.name for p in tmp_path.iterdir()] == ["good.ckpt"]


# -- train: keep the best, never overwrite by accident, resume honestly -----------------------------------------

def scripted_accuracy(monkeypatch: pytest.MonkeyPatch, accuracies: list) -> None:
    """The trainer's test evaluation returns these accuracies in turn (an exception is raised)."""
    it = iter(accuracies)

    def fake(*_a, **_k):
        value = next(it)
        if isinstance(value, BaseException):
            raise value
        return 1.0, value

    monkeypatch.setattr(trainer_module, "evaluate", fake)


@pytest.mark.parametrize("save, epoch", [("best", 2), ("last", 3)])
def test_out_holds_the_best_epoch(save: str, epoch: int, tiny_mnist_dir: Path, tmp_path: Path,
                                  monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    scripted_accuracy(monkeypatch, [0.5, 0.9, 0.3])
    out = tmp_path / "m.ckpt"
    assert main(train_args(tiny_mnist_dir, out, "--epochs", "3", "--save", save)) == 0
    assert load_checkpoint(out).epoch == epoch
    assert load_checkpoint(out).metrics["test_acc"] == {2: 0.9, 3: 0.3}[epoch]
    assert load_checkpoint(train_state_path(out)).epoch == 3  # resume continues from the latest
    assert "read " in capsys.readouterr().out  # the files read are named


def test_ctrl_c_in_epoch_2_keeps_epoch_1(tiny_mnist_dir: Path, tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    scripted_accuracy(monkeypatch, [0.7, KeyboardInterrupt()])
    out = tmp_path / "m.ckpt"
    assert main(train_args(tiny_mnist_dir, out, "--epochs", "3")) == 130
    assert load_checkpoint(out).epoch == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.ckpt", "m.curves.png", "m.log.jsonl",
                                                           "m.train-state.ckpt"]


def test_train_does_not_replace_an_existing_model(trained: Path, tiny_mnist_dir: Path,
                                                  capsys: pytest.CaptureFixture) -> None:
    before = trained.read_bytes()
    assert main(train_args(tiny_mnist_dir, trained)) == 2
    one_line_error(capsys, "exists", "--resume", "--overwrite")
    other = trained.parent / "other.ckpt"  # resuming another run into it would replace it too
    assert main(train_args(tiny_mnist_dir, trained, "--resume", str(other))) == 2
    one_line_error(capsys, "exists")
    assert trained.read_bytes() == before


def test_resume_refuses_conflicting_options_and_honours_epochs(tiny_mnist_dir: Path, tmp_path: Path,
                                                                capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "r.ckpt"
    assert main(train_args(tiny_mnist_dir, out)) == 0
    before = out.read_bytes()
    argv = train_args(tiny_mnist_dir, out, "--resume", str(out), "--epochs", "2")
    argv[1] = "sfc"
    assert main(argv) == 2
    one_line_error(capsys, "MODEL sfc (saved: tfc)")
    assert main(train_args(tiny_mnist_dir, out, "--resume", str(out), "--epochs", "2", "--scale", "xnor",
                           "--lr", "0.5")) == 2
    one_line_error(capsys, "--scale xnor (saved: none)", "--lr 0.5 (saved: 0.001)")
    assert out.read_bytes() == before
    # the same options again (the command line the run started with) and a larger --epochs are fine
    assert main(train_args(tiny_mnist_dir, out, "--resume", str(out)) + ["--epochs", "2"]) == 0
    state = load_checkpoint(train_state_path(out))
    assert state.epoch == 2 and state.train_config["epochs"] == 2 and state.train_config["model"] == "tfc"


def test_fashion_mnist_is_not_mnist(mnist_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    argv = train_args(mnist_dir, tmp_path / "f.ckpt")
    argv[3] = "fashion_mnist"
    assert main(argv) == 2
    one_line_error(capsys, "look like MNIST, not Fashion-MNIST", "--dataset mnist")


def test_mnist_is_not_fashion_mnist(fashion_mnist_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(train_args(fashion_mnist_dir, tmp_path / "m.ckpt")) == 2
    one_line_error(capsys, "look like Fashion-MNIST, not MNIST", "--dataset fashion_mnist")


# -- integrity of the files' headers -------------------------------------------------------------------------

def edit_metadata(path: Path, key: str, edit) -> None:
    """Rewrite one metadata string of a safetensors file in place (what a user with a text editor could do)."""
    raw = path.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    header["__metadata__"][key] = edit(header["__metadata__"][key])
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    path.write_bytes(struct.pack("<Q", len(text)) + text + raw[8 + n:])


def test_an_edited_checkpoint_header_is_refused(trained: Path, tmp_path: Path,
                                                capsys: pytest.CaptureFixture) -> None:
    bad = tmp_path / "bad.ckpt"
    bad.write_bytes(trained.read_bytes())
    arch = json.loads(load_checkpoint(trained).architecture.to_json())
    assert "mean" in json.dumps(arch["input"])
    edit_metadata(bad, "architecture", lambda s: s.replace('"mean": [', '"mean": [0.5, ', 1)
                  if '"mean": [' in s else s.replace('"mean":[', '"mean":[0.5,', 1))
    assert bad.read_bytes() != trained.read_bytes()
    assert main(["eval", str(bad)]) == 2
    one_line_error(capsys, "integrity check")


def test_version_1_checkpoints_still_load_with_a_note(trained: Path, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture) -> None:
    from safetensors.torch import load_file

    old = tmp_path / "old.ckpt"
    old.write_bytes(trained.read_bytes())
    edit_metadata(old, "version", lambda _: "1")
    edit_metadata(old, "sha256", lambda _: tensor_digest(load_file(str(old))))
    ckpt = load_checkpoint(old)
    assert ckpt.epoch == load_checkpoint(trained).epoch
    assert "version-1 checkpoint" in capsys.readouterr().err
    edit_metadata(old, "sha256", lambda s: "0" + s[1:])
    with pytest.raises(Exception, match="integrity"):
        load_checkpoint(old)


def test_the_shipped_models_are_version_2() -> None:
    from hwgen.train.checkpoint import read_metadata

    for path in sorted((REPO / "models").glob("*.ckpt")):
        assert read_metadata(path)["version"] == "2", path


def test_a_flipped_byte_in_an_ir_header_is_refused(small_ir: Path, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture) -> None:
    raw = bytearray(small_ir.read_bytes())
    at = raw.index(b"in_shape")
    for i, flipped in enumerate((b"{", b"X")):  # breaks the JSON, then keeps it valid but different
        bad = tmp_path / f"bad{i}.hwir"
        copy = bytearray(raw)
        copy[at:at + 1] = flipped
        bad.write_bytes(bytes(copy))
        assert main(["eval", str(bad), "--dataset", "mnist", "--data-dir", str(tmp_path)]) == 2
        one_line_error(capsys, "integrity check")


# -- recorded dataset folders ----------------------------------------------------------------------------------

def test_shipped_model_evaluates_from_another_folder(tmp_path: Path) -> None:
    if not (REPO / ".." / "shared" / "data" / "mnist").is_dir():
        pytest.skip("../shared/data/mnist is absent")
    result = subprocess.run([sys.executable, "-m", "hwgen.cli", "eval", str(SHIPPED), "--limit", "200"],
                            capture_output=True, text=True, timeout=300, cwd=tmp_path,
                            env={**os.environ, "PYTHONPATH": str(REPO)})
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("tfc on mnist: top-1 ")


def test_a_missing_recorded_folder_names_what_was_tried(tmp_path: Path, capsys: pytest.CaptureFixture,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    copy = tmp_path / "elsewhere" / "tfc.ckpt"
    copy.parent.mkdir()
    copy.write_bytes(SHIPPED.read_bytes())
    assert main(["eval", str(copy)]) == 2
    one_line_error(capsys, "../shared/data/mnist", str(tmp_path / "elsewhere"), "pass --data-dir")


# -- build folders: whole or nothing, no stale files, one writer -------------------------------------------------

def test_rebuild_removes_stale_synthesis_outputs(small_ir: Path, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "b"
    assert main(["build", str(small_ir), "--pe", "4", "-o", str(out)]) == 0
    entry = read_manifest(out)["stages"]["build"]
    assert set(entry["files"]) >= {"top.v", "net.hwir", "report.json"}
    assert entry["command"] == f"hwgen build {small_ir} --pe 4 -o {out}"
    import hashlib
    assert entry["files"]["top.v"] == hashlib.sha256((out / "top.v").read_bytes()).hexdigest()
    (out / "top.bit").write_bytes(b"old bitstream")
    (out / "synth_report.md").write_text("old report")
    (out / "notes.txt").write_text("the user's own file")
    record(out, "synth", ["top.bit", "synth_report.md"])
    assert main(["build", str(small_ir), "--pe", "2", "-o", str(out)]) == 0
    assert "removed from" in capsys.readouterr().out
    assert not (out / "top.bit").exists() and not (out / "synth_report.md").exists()
    assert (out / "notes.txt").read_text() == "the user's own file"
    assert "synth" not in read_manifest(out)["stages"]
    # a folder from an older hwgen (no manifest): the synthesis outputs are known by name
    (out / MANIFEST).unlink()
    (out / "top.bit").write_bytes(b"old bitstream")
    assert main(["build", str(small_ir), "--pe", "4", "-o", str(out)]) == 0
    assert not (out / "top.bit").exists()


def test_a_refused_build_leaves_the_folder_as_it_was(small_ir: Path, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "b"
    assert main(["build", str(small_ir), "--pe", "4", "-o", str(out)]) == 0
    (out / "top.bit").write_bytes(b"good bitstream")
    before = snapshot(out)
    assert main(["build", str(small_ir), "--pe", "3", "-o", str(out)]) == 2  # PE 3 divides nothing here
    one_line_error(capsys, "PE")
    assert snapshot(out) == before
    assert not [p for p in out.iterdir() if p.name.startswith(".hwgen-build")]
    assert main(["build", str(small_ir), "--pe", "3", "-o", str(tmp_path / "fresh")]) == 2
    assert not (tmp_path / "fresh").exists()  # a refused first build leaves no empty folder


def test_two_writers_of_one_folder(small_ir: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "b"
    assert main(["build", str(small_ir), "--pe", "4", "-o", str(out)]) == 0
    before = snapshot(out)
    with folder_lock(out):  # another hwgen build or synth is writing it
        assert main(["build", str(small_ir), "--pe", "2", "-o", str(out)]) == 2
        one_line_error(capsys, "in use by another hwgen command", f"pid {os.getpid()}")
        assert main(["synth", str(out), "--target", "ecp5-85k"]) == 2
        one_line_error(capsys, "in use")
    assert snapshot(out) == before


def test_a_failed_synth_keeps_the_previous_outputs(small_ir: Path, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "b"
    assert main(["build", str(small_ir), "--pe", "4", "-o", str(out)]) == 0
    (out / "top.bit").write_bytes(b"good bitstream")
    (out / "synth_report.md").write_text("good report")
    (out / "synth.json").write_text("{}")
    assert main(["synth", str(out), "--target", "ecp5-85k", "--yosys", "/bin/false"]) == 2
    err = capsys.readouterr().err  # stage progress lines, then the error
    assert err.splitlines()[-1].startswith("hwgen: error: yosys failed") and "Traceback" not in err
    assert (out / "top.bit").read_bytes() == b"good bitstream"
    assert (out / "synth_report.md").read_text() == "good report" and (out / "synth.json").read_text() == "{}"
    assert not [p for p in out.iterdir() if p.name.startswith(".hwgen-previous")]


def test_failed_board_synth_keeps_the_previous_board_files_with_their_bitstream(
        small_ir: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from hwgen.boards.boards import get_board
    from hwgen.boards.generate import board_file_names

    out = tmp_path / "b"
    assert main(["build", str(small_ir), "--pe", "4", "-o", str(out)]) == 0
    previous = {name: f"previous {name}" for name in (*board_file_names("ulx3s-85f"), "top.bit", "synth_report.md")}
    for name, text in previous.items():
        (out / name).write_text(text)
    assert get_board("ulx3s-85f").lpf_name in previous
    assert main(["synth", str(out), "--board", "ulx3s-85f", "--yosys", "/bin/false"]) == 2
    err = capsys.readouterr().err
    assert err.splitlines()[-1].startswith("hwgen: error: yosys failed") and "Traceback" not in err
    assert {name: (out / name).read_text() for name in previous} == previous
    assert not [p for p in out.iterdir() if p.name.startswith(".hwgen-previous")]


# -- sim and run ------------------------------------------------------------------------------------------------

def test_sim_of_a_relative_build_folder(small_ir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                        capsys: pytest.CaptureFixture) -> None:
    """The README's own form: `hwgen sim build/NAME` from the folder above, and --json into a new folder."""
    monkeypatch.chdir(tmp_path)
    assert main(["build", str(small_ir), "--pe", "4", "-o", "build/demo/small"]) == 0
    assert main(["sim", "build/demo/small", "--dataset", "random", "--limit", "2",
                 "--json", "results/s.json"]) == 0, capsys.readouterr()
    summary = json.loads(Path("results/s.json").read_text())
    assert summary["images"] == 2 and summary["mismatches"] == 0 and summary["ok"]


@pytest.mark.parametrize("mode", [["--bulk"], []], ids=["bulk", "cocotb"])
def test_sim_with_a_relative_cache_folder(small_ir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                          capsys: pytest.CaptureFixture, mode: list[str]) -> None:
    """`--cache-dir models/cache`, relative: Verilator runs inside the model's folder, where the relative
    path would name another one (it failed with "Can't write file" before the path was made absolute)."""
    monkeypatch.chdir(tmp_path)
    assert main(["build", str(small_ir), "--pe", "4", "-o", "b"]) == 0
    assert main(["sim", "b", *mode, "--dataset", "random", "--limit", "2", "--cache-dir", "models/cache",
                 "--json", "s.json"]) == 0, capsys.readouterr()
    assert json.loads(Path("s.json").read_text())["mismatches"] == 0
    assert [p.name for p in Path("models/cache").iterdir() if not p.name.startswith(".")]


def test_sim_refuses_a_cache_folder_that_is_a_file(small_ir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["build", str(small_ir), "--pe", "4", "-o", "b"]) == 0
    Path("cache").write_text("mine")
    capsys.readouterr()
    assert main(["sim", "b", "--bulk", "--dataset", "random", "--limit", "2", "--cache-dir", "cache"]) == 2
    one_line_error(capsys, "is a file, not a folder")
    assert Path("cache").read_text() == "mine"


def test_run_checks_the_image_before_the_port(small_ir: Path, tmp_path: Path,
                                              capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "b"
    assert main(["build", str(small_ir), "--pe", "4", "-o", str(out)]) == 0
    for build in ([], ["--build", str(out)]):
        assert main(["run", "--port", "/dev/hwgen-no-such-port", str(tmp_path / "none.png"), *build]) == 2
        one_line_error(capsys, "none.png")
    wrong = tmp_path / "wrong.npy"
    np.save(wrong, np.zeros((3, 8, 8), np.uint8))
    assert main(["run", "--port", "/dev/hwgen-no-such-port", str(wrong), "--build", str(out)]) == 2
    err = one_line_error(capsys)
    assert "/dev/hwgen-no-such-port" not in err  # refused for its shape, before the port was opened


def test_run_golden_answers_without_a_board(small_ir: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from hwgen.compile.artifact import load_network

    out = tmp_path / "b"
    assert main(["build", str(small_ir), "--pe", "4", "-o", str(out)]) == 0
    capsys.readouterr()
    image = np.random.default_rng(3).integers(0, 256, size=(2, 8, 8), dtype=np.uint8)
    np.save(tmp_path / "img.npy", image)
    assert main(["run", "--golden", str(tmp_path / "img.npy"), "--build", str(out)]) == 0
    printed = capsys.readouterr().out
    golden = run_network(load_network(small_ir), image[None])  # the IR the build was made from
    assert f"class {int(golden.predictions[0])}\n" in printed
    assert f"scores {golden.scores[0].tolist()}" in printed
    assert main(["run", "--golden", str(tmp_path / "img.npy")]) == 2
    one_line_error(capsys, "--build")
