"""Checkpoints: safetensors files that load without executing code.

Layout of a ``.ckpt`` file (a plain safetensors file, readable with
``safetensors.numpy.load_file`` by stages that do not use PyTorch):

* tensors ``model/<state-dict key>``: the network's weights and buffers;
* tensors ``optim/<param index>/<name>`` and ``rng/torch``: the training
  state needed to resume (absent in an exported checkpoint);
* metadata (all strings): ``format`` = ``hwgen-ckpt``, ``version``,
  ``architecture`` (the JSON of :mod:`hwgen.train.architecture`),
  ``train_config``, ``metrics``, ``optim_meta`` (JSON), ``epoch``, and
  ``sha256``: in version 2, :func:`~hwgen.safetensors_io.covering_digest` of
  the tensor digest (every tensor's name, dtype, shape and bytes in
  sorted-name order) and every other metadata string, so a tampered or
  corrupted file is refused whether the change is in a weight or in the
  header (say, the normalisation mean in ``architecture``).

Version-1 files (before 0.x: ``sha256`` covered the tensors only) still load,
checked by their tensor digest, with a note that their header is not
covered; the shipped models are version 2.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save

from hwgen.errors import CheckpointError, ConfigError
from hwgen.safetensors_io import covering_digest, note, write_atomic
from hwgen.train.architecture import Architecture

CKPT_FORMAT = "hwgen-ckpt"
CKPT_VERSION = 2
#: Versions this hwgen reads: 1 (digest of the tensors only) and 2 (digest of tensors and header).
READABLE_VERSIONS = ("1", "2")


@dataclass
class Checkpoint:
    """In-memory checkpoint: architecture, weights, and optional training state."""

    architecture: Architecture
    model_state: dict[str, torch.Tensor]
    train_config: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    epoch: int = 0
    optimizer_state: dict[str, Any] | None = None
    rng_state: torch.Tensor | None = None


def tensor_digest(tensors: dict[str, torch.Tensor]) -> str:
    """SHA-256 over (name, dtype, shape, bytes) of every tensor, names sorted."""
    digest = hashlib.sha256()
    for name in sorted(tensors):
        t = tensors[name].contiguous().reshape(-1)
        digest.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        digest.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return digest.hexdigest()


def _flatten_optimizer(state: dict[str, Any]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Split ``optimizer.state_dict()`` into tensors and a JSON-able remainder."""
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for index, entries in state["state"].items():
        for key, value in entries.items():
            if isinstance(value, torch.Tensor):
                tensors[f"optim/{index}/{key}"] = value.detach().cpu().contiguous().clone()
            else:
                scalars.setdefault(str(index), {})[key] = value
    return tensors, {"param_groups": state["param_groups"], "scalars": scalars}


