"""The JSON architecture of a binary network: what later stages read.

A network is an input description plus an ordered list of layer specs. The
compiler reads this JSON and the weights (safetensors) without importing any
PyTorch model code, so everything needed to compute the network is here.

Layer kinds and their fields (every spec has ``kind`` and a unique ``name``;
the weights of layer ``NAME`` are the state-dict entries ``layers.NAME.*``):

``conv``
    ``in_channels, out_channels, kernel, stride, padding, in_hw [H, W]``,
    ``weight_bits`` (1 binary, 2..16 k-bit integer, 32 float),
    ``binarize_input`` (true: the input is sign(x) with sign(0) = +1, the
    previous layer's activation; false: real input, e.g. normalised pixels),
    ``estimator`` / ``weight_estimator`` (training only), ``scale`` (a
    :class:`~hwgen.train.scales.ScaleMode` value), ``act_scale`` (an
    :class:`~hwgen.train.scales.ActScaleMode` value). Zero padding: padded
    positions contribute 0 to the dot product. No bias.
``linear``
    ``in_features, out_features`` and the same quantisation fields as conv.
``batchnorm``
    ``channels``; BatchNorm over channels (2-d after conv, 1-d after linear),
    state ``weight, bias, running_mean, running_var``, field ``eps``.
``maxpool``
    ``kernel, stride`` (no padding).
``flatten``
    (C, H, W) -> C*H*W in C-major order, as ``torch.flatten`` does.
``dropout``
    ``p``; identity at inference.
``residual`` (version 2)
    ``inputs [main, shortcut]``, ``channels``, ``shortcut`` (``binary`` or
    ``float``), ``estimator``: ``y = main + g_c * q(shortcut)`` with a
    trained per-channel scale ``g`` (state ``scale``, (C,)) and ``q = sign``
    (sign(0) = +1, the bits a streaming accelerator carries on its skip
    path, backward by the estimator) or the identity (a float shortcut, for
    comparison; not compilable). Both inputs have shape (C, H, W).
    docs/residual.md.

Graphs (version 2): a spec reads the output of the spec named by its
``input`` field (``"input"`` names the normalised pixels), or of the previous
spec when it has none; a residual reads the two named in ``inputs``. The
list is in a topological order and the last spec gives the class scores. A
chain (no ``input`` / ``inputs`` fields, no residual) is written as version 1.

The input is uint8 pixels (N, C, H, W); the network first computes
``(x / 255 - mean_c) / std_c`` (zoo models use :func:`hardware_normalization`:
``mean_c = p_c / 255`` with integer ``p_c`` and one shared std). The output of the last layer is the class
score vector; the prediction is its argmax with ties to the lowest index.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from hwgen.errors import ConfigError

ARCH_FORMAT = "hwgen-arch"
#: 2: graphs (``input`` / ``inputs`` fields, residual layers); chains are still written as version 1.
ARCH_VERSION = 2
ARCH_READABLE_VERSIONS = (1, 2)
#: What a spec's ``input`` names to read the normalised pixels.
ARCH_INPUT = "input"
SHORTCUTS = ("binary", "float")

LAYER_KINDS = ("conv", "linear", "batchnorm", "maxpool", "flatten", "dropout", "residual")


@dataclass(frozen=True)
class InputSpec:
    """Input pixels: uint8 tensor of ``shape`` (C, H, W), normalised per channel."""

    shape: tuple[int, int, int]
    mean: tuple[float, ...]
    std: tuple[float, ...]


@dataclass(frozen=True)
class Architecture:
    """A whole network: ``name``, input, ``num_classes`` and layer specs (dicts)."""

    name: str
    input: InputSpec
    num_classes: int
    layers: tuple[dict[str, Any], ...]
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def is_graph(self) -> bool:
        """Some spec names its inputs (a fork or a residual join): the architecture needs version 2."""
        return any("input" in spec or "inputs" in spec for spec in self.layers)

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": ARCH_FORMAT,
            "version": ARCH_VERSION if self.is_graph else 1,
            "name": self.name,
            "input": {
                "shape": list(self.input.shape),
                "mean": list(self.input.mean),
                "std": list(self.input.std),
            },
            "num_classes": self.num_classes,
            "options": dict(self.options),
            "layers": [dict(layer) for layer in self.layers],
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=1, sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Architecture":
        """Parse and validate an architecture dict; raises ConfigError naming the problem."""
        if not isinstance(data, dict) or data.get("format") != ARCH_FORMAT:
            raise ConfigError(f"not a hwgen architecture (expected format {ARCH_FORMAT!r})")
        if data.get("version") not in ARCH_READABLE_VERSIONS:
            raise ConfigError(
                f"architecture version {data.get('version')!r} is not supported "
                f"(this hwgen reads versions {', '.join(map(str, ARCH_READABLE_VERSIONS))})"
            )
        try:
            inp = data["input"]
            arch = cls(
                name=str(data["name"]),
                input=InputSpec(
                    shape=tuple(int(v) for v in inp["shape"]),
                    mean=tuple(float(v) for v in inp["mean"]),
                    std=tuple(float(v) for v in inp["std"]),
                ),
                num_classes=int(data["num_classes"]),
                layers=tuple(dict(layer) for layer in data["layers"]),
                options=dict(data.get("options", {})),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(f"malformed architecture: {exc!r}") from None
        validate_layers(arch)
        return arch

    @classmethod
    def from_json(cls, text: str) -> "Architecture":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"architecture is not valid JSON: {exc}") from None
        return cls.from_dict(data)


def hardware_normalization(mean: tuple[float, ...], std: tuple[float, ...]) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Input normalisation that an integer first layer reproduces exactly.

    ``mean_c`` becomes ``p_c / 255`` with integer ``p_c = round(255 * mean_c)``
    and the per-channel stds become one shared ``s`` (their average). Then
    ``(x / 255 - mean_c) / s = (x - p_c) / (255 s)``: the first layer's dot
    product is the integer sum ``W . (x - p_c)`` times one positive constant,
    which folds into the thresholds, and zero padding in the normalised domain
    is padding with the pixel value ``p_c``. With per-channel stds a binary
    weight would become ``+-1 / s_c``, which integer hardware cannot hold.
    """
    shared = sum(std) / len(std)
    return tuple(round(255 * m) / 255 for m in mean), tuple(shared for _ in std)


