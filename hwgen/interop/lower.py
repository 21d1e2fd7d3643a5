"""Lower a cleaned-up QONNX graph into hwgen's float stages (hwgen/compile/stages.py).

The graph must be a chain from its input to its output. It is read node by
node with a small state machine; every weight layer opens a
:class:`~hwgen.compile.stages.FloatStage`, and the folding passes
(:func:`hwgen.compile.compiler.compile_stages`) do the arithmetic, as for a
checkpoint. With ``acc`` the integer accumulator of a stage:

*input region* (before the first weight layer)
    Elementwise ops (``Mul``/``Add``/``Sub``/``Div`` by constants,
    ``Quant``, ``BipolarQuant``, ``Reshape``/``Flatten``) are evaluated with
    qonnx's own float32 semantics on all 256 pixel values of every channel
    at once (:class:`~hwgen.interop.qonnx_model.PixelMapping` gives the
    float input). The result must be the same at every position of a
    channel and end in a quantizer of per-tensor scale ``s_in``: the first
    layer's exact input table is ``T[c, v] = value / s_in`` (integers; e.g.
    Brevitas CNV's ``clip(round(128 * (2v/255 - 1)), -128, 127)``, or
    ``+-1`` for bnn_pynq's FC networks, whose input quantizer is binary).
*weight layer* (``Conv``, ``Gemm``, ``MatMul``)
    Weights ``W = s_w[o] * q`` from a ``BipolarQuant`` (q = +-1, sign(0) =
    +1) or ``Quant`` (k-bit integers, zero point 0) of a constant; the
    layer's input is ``s_in * v`` (v the table values or ``2b - 1``; a
    per-channel input scale ``s_c`` of equal magnitudes has its signs moved
    into the weights' input channels). So ``z = s_in * s_w[o] * acc +
    bias[o]``: slope ``s_in * s_w``, offset the bias (``Gemm``'s ``C`` times
    beta, ``Conv``'s third input). A ``Gemm``/``MatMul`` reading a
    flattened (C, H, W) map becomes a whole-map convolution (C-major, as ONNX
    ``Reshape``/``Flatten`` order it).
*affine* (after the weight layer, before the sign)
    ``Mul``/``Div``/``Add``/``Sub`` by per-tensor, per-channel (or, before a
    pool, per-position) constants and ``BatchNormalization`` (``g =
    gamma / sqrt(var + eps)``, ``h = beta - mean * g``) compose into the
    stage's ``(slope, offset)`` before a ``MaxPool`` and into ``(bn_scale,
    bn_shift)`` after it (per channel), so ``u = bn_scale * max(z) + bn_shift``.
*sign*
    ``BipolarQuant(u, s)`` (qonnx: ``s * (u >= 0 ? 1 : -1)``) or a 1-bit
    signed ``Quant`` (``s * (u / s >= 0 ? 1 : -1)``: a ``Div`` by ``s`` is
    composed into the affine) closes the stage with the bit ``[u >= 0]``
    exactly as the executor computes it; the next layer reads ``s * (2b-1)``.
    A ``MaxPool`` of those values is an OR of the bits per channel with
    ``s_c > 0``, an AND where ``s_c < 0`` (``FloatStage.pool_use_and``).
*output*
    The last stage has no sign; its affine (Brevitas's ``TensorNorm``, a
    per-class affine) becomes the integer scores.

Refusals (:class:`~hwgen.errors.CompileError`) name the node, its op type
and what is supported: a branch (residual add), a quantizer wider than one
bit after the first layer, average pooling, a non-constant weight or
operand, a missing BatchNormalization statistic, an op outside the table.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx

from hwgen.compile.compiler import compile_stages
from hwgen.compile.ir import PIXEL_VALUES, Network
from hwgen.compile.stages import FloatStage
from hwgen.errors import CompileError
from hwgen.interop.qonnx_model import PixelMapping

__all__ = ["SUPPORTED_OPS", "LoweredGraph", "lower_qonnx", "import_qonnx"]

SUPPORTED_OPS = ("Conv", "Gemm", "MatMul", "MaxPool", "BatchNormalization", "Mul", "Div", "Add", "Sub",
                 "BipolarQuant", "Quant", "Reshape", "Flatten", "Transpose", "Identity", "Dropout", "Cast",
                 "Gather (before the first weight layer)")
_WEIGHT_OPS = ("Conv", "Gemm", "MatMul")
_AFFINE_OPS = ("Mul", "Div", "Add", "Sub")
_QUANT_OPS = ("BipolarQuant", "Quant")
_SHAPE_OPS = ("Reshape", "Flatten", "Transpose", "Identity", "Dropout")
#: Largest |input table value| accepted (the MAC unit's inputs are 9-bit differences of 8-bit values).
_TABLE_LIMIT = 1 << 15


@dataclass
class LoweredGraph:
    """The float stages of a QONNX graph and what the verification needs to find its values again.

    ``sign_inputs[k]``: the tensor name of stage k's sign input u (None for the
    last stage); ``sign_scales[k]``: the divisor s of that sign (the bit is
    ``[u / s >= 0]``; 1 for BipolarQuant, the scale for a 1-bit Quant).
    """

    stages: list[FloatStage]
    input_shape: tuple[int, int, int]
    num_classes: int
    input_name: str
    output_name: str
    sign_inputs: list[str | None] = field(default_factory=list)
    sign_scales: list[np.ndarray | None] = field(default_factory=list)


def _where(node) -> str:
    return f"node {node.name!r} ({node.op_type})"


def _attrs(node) -> dict:
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


class _Graph:
    """Constant lookup and quantizer evaluation on a qonnx ModelWrapper."""

    def __init__(self, model) -> None:
        self.model = model

    def const(self, name: str, node) -> np.ndarray:
        value = self.model.get_initializer(name)
        if value is None:
            producer = self.model.find_producer(name)
            if producer is not None and producer.op_type in _QUANT_OPS:
                return self.quantize(producer, self.const(producer.input[0], producer))
            raise CompileError(f"{_where(node)}: input {name!r} is not a constant; hwgen needs constant weights, "
                               f"scales and affine operands")
        return np.asarray(value)

    def quant_params(self, node) -> dict:
        """Scale (and, for Quant, zero point, bits, signedness) of a quantizer, checked."""
        scale = self.const(node.input[1], node).astype(np.float32)
        if node.op_type == "BipolarQuant":
            return {"scale": scale, "bits": 1}
        zeropt = self.const(node.input[2], node).astype(np.float32)
        raw = self.const(node.input[3], node)
        bits = float(raw.reshape(-1)[0]) if raw.size == 1 else 0.0
        if bits != int(bits) or bits < 1:
            raise CompileError(f"{_where(node)}: the bit width must be one positive integer, not {raw}")
        if np.any(zeropt != 0):
            raise CompileError(f"{_where(node)}: a non-zero zero point is not supported (only symmetric Quant)")
        a = _attrs(node)
        return {"scale": scale, "zeropt": zeropt, "bits": int(bits), "signed": int(a.get("signed", 1)),
                "narrow": int(a.get("narrow", 0)), "rounding_mode": a.get("rounding_mode", b"ROUND")}

    def integers(self, node, x: np.ndarray) -> np.ndarray:
        """The quantizer's integers y_int on ``x`` (int64), its output being ``y_int * scale``.

        Mirrors qonnx's ``int_quant`` / ``binary_quant`` step by step in float32
        (``x / scale + zeropt``, clip, round; a 1-bit signed Quant is bipolar),
        so ``y_int`` is exact where ``output / scale`` would not be.
        """
        from qonnx.custom_op.general.intquant import max_int, min_int, resolve_rounding_mode

        p = self.quant_params(node)
        x = np.asarray(x, dtype=np.float32)
        if node.op_type == "BipolarQuant" or (p["bits"] == 1 and p["signed"]):
            y = np.where(x / p["scale"] >= 0, 1, -1) if node.op_type == "Quant" else np.where(x >= 0, 1, -1)
            return y.astype(np.int64)
        y = x / p["scale"] + p["zeropt"]
        lo, hi = min_int(p["signed"], p["narrow"], p["bits"]), max_int(p["signed"], p["narrow"], p["bits"])
        mode = p["rounding_mode"]
        y = resolve_rounding_mode(mode.decode() if isinstance(mode, bytes) else mode)(np.clip(y, lo, hi))
        return y.astype(np.int64)

    def quantize(self, node, x: np.ndarray) -> np.ndarray:
        """The quantizer's float32 output on ``x``, with qonnx's own functions (what its executor computes)."""
        from qonnx.custom_op.general.bipolar_quant import binary_quant
        from qonnx.custom_op.general.intquant import int_quant

        p = self.quant_params(node)
        x = np.asarray(x, dtype=np.float32)
        if node.op_type == "BipolarQuant":
            return np.asarray(binary_quant(x, p["scale"]), dtype=np.float32)
        mode = p["rounding_mode"]
        return np.asarray(int_quant(x, p["scale"], p["zeropt"], np.float32(p["bits"]), p["signed"], p["narrow"],
                                    mode.decode() if isinstance(mode, bytes) else mode), dtype=np.float32)


def _weight_bits(q: np.ndarray) -> int:
    """1 for +-1 weights, else the smallest k with |q| <= 2^(k-1) - 1 (at least 2)."""
    if np.all(np.abs(q) == 1):
        return 1
    peak, k = int(np.abs(q).max()), 2
    while peak > (1 << (k - 1)) - 1:
        k += 1
    return k


def _channel_constant(c: np.ndarray, shape: tuple[int, ...], node, *, spatial_ok: bool) -> np.ndarray:
    """A constant operand broadcast against a tensor of ``shape`` (1, C[, H, W]) -> (C,) or (C, H, W)."""
    try:
        full = np.broadcast_to(np.asarray(c, dtype=np.float64), shape)[0]
    except ValueError:
        raise CompileError(f"{_where(node)}: operand of shape {np.shape(c)} does not broadcast to {shape}") from None
    if full.ndim == 1:
        return np.array(full)
    flat = full.reshape(full.shape[0], -1)
    if np.all(flat == flat[:, :1]):
        return np.array(flat[:, 0])
    if not spatial_ok:
        raise CompileError(f"{_where(node)}: a per-position operand is supported only between a weight layer and "
                           f"its pool; here it must be per tensor or per channel")
    return np.array(full.reshape(full.shape[0], *shape[2:]))


class _Lowering:
    """The state machine of the module docstring."""

    def __init__(self, model, mapping: PixelMapping) -> None:
        self.g = _Graph(model)
        self.model = model
        self.mapping = mapping
        self.input_name = model.graph.input[0].name
        self.output_name = model.graph.output[0].name
        in_shape = tuple(model.get_tensor_shape(self.input_name))
        if len(in_shape) != 4 or in_shape[0] != 1:
            raise CompileError(f"the model's input {self.input_name!r} has shape {in_shape}; hwgen needs an "
                               f"NCHW image (1, C, H, W)")
        self.input_shape = tuple(int(d) for d in in_shape[1:])
        c = self.input_shape[0]
        # input region: the float value of every (pixel value, channel) at every position, batch = 256
        self.table = np.broadcast_to(mapping.table(c).T.reshape(PIXEL_VALUES, c, 1, 1),
                                     (PIXEL_VALUES, *self.input_shape)).astype(np.float32)
        self.table_scale: np.ndarray | None = None  # scale of the input region's last quantizer
        self.table_int: np.ndarray | None = None  # its integers, same shape as the table
        self.stages: list[FloatStage] = []
        self.state = "input"  # input -> (affine -> bits)* ; affine at the output
        self.map_shape = self.input_shape  # (C, H, W) view of the current activations
        self.act_scale: np.ndarray | None = None  # (C,) value scale of the current bits
        self.pooled = False
        self.sign_inputs: list[str | None] = []
        self.sign_scales: list[np.ndarray | None] = []

    def shape(self, name: str) -> tuple[int, ...]:
        return tuple(int(d) for d in self.model.get_tensor_shape(name))

    # -- the walk ------------------------------------------------------------

    def run(self) -> LoweredGraph:
        current = self.input_name
        while current != self.output_name:
            consumers = self.model.find_consumers(current) or []
            if len(consumers) != 1:
                names = ", ".join(_where(n) for n in consumers) or "no node"
                raise CompileError(f"tensor {current!r} feeds {names}; hwgen lowers a chain of layers (no "
                                   f"branches or residual adds)")
            node = consumers[0]
            self.visit(node, current)
            current = node.output[0]
        if self.state != "affine" or not self.stages:
            raise CompileError("the graph's output must be the class scores of a weight layer (with an optional "
                               "affine), not binarized or input values")
        out = self.shape(self.output_name)
        if len(out) != 2 or out[0] != 1:
            raise CompileError(f"the model's output {self.output_name!r} has shape {out}; hwgen needs (1, classes)")
        self.sign_inputs.append(None)
        self.sign_scales.append(None)
        return LoweredGraph(stages=self.stages, input_shape=self.input_shape, num_classes=out[1],
                            input_name=self.input_name, output_name=self.output_name,
                            sign_inputs=self.sign_inputs, sign_scales=self.sign_scales)

    def visit(self, node, data: str) -> None:
        op = node.op_type
        if op == "Gather" and node.input[1:2] == [data]:
            self.gather(node)
            return
        if node.input[0] != data and not (op in ("Mul", "Add", "Sub") and node.input[1:2] == [data]):
            raise CompileError(f"{_where(node)}: reads the activations as input {list(node.input).index(data)}; "
                               f"supported only as the first operand (either operand of Mul/Add/Sub)")
        if op in _WEIGHT_OPS:
            self.weight_layer(node)
        elif op in _QUANT_OPS:
            self.quantizer(node)
        elif op in _AFFINE_OPS:
            self.affine_op(node, data)
        elif op == "BatchNormalization":
            self.batchnorm(node)
        elif op == "MaxPool":
            self.maxpool(node)
        elif op in _SHAPE_OPS:
            self.reshape(node)
        elif op == "Cast":
            self.cast(node)
        else:
            what = {"AveragePool": "average pooling has no binary equivalent",
                    "GlobalAveragePool": "average pooling has no binary equivalent"}.get(op, "not supported")
            raise CompileError(f"{_where(node)}: {what}; supported ops: {', '.join(SUPPORTED_OPS)}")

    # -- ops -------------------------------------------------------------------

    def reshape(self, node) -> None:
        op = node.op_type
        out_shape = self.shape(node.output[0])
        if self.state == "input":
            if op == "Transpose":
                raise CompileError(f"{_where(node)}: a Transpose before the first weight layer is not supported")
            self.table = self.table.reshape(PIXEL_VALUES, *out_shape[1:])
            if self.table_int is not None:
                self.table_int = self.table_int.reshape(PIXEL_VALUES, *out_shape[1:])
            return
        if op in ("Identity", "Dropout"):
            return
        in_shape = self.shape(node.input[0])
        nontrivial = [d for d in in_shape[1:] if d != 1]
        if op == "Transpose":
            perm = list(_attrs(node).get("perm", []))
            moved = [p for p in perm if in_shape[p] != 1]
            if perm[:1] != [0] or moved != sorted(moved):
                raise CompileError(f"{_where(node)}: only a Transpose that keeps the data order (moving size-1 "
                                   f"axes) is supported, not perm {perm} on {in_shape}")
            return
        if len(out_shape) == 2 and out_shape[0] == 1:
            return  # a flatten: the next weight layer reads the (C, H, W) map C-major
        if [d for d in out_shape[1:] if d != 1] == nontrivial:
            return
        raise CompileError(f"{_where(node)}: only a flatten to (1, N) is supported, not {in_shape} -> {out_shape}")

    def cast(self, node) -> None:
        """Before the first weight layer: numpy's astype (ONNX Cast truncates floats to integers); after it, a
        cast between float types changes no value of an exact integer or +-1 tensor and is skipped."""
        to = int(_attrs(node).get("to", 0))
        dtype = onnx.helper.tensor_dtype_to_np_dtype(to)
        if self.state == "input":
            self.table = self.table.astype(dtype)
            self.table_scale = self.table_int = None
        elif not np.issubdtype(dtype, np.floating):
            raise CompileError(f"{_where(node)}: a cast to {dtype} after the first weight layer is not supported")

    def gather(self, node) -> None:
        """Before the first weight layer: a table lookup ``data[indices]`` on the activations (1-D data, axis 0)."""
        if self.state != "input":
            raise CompileError(f"{_where(node)}: a Gather is supported only before the first weight layer")
        data = self.g.const(node.input[0], node)
        if data.ndim != 1 or int(_attrs(node).get("axis", 0)) != 0:
            raise CompileError(f"{_where(node)}: only a lookup in a 1-D table (axis 0) is supported")
        idx = self.table.astype(np.int64)
        if np.any(idx != self.table) or idx.min() < -len(data) or idx.max() >= len(data):
            raise CompileError(f"{_where(node)}: indices are not integers inside the table")
        self.table = data[idx]
        self.table_scale = self.table_int = None

    def elementwise_input(self, node, data: str) -> None:
        """An elementwise op in the input region: evaluated on the 256-value table."""
        op = node.op_type
        if op in _QUANT_OPS:
            self.table_scale = self.g.quant_params(node)["scale"]
            self.table_int = self.g.integers(node, self.table)
            self.table = self.g.quantize(node, self.table)
            return
        first = node.input[0] == data
        c = self.g.const(node.input[1] if first else node.input[0], node).astype(np.float32)
        x = self.table
        if op == "Mul":
            self.table = x * c
        elif op == "Add":
            self.table = x + c
        elif op == "Sub":
            self.table = x - c if first else c - x
        elif op == "Div":
            if not first:
                raise CompileError(f"{_where(node)}: dividing a constant by the activations is not supported")
            self.table = x / c
        self.table = self.table.astype(np.float32)
        self.table_scale = self.table_int = None  # an op after the quantizer: no longer its integers

    def input_table(self, node) -> tuple[np.ndarray, np.ndarray]:
        """(int64 (C, 256) table, scalar input scale) at the first weight layer ``node``."""
        c, h, w = self.input_shape
        values = self.table.reshape(PIXEL_VALUES, c, h * w)
        if not np.all(values == values[:, :, :1]):
            raise CompileError(f"{_where(node)}: the first layer's input is not the same function of the pixel at "
                               f"every position of a channel")
        if self.table_scale is None:
            raise CompileError(f"{_where(node)}: the first layer's input must end in a quantizer (Quant or "
                               f"BipolarQuant after the pixel scaling, as Brevitas's QuantIdentity writes it); "
                               f"float inputs cannot be mapped to integers exactly")
        scale = self.table_scale
        if scale.size != 1 or float(scale.reshape(-1)[0]) == 0:
            raise CompileError(f"{_where(node)}: the first layer's input quantizer must have one non-zero scale, "
                               f"not {scale.ravel()[:4]}")
        table = np.ascontiguousarray(self.table_int.reshape(PIXEL_VALUES, c, h * w)[:, :, 0].T)
        if np.abs(table).max() >= _TABLE_LIMIT:
            raise CompileError(f"{_where(node)}: input values up to {int(np.abs(table).max())} exceed 2^15")
        return table, np.float64(scale.reshape(-1)[0])

    def quantizer(self, node) -> None:
        if self.state == "input":
            self.elementwise_input(node, node.input[0])
            return
        if self.state != "affine":
            raise CompileError(f"{_where(node)}: two quantizers in a row are not supported")
        p = self.g.quant_params(node)
        if p["bits"] != 1 or not p.get("signed", 1):
            raise CompileError(f"{_where(node)}: {p['bits']}-bit {'un' if not p.get('signed', 1) else ''}signed "
                               f"activations; hwgen's hidden layers need 1-bit (bipolar) activations "
                               f"(BipolarQuant or a 1-bit signed Quant)")
        scale = _channel_constant(p["scale"], self.shape(node.input[0]), node, spatial_ok=False)
        if np.any(scale == 0):
            raise CompileError(f"{_where(node)}: a zero activation scale is not supported")
        # qonnx: BipolarQuant's bit is [u >= 0]; a 1-bit signed Quant's is [u / s >= 0]
        divisor = scale if node.op_type == "Quant" else np.ones_like(scale)
        if node.op_type == "Quant":
            self.compose(node, 1.0 / scale, np.zeros_like(scale))
        self.sign_inputs.append(node.input[0])
        self.sign_scales.append(divisor)
        self.state, self.act_scale, self.pooled = "bits", scale, False

    def affine_op(self, node, data: str) -> None:
        if self.state == "input":
            self.elementwise_input(node, data)
            return
        if self.state != "affine":
            raise CompileError(f"{_where(node)}: an affine op on binarized activations is not supported (it must "
                               f"follow a weight layer, before the next quantizer)")
        op = node.op_type
        other = node.input[1] if node.input[0] == data else node.input[0]
        c = self.g.const(other, node).astype(np.float64)
        shape = self.shape(data)
        k = _channel_constant(c, shape, node, spatial_ok=not self.pooled)
        first = node.input[0] == data
        if op == "Mul":
            self.compose(node, k, np.zeros_like(k))
        elif op == "Div":
            if not first:
                raise CompileError(f"{_where(node)}: dividing a constant by the activations is not supported")
            self.compose(node, 1.0 / k, np.zeros_like(k))
        elif op == "Add":
            self.compose(node, np.ones_like(k), k)
        elif first:  # Sub: x - k
            self.compose(node, np.ones_like(k), -k)
        else:  # k - x
            self.compose(node, -np.ones_like(k), k)

    def batchnorm(self, node) -> None:
        if self.state != "affine":
            raise CompileError(f"{_where(node)}: a BatchNormalization must follow a weight layer")
        if len(node.input) < 5 or any(not name for name in node.input[1:5]):
            raise CompileError(f"{_where(node)}: a BatchNormalization statistic is missing (needs scale, bias, "
                               f"mean and variance)")
        gamma, beta, mean, var = (self.g.const(n, node).astype(np.float64).reshape(-1) for n in node.input[1:5])
        if np.any(var < 0) or not all(np.all(np.isfinite(a)) for a in (gamma, beta, mean, var)):
            raise CompileError(f"{_where(node)}: negative variance or non-finite statistics")
        eps = float(_attrs(node).get("epsilon", 1e-5))
        g = gamma / np.sqrt(var + eps)
        self.compose(node, g, beta - mean * g)
        if self.stages[-1].bn_name is None:
            self.stages[-1].bn_name = node.name

    def compose(self, node, mul: np.ndarray, add: np.ndarray) -> None:
        """u -> mul * u + add on the current stage (before its pool: slope/offset; after: bn_scale/bn_shift)."""
        st = self.stages[-1]
        if not self.pooled:
            if mul.ndim == 3 or st.slope.ndim == 3 or add.ndim == 3:
                def to3(a):
                    return a if a.ndim == 3 else np.broadcast_to(a.reshape(-1, 1, 1), (len(a), *self.map_shape[1:]))
                st.slope, st.offset = to3(st.slope) * to3(mul), to3(st.offset) * to3(mul) + to3(add)
            else:
                st.slope, st.offset = st.slope * mul, st.offset * mul + add
        else:
            if mul.ndim != 1 or add.ndim != 1:
                raise CompileError(f"{_where(node)}: after a pool only per-channel operands are supported")
            st.bn_scale, st.bn_shift = st.bn_scale * mul, st.bn_shift * mul + add

    def maxpool(self, node) -> None:
        a = _attrs(node)
        kernel = list(a.get("kernel_shape", []))
        strides = list(a.get("strides", kernel))
        if (len(kernel) != 2 or kernel[0] != kernel[1] or len(set(strides)) != 1 or any(a.get("pads", [0]))
                or a.get("ceil_mode", 0) or any(d != 1 for d in a.get("dilations", [1, 1]))):
            raise CompileError(f"{_where(node)}: supported is a square MaxPool without padding, dilation or "
                               f"ceil_mode, not {a}")
        if self.state == "input":
            raise CompileError(f"{_where(node)}: a MaxPool before the first weight layer is not supported")
        st = self.stages[-1]
        if st.pool is not None or self.pooled:
            raise CompileError(f"{_where(node)}: two pools after layer {st.name!r} are not supported")
        st.pool, st.pool_name = (int(kernel[0]), int(strides[0])), node.name
        if self.state == "bits":  # max of s_c * (2b - 1): OR where s_c > 0, AND where s_c < 0
            st.pool_use_and = np.asarray(self.act_scale < 0)
        else:
            self.pooled = True
        c, h, w = self.map_shape
        self.map_shape = (c, (h - kernel[0]) // strides[0] + 1, (w - kernel[0]) // strides[0] + 1)

    def weight_layer(self, node) -> None:
        op, a = node.op_type, _attrs(node)
        if self.state == "affine":
            raise CompileError(f"{_where(node)}: reads real-valued activations; every weight layer but the first "
                               f"needs a 1-bit quantizer (BipolarQuant) in front of it")
        producer = self.model.find_producer(node.input[1])
        if producer is None or producer.op_type not in _QUANT_OPS:
            raise CompileError(f"{_where(node)}: float weights {node.input[1]!r}; hwgen needs weights quantized by "
                               f"BipolarQuant or Quant (binary or k-bit integers)")
        q = self.g.integers(producer, self.g.const(producer.input[0], producer))
        w_scale = self.g.quant_params(producer)["scale"].astype(np.float32)
        scale_full = np.broadcast_to(w_scale.astype(np.float64), q.shape)
        bias = None
        if op == "Conv":
            if int(a.get("group", 1)) != 1 or any(d != 1 for d in a.get("dilations", [1, 1])):
                raise CompileError(f"{_where(node)}: grouped or dilated convolutions are not supported")
            if a.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET"):
                raise CompileError(f"{_where(node)}: auto_pad is not supported; give explicit pads")
            pads, strides = list(a.get("pads", [0, 0, 0, 0])), list(a.get("strides", [1, 1]))
            if len(set(pads)) != 1 or len(set(strides)) != 1:
                raise CompileError(f"{_where(node)}: pads {pads} and strides {strides} must be the same on all "
                                   f"sides")
            padding, stride = int(pads[0]), int(strides[0])
            s_out = scale_full.reshape(len(q), -1)
            if len(node.input) > 2 and node.input[2]:
                bias = self.g.const(node.input[2], node).astype(np.float64).reshape(-1)
        else:
            if op == "Gemm":
                if int(a.get("transA", 0)):
                    raise CompileError(f"{_where(node)}: transA is not supported")
                trans = int(a.get("transB", 0))
                alpha, beta = float(a.get("alpha", 1.0)), float(a.get("beta", 1.0))
                if len(node.input) > 2 and node.input[2]:
                    bias = beta * self.g.const(node.input[2], node).astype(np.float64).reshape(-1)
            else:
                trans, alpha = 0, 1.0
            if q.ndim != 2:
                raise CompileError(f"{_where(node)}: weights of shape {q.shape}; a 2-D matrix is needed")
            if not trans:
                q, scale_full = q.T, scale_full.T
            s_out = alpha * scale_full
            c, h, w = self.map_shape
            if q.shape[1] != c * h * w:
                raise CompileError(f"{_where(node)}: {q.shape[1]} inputs, but the activations are {self.map_shape}")
            q = q.reshape(q.shape[0], c, h, w)
            padding, stride = 0, 1
        if not np.all(s_out == s_out[:, :1]):
            raise CompileError(f"{_where(node)}: the weight scale must be per tensor or per output channel")
        s_w = s_out[:, 0]
        if self.state == "input":
            table, s_in = self.input_table(node)
            in_scale = s_in
        else:
            table = None
            mags = np.abs(self.act_scale)
            if not np.all(mags == mags[0]):
                raise CompileError(f"{_where(node)}: its input's per-channel activation scales differ in magnitude "
                                   f"({mags.min():g} .. {mags.max():g}); a binary dot product needs one")
            in_scale = float(mags[0])
            q = q * np.sign(self.act_scale).astype(np.int64).reshape(1, -1, 1, 1)  # signs into the weights
        if q.shape[1] != self.map_shape[0]:
            raise CompileError(f"{_where(node)}: weights {q.shape} do not match the input {self.map_shape}")
        slope = s_w * in_scale
        offset = np.zeros_like(slope) if bias is None else bias * np.ones_like(slope)
        out_hw = ((self.map_shape[1] + 2 * padding - q.shape[2]) // stride + 1,
                  (self.map_shape[2] + 2 * padding - q.shape[3]) // stride + 1)
        first = not self.stages
        self.stages.append(FloatStage(
            name=node.name, spec={"name": node.name, "op_type": op}, in_shape=tuple(int(d) for d in self.map_shape),
            weights=q, weight_bits=_weight_bits(q), stride=stride, padding=padding,
            input_kind="uint8" if first else "binary", input_offset=None, slope=slope, offset=offset,
            pool=None, pool_name=None, bn_scale=np.ones(len(q)), bn_shift=np.zeros(len(q)), bn_name=None,
            input_table=table))
        self.map_shape = (int(q.shape[0]), *out_hw)
        self.state, self.pooled, self.act_scale = "affine", False, None


def lower_qonnx(model, mapping: PixelMapping | None = None) -> LoweredGraph:
    """The float stages of a cleaned-up QONNX ModelWrapper (batch 1)."""
    return _Lowering(model, mapping or PixelMapping()).run()


def import_qonnx(path, mapping: PixelMapping | None = None, *, flip: bool = True) -> Network:
    """Read a QONNX file and compile it to the IR with the checkpoint path's folding passes."""
    from hwgen.interop.qonnx_model import load_qonnx

    mapping = mapping or PixelMapping()
    lowered = lower_qonnx(load_qonnx(path), mapping)
    name = Path(path).stem
    net = compile_stages(lowered.stages, name=name, input_shape=lowered.input_shape,
                         num_classes=lowered.num_classes, flip=flip)
    net.metadata = {"source": str(path), "format": "qonnx",
                    "pixel_mapping": {"mean": list(mapping.mean), "std": list(mapping.std)}}
    return net
