"""Tiny Brevitas networks in the style of brevitas_examples.bnn_pynq, with randomised weights and statistics.

:func:`tiny_net` builds a CNV-like (conv) or FC-like network from bnn_pynq's
own quantizers (``CommonWeightQuant``, ``CommonActQuant``): the input is
``2x - 1`` quantised to 8 bits (CNV's Q1.7 ``QuantIdentity``) or to 1 bit
(the FC networks'), binary weights (or k-bit on the first / last layer),
BatchNorm with randomised statistics (gammas negative, zero and positive),
bipolar activations, optional 2x2 max-pools after the activation, and a
``TensorNorm`` on the scores. :func:`export` writes QONNX with Brevitas's
``export_qonnx`` (dynamo exporter by default, TorchScript with ``dynamo=False``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn


def _randomise_bn(bn: nn.Module, gen: torch.Generator) -> None:
    c = bn.num_features
    gamma = torch.randn(c, generator=gen)
    gamma[torch.rand(c, generator=gen) < 0.2] = 0.0
    with torch.no_grad():
        bn.weight.copy_(gamma)
        bn.bias.copy_(torch.randn(c, generator=gen) * 2)
        bn.running_mean.copy_(torch.randn(c, generator=gen) * 3)
        bn.running_var.copy_(torch.rand(c, generator=gen) * 4 + 0.1)


class TinyNet(nn.Module):
    """``2x - 1`` -> input quantizer -> blocks -> flatten -> FC -> TensorNorm (bnn_pynq's forward)."""

    def __init__(self, features: nn.ModuleList, classifier: nn.ModuleList) -> None:
        super().__init__()
        self.features, self.classifier = features, classifier

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = 2.0 * x - torch.tensor([1.0])
        for mod in self.features:
            x = mod(x)
        x = x.reshape(x.shape[0], -1)
        for mod in self.classifier:
            x = mod(x)
        return x


def tiny_net(*, seed: int, in_shape: tuple[int, int, int], convs: list[dict], hidden: list[int], classes: int,
             input_bits: int = 8, first_bits: int = 1, last_bits: int = 1, negative_tensor_norm: bool = False
             ) -> TinyNet:
    """``convs``: dicts with ``out``, ``kernel``, ``padding``, ``pool`` (bool); ``hidden``: FC widths."""
    from brevitas.core.restrict_val import RestrictValueType
    from brevitas.nn import QuantConv2d, QuantIdentity, QuantLinear
    from brevitas_examples.bnn_pynq.models.common import CommonActQuant, CommonWeightQuant
    from brevitas_examples.bnn_pynq.models.tensor_norm import TensorNorm

    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    if input_bits == 8:
        inq = QuantIdentity(act_quant=CommonActQuant, bit_width=8, min_val=-1.0, max_val=1.0 - 2.0 ** -7,
                            narrow_range=False, restrict_scaling_type=RestrictValueType.POWER_OF_TWO)
    else:
        inq = QuantIdentity(act_quant=CommonActQuant, bit_width=1)
    features = nn.ModuleList([inq])
    c, h, w = in_shape
    n_weight = len(convs) + len(hidden) + 1
    k = 0

    def wbits() -> int:
        return first_bits if k == 0 else last_bits if k == n_weight - 1 else 1

    for spec in convs:
        conv = QuantConv2d(c, spec["out"], kernel_size=spec["kernel"], padding=spec["padding"], bias=False,
                           weight_quant=CommonWeightQuant, weight_bit_width=wbits())
        bn = nn.BatchNorm2d(spec["out"], eps=1e-4)
        features += [conv, bn, QuantIdentity(act_quant=CommonActQuant, bit_width=1)]
        grow = 2 * spec["padding"] - spec["kernel"] + 1
        c, h, w = spec["out"], h + grow, w + grow
        if spec.get("pool") and h >= 2 and w >= 2:
            features.append(nn.MaxPool2d(2))
            h, w = h // 2, w // 2
        k += 1
    classifier = nn.ModuleList()
    f = c * h * w
    for out in hidden:
        classifier += [QuantLinear(f, out, bias=False, weight_quant=CommonWeightQuant, weight_bit_width=wbits()),
                       nn.BatchNorm1d(out, eps=1e-4), QuantIdentity(act_quant=CommonActQuant, bit_width=1)]
        f = out
        k += 1
    classifier += [QuantLinear(f, classes, bias=False, weight_quant=CommonWeightQuant, weight_bit_width=wbits()),
                   TensorNorm()]
    net = TinyNet(features, classifier)
    for mod in net.modules():
        if isinstance(mod, (QuantConv2d, QuantLinear)):
            with torch.no_grad():
                mod.weight.uniform_(-1, 1, generator=gen)
        if isinstance(mod, (nn.BatchNorm1d, nn.BatchNorm2d)):
            _randomise_bn(mod, gen)
        if isinstance(mod, TensorNorm):
            with torch.no_grad():
                mod.weight.fill_(-0.7 if negative_tensor_norm else 1.3)
                mod.bias.fill_(0.25)
                mod.running_mean.fill_(0.5)
                mod.running_var.fill_(2.0)
    return net.eval()


def export(net: nn.Module, in_shape: tuple[int, int, int], path: Path, *, dynamo: bool = True) -> Path:
    """Brevitas's export_qonnx of ``net`` to ``path`` (returns it)."""
    from brevitas.export import export_qonnx

    export_qonnx(net, torch.rand(1, *in_shape), export_path=str(path), dynamo=dynamo)
    return path


def torch_scores(net: nn.Module, images: np.ndarray) -> np.ndarray:
    """The Brevitas model's own float scores on uint8 images (input v / 255)."""
    with torch.no_grad():
        return net(torch.from_numpy(images).float() / 255).numpy()
