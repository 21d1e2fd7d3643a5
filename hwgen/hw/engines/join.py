"""Residual join engine: the main branch's accumulators compared with the threshold the shortcut bit selects.

The arithmetic is the golden model's (:func:`hwgen.compile.golden.join_bits`,
docs/residual.md): for channel c at output position ``pos``, with the main
branch's accumulator ``acc`` and the shortcut bit ``s``,

    bit = acc >= T[s, c, pos]     (direction +1)
    bit = acc <= T[s, c, pos]     (direction -1)  =  NOT (acc >= T[s, c, pos] + 1)

so every comparison is ``acc >= T'`` with ``T' = T + neg`` (``neg``: direction
-1) and the result inverted where ``neg``, as in the folded engines
(:mod:`~hwgen.hw.engines.thresholds`). Thresholds outside the accumulator
range [lo, hi] give constant bits and are saturated to [lo, hi + 1] (same
bits), so a stored threshold is ``signed_bits(lo, hi + 1)`` bits wide.
"""

from __future__ import annotations

import numpy as np
from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed
from amaranth.lib import stream, wiring
from amaranth.lib.data import ArrayLayout
from amaranth.lib.wiring import In, Out

from hwgen.hw.engines.folded import DEFAULT_MEMORY, pack_fields, sync_rom
from hwgen.hw.engines.swu import check_count
from hwgen.hw.families import MemoryMap
from hwgen.compile.ir import JoinLayer, signed_bits
from hwgen.errors import BuildError

__all__ = ["JoinUnit"]


