"""The engines' first-in first-out buffers: Amaranth's :class:`~amaranth.lib.fifo.SyncFIFO`, its storage marked
for synthesis as never read at an address written in the same cycle, and a wide one built of such FIFOs in
lockstep.

A read and a write meet at one address only when the FIFO is empty (``r_rdy``
low: the word read is not taken) or full (``w_rdy`` low: nothing is
written), so the storage's read-during-write result is never used. Marked
``no_rw_check``, Yosys adds no logic to give the old word on such a read;
without the mark it does, between the block RAM and the register behind it
(a vector FIFO read into the engine's input slice: CNV ``--pe 16``'s conv5,
5.85 ns of block-RAM clock-to-output and that logic on the critical path,
the register left outside the block RAM). Ports, depth and latency are
SyncFIFO's.
"""

from __future__ import annotations

from amaranth.hdl import Elaboratable, Module, Signal
from amaranth.lib import fifo

from hwgen.hw.engines.pipeline import spans

__all__ = ["SlicedFIFO", "SyncFIFO", "sliced_fifo"]


class SyncFIFO(fifo.SyncFIFO):
    """:class:`amaranth.lib.fifo.SyncFIFO` with its storage memory marked ``no_rw_check`` (module docstring)."""

    def elaborate(self, platform):
        m = super().elaborate(platform)
        if self.depth:
            m.submodules.storage.attrs["no_rw_check"] = 1
        return m


class SlicedFIFO(Elaboratable):
    """A ``width``-bit FIFO as ceil(width / slice_bits) :class:`SyncFIFO` of at most ``slice_bits`` bits in
    lockstep: slice k holds data bits ``k*slice_bits ..``, each slice has its own pointers and level.

    Every slice sees the same ``w_en`` and ``r_en`` from reset on, so all hold
    the same number of words. ``w_rdy`` and ``r_rdy`` come from flip-flops of
    one more level counter, set from its next value (level != depth, level !=
    0): equal to every slice's own, but the logic outside (a width
    converter's ready, an engine's issue) starts from a register instead of
    from a slice's level compare, which Yosys merged with that logic (TFC's
    fc0: slice 0's level through the converter's ready and back, 6.1-6.4 ns
    of routing). The same FIFO as one SyncFIFO (ports ``w_data``, ``w_en``,
    ``w_rdy``, ``r_data``, ``r_en``, ``r_rdy``; depth >= 1, a word written is
    readable the next cycle, as SyncFIFO's), but no pointer register drives
    the address pins of more than ``slice_bits`` bits of storage: one FIFO of
    SFC's 896-bit input vectors in LUT RAM had its read and write pointers
    routed to all 224 of its RAM cells, 10-11 ns (90.45 MHz).
    :func:`sliced_fifo` gives a plain :class:`SyncFIFO` where one slice holds
    the whole width.
    """

    def __init__(self, *, width: int, depth: int, slice_bits: int) -> None:
        if depth < 1:
            raise ValueError(f"a sliced FIFO needs depth >= 1, not {depth}")
        self.width, self.depth = width, depth
        self.bounds = spans(width, slice_bits)
        self.w_data = Signal(width)
        self.w_en = Signal()
        self.w_rdy = Signal(init=1)
        self.r_data = Signal(width)
        self.r_en = Signal()
        self.r_rdy = Signal()

    def elaborate(self, platform) -> Module:
        m = Module()
        slices = [SyncFIFO(width=hi - lo, depth=self.depth) for lo, hi in self.bounds]
        for k, ((lo, hi), part) in enumerate(zip(self.bounds, slices)):
            m.submodules[f"s{k}"] = part
            m.d.comb += [part.w_en.eq(self.w_en), part.w_data.eq(self.w_data[lo:hi]),
                         part.r_en.eq(self.r_en), self.r_data[lo:hi].eq(part.r_data)]
        level = Signal(range(self.depth + 1))
        level_next = level + (self.w_en & self.w_rdy) - (self.r_en & self.r_rdy)
        m.d.sync += [level.eq(level_next), self.w_rdy.eq(level_next != self.depth), self.r_rdy.eq(level_next != 0)]
        return m


def sliced_fifo(*, width: int, depth: int, slice_bits: int) -> SyncFIFO | SlicedFIFO:
    """A :class:`SlicedFIFO` when ``width`` > ``slice_bits``, else a :class:`SyncFIFO` (the same ports)."""
    if width > slice_bits:
        return SlicedFIFO(width=width, depth=depth, slice_bits=slice_bits)
    return SyncFIFO(width=width, depth=depth)
