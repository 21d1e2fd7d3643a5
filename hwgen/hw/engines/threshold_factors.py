"""Per-position thresholds stored as a per-channel times a per-position factor, plus a small correction.

With XNOR-Net++'s Gamma shape 4 (Gamma[c, h, w] = alpha_c beta_h gamma_w)
and BatchNorm folded in, a layer's threshold is T[c, h, w] = ceil(t_c /
Gamma[c, h, w]): a per-channel factor t_c / alpha_c times a per-position
factor 1 / (beta_h gamma_w), up to the rounding. A folded engine's start
values (:mod:`hwgen.hw.engines.thresholds`: -T, or the MVTU's
-ceil((F + T) / 2)) inherit that form, so instead of one field per lane and
result they can be stored as

    S[c, pos] = K + ((A[c] * B[pos]) >> s) + D[c, pos]

* ``K``: the engine's start value for T = 0 (0, or -ceil(F / 2));
* ``A`` (C_out,) and ``B`` (P,): signed integers of at most
  :data:`MAX_FACTOR_BITS` bits each, so one product is one 18 x 18 DSP
  multiplier (ECP5 MULT18X18D) per PE lane; ``s`` >= 0, the shift (a floor);
* ``D`` = S - K - ((A B) >> s), computed from the integers: the form is
  exact whatever the fit, and only its size depends on the fit.

``D`` and the inversion bits are a :class:`~hwgen.hw.engines.thresholds.ThresholdTable`
(R = P * NF words of per-lane fields as wide as each lane's corrections
need: 1 bit for corrections in {0, 1}); ``A`` is a ROM of NF words of PE
fields (word nf: the channels of neuron fold (nf + 1) mod NF, the next
result's; constants when NF = 1) and ``B`` one of P words holding
(B[pos], B[(pos + 1) mod P]), the next result's position being pos + 1
after the last neuron fold of pos (:meth:`FoldedEngine._factored_starts
<hwgen.hw.engines.folded.FoldedEngine._factored_starts>`).

Fit (:func:`fit_factors`): the leading singular pair u, v of S - K (power iteration); for
each pair of factor widths, A = round(u 2^ka), B = round(v 2^kb) at the
largest scales that fit, s = ka + kb; the pair whose stored bits (D's
fields, A, B) are fewest wins, and the form is used only when it stores at
most :data:`MAX_SHARE` of the plain table's bits. Measured on CNV trained
with ``--scale gamma_factorised`` (5 epochs): D in {0, 1} on every
per-position layer, 1,032,487 -> 140,259 bits of corrections at 8-12-bit
factors. Per-element Gamma (shape 2) has no such structure and keeps the
plain table.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hwgen.compile.ir import signed_bits
from hwgen.hw.engines.thresholds import ThresholdTable

__all__ = ["FACTOR_STAGES", "MAX_FACTOR_BITS", "MAX_SHARE", "ThresholdFactors", "fit_factors"]

#: Widest factor (two's complement): one 18 x 18 multiplier per lane.
MAX_FACTOR_BITS = 18
#: The factored form is used when it stores at most this share of the plain table's bits.
MAX_SHARE = 0.5
#: Registers from the factor ROMs' read data to the start value: the factors, the product, the sum.
FACTOR_STAGES = 3
_WIDTHS = range(4, MAX_FACTOR_BITS + 1, 2)


@dataclass(frozen=True)
class ThresholdFactors:
    """``S[c, pos] = offset + ((a[c] * b[pos]) >> shift) + D[c, pos]`` (module docstring); ``table``: D
    and the inversion bits in result order."""

    offset: int
    a: np.ndarray        # int64 (C_out,)
    b: np.ndarray        # int64 (P,)
    a_bits: int
    b_bits: int
    shift: int
    table: ThresholdTable
    nf: int

    @property
    def pe(self) -> int:
        return self.table.start.shape[1]

    @property
    def a_rom_bits(self) -> int:
        """NF words of PE fields of ``a_bits``; 0 when NF = 1 (constants)."""
        return self.nf * self.pe * self.a_bits if self.nf > 1 else 0

    @property
    def b_rom_bits(self) -> int:
        """P words of two ``b_bits`` fields."""
        return len(self.b) * 2 * self.b_bits

    @property
    def bits(self) -> int:
        """Stored bits: D's table, the A ROM and the B ROM."""
        return self.table.bits + self.a_rom_bits + self.b_rom_bits

    def a_lane(self, nf: int) -> np.ndarray:
        """A of the PE channels of neuron fold ``nf``."""
        return self.a[nf * self.pe:(nf + 1) * self.pe]

    def a_words(self) -> list[int]:
        """A ROM word nf: the fields of neuron fold (nf + 1) mod NF (the next result's), lane 0 at bit 0."""
        from hwgen.hw.engines.folded import pack_fields  # folded.py imports this module

        return [pack_fields(self.a_lane((nf + 1) % self.nf), self.a_bits) for nf in range(self.nf)]

    def b_words(self) -> list[int]:
        """B ROM word pos: B[pos] on the low ``b_bits``, B[(pos + 1) mod P] above."""
        from hwgen.hw.engines.folded import pack_fields

        return [pack_fields([self.b[pos], self.b[(pos + 1) % len(self.b)]], self.b_bits) for pos in range(len(self.b))]

    def starts(self) -> np.ndarray:
        """The start values the form gives, (C_out, P): offset + (a b >> shift) + D (== the fitted ones)."""
        d = self.table.start.reshape(len(self.b), self.nf * self.pe).T
        return self.offset + ((self.a[:, None] * self.b[None, :]) >> self.shift) + d


