"""Binary conv / linear layers (hwgen.train.layers)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from hwgen.errors import ConfigError
from hwgen.train.layers import BinaryConv2d, BinaryLinear
from hwgen.train.quantizers import Estimator, kbit_weight_scale
from hwgen.train.scales import ActScaleMode, ScaleMode, weight_scale_l2


def bipolar(t: torch.Tensor) -> torch.Tensor:
    """sign with sign(0) = +1, written independently of the code under test."""
    return torch.where(t >= 0, torch.ones_like(t), -torch.ones_like(t))


def with_zeros(t: torch.Tensor) -> torch.Tensor:
    """Set every 5th element to exactly 0 so that sign(0) is exercised."""
    flat = t.detach().clone().reshape(-1)
    flat[::5] = 0.0
    return flat.reshape(t.shape)


@pytest.mark.parametrize(("stride", "padding"), [(1, 0), (1, 1), (2, 1), (2, 0)])
def test_conv_matches_reference(stride: int, padding: int) -> None:
    torch.manual_seed(stride * 10 + padding)
    layer = BinaryConv2d(3, 5, 3, in_hw=(7, 8), stride=stride, padding=padding)
    with torch.no_grad():
        layer.weight.copy_(with_zeros(layer.weight))
    x = with_zeros(torch.randn(2, 3, 7, 8))
    out = layer(x)
    ref = F.conv2d(
        bipolar(x), bipolar(layer.weight.detach()), stride=stride, padding=padding
    )
    assert torch.equal(out, ref)
    assert out.shape[-2:] == layer.out_hw
    assert torch.equal(out, torch.round(out))  # integer-valued


def explicit_conv(x: torch.Tensor, w: torch.Tensor, padding: int) -> torch.Tensor:
    """Stride-1 convolution by loops: out-of-bounds taps contribute nothing."""
    n, cin, h, wd = x.shape
    cout, _, k, _ = w.shape
    ho, wo = h + 2 * padding - k + 1, wd + 2 * padding - k + 1
    out = torch.zeros(n, cout, ho, wo)
    for b in range(n):
        for co in range(cout):
            for i in range(ho):
                for j in range(wo):
                    acc = 0.0
                    for ci in range(cin):
                        for di in range(k):
                            for dj in range(k):
                                r, c = i + di - padding, j + dj - padding
                                if 0 <= r < h and 0 <= c < wd:
                                    acc += float(x[b, ci, r, c] * w[co, ci, di, dj])
                    out[b, co, i, j] = acc
    return out


def test_zero_padding_against_loops() -> None:
    torch.manual_seed(3)
    layer = BinaryConv2d(2, 3, 3, in_hw=(4, 5), padding=1)
    x = bipolar(torch.randn(1, 2, 4, 5))
    out = layer(x)
    wb = bipolar(layer.weight.detach())
    assert torch.equal(out, explicit_conv(x, wb, padding=1))
    # top-left corner: only the 2x2 in-bounds taps (kernel rows/cols 1..2) count
    corner = (x[0, :, :2, :2] * wb[:, :, 1:, 1:]).sum(dim=(1, 2, 3))
    assert torch.equal(out[0, :, 0, 0], corner)
    # all-ones input and weights: a corner sums 4 taps per channel, the centre 9
    with torch.no_grad():
        layer.weight.fill_(0.5)
    ones = layer(torch.ones(1, 2, 4, 5))
    assert ones[0, 0, 0, 0] == 2 * 4 and ones[0, 0, 1, 1] == 2 * 9


def test_stage1_uses_real_weights() -> None:
    torch.manual_seed(4)
    layer = BinaryConv2d(3, 4, 3, in_hw=(6, 6), padding=1)
    layer.binary_weights = False
    x = torch.randn(2, 3, 6, 6)
    ref = F.conv2d(bipolar(x), layer.weight.detach(), padding=1)
    torch.testing.assert_close(layer(x), ref)
    assert torch.equal(layer.quantized_weight(), layer.weight.detach())
    layer.binary_weights = True
    assert torch.equal(layer.quantized_weight(), bipolar(layer.weight.detach()))


def test_real_input_and_float_weights() -> None:
    torch.manual_seed(5)
    layer = BinaryConv2d(3, 4, 3, in_hw=(6, 6), binarize_input=False, weight_bits=32)
    x = torch.randn(2, 3, 6, 6)
    torch.testing.assert_close(layer(x), F.conv2d(x, layer.weight.detach()))


def test_kbit_weights() -> None:
    torch.manual_seed(6)
    layer = BinaryConv2d(3, 4, 3, in_hw=(5, 5), weight_bits=8, binarize_input=False)
    w_q = layer.quantized_weight()
    s = kbit_weight_scale(layer.weight, 8).view(-1, 1, 1, 1)
    q = torch.round(w_q / s)
    assert q.abs().max() == 127
    torch.testing.assert_close(w_q, q * s)
    x = torch.randn(1, 3, 5, 5)
    torch.testing.assert_close(layer(x), F.conv2d(x, w_q))


@pytest.mark.parametrize("estimator", list(Estimator))
def test_gradients_reach_weight_and_input(estimator: Estimator) -> None:
    torch.manual_seed(7)
    layer = BinaryConv2d(
        3,
        4,
        3,
        in_hw=(6, 6),
        padding=1,
        estimator=estimator,
        weight_estimator=estimator,
        scale_mode=ScaleMode.GAMMA_ELEMENT,
        act_scale_mode=ActScaleMode.CHANNEL,
    )
    x = (0.5 * torch.randn(2, 3, 6, 6)).requires_grad_(True)
    layer(x).square().sum().backward()
    for name, p in layer.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_state_dict_names() -> None:
    conv = BinaryConv2d(
        3,
        4,
        3,
        in_hw=(6, 6),
        scale_mode=ScaleMode.GAMMA_FACTORISED,
        act_scale_mode=ActScaleMode.LAYER,
    )
    shapes = {k: tuple(v.shape) for k, v in conv.state_dict().items()}
    assert shapes == {
        "weight": (4, 3, 3, 3),
        "scale.alpha": (4,),
        "scale.beta": (4,),
        "scale.gamma": (4,),
        "act_scale.beta": (1,),
    }
    lin = BinaryLinear(10, 3, scale_mode=ScaleMode.TRAINED)
    shapes = {k: tuple(v.shape) for k, v in lin.state_dict().items()}
    assert shapes == {"weight": (3, 10), "scale.alpha": (3,)}
    assert lin.act_scale is None


def test_scaled_conv_output() -> None:
    torch.manual_seed(8)
    layer = BinaryConv2d(
        3,
        4,
        3,
        in_hw=(5, 5),
        scale_mode=ScaleMode.XNOR,
        act_scale_mode=ActScaleMode.CHANNEL,
    )
    with torch.no_grad():
        layer.act_scale.beta.copy_(torch.tensor([1.0, 2.0, -1.0, 0.5]))
    x = torch.randn(2, 3, 5, 5)
    w = layer.weight.detach()
    k = w.abs().mean(dim=(1, 2, 3))
    ref = F.conv2d(bipolar(x), bipolar(w)) * (k * layer.act_scale.beta.detach()).view(
        1, -1, 1, 1
    )
    torch.testing.assert_close(layer(x), ref)


def test_linear_matches_reference() -> None:
    torch.manual_seed(9)
    layer = BinaryLinear(12, 5, scale_mode=ScaleMode.GAMMA_CHANNEL)
    with torch.no_grad():
        layer.weight.copy_(with_zeros(layer.weight))
        layer.scale.gamma.copy_(torch.arange(1.0, 6.0))
    x = with_zeros(torch.randn(3, 12))
    ref = F.linear(bipolar(x), bipolar(layer.weight.detach())) * torch.arange(1.0, 6.0)
    assert torch.equal(layer(x), ref)
    layer.binary_weights = False
    torch.testing.assert_close(
        layer(x), F.linear(bipolar(x), layer.weight.detach()) * torch.arange(1.0, 6.0)
    )


@pytest.mark.parametrize(
    ("in_hw", "k", "s", "p", "expected"),
    [
        ((8, 8), 3, 1, 0, (6, 6)),
        ((8, 8), 3, 1, 1, (8, 8)),
        ((9, 7), 3, 2, 1, (5, 4)),
        ((4, 4), 4, 1, 0, (1, 1)),
    ],
)
def test_out_hw(
    in_hw: tuple[int, int], k: int, s: int, p: int, expected: tuple[int, int]
) -> None:
    layer = BinaryConv2d(1, 1, k, in_hw=in_hw, stride=s, padding=p)
    assert layer.out_hw == expected
    assert layer(torch.randn(1, 1, *in_hw)).shape[-2:] == expected


def test_weight_init_like_nn_conv() -> None:
    layer = BinaryConv2d(16, 8, 3, in_hw=(4, 4))
    bound = 1.0 / (16 * 9) ** 0.5  # kaiming_uniform(a=sqrt(5)) bound
    assert layer.weight.abs().max() <= bound
    assert layer.weight.abs().max() > 0.5 * bound


def test_weight_scale_l2_on_layers() -> None:
    model = nn.Sequential(
        BinaryConv2d(3, 4, 3, in_hw=(6, 6), scale_mode=ScaleMode.TRAINED),
        BinaryConv2d(4, 4, 3, in_hw=(4, 4), scale_mode=ScaleMode.GAMMA_CHANNEL),
        nn.Flatten(),
        BinaryLinear(16, 3, scale_mode=ScaleMode.TRAINED),
    )
    expected = model[0].scale.alpha.square().sum() + model[3].scale.alpha.square().sum()
    torch.testing.assert_close(weight_scale_l2(model), expected)
    torch.testing.assert_close(
        model[0].scale.alpha.detach(),
        model[0].weight.detach().abs().mean(dim=(1, 2, 3)),
    )


def test_wrong_input_size_raises() -> None:
    layer = BinaryConv2d(1, 1, 3, in_hw=(6, 6))
    with pytest.raises(ValueError, match="6x6"):
        layer(torch.randn(1, 1, 5, 6))


CONV_ARGS = {"in_channels": 3, "out_channels": 4, "kernel_size": 3, "in_hw": (6, 6)}


@pytest.mark.parametrize(
    ("override", "bad"),
    [
        ({"weight_bits": 0}, "weight_bits must be 1, 2..16 or 32, not 0"),
        ({"weight_bits": 17}, "not 17"),
        ({"weight_bits": 8.0}, "not 8.0"),
        ({"in_channels": 0}, "in_channels .* not 0"),
        ({"out_channels": -2}, "out_channels .* not -2"),
        ({"kernel_size": True}, "kernel_size .* not True"),
        ({"stride": 0}, "stride .* not 0"),
        ({"padding": -1}, "padding .* not -1"),
        ({"in_hw": (6,)}, r"in_hw .* not \(6,\)"),
        ({"in_hw": (0, 6)}, "not 0"),
        ({"kernel_size": 9}, "kernel_size \\(9\\)"),
        ({"binarize_input": 1}, "binarize_input .* not 1"),
        ({"estimator": "sigmoid"}, "'sigmoid'"),
        ({"weight_estimator": "relu"}, "'relu'"),
        ({"scale_mode": "gamma_pixel"}, "'gamma_pixel'"),
        ({"act_scale_mode": "pixel"}, "'pixel'"),
    ],
)
def test_conv_bad_arguments(override: dict, bad: str) -> None:
    with pytest.raises(ConfigError, match=bad):
        BinaryConv2d(**{**CONV_ARGS, **override})


@pytest.mark.parametrize(
    ("override", "bad"),
    [
        ({"in_features": 0}, "in_features .* not 0"),
        ({"weight_bits": 33}, "not 33"),
        ({"scale_mode": "xnorr"}, "'xnorr'"),
    ],
)
def test_linear_bad_arguments(override: dict, bad: str) -> None:
    with pytest.raises(ConfigError, match=bad):
        BinaryLinear(**{"in_features": 4, "out_features": 2, **override})


def test_string_enums_accepted() -> None:
    layer = BinaryConv2d(
        2,
        2,
        3,
        in_hw=(4, 4),
        estimator="tight",
        scale_mode="xnor",
        act_scale_mode="layer",
    )
    assert layer.estimator is Estimator.TIGHT and layer.scale_mode is ScaleMode.XNOR
    assert "tight" in repr(layer)
