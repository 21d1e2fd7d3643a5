"""Loading a QONNX file, and the pixel convention of its float input.

A QONNX model's float input ``x`` is, per channel c and uint8 pixel v,
``x = (v / 255 - mean_c) / std_c`` computed in float32 (torchvision's
``ToTensor`` then ``Normalize``; the default mean 0, std 1 is ``v / 255``,
what Brevitas's bnn_pynq trainer feeds), NCHW. :class:`PixelMapping` holds
mean and std; the hardware still takes the uint8 pixels.

:func:`load_qonnx` reads the file (an external ``.onnx.data`` beside it is
found by onnx), runs qonnx's ``cleanup_model`` (shape inference, constant
folding of everything but the quantizers, unique readable names) with the
batch size set to ``batch`` (1 for lowering; larger to execute many images at
once) and checks that every tensor shape is static.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hwgen.compile.ir import PIXEL_VALUES
from hwgen.errors import CompileError

__all__ = ["PixelMapping", "load_qonnx", "parse_floats"]


@dataclass(frozen=True)
class PixelMapping:
    """``x_c = (v / 255 - mean_c) / std_c`` in float32; one value applies to every channel."""

    mean: tuple[float, ...] = (0.0,)
    std: tuple[float, ...] = (1.0,)

    def __post_init__(self) -> None:
        for what, values in (("mean", self.mean), ("std", self.std)):
            if not values or not all(np.isfinite(v) for v in values):
                raise CompileError(f"the pixel mapping's {what} must be finite numbers, not {values!r}")
        if any(v == 0 for v in self.std):
            raise CompileError(f"the pixel mapping's std must be non-zero, not {self.std!r}")

    def _per_channel(self, values: tuple[float, ...], channels: int, what: str) -> np.ndarray:
        if len(values) not in (1, channels):
            raise CompileError(f"the pixel mapping's {what} has {len(values)} values; the model's input has "
                               f"{channels} channels (give 1 or {channels})")
        return np.broadcast_to(np.asarray(values, dtype=np.float32), (channels,))

    def floats(self, pixels: np.ndarray) -> np.ndarray:
        """uint8 (N, C, ...) -> float32 model input of the same shape."""
        c = pixels.shape[1]
        shape = (1, c) + (1,) * (pixels.ndim - 2)
        mean = self._per_channel(self.mean, c, "mean").reshape(shape)
        std = self._per_channel(self.std, c, "std").reshape(shape)
        return (pixels.astype(np.float32) / np.float32(255) - mean) / std

    def table(self, channels: int) -> np.ndarray:
        """float32 (C, 256): the model input for every pixel value of every channel."""
        v = np.broadcast_to(np.arange(PIXEL_VALUES, dtype=np.uint8), (1, channels, PIXEL_VALUES))
        return self.floats(v)[0]


def parse_floats(text: str | None, what: str) -> tuple[float, ...] | None:
    """``"0.5,0.25"`` -> (0.5, 0.25) (None passes through); a bad list is a one-line CompileError."""
    if text is None:
        return None
    try:
        return tuple(float(part) for part in text.split(","))
    except ValueError:
        raise CompileError(f"{what} must be a comma-separated list of numbers, not {text!r}") from None


def load_qonnx(path: str | os.PathLike, *, batch: int = 1):
    """A cleaned-up ``qonnx.core.modelwrapper.ModelWrapper`` of ``path`` with batch size ``batch``."""
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.util.cleanup import cleanup_model

    path = Path(path)
    if not path.is_file():
        raise CompileError(f"QONNX file {path} does not exist")
    try:
        model = ModelWrapper(str(path))
    except Exception as exc:  # onnx raises DecodeError, ValidationError, OSError (missing .onnx.data), ...
        raise CompileError(f"{path} is not a readable ONNX model: {type(exc).__name__}: {exc}") from None
    try:
        model = cleanup_model(model, override_inpsize=batch)
    except Exception as exc:
        raise CompileError(f"{path}: qonnx's cleanup failed: {type(exc).__name__}: {exc}") from None
    if len(model.graph.input) != 1 or len(model.graph.output) != 1:
        raise CompileError(f"{path}: the graph must have one input and one output, not "
                           f"{len(model.graph.input)} and {len(model.graph.output)}")
    for node in model.graph.node:
        for name in node.output:
            shape = model.get_tensor_shape(name)
            if shape is None or any(not isinstance(d, int) or d < 1 for d in shape):
                raise CompileError(f"node {node.name!r} ({node.op_type}): output {name!r} has the dynamic or "
                                   f"unknown shape {shape}; hwgen needs static shapes")
    return model
