"""Quantisers used in training: sign binarisation and k-bit weight quantisation.

Binarisation (DESIGN.md section 2)
----------------------------------
Forward, for every estimator::

    b(x) = +1  if x >= 0
           -1  otherwise            (so b(0) = b(-0.0) = +1; never torch.sign)

Backward, ``dL/dx = dL/db * g(x)`` with the surrogate derivative ``g`` chosen by
:class:`Estimator` (``a = |x|``):

==============  ==========================================================
``STE``         g = 1 for a <= 1, 0 beyond  (clipped straight-through,
                Hubara et al. / Courbariaux et al.)
``APPROX_SIGN`` g = 2 - 2a for a <= 1, 0 beyond  (Bi-Real Net, Liu et al.:
                derivative of the piecewise quadratic approximation of sign)
``TIGHT``       g = 2 - 4a for a <= 0.4, 0.4 for 0.4 < a <= 1, 0 beyond
                (Xu & Cheung, "Accurate and compact convolutional neural
                networks with trained binarization"); continuous at a = 0.4
==============  ==========================================================

Each estimator is one :class:`torch.autograd.Function` whose backward is a
single expression over the saved input, so binarisation costs a few
element-wise kernels per layer.

k-bit weights
-------------
:func:`quantize_weight_kbit` is symmetric, per-output-channel (dim 0) fake
quantisation with ``qmax = 2**(bits-1) - 1``::

    s_c = max_i |w_{c,i}| / qmax         (s_c = 1 where the channel is all zero)
    q   = clamp(round(w / s_c), -qmax, qmax)    (round half to even)
    w_q = q * s_c  (exactly),   dL/dw = dL/dw_q   (straight-through identity)

:func:`kbit_weight_scale` returns ``s_c`` so that the compiler recovers the
integers as ``q = round(w_q / s_c)``.
"""

from __future__ import annotations

import enum

import torch
from torch import Tensor, nn

from hwgen.errors import ConfigError, coerce_enum

__all__ = [
    "KBIT_RANGE",
    "ApproxSignFunction",
    "BinaryQuantizer",
    "Estimator",
    "SignSTEFunction",
    "TightSignFunction",
    "as_estimator",
    "binarize",
    "estimator_gradient",
    "kbit_weight_scale",
    "quantize_weight_kbit",
    "sign_function",
]

#: Legal bit widths for :func:`quantize_weight_kbit`.
KBIT_RANGE = range(2, 17)

_TIGHT_KNEE = 0.4


class Estimator(str, enum.Enum):
    """Surrogate gradient used for the backward pass of :func:`binarize`."""

    STE = "ste"
    APPROX_SIGN = "approx_sign"
    TIGHT = "tight"


def as_estimator(value: Estimator | str) -> Estimator:
    """Coerce ``value`` to an :class:`Estimator`; ConfigError naming it otherwise."""
    return coerce_enum(Estimator, value, "estimator")


def _sign_forward(x: Tensor) -> Tensor:
    """+1 where x >= 0 else -1, in x's dtype (sign(0) = sign(-0.0) = +1).

    Computed as sign(sign(x) + 1/2): sign(x) is in {-1, 0, +1} (0 for +-0),
    adding 1/2 gives {-1/2, 1/2, 3/2}, whose sign is {-1, +1, +1}. Three
    float kernels; comparisons that produce bool masks cost several times more
    on the CPU (measured 25 us vs 400+ us per 128x1024 tensor).
    """
    return torch.sign(x).add_(0.5).sign_()


def _next_above_one(dtype: torch.dtype) -> float:
    """The smallest value of ``dtype`` above 1 (1 + 2**-23 for float32)."""
    one = torch.tensor(1.0, dtype=dtype)
    return float(torch.nextafter(one, torch.tensor(2.0, dtype=dtype)))


#: Precomputed at import, so traced code (torch.compile) only does a dict lookup.
_NEXT_ABOVE_ONE = {dt: _next_above_one(dt) for dt in (torch.float16, torch.bfloat16, torch.float32, torch.float64)}


def _pass_inside_unit(grad: Tensor, x: Tensor) -> Tensor:
    """grad * 1[|x| <= 1] in one fused kernel.

    Hardtanh's backward passes ``grad`` where lo < x < hi and zeroes it
    elsewhere; with hi = -lo = the next value above 1 in x's dtype, "x < hi"
    is exactly "x <= 1", since no value of the dtype lies between.
    """
    hi = _NEXT_ABOVE_ONE[x.dtype]
    return torch.ops.aten.hardtanh_backward(grad, x, -hi, hi)


class _SignFunction(torch.autograd.Function):
    """Shared forward of the estimators: b = +1 if x >= 0 else -1; saves x for backward."""

    @staticmethod
    def forward(ctx, x: Tensor) -> Tensor:  # type: ignore[override]
        ctx.save_for_backward(x)
        return _sign_forward(x)


class SignSTEFunction(_SignFunction):
    """Sign with the clipped straight-through estimator.

    forward:  b = +1 if x >= 0 else -1
    backward: dL/dx = dL/db * 1[|x| <= 1]
    """

    @staticmethod
    def backward(ctx, grad_output: Tensor) -> Tensor:  # type: ignore[override]
        (x,) = ctx.saved_tensors
        return _pass_inside_unit(grad_output, x)


