"""The model zoo: architectures as data (see :mod:`hwgen.train.architecture`).

Each zoo entry turns :class:`ModelOptions` and an input description into an
:class:`Architecture`. Conventions shared by every model:

* a weight layer (conv/linear) is followed by BatchNorm; the next weight layer
  binarizes its input, so ``sign(BN(.))`` sits between weight layers;
* max-pool sits between a conv and its BatchNorm (conv -> pool -> BN), as in
  the binary-network literature's VGG-Small;
* hidden layers have binary weights and binary inputs (W1A1); the first
  layer reads normalised uint8 pixels and the last layer produces class
  scores, each with the precision in the options (32 float, 8 int8, 1 binary).

Models:

``vgg_small``
    conv 3->128w, then binary 3x3 convs 128w-128w-256w-256w-512w-512w with
    padding 1, 2x2 max-pool after the 2nd, 4th and 6th, FC (512w*4*4)->10.
    ``w`` is the width multiplier. Default first layer int8, last int8.
``cnv``
    FINN/Brevitas CNV: 3x3 convs without padding 64, 64, pool, 128, 128,
    pool, 256, 256, then FC 512, 512, 10. First layer binary weights on
    8-bit pixels; last layer binary.
``tfc``, ``sfc``, ``lfc``
    FINN MLPs: three hidden FC layers of 64, 256 or 1024 units on the
    flattened image, dropout 0.2 on the input and hidden layers.
``resnet``
    CIFAR ResNet (He et al. 2016) with binary 3x3 convolutions, depth
    ``6n + 2`` (``depth``, default 8: n = 1 block per stage): a 3x3 conv of
    16w channels (first layer, default int8) and BatchNorm, then three
    stages of n basic blocks with 16w, 32w, 64w channels, the first block of
    stages 2 and 3 downsampling (stride-2 first conv). A block on input x
    (the previous block's real output, whose sign is its bits) computes
    ``y = BN2(conv2(sign(BN1(conv1(sign(x)))))) + g * q(x_s)`` with the
    identity shortcut ``x_s = x``, or, where the block downsamples, the
    shortcut ``x_s = BN_d(conv_d(sign(x)))`` of a binary 1x1 stride-2
    convolution; ``q`` is sign (``shortcut="binary"``, the default: exact in
    integers, docs/residual.md) or the identity (``"float"``, the accuracy
    reference). Head: flatten, FC (64w*8*8)->10 (default binary, as CNV:
    an int8 FC over 4096 inputs leaves the 32-bit class scores only about
    13 bits of slope precision, docs/residual.md), BatchNorm.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Callable

from hwgen.errors import ConfigError
from hwgen.train.architecture import SHORTCUTS, Architecture, InputSpec, conv_out_size, validate_layers
from hwgen.train.quantizers import Estimator
from hwgen.train.scales import ActScaleMode, ScaleMode

PRECISIONS = {"float": 32, "int8": 8, "binary": 1}


def parse_precision(text: str) -> int:
    """``float`` -> 32, ``binary`` -> 1, ``intK`` -> K (2 <= K <= 16)."""
    if text in PRECISIONS:
        return PRECISIONS[text]
    if text.startswith("int") and text[3:].isdigit() and 2 <= int(text[3:]) <= 16:
        return int(text[3:])
    raise ConfigError(f"precision must be float, binary or intK with 2 <= K <= 16, not {text!r}")


def precision_name(bits: int) -> str:
    return {32: "float", 1: "binary"}.get(bits, f"int{bits}")


@dataclass(frozen=True)
class ModelOptions:
    """Quantisation and size options shared by every zoo model.

    ``first_bits`` / ``last_bits``: weight precision of the first and last
    weight layer (None: the model's default). ``scale`` applies to every
    binary-weight layer; layers with k-bit or float weights carry their scale
    in the weights and get ``ScaleMode.NONE``.
    """

    width: float = 1.0
    first_bits: int | None = None
    last_bits: int | None = None
    scale: ScaleMode = ScaleMode.NONE
    act_scale: ActScaleMode = ActScaleMode.NONE
    estimator: Estimator = Estimator.STE
    weight_estimator: Estimator = Estimator.STE
    dropout: float | None = None
    depth: int | None = None
    shortcut: str = "binary"

    def __post_init__(self) -> None:
        if not (isinstance(self.width, (int, float)) and self.width > 0 and self.width == self.width):
            raise ConfigError(f"width must be a positive number, not {self.width!r}")
        if self.dropout is not None and not 0 <= self.dropout < 1:
            raise ConfigError(f"dropout must lie in [0, 1), not {self.dropout!r}")
        if self.shortcut not in SHORTCUTS:
            raise ConfigError(f"shortcut must be one of {', '.join(SHORTCUTS)}, not {self.shortcut!r}")
        if self.depth is not None and (isinstance(self.depth, bool) or not isinstance(self.depth, int)
                                       or self.depth < 8 or (self.depth - 2) % 6):
            raise ConfigError(f"depth must be 6n + 2 with n >= 1 (8, 14, 20, ...), not {self.depth!r}")

    def to_dict(self) -> dict[str, Any]:
        """The options as JSON values; ``depth`` and ``shortcut`` (residual models only) only when not the
        default, so other models' architectures are written as before."""
        data = asdict(self)
        for key in ("scale", "act_scale", "estimator", "weight_estimator"):
            data[key] = data[key].value
        if data["depth"] is None:
            del data["depth"]
        if data["shortcut"] == "binary":
            del data["shortcut"]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ModelOptions":
        return cls(
            width=float(data.get("width", 1.0)),
            first_bits=data.get("first_bits"),
            last_bits=data.get("last_bits"),
            scale=ScaleMode(data.get("scale", "none")),
            act_scale=ActScaleMode(data.get("act_scale", "none")),
            estimator=Estimator(data.get("estimator", "ste")),
            weight_estimator=Estimator(data.get("weight_estimator", "ste")),
            dropout=data.get("dropout"),
            depth=data.get("depth"),
            shortcut=data.get("shortcut", "binary"),
        )


class _LayerStack:
    """Appends layer specs while tracking the per-sample shape (C, H, W) or (F,)."""

    def __init__(self, options: ModelOptions, input_shape: tuple[int, int, int]):
        self.options = options
        self.shape: tuple[int, ...] = input_shape
        self.layers: list[dict[str, Any]] = []
        self.weight_layers = 0
        self.shapes: dict[str, tuple[int, ...]] = {}  # graphs: the shape of every named layer's output

    def _append(self, spec: dict[str, Any], shape: tuple[int, ...]) -> None:
        self.layers.append(spec)
        self.shape = self.shapes[spec["name"]] = shape

    def _read(self, spec: dict[str, Any], source: str | None) -> dict[str, Any]:
        """``spec`` reading layer ``source`` (None: the previous layer); sets the current shape to its output."""
        if source is not None and (not self.layers or self.layers[-1]["name"] != source):
            spec["input"] = source
            self.shape = self.shapes[source]
        return spec

    def _quant_fields(self, bits: int, binarize_input: bool) -> dict[str, Any]:
        o = self.options
        return {
            "weight_bits": bits,
            "binarize_input": binarize_input,
            "estimator": o.estimator.value,
            "weight_estimator": o.weight_estimator.value,
            "scale": (o.scale if bits == 1 else ScaleMode.NONE).value,
            "act_scale": o.act_scale.value,
        }

    def conv(self, out_channels: int, *, bits: int, kernel: int = 3, padding: int = 0, stride: int = 1,
             name: str | None = None, source: str | None = None) -> str:
        first = self.weight_layers == 0
        name = name or f"conv{self.weight_layers}"
        spec = self._read({"kind": "conv", "name": name}, source)
        c, h, w = self.shape
        spec.update({"in_channels": c, "out_channels": out_channels, "kernel": kernel, "stride": stride,
                     "padding": padding, "in_hw": [h, w], **self._quant_fields(bits, binarize_input=not first)})
        self.weight_layers += 1
        self._append(spec, (out_channels, conv_out_size(h, kernel, stride, padding),
                            conv_out_size(w, kernel, stride, padding)))
        return name

    def linear(self, out_features: int, *, bits: int) -> None:
        first = self.weight_layers == 0
        name = f"fc{self.weight_layers}"
        self.layers.append({
            "kind": "linear", "name": name, "in_features": self.shape[0], "out_features": out_features,
            **self._quant_fields(bits, binarize_input=not first),
        })
        self.weight_layers += 1
        self.shape = (out_features,)

    def batchnorm(self, name: str | None = None) -> str:
        name = name or f"bn{self.weight_layers - 1}"
        self._append({"kind": "batchnorm", "name": name, "channels": self.shape[0], "eps": 1e-5}, self.shape)
        return name

    def residual(self, name: str, main: str, shortcut: str) -> str:
        """``main + g * q(shortcut)`` (hwgen.train.residual); both inputs (C, H, W)."""
        self._append({"kind": "residual", "name": name, "inputs": [main, shortcut], "channels": self.shapes[main][0],
                      "shortcut": self.options.shortcut, "estimator": self.options.estimator.value},
                     self.shapes[main])
        return name

    def maxpool(self) -> None:
        c, h, w = self.shape
        self.layers.append({"kind": "maxpool", "name": f"pool{self.weight_layers - 1}", "kernel": 2, "stride": 2})
        self.shape = (c, h // 2, w // 2)

    def flatten(self) -> None:
        self.layers.append({"kind": "flatten", "name": "flatten"})
        size = 1
        for s in self.shape:
            size *= s
        self.shape = (size,)

    def dropout(self, p: float) -> None:
        if p > 0:
            self.layers.append({"kind": "dropout", "name": f"drop{len(self.layers)}", "p": p})


def _scaled(channels: int, width: float) -> int:
    if width <= 0:
        raise ConfigError(f"width multiplier must be positive, not {width}")
    return max(1, round(channels * width))


def vgg_small(stack: _LayerStack) -> None:
    o = stack.options
    widths = [_scaled(c, o.width) for c in (128, 128, 256, 256, 512, 512)]
    pool_after = {1, 3, 5}
    for i, channels in enumerate(widths):
        bits = (o.first_bits or 8) if i == 0 else 1
        stack.conv(channels, bits=bits, padding=1)
        if i in pool_after:
            stack.maxpool()
        stack.batchnorm()
    stack.flatten()
    stack.linear(stack.classes, bits=o.last_bits or 8)
    stack.batchnorm()


def cnv(stack: _LayerStack) -> None:
    o = stack.options
    for i, channels in enumerate((64, 64, 128, 128, 256, 256)):
        bits = (o.first_bits or 1) if i == 0 else 1
        stack.conv(_scaled(channels, o.width), bits=bits, padding=0)
        if i in (1, 3):
            stack.maxpool()
        stack.batchnorm()
    stack.flatten()
    for units in (512, 512):
        stack.linear(_scaled(units, o.width), bits=1)
        stack.batchnorm()
    stack.linear(stack.classes, bits=o.last_bits or 1)
    stack.batchnorm()


def resnet(stack: _LayerStack) -> None:
    o = stack.options
    blocks = ((o.depth or 8) - 2) // 6
    stack.conv(_scaled(16, o.width), bits=o.first_bits or 8, padding=1)
    x = stack.batchnorm()
    index = 0
    for stage, channels in enumerate(_scaled(c, o.width) for c in (16, 32, 64)):
        for block in range(blocks):
            stride = 2 if stage > 0 and block == 0 else 1
            b = f"b{index}_"
            stack.conv(channels, bits=1, padding=1, stride=stride, name=b + "conv1", source=x)
            stack.batchnorm(b + "bn1")
            stack.conv(channels, bits=1, padding=1, name=b + "conv2")
            main = stack.batchnorm(b + "bn2")
            shortcut = x
            if stride != 1 or stack.shapes[x][0] != channels:
                stack.conv(channels, bits=1, kernel=1, stride=stride, name=b + "down", source=x)
                shortcut = stack.batchnorm(b + "downbn")
            x = stack.residual(b + "add", main, shortcut)
            index += 1
    stack.flatten()
    stack.linear(stack.classes, bits=o.last_bits or 1)
    stack.batchnorm()


def _mlp(hidden: int) -> Callable[[_LayerStack], None]:
    def build(stack: _LayerStack) -> None:
        o = stack.options
        p = 0.2 if o.dropout is None else o.dropout
        stack.flatten()
        stack.dropout(p)
        for i in range(3):
            stack.linear(_scaled(hidden, o.width), bits=(o.first_bits or 1) if i == 0 else 1)
            stack.batchnorm()
            stack.dropout(p)
        stack.linear(stack.classes, bits=o.last_bits or 1)
        stack.batchnorm()

    build.__doc__ = f"FINN MLP with three hidden layers of {hidden} units."
    return build


MODELS: dict[str, Callable[[_LayerStack], None]] = {
    "vgg_small": vgg_small,
    "cnv": cnv,
    "tfc": _mlp(64),
    "sfc": _mlp(256),
    "lfc": _mlp(1024),
    "resnet": resnet,
}


def make_architecture(
    model: str,
    *,
    input_shape: tuple[int, int, int],
    num_classes: int,
    mean: tuple[float, ...],
    std: tuple[float, ...],
    options: ModelOptions = ModelOptions(),
) -> Architecture:
    """Build the architecture of zoo ``model`` for the given input; ConfigError if it does not fit."""
    if model not in MODELS:
        raise ConfigError(f"unknown model {model!r}; the zoo has: {', '.join(MODELS)}")
    stack = _LayerStack(options, input_shape)
    stack.classes = num_classes
    try:
        MODELS[model](stack)
    except ValueError as exc:
        raise ConfigError(f"{model} does not fit input {input_shape}: {exc}") from None
    arch = Architecture(
        name=model,
        input=InputSpec(shape=input_shape, mean=tuple(mean), std=tuple(std)),
        num_classes=num_classes,
        layers=tuple(stack.layers),
        options=options.to_dict(),
    )
    validate_layers(arch)
    return arch
