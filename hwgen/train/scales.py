"""Scale factors applied to a binary layer's integer dot product.

A binary layer computes ``y = conv(b(x), b(W))`` (shape (N, C, H, W)) or
``y = linear(b(x), b(W))`` (shape (N, C)); these modules return ``y * factor``.
The compiler folds every factor into the per-channel (or per-position)
thresholds (DESIGN.md section 2), so it reads the parameters below from the
state dict under the layer's ``scale.`` / ``act_scale.`` prefix.

Output scales (:func:`make_output_scale`), parameter names and shapes
----------------------------------------------------------------------
=========================  ==========================  =====================
mode                       conv (out_hw = (H, W))      linear (out_hw None)
=========================  ==========================  =====================
``NONE``                   none, factor = 1            none, factor = 1
``XNOR``                   none; factor = mean|W_c|    same
``GAMMA_CHANNEL``          ``gamma`` (C,)              ``gamma`` (C,)
``GAMMA_ELEMENT``          ``gamma`` (C, H, W)         ``gamma`` (C,)
``GAMMA_CHANNEL_SPATIAL``  ``alpha`` (C,),             ``alpha`` (C,)
                           ``beta`` (H, W)
``GAMMA_FACTORISED``       ``alpha`` (C,),             ``alpha`` (C,)
                           ``beta`` (H,), ``gamma`` (W,)
``TRAINED``                ``alpha`` (C,)              ``alpha`` (C,)
=========================  ==========================  =====================

Factors (broadcast against y's per-sample shape (C, 1, 1) / (C, H, W) / (C,)):

- ``XNOR`` (XNOR-Net): ``K_c = mean_i |W_{c,i}|`` of the *real* weight,
  recomputed every forward; the gradient flows into W.
- ``GAMMA_CHANNEL`` (XNOR-Net++ case 1): ``Gamma_c``; init 1.
- ``GAMMA_ELEMENT`` (case 2): ``Gamma_{c,h,w}``; init 1.
- ``GAMMA_CHANNEL_SPATIAL`` (case 3): ``alpha_c * beta_{h,w}``; init 1.
- ``GAMMA_FACTORISED`` (case 4): ``alpha_c * beta_h * gamma_w``; init 1.
- ``TRAINED`` (Xu & Cheung): ``alpha_c``, initialised to mean|W_c| of the
  weight at construction, then learned; :func:`weight_scale_l2` gives its L2
  penalty ``sum_c alpha_c^2``.

Linear layers: a fully connected output has no spatial extent (think H = W =
1), so the spatial modes degenerate to one parameter per output feature: case 2
keeps ``gamma`` (C,), cases 3 and 4 keep only ``alpha`` (C,) (a 1x1 spatial map
would be one scalar, redundant with alpha, so it is not created).

Activation scale (:func:`make_activation_scale`)
-------------------------------------------------
Xu & Cheung also train a scale beta on the binary activations. A per-*input*-
channel scale on binary activations would turn the dot product into a weighted
sum that XNOR-popcount cannot compute, so hwgen applies beta to the layer's
binary product instead:

- ``LAYER``: ``beta`` shape (1,), one scalar per layer. Since the product is
  linear in the activations this is identical to scaling the binary
  activations by a scalar.
- ``CHANNEL``: ``beta`` shape (C_out,), one per *output* channel.

Both are initialised to 1.
"""

from __future__ import annotations

import enum

import torch
from torch import Tensor, nn

from hwgen.errors import ConfigError, coerce_enum

__all__ = [
    "ActScaleMode",
    "ActivationScale",
    "GammaChannelScale",
    "GammaChannelSpatialScale",
    "GammaElementScale",
    "GammaFactorisedScale",
    "NoScale",
    "OutputScale",
    "ScaleMode",
    "TrainedScale",
    "XnorScale",
    "as_act_scale_mode",
    "as_scale_mode",
    "make_activation_scale",
    "make_output_scale",
    "weight_scale_l2",
]


class ScaleMode(str, enum.Enum):
    """Output scale applied to the binary product (see the module docstring)."""

    NONE = "none"
    XNOR = "xnor"
    GAMMA_CHANNEL = "gamma_channel"
    GAMMA_ELEMENT = "gamma_element"
    GAMMA_CHANNEL_SPATIAL = "gamma_channel_spatial"
    GAMMA_FACTORISED = "gamma_factorised"
    TRAINED = "trained"


class ActScaleMode(str, enum.Enum):
    """Trainable activation scale beta: none, one scalar, or one per output channel."""

    NONE = "none"
    LAYER = "layer"
    CHANNEL = "channel"


