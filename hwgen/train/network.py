"""Turn an :class:`~hwgen.train.architecture.Architecture` into a PyTorch module.

``BinaryNet(arch)(pixels)`` computes class scores (N, num_classes) from uint8
(or float 0..255) pixels (N, C, H, W):
``x = (pixels / 255 - mean) / std``, then every layer spec in order, each on
the output of the spec(s) it reads (for a chain: the previous one). State
dict keys are ``layers.<layer name>.<param>`` plus the input buffers
``input_mean`` / ``input_std``.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from typing import Any

import torch
from torch import nn

from hwgen.train.architecture import ARCH_INPUT, Architecture, output_shape, spec_inputs
from hwgen.train.checkpoint import Checkpoint, load_checkpoint, load_state_into
from hwgen.train.layers import BinaryConv2d, BinaryLinear
from hwgen.train.quantizers import Estimator
from hwgen.train.residual import Residual
from hwgen.train.scales import ActScaleMode, ScaleMode


def _quant_kwargs(spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "weight_bits": int(spec["weight_bits"]),
        "binarize_input": bool(spec["binarize_input"]),
        "estimator": Estimator(spec["estimator"]),
        "weight_estimator": Estimator(spec["weight_estimator"]),
        "scale_mode": ScaleMode(spec["scale"]),
        "act_scale_mode": ActScaleMode(spec["act_scale"]),
    }


def build_layer(spec: dict[str, Any], in_shape: tuple[int, ...]) -> nn.Module:
    """One module for one layer spec; ``in_shape`` is the per-sample input shape."""
    kind = spec["kind"]
    if kind == "conv":
        return BinaryConv2d(
            spec["in_channels"], spec["out_channels"], spec["kernel"],
            in_hw=tuple(spec["in_hw"]), stride=spec["stride"], padding=spec["padding"],
            **_quant_kwargs(spec),
        )
    if kind == "linear":
        return BinaryLinear(spec["in_features"], spec["out_features"], **_quant_kwargs(spec))
    if kind == "batchnorm":
        eps = float(spec.get("eps", 1e-5))
        bn = nn.BatchNorm2d if len(in_shape) == 3 else nn.BatchNorm1d
        return bn(spec["channels"], eps=eps)
    if kind == "maxpool":
        return nn.MaxPool2d(spec["kernel"], spec["stride"])
    if kind == "flatten":
        return nn.Flatten()
    if kind == "dropout":
        return nn.Dropout(spec["p"])
    if kind == "residual":
        return Residual(spec["channels"], shortcut=spec["shortcut"], estimator=Estimator(spec["estimator"]))
    raise ValueError(f"unknown layer kind {kind!r}")  # validated earlier


class BinaryNet(nn.Module):
    """The PyTorch model of an architecture (training and the float reference)."""

    def __init__(self, arch: Architecture):
        super().__init__()
        self.arch = arch
        self.register_buffer("input_mean", torch.tensor(arch.input.mean).view(1, -1, 1, 1))
        self.register_buffer("input_std", torch.tensor(arch.input.std).view(1, -1, 1, 1))
        modules: OrderedDict[str, nn.Module] = OrderedDict()
        shapes: dict[str, tuple[int, ...]] = {ARCH_INPUT: arch.input.shape}
        self.inputs = spec_inputs(arch)
        for spec, inputs in zip(arch.layers, self.inputs):
            shape = shapes[inputs[0]]
            modules[spec["name"]] = build_layer(spec, shape)
            shapes[spec["name"]] = shape if spec["kind"] == "residual" else output_shape(spec, shape)
        self.layers = nn.Sequential(modules)
        self.graph = arch.is_graph

    def normalize(self, pixels: torch.Tensor) -> torch.Tensor:
        """(pixels / 255 - mean) / std in float32, evaluated as (pixels - 255 mean) / (255 std).

        With an integer pixel mean 255 * mean (see ``hardware_normalization``)
        the subtraction is exact, so the only rounding is one division.
        """
        return (pixels.float() - 255.0 * self.input_mean) / (255.0 * self.input_std)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        x = self.normalize(pixels)
        if not self.graph:
            return self.layers(x)
        values = {ARCH_INPUT: x}
        for (name, module), inputs in zip(self.layers.named_children(), self.inputs):
            x = values[name] = module(*(values[n] for n in inputs))
        return x

    def weight_layers(self) -> list[nn.Module]:
        return [m for m in self.layers if isinstance(m, (BinaryConv2d, BinaryLinear))]

    def set_binary_weights(self, enabled: bool) -> None:
        """Stage switch of the two-stage schedule: False trains real weights with binary activations."""
        for layer in self.weight_layers():
            layer.binary_weights = enabled

    def clip_latent_weights(self) -> None:
        """Clamp the real latent weights of binary-weight layers to [-1, 1] (BinaryConnect)."""
        with torch.no_grad():
            for layer in self.weight_layers():
                if layer.weight_bits == 1:
                    layer.weight.clamp_(-1.0, 1.0)


def load_model(path: str | os.PathLike, device: str | torch.device = "cpu") -> tuple[BinaryNet, Checkpoint]:
    """The eval-mode model stored in checkpoint ``path``, and the checkpoint itself."""
    ckpt = load_checkpoint(path)
    return model_from_checkpoint(ckpt, str(path), device), ckpt


def model_from_checkpoint(ckpt: Checkpoint, source: str, device: str | torch.device = "cpu") -> BinaryNet:
    """The eval-mode model of an already loaded checkpoint (``source`` names it in errors)."""
    model = BinaryNet(ckpt.architecture)
    load_state_into(model, ckpt.model_state, source)
    return model.to(device).eval()
