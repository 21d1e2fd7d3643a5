"""Binary convolution and fully connected layers for training.

Forward (both layers)::

    x_q = b(x)                    if binarize_input else x       b: quantizers.binarize
    w_q = b(W)                    weight_bits == 1
        = kbit(W, weight_bits)    weight_bits in 2..16           (quantize_weight_kbit)
        = W                       weight_bits == 32, or binary_weights is False
    y   = conv2d(x_q, w_q, stride, padding)   /   linear(x_q, w_q)
    y   = scale(y, W)             output scale (scales.make_output_scale)
    y   = act_scale(y)            if act_scale is not None

Padding is zero padding: padded positions contribute 0 to the dot product,
exactly as ``F.conv2d`` does (DESIGN.md section 2). There is no bias; a
following BatchNorm supplies it.

State dict (what the compiler reads): ``weight`` (C_out, C_in, K, K) or
(C_out, C_in), the output scale's parameters under ``scale.`` and the
activation scale's ``act_scale.beta`` (see :mod:`hwgen.train.scales`).

``binary_weights`` is a plain attribute (True by default) that the trainer
sets False for stage 1 of a two-stage schedule (binary activations, real
weights): w_q is then the real weight, for every ``weight_bits``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from hwgen.errors import ConfigError
from hwgen.train.quantizers import (
    KBIT_RANGE,
    Estimator,
    as_estimator,
    quantize_weight_kbit,
    sign_function,
)
from hwgen.train.scales import (
    ActScaleMode,
    ScaleMode,
    as_act_scale_mode,
    as_scale_mode,
    make_activation_scale,
    make_output_scale,
)

__all__ = ["FLOAT_BITS", "BinaryConv2d", "BinaryLinear"]

#: ``weight_bits`` value meaning "keep real-valued weights".
FLOAT_BITS = 32


def _check_int(value: object, what: str, minimum: int) -> int:
    """Return ``value`` if it is an int >= minimum; ConfigError naming it otherwise."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        kind = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
        raise ConfigError(f"{what} must be {kind}, not {value!r}")
    return value


def _check_weight_bits(bits: object) -> int:
    if (
        isinstance(bits, bool)
        or not isinstance(bits, int)
        or not (bits == 1 or bits in KBIT_RANGE or bits == FLOAT_BITS)
    ):
        raise ConfigError(f"weight_bits must be 1, 2..16 or 32, not {bits!r}")
    return bits


def _check_bool(value: object, what: str) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"{what} must be True or False, not {value!r}")
    return value


def _check_hw(value: object, what: str) -> tuple[int, int]:
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        raise ConfigError(f"{what} must be a pair (H, W), not {value!r}")
    h, w = (_check_int(v, f"{what} entries", 1) for v in value)
    return (h, w)


class _BinaryLayer(nn.Module):
    """Shared quantisation settings and weight handling of the binary layers."""

    weight: nn.Parameter

    def _init_quantisation(
        self,
        weight_bits: int,
        binarize_input: bool,
        estimator: Estimator | str,
        weight_estimator: Estimator | str,
        scale_mode: ScaleMode | str,
        act_scale_mode: ActScaleMode | str,
    ) -> None:
        self.weight_bits = _check_weight_bits(weight_bits)
        self.binarize_input = _check_bool(binarize_input, "binarize_input")
        self.estimator = as_estimator(estimator)
        self.weight_estimator = as_estimator(weight_estimator)
        self.scale_mode = as_scale_mode(scale_mode)
        self.act_scale_mode = as_act_scale_mode(act_scale_mode)
        self.binary_weights = True

    def reset_weight(self) -> None:
        """Kaiming-uniform init of ``weight`` as ``nn.Conv2d``/``nn.Linear`` do.

        Does not touch the scales (a TRAINED alpha keeps its init).
        """
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))

    def _quantize_input(self, x: Tensor) -> Tensor:
        return sign_function(self.estimator).apply(x) if self.binarize_input else x

    def _quantize_weight(self) -> Tensor:
        w = self.weight
        if not self.binary_weights or self.weight_bits == FLOAT_BITS:
            return w
        if self.weight_bits == 1:
            return sign_function(self.weight_estimator).apply(w)
        return quantize_weight_kbit(w, self.weight_bits)

    def quantized_weight(self) -> Tensor:
        """The weight the forward uses (w_q), detached, for export.

        {-1, +1} for ``weight_bits == 1``, q * s_c for k bits, the real weight
        for 32 bits or while ``binary_weights`` is False.
        """
        with torch.no_grad():
            return self._quantize_weight().detach()

    def _rescale(self, y: Tensor) -> Tensor:
        y = self.scale(y, self.weight)
        if self.act_scale is not None:
            y = self.act_scale(y)
        return y

    def _quant_repr(self) -> str:
        return (
            f"weight_bits={self.weight_bits}, binarize_input={self.binarize_input}, "
            f"estimator={self.estimator.value}, weight_estimator={self.weight_estimator.value}, "
            f"scale_mode={self.scale_mode.value}, act_scale_mode={self.act_scale_mode.value}, "
            f"binary_weights={self.binary_weights}"
        )


