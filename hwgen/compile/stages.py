"""Read a checkpoint (architecture JSON + weights) into float *stages*, without PyTorch model code.

A stage is one weight layer and what follows it up to the next weight layer:
``weight layer -> [max-pool] -> [BatchNorm]`` (flatten and dropout carry no
arithmetic at inference and are dropped; a linear layer after a flatten of a
(C, H, W) map becomes a convolution whose kernel covers the whole map).

Each stage's real-valued output before the next sign is, per output element,

    z[c, h, w] = slope[c(, h, w)] * acc[c, h, w] + offset[c(, h, w)]      (before the pool)
    u = bn_scale[c] * max_window(z) + bn_shift[c]                        (pool, then BatchNorm)

where ``acc`` is the integer accumulator of the IR (ir.py). The folding
passes (fold.py) turn ``sign(u)`` into thresholds and the last stage's ``u``
into integer scores.

Graphs (architecture version 2) add two float nodes. :class:`FloatJoin`, a
residual ``y = u_main + g_c * sign(x_shortcut)`` whose main branch is a stage
(conv [-> BatchNorm], no pool) read by nothing else, and :class:`FloatPool`,
a max-pool of a value that is already complete (after a join or a
BatchNorm, or of a layer whose bits are already read): the next layer reads
``sign(max y) = OR of sign(y)``. Every
float node names the IR node whose output it reads (``input`` / ``shortcut``;
:data:`~hwgen.compile.ir.INPUT` for the pixels); a stage's IR output is its
pool's name if it has a pool, else its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from hwgen.compile.ir import INPUT
from hwgen.errors import CompileError
from hwgen.train.architecture import ARCH_INPUT, Architecture, output_shape, spec_inputs


@dataclass
class FloatStage:
    """One weight layer with its pool and BatchNorm, as numpy arrays.

    ``weights``: integer weights (C_out, C_in, KH, KW) of the accumulator;
    ``slope`` / ``offset``: the affine map acc -> z, shape (C_out,) or
    (C_out, H_out, W_out); ``pool``: (kernel, stride) or None;
    ``bn_scale`` / ``bn_shift``: (C_out,) (1 and 0 without BatchNorm);
    ``input_table``: the first layer's exact pixel -> integer map (C_in, 256)
    instead of ``input_offset`` (see ir.py); ``pool_use_and``: (C_out,) bool
    for a pool placed after the sign (QONNX graphs: a max over the values
    ``s_c * (2b - 1)`` is an OR of the bits for s_c > 0, an AND for s_c < 0),
    None when the pool sits before the BatchNorm (the choice then follows
    the BatchNorm's slope, fold.py).
    """

    name: str
    spec: dict[str, Any]
    in_shape: tuple[int, int, int]
    weights: np.ndarray
    weight_bits: int
    stride: int
    padding: int
    input_kind: str
    input_offset: np.ndarray | None
    slope: np.ndarray
    offset: np.ndarray
    pool: tuple[int, int] | None
    pool_name: str | None
    bn_scale: np.ndarray
    bn_shift: np.ndarray
    bn_name: str | None
    input_table: np.ndarray | None = None
    pool_use_and: np.ndarray | None = None
    input: str | None = None  # the IR node it reads; None: the previous one (chains, QONNX)
    join: str | None = None  # the FloatJoin whose main branch this stage is (its output: the accumulator)

    @property
    def output_name(self) -> str:
        """The name of the IR node that gives this stage's bits: its pool's, else its own."""
        return self.pool_name or self.name


@dataclass
class FloatJoin:
    """Residual ``y = u_main + scale_c * sign(shortcut bits)``: ``main`` is the stage giving ``u_main``."""

    name: str
    main: FloatStage
    shortcut: str  # the IR node whose bits the shortcut carries
    scale: np.ndarray  # g (C,)


@dataclass
class FloatPool:
    """Max-pool of a complete value: OR of the bits of IR node ``input`` (``in_shape`` (C, H, W))."""

    name: str
    input: str
    in_shape: tuple[int, int, int]
    kernel: int
    stride: int


FloatNode = FloatStage | FloatJoin | FloatPool


def _param(state: dict[str, np.ndarray], layer: str, name: str, shape: tuple[int, ...] | None = None) -> np.ndarray:
    """``layers.LAYER.NAME`` as float64, checked for presence, ``shape`` (if given) and finiteness."""
    key = f"layers.{layer}.{name}"
    if key not in state:
        raise CompileError(f"layer {layer!r}: the checkpoint has no {key}")
    value = np.asarray(state[key], dtype=np.float64)
    if shape is not None and value.shape != tuple(shape):
        raise CompileError(f"layer {layer!r}: {key} has shape {value.shape}, the architecture needs {tuple(shape)}")
    if not np.all(np.isfinite(value)):
        raise CompileError(f"layer {layer!r}: {key} contains NaN or infinite values")
    return value


def integer_weights(spec: dict[str, Any], weight: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(integer weights q, per-output-channel real scale s_w) with W_q = s_w[c] * q.

    Binary: q = sign(W) with sign(0) = +1, s_w = 1. k-bit: the training
    quantiser's s_c = max|W_c| / (2^(k-1) - 1) (1 for an all-zero channel),
    q = clamp(round_half_even(W / s_c)). Float weights cannot be lowered.
    """
    bits = int(spec["weight_bits"])
    if bits == 1:
        return np.where(weight >= 0, 1, -1).astype(np.int64), np.ones(weight.shape[0])
    if bits == 32:
        raise CompileError(f"layer {spec['name']!r} has float weights; hardware needs binary or k-bit "
                           "integer weights (train with --first-layer/--last-layer int8 or binary)")
    qmax = 2 ** (bits - 1) - 1
    w32 = weight.astype(np.float32)  # the training quantiser runs in float32
    peak = np.abs(w32).reshape(len(w32), -1).max(axis=1)
    s = np.where(peak > 0, peak / np.float32(qmax), np.float32(1.0)).astype(np.float32)
    q = np.clip(np.round(w32 / s.reshape(-1, *([1] * (w32.ndim - 1)))), -qmax, qmax)
    return q.astype(np.int64), s.astype(np.float64)


def output_scale(spec: dict[str, Any], state: dict[str, np.ndarray], weight: np.ndarray,
                 out_hw: tuple[int, int] | None) -> np.ndarray:
    """The scale factor of the layer's output: (C,) or (C, H, W); see hwgen/train/scales.py."""
    name, mode = spec["name"], spec["scale"]
    c = weight.shape[0]
    conv = out_hw is not None
    h, w = out_hw if conv else (1, 1)
    p = lambda key, *shape: _param(state, name, f"scale.{key}", shape)  # noqa: E731
    if mode == "none":
        factor = np.ones(c)
    elif mode == "xnor":
        factor = np.abs(weight.astype(np.float32)).reshape(c, -1).mean(axis=1).astype(np.float64)
    elif mode == "gamma_channel":
        factor = p("gamma", c)
    elif mode == "gamma_element":
        factor = p("gamma", c, h, w) if conv else p("gamma", c)
    elif mode == "gamma_channel_spatial":
        factor = p("alpha", c)[:, None, None] * p("beta", h, w)[None] if conv else p("alpha", c)
    elif mode == "gamma_factorised":
        factor = (p("alpha", c)[:, None, None] * p("beta", h)[None, :, None] * p("gamma", w)[None, None, :]
                  if conv else p("alpha", c))
    elif mode == "trained":
        factor = p("alpha", c)
    else:
        raise CompileError(f"layer {name!r}: unknown scale mode {mode!r}")
    act = spec.get("act_scale", "none")
    if act != "none":
        beta = _param(state, name, "act_scale.beta", (1,) if act == "layer" else (c,))
        factor = factor * (beta.reshape(-1, 1, 1) if factor.ndim == 3 else beta)
    return factor


def _first_layer_input(arch: Architecture) -> tuple[np.ndarray, np.ndarray, float]:
    """(integer pixel offset p_c, residual 255*mean_c - p_c, 1 / (255 * std)) of the input normalisation."""
    std = np.asarray(arch.input.std, dtype=np.float64)
    if not np.all(std == std[0]):
        raise CompileError(
            f"the input normalisation has per-channel stds {tuple(arch.input.std)}; an integer first layer needs "
            "one shared std (models trained by this hwgen use hardware_normalization) — retrain the model")
    mean255 = 255.0 * np.asarray(arch.input.mean, dtype=np.float64)
    offset = np.round(mean255)
    return offset.astype(np.int64), mean255 - offset, 1.0 / (255.0 * float(std[0]))


def _valid_tap_sums(q: np.ndarray, residual: np.ndarray, in_hw: tuple[int, int], padding: int,
                    stride: int) -> np.ndarray:
    """R[o, y, x] = sum over the in-bounds taps of q[o, c, i, j] * residual[c]  (C_out, H_out, W_out)."""
    c_out, _, kh, kw = q.shape
    h, w = in_hw
    weighted = (q * residual.reshape(1, -1, 1, 1)).sum(axis=1)  # (C_out, KH, KW)
    h_out, w_out = (h + 2 * padding - kh) // stride + 1, (w + 2 * padding - kw) // stride + 1
    out = np.zeros((c_out, h_out, w_out))
    for y in range(h_out):
        for x in range(w_out):
            i0, j0 = y * stride - padding, x * stride - padding
            ii = slice(max(0, -i0), min(kh, h - i0))
            jj = slice(max(0, -j0), min(kw, w - j0))
            out[:, y, x] = weighted[:, ii, jj].sum(axis=(1, 2))
    return out


def read_stages(arch: Architecture, state: dict[str, np.ndarray]) -> list[FloatNode]:
    """The architecture as float nodes in a topological order: stages (weight layer, pool, BatchNorm, with
    integer weights and affine maps), residual joins and pools of complete values."""
    nodes: list[FloatNode] = []
    # What each spec's output is: a stage still open to a pool / BatchNorm, or a complete IR node's bits.
    value: dict[str, FloatStage | str] = {ARCH_INPUT: INPUT}
    shapes: dict[str, tuple[int, ...]] = {ARCH_INPUT: arch.input.shape}
    map_shapes: dict[str, tuple[int, ...]] = {ARCH_INPUT: arch.input.shape}  # the (C, H, W) view
    readers: dict[int, list[str]] = {}  # id(stage) -> what reads it ("bits" or "join")
    stages: list[FloatStage] = []

    def bits_of(name: str) -> str:
        """The IR node giving the bits of spec ``name``'s output (its sign)."""
        v = value[name]
        if isinstance(v, FloatStage):
            readers.setdefault(id(v), []).append("bits")
            return v.output_name
        return v

    for spec, inputs in zip(arch.layers, spec_inputs(arch)):
        kind, name, src = spec["kind"], spec["name"], inputs[0]
        shapes[name] = shape = (shapes[src] if kind == "residual" else output_shape(spec, shapes[src]))
        map_shapes[name] = map_shapes[src] if kind in ("flatten", "dropout") else (
            shape if len(shape) == 3 else (shape[0], 1, 1))
        if kind in ("conv", "linear"):
            first = isinstance(value[src], str) and value[src] == INPUT
            stage = _weight_stage(arch, spec, state, map_shapes[src], first=first)
            stage.input = INPUT if first else bits_of(src)
            stages.append(stage)
            nodes.append(stage)
            value[name] = stage
        elif kind == "maxpool":
            v = value[src]
            unread = isinstance(v, FloatStage) and not readers.get(id(v)) and v.join is None
            if unread and v.bn_name is None and v.pool is None:  # conv -> pool -> [BN]: pooled before the sign
                v.pool, v.pool_name = (int(spec["kernel"]), int(spec["stride"])), name
                value[name] = v
            elif unread and v.bn_name is None:
                raise CompileError(f"max-pool {name!r} follows another max-pool; one pool per layer")
            elif isinstance(v, str) and v == INPUT:
                raise CompileError(f"layer {name!r} ({kind}) comes before any weight layer")
            else:
                nodes.append(FloatPool(name=name, input=bits_of(src), in_shape=tuple(map_shapes[src]),
                                       kernel=int(spec["kernel"]), stride=int(spec["stride"])))
                value[name] = name
        elif kind == "batchnorm":
            stage = value[src]
            if not isinstance(stage, FloatStage):
                raise CompileError(f"BatchNorm {name!r} must follow a weight layer (or its max-pool)")
            if stage.bn_name is not None:
                raise CompileError(f"two BatchNorms after layer {stage.name!r} are not supported")
            _check_unread(stage, name, readers)
            gamma, beta, mean, var = (_param(state, name, key, (spec["channels"],))
                                      for key in ("weight", "bias", "running_mean", "running_var"))
            if np.any(var < 0):
                raise CompileError(f"BatchNorm {name!r} has negative running variance")
            scale = gamma / np.sqrt(var + float(spec.get("eps", 1e-5)))
            stage.bn_scale, stage.bn_shift, stage.bn_name = scale, beta - mean * scale, name
            value[name] = stage
        elif kind == "residual":
            nodes.append(_join(spec, state, value[src], bits_of(inputs[1]), readers))
            value[name] = name
        elif kind in ("flatten", "dropout"):
            value[name] = value[src]
        else:
            raise CompileError(f"layer {name!r} of kind {kind!r} cannot be lowered")
    if not stages:
        raise CompileError("the network has no weight layers")
    if value[arch.layers[-1]["name"]] is not stages[-1] or nodes[-1] is not stages[-1]:
        raise CompileError("the network must end with its last weight layer (and its BatchNorm)")
    for stage in stages[1:]:
        if not stage.spec["binarize_input"]:
            raise CompileError(f"layer {stage.name!r} reads real-valued activations; only the first layer may")
    for stage in stages:
        uses = readers.get(id(stage), [])
        if "join" in uses and len(uses) > 1:
            raise CompileError(f"layer {stage.name!r} is the main branch of residual {stage.join!r} and is read "
                               f"elsewhere too; a residual branch's output feeds only its join")
    return nodes


def _check_unread(stage: FloatStage, name: str, readers: dict[int, list[str]]) -> None:
    """A pool or BatchNorm ``name`` joins ``stage`` only while nothing reads the stage yet (else the earlier
    reader would see the stage's value without it, which one IR conv cannot give both ways)."""
    if readers.get(id(stage)) or stage.join is not None:
        raise CompileError(f"layer {name!r} follows {stage.name!r}, whose output is already read before it; "
                           f"a layer's pool and BatchNorm must come before its first reader")


def _join(spec: dict[str, Any], state: dict[str, np.ndarray], main, shortcut: str,
          readers: dict[int, list[str]]) -> FloatJoin:
    """The FloatJoin of a residual spec whose main input is ``main`` and whose shortcut bits come from IR
    node ``shortcut``."""
    name = spec["name"]
    if spec.get("shortcut") != "binary":
        raise CompileError(f"residual {name!r} has a {spec.get('shortcut')} shortcut; integer hardware carries "
                           f"the shortcut as bits (train with --shortcut binary, docs/residual.md)")
    if not isinstance(main, FloatStage) or main.pool is not None or main.join is not None:
        raise CompileError(f"residual {name!r}: the main input must be a weight layer (and its BatchNorm), "
                           f"without a max-pool, read by this residual only")
    main.join = name
    readers.setdefault(id(main), []).append("join")
    return FloatJoin(name=name, main=main, shortcut=shortcut, scale=_param(state, name, "scale", (spec["channels"],)))


def _weight_stage(arch: Architecture, spec: dict[str, Any], state: dict[str, np.ndarray],
                  in_shape: tuple[int, int, int], first: bool) -> FloatStage:
    """The stage of one conv/linear layer reading a (C, H, W) map ``in_shape``."""
    name = spec["name"]
    if spec["kind"] == "linear":
        expected = (spec["out_features"], spec["in_features"])
    else:
        expected = (spec["out_channels"], spec["in_channels"], spec["kernel"], spec["kernel"])
    weight = _param(state, name, "weight", expected)
    if spec["kind"] == "linear":
        weight = weight.reshape(weight.shape[0], *in_shape)  # C-major, as torch.flatten orders it
        stride, padding, out_hw = 1, 0, None
    else:
        stride, padding = int(spec["stride"]), int(spec["padding"])
        out_hw = output_shape(spec, in_shape)[1:]
    q, weight_scale = integer_weights(spec, weight)
    factor = output_scale(spec, state, weight, out_hw)
    slope = weight_scale.reshape(-1, *([1] * (factor.ndim - 1))) * factor
    offset = np.zeros_like(slope)
    input_offset = None
    if not spec["binarize_input"]:
        if not first:
            raise CompileError(f"layer {name!r} reads real-valued activations; only the first layer may")
        input_offset, residual, input_scale = _first_layer_input(arch)
        slope = slope * input_scale
        if np.any(residual != 0):  # the mean's fractional part over the in-bounds taps: a bias
            tap_sums = _valid_tap_sums(q, residual, in_shape[1:], padding, stride)
            if np.all(tap_sums == tap_sums[:, :1, :1]):
                tap_sums = tap_sums[:, 0, 0]  # no padding: the same for every position
            if slope.ndim != tap_sums.ndim:
                slope, tap_sums = np.broadcast_arrays(_as_3d(slope), _as_3d(tap_sums))
            offset = -slope * tap_sums
    c = q.shape[0]
    return FloatStage(name=name, spec=spec, in_shape=tuple(int(v) for v in in_shape), weights=q,
                      weight_bits=int(spec["weight_bits"]), stride=stride, padding=padding,
                      input_kind="binary" if spec["binarize_input"] else "uint8", input_offset=input_offset,
                      slope=np.array(slope, dtype=np.float64), offset=np.array(offset, dtype=np.float64),
                      pool=None, pool_name=None, bn_scale=np.ones(c), bn_shift=np.zeros(c), bn_name=None)


def _as_3d(a: np.ndarray) -> np.ndarray:
    return a if a.ndim == 3 else a.reshape(-1, 1, 1)
