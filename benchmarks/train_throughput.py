"""Training throughput of each zoo model, binary vs a plain float model of the same shape.

    python benchmarks/train_throughput.py [--batch-size 128] [--seconds 4] [--models tfc,cnv,...]

"Binary" is the zoo model as ``hwgen train`` runs it (sign quantizers with
their estimators, scale factors, BatchNorm). "Float" is a plain PyTorch
network with the same layers (nn.Conv2d / nn.Linear without bias, the same
BatchNorm and max-pool) and a Hardtanh where the binary model binarizes.
Both run forward + backward + Adam step on random data of the model's input
shape. Measurements alternate between the two models, ``--rounds`` times, and
the table reports medians, so a busy machine affects both alike.
Overhead = float images/s / binary images/s (target: below 1.5).
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch import nn

from hwgen.train.architecture import Architecture
from hwgen.train.network import BinaryNet
from hwgen.train.scales import ScaleMode
from hwgen.train.zoo import ModelOptions, make_architecture

INPUTS = {"tfc": (1, 28, 28), "sfc": (1, 28, 28), "lfc": (1, 28, 28), "cnv": (3, 32, 32), "vgg_small": (3, 32, 32)}


class Normalize(nn.Module):
    """(pixels / 255 - mean) / std, as BinaryNet does, so both models start from uint8 pixels."""

    def __init__(self, arch: Architecture):
        super().__init__()
        self.register_buffer("mean", torch.tensor(arch.input.mean).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(arch.input.std).view(1, -1, 1, 1))

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return (pixels.float() / 255.0 - self.mean) / self.std


def float_twin(arch: Architecture) -> nn.Module:
    """Plain float network with the layer shapes of ``arch``."""
    layers: list[nn.Module] = [Normalize(arch)]
    for spec in arch.layers:
        kind = spec["kind"]
        if kind in ("conv", "linear") and spec["binarize_input"]:
            layers.append(nn.Hardtanh())
        if kind == "conv":
            layers.append(nn.Conv2d(spec["in_channels"], spec["out_channels"], spec["kernel"],
                                    stride=spec["stride"], padding=spec["padding"], bias=False))
        elif kind == "linear":
            layers.append(nn.Linear(spec["in_features"], spec["out_features"], bias=False))
        elif kind == "batchnorm":
            prev = next(m for m in reversed(layers) if isinstance(m, (nn.Conv2d, nn.Linear)))
            layers.append((nn.BatchNorm2d if isinstance(prev, nn.Conv2d) else nn.BatchNorm1d)(spec["channels"]))
        elif kind == "maxpool":
            layers.append(nn.MaxPool2d(spec["kernel"], spec["stride"]))
        elif kind == "flatten":
            layers.append(nn.Flatten())
        elif kind == "dropout":
            layers.append(nn.Dropout(spec["p"]))
    return nn.Sequential(*layers)


def images_per_second(model: nn.Module, x: torch.Tensor, y: torch.Tensor, seconds: float) -> float:
    optimizer = torch.optim.Adam(model.parameters())
    loss_fn = nn.CrossEntropyLoss()

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        loss_fn(model(x), y).backward()
        optimizer.step()

    step()  # warm-up
    steps, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds or steps < 2:
        step()
        steps += 1
    return steps * len(x) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--seconds", type=float, default=4.0, help="per measurement")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--models", default=",".join(INPUTS))
    parser.add_argument("--scale", default="none", choices=[m.value for m in ScaleMode])
    args = parser.parse_args()
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, batch {args.batch_size}, "
          f"scale {args.scale}")
    print("| model | binary img/s | float img/s | overhead |\n|---|---:|---:|---:|")
    for name in args.models.split(","):
        shape = INPUTS[name]
        arch = make_architecture(name, input_shape=shape, num_classes=10, mean=(0.5,) * shape[0],
                                 std=(0.25,) * shape[0], options=ModelOptions(scale=ScaleMode(args.scale)))
        binary, plain = BinaryNet(arch).train(), float_twin(arch).train()
        x = torch.randint(0, 256, (args.batch_size, *shape), dtype=torch.uint8)
        y = torch.randint(0, 10, (args.batch_size,))
        b_rates, f_rates = [], []
        for _ in range(args.rounds):
            b_rates.append(images_per_second(binary, x, y, args.seconds))
            f_rates.append(images_per_second(plain, x, y, args.seconds))
        b, f = statistics.median(b_rates), statistics.median(f_rates)
        print(f"| {name} | {b:,.0f} | {f:,.0f} | {f / b:.2f}x |", flush=True)


if __name__ == "__main__":
    main()