def spec_inputs(arch: Architecture) -> list[tuple[str, ...]]:
    """Per spec, the names of the specs it reads (:data:`ARCH_INPUT` for the pixels), defaults resolved."""
    result, previous = [], ARCH_INPUT
    for spec in arch.layers:
        if "inputs" in spec:
            result.append(tuple(str(name) for name in spec["inputs"]))
        else:
            result.append((str(spec.get("input", previous)),))
        previous = spec.get("name")
    return result


def validate_layers(arch: Architecture) -> None:
    """Check layer kinds, unique names, that inputs name earlier specs, and that shapes flow from the
    input to num_classes."""
    shapes: dict[str, tuple[int, ...]] = {ARCH_INPUT: arch.input.shape}
    for layer, inputs in zip(arch.layers, spec_inputs(arch)):
        kind, name = layer.get("kind"), layer.get("name")
        if kind not in LAYER_KINDS:
            raise ConfigError(f"layer {name!r}: unknown kind {kind!r} (known: {', '.join(LAYER_KINDS)})")
        if not name or name in shapes:
            raise ConfigError(f"layer names must be unique, non-empty and not {ARCH_INPUT!r}, got {name!r}")
        missing = [n for n in inputs if n not in shapes]
        if missing or len(inputs) != (2 if kind == "residual" else 1):
            raise ConfigError(f"layer {name!r} ({kind}) reads {list(inputs)}: "
                              + (f"{missing[0]!r} is not an earlier layer" if missing
                                 else f"a {kind} layer reads {2 if kind == 'residual' else 1} input(s)"))
        if kind == "residual":
            shape = residual_shape(layer, shapes[inputs[0]], shapes[inputs[1]])
        else:
            shape = output_shape(layer, shapes[inputs[0]])
        shapes[name] = shape
    if shape != (arch.num_classes,):
        raise ConfigError(f"the network ends with shape {shape}, expected ({arch.num_classes},) class scores")


def residual_shape(layer: dict[str, Any], main: tuple[int, ...], shortcut: tuple[int, ...]) -> tuple[int, ...]:
    """Shape after a residual layer (that of both inputs); ConfigError on a mismatch or unknown shortcut."""
    name, c = layer["name"], layer["channels"]
    if main != shortcut or len(main) != 3 or main[0] != c:
        raise ConfigError(f"residual {name!r} adds inputs of shapes {main} and {shortcut}; both must be "
                          f"({c}, H, W)")
    if layer.get("shortcut") not in SHORTCUTS:
        raise ConfigError(f"residual {name!r}: shortcut must be one of {', '.join(SHORTCUTS)}, "
                          f"not {layer.get('shortcut')!r}")
    return main


def conv_out_size(size: int, kernel: int, stride: int, padding: int) -> int:
    """Output length of a convolution/pool: floor((size + 2*padding - kernel) / stride) + 1."""
    return (size + 2 * padding - kernel) // stride + 1


def output_shape(layer: dict[str, Any], shape: tuple[int, ...]) -> tuple[int, ...]:
    """Shape after ``layer`` for a per-sample input ``shape``; raises ConfigError on mismatch."""
    kind, name = layer["kind"], layer["name"]

    def need(cond: bool, what: str) -> None:
        if not cond:
            raise ConfigError(f"layer {name!r} ({kind}): {what}, but its input has shape {shape}")

    if kind == "conv":
        need(len(shape) == 3 and shape[0] == layer["in_channels"], f"expects {layer['in_channels']} input channels")
        need(list(shape[1:]) == list(layer["in_hw"]), f"expects input size {layer['in_hw']}")
        h, w = (conv_out_size(s, layer["kernel"], layer["stride"], layer["padding"]) for s in shape[1:])
        need(h > 0 and w > 0, "produces an empty output")
        return (layer["out_channels"], h, w)
    if kind == "linear":
        need(len(shape) == 1 and shape[0] == layer["in_features"], f"expects {layer['in_features']} input features")
        return (layer["out_features"],)
    if kind == "batchnorm":
        need(shape[0] == layer["channels"], f"expects {layer['channels']} channels")
        return shape
    if kind == "maxpool":
        need(len(shape) == 3, "needs a (C, H, W) input")
        h, w = (conv_out_size(s, layer["kernel"], layer["stride"], 0) for s in shape[1:])
        need(h > 0 and w > 0, "produces an empty output")
        return (shape[0], h, w)
    if kind == "flatten":
        size = 1
        for s in shape:
            size *= s
        return (size,)
    return shape  # dropout
