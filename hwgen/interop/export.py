"""Write a compiled network (the IR) as QONNX that qonnx loads and executes with the golden model's results.

Every value in the graph is an exact integer (or +-1) held in float32, so
qonnx's executor computes what the golden model computes (hwgen/compile/golden.py):

input (float ``x = v / 255``, NCHW, the pixel convention of hwgen/interop/qonnx_model.py)
    ``Mul 255`` -> ``Quant`` (scale 1, 8-bit unsigned: round back to the
    pixel v) -> ``Add 256 c`` -> ``Cast int64`` -> ``Gather`` in the
    flattened first-layer input table (C * 256 values,
    :func:`hwgen.compile.ir.input_values`) -> ``Quant`` (scale 1, signed,
    wide enough: marks the first layer's integer input).
threshold layer
    ``BipolarQuant``/``Quant`` (scale 1) of the integer weights -> ``Conv``
    (a fully connected layer is a whole-map convolution) -> ``Mul d`` ->
    ``Add -d T`` (per channel or per position) -> ``BipolarQuant(u, s)``:
    the bit is ``[d (acc - T) >= 0]``, i.e. ``acc >= T`` (d = +1) or
    ``acc <= T`` (d = -1). ``s = -1`` on the channels that the next max-pool
    ANDs, so that ``MaxPool`` of the values ``s (2b - 1)`` is the AND; the next
    layer's weights of those input channels are negated to compensate.
last layer
    ``Conv`` -> ``Flatten`` -> ``Cast double`` -> ``Mul scale`` -> ``Add bias``:
    the integer scores (up to 2^31) exactly, in float64.

:func:`hwgen.interop.lower.import_qonnx` reads this graph back into the same IR.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from hwgen.compile.ir import PIXEL_VALUES, ConvLayer, MaxPoolLayer, Network, ScoreOutput, input_values, signed_bits

__all__ = ["export_network"]

_QONNX_DOMAIN = "qonnx.custom_op.general"
_OPSET = 13


class _Builder:
    def __init__(self) -> None:
        self.nodes: list = []
        self.inits: list = []
        self.count = 0

    def const(self, name: str, value: np.ndarray, dtype=np.float32) -> str:
        self.inits.append(numpy_helper.from_array(np.ascontiguousarray(value, dtype=dtype), name))
        return name

    def node(self, op: str, inputs: list[str], name: str, *, domain: str = "", out: str | None = None,
             **attrs) -> str:
        out = out or f"{name}_out"
        self.nodes.append(helper.make_node(op, inputs, [out], name=name, domain=domain, **attrs))
        return out

    def quant(self, x: str, name: str, *, bits: int, signed: int, narrow: int) -> str:
        ins = [x, self.const(f"{name}_scale", np.float32(1)), self.const(f"{name}_zeropt", np.float32(0)),
               self.const(f"{name}_bits", np.float32(bits))]
        return self.node("Quant", ins, name, domain=_QONNX_DOMAIN, signed=signed, narrow=narrow,
                         rounding_mode="ROUND")

    def weights(self, layer: ConvLayer, w: np.ndarray) -> str:
        name = f"{layer.name}_weights"
        raw = self.const(f"{name}_int", w.astype(np.float32))
        if layer.weight_bits == 1:
            return self.node("BipolarQuant", [raw, self.const(f"{name}_scale", np.float32(1))], name,
                             domain=_QONNX_DOMAIN)
        return self.quant(raw, name, bits=layer.weight_bits, signed=1, narrow=1)


def _per_output(values: np.ndarray) -> np.ndarray:
    """(C,) or (C, H, W) -> a constant broadcasting over (1, C, H, W)."""
    v = np.asarray(values)
    return v.reshape(1, -1, 1, 1) if v.ndim == 1 else v[None]


def _input_region(b: _Builder, first: ConvLayer, x: str) -> str:
    table = input_values(first)
    c = table.shape[0]
    x = b.node("Mul", [x, b.const("pixel_scale", np.float32(255))], "pixel_scale_mul")
    x = b.quant(x, "pixel_round", bits=8, signed=0, narrow=0)
    x = b.node("Add", [x, b.const("channel_base", (np.arange(c) * PIXEL_VALUES).reshape(1, c, 1, 1))],
               "channel_base_add")
    x = b.node("Cast", [x], "table_index", to=TensorProto.INT64)
    x = b.node("Gather", [b.const("input_table", table.reshape(-1)), x], "input_table_lookup", axis=0)
    lo, hi = int(table.min()), int(table.max())
    return b.quant(x, "input_quant", bits=signed_bits(min(lo, -1), max(hi, 0)), signed=1, narrow=0)


def export_network(net: Network, path: str | os.PathLike) -> None:
    """Write ``net`` as a QONNX file at ``path`` (one file, no external data; via a temporary file and a rename,
    so an earlier file is never left half-written)."""
    b = _Builder()
    c, h, w = net.input_shape
    x = "global_in"
    x = _input_region(b, net.layers[0], x)
    in_sign = np.ones(c)  # value scale s_c of the current activations' channels (+-1)
    layers = net.layers
    for k, layer in enumerate(layers):
        if isinstance(layer, MaxPoolLayer):
            x = b.node("MaxPool", [x], layer.name, kernel_shape=[layer.kernel] * 2, strides=[layer.stride] * 2)
            continue
        weights = layer.weights * in_sign.reshape(1, -1, 1, 1).astype(np.int64)
        x = b.node("Conv", [x, b.weights(layer, weights)], layer.name, kernel_shape=list(layer.kernel),
                   pads=[layer.padding] * 4, strides=[layer.stride] * 2)
        out = layer.output
        if isinstance(out, ScoreOutput):
            x = b.node("Flatten", [x], f"{layer.name}_flatten", axis=1)
            x = b.node("Cast", [x], f"{layer.name}_double", to=TensorProto.DOUBLE)
            x = b.node("Mul", [x, b.const(f"{layer.name}_score_scale", out.scale.reshape(1, -1), np.float64)],
                       f"{layer.name}_score_mul")
            b.node("Add", [x, b.const(f"{layer.name}_score_bias", out.bias.reshape(1, -1), np.float64)],
                   f"{layer.name}_score_add", out="global_out")
            break
        d = out.direction.astype(np.float32)
        x = b.node("Mul", [x, b.const(f"{layer.name}_direction", _per_output(d))], f"{layer.name}_direction_mul")
        x = b.node("Add", [x, b.const(f"{layer.name}_threshold", _per_output(-d * out.thresholds))],
                   f"{layer.name}_threshold_add")
        nxt = layers[k + 1] if k + 1 < len(layers) else None
        in_sign = (np.where(nxt.use_and, -1.0, 1.0) if isinstance(nxt, MaxPoolLayer)
                   else np.ones(layer.out_channels))
        scale = np.float32(1) if np.all(in_sign == 1) else in_sign.reshape(1, -1, 1, 1)
        x = b.node("BipolarQuant", [x, b.const(f"{layer.name}_sign_scale", scale)], f"{layer.name}_sign",
                   domain=_QONNX_DOMAIN)
    graph = helper.make_graph(
        b.nodes, net.name, [helper.make_tensor_value_info("global_in", TensorProto.FLOAT, [1, c, h, w])],
        [helper.make_tensor_value_info("global_out", TensorProto.DOUBLE, [1, net.num_classes])], b.inits)
    model = helper.make_model(graph, producer_name="hwgen",
                              opset_imports=[helper.make_opsetid("", _OPSET), helper.make_opsetid(_QONNX_DOMAIN, 1)])
    model.doc_string = "Generated by hwgen export from the integer IR; every tensor holds exact integers."
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    onnx.save(model, str(tmp))
    os.replace(tmp, path)
