"""Stream width converter: beats of ``in_width`` bits -> beats of ``out_width`` bits, order kept.

A stream is read as one long bit string, the first beat on the lowest bits
(the map-stream convention: channel ``q*width + k`` of a pixel on bit k of its
beat q). The converter regroups it: when ``out_width = k * in_width`` it
gathers k input beats into one output beat (input beat j on output bits
``j*in_width ..``); when ``in_width = k * out_width`` it splits each input beat
into k output beats (output beat j = input bits ``j*out_width ..``); otherwise
it chains a split to the greatest common divisor and a gather. Frames must be a
whole number of both beat sizes (the accelerator guarantees it: both widths
divide the frame's bit count).
"""

from __future__ import annotations

import math

from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from hwgen.hw.engines.swu import check_count

__all__ = ["WidthConverter"]


class WidthConverter(wiring.Component):
    """Regroup a bit stream from ``in_width`` to ``out_width`` bits per beat.

    Parameters (keyword-only; a :class:`~hwgen.errors.BuildError` names any violation)
    ----------
    in_width, out_width : int
        Bits per beat of ``i`` and ``o``.

    Ports
    -----
    i : In(stream.Signature(in_width))
    o : Out(stream.Signature(out_width))
        The same bit string, regrouped (see the module docstring).

    Timing
    ------
    Equal widths: a wire (latency 0). Gather by k: the output beat is valid the
    cycle after the handshake of its k-th input beat; one input beat per
    cycle, ``i.ready = ~o.valid | o.ready``; input beat j is written into part
    register j (enable: bit j of a one-hot slot register and the handshake for
    part 0, ``i.valid`` for the others, which are never written while a beat is
    held) and the output payload is the k part registers, out_width + k
    flip-flops in all. Split by k: an input beat is held
    in a register and leaves in k consecutive cycles (while ``o.ready``); the
    next input beat is accepted with the last of them, so the output runs at
    one beat per cycle. General widths: split then gather, latency 2.
    """

    def __init__(self, *, in_width: int, out_width: int) -> None:
        self.in_width = check_count("in_width", in_width)
        self.out_width = check_count("out_width", out_width)
        super().__init__({
            "i": In(stream.Signature(self.in_width)),
            "o": Out(stream.Signature(self.out_width)),
        })

    @property
    def latency(self) -> int:
        """Cycles from the handshake of the input beat that completes an output beat to that beat being valid."""
        a, b = self.in_width, self.out_width
        if a == b:
            return 0
        if b % a == 0 or a % b == 0:
            return 1
        return 2

    def elaborate(self, platform) -> Module:
        m = Module()
        a, b = self.in_width, self.out_width
        if a == b:
            wiring.connect(m, wiring.flipped(self.i), wiring.flipped(self.o))
        elif b % a == 0:
            self._gather(m, b // a)
        elif a % b == 0:
            self._split(m, a // b)
        else:
            g = math.gcd(a, b)
            m.submodules.split = split = WidthConverter(in_width=a, out_width=g)
            m.submodules.gather = gather = WidthConverter(in_width=g, out_width=b)
            wiring.connect(m, wiring.flipped(self.i), split.i)
            wiring.connect(m, split.o, gather.i)
            wiring.connect(m, gather.o, wiring.flipped(self.o))
        return m

    def _gather(self, m: Module, k: int) -> None:
        # The output beat is the k part registers themselves (no output register): part j is written by
        # the j-th input beat, its enable the handshake AND bit j of a one-hot slot, so no enable drives
        # more than one part's in_width flip-flops (a copy into one out_width-bit register made its enable
        # the critical path: SFC's 896 bits, 77.6 MHz). Part 0 is written only while ~valid | o.ready: the
        # held beat does not change, and part 0 of the next beat is written as the held one is taken.
        # Parts 1..k-1 and slot bits 2..k-1 are enabled by i.valid alone, not by o.ready: while a beat is
        # held the slot is at part 0 (its k-th part rotated it there), so for them take = i.valid exactly,
        # and the consumer's ready reaches only part 0's in_width flip-flops (TFC's fc0 ready into all
        # 448 part flip-flops: 126 MHz). Slot bit 1 follows bit 0 and needs the handshake.
        a = self.in_width
        parts = [Signal(a, name=f"part{j}") for j in range(k)]
        slot = Signal(k, init=1)  # one-hot: the part the next input beat goes to
        valid = Signal()
        take = Signal()
        m.d.comb += [
            self.i.ready.eq(~valid | self.o.ready),
            take.eq(self.i.valid & self.i.ready),
            self.o.valid.eq(valid),
            self.o.payload.eq(Cat(*parts)),
        ]
        with m.If(self.o.valid & self.o.ready):
            m.d.sync += valid.eq(0)
        # rotate on each taken beat: part j -> part j + 1, k - 1 -> 0
        with m.If(take):
            m.d.sync += slot[:2].eq(Cat(slot[-1], slot[0]))
            with m.If(slot[-1]):
                m.d.sync += valid.eq(1)
        if k > 2:
            with m.If(self.i.valid):
                m.d.sync += slot[2:].eq(slot[1:-1])
        for j, part in enumerate(parts):
            with m.If((take if j == 0 else self.i.valid) & slot[j]):
                m.d.sync += part.eq(self.i.payload)

    def _split(self, m: Module, k: int) -> None:
        b = self.out_width
        held = Signal(self.in_width)
        count = Signal(range(k))
        valid = Signal()
        last = count == k - 1
        chunks = [held[j * b:(j + 1) * b] for j in range(k)]
        out = Signal(b)
        with m.Switch(count):
            for j in range(k):
                with m.Case(j):
                    m.d.comb += out.eq(chunks[j])
        m.d.comb += [
            self.o.valid.eq(valid),
            self.o.payload.eq(out),
            self.i.ready.eq(~valid | (last & self.o.ready)),
        ]
        with m.If(self.o.valid & self.o.ready):
            m.d.sync += count.eq(Mux(last, 0, count + 1))
            with m.If(last):
                m.d.sync += valid.eq(0)
        with m.If(self.i.valid & self.i.ready):
            m.d.sync += [held.eq(self.i.payload), valid.eq(1), count.eq(0)]