def as_scale_mode(value: ScaleMode | str) -> ScaleMode:
    """Coerce to :class:`ScaleMode`; ConfigError naming the value otherwise."""
    return coerce_enum(ScaleMode, value, "scale_mode")  # type: ignore[return-value]


def as_act_scale_mode(value: ActScaleMode | str) -> ActScaleMode:
    """Coerce to :class:`ActScaleMode`; ConfigError naming the value otherwise."""
    return coerce_enum(ActScaleMode, value, "act_scale_mode")  # type: ignore[return-value]


def _mean_abs_per_channel(weight: Tensor) -> Tensor:
    """mean_i |W_{c,i}| over every dim but 0, shape (C_out,)."""
    return weight.abs().reshape(weight.shape[0], -1).mean(dim=1)


class OutputScale(nn.Module):
    """Base class: ``forward(y, weight) = y * factor(weight)``.

    ``spatial`` is True for conv layers (y is (N, C, H, W)); per-channel
    factors are then shaped (C, 1, 1), and (C,) for linear layers.
    """

    def __init__(self, out_channels: int, spatial: bool) -> None:
        super().__init__()
        self.out_channels = out_channels
        self.spatial = spatial

    def _per_channel(self, v: Tensor) -> Tensor:
        """Reshape a (C,) vector to broadcast over y's per-sample shape."""
        return v.view(-1, 1, 1) if self.spatial else v

    def factor(self, weight: Tensor) -> Tensor:
        """The scale, broadcastable to y's per-sample shape."""
        raise NotImplementedError

    def forward(self, y: Tensor, weight: Tensor) -> Tensor:
        """Return ``y * factor(weight)``; y is (N, C, H, W) or (N, C)."""
        return y * self.factor(weight)

    def extra_repr(self) -> str:
        return f"out_channels={self.out_channels}, spatial={self.spatial}"


class NoScale(OutputScale):
    """Identity: factor is 1 and forward returns y itself."""

    def factor(self, weight: Tensor) -> Tensor:
        shape = (self.out_channels, 1, 1) if self.spatial else (self.out_channels,)
        return torch.ones(shape, dtype=weight.dtype, device=weight.device)

    def forward(self, y: Tensor, weight: Tensor) -> Tensor:
        return y


class XnorScale(OutputScale):
    """XNOR-Net analytic scale ``K_c = mean|W_c|`` of the real weight (no parameters)."""

    def factor(self, weight: Tensor) -> Tensor:
        return self._per_channel(_mean_abs_per_channel(weight))


class GammaChannelScale(OutputScale):
    """XNOR-Net++ case 1: learned ``gamma`` (C,), init 1."""

    def __init__(self, out_channels: int, spatial: bool) -> None:
        super().__init__(out_channels, spatial)
        self.gamma = nn.Parameter(torch.ones(out_channels))

    def factor(self, weight: Tensor) -> Tensor:
        return self._per_channel(self.gamma)


class GammaElementScale(OutputScale):
    """XNOR-Net++ case 2: learned ``gamma`` (C, H, W) (conv) or (C,) (linear), init 1."""

    def __init__(self, out_channels: int, out_hw: tuple[int, int] | None) -> None:
        super().__init__(out_channels, out_hw is not None)
        shape = (out_channels, *out_hw) if out_hw is not None else (out_channels,)
        self.gamma = nn.Parameter(torch.ones(shape))

    def factor(self, weight: Tensor) -> Tensor:
        return self.gamma


class GammaChannelSpatialScale(OutputScale):
    """XNOR-Net++ case 3: ``alpha_c * beta_{h,w}``; ``alpha`` (C,), ``beta`` (H, W).

    Linear layers have ``alpha`` (C,) only.
    """

    def __init__(self, out_channels: int, out_hw: tuple[int, int] | None) -> None:
        super().__init__(out_channels, out_hw is not None)
        self.alpha = nn.Parameter(torch.ones(out_channels))
        self.beta = nn.Parameter(torch.ones(out_hw)) if out_hw is not None else None

    def factor(self, weight: Tensor) -> Tensor:
        if self.beta is None:
            return self.alpha
        return self.alpha.view(-1, 1, 1) * self.beta


class GammaFactorisedScale(OutputScale):
    """XNOR-Net++ case 4: ``alpha_c * beta_h * gamma_w``; (C,), (H,), (W,).

    Linear layers have ``alpha`` (C,) only.
    """

    def __init__(self, out_channels: int, out_hw: tuple[int, int] | None) -> None:
        super().__init__(out_channels, out_hw is not None)
        self.alpha = nn.Parameter(torch.ones(out_channels))
        if out_hw is None:
            self.beta = None
            self.gamma = None
        else:
            self.beta = nn.Parameter(torch.ones(out_hw[0]))
            self.gamma = nn.Parameter(torch.ones(out_hw[1]))

    def factor(self, weight: Tensor) -> Tensor:
        if self.beta is None or self.gamma is None:
            return self.alpha
        return (
            self.alpha.view(-1, 1, 1)
            * self.beta.view(1, -1, 1)
            * self.gamma.view(1, 1, -1)
        )


