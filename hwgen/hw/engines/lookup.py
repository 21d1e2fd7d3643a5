"""Input table unit: the first layer's exact per-channel pixel map, in front of its MAC unit.

An IR layer with an ``input_table`` T (C, 256) (hwgen/compile/ir.py) reads the
value ``T[c, x]`` for pixel x of channel c. The MAC unit computes with
``x' - p_c`` for bytes x' and constant offsets p_c, so this unit rewrites each
pixel byte as ``x' = T[c, x] + p_c`` with ``p_c = -min_x T[c, x]``
(:func:`table_offsets`); then ``x' - p_c = T[c, x]`` exactly. It needs
``max_x T[c, x] - min_x T[c, x] <= 255`` per channel (Brevitas CNV's
``clip(round(128 * (2x/255 - 1)), -128, 127)`` spans exactly 255; a binary
input ``+-1`` spans 2).
"""

from __future__ import annotations

import numpy as np
from amaranth.hdl import Cat, Module, Mux, Signal, unsigned
from amaranth.lib import stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from hwgen.compile.ir import PIXEL_VALUES
from hwgen.errors import BuildError

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
        The IR's input table; channel c is the one of beat ``k`` with ``k mod C == c``
        (the pixel stream is (y, x, c) with the channel fastest).

    Ports
    -----
    i : In(stream.Signature(8))   pixel bytes
    o : Out(stream.Signature(8))  rewritten bytes, same order

    Timing
    ------
    One beat per cycle; latency 1 (a synchronous ROM read of C * 256 bytes,
    address ``c * 256 + x``). ``i.ready = ~o.valid | o.ready``; when the
    output stalls the ROM's read enable holds its data.
    """

    def __init__(self, *, table: np.ndarray) -> None:
        self.offsets = table_offsets(table)
        t = np.asarray(table, dtype=np.int64)
        self.channels = int(t.shape[0])
        self.words = [int(v) for v in (t + self.offsets[:, None]).ravel()]  # address c * 256 + x
        super().__init__({"i": In(stream.Signature(_PIXEL_BITS)), "o": Out(stream.Signature(_PIXEL_BITS))})

    @property
    def rom_bits(self) -> int:
        return len(self.words) * _PIXEL_BITS

    def elaborate(self, platform) -> Module:
        m = Module()
        C = self.channels
        rom = m.submodules.rom = Memory(shape=unsigned(_PIXEL_BITS), depth=len(self.words), init=self.words)
        rd = rom.read_port(domain="sync")
        channel = Signal(range(max(C, 2)))
        take = Signal()
        m.d.comb += [
            self.i.ready.eq(~self.o.valid | self.o.ready),
            take.eq(self.i.valid & self.i.ready),
            rd.en.eq(self.i.ready),
            rd.addr.eq(Cat(self.i.payload, channel) if C > 1 else self.i.payload),
            self.o.payload.eq(rd.data),
        ]
        with m.If(self.i.ready):
            m.d.sync += self.o.valid.eq(self.i.valid)
        if C > 1:
            with m.If(take):
                m.d.sync += channel.eq(Mux(channel == C - 1, 0, channel + 1))
        return m
