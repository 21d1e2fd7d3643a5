"""Thresholds of a folded engine: per channel or per position, either direction, as a ROM in result order.

The IR's threshold output (:class:`~hwgen.compile.ir.ThresholdOutput`) is
``acc >= T`` (direction +1) or ``acc <= T`` (direction -1), with ``T`` and the
direction per channel (C_out,) or per output position (C_out, H, W). A folded
engine produces its results in stream order, *result* ``r = pos * NF + nf``
(output position ``pos`` of the frame, row-major; neuron fold ``nf``; PE
channels ``nf * PE + p`` per result), so it reads its thresholds in that order.

For integers, ``acc <= T`` is ``NOT (acc >= T + 1)``. So every comparison
becomes ``acc >= T'`` with ``T' = T + neg`` (``neg`` = direction -1), whose
result is inverted where ``neg``: the engine's accumulator starts at
``-T'`` (or the subclass's start value, :meth:`FoldedEngine._preloads
<hwgen.hw.engines.folded.FoldedEngine._preloads>`) and the output bit is
``(sign bit of the final sum == 0) XOR neg``. Thresholds outside the
accumulator range [lo, hi] give constant bits and are saturated to
[lo, hi + 1] after the shift (same bits).

:class:`ThresholdTable` holds the start values and inversions per result and
lays them out as the threshold ROM: word r = the start values of result
``(r + 1) mod R`` (read at the last step of result r, which loads the next
result's start), one field per PE lane, then, only when some comparison is
``<=``, PE bits ``neg`` of result r itself. R = P * NF words (P = 1 for
per-channel thresholds). Where it goes is the family's
:meth:`~hwgen.hw.families.MemoryMap.threshold_rom_in_block_ram` (and
:mod:`hwgen.hw.cost`'s estimate).

Field of lane p, for its start values in [lo, hi] (over all R results):

* lo and hi of one sign: ``w = bit_length(lo XOR hi)`` bits, unsigned, and
  a constant ``high = lo >> w`` (= ``hi >> w``): start = ``high * 2^w +
  field``. The loaded value is the field with ``high``'s bits above it:
  wiring, no adder. A trained layer whose starts per lane sit in a narrow
  range away from a power of two stores a few bits (a lane whose starts are
  all equal: none); fields never get wider than a shared signed field.
* lo < 0 <= hi: ``w = signed_bits(lo, hi)``, two's complement, sign-extended.

So a lane field costs what its own values need, not the widest lane's (CNV
with XNOR-Net++ Gamma shape 4 at ``--pe 16``: 1,498,624 bits in fields of
one signed width per layer, 998,192 per lane).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from hwgen.compile.ir import signed_bits
from hwgen.errors import BuildError

__all__ = ["ThresholdTable", "check_thresholds", "lane_field"]


def check_thresholds(engine: str, thresholds: object, c_out: int,
                     directions: object = None) -> tuple[np.ndarray, np.ndarray] | None:
    """Validated thresholds as ``(T, neg)``: int64 and bool arrays (C_out, P), own copies; None for None.

    ``thresholds``: integers of shape (C_out,) (per channel: P = 1) or
    (C_out, P) (per position: P output positions per frame, row-major).
    ``directions``: None (every comparison ``>=``) or +1 / -1 of the same
    shape (-1: ``acc <= T``). A :class:`~hwgen.errors.BuildError` names the
    engine and the violation.
    """
    if thresholds is None:
        if directions is not None:
            raise BuildError(f"{engine}: directions need thresholds (accumulator mode takes none)")
        return None
    t = np.asarray(thresholds)
    if t.ndim not in (1, 2) or t.shape[0] != c_out or t.size == 0:
        raise BuildError(f"{engine}: thresholds must have shape (C_out,) = ({c_out},) or (C_out, positions), "
                         f"not {t.shape}")
    if not np.issubdtype(t.dtype, np.integer):
        raise BuildError(f"{engine}: thresholds must be an integer array, not dtype {t.dtype}")
    if directions is None:
        d = np.ones(t.shape, dtype=np.int64)
    else:
        d = np.asarray(directions)
        if d.shape != t.shape:
            raise BuildError(f"{engine}: directions must have the thresholds' shape {t.shape}, not {d.shape}")
        if not np.issubdtype(d.dtype, np.integer) or not np.all((d == 1) | (d == -1)):
            raise BuildError(f"{engine}: directions must be +1 ('>=') or -1 ('<='), not {np.unique(d)!r}")
    t, d = t.astype(np.int64).reshape(c_out, -1), d.astype(np.int64).reshape(c_out, -1)
    return t, d < 0


def lane_field(lo: int, hi: int) -> tuple[int, int | None]:
    """A lane's field for start values in [lo, hi]: ``(bits, high)`` (see the module docstring); ``high``
    is None for a signed field (lo < 0 <= hi)."""
    if (lo < 0) != (hi < 0):
        return signed_bits(lo, hi), None
    bits = (lo ^ hi).bit_length()
    return bits, lo >> bits


@dataclass(frozen=True)
class ThresholdTable:
    """Start values and output inversions of a threshold-mode engine, per result (see the module docstring).

    ``start``: int64 (R, PE), the accumulator's start value of result r, lane p;
    ``invert``: bool (R, PE), output bit inverted (the IR's ``<=``).
    """

    start: np.ndarray
    invert: np.ndarray

    @classmethod
    def from_channels(cls, start: np.ndarray, invert: np.ndarray, *, pe: int) -> "ThresholdTable":
        """From per-channel/position arrays (C_out, P): result r = pos * NF + nf, lane p = channel nf*PE + p."""
        c_out, positions = start.shape
        order = (positions * (c_out // pe), pe)
        return cls(start=np.ascontiguousarray(start.T).reshape(order),
                   invert=np.ascontiguousarray(invert.T).reshape(order))

    @cached_property
    def fields(self) -> tuple[tuple[int, int | None], ...]:
        """Per lane ``(bits, high)``: :func:`lane_field` of the lane's start values over all results."""
        return tuple(lane_field(int(lo), int(hi)) for lo, hi in zip(self.start.min(0), self.start.max(0)))

    @property
    def depth(self) -> int:
        """R = P * NF results per frame, one ROM word each."""
        return self.start.shape[0]

    @property
    def has_directions(self) -> bool:
        """Some comparison is ``<=``: the words carry PE inversion bits."""
        return bool(self.invert.any())

    @cached_property
    def offsets(self) -> list[int]:
        """Bit offset of each lane's field in a word (lane 0 at bit 0), then of the inversion bits."""
        return np.cumsum([0] + [bits for bits, _ in self.fields]).tolist()

    @property
    def word_bits(self) -> int:
        """The lanes' field bits, plus PE inversion bits when :attr:`has_directions`."""
        return self.offsets[-1] + (len(self.fields) if self.has_directions else 0)

    @property
    def bits(self) -> int:
        """Stored bits: R words of :attr:`word_bits`."""
        return self.depth * self.word_bits

    def field_value(self, p: int, start: int) -> int:
        """The stored bits of lane p for start value ``start``: ``start - high * 2^bits``, or two's complement."""
        bits, high = self.fields[p]
        value = start if high is None else start - (high << bits)
        return value & ((1 << bits) - 1)

    def words(self) -> list[int]:
        """ROM word r: start values of result (r + 1) mod R (lane fields), then inversion bits of result r."""
        from hwgen.hw.engines.folded import pack_fields  # folded.py imports this module

        offsets, flip_at = self.offsets, self.offsets[-1]
        out = []
        for r in range(self.depth):
            nxt = self.start[(r + 1) % self.depth]
            word = sum(self.field_value(p, int(v)) << offsets[p] for p, v in enumerate(nxt))
            if self.has_directions:
                word |= pack_fields(self.invert[r].astype(np.int64), 1) << flip_at
            out.append(word)
        return out
