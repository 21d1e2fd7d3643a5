"""The compiler against PyTorch and against itself, on randomly generated networks.

Every random network mixes: 1-3 convolutions (kernel 1-3, padding 0-1) with
optional 2x2 max-pools between conv and BatchNorm, optional hidden FC layers,
first-layer weights binary / k-bit on uint8 pixels, last-layer weights binary /
k-bit, every scale mode and activation scale, and BatchNorm gammas drawn
negative, zero and positive. BatchNorm statistics come from running the model
on random data, so thresholds fall inside the accumulator range.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hwgen.compile.artifact import load_network, save_network
from hwgen.compile.compiler import compile_architecture
from hwgen.compile.fold import affine_sign_to_thresholds, flip_negative_channels
from hwgen.compile.golden import run_network
from hwgen.compile.ir import ConvLayer, ThresholdOutput
from hwgen.compile.verify import compare_models
from hwgen.errors import CompileError
from hwgen.train.architecture import Architecture, InputSpec, validate_layers
from hwgen.train.network import BinaryNet
from hwgen.train.scales import ActScaleMode, ScaleMode
from hwgen.train.zoo import make_architecture

SCALES = [m.value for m in ScaleMode]
ACT_SCALES = [m.value for m in ActScaleMode]


@st.composite
def random_networks(draw) -> tuple[Architecture, int]:
    channels = draw(st.sampled_from([1, 3]))
    size = draw(st.integers(5, 9))
    hardware_mean = draw(st.booleans())
    mean = tuple(draw(st.integers(0, 255)) / 255 if hardware_mean else draw(st.floats(0.05, 0.95))
                 for _ in range(channels))
    std = draw(st.floats(0.1, 0.5))
    layers, shape, index = [], (channels, size, size), 0

    def quant(bits: int, first: bool) -> dict:
        return {"weight_bits": bits, "binarize_input": not first, "estimator": "ste", "weight_estimator": "ste",
                "scale": draw(st.sampled_from(SCALES)), "act_scale": draw(st.sampled_from(ACT_SCALES))}

    for i in range(draw(st.integers(1, 3))):
        kernel = draw(st.integers(1, min(3, shape[1])))
        padding = draw(st.integers(0, 1))
        out = draw(st.integers(1, 10))
        bits = draw(st.sampled_from([1, 4, 8])) if i == 0 else 1
        layers.append({"kind": "conv", "name": f"conv{index}", "in_channels": shape[0], "out_channels": out,
                       "kernel": kernel, "stride": 1, "padding": padding, "in_hw": list(shape[1:]),
                       **quant(bits, i == 0)})
        side = shape[1] + 2 * padding - kernel + 1
        shape = (out, side, side)
        if side >= 2 and draw(st.booleans()):
            layers.append({"kind": "maxpool", "name": f"pool{index}", "kernel": 2, "stride": 2})
            shape = (out, side // 2, side // 2)
        layers.append({"kind": "batchnorm", "name": f"bn{index}", "channels": out, "eps": 1e-5})
        index += 1
    layers.append({"kind": "flatten", "name": "flatten"})
    features = shape[0] * shape[1] * shape[2]
    for _ in range(draw(st.integers(0, 1))):
        out = draw(st.integers(2, 12))
        layers += [{"kind": "linear", "name": f"fc{index}", "in_features": features, "out_features": out,
                    **quant(1, False)},
                   {"kind": "batchnorm", "name": f"bn{index}", "channels": out, "eps": 1e-5}]
        features, index = out, index + 1
    classes = draw(st.integers(2, 6))
    layers.append({"kind": "linear", "name": f"fc{index}", "in_features": features, "out_features": classes,
                   **quant(draw(st.sampled_from([1, 8])), False)})
    if draw(st.booleans()):
        layers.append({"kind": "batchnorm", "name": f"bn{index}", "channels": classes, "eps": 1e-5})
    arch = Architecture(name="random", input=InputSpec((channels, size, size), mean, (std,) * channels),
                        num_classes=classes, layers=tuple(layers))
    validate_layers(arch)
    return arch, draw(st.integers(0, 2**31 - 1))


def randomized_model(arch: Architecture, seed: int) -> BinaryNet:
    """A model with random weights and scales, BN statistics from random data, mixed-sign BN gammas."""
    torch.manual_seed(seed)
    model = BinaryNet(arch)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if ".scale." in name or ".act_scale." in name:
                param.copy_(torch.randn_like(param))  # negative scales included
        for module in model.modules():
            if isinstance(module, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
                module.momentum = None  # cumulative average over the calibration batches
        model.train()
        for _ in range(2):
            model(torch.randint(0, 256, (64, *arch.input.shape), dtype=torch.uint8))
        norms = [m for m in model.modules() if isinstance(m, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d))]
        for module in norms:
            gamma = torch.randn(module.num_features)
            if module is not norms[-1]:  # all-zero class slopes are a model the compiler refuses (CompileError)
                gamma[torch.rand(module.num_features) < 0.15] = 0.0  # zero slopes: constant channels
            module.weight.copy_(gamma)
            module.bias.copy_(torch.randn(module.num_features) * 0.3)
    return model.eval()


def state_numpy(model: BinaryNet) -> dict[str, np.ndarray]:
    return {k: v.double().numpy() for k, v in model.state_dict().items() if v.is_floating_point()}


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(random_networks())
def test_pytorch_and_golden_agree_on_random_networks(case) -> None:
    arch, seed = case
    model = randomized_model(arch, seed)
    net = compile_architecture(arch, state_numpy(model))
    images = np.random.default_rng(seed).integers(0, 256, (48, *arch.input.shape), dtype=np.uint8)
    result = compare_models(model, net, images)
    assert result.mismatches == [], result.mismatches[:3]
    assert len(result.float_ties) <= 2  # random real parameters: ties are rare


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(random_networks())
def test_flip_negative_channels_preserves_outputs(case) -> None:
    arch, seed = case
    unflipped = compile_architecture(arch, state_numpy(randomized_model(arch, seed)), flip=False)
    flipped = flip_negative_channels(unflipped)
    images = np.random.default_rng(seed).integers(0, 256, (32, *arch.input.shape), dtype=np.uint8)
    before = run_network(unflipped, images, keep_intermediates=True)
    after = run_network(flipped, images, keep_intermediates=True)
    np.testing.assert_array_equal(before.scores, after.scores)
    for key, value in before.intermediates.items():
        if not key.endswith(".acc"):  # accumulators of flipped channels change sign, bits do not
            np.testing.assert_array_equal(value, after.intermediates[key], err_msg=key)
    for layer in flipped.layers:
        if isinstance(layer, ConvLayer) and isinstance(layer.output, ThresholdOutput):
            d = layer.output.direction.reshape(len(layer.output.direction), -1)
            assert not np.any(np.all(d < 0, axis=1)), f"{layer.name} still has an all-<= channel"


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(random_networks())
def test_ir_file_round_trip(tmp_path_factory, case) -> None:
    arch, seed = case
    net = compile_architecture(arch, state_numpy(randomized_model(arch, seed)))
    path = tmp_path_factory.mktemp("ir") / "net.hwir"
    save_network(path, net)
    again = load_network(path)
    images = np.random.default_rng(seed).integers(0, 256, (16, *arch.input.shape), dtype=np.uint8)
    np.testing.assert_array_equal(run_network(net, images).scores, run_network(again, images).scores)


def test_thresholds_from_affine_cover_every_case() -> None:
    """bit = [a * acc + b >= 0] for every acc in range, for positive, negative and zero slopes."""
    a = np.array([0.5, -0.5, 0.0, 0.0, 2.0, -3.0, 1e-3])
    b = np.array([0.25, 1.0, 0.5, -0.5, -100.0, -100.0, 0.0])
    lo, hi = -20, 20
    out = affine_sign_to_thresholds(a, b, lo, hi)
    acc = np.arange(lo, hi + 1)[:, None]
    expected = (a * acc + b) >= 0
    got = np.where(out.direction > 0, acc >= out.thresholds, acc <= out.thresholds)
    np.testing.assert_array_equal(got, expected)


def test_zero_padding_matches_pytorch_padding_1() -> None:
    """A binary 3x3 conv with padding 1: corner outputs sum only the 4 in-bounds taps."""
    from hwgen.compile.golden import conv_accumulate

    weights = np.ones((1, 1, 3, 3), dtype=np.int64)
    layer = ConvLayer(name="c", in_shape=(1, 4, 4), weights=weights, weight_bits=1, stride=1, padding=1,
                      input_kind="binary", output=ThresholdOutput(np.zeros(1, np.int64), np.ones(1, np.int8)))
    bits = np.ones((1, 1, 4, 4), dtype=np.uint8)  # all +1
    acc = conv_accumulate(layer, bits)[0, 0]
    torch_acc = torch.nn.functional.conv2d(torch.ones(1, 1, 4, 4), torch.ones(1, 1, 3, 3), padding=1)[0, 0]
    np.testing.assert_array_equal(acc, torch_acc.numpy().astype(np.int64))
    assert acc[0, 0] == 4 and acc[1, 1] == 9 and acc[0, 1] == 6


def _tiny_arch(**first_layer) -> Architecture:
    conv = {"kind": "conv", "name": "conv0", "in_channels": 1, "out_channels": 2, "kernel": 3, "stride": 1,
            "padding": 0, "in_hw": [4, 4], "weight_bits": 1, "binarize_input": False, "estimator": "ste",
            "weight_estimator": "ste", "scale": "none", "act_scale": "none", **first_layer}
    layers = (conv, {"kind": "batchnorm", "name": "bn0", "channels": 2, "eps": 1e-5},
              {"kind": "flatten", "name": "flatten"},
              {"kind": "linear", "name": "fc1", "in_features": 8, "out_features": 2, "weight_bits": 1,
               "binarize_input": True, "estimator": "ste", "weight_estimator": "ste", "scale": "none",
               "act_scale": "none"})
    return Architecture(name="tiny", input=InputSpec((1, 4, 4), (0.5,), (0.25,)), num_classes=2, layers=layers)


@pytest.mark.parametrize("mutate,message", [
    (lambda s: s.__setitem__("layers.conv0.weight", s["layers.conv0.weight"] * np.nan), "NaN"),
    (lambda s: s.pop("layers.bn0.running_var"), "running_var"),
    (lambda s: s.__setitem__("layers.conv0.weight", np.zeros((2, 1, 2, 2))), r"shape \(2, 1, 2, 2\)"),
    (lambda s: s.__setitem__("layers.bn0.bias", np.zeros(3)), r"needs \(2,\)"),
])
def test_unlowerable_checkpoints_give_clear_errors(mutate, message: str) -> None:
    arch = _tiny_arch()
    state = state_numpy(BinaryNet(arch))
    mutate(state)
    with pytest.raises(CompileError, match=message):
        compile_architecture(arch, state)


def test_float_first_layer_is_refused() -> None:
    arch = _tiny_arch(weight_bits=32)
    with pytest.raises(CompileError, match="float weights"):
        compile_architecture(arch, state_numpy(BinaryNet(arch)))


def test_per_channel_std_is_refused() -> None:
    arch = _tiny_arch(in_channels=3)
    arch = Architecture(name="rgb", input=InputSpec((3, 4, 4), (0.5, 0.5, 0.5), (0.2, 0.25, 0.3)),
                        num_classes=2, layers=arch.layers)
    with pytest.raises(CompileError, match="shared std"):
        compile_architecture(arch, state_numpy(BinaryNet(arch)))


def test_compile_cli_on_the_shipped_model(tmp_path: Path, mnist_dir: Path) -> None:
    """hwgen compile --verify on the shipped TFC: identical top-1 on the first 2000 MNIST test images."""
    import subprocess
    import sys

    out = tmp_path / "tfc.hwir"
    result = subprocess.run([sys.executable, "-m", "hwgen.cli", "compile", "models/tfc_mnist.ckpt", "-o", str(out),
                             "--verify", "--data-dir", str(mnist_dir), "--limit", "2000"],
                            capture_output=True, text=True, timeout=300, cwd=Path(__file__).parent.parent)
    assert result.returncode == 0, result.stderr
    assert "2000 same top-1" in result.stdout and "0 mismatches" in result.stdout
    assert "fc0" in result.stdout and "acc bits" in result.stdout


def test_a_threshold_bug_is_a_mismatch_even_after_the_float64_recheck() -> None:
    """compare_models must fail on a real compiler bug: thresholds off by one in a layer."""
    arch = make_architecture("tfc", input_shape=(1, 28, 28), num_classes=10, mean=(128,), std=(64.0,))
    model = randomized_model(arch, 3)
    net = compile_architecture(arch, state_numpy(model))
    images = np.random.default_rng(3).integers(0, 256, (64, 1, 28, 28), dtype=np.uint8)
    assert compare_models(model, net, images).mismatches == []
    layer = net.layers[1]
    layer.output = ThresholdOutput(layer.output.thresholds + 1, layer.output.direction)
    result = compare_models(model, net, images)
    assert result.mismatches and all(m["float64_agrees"] is False for m in result.mismatches)
