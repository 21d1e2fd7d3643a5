"""Checkpoints: round trip, integrity, and clear errors for bad files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from hwgen.errors import CheckpointError
from hwgen.train.checkpoint import Checkpoint, load_checkpoint, load_state_into, save_checkpoint
from hwgen.train.network import BinaryNet, load_model
from hwgen.train.zoo import make_architecture

MNIST = dict(input_shape=(1, 28, 28), num_classes=10, mean=(0.13,), std=(0.31,))


def _trained_tfc() -> tuple[BinaryNet, torch.optim.Optimizer]:
    torch.manual_seed(0)
    net = BinaryNet(make_architecture("tfc", **MNIST))
    optimizer = torch.optim.Adam(net.parameters())
    net(torch.randint(0, 256, (4, 1, 28, 28))).sum().backward()
    optimizer.step()
    return net, optimizer


@pytest.fixture()
def saved(tmp_path: Path) -> tuple[Path, BinaryNet]:
    net, optimizer = _trained_tfc()
    path = tmp_path / "m.ckpt"
    save_checkpoint(path, Checkpoint(architecture=net.arch, model_state=net.state_dict(),
                                     train_config={"dataset": "mnist"}, metrics={"test_acc": 0.5}, epoch=3,
                                     optimizer_state=optimizer.state_dict(), rng_state=torch.get_rng_state()))
    return path, net


def test_round_trip(tmp_path: Path) -> None:
    net, optimizer = _trained_tfc()
    rng = torch.get_rng_state()
    path = tmp_path / "m.ckpt"
    save_checkpoint(path, Checkpoint(architecture=net.arch, model_state=net.state_dict(),
                                     train_config={"dataset": "mnist"}, metrics={"test_acc": 0.5}, epoch=3,
                                     optimizer_state=optimizer.state_dict(), rng_state=rng))
    ckpt = load_checkpoint(path)
    assert ckpt.architecture == net.arch
    assert ckpt.epoch == 3 and ckpt.metrics == {"test_acc": 0.5} and ckpt.train_config == {"dataset": "mnist"}
    for key, value in net.state_dict().items():
        assert torch.equal(ckpt.model_state[key], value), key
    original = optimizer.state_dict()
    assert ckpt.optimizer_state["param_groups"] == json.loads(json.dumps(original["param_groups"]))
    assert set(ckpt.optimizer_state["state"]) == set(original["state"])
    for index, entries in original["state"].items():
        for name, value in entries.items():
            assert torch.equal(ckpt.optimizer_state["state"][index][name], value), (index, name)
    torch.optim.Adam(net.parameters()).load_state_dict(ckpt.optimizer_state)  # accepted by torch
    assert torch.equal(ckpt.rng_state, rng)


def test_load_model_reproduces_outputs(saved: tuple[Path, BinaryNet]) -> None:
    path, net = saved
    model, _ = load_model(path)
    x = torch.randint(0, 256, (8, 1, 28, 28), dtype=torch.uint8)
    assert torch.equal(model(x), net.eval()(x))


def test_truncated_file(saved: tuple[Path, BinaryNet], tmp_path: Path) -> None:
    path, _ = saved
    cut = tmp_path / "cut.ckpt"
    cut.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(CheckpointError, match="cut.ckpt"):
        load_checkpoint(cut)


def test_tampered_weights_fail_the_integrity_check(saved: tuple[Path, BinaryNet], tmp_path: Path) -> None:
    path, _ = saved
    data = bytearray(path.read_bytes())
    data[-5] ^= 0xFF  # flip bits inside the last tensor
    bad = tmp_path / "bad.ckpt"
    bad.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="integrity"):
        load_checkpoint(bad)


def test_not_a_checkpoint(tmp_path: Path) -> None:
    junk = tmp_path / "junk.ckpt"
    junk.write_text("hello")
    with pytest.raises(CheckpointError, match="not a readable"):
        load_checkpoint(junk)
    other = tmp_path / "other.safetensors"
    save_file({"x": torch.zeros(2)}, str(other))
    with pytest.raises(CheckpointError, match="not a hwgen checkpoint"):
        load_checkpoint(other)
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "missing.ckpt")


def test_wrong_architecture_names_the_keys(saved: tuple[Path, BinaryNet]) -> None:
    path, _ = saved
    other = BinaryNet(make_architecture("sfc", **MNIST))
    with pytest.raises(CheckpointError, match=r"does not match the architecture: shape mismatch layers\.bn0\.bias: file \(64,\) vs model \(256,\)"):
        load_state_into(other, load_checkpoint(path).model_state, str(path))


def test_metadata_is_plain_json(saved: tuple[Path, BinaryNet]) -> None:
    """Later stages read the architecture without PyTorch: it is JSON in the safetensors header."""
    from safetensors import safe_open

    path, net = saved
    with safe_open(str(path), framework="numpy") as f:
        meta = f.metadata()
    assert json.loads(meta["architecture"])["name"] == "tfc"
