"""Output and activation scales (hwgen.train.scales)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from hwgen.errors import ConfigError
from hwgen.train.scales import (
    ActScaleMode,
    ScaleMode,
    make_activation_scale,
    make_output_scale,
    weight_scale_l2,
)

C, H, W = 4, 5, 6

# mode -> expected {parameter name: shape} for a conv (out_hw = (H, W)) and a linear layer
CONV_PARAMS = {
    ScaleMode.NONE: {},
    ScaleMode.XNOR: {},
    ScaleMode.GAMMA_CHANNEL: {"gamma": (C,)},
    ScaleMode.GAMMA_ELEMENT: {"gamma": (C, H, W)},
    ScaleMode.GAMMA_CHANNEL_SPATIAL: {"alpha": (C,), "beta": (H, W)},
    ScaleMode.GAMMA_FACTORISED: {"alpha": (C,), "beta": (H,), "gamma": (W,)},
    ScaleMode.TRAINED: {"alpha": (C,)},
}
LINEAR_PARAMS = {
    ScaleMode.NONE: {},
    ScaleMode.XNOR: {},
    ScaleMode.GAMMA_CHANNEL: {"gamma": (C,)},
    ScaleMode.GAMMA_ELEMENT: {"gamma": (C,)},
    ScaleMode.GAMMA_CHANNEL_SPATIAL: {"alpha": (C,)},
    ScaleMode.GAMMA_FACTORISED: {"alpha": (C,)},
    ScaleMode.TRAINED: {"alpha": (C,)},
}
SPATIAL_MODES = {
    ScaleMode.GAMMA_ELEMENT,
    ScaleMode.GAMMA_CHANNEL_SPATIAL,
    ScaleMode.GAMMA_FACTORISED,
}


def conv_weight() -> torch.Tensor:
    torch.manual_seed(0)
    return torch.randn(C, 3, 3, 3)


def linear_weight() -> torch.Tensor:
    torch.manual_seed(0)
    return torch.randn(C, 7)


def mean_abs(weight: torch.Tensor) -> torch.Tensor:
    return torch.stack([weight[c].abs().mean() for c in range(weight.shape[0])])


@pytest.mark.parametrize("mode", list(ScaleMode))
def test_conv_parameter_shapes(mode: ScaleMode) -> None:
    scale = make_output_scale(mode, C, (H, W), conv_weight())
    shapes = {name: tuple(p.shape) for name, p in scale.named_parameters()}
    assert shapes == CONV_PARAMS[mode]


@pytest.mark.parametrize("mode", list(ScaleMode))
def test_linear_parameter_shapes(mode: ScaleMode) -> None:
    scale = make_output_scale(mode, C, None, linear_weight())
    shapes = {name: tuple(p.shape) for name, p in scale.named_parameters()}
    assert shapes == LINEAR_PARAMS[mode]


@pytest.mark.parametrize("mode", list(ScaleMode))
def test_factor_shape_and_init(mode: ScaleMode) -> None:
    wc, wl = conv_weight(), linear_weight()
    conv = make_output_scale(mode, C, (H, W), wc)
    lin = make_output_scale(mode, C, None, wl)
    fc, fl = conv.factor(wc), lin.factor(wl)
    assert tuple(fc.shape) == ((C, H, W) if mode in SPATIAL_MODES else (C, 1, 1))
    assert tuple(fl.shape) == (C,)
    if mode in (ScaleMode.XNOR, ScaleMode.TRAINED):
        torch.testing.assert_close(fc.reshape(C), mean_abs(wc))
        torch.testing.assert_close(fl, mean_abs(wl))
    else:
        assert torch.equal(fc, torch.ones_like(fc)) and torch.equal(
            fl, torch.ones_like(fl)
        )


@pytest.mark.parametrize("mode", list(ScaleMode))
@pytest.mark.parametrize("spatial", [True, False])
def test_forward_is_y_times_factor_and_gradients_reach_parameters(
    mode: ScaleMode, spatial: bool
) -> None:
    weight = (conv_weight() if spatial else linear_weight()).requires_grad_(True)
    scale = make_output_scale(mode, C, (H, W) if spatial else None, weight.detach())
    with torch.no_grad():  # move off the init so every factor entry differs
        for p in scale.parameters():
            p.add_(torch.rand_like(p))
    y = torch.randn((2, C, H, W) if spatial else (2, C), requires_grad=True)
    out = scale(y, weight)
    torch.testing.assert_close(out, y * scale.factor(weight))
    (out * torch.randn_like(out)).sum().backward()
    for name, p in scale.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
    if mode is ScaleMode.XNOR:
        assert weight.grad is not None and weight.grad.abs().sum() > 0
    else:
        assert weight.grad is None


def test_xnor_tracks_current_weight() -> None:
    w = conv_weight()
    scale = make_output_scale(ScaleMode.XNOR, C, (H, W), w)
    w2 = w * 3
    torch.testing.assert_close(scale.factor(w2).reshape(C), mean_abs(w2))


def test_trained_init_is_a_copy() -> None:
    w = conv_weight()
    scale = make_output_scale(ScaleMode.TRAINED, C, (H, W), w)
    w.mul_(2)
    torch.testing.assert_close(scale.alpha.detach(), mean_abs(w / 2))


def test_case3_and_case4_factor_values() -> None:
    w = conv_weight()
    s3 = make_output_scale(ScaleMode.GAMMA_CHANNEL_SPATIAL, C, (H, W), w)
    s4 = make_output_scale(ScaleMode.GAMMA_FACTORISED, C, (H, W), w)
    with torch.no_grad():
        for p in [*s3.parameters(), *s4.parameters()]:
            p.copy_(torch.randn_like(p))
    f3, f4 = s3.factor(w), s4.factor(w)
    for c, h, x in [(0, 0, 0), (3, 4, 5), (1, 2, 3)]:
        torch.testing.assert_close(f3[c, h, x], s3.alpha[c] * s3.beta[h, x])
        torch.testing.assert_close(f4[c, h, x], s4.alpha[c] * s4.beta[h] * s4.gamma[x])


@pytest.mark.parametrize("mode", [ActScaleMode.LAYER, ActScaleMode.CHANNEL])
def test_activation_scale(mode: ActScaleMode) -> None:
    act = make_activation_scale(mode, C)
    assert act is not None
    size = 1 if mode is ActScaleMode.LAYER else C
    assert tuple(act.beta.shape) == (size,)
    assert torch.equal(act.beta.detach(), torch.ones(size))
    with torch.no_grad():
        act.beta.copy_(torch.arange(1.0, size + 1))
    for y in (torch.randn(2, C, H, W), torch.randn(2, C)):
        out = act(y)
        expected = y * act.beta.detach().view(-1, *([1] * (y.dim() - 2)))
        torch.testing.assert_close(out, expected)
        act.beta.grad = None
        out.sum().backward()
        assert act.beta.grad is not None and act.beta.grad.shape == (size,)


def test_activation_scale_none() -> None:
    assert make_activation_scale(ActScaleMode.NONE, C) is None
    assert make_activation_scale("none", C) is None


def test_weight_scale_l2_sums_alpha_squared() -> None:
    w = conv_weight()
    model = nn.ModuleList(
        [
            make_output_scale(ScaleMode.TRAINED, C, (H, W), w),
            make_output_scale(
                ScaleMode.GAMMA_CHANNEL_SPATIAL, C, (H, W), w
            ),  # its alpha is not TRAINED
            nn.Sequential(
                make_output_scale(ScaleMode.TRAINED, C, None, linear_weight())
            ),
        ]
    )
    with torch.no_grad():
        model[0].alpha.copy_(torch.tensor([1.0, 2.0, 3.0, 4.0]))
        model[2][0].alpha.copy_(torch.tensor([0.5, -0.5, 1.0, 0.0]))
    penalty = weight_scale_l2(model)
    assert penalty.dim() == 0
    torch.testing.assert_close(penalty, torch.tensor(30.0 + 1.5))
    penalty.backward()
    torch.testing.assert_close(model[0].alpha.grad, 2 * model[0].alpha.detach())


def test_weight_scale_l2_zero_without_trained() -> None:
    penalty = weight_scale_l2(nn.Linear(2, 2))
    assert penalty.dim() == 0 and penalty.item() == 0.0
    assert weight_scale_l2(nn.ReLU()).item() == 0.0


def test_string_modes_accepted() -> None:
    scale = make_output_scale("gamma_channel", C, (H, W), conv_weight())
    assert tuple(scale.gamma.shape) == (C,)


@pytest.mark.parametrize(
    ("args", "bad"),
    [
        (("gamma_pixel", C, (H, W)), "'gamma_pixel'"),
        ((ScaleMode.XNOR, 0, (H, W)), "0"),
        ((ScaleMode.XNOR, C, (H, 0)), "0"),
        ((ScaleMode.XNOR, C, (H,)), r"\(5,\)"),
        ((ScaleMode.XNOR, 3, (H, W)), "out_channels=3"),
    ],
)
def test_bad_output_scale_arguments(args: tuple, bad: str) -> None:
    with pytest.raises(ConfigError, match=bad):
        make_output_scale(*args, conv_weight())


def test_bad_activation_scale_mode() -> None:
    with pytest.raises(ConfigError, match="'pixel'"):
        make_activation_scale("pixel", C)  # type: ignore[arg-type]
