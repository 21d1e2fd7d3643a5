"""Typed training configuration (what ``hwgen train`` options become)."""

from __future__ import annotations

import enum
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from hwgen.errors import ConfigError
from hwgen.train.zoo import ModelOptions


class Optimizer(str, enum.Enum):
    ADAM = "adam"
    ADAMW = "adamw"
    SGD = "sgd"


@dataclass(frozen=True)
class TrainConfig:
    """Everything that determines a training run.

    Learning rate per optimiser step t (0-based) of T total, W warm-up steps:
    ``lr_t = lr * (t + 1) / W`` for t < W, then
    ``lr_t = lr * 0.5 * (1 + cos(pi * (t - W) / (T - W)))`` (cosine to 0).

    Loss: cross-entropy with ``label_smoothing`` plus
    ``scale_l2 * sum(alpha^2)`` over the trained weight scales (Xu & Cheung).
    ``weight_decay`` applies to conv/linear weights only (not BatchNorm, not scales).

    Two-stage schedule: for the first ``stage1_epochs`` epochs the weights stay
    real (binary activations only), then binary weights are switched on.
    """

    model: str
    dataset: str
    data_dir: str
    model_options: ModelOptions = field(default_factory=ModelOptions)
    epochs: int = 10
    batch_size: int = 128
    optimizer: Optimizer = Optimizer.ADAM
    lr: float = 1e-3
    momentum: float = 0.9
    weight_decay: float = 0.0
    warmup_epochs: float = 0.0
    label_smoothing: float = 0.0
    scale_l2: float = 0.0
    stage1_epochs: int = 0
    clip_weights: bool = True
    augment: bool | None = None  # None: on for CIFAR-10, off for MNIST-style data
    seed: int = 0
    device: str = "cpu"
    compile: bool = False
    limit_train: int | None = None
    limit_test: int | None = None

    def __post_init__(self) -> None:
        checks = [
            (self.epochs >= 1, f"epochs must be at least 1, not {self.epochs}"),
            (self.batch_size >= 1, f"batch size must be at least 1, not {self.batch_size}"),
            (self.lr > 0, f"learning rate must be positive, not {self.lr}"),
            (0 <= self.label_smoothing < 1, f"label smoothing must be in [0, 1), not {self.label_smoothing}"),
            (self.scale_l2 >= 0, f"scale L2 coefficient must be >= 0, not {self.scale_l2}"),
            (self.weight_decay >= 0, f"weight decay must be >= 0, not {self.weight_decay}"),
            (0 <= self.stage1_epochs < self.epochs,
             f"stage-1 epochs ({self.stage1_epochs}) must be below the total epochs ({self.epochs})"),
            (0 <= self.warmup_epochs <= self.epochs,
             f"warm-up epochs must lie in [0, epochs = {self.epochs}], not {self.warmup_epochs}"),
            (self.momentum >= 0, f"momentum must be >= 0, not {self.momentum}"),
            (self.limit_train is None or self.limit_train >= 1,
             f"limit_train must be a positive number of images, not {self.limit_train}"),
            (self.limit_test is None or self.limit_test >= 1,
             f"limit_test must be a positive number of images, not {self.limit_test}"),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(message)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["model_options"] = self.model_options.to_dict()
        data["optimizer"] = self.optimizer.value
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "TrainConfig":
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ConfigError(f"unknown training config fields: {', '.join(sorted(unknown))}")
        values = dict(data)
        values["model_options"] = ModelOptions.from_dict(values.get("model_options", {}))
        values["optimizer"] = Optimizer(values.get("optimizer", "adam"))
        return cls(**values)