class ApproxSignFunction(_SignFunction):
    """Sign with the Bi-Real Net ApproxSign estimator.

    forward:  b = +1 if x >= 0 else -1
    backward: dL/dx = dL/db * max(0, 2 - 2|x|)   (= 2 - 2|x| on |x| <= 1, else 0)
    """

    @staticmethod
    def backward(ctx, grad_output: Tensor) -> Tensor:  # type: ignore[override]
        (x,) = ctx.saved_tensors
        return grad_output * x.abs().mul_(-2.0).add_(2.0).clamp_(min=0.0)


class TightSignFunction(_SignFunction):
    """Sign with Xu & Cheung's tighter approximation.

    forward:  b = +1 if x >= 0 else -1
    backward: dL/dx = dL/db * g(|x|),
              g(a) = 2 - 4a (a <= 0.4), 0.4 (0.4 < a <= 1), 0 (a > 1)
              computed as 1[a <= 1] * max(0.4, 2 - 4a)
    """

    @staticmethod
    def backward(ctx, grad_output: Tensor) -> Tensor:  # type: ignore[override]
        (x,) = ctx.saved_tensors
        slope = x.abs().mul_(-4.0).add_(2.0).clamp_(min=_TIGHT_KNEE)
        return _pass_inside_unit(grad_output * slope, x)


_FUNCTIONS: dict[Estimator, type[torch.autograd.Function]] = {
    Estimator.STE: SignSTEFunction,
    Estimator.APPROX_SIGN: ApproxSignFunction,
    Estimator.TIGHT: TightSignFunction,
}


def sign_function(estimator: Estimator | str) -> type[torch.autograd.Function]:
    """The autograd Function implementing ``estimator`` (call ``.apply(x)``)."""
    return _FUNCTIONS[as_estimator(estimator)]


def binarize(x: Tensor, estimator: Estimator | str = Estimator.STE) -> Tensor:
    """Binarise ``x`` to {-1, +1} (x >= 0 -> +1), backward per ``estimator``.

    Shape and dtype are preserved.
    """
    return sign_function(estimator).apply(x)


def estimator_gradient(x: Tensor, estimator: Estimator | str) -> Tensor:
    """The surrogate derivative g(x) of ``estimator`` (see the module docstring).

    A plain function (no autograd) returning a tensor shaped like ``x``.
    """
    est = as_estimator(estimator)
    a = x.abs()
    inside = (a <= 1.0).to(x.dtype)
    if est is Estimator.STE:
        return inside
    if est is Estimator.APPROX_SIGN:
        return (2.0 - 2.0 * a) * inside
    return (
        torch.where(a <= _TIGHT_KNEE, 2.0 - 4.0 * a, torch.full_like(a, _TIGHT_KNEE))
        * inside
    )


class BinaryQuantizer(nn.Module):
    """Module wrapper of :func:`binarize` with a fixed estimator."""

    def __init__(self, estimator: Estimator | str = Estimator.STE) -> None:
        super().__init__()
        self.estimator = as_estimator(estimator)
        self._fn = _FUNCTIONS[self.estimator]

    def forward(self, x: Tensor) -> Tensor:
        """Return the {-1, +1} tensor of ``x``'s shape."""
        return self._fn.apply(x)

    def extra_repr(self) -> str:
        return f"estimator={self.estimator.value}"


def _check_bits(bits: int) -> int:
    """Validate a k-bit width and return qmax = 2**(bits-1) - 1."""
    if isinstance(bits, bool) or not isinstance(bits, int) or bits not in KBIT_RANGE:
        raise ConfigError(
            f"k-bit weight quantisation needs bits in 2..16, not {bits!r}"
        )
    return 2 ** (bits - 1) - 1


def kbit_weight_scale(w: Tensor, bits: int) -> Tensor:
    """Per-output-channel step ``s_c = max|w_c| / (2**(bits-1) - 1)``, shape (C_out,).

    Channels whose weights are all zero get ``s_c = 1``. The result is detached.
    """
    qmax = _check_bits(bits)
    amax = w.detach().abs().reshape(w.shape[0], -1).amax(dim=1)
    return torch.where(amax > 0, amax / qmax, torch.ones_like(amax))


def quantize_weight_kbit(w: Tensor, bits: int) -> Tensor:
    """Symmetric per-output-channel (dim 0) k-bit fake quantisation of ``w``.

    ``w_q = clamp(round(w / s), -qmax, qmax) * s`` with ``s`` from
    :func:`kbit_weight_scale`; the gradient is the identity (straight-through).
    Written ``w_q + (w - w.detach())`` rather than ``w + (w_q - w).detach()``:
    same gradient, but the forward value is exactly ``q * s`` (``w - w`` is an
    exact zero), so ``round(w_q / s)`` recovers q without rounding noise.
    Same shape as ``w``.
    """
    qmax = _check_bits(bits)
    s = kbit_weight_scale(w, bits).reshape(-1, *([1] * (w.dim() - 1)))
    w_d = w.detach()
    w_q = torch.clamp(torch.round(w_d / s), -qmax, qmax) * s
    return w_q + (w - w_d)