class TrainedScale(OutputScale):
    """Xu & Cheung trained scale ``alpha`` (C,), init mean|W_c| of the initial weight."""

    def __init__(self, out_channels: int, spatial: bool, weight: Tensor) -> None:
        super().__init__(out_channels, spatial)
        init = _mean_abs_per_channel(weight.detach()).to(torch.get_default_dtype())
        self.alpha = nn.Parameter(init.clone())

    def factor(self, weight: Tensor) -> Tensor:
        return self._per_channel(self.alpha)


def _check_positive_int(value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{what} must be a positive integer, not {value!r}")
    return value


def _check_out_hw(out_hw: object) -> tuple[int, int] | None:
    if out_hw is None:
        return None
    if not isinstance(out_hw, (tuple, list)) or len(out_hw) != 2:
        raise ConfigError(f"out_hw must be None or a pair (H, W), not {out_hw!r}")
    h, w = (_check_positive_int(v, "out_hw entries") for v in out_hw)
    return (h, w)


def make_output_scale(
    mode: ScaleMode | str,
    out_channels: int,
    out_hw: tuple[int, int] | None,
    weight: Tensor,
) -> OutputScale:
    """Build the output scale module for one layer.

    ``out_hw`` is the conv output (H, W), or None for a linear layer.
    ``weight`` is the layer's real weight (C_out, ...) at construction; only
    ``TRAINED`` reads it (for its init). See the module docstring for shapes.
    """
    mode = as_scale_mode(mode)
    out_channels = _check_positive_int(out_channels, "out_channels")
    out_hw = _check_out_hw(out_hw)
    if weight.dim() < 1 or weight.shape[0] != out_channels:
        raise ConfigError(
            f"weight must have out_channels={out_channels} rows, not shape {tuple(weight.shape)}"
        )
    spatial = out_hw is not None
    if mode is ScaleMode.NONE:
        return NoScale(out_channels, spatial)
    if mode is ScaleMode.XNOR:
        return XnorScale(out_channels, spatial)
    if mode is ScaleMode.GAMMA_CHANNEL:
        return GammaChannelScale(out_channels, spatial)
    if mode is ScaleMode.GAMMA_ELEMENT:
        return GammaElementScale(out_channels, out_hw)
    if mode is ScaleMode.GAMMA_CHANNEL_SPATIAL:
        return GammaChannelSpatialScale(out_channels, out_hw)
    if mode is ScaleMode.GAMMA_FACTORISED:
        return GammaFactorisedScale(out_channels, out_hw)
    return TrainedScale(out_channels, spatial, weight)


class ActivationScale(nn.Module):
    """Trainable scale ``beta`` on a layer's binary product: ``y * beta``.

    ``beta`` is (1,) for ``LAYER`` and (C_out,) for ``CHANNEL``; init 1.
    Works on y of shape (N, C, H, W) or (N, C).
    """

    def __init__(self, mode: ActScaleMode, out_channels: int) -> None:
        super().__init__()
        self.mode = mode
        size = 1 if mode is ActScaleMode.LAYER else out_channels
        self.beta = nn.Parameter(torch.ones(size))

    def forward(self, y: Tensor) -> Tensor:
        """Return ``y * beta`` with beta broadcast over dim 1 (channels)."""
        return y * self.beta.view(-1, *([1] * (y.dim() - 2)))

    def extra_repr(self) -> str:
        return f"mode={self.mode.value}, size={self.beta.numel()}"


def make_activation_scale(
    mode: ActScaleMode | str, out_channels: int
) -> ActivationScale | None:
    """Build the activation scale for one layer, or None for ``NONE``."""
    mode = as_act_scale_mode(mode)
    out_channels = _check_positive_int(out_channels, "out_channels")
    if mode is ActScaleMode.NONE:
        return None
    return ActivationScale(mode, out_channels)


def weight_scale_l2(module: nn.Module) -> Tensor:
    """``sum alpha^2`` over every :class:`TrainedScale` in ``module`` (0-d tensor).

    Returns a 0-d zero tensor when there is none. The trainer multiplies it by
    its configured coefficient and adds it to the loss.
    """
    terms = [
        m.alpha.pow(2).sum() for m in module.modules() if isinstance(m, TrainedScale)
    ]
    if not terms:
        param = next(module.parameters(), None)
        device = param.device if param is not None else None
        return torch.zeros((), device=device)
    return torch.stack(terms).sum()
