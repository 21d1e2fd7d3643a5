"""Zoo architectures: layer lists from the literature, JSON round trip, shape checks."""

from __future__ import annotations

import json

import pytest
import torch

from hwgen.errors import ConfigError
from hwgen.train.architecture import Architecture, hardware_normalization
from hwgen.train.network import BinaryNet
from hwgen.train.scales import ScaleMode
from hwgen.train.zoo import MODELS, ModelOptions, make_architecture, parse_precision

CIFAR = dict(input_shape=(3, 32, 32), num_classes=10, mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25))
MNIST = dict(input_shape=(1, 28, 28), num_classes=10, mean=(0.13,), std=(0.31,))


def weight_layers(arch: Architecture) -> list[dict]:
    return [layer for layer in arch.layers if layer["kind"] in ("conv", "linear")]


def test_vgg_small_matches_the_literature() -> None:
    arch = make_architecture("vgg_small", **CIFAR)
    convs = [(l["in_channels"], l["out_channels"], l["padding"]) for l in weight_layers(arch) if l["kind"] == "conv"]
    assert convs == [(3, 128, 1), (128, 128, 1), (128, 256, 1), (256, 256, 1), (256, 512, 1), (512, 512, 1)]
    fc = weight_layers(arch)[-1]
    assert (fc["in_features"], fc["out_features"]) == (8192, 10)
    kinds = [l["kind"] for l in arch.layers]
    # pool after the 2nd, 4th and 6th conv, each pool before its BatchNorm
    pools = [i for i, k in enumerate(kinds) if k == "maxpool"]
    assert [kinds[i - 1] for i in pools] == ["conv"] * 3 and [kinds[i + 1] for i in pools] == ["batchnorm"] * 3
    assert [weight_layers(arch)[i]["name"] for i in (1, 3, 5)] == [arch.layers[i - 1]["name"] for i in pools]
    bits = [l["weight_bits"] for l in weight_layers(arch)]
    assert bits == [8, 1, 1, 1, 1, 1, 8]
    assert [l["binarize_input"] for l in weight_layers(arch)] == [False] + [True] * 6
    binary_weights = sum(l["in_channels"] * l["out_channels"] * 9 for l in weight_layers(arch)[1:6])
    assert binary_weights == 4_571_136  # the 4.4 Mbit DESIGN.md quotes (hidden convs)


def test_vgg_small_width_multiplier() -> None:
    arch = make_architecture("vgg_small", **CIFAR, options=ModelOptions(width=0.25))
    assert [l["out_channels"] for l in weight_layers(arch)[:-1]] == [32, 32, 64, 64, 128, 128]
    assert weight_layers(arch)[-1]["in_features"] == 128 * 16


def test_cnv_matches_finn() -> None:
    arch = make_architecture("cnv", **CIFAR)
    wl = weight_layers(arch)
    assert [l.get("out_channels", l.get("out_features")) for l in wl] == [64, 64, 128, 128, 256, 256, 512, 512, 10]
    assert all(l["padding"] == 0 for l in wl if l["kind"] == "conv")
    assert wl[6]["in_features"] == 256  # 32 -> 30 -> 28 -> 14 -> 12 -> 10 -> 5 -> 3 -> 1
    assert [l["weight_bits"] for l in wl] == [1] * 9
    assert wl[0]["binarize_input"] is False


@pytest.mark.parametrize("model,hidden", [("tfc", 64), ("sfc", 256), ("lfc", 1024)])
def test_fc_models(model: str, hidden: int) -> None:
    wl = weight_layers(make_architecture(model, **MNIST))
    assert [(l["in_features"], l["out_features"]) for l in wl] == [(784, hidden), (hidden, hidden),
                                                                   (hidden, hidden), (hidden, 10)]


def test_scale_mode_only_on_binary_weight_layers() -> None:
    arch = make_architecture("vgg_small", **CIFAR, options=ModelOptions(scale=ScaleMode.GAMMA_ELEMENT))
    assert [l["scale"] for l in weight_layers(arch)] == ["none"] + ["gamma_element"] * 5 + ["none"]


@pytest.mark.parametrize("model,data", [(m, MNIST if m in ("tfc", "sfc", "lfc") else CIFAR) for m in MODELS])
def test_json_round_trip_and_forward(model: str, data: dict) -> None:
    arch = make_architecture(model, **data, options=ModelOptions(width=0.25))
    again = Architecture.from_json(arch.to_json())
    assert again == arch
    json.loads(arch.to_json())  # plain JSON
    net = BinaryNet(again).eval()
    out = net(torch.randint(0, 256, (2, *data["input_shape"]), dtype=torch.uint8))
    assert out.shape == (2, 10)


def test_cnv_does_not_fit_mnist() -> None:
    with pytest.raises(ConfigError, match="empty output|expects"):
        make_architecture("cnv", **MNIST)


def test_bad_options_name_the_value() -> None:
    with pytest.raises(ConfigError, match="'alexnet'"):  # not in the zoo ("resnet" is, since issue 14)
        make_architecture("alexnet", **CIFAR)
    with pytest.raises(ConfigError, match="-1"):
        make_architecture("cnv", **CIFAR, options=ModelOptions(width=-1))
    with pytest.raises(ConfigError, match="int99"):
        parse_precision("int99")
    assert [parse_precision(p) for p in ("float", "int8", "int4", "binary")] == [32, 8, 4, 1]


def test_from_dict_rejects_bad_architectures() -> None:
    good = make_architecture("tfc", **MNIST).to_dict()
    with pytest.raises(ConfigError, match="version"):
        Architecture.from_dict({**good, "version": 99})
    bad_layer = {**good, "layers": good["layers"] + [{"kind": "softmax", "name": "sm"}]}
    with pytest.raises(ConfigError, match="softmax"):
        Architecture.from_dict(bad_layer)
    wrong_shape = {**good, "layers": [dict(good["layers"][0])] + good["layers"][2:]}
    wrong_shape["layers"][1]["in_features"] = 123
    with pytest.raises(ConfigError, match="123"):
        Architecture.from_dict(wrong_shape)


def test_hardware_normalization_is_integer_pixel_offset_and_shared_std() -> None:
    mean, std = hardware_normalization((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616))
    assert [255 * m for m in mean] == pytest.approx([125, 123, 114], abs=1e-9)
    assert std == pytest.approx((0.2507,) * 3, abs=1e-4)
    net = BinaryNet(make_architecture("cnv", **{**CIFAR, "mean": mean, "std": std}))
    pixels = torch.arange(256, dtype=torch.uint8).repeat(3, 1).view(1, 3, 16, 16).repeat(1, 1, 2, 2)
    expected = (pixels.double() - torch.tensor([125.0, 123.0, 114.0]).view(1, 3, 1, 1)) / (255 * std[0])
    assert torch.allclose(net.normalize(pixels).double(), expected, rtol=1e-6, atol=0)
