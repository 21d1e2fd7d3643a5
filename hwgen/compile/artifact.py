"""The ``.hwir`` file: a compiled network, loadable without executing code.

A safetensors file (numpy) with

* metadata ``format = hwgen-ir``, ``version``, ``network`` (JSON: name,
  input shape, classes, and per layer its type, shapes and scalar fields),
  ``sha256``: in version 2 :func:`~hwgen.safetensors_io.covering_digest` of
  the arrays' digest and the other metadata (the header is covered, so an
  edited or corrupted ``network`` JSON is refused, not parsed); version-1
  files (arrays only) still load;
* arrays per layer ``NAME/...``, written and read by the node's kind
  (:meth:`hwgen.compile.kinds.NodeKind.write` / ``read``; each kind's module
  docstring lists its arrays): a conv's packed binary weights
  ``NAME/weight_bits_packed`` in the streaming order (C_out, KH, KW, C_in)
  (:func:`~hwgen.compile.kinds.conv.pack_binary_weights`) or k-bit
  ``NAME/weights``, its thresholds or score scale and bias, input offset or
  table (version 2); a pool's ``NAME/use_and``; a residual join's
  ``NAME/thresholds`` (2, C[, H, W]) and ``NAME/direction`` (version 3).

Version 3 added graphs: a node entry lists ``inputs`` when it does not read the
previous node, a conv may have ``"output": "accumulator"``, and ``"type": "join"``
nodes exist; a chain's entries are those of version 2. Version 2 added the
input table. Version 1 and 2 files (chains) are still read.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
from safetensors import SafetensorError, safe_open
from safetensors.numpy import load_file, save

from hwgen.compile.ir import IR_FORMAT, IR_READABLE_VERSIONS, IR_VERSION, Network
from hwgen.compile.kinds import kind_named, kind_of
from hwgen.errors import CompileError
from hwgen.safetensors_io import covering_digest, write_atomic


def _digest(arrays: dict[str, np.ndarray]) -> str:
    h = hashlib.sha256()
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        h.update(f"{name}|{a.dtype.str}|{a.shape}|".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def save_network(path: str | os.PathLike, net: Network) -> None:
    arrays: dict[str, np.ndarray] = {}
    layers: list[dict[str, Any]] = []
    for layer in net.layers:
        entry = kind_of(layer).write(layer, arrays)
        if layer.inputs:
            entry["inputs"] = list(layer.inputs)
        layers.append(entry)
    structure = {"name": net.name, "input_shape": list(net.input_shape), "num_classes": net.num_classes,
                 "layers": layers, "metadata": net.metadata}
    metadata = {"format": IR_FORMAT, "version": str(IR_VERSION), "network": json.dumps(structure, sort_keys=True)}
    metadata["sha256"] = covering_digest(_digest(arrays), metadata)
    write_atomic(path, save(arrays, metadata=metadata))


def load_network(path: str | os.PathLike) -> Network:
    path = Path(path)
    if not path.is_file():
        raise CompileError(f"IR file {path} does not exist")
    try:
        with safe_open(str(path), framework="numpy") as f:
            meta = f.metadata() or {}
        arrays = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise CompileError(f"{path} is not a readable hwgen IR file: {exc}") from None
    if meta.get("format") != IR_FORMAT or meta.get("version") not in {str(v) for v in IR_READABLE_VERSIONS}:
        raise CompileError(f"{path} is not a hwgen IR file of version "
                           f"{' or '.join(map(str, IR_READABLE_VERSIONS))}")
    expected = _digest(arrays) if meta["version"] == "1" else covering_digest(_digest(arrays), meta)
    if expected != meta.get("sha256"):
        raise CompileError(f"{path} failed its integrity check: the file was modified or corrupted")
    try:
        return _network(json.loads(meta["network"]), arrays)
    except CompileError as exc:
        raise CompileError(f"{path}: {exc}") from None
    except (KeyError, TypeError, ValueError, json.JSONDecodeError) as exc:
        raise CompileError(f"{path} has a malformed network description ({type(exc).__name__}: {exc}): "
                           f"the file was modified or corrupted") from None


def _network(structure: dict[str, Any], arrays: dict[str, np.ndarray]) -> Network:
    """The Network of a parsed ``network`` JSON and its arrays."""
    layers = [kind_named(entry["type"]).read(entry, arrays) for entry in structure["layers"]]
    return Network(name=structure["name"], input_shape=tuple(structure["input_shape"]), layers=layers,
                   num_classes=structure["num_classes"], metadata=structure.get("metadata", {}))
