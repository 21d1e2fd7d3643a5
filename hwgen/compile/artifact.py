"""The ``.hwir`` file: a compiled network, loadable without executing code.

A safetensors file (numpy) with

* metadata ``format = hwgen-ir``, ``version``, ``network`` (JSON: name,
  input shape, classes, and per layer its type, shapes and scalar fields),
  ``sha256``: in version 2 :func:`~hwgen.safetensors_io.covering_digest` of
  the arrays' digest and the other metadata (the header is covered, so an
  edited or corrupted ``network`` JSON is refused, not parsed); version-1
  files (arrays only) still load;
* arrays per layer ``NAME/...``: binary weights as packed bits
  ``NAME/weight_bits_packed`` (uint8, bit = weight == +1) in the streaming
  order (C_out, KH, KW, C_in), channels fastest, as a sliding window emits a
  pixel's channels together, MSB first; k-bit weights as ``NAME/weights``
  (int16, (C_out, C_in, KH, KW)); ``NAME/thresholds`` and ``NAME/direction``,
  ``NAME/score_scale`` and ``NAME/score_bias``, ``NAME/input_offset``,
  ``NAME/input_table`` (int32 (C_in, 256), version 2), ``NAME/use_and`` for pools;
  a residual join (version 3) ``NAME/thresholds`` (2, C[, H, W]) and ``NAME/direction``.

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

from hwgen.compile.ir import (
    IR_FORMAT,
    IR_READABLE_VERSIONS,
    IR_VERSION,
    AccumulatorOutput,
    ConvLayer,
    JoinLayer,
    MaxPoolLayer,
    Network,
    ScoreOutput,
    ThresholdOutput,
)
from hwgen.errors import CompileError
from hwgen.safetensors_io import covering_digest, write_atomic


def _digest(arrays: dict[str, np.ndarray]) -> str:
    h = hashlib.sha256()
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        h.update(f"{name}|{a.dtype.str}|{a.shape}|".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def pack_binary_weights(weights: np.ndarray) -> np.ndarray:
    """+-1 weights (C_out, C_in, KH, KW) -> uint8 bits in (C_out, KH, KW, C_in) order, per output channel."""
    bits = (weights.transpose(0, 2, 3, 1) > 0).reshape(len(weights), -1)
    return np.packbits(bits, axis=1)


def unpack_binary_weights(packed: np.ndarray, shape: tuple[int, int, int, int]) -> np.ndarray:
    c_out, c_in, kh, kw = shape
    bits = np.unpackbits(packed, axis=1, count=c_in * kh * kw).reshape(c_out, kh, kw, c_in)
    return (bits.astype(np.int64) * 2 - 1).transpose(0, 3, 1, 2)


def _conv_entry(layer: ConvLayer, arrays: dict[str, np.ndarray]) -> dict[str, Any]:
    n = layer.name
    entry = {"type": "conv", "name": n, "in_shape": list(layer.in_shape), "weight_shape": list(layer.weights.shape),
             "weight_bits": layer.weight_bits, "stride": layer.stride, "padding": layer.padding,
             "input_kind": layer.input_kind, "source": layer.source}
    if layer.weight_bits == 1:
        arrays[f"{n}/weight_bits_packed"] = pack_binary_weights(layer.weights)
    else:
        arrays[f"{n}/weights"] = layer.weights.astype(np.int16)
    if layer.input_offset is not None:
        arrays[f"{n}/input_offset"] = layer.input_offset.astype(np.int64)
    if layer.input_table is not None:
        arrays[f"{n}/input_table"] = np.ascontiguousarray(layer.input_table, dtype=np.int32)
    if isinstance(layer.output, ThresholdOutput):
        entry["output"] = "threshold"
        arrays[f"{n}/thresholds"] = layer.output.thresholds.astype(np.int64)
        arrays[f"{n}/direction"] = layer.output.direction.astype(np.int8)
    elif isinstance(layer.output, AccumulatorOutput):
        entry["output"] = "accumulator"
    else:
        entry["output"] = "scores"
        arrays[f"{n}/score_scale"] = layer.output.scale.astype(np.int64)
        arrays[f"{n}/score_bias"] = layer.output.bias.astype(np.int64)
    return entry


def _pool_entry(layer: MaxPoolLayer, arrays: dict[str, np.ndarray]) -> dict[str, Any]:
    arrays[f"{layer.name}/use_and"] = layer.use_and.astype(np.uint8)
    return {"type": "maxpool", "name": layer.name, "in_shape": list(layer.in_shape),
            "kernel": layer.kernel, "stride": layer.stride}


def _join_entry(layer: JoinLayer, arrays: dict[str, np.ndarray]) -> dict[str, Any]:
    arrays[f"{layer.name}/thresholds"] = layer.thresholds.astype(np.int64)
    arrays[f"{layer.name}/direction"] = layer.direction.astype(np.int8)
    return {"type": "join", "name": layer.name, "in_shape": list(layer.in_shape), "source": layer.source}


def _conv_layer(entry: dict[str, Any], arrays: dict[str, np.ndarray]) -> ConvLayer:
    n, shape = entry["name"], tuple(entry["weight_shape"])
    weights = (unpack_binary_weights(arrays[f"{n}/weight_bits_packed"], shape) if entry["weight_bits"] == 1
               else arrays[f"{n}/weights"].astype(np.int64))
    output = {"threshold": lambda: ThresholdOutput(arrays[f"{n}/thresholds"], arrays[f"{n}/direction"]),
              "accumulator": AccumulatorOutput,
              "scores": lambda: ScoreOutput(arrays[f"{n}/score_scale"], arrays[f"{n}/score_bias"])}[entry["output"]]()
    return ConvLayer(name=n, in_shape=tuple(entry["in_shape"]), weights=weights,
                     weight_bits=entry["weight_bits"], stride=entry["stride"], padding=entry["padding"],
                     input_kind=entry["input_kind"], output=output,
                     input_offset=arrays.get(f"{n}/input_offset"),
                     input_table=(arrays[f"{n}/input_table"].astype(np.int64)
                                  if f"{n}/input_table" in arrays else None),
                     source=entry.get("source", []), inputs=tuple(entry.get("inputs", ())))


def _pool_layer(entry: dict[str, Any], arrays: dict[str, np.ndarray]) -> MaxPoolLayer:
    n = entry["name"]
    return MaxPoolLayer(name=n, in_shape=tuple(entry["in_shape"]), kernel=entry["kernel"], stride=entry["stride"],
                        use_and=arrays[f"{n}/use_and"].astype(bool), inputs=tuple(entry.get("inputs", ())))


def _join_layer(entry: dict[str, Any], arrays: dict[str, np.ndarray]) -> JoinLayer:
    n = entry["name"]
    return JoinLayer(name=n, in_shape=tuple(entry["in_shape"]), thresholds=arrays[f"{n}/thresholds"],
                     direction=arrays[f"{n}/direction"], inputs=tuple(entry["inputs"]),
                     source=entry.get("source", []))


#: Per node type: (JSON type name, entry writer, reader). Version-3 entries name their inputs
#: (``"inputs"``) unless the node reads the previous one.
_NODE_FORMATS = {ConvLayer: ("conv", _conv_entry, _conv_layer),
                 MaxPoolLayer: ("maxpool", _pool_entry, _pool_layer),
                 JoinLayer: ("join", _join_entry, _join_layer)}
_READERS = {name: reader for name, _, reader in _NODE_FORMATS.values()}


def save_network(path: str | os.PathLike, net: Network) -> None:
    arrays: dict[str, np.ndarray] = {}
    layers: list[dict[str, Any]] = []
    for layer in net.layers:
        entry = _NODE_FORMATS[type(layer)][1](layer, arrays)
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
    except (KeyError, TypeError, ValueError, json.JSONDecodeError) as exc:
        raise CompileError(f"{path} has a malformed network description ({type(exc).__name__}: {exc}): "
                           f"the file was modified or corrupted") from None


def _network(structure: dict[str, Any], arrays: dict[str, np.ndarray]) -> Network:
    """The Network of a parsed ``network`` JSON and its arrays."""
    layers = [_READERS[entry["type"]](entry, arrays) for entry in structure["layers"]]
    return Network(name=structure["name"], input_shape=tuple(structure["input_shape"]), layers=layers,
                   num_classes=structure["num_classes"], metadata=structure.get("metadata", {}))