class JoinUnit(wiring.Component):
    """Residual join: PE accumulators and PE shortcut bits in, PE output bits out, one beat per cycle.

    Parameters (keyword-only; a :class:`~hwgen.errors.BuildError` names any violation)
    ----------
    thresholds : int array (2, C) or (2, C, P)
        Row s is used where the shortcut bit is s (the IR's
        :class:`~hwgen.compile.ir.JoinLayer`, positions flattened row-major).
    directions : int array (C,) or (C, P) of +1 / -1, or None (all +1)
        Shared by both rows.
    pe : int
        Channels per beat (the main branch's engine's PE); must divide C.
    acc_range : (lo, hi)
        The exact range of the incoming accumulators (the main branch's engine's ``acc_range``).
    memory : MemoryMap or None
        Where the threshold ROM goes (deeper than ``threshold_lut_max_depth``: block RAM).

    With NF = C / PE and P positions per frame (1 for per-channel thresholds):

    Ports
    -----
    main : In(stream.Signature(ArrayLayout(signed(acc_width), PE)))
        The main branch's accumulator mode: per output position NF beats, element p
        of beat nf is channel ``nf * PE + p``.
    shortcut : In(stream.Signature(PE))
        The shortcut's bits in the same order (bit p of beat nf = channel ``nf * PE + p``).
    o : Out(stream.Signature(PE))
        The join's bits, same order: one beat per (main, shortcut) pair.

    Memory layout
    -------------
    Threshold ROM (only when R = P * NF > 1, else constants): word r = pos * NF
    + nf holds, for lane p, ``T'[0]`` at bits ``2p * tw``, ``T'[1]`` at
    ``(2p + 1) * tw`` (two's complement, tw = :attr:`threshold_width`), then PE
    inversion bits when some direction is -1. Read ahead: the address is the
    next result while a beat is taken, so word r is on the ROM's output while
    result r waits.

    Timing
    ------
    Latency 1: a beat taken in cycle t (both inputs valid, the output
    register empty or being emptied) is on ``o`` in cycle t + 1. Throughput one
    beat per cycle; the first beat is taken no earlier than the cycle after
    reset (the ROM's first read). ``main.ready = room & shortcut.valid`` and
    ``shortcut.ready = room & main.valid`` with ``room = primed & (~o.valid |
    o.ready)``: a beat is taken from both inputs together or from neither
    (each input's ready depends on the other's valid).
    """

    def __init__(self, *, thresholds: np.ndarray, directions: np.ndarray | None, pe: int,
                 acc_range: tuple[int, int], memory: MemoryMap | None = None) -> None:
        t = np.asarray(thresholds)
        if t.ndim not in (2, 3) or t.shape[0] != 2 or t.size == 0 or not np.issubdtype(t.dtype, np.integer):
            raise BuildError(f"join thresholds must be an integer array (2, C) or (2, C, positions), not "
                             f"{t.dtype} {t.shape}")
        c = t.shape[1]
        t = t.astype(np.int64).reshape(2, c, -1)
        if directions is None:
            d = np.ones(t.shape[1:], dtype=np.int64)
        else:
            d = np.asarray(directions)
            if d.size != c * t.shape[2] or not np.all((d == 1) | (d == -1)):
                raise BuildError(f"join directions must be +1 / -1 shaped like one threshold row {t.shape[1:]}, "
                                 f"not {d.shape}")
            d = d.astype(np.int64).reshape(t.shape[1:])
        self.pe = check_count("PE", pe)
        if c % self.pe:
            raise BuildError(f"join: PE must divide the channels ({c}), not {pe}")
        lo, hi = (int(v) for v in acc_range)
        if lo > hi:
            raise BuildError(f"join: acc_range must be (lo, hi) with lo <= hi, not {acc_range}")
        if memory is not None and not isinstance(memory, MemoryMap):
            raise BuildError(f"memory must be a MemoryMap (a family's spec.memory), not {memory!r}")
        self.memory = DEFAULT_MEMORY if memory is None else memory
        self.channels, self.positions = c, t.shape[2]
        self.nf = c // self.pe
        self.acc_range = (lo, hi)
        self.acc_width = signed_bits(lo, hi)
        self.threshold_width = signed_bits(lo, hi + 1)
        neg = d < 0
        shifted = np.clip(np.clip(t, lo - 1, hi + 1) + neg, lo, hi + 1)  # (2, C, P)
        # result order r = pos * NF + nf, lane p = channel nf * PE + p
        order = (self.positions * self.nf, self.pe)
        self._t = [np.ascontiguousarray(shifted[s].T).reshape(order) for s in (0, 1)]
        self._neg = np.ascontiguousarray(neg.T).reshape(order)
        super().__init__({
            "main": In(stream.Signature(ArrayLayout(signed(self.acc_width), self.pe))),
            "shortcut": In(stream.Signature(self.pe)),
            "o": Out(stream.Signature(self.pe)),
        })

    @classmethod
    def for_layer(cls, layer: JoinLayer, *, pe: int, acc_range: tuple[int, int],
                  memory: MemoryMap | None = None) -> "JoinUnit":
        """The join of an IR :class:`~hwgen.compile.ir.JoinLayer`: its thresholds (2, C) or (2, C, H, W) as
        (2, C, P) with positions flattened row-major, its directions (None when all are +1)."""
        c, h, w = layer.in_shape
        positions = 1 if np.ndim(layer.thresholds) == 2 else h * w
        direction = np.asarray(layer.direction)
        return cls(thresholds=np.asarray(layer.thresholds).reshape(2, c, positions),
                   directions=None if np.all(direction == 1) else direction.reshape(c, positions),
                   pe=pe, acc_range=acc_range, memory=memory)

    @property
    def depth(self) -> int:
        """R = P * NF results per frame, one threshold word each."""
        return self.positions * self.nf

    @property
    def has_directions(self) -> bool:
        return bool(self._neg.any())

    @property
    def word_bits(self) -> int:
        """2 * PE thresholds of :attr:`threshold_width` bits, plus PE inversion bits when some direction is -1."""
        return 2 * self.pe * self.threshold_width + (self.pe if self.has_directions else 0)

    @property
    def threshold_rom_bits(self) -> int:
        """Stored threshold bits: R words of :attr:`word_bits` (constants when R = 1: none stored)."""
        return 0 if self.depth == 1 else self.depth * self.word_bits

    def threshold_words(self) -> list[int]:
        """The threshold ROM's words (see Memory layout)."""
        tw, pe = self.threshold_width, self.pe
        pairs = np.stack([self._t[0], self._t[1]], axis=2).reshape(self.depth, 2 * pe)
        words = [pack_fields(row, tw) for row in pairs]
        if self.has_directions:
            words = [w | (pack_fields(n.astype(np.int64), 1) << (2 * pe * tw)) for w, n in zip(words, self._neg)]
        return words

    def elaborate(self, platform) -> Module:
        m = Module()
        pe, tw, depth = self.pe, self.threshold_width, self.depth
        primed = Signal()
        m.d.sync += primed.eq(1)
        room, take = Signal(), Signal()
        m.d.comb += [
            room.eq(primed & (~self.o.valid | self.o.ready)),
            self.main.ready.eq(room & self.shortcut.valid),
            self.shortcut.ready.eq(room & self.main.valid),
            take.eq(room & self.main.valid & self.shortcut.valid),
        ]
        if depth == 1:
            lanes = [[Const(int(self._t[s][0, p]), signed(tw)) for s in (0, 1)] for p in range(pe)]
            inv = [Const(int(self._neg[0, p]), 1) for p in range(pe)]
        else:
            result = Signal(range(depth))
            following = Mux(result == depth - 1, 0, result + 1)
            with m.If(take):
                m.d.sync += result.eq(following)
            data = sync_rom(m, "thresholds", self.threshold_words(), self.word_bits, Mux(take, following, result),
                            memory=self.memory, block=self.memory.threshold_rom_in_block_ram(depth))
            lanes = [[data[(2 * p + s) * tw:(2 * p + s + 1) * tw].as_signed() for s in (0, 1)] for p in range(pe)]
            inv = [data[2 * pe * tw + p] if self.has_directions else Const(0, 1) for p in range(pe)]
        bits = []
        for p in range(pe):
            acc = self.main.payload[p]
            threshold = Signal(signed(tw), name=f"t{p}")
            diff = Signal(signed(max(self.acc_width, tw) + 1), name=f"diff{p}")
            m.d.comb += [threshold.eq(Mux(self.shortcut.payload[p], lanes[p][1], lanes[p][0])),
                         diff.eq(acc - threshold)]
            bits.append(~diff[-1] ^ inv[p])
        with m.If(self.o.ready):
            m.d.sync += self.o.valid.eq(0)
        with m.If(take):
            m.d.sync += [self.o.valid.eq(1), self.o.payload.eq(Cat(*bits))]
        return m
