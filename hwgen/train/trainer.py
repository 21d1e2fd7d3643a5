"""The training loop behind ``hwgen train`` (single process or torchrun/DDP).

Per epoch: shuffle (seeded by ``seed`` and the epoch, so a resumed run sees
the same batches), augment on tensors, forward, loss, backward, optimiser
step, clamp latent binary weights to [-1, 1], then evaluate on the test set.
After every epoch the rank-0 process writes, each file atomically (a
temporary file renamed over the old one, so Ctrl-C leaves a whole file):

* ``OUT.ckpt``: architecture, weights, config, metrics (what later stages
  read), only when the epoch is the best so far by test top-1 (strictly
  higher than every earlier epoch of the run), or every epoch with
  ``keep="last"``;
* ``OUT.train-state.ckpt``: the latest epoch plus optimiser and RNG state (``--resume``);
* ``OUT.log.jsonl`` and ``OUT.curves.png``: the history and its plot.
"""

from __future__ import annotations

import math
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, Iterator

import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from hwgen.data.augment import random_crop_flip
from hwgen.data.datasets import Dataset, load_dataset
from hwgen.errors import CheckpointError, ConfigError
from hwgen.train.architecture import hardware_normalization
from hwgen.train.checkpoint import Checkpoint, load_checkpoint, load_state_into, save_checkpoint
from hwgen.train.config import Optimizer, TrainConfig
from hwgen.train.distributed import DistContext, all_reduce_sum, barrier, init_distributed, shutdown
from hwgen.train.history import history_paths, plot_history, read_history, write_history
from hwgen.train.layers import BinaryConv2d, BinaryLinear
from hwgen.train.network import BinaryNet
from hwgen.train.scales import weight_scale_l2
from hwgen.train.zoo import make_architecture

#: Per dataset: (augment by default, crop padding in pixels, horizontal flips). Digits are not
#: flipped; 28x28 images get a 2-pixel shift range.
AUGMENTATION = {"cifar10": (True, 4, True), "mnist": (False, 2, False), "fashion_mnist": (False, 2, True)}


#: TrainConfig fields that ``--resume`` may change; every other one is the saved run's.
RESUME_MAY_CHANGE = ("epochs", "device", "compile", "data_dir")

#: What ``OUT.ckpt`` holds: the best epoch so far by test top-1, or the latest.
KEEP_CHOICES = ("best", "last")


def train_state_path(ckpt_path: Path) -> Path:
    """Where the resumable training state of ``ckpt_path`` lives."""
    return ckpt_path.with_suffix(".train-state.ckpt")


def resume_state_path(resume: Path) -> Path:
    """The training-state file ``--resume`` reads: ``resume`` itself if it is one, else its train-state file."""
    resume = Path(resume)
    state_file = resume if resume.name.endswith(".train-state.ckpt") else train_state_path(resume)
    if not state_file.exists():
        raise CheckpointError(f"cannot resume from {resume}: its training state {state_file} does not exist")
    return state_file


def learning_rate(cfg: TrainConfig, step: int, total_steps: int, warmup_steps: int) -> float:
    """Linear warm-up over ``warmup_steps``, then cosine decay to 0 at ``total_steps``."""
    if step < warmup_steps:
        return cfg.lr * (step + 1) / warmup_steps
    progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    return cfg.lr * 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


def make_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    """Weight decay on conv/linear weights only; BatchNorm and scale factors are exempt."""
    decay, no_decay = [], []
    for module in model.modules():
        for name, param in module.named_parameters(recurse=False):
            is_weight = isinstance(module, (BinaryConv2d, BinaryLinear)) and name == "weight"
            (decay if is_weight else no_decay).append(param)
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    if cfg.optimizer is Optimizer.SGD:
        return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.momentum > 0)
    if cfg.optimizer is Optimizer.ADAMW:
        return torch.optim.AdamW(groups, lr=cfg.lr)
    return torch.optim.Adam(groups, lr=cfg.lr)


@torch.no_grad()
def evaluate(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, *, device: torch.device,
             batch_size: int = 1000, ctx: DistContext | None = None) -> tuple[float, float]:
    """(mean cross-entropy, top-1 accuracy) of ``model`` on uint8 ``images`` (N, C, H, W).

    Under DDP each process evaluates a strided shard and the sums are reduced.
    Argmax ties break to the lowest index (``torch.argmax`` returns the first maximum).
    """
    was_training = model.training
    model.eval()
    rank, world = (ctx.rank, ctx.world_size) if ctx else (0, 1)
    index = torch.arange(rank, len(images), world)
    loss_sum, correct = 0.0, 0.0
    for start in range(0, len(index), batch_size):
        idx = index[start:start + batch_size]
        x, y = images[idx].to(device), labels[idx].to(device)
        logits = model(x)
        loss_sum += F.cross_entropy(logits, y, reduction="sum").item()
        correct += (logits.argmax(dim=1) == y).sum().item()
    if ctx is not None:
        loss_sum, correct = all_reduce_sum([loss_sum, correct], ctx)
    model.train(was_training)
    return loss_sum / len(images), correct / len(images)