def _scaled(x: np.ndarray, bits: int) -> tuple[np.ndarray, int]:
    """round(x 2^k) for the largest k with every value in ``bits`` signed bits; (values, k)."""
    peak = float(np.abs(x).max())
    k = int(np.floor(np.log2((2 ** (bits - 1) - 1) / peak))) if peak > 0 else 0
    q = np.round(x * 2.0 ** k).astype(np.int64)
    while q.size and signed_bits(int(q.min()), int(q.max())) > bits:  # rounding at the edge
        k -= 1
        q = np.round(x * 2.0 ** k).astype(np.int64)
    return q, k


def _rank1(m: np.ndarray, iterations: int = 30) -> tuple[np.ndarray, np.ndarray]:
    """The leading singular pair of ``m`` scaled so that m ~ outer(u, v), by power iteration from the
    largest column (LAPACK's full SVD of a 64 x 900 matrix took 2 s on a busy machine)."""
    v = np.zeros(m.shape[1])
    v[np.argmax(np.abs(m).sum(axis=0))] = 1.0
    u = m @ v
    for _ in range(iterations):
        v = m.T @ u / max(float(u @ u), 1e-300)
        u = m @ v / max(float(v @ v), 1e-300)
    return u, v


def fit_factors(start: np.ndarray, invert: np.ndarray, *, offset: int, pe: int) -> ThresholdFactors | None:
    """The cheapest exact factored form of the start values ``start`` (C_out, P) with inversions ``invert``
    (same shape) for PE lanes, or None when it would not store at most :data:`MAX_SHARE` of the plain table."""
    c_out, positions = start.shape
    if positions < 2:
        return None
    plain = ThresholdTable.from_channels(start, invert, pe=pe).bits
    m = (start - offset).astype(np.float64)
    if not np.any(m):
        return None
    u, v = _rank1(m)
    if v[np.argmax(np.abs(v))] < 0:
        u, v = -u, -v
    best: ThresholdFactors | None = None
    for a_bits in _WIDTHS:
        a, ka = _scaled(u, a_bits)
        for b_bits in _WIDTHS:
            b, kb = _scaled(v, b_bits)
            shift = ka + kb
            if shift < 0:
                continue
            d = start - offset - ((a[:, None] * b[None, :]) >> shift)
            factors = ThresholdFactors(offset=int(offset), a=a, b=b, a_bits=a_bits, b_bits=b_bits, shift=shift,
                                       table=ThresholdTable.from_channels(d, invert, pe=pe), nf=c_out // pe)
            if best is None or factors.bits < best.bits:
                best = factors
    if best is None or best.bits > MAX_SHARE * plain:
        return None
    return best
