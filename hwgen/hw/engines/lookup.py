"""Input table unit: the first layer's exact per-channel pixel map, in front of its MAC unit.

An IR layer with an ``input_table`` T (C, 256) (hwgen/compile/ir.py) reads the
value ``T[c, x]`` for pixel x of channel c. The MAC unit computes with
``x' - p_c`` for bytes x' and constant offsets p_c, so this unit rewrites each
pixel byte as ``x' = T[c, x] + p_c`` with ``p_c = -min_x T[c, x]``
(:func:`table_offsets`); then ``x' - p_c = T[c, x]`` exactly. It needs
``max_x T[c, x] - min_x T[c, x] <= 255`` per channel (Brevitas CNV's
``clip(round(128 * (2x/255 - 1)), -128, 127)`` spans exactly 255; a binary
input ``+-1`` spans 2). With ``lanes`` L > 1 it rewrites L bytes per beat
(an ``--in-width`` of 8L bits), one ROM read port per byte.
"""

from __future__ import annotations

import numpy as np
from amaranth.hdl import Cat, Const, Module, Mux, Signal, unsigned
from amaranth.lib import stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from hwgen.compile.ir import PIXEL_VALUES
from hwgen.errors import BuildError
from hwgen.hw.engines.swu import check_count

__all__ = ["InputTableUnit", "table_offsets"]

_PIXEL_BITS = 8


def table_offsets(table: np.ndarray) -> np.ndarray:
    """p_c = -min_x T[c, x] (int64 (C,)), checked: every channel's values span at most 255."""
    t = np.asarray(table, dtype=np.int64)
    if t.ndim != 2 or t.shape[1] != PIXEL_VALUES:
        raise BuildError(f"an input table must have shape (C, {PIXEL_VALUES}), not {t.shape}")
    span = t.max(axis=1) - t.min(axis=1)
    if np.any(span > 255):
        c = int(np.argmax(span))
        raise BuildError(f"input table channel {c} spans {int(span[c])} values (from {int(t[c].min())} to "
                         f"{int(t[c].max())}); the first engine takes 8-bit inputs, at most 256 distinct values")
    return -t.min(axis=1)


class InputTableUnit(wiring.Component):
    """Rewrite each pixel byte x of channel c as ``T[c, x] + p_c`` (see the module docstring).

    Parameters (keyword-only)
    ----------
    table : int array (C, 256)
        The IR's input table; channel c is the one of byte ``k`` of the stream
        with ``k mod C == c`` (the pixel stream is (y, x, c) with the channel fastest).
    lanes : int (default 1)
        L, bytes per beat: byte l of beat b is stream byte ``b * L + l``, on bits ``8l ..``.

    Ports
    -----
    i : In(stream.Signature(8 * L))   pixel bytes
    o : Out(stream.Signature(8 * L))  rewritten bytes, same order

    Timing
    ------
    One beat per cycle; latency 1 (L synchronous read ports of one ROM of
    C * 256 bytes, address ``c * 256 + x``; the channel of byte l is
    ``(c_0 + l) mod C``, c_0 the beat's first channel, advanced by L mod C
    per beat). ``i.ready = ~o.valid | o.ready``; when the output stalls the
    ROM's read enables hold its data.
    """

    def __init__(self, *, table: np.ndarray, lanes: int = 1) -> None:
        self.offsets = table_offsets(table)
        t = np.asarray(table, dtype=np.int64)
        self.channels = int(t.shape[0])
        self.lanes = check_count("lanes", lanes)
        self.words = [int(v) for v in (t + self.offsets[:, None]).ravel()]  # address c * 256 + x
        width = _PIXEL_BITS * self.lanes
        super().__init__({"i": In(stream.Signature(width)), "o": Out(stream.Signature(width))})

    @property
    def rom_bits(self) -> int:
        """Bits of the table ROM (once; a synthesis tool may copy it per read port)."""
        return len(self.words) * _PIXEL_BITS

    def elaborate(self, platform) -> Module:
        m = Module()
        C, L = self.channels, self.lanes
        rom = m.submodules.rom = Memory(shape=unsigned(_PIXEL_BITS), depth=len(self.words), init=self.words)
        channel = Signal(range(max(C, 2)))  # c_0: the channel of the beat's byte 0
        take = Signal()
        m.d.comb += [
            self.i.ready.eq(~self.o.valid | self.o.ready),
            take.eq(self.i.valid & self.i.ready),
        ]
        for lane in range(L):
            rd = rom.read_port(domain="sync")
            byte = self.i.payload[lane * _PIXEL_BITS:(lane + 1) * _PIXEL_BITS]
            m.d.comb += [rd.en.eq(self.i.ready), self.o.payload[lane * _PIXEL_BITS:(lane + 1) * _PIXEL_BITS].eq(rd.data)]
            if C > 1:
                m.d.comb += rd.addr.eq(Cat(byte, _add_mod(channel, lane % C, C)))
            else:
                m.d.comb += rd.addr.eq(byte)
        with m.If(self.i.ready):
            m.d.sync += self.o.valid.eq(self.i.valid)
        if C > 1:
            with m.If(take):
                m.d.sync += channel.eq(_add_mod(channel, L % C, C))
        return m


def _add_mod(value, k: int, n: int):
    """(value + k) mod n for 0 <= value < n and a constant 0 <= k < n: one conditional subtraction."""
    if k == 0:
        return value
    total = value + Const(k, range(n + k))
    return Mux(total >= n, total - n, total)[:len(value)]