def _batches(n: int, batch_size: int, generator: torch.Generator, ctx: DistContext) -> Iterator[torch.Tensor]:
    """Shuffled index batches of ``batch_size`` (the global batch), this rank's share of each; drops the last partial batch."""
    order = torch.randperm(n, generator=generator)
    for start in range(0, n - batch_size + 1, batch_size):
        yield order[start:start + batch_size][ctx.rank::ctx.world_size]


class Trainer:
    """One training run; ``run()`` trains and returns the final metrics."""

    def __init__(self, cfg: TrainConfig, out_path: Path, *, resume: Path | None = None, progress: bool = True,
                 keep: str = "best"):
        if keep not in KEEP_CHOICES:
            raise ConfigError(f"keep must be one of {', '.join(KEEP_CHOICES)}, not {keep!r}")
        self.keep = keep
        start_epoch, state = 0, None
        if resume is not None:
            state = self._load_resume_state(Path(resume))
            saved = dict(state.train_config)
            saved.update({k: getattr(cfg, k) for k in RESUME_MAY_CHANGE})  # every other option is the saved one
            cfg = TrainConfig.from_dict(saved)
            start_epoch = state.epoch
        self.ctx = init_distributed(cfg.device)
        self.out_path = Path(out_path)
        self.progress = progress
        self.cfg = cfg
        self.data = self._load_data(cfg)
        torch.manual_seed(cfg.seed)
        mean, std = hardware_normalization(self.data.mean, self.data.std)
        arch = make_architecture(
            cfg.model, input_shape=tuple(self.data.train_images.shape[1:]), num_classes=self.data.num_classes,
            mean=mean, std=std, options=cfg.model_options,
        )
        self.model = BinaryNet(arch).to(self.ctx.device)
        self.optimizer = make_optimizer(self.model, cfg)
        self.history: list[dict[str, Any]] = []
        if state is not None:
            load_state_into(self.model, state.model_state, str(resume))
            self.optimizer.load_state_dict(state.optimizer_state)
            if state.rng_state is not None:
                torch.set_rng_state(state.rng_state)
            self.history = read_history(history_paths(self.out_path)[0])[:start_epoch]
        self.start_epoch = start_epoch
        self.forward_model: nn.Module = self.model
        if cfg.compile:
            self.forward_model = torch.compile(self.forward_model)
        if self.ctx.distributed:
            ids = [self.ctx.device.index] if self.ctx.device.type == "cuda" else None
            self.forward_model = nn.parallel.DistributedDataParallel(self.forward_model, device_ids=ids)

    @staticmethod
    def _load_resume_state(resume: Path) -> Checkpoint:
        state_file = resume_state_path(resume)
        state = load_checkpoint(state_file)
        if state.optimizer_state is None:
            raise CheckpointError(f"{state_file} holds no optimiser state, so training cannot resume from it")
        return state

    def _load_data(self, cfg: TrainConfig) -> Dataset:
        data = load_dataset(cfg.dataset, cfg.data_dir)
        if self.ctx.is_main:
            print(f"{cfg.dataset}: read {', '.join(data.files)}", flush=True)
        if cfg.limit_train or cfg.limit_test:
            data = replace(
                data,
                train_images=data.train_images[:cfg.limit_train], train_labels=data.train_labels[:cfg.limit_train],
                test_images=data.test_images[:cfg.limit_test], test_labels=data.test_labels[:cfg.limit_test],
            )
        return data

    def _augment(self, images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Random crop (zero padding) and flips per AUGMENTATION, when enabled."""
        default, padding, flip = AUGMENTATION[self.cfg.dataset]
        if not (default if self.cfg.augment is None else self.cfg.augment):
            return images
        return random_crop_flip(images, padding=padding, flip=flip, generator=generator)

    def run(self, stop_after: int | None = None) -> dict[str, Any]:
        """Train the remaining epochs (only up to epoch ``stop_after`` if given) and return the metrics."""
        last = self.cfg.epochs if stop_after is None else min(stop_after, self.cfg.epochs)
        try:
            for epoch in range(self.start_epoch, last):
                record = self._train_epoch(epoch)
                if self.ctx.is_main:
                    self._save(epoch + 1, record)
            barrier(self.ctx)  # on success only: after a failure the other rank may never arrive
            return self.metrics()
        finally:
            shutdown(self.ctx)

    def _train_epoch(self, epoch: int) -> dict[str, Any]:
        cfg, ctx, data = self.cfg, self.ctx, self.data
        stage = 1 if epoch < cfg.stage1_epochs else 2
        self.model.set_binary_weights(stage == 2)
        self.model.train()
        generator = torch.Generator().manual_seed(cfg.seed * 100_003 + epoch)
        steps_per_epoch = len(data.train_images) // cfg.batch_size
        if steps_per_epoch == 0:
            raise CheckpointError(f"batch size {cfg.batch_size} exceeds the {len(data.train_images)} training images")
        total_steps, warmup = steps_per_epoch * cfg.epochs, round(steps_per_epoch * cfg.warmup_epochs)
        loss_sum = correct = seen = 0.0
        started = time.perf_counter()
        bar = tqdm(_batches(len(data.train_images), cfg.batch_size, generator, ctx), total=steps_per_epoch,
                   desc=f"epoch {epoch + 1}/{cfg.epochs}", disable=not (self.progress and ctx.is_main),
                   leave=False, dynamic_ncols=True)
        for step_in_epoch, idx in enumerate(bar):
            lr = learning_rate(cfg, epoch * steps_per_epoch + step_in_epoch, total_steps, warmup)
            for group in self.optimizer.param_groups:
                group["lr"] = lr
            x = self._augment(data.train_images[idx], generator)
            x, y = x.to(ctx.device, non_blocking=True), data.train_labels[idx].to(ctx.device, non_blocking=True)
            logits = self.forward_model(x)
            loss = F.cross_entropy(logits, y, label_smoothing=cfg.label_smoothing)
            if cfg.scale_l2 > 0:
                loss = loss + cfg.scale_l2 * weight_scale_l2(self.model)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            if cfg.clip_weights:
                self.model.clip_latent_weights()
            loss_sum += loss.item() * len(y)
            correct += (logits.argmax(1) == y).sum().item()
            seen += len(y)
            if step_in_epoch % 10 == 0:
                bar.set_postfix(loss=f"{loss_sum / seen:.3f}", acc=f"{100 * correct / seen:.1f}%", lr=f"{lr:.2e}")
        bar.close()
        seconds = time.perf_counter() - started
        loss_sum, correct, seen = all_reduce_sum([loss_sum, correct, seen], ctx)
        test_loss, test_acc = evaluate(self.model, data.test_images, data.test_labels, device=ctx.device, ctx=ctx)
        record = {
            "epoch": epoch + 1, "stage": stage, "lr": lr,
            "train_loss": loss_sum / seen, "train_acc": correct / seen,
            "test_loss": test_loss, "test_acc": test_acc,
            "seconds": seconds, "images_per_s": seen / seconds,
        }
        if ctx.is_main:
            print(f"epoch {epoch + 1:3d}/{cfg.epochs} stage {stage} lr {lr:.2e}  "
                  f"train loss {record['train_loss']:.4f} acc {100 * record['train_acc']:.2f}%  "
                  f"test loss {test_loss:.4f} acc {100 * test_acc:.2f}%  "
                  f"{seconds:.1f}s ({record['images_per_s']:.0f} img/s)", flush=True)
        return record

    def metrics(self) -> dict[str, Any]:
        last = self.history[-1] if self.history else {}
        best = max(self.history, key=lambda r: r["test_acc"]) if self.history else {}
        return {
            "dataset": self.cfg.dataset,
            "epochs": len(self.history),
            "test_acc": last.get("test_acc"),
            "test_loss": last.get("test_loss"),
            "best_test_acc": best.get("test_acc"),
            "best_epoch": best.get("epoch"),
            "train_images_per_s": last.get("images_per_s"),
            "test_images": len(self.data.test_images),
        }

    def _save(self, epoch: int, record: dict[str, Any]) -> None:
        best_before = max((r["test_acc"] for r in self.history), default=None)
        self.history.append(record)
        ckpt = Checkpoint(
            architecture=self.model.arch,
            model_state=self.model.state_dict(),
            train_config=self.cfg.to_dict(),
            metrics=self.metrics(),
            epoch=epoch,
        )
        if self.keep == "last" or best_before is None or record["test_acc"] > best_before:
            save_checkpoint(self.out_path, ckpt)
        ckpt.optimizer_state = self.optimizer.state_dict()
        ckpt.rng_state = torch.get_rng_state()
        save_checkpoint(train_state_path(self.out_path), ckpt)
        log_path, png_path = history_paths(self.out_path)
        write_history(log_path, self.history)
        plot_history(self.history, png_path, title=f"{self.cfg.model} on {self.cfg.dataset}")


def train(cfg: TrainConfig, out_path: Path, *, resume: Path | None = None, progress: bool = True,
          keep: str = "best") -> dict[str, Any]:
    """Train ``cfg`` and write the checkpoint to ``out_path`` (see the module docstring); the final metrics."""
    return Trainer(cfg, out_path, resume=resume, progress=progress, keep=keep).run()