def _unflatten_optimizer(tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> dict[str, Any]:
    state: dict[int, dict[str, Any]] = {}
    for name, value in tensors.items():
        _, index, key = name.split("/", 2)
        state.setdefault(int(index), {})[key] = value
    for index, entries in meta.get("scalars", {}).items():
        state.setdefault(int(index), {}).update(entries)
    return {"state": state, "param_groups": meta["param_groups"]}


def save_checkpoint(path: str | os.PathLike, ckpt: Checkpoint) -> None:
    """Write ``ckpt`` atomically (temporary file, then rename)."""
    path = Path(path)
    tensors = {f"model/{k}": v.detach().cpu().contiguous().clone() for k, v in ckpt.model_state.items()}
    optim_meta: dict[str, Any] = {}
    if ckpt.optimizer_state is not None:
        optim_tensors, optim_meta = _flatten_optimizer(ckpt.optimizer_state)
        tensors.update(optim_tensors)
    if ckpt.rng_state is not None:
        tensors["rng/torch"] = ckpt.rng_state.clone()
    metadata = {
        "format": CKPT_FORMAT,
        "version": str(CKPT_VERSION),
        "architecture": ckpt.architecture.to_json(),
        "train_config": json.dumps(ckpt.train_config, sort_keys=True),
        "metrics": json.dumps(ckpt.metrics, sort_keys=True),
        "optim_meta": json.dumps(optim_meta),
        "epoch": str(ckpt.epoch),
    }
    metadata["sha256"] = covering_digest(tensor_digest(tensors), metadata)
    write_atomic(path, save(tensors, metadata=metadata))


def read_metadata(path: str | os.PathLike) -> dict[str, str]:
    """The metadata strings of a checkpoint, after checking it is one."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        with safe_open(str(path), framework="pt") as f:
            metadata = f.metadata() or {}
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"{path} is not a readable hwgen checkpoint (safetensors header: {exc})") from None
    if metadata.get("format") != CKPT_FORMAT:
        raise CheckpointError(f"{path} is a safetensors file but not a hwgen checkpoint (no format={CKPT_FORMAT})")
    if metadata.get("version") not in READABLE_VERSIONS:
        raise CheckpointError(
            f"{path} has checkpoint version {metadata.get('version')}; this hwgen reads versions "
            f"{', '.join(READABLE_VERSIONS)}"
        )
    return metadata


def load_checkpoint(path: str | os.PathLike) -> Checkpoint:
    """Load and verify a checkpoint; CheckpointError names what is wrong."""
    path = Path(path)
    metadata = read_metadata(path)
    try:
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise CheckpointError(f"{path} is truncated or corrupted: {exc}") from None
    if metadata["version"] == "1":
        if tensor_digest(tensors) != metadata.get("sha256"):
            raise CheckpointError(f"{path} failed its integrity check (sha256 of the tensors does not match): "
                                  "the file was modified or corrupted")
        note(f"{path} is a version-1 checkpoint: its tensors are verified, its header (architecture, "
             f"normalisation, config) is not; saving it again (a training run, or load_checkpoint + "
             f"save_checkpoint) writes version {CKPT_VERSION}, which covers both")
    elif covering_digest(tensor_digest(tensors), metadata) != metadata.get("sha256"):
        raise CheckpointError(f"{path} failed its integrity check (sha256 of the tensors and the header does not "
                              "match): the file was modified or corrupted")
    try:
        arch = Architecture.from_json(metadata["architecture"])
        train_config = json.loads(metadata.get("train_config", "{}"))
        metrics = json.loads(metadata.get("metrics", "{}"))
        optim_meta = json.loads(metadata.get("optim_meta", "{}"))
        epoch = int(metadata.get("epoch", "0"))
    except (ConfigError, json.JSONDecodeError, ValueError) as exc:
        raise CheckpointError(f"{path} has malformed metadata: {exc}") from None
    model_state = {k[len("model/"):]: v for k, v in tensors.items() if k.startswith("model/")}
    optim_tensors = {k: v for k, v in tensors.items() if k.startswith("optim/")}
    optimizer_state = _unflatten_optimizer(optim_tensors, optim_meta) if optim_meta else None
    return Checkpoint(
        architecture=arch,
        model_state=model_state,
        train_config=train_config,
        metrics=metrics,
        epoch=epoch,
        optimizer_state=optimizer_state,
        rng_state=tensors.get("rng/torch"),
    )


def load_state_into(model: torch.nn.Module, state: dict[str, torch.Tensor], source: str) -> None:
    """``model.load_state_dict(state)`` with an error that lists missing, extra and mis-shaped keys."""
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    extra = sorted(set(state) - set(own))
    shapes = [f"{k}: file {tuple(state[k].shape)} vs model {tuple(own[k].shape)}"
              for k in sorted(set(own) & set(state)) if own[k].shape != state[k].shape]
    if missing or extra or shapes:
        parts = []
        if missing:
            parts.append(f"missing {', '.join(missing[:5])}{' ...' if len(missing) > 5 else ''}")
        if extra:
            parts.append(f"unexpected {', '.join(extra[:5])}{' ...' if len(extra) > 5 else ''}")
        if shapes:
            parts.append(f"shape mismatch {'; '.join(shapes[:5])}")
        raise CheckpointError(f"{source} does not match the architecture: {'; '.join(parts)}")
    model.load_state_dict(state)
