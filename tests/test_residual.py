"""Residual networks (docs/residual.md): the graph IR, the join's threshold pairs, PyTorch against golden.

Random residual graphs mix: a stem conv (binary / k-bit weights on uint8
pixels, optional pool), 1-3 blocks, each either an identity block (two
convs, shortcut = the block input's bits) or a downsampling block (a
stride-2 first conv with a binary 1x1 stride-2 shortcut conv and BatchNorm,
or a first conv followed by a 2x2 max-pool with the shortcut a max-pool of
the block input's bits), an optional max-pool after a join, an optional
hidden FC layer and the class layer; every scale mode and activation scale,
shortcut scales and BatchNorm gammas drawn negative, zero and positive.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hwgen.compile.artifact import load_network, save_network
from hwgen.compile.compiler import compile_architecture
from hwgen.compile.fold import flip_negative_channels
from hwgen.compile.golden import join_bits, run_network
from hwgen.compile.ir import (
    AccumulatorOutput,
    ConvLayer,
    JoinLayer,
    Network,
    ScoreOutput,
    ThresholdOutput,
)
from hwgen.compile.verify import compare_models
from hwgen.errors import BuildError, CompileError, ConfigError
from hwgen.train.architecture import Architecture, InputSpec, validate_layers
from hwgen.train.network import BinaryNet
from hwgen.train.scales import ActScaleMode, ScaleMode
from hwgen.train.zoo import ModelOptions, make_architecture
from test_compile import randomized_model, state_numpy

SCALES = [m.value for m in ScaleMode]
ACT_SCALES = [m.value for m in ActScaleMode]
REPO = Path(__file__).resolve().parent.parent


@st.composite
def residual_networks(draw) -> tuple[Architecture, int]:
    channels = draw(st.sampled_from([1, 3]))
    size = draw(st.integers(6, 10))
    mean = tuple(draw(st.integers(0, 255)) / 255 for _ in range(channels))
    layers: list[dict] = []
    shapes: dict[str, tuple[int, int, int]] = {}

    def quant(bits: int, first: bool = False) -> dict:
        return {"weight_bits": bits, "binarize_input": not first, "estimator": "ste", "weight_estimator": "ste",
                "scale": draw(st.sampled_from(SCALES)), "act_scale": draw(st.sampled_from(ACT_SCALES))}

    def conv(name: str, source: str | None, out: int, kernel: int, stride: int, padding: int, bits: int = 1,
             first: bool = False) -> tuple[int, int, int]:
        c, h, w = shapes[source] if source else (channels, size, size)
        spec = {"kind": "conv", "name": name, "in_channels": c, "out_channels": out, "kernel": kernel,
                "stride": stride, "padding": padding, "in_hw": [h, w], **quant(bits, first)}
        if source and layers[-1]["name"] != source:
            spec["input"] = source
        layers.append(spec)
        side = (h + 2 * padding - kernel) // stride + 1
        shapes[name] = (out, side, side)
        return shapes[name]

    def pool(name: str, source: str) -> None:
        spec = {"kind": "maxpool", "name": name, "kernel": 2, "stride": 2}
        if layers[-1]["name"] != source:
            spec["input"] = source
        layers.append(spec)
        c, h, w = shapes[source]
        shapes[name] = (c, h // 2, w // 2)

    def bn(name: str, source: str) -> str:
        layers.append({"kind": "batchnorm", "name": name, "channels": shapes[source][0], "eps": 1e-5})
        shapes[name] = shapes[source]
        return name

    width = draw(st.integers(2, 6))
    conv("conv0", None, width, draw(st.sampled_from([1, 3])), 1, 1, bits=draw(st.sampled_from([1, 4, 8])),
         first=True)
    x = "conv0"
    if draw(st.booleans()):
        pool("pool0", x)
        x = "pool0"
    x = bn("bn0", x)
    for b in range(draw(st.integers(1, 3))):
        c, h, _ = shapes[x]
        kind = draw(st.sampled_from(["identity", "stride", "pool"] if h >= 4 else ["identity"]))
        k1, k2 = draw(st.sampled_from([1, 3])), draw(st.sampled_from([1, 3]))
        out = draw(st.integers(2, 8)) if kind == "stride" else c
        conv(f"b{b}_conv1", x, out, k1, 2 if kind == "stride" else 1, k1 // 2)
        main = f"b{b}_conv1"
        if kind == "pool":
            pool(f"b{b}_pool1", main)
            main = f"b{b}_pool1"
        bn(f"b{b}_bn1", main)
        conv(f"b{b}_conv2", f"b{b}_bn1", out, k2, 1, k2 // 2)
        main = f"b{b}_conv2"
        if draw(st.booleans()):
            main = bn(f"b{b}_bn2", main)
        shortcut = x
        if kind == "stride":
            conv(f"b{b}_down", x, out, 1, 2, 0)
            shortcut = bn(f"b{b}_downbn", f"b{b}_down")
        elif kind == "pool":
            pool(f"b{b}_skip", x)
            shortcut = f"b{b}_skip"
        layers.append({"kind": "residual", "name": f"b{b}_add", "inputs": [main, shortcut], "channels": out,
                       "shortcut": "binary", "estimator": "ste"})
        shapes[f"b{b}_add"] = shapes[main]
        x = f"b{b}_add"
        if shapes[x][1] >= 2 and draw(st.integers(0, 3)) == 0:
            pool(f"b{b}_pool", x)
            x = f"b{b}_pool"
    layers.append({"kind": "flatten", "name": "flatten"})
    features = int(np.prod(shapes[x]))
    if draw(st.booleans()):
        hidden = draw(st.integers(2, 8))
        layers += [{"kind": "linear", "name": "fc_h", "in_features": features, "out_features": hidden,
                    **quant(1)}, {"kind": "batchnorm", "name": "bn_h", "channels": hidden, "eps": 1e-5}]
        features = hidden
    classes = draw(st.integers(2, 6))
    layers.append({"kind": "linear", "name": "fc", "in_features": features, "out_features": classes,
                   **quant(draw(st.sampled_from([1, 8])))})
    if draw(st.booleans()):
        layers.append({"kind": "batchnorm", "name": "bn_fc", "channels": classes, "eps": 1e-5})
    arch = Architecture(name="residual", input=InputSpec((channels, size, size), mean,
                                                         (draw(st.floats(0.1, 0.5)),) * channels),
                        num_classes=classes, layers=tuple(layers))
    validate_layers(arch)
    return arch, draw(st.integers(0, 2**31 - 1))


def residual_model(arch: Architecture, seed: int) -> BinaryNet:
    """randomized_model, plus shortcut scales drawn negative, zero and positive."""
    model = randomized_model(arch, seed)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if name.endswith("_add.scale"):
                g = torch.randn(param.shape, generator=gen) * 2
                g[torch.rand(param.shape, generator=gen) < 0.15] = 0.0
                param.copy_(g)
    return model.eval()


def images_for(arch: Architecture, seed: int, n: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, *arch.input.shape), dtype=np.uint8)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(residual_networks())
def test_pytorch_and_golden_agree_on_random_residual_networks(case) -> None:
    arch, seed = case
    model = residual_model(arch, seed)
    net = compile_architecture(arch, state_numpy(model))
    assert net.joins and not net.is_chain
    result = compare_models(model, net, images_for(arch, seed, 48))
    assert result.mismatches == [], result.mismatches[:3]
    assert len(result.float_ties) <= 2  # random real parameters: ties are rare


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(residual_networks())
def test_flip_negative_channels_preserves_residual_outputs(case) -> None:
    arch, seed = case
    unflipped = compile_architecture(arch, state_numpy(residual_model(arch, seed)), flip=False)
    flipped = flip_negative_channels(unflipped)
    images = images_for(arch, seed, 32)
    before = run_network(unflipped, images, keep_intermediates=True)
    after = run_network(flipped, images, keep_intermediates=True)
    np.testing.assert_array_equal(before.scores, after.scores)
    for key, value in before.intermediates.items():
        if not key.endswith(".acc"):
            np.testing.assert_array_equal(value, after.intermediates[key], err_msg=key)
    for join in flipped.joins:
        assert not np.any(np.all(join.direction.reshape(len(join.direction), -1) < 0, axis=1)), join.name


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(residual_networks())
def test_residual_ir_file_round_trip(tmp_path_factory, case) -> None:
    arch, seed = case
    net = compile_architecture(arch, state_numpy(residual_model(arch, seed)))
    path = tmp_path_factory.mktemp("ir") / "net.hwir"
    save_network(path, net)
    again = load_network(path)
    assert [(type(n), n.name, n.inputs) for n in again.layers] == [(type(n), n.name, n.inputs) for n in net.layers]
    images = images_for(arch, seed, 16)
    np.testing.assert_array_equal(run_network(net, images).scores, run_network(again, images).scores)


def test_swapped_threshold_rows_are_caught() -> None:
    """compare_models must fail when a join uses the wrong row for the shortcut bit."""
    arch = make_architecture("resnet", input_shape=(3, 16, 16), num_classes=4, mean=(0.5,) * 3, std=(0.25,) * 3,
                             options=ModelOptions(width=0.5))
    model = residual_model(arch, 5)
    net = compile_architecture(arch, state_numpy(model))
    images = images_for(arch, 5, 32)
    assert compare_models(model, net, images).mismatches == []
    join = net.joins[0]
    join.thresholds = join.thresholds[::-1].copy()
    result = compare_models(model, net, images)
    assert result.mismatches and {m["layer"] for m in result.mismatches} == {join.name}


def test_join_selects_the_threshold_row_by_the_shortcut_bit() -> None:
    """Hand-worked: row 0 (s = 0) thresholds 2 / <= -1, row 1 (s = 1) thresholds -3 / <= 4."""
    join = JoinLayer(name="j", in_shape=(2, 1, 3), thresholds=np.array([[2, -1], [-3, 4]]),
                     direction=np.array([1, -1], dtype=np.int8), inputs=("c", "s"))
    acc = np.array([[[[-3, 2, 5]], [[-1, 0, 4]]]])
    shortcut = np.array([[[[0, 1, 0]], [[1, 0, 1]]]], dtype=np.uint8)
    # channel 0 (>=): s=0 -> acc >= 2; s=1 -> acc >= -3.  channel 1 (<=): s=0 -> acc <= -1; s=1 -> acc <= 4.
    expected = np.array([[[[0, 1, 1]], [[1, 0, 1]]]], dtype=np.uint8)
    np.testing.assert_array_equal(join_bits(acc, shortcut, join), expected)


def _tiny_graph(**changes) -> Network:
    """conv0 (uint8) -> a (acc) ; join(a, conv0) -> fc scores."""
    conv0 = ConvLayer("conv0", (1, 2, 2), np.ones((2, 1, 1, 1), np.int64), 2, 1, 0, "uint8",
                      ThresholdOutput(np.zeros(2, np.int64), np.ones(2, np.int8)), input_offset=np.zeros(1, np.int64))
    a = ConvLayer("a", (2, 2, 2), np.ones((2, 2, 1, 1), np.int64), 1, 1, 0, "binary", AccumulatorOutput())
    join = JoinLayer("j", (2, 2, 2), np.zeros((2, 2), np.int64), np.ones(2, np.int8), inputs=("a", "conv0"))
    fc = ConvLayer("fc", (2, 2, 2), np.ones((3, 2, 2, 2), np.int64), 1, 1, 0, "binary",
                   ScoreOutput(np.ones(3, np.int64), np.zeros(3, np.int64)))
    layers = {"conv0": conv0, "a": a, "j": join, "fc": fc}
    layers.update(changes)
    return Network("tiny", (1, 2, 2), [v for v in layers.values() if v is not None], num_classes=3)


def test_the_tiny_graph_runs() -> None:
    net = _tiny_graph()
    assert not net.is_chain and net.consumers()["conv0"] == ["a", "j"]
    run_network(net, np.zeros((1, 1, 2, 2), np.uint8))


@pytest.mark.parametrize("changes,message", [
    ({"j": JoinLayer("j", (2, 2, 2), np.zeros((2, 2), np.int64), np.ones(2, np.int8), inputs=("conv0", "a"))},
     "accumulator and shortcut|reads binary and acc"),
    ({"j": JoinLayer("j", (2, 2, 2), np.zeros((2,), np.int64), np.ones(2, np.int8), inputs=("a", "conv0"))},
     r"thresholds \(2,\)"),
    ({"j": JoinLayer("j", (2, 2, 2), np.zeros((2, 2), np.int64), np.ones(2, np.int8), inputs=("a", "nope"))},
     "earlier layer"),
    ({"j": None, "fc": ConvLayer("fc", (2, 2, 2), np.ones((3, 2, 2, 2), np.int64), 1, 1, 0, "binary",
                                 ScoreOutput(np.ones(3, np.int64), np.zeros(3, np.int64)), inputs=("conv0",))},
     "'a' is never read|takes binary input"),
])
def test_malformed_graphs_are_refused(changes, message: str) -> None:
    with pytest.raises(CompileError, match=message):
        run_network(_tiny_graph(**changes), np.zeros((1, 1, 2, 2), np.uint8))


def test_a_chain_compiles_to_a_chain_ir() -> None:
    """Chains keep the version-2 shape: no node names its inputs, so the back end reads ``layers`` as before."""
    arch = make_architecture("cnv", input_shape=(3, 32, 32), num_classes=10, mean=(0.5,) * 3, std=(0.25,) * 3,
                             options=ModelOptions(width=0.25))
    net = compile_architecture(arch, state_numpy(randomized_model(arch, 1)))
    assert net.is_chain and all(layer.inputs == () for layer in net.layers)
    assert arch.to_dict()["version"] == 1 and "depth" not in arch.options and "shortcut" not in arch.options


def test_float_shortcut_trains_but_is_refused_by_the_compiler() -> None:
    arch = make_architecture("resnet", input_shape=(3, 16, 16), num_classes=4, mean=(0.5,) * 3, std=(0.25,) * 3,
                             options=ModelOptions(width=0.25, shortcut="float"))
    model = BinaryNet(arch)
    model(torch.randint(0, 256, (2, 3, 16, 16), dtype=torch.uint8)).sum().backward()
    with pytest.raises(CompileError, match="float shortcut"):
        compile_architecture(arch, state_numpy(model))


def test_resnet_depth_and_width() -> None:
    def blocks(arch: Architecture) -> list[str]:
        return [spec["name"] for spec in arch.layers if spec["kind"] == "residual"]

    cifar = {"input_shape": (3, 32, 32), "num_classes": 10, "mean": (0.5,) * 3, "std": (0.25,) * 3}
    assert len(blocks(make_architecture("resnet", **cifar))) == 3
    arch = make_architecture("resnet", **cifar, options=ModelOptions(depth=20, width=2))
    assert len(blocks(arch)) == 9
    convs = [spec for spec in arch.layers if spec["kind"] == "conv"]
    assert [c["out_channels"] for c in convs if c["name"].endswith("_down")] == [64, 128]
    assert arch.to_dict()["version"] == 2 and Architecture.from_dict(arch.to_dict()) == arch
    with pytest.raises(ConfigError, match="6n"):
        ModelOptions(depth=10)


def test_residual_gradients_reach_both_branches() -> None:
    """The shortcut scale and the stem (read by the first block's branch and shortcut) get gradient."""
    arch = make_architecture("resnet", input_shape=(3, 16, 16), num_classes=4, mean=(0.5,) * 3, std=(0.25,) * 3,
                             options=ModelOptions(width=0.25))
    model = BinaryNet(arch)
    model.train()
    scores = model(torch.randint(0, 256, (8, 3, 16, 16), dtype=torch.uint8))
    # (not scores.sum(): in training mode the last BatchNorm makes a batch's sum a constant)
    torch.nn.functional.cross_entropy(scores, torch.arange(8) % 4).backward()
    assert model.layers.b0_add.scale.grad is not None and model.layers.b0_add.scale.grad.abs().sum() > 0
    assert model.layers.conv0.weight.grad.abs().sum() > 0


@pytest.fixture(scope="module")
def residual_checkpoint() -> Path:
    path = REPO / "models" / "resnet8_cifar10_short.ckpt"
    if not path.is_file():
        pytest.skip(f"{path} is missing")
    return path


def test_compile_verify_cli_on_a_trained_resnet(tmp_path: Path, cifar10_dir: Path, residual_checkpoint: Path) -> None:
    out = tmp_path / "resnet.hwir"
    result = subprocess.run([sys.executable, "-m", "hwgen.cli", "compile", str(residual_checkpoint), "-o", str(out),
                             "--verify", "--data-dir", str(cifar10_dir), "--limit", "500"],
                            capture_output=True, text=True, timeout=600, cwd=REPO)
    assert result.returncode == 0, result.stderr
    assert "500 same top-1" in result.stdout and "0 mismatches" in result.stdout
    assert "join" in result.stdout
    assert load_network(out).joins


def test_build_refuses_a_graph_whose_shortcut_does_not_start_at_a_fork(tmp_path: Path) -> None:
    """A join whose shortcut reaches the input pixels without meeting the main branch cannot be streamed."""
    from hwgen.hw.graph import check_streams

    net = _tiny_graph()
    net.layers[2] = JoinLayer("j", (2, 2, 2), np.zeros((2, 2), np.int64), np.ones(2, np.int8), inputs=("a", "input"))
    with pytest.raises(BuildError, match="meet only at the input pixels"):
        check_streams(net)


def test_a_version_2_file_still_loads_and_equals_todays_chain(tmp_path: Path) -> None:
    """tests/fixtures/tfc_mnist.v2.hwir was written by the version-2 writer (main before issue 14) from
    models/tfc_mnist.ckpt; today's compile of the same checkpoint is the same network in a version-3 file."""
    from hwgen.compile.compiler import compile_checkpoint
    from hwgen.train.checkpoint import load_checkpoint
    from safetensors import safe_open

    old_path = REPO / "tests" / "fixtures" / "tfc_mnist.v2.hwir"
    with safe_open(str(old_path), framework="numpy") as f:
        assert f.metadata()["version"] == "2"
    old = load_network(old_path)
    new_path = tmp_path / "tfc.hwir"
    save_network(new_path, compile_checkpoint(load_checkpoint(REPO / "models" / "tfc_mnist.ckpt"),
                                              "models/tfc_mnist.ckpt"))
    with safe_open(str(new_path), framework="numpy") as f:
        assert f.metadata()["version"] == "3"
    new = load_network(new_path)
    assert old.is_chain and new.is_chain and [n.name for n in old.layers] == [n.name for n in new.layers]
    images = np.random.default_rng(0).integers(0, 256, (64, *old.input_shape), dtype=np.uint8)
    a, b = run_network(old, images, keep_intermediates=True), run_network(new, images, keep_intermediates=True)
    np.testing.assert_array_equal(a.scores, b.scores)
    for key in a.intermediates:
        np.testing.assert_array_equal(a.intermediates[key], b.intermediates[key], err_msg=key)


def _graph_arch(*middle: dict) -> Architecture:
    """c0 (uint8 pixels, 2 channels, 4x4) -> MIDDLE -> flatten -> fc (2 classes)."""
    q = {"weight_bits": 1, "binarize_input": True, "estimator": "ste", "weight_estimator": "ste", "scale": "none",
         "act_scale": "none"}
    conv = {"kind": "conv", "in_channels": 2, "out_channels": 2, "kernel": 1, "stride": 1, "padding": 0,
            "in_hw": [4, 4], **q}
    layers = ({**conv, "name": "c0", "in_channels": 1, "binarize_input": False},
              *({**conv, **spec} if spec.get("kind") == "conv" else spec for spec in middle),
              {"kind": "flatten", "name": "f"},
              {"kind": "linear", "name": "fc", "in_features": 2 * 2 * 2 if any(
                  s.get("kind") == "maxpool" for s in middle) else 32, "out_features": 2, **q})
    arch = Architecture("graph", InputSpec((1, 4, 4), (0.5,), (0.25,)), 2, layers)
    validate_layers(arch)
    return arch


@pytest.mark.parametrize("middle,message", [
    (({"kind": "conv", "name": "c1"}, {"kind": "batchnorm", "name": "bn0", "channels": 2, "input": "c0"},
      {"kind": "residual", "name": "add", "inputs": ["c1", "bn0"], "channels": 2, "shortcut": "binary",
       "estimator": "ste"}), "already read before it"),
    (({"kind": "conv", "name": "c1"}, {"kind": "maxpool", "name": "p1", "kernel": 2, "stride": 2},
      {"kind": "maxpool", "name": "p0", "kernel": 2, "stride": 2, "input": "c0"},
      {"kind": "residual", "name": "add", "inputs": ["p1", "p0"], "channels": 2, "shortcut": "binary",
       "estimator": "ste"}), "without a max-pool"),
    (({"kind": "conv", "name": "c1"},
      {"kind": "residual", "name": "add", "inputs": ["c1", "c0"], "channels": 2, "shortcut": "binary",
       "estimator": "ste"}, {"kind": "conv", "name": "c2", "input": "c1"}), "read elsewhere too"),
])
def test_unlowerable_graphs_give_clear_errors(middle, message: str) -> None:
    arch = _graph_arch(*middle)
    with pytest.raises(CompileError, match=message):
        compile_architecture(arch, state_numpy(BinaryNet(arch)))
