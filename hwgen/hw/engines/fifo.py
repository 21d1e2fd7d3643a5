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

from types import SimpleNamespace

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
    One slice is the same FIFO with those two flags from flip-flops
    (:func:`sliced_fifo`).

    With ``output_register``, ``r_data`` and ``r_rdy`` are flip-flops of one more stage after the slices
    (loaded from them whenever it is empty or being read): the storage's read (the read pointer through the
    LUT RAM's read multiplexer) ends at that register instead of running on into whatever reads the FIFO.
    A word written is then readable two cycles later, and the FIFO holds depth + 1 words. (LFC: an engine's
    result FIFO read into the next layer's gathering converter, whose input beat reaches every part: the
    pointer to its LUT RAM and the LUT RAM to the parts, 3.17 + 5.45 ns of routing in one cycle.)
    """

    def __init__(self, *, width: int, depth: int, slice_bits: int, output_register: bool = False) -> None:
        if depth < 1:
            raise ValueError(f"a sliced FIFO needs depth >= 1, not {depth}")
        self.width, self.depth = width, depth
        self.output_register = bool(output_register)
        self.bounds = spans(width, slice_bits)
        self.w_data = Signal(width)
        self.w_en = Signal()
        self.w_rdy = Signal(init=1)
        self.r_data = Signal(width)
        self.r_en = Signal()
        self.r_rdy = Signal()

    @property
    def w_stream(self) -> SimpleNamespace:
        """The write side as a stream: valid = ``w_en``, ready = ``w_rdy``, payload = ``w_data``."""
        return SimpleNamespace(valid=self.w_en, ready=self.w_rdy, payload=self.w_data)

    @property
    def r_stream(self) -> SimpleNamespace:
        """The read side as a stream: valid = ``r_rdy``, ready = ``r_en``, payload = ``r_data``."""
        return SimpleNamespace(valid=self.r_rdy, ready=self.r_en, payload=self.r_data)

    def elaborate(self, platform) -> Module:
        m = Module()
        if self.output_register:  # the slices' read side, into the output stage
            r_data, r_en, r_rdy = Signal(self.width), Signal(), Signal()
        else:
            r_data, r_en, r_rdy = self.r_data, self.r_en, self.r_rdy
        slices = [SyncFIFO(width=hi - lo, depth=self.depth) for lo, hi in self.bounds]
        for k, ((lo, hi), part) in enumerate(zip(self.bounds, slices)):
            m.submodules[f"s{k}"] = part
            m.d.comb += [part.w_en.eq(self.w_en), part.w_data.eq(self.w_data[lo:hi]),
                         part.r_en.eq(r_en), r_data[lo:hi].eq(part.r_data)]
        level = Signal(range(self.depth + 1))
        level_next = level + (self.w_en & self.w_rdy) - (r_en & r_rdy)
        m.d.sync += [level.eq(level_next), self.w_rdy.eq(level_next != self.depth), r_rdy.eq(level_next != 0)]
        if self.output_register:
            m.d.comb += r_en.eq(r_rdy & (~self.r_rdy | self.r_en))
            with m.If(r_en):
                m.d.sync += [self.r_data.eq(r_data), self.r_rdy.eq(1)]
            with m.Elif(self.r_en):
                m.d.sync += self.r_rdy.eq(0)
        return m


def sliced_fifo(*, width: int, depth: int, slice_bits: int, output_register: bool = False) -> SlicedFIFO:
    """A :class:`SlicedFIFO`, also where one slice holds the whole width: its ``w_rdy`` and ``r_rdy`` are
    flip-flops, where a plain :class:`SyncFIFO`'s are its level's compares, which Yosys merged into the
    logic they feed (CNV ``--pe 16``: conv5's vector FIFO level through the engine's issue logic into its
    registered ``i.ready``, six LUT4 levels, 1.94 ns logic + 7.83 ns routing, 102.36 MHz; conv3's window
    slice level into the window's row counters, 2.11 + 8.78 ns)."""
    return SlicedFIFO(width=width, depth=depth, slice_bits=slice_bits, output_register=output_register)
