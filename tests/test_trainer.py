"""The training loop on a tiny learnable dataset: learning, schedules, resume, two stages, DDP."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from hwgen.train.checkpoint import load_checkpoint
from hwgen.train.config import TrainConfig
from hwgen.train.network import load_model
from hwgen.train.scales import ScaleMode
from hwgen.errors import CheckpointError
from hwgen.train.trainer import Trainer, learning_rate, train, train_state_path
from hwgen.train.zoo import ModelOptions


def tiny_config(data_dir: Path, **overrides) -> TrainConfig:
    values = dict(model="tfc", dataset="mnist", data_dir=str(data_dir), epochs=4, batch_size=32, lr=5e-3,
                  model_options=ModelOptions(dropout=0.0))
    values.update(overrides)
    return TrainConfig(**values)


def test_learns_the_tiny_task_and_writes_artifacts(tiny_mnist_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "tfc.ckpt"
    metrics = train(tiny_config(tiny_mnist_dir), out, progress=False)
    assert metrics["test_acc"] > 0.8, metrics  # chance is 0.1
    log = [json.loads(line) for line in out.with_suffix(".log.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in log] == [1, 2, 3, 4]
    assert {"train_loss", "train_acc", "test_loss", "test_acc", "lr", "images_per_s"} <= set(log[0])
    assert out.with_suffix(".curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    ckpt = load_checkpoint(out)
    assert ckpt.optimizer_state is None and ckpt.metrics["test_acc"] == metrics["best_test_acc"]  # OUT: best epoch
    assert ckpt.epoch == metrics["best_epoch"]
    assert load_checkpoint(train_state_path(out)).optimizer_state is not None


def test_learning_rate_schedule() -> None:
    cfg = TrainConfig(model="tfc", dataset="mnist", data_dir=".", lr=0.1)
    lrs = [learning_rate(cfg, t, total_steps=110, warmup_steps=10) for t in range(110)]
    assert lrs[:10] == pytest.approx([0.01 * (t + 1) for t in range(10)])
    assert lrs[10] == pytest.approx(0.1)
    assert lrs[60] == pytest.approx(0.05)  # half-way through the cosine
    assert lrs[-1] == pytest.approx(0.1 * 0.5 * (1 + math.cos(math.pi * 99 / 100)))
    assert all(a >= b for a, b in zip(lrs[10:], lrs[11:]))


def test_resume_continues_bit_exactly(tiny_mnist_dir: Path, tmp_path: Path) -> None:
    """Stopping after 2 of 3 epochs and resuming gives the same weights as an uninterrupted run."""
    cfg = tiny_config(tiny_mnist_dir, epochs=3, model_options=ModelOptions(dropout=0.2))
    straight, resumed = tmp_path / "straight.ckpt", tmp_path / "resumed.ckpt"
    train(cfg, straight, progress=False)
    Trainer(cfg, resumed, progress=False).run(stop_after=2)
    assert load_checkpoint(train_state_path(resumed)).epoch == 2
    train(cfg, resumed, resume=resumed, progress=False)
    for a_path, b_path in ((straight, resumed), (train_state_path(straight), train_state_path(resumed))):
        a, b = load_checkpoint(a_path).model_state, load_checkpoint(b_path).model_state
        for key in a:
            assert torch.equal(a[key], b[key]), key
    history = [json.loads(line) for line in resumed.with_suffix(".log.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in history] == [1, 2, 3]


def test_resume_without_state_is_a_clear_error(tiny_mnist_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="training state"):
        train(tiny_config(tiny_mnist_dir), tmp_path / "x.ckpt", resume=tmp_path / "nothing.ckpt", progress=False)


def test_two_stage_schedule_switches_to_binary_weights(tiny_mnist_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "two.ckpt"
    train(tiny_config(tiny_mnist_dir, epochs=3, stage1_epochs=2), out, progress=False)
    history = [json.loads(line) for line in out.with_suffix(".log.jsonl").read_text().splitlines()]
    assert [r["stage"] for r in history] == [1, 1, 2]
    model, _ = load_model(out)
    assert all(layer.binary_weights for layer in model.weight_layers())


def test_trained_scales_with_l2_penalty(tiny_mnist_dir: Path, tmp_path: Path) -> None:
    """The L2 penalty on alpha shrinks the trained weight scales relative to no penalty."""
    def alpha_norm(scale_l2: float) -> float:
        out = tmp_path / f"l2_{scale_l2}.ckpt"
        cfg = tiny_config(tiny_mnist_dir, epochs=2, scale_l2=scale_l2,
                          model_options=ModelOptions(dropout=0.0, scale=ScaleMode.TRAINED))
        train(cfg, out, progress=False)
        state = load_checkpoint(out).model_state
        return sum(float((v ** 2).sum()) for k, v in state.items() if k.endswith("scale.alpha"))

    assert alpha_norm(1.0) < 0.5 * alpha_norm(0.0)


def test_ddp_two_processes_gloo(tiny_mnist_dir: Path, tmp_path: Path) -> None:
    """torchrun with 2 CPU processes (gloo): trains, and rank 0 writes a working checkpoint."""
    out = tmp_path / "ddp.ckpt"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29533",
           "-m", "hwgen.cli", "train", "tfc", "--dataset", "mnist", "--data-dir", str(tiny_mnist_dir),
           "--epochs", "3", "--batch-size", "32", "--lr", "5e-3", "--dropout", "0", "-o", str(out), "--no-progress"]
    result = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.count("epoch   3/3") == 1  # only rank 0 reports
    assert load_checkpoint(out).metrics["test_acc"] > 0.8
