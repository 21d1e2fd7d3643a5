"""The hwgen command line: help, train + eval, and user errors without tracebacks."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from hwgen.cli import main


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "hwgen.cli", *args], capture_output=True, text=True, timeout=300)


def test_help_lists_the_stages() -> None:
    result = run_cli("--help")
    assert result.returncode == 0
    assert "train" in result.stdout and "eval" in result.stdout


def test_train_then_eval(tiny_mnist_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "m.ckpt"
    assert main(["train", "tfc", "--dataset", "mnist", "--data-dir", str(tiny_mnist_dir), "--epochs", "3",
                 "--batch-size", "32", "--lr", "5e-3", "--dropout", "0", "--scale", "gamma_channel",
                 "--estimator", "tight", "-o", str(out), "--no-progress"]) == 0
    trained = capsys.readouterr().out
    assert "test top-1" in trained
    assert main(["eval", str(out)]) == 0  # dataset and folder recorded in the checkpoint
    line = capsys.readouterr().out
    assert line.startswith("tfc on mnist: top-1 ")
    accuracy = float(line.split("top-1 ")[1].split("%")[0])
    assert accuracy > 80.0
    assert f"test top-1 {accuracy:.2f}%" in trained  # eval reproduces the trainer's measurement


@pytest.mark.parametrize("args,message", [
    (["train", "tfc", "--dataset", "mnist", "--data-dir", "/nonexistent", "-o", "x.ckpt"], "/nonexistent"),
    (["train", "tfc", "--dataset", "mnist", "--data-dir", ".", "-o", "x.ckpt", "--epochs", "0"], "epochs"),
    (["train", "tfc", "--dataset", "mnist", "--data-dir", ".", "-o", "x.ckpt", "--first-layer", "int1"], "int1"),
    pytest.param(["train", "tfc", "--dataset", "mnist", "--data-dir", ".", "-o", "x.ckpt", "--device", "cuda"],
                 "CUDA", marks=pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")),
    (["eval", "missing.ckpt"], "missing.ckpt"),
])
def test_user_errors_are_one_line_messages(args: list[str], message: str, tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "hwgen.cli", *args], capture_output=True, text=True,
                            timeout=120, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("hwgen: error:") and message in result.stderr


def test_eval_of_a_corrupted_checkpoint(tmp_path: Path) -> None:
    bad = tmp_path / "bad.ckpt"
    bad.write_bytes(b"\x00" * 100)
    result = run_cli("eval", str(bad), "--dataset", "mnist", "--data-dir", str(tmp_path))
    assert result.returncode == 2 and "Traceback" not in result.stderr and "bad.ckpt" in result.stderr