class BinaryConv2d(_BinaryLayer):
    """2-D convolution with binary (or k-bit) weights and binary inputs.

    Input (N, C_in, H_in, W_in) with (H_in, W_in) == ``in_hw``; output
    (N, C_out, H_out, W_out) with ``out_hw = ((H_in + 2p - K) // s + 1, ...)``.
    Square kernels, stride and padding; no bias.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        *,
        in_hw: tuple[int, int],
        stride: int = 1,
        padding: int = 0,
        weight_bits: int = 1,
        binarize_input: bool = True,
        estimator: Estimator | str = Estimator.STE,
        weight_estimator: Estimator | str = Estimator.STE,
        scale_mode: ScaleMode | str = ScaleMode.NONE,
        act_scale_mode: ActScaleMode | str = ActScaleMode.NONE,
    ) -> None:
        super().__init__()
        self.in_channels = _check_int(in_channels, "in_channels", 1)
        self.out_channels = _check_int(out_channels, "out_channels", 1)
        self.kernel_size = _check_int(kernel_size, "kernel_size", 1)
        self.stride = _check_int(stride, "stride", 1)
        self.padding = _check_int(padding, "padding", 0)
        self.in_hw = _check_hw(in_hw, "in_hw")
        padded = tuple(d + 2 * self.padding for d in self.in_hw)
        if min(padded) < self.kernel_size:
            raise ConfigError(
                f"kernel_size ({self.kernel_size}) must not exceed the padded input "
                f"{padded[0]}x{padded[1]} (in_hw {self.in_hw}, padding {self.padding})"
            )
        self._init_quantisation(
            weight_bits,
            binarize_input,
            estimator,
            weight_estimator,
            scale_mode,
            act_scale_mode,
        )
        k = self.kernel_size
        self.weight = nn.Parameter(
            torch.empty(self.out_channels, self.in_channels, k, k)
        )
        self.reset_weight()
        self.scale = make_output_scale(
            self.scale_mode, self.out_channels, self.out_hw, self.weight
        )
        self.act_scale = make_activation_scale(self.act_scale_mode, self.out_channels)

    @property
    def out_hw(self) -> tuple[int, int]:
        """Output spatial size (H_out, W_out)."""
        k, s, p = self.kernel_size, self.stride, self.padding
        h, w = self.in_hw
        return ((h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1)

    def forward(self, x: Tensor) -> Tensor:
        """(N, C_in, H_in, W_in) -> (N, C_out, H_out, W_out)."""
        if x.shape[-2:] != self.in_hw:
            raise ValueError(
                f"{type(self).__name__} expects input {self.in_hw[0]}x{self.in_hw[1]}, "
                f"got shape {tuple(x.shape)}"
            )
        y = F.conv2d(
            self._quantize_input(x),
            self._quantize_weight(),
            None,
            self.stride,
            self.padding,
        )
        return self._rescale(y)

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
            f"in_hw={self.in_hw}, stride={self.stride}, padding={self.padding}, "
            + self._quant_repr()
        )


class BinaryLinear(_BinaryLayer):
    """Fully connected layer with binary (or k-bit) weights and binary inputs.

    Input (N, C_in) -> output (N, C_out); no bias.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        *,
        weight_bits: int = 1,
        binarize_input: bool = True,
        estimator: Estimator | str = Estimator.STE,
        weight_estimator: Estimator | str = Estimator.STE,
        scale_mode: ScaleMode | str = ScaleMode.NONE,
        act_scale_mode: ActScaleMode | str = ActScaleMode.NONE,
    ) -> None:
        super().__init__()
        self.in_features = _check_int(in_features, "in_features", 1)
        self.out_features = _check_int(out_features, "out_features", 1)
        self._init_quantisation(
            weight_bits,
            binarize_input,
            estimator,
            weight_estimator,
            scale_mode,
            act_scale_mode,
        )
        self.weight = nn.Parameter(torch.empty(self.out_features, self.in_features))
        self.reset_weight()
        self.scale = make_output_scale(
            self.scale_mode, self.out_features, None, self.weight
        )
        self.act_scale = make_activation_scale(self.act_scale_mode, self.out_features)

    def forward(self, x: Tensor) -> Tensor:
        """(N, C_in) -> (N, C_out)."""
        y = F.linear(self._quantize_input(x), self._quantize_weight())
        return self._rescale(y)

    def extra_repr(self) -> str:
        return f"{self.in_features}, {self.out_features}, " + self._quant_repr()
