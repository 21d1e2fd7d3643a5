"""Binarisation estimators and k-bit weight quantisation (hwgen.train.quantizers)."""

from __future__ import annotations

import pytest
import torch

from hwgen.errors import ConfigError
from hwgen.train.quantizers import (
    BinaryQuantizer,
    Estimator,
    binarize,
    estimator_gradient,
    kbit_weight_scale,
    quantize_weight_kbit,
)

# Grid with the breakpoints of every estimator: 0, +-0.4, +-1, and beyond.
GRID = [
    -3.0,
    -1.5,
    -1.0001,
    -1.0,
    -0.9999,
    -0.7,
    -0.4001,
    -0.4,
    -0.3999,
    -0.2,
    -1e-6,
    0.0,
    1e-6,
    0.2,
    0.3999,
    0.4,
    0.4001,
    0.7,
    0.9999,
    1.0,
    1.0001,
    1.5,
    3.0,
]


def reference_gradient(x: float, estimator: Estimator) -> float:
    """Surrogate derivative written from the papers' definitions."""
    a = abs(x)
    if a > 1.0:
        return 0.0
    if estimator is Estimator.STE:  # clipped straight-through (hardtanh derivative)
        return 1.0
    if estimator is Estimator.APPROX_SIGN:  # Bi-Real Net: d/dx (2x - sign(x) x^2)
        return 2.0 - 2.0 * a
    # Xu & Cheung: 2 - 4|x| up to 0.4, then the constant 0.4 up to 1
    return 2.0 - 4.0 * a if a <= 0.4 else 0.4


@pytest.mark.parametrize("estimator", list(Estimator))
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_backward_matches_formula(estimator: Estimator, dtype: torch.dtype) -> None:
    x = torch.tensor(GRID, dtype=dtype, requires_grad=True)
    upstream = torch.linspace(0.5, 2.0, len(GRID), dtype=dtype)
    binarize(x, estimator).backward(upstream)
    expected = torch.tensor(
        [reference_gradient(v, estimator) for v in x.tolist()], dtype=dtype
    )
    torch.testing.assert_close(x.grad, upstream * expected, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(
        estimator_gradient(x.detach(), estimator), expected, rtol=1e-6, atol=1e-6
    )


@pytest.mark.parametrize("estimator", list(Estimator))
def test_forward_is_sign_with_zero_positive(estimator: Estimator) -> None:
    x = torch.tensor(GRID + [-0.0])
    out = binarize(x, estimator)
    expected = torch.tensor([1.0 if v >= 0 else -1.0 for v in x.tolist()])
    assert torch.equal(out, expected)
    assert out[GRID.index(0.0)] == 1.0 and out[-1] == 1.0  # sign(0) = sign(-0.0) = +1
    assert out.dtype == x.dtype and out.shape == x.shape


def test_binarize_keeps_dtype_and_shape() -> None:
    x = torch.randn(2, 3, 4, dtype=torch.float64)
    out = binarize(x, Estimator.TIGHT)
    assert out.dtype == torch.float64 and out.shape == (2, 3, 4)


def test_binary_quantizer_module() -> None:
    q = BinaryQuantizer(Estimator.APPROX_SIGN)
    x = torch.tensor([-0.5, 0.0, 0.5], requires_grad=True)
    q(x).sum().backward()
    assert torch.equal(q(x.detach()), torch.tensor([-1.0, 1.0, 1.0]))
    torch.testing.assert_close(x.grad, torch.tensor([1.0, 2.0, 1.0]))
    assert "approx_sign" in repr(q)
    assert BinaryQuantizer().estimator is Estimator.STE
    assert BinaryQuantizer("tight").estimator is Estimator.TIGHT


def test_bad_estimator_names_value() -> None:
    with pytest.raises(ConfigError, match="'sigmoid'"):
        binarize(torch.zeros(1), "sigmoid")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="'nope'"):
        BinaryQuantizer("nope")  # type: ignore[arg-type]


@pytest.mark.parametrize("bits", [2, 3, 4, 8, 16])
def test_kbit_values_on_integer_grid(bits: int) -> None:
    torch.manual_seed(bits)
    w = torch.randn(6, 3, 3, 3)
    qmax = 2 ** (bits - 1) - 1
    s = kbit_weight_scale(w, bits)
    assert s.shape == (6,)
    torch.testing.assert_close(s, w.abs().amax(dim=(1, 2, 3)) / qmax)
    w_q = quantize_weight_kbit(w, bits)
    q = w_q / s.view(-1, 1, 1, 1)
    torch.testing.assert_close(
        q, torch.round(q), rtol=1e-6, atol=1e-4
    )  # float32 ulp at 2^15
    q_int = torch.round(q)
    assert q_int.abs().max() <= qmax
    assert torch.equal(q_int.abs().amax(dim=(1, 2, 3)), torch.full((6,), float(qmax)))
    # round to nearest: error at most half a step
    assert ((w_q - w).abs() <= s.view(-1, 1, 1, 1) / 2 + 1e-6).all()


def test_kbit_forward_value_is_exactly_q_times_s() -> None:
    torch.manual_seed(0)
    w = torch.randn(4, 7)
    s = kbit_weight_scale(w, 4)
    q = torch.clamp(torch.round(w / s[:, None]), -7, 7)
    assert torch.equal(quantize_weight_kbit(w, 4), q * s[:, None])


def test_kbit_gradient_is_identity() -> None:
    torch.manual_seed(1)
    w = torch.randn(5, 4, 3, 3, requires_grad=True)
    upstream = torch.randn(5, 4, 3, 3)
    quantize_weight_kbit(w, 3).backward(upstream)
    assert torch.equal(w.grad, upstream)


def test_kbit_zero_channel_has_unit_scale() -> None:
    w = torch.randn(3, 5)
    w[1] = 0.0
    s = kbit_weight_scale(w, 8)
    assert s[1] == 1.0
    assert torch.equal(quantize_weight_kbit(w, 8)[1], torch.zeros(5))


@pytest.mark.parametrize("bits", [0, 1, 17, 32, 2.5, True])
def test_kbit_bad_bits(bits: object) -> None:
    with pytest.raises(ConfigError, match=repr(bits).replace(".", r"\.")):
        quantize_weight_kbit(torch.randn(2, 2), bits)  # type: ignore[arg-type]
