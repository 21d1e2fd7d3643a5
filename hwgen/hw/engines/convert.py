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

from hwgen.hw.engines.pipeline import FANOUT_COPY
from hwgen.hw.engines.swu import check_count

__all__ = ["COPY_GATHER_ABOVE", "WidthConverter", "gather_lanes"]

#: A gather of more parts than this takes its input beat through a register with one copy per group of parts
#: (:meth:`WidthConverter._gather`), so that no input bit drives every part.
COPY_GATHER_ABOVE = 16


def gather_lanes(k: int) -> int:
    """Parts per group of a gather by k (:meth:`WidthConverter._gather`): ceil(sqrt(k)), so that the one-hot
    slot registers hold about 2 sqrt(k) bits and each slot bit drives about sqrt(k) part enables."""
    return math.isqrt(k - 1) + 1


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
    register j (enable: part j's bits of two one-hot slot registers, groups and
    parts within a group, :func:`gather_lanes`, and the handshake for part 0;
    the others take ``i.payload`` every cycle they are next and are never next
    while a beat is held) and the output payload is the k part registers,
    out_width + about 2 sqrt(k) flip-flops in all. Split by k: an input beat is held
    in a register and leaves in k consecutive cycles (while ``o.ready``); the
    next input beat is accepted with the last of them, so the output runs at
    one beat per cycle. General widths: split then gather, latency 2 (3 copied).

    ``copied`` (default: a gather by more than :data:`COPY_GATHER_ABOVE`): the
    gather takes each input beat into a register first, one copy per group of
    parts (``beat_fanoutG``, kept apart in synthesis), loaded while
    ``i.ready``; ``i.ready = ~held | ~o.valid | o.ready``, and the parts are
    written from their group's copy a cycle later, so each input bit drives
    the copies and each copy sqrt(k) parts, not all k (LFC: fc0's 2-bit output
    into fc1's 256 parts across its FIFO slices, ``o.payload[1]`` 48 columns
    in 10.77 ns of routing, 88.50 MHz). One cycle more latency, still one beat
    per cycle.
    """

    def __init__(self, *, in_width: int, out_width: int, copied: bool | None = None) -> None:
        self.in_width = check_count("in_width", in_width)
        self.out_width = check_count("out_width", out_width)
        k = self.out_width // math.gcd(self.in_width, self.out_width)  # parts of the gather (1: none)
        self.copied = k > 1 and (k > COPY_GATHER_ABOVE if copied is None else copied)
        super().__init__({
            "i": In(stream.Signature(self.in_width)),
            "o": Out(stream.Signature(self.out_width)),
        })

    @property
    def latency(self) -> int:
        """Cycles from the handshake of the input beat that completes an output beat to that beat being valid."""
        a, b = self.in_width, self.out_width
        split = int(b % a != 0)  # a split (to gcd(a, b) bits) unless a divides b
        gather = 1 + int(self.copied) if a % b != 0 else 0  # a gather unless b divides a
        return split + gather

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
            m.submodules.gather = gather = WidthConverter(in_width=g, out_width=b, copied=self.copied)
            wiring.connect(m, wiring.flipped(self.i), split.i)
            wiring.connect(m, split.o, gather.i)
            wiring.connect(m, gather.o, wiring.flipped(self.o))
        return m

    def _gather(self, m: Module, k: int) -> None:
        # The output beat is the k part registers themselves (no output register): part j is written by
        # the j-th input beat, so no enable drives more than one part's in_width flip-flops (a copy into one
        # out_width-bit register made its enable the critical path: SFC's 896 bits, 77.6 MHz). The part the
        # next beat goes to is j = g * L + l (L = gather_lanes(k)): group g in a one-hot ``group`` register,
        # l in a one-hot ``lane`` register, both rotated on each taken beat; part j's enable is group[g] &
        # lane[l] alone, without i.valid: it takes i.payload every cycle it is the next part, and the taken
        # beat is the last thing it takes. Only part 0 needs the handshake: it is the next part while a
        # finished beat is held, which must not change (every other part is next only while nothing is
        # held, so ready is 1 there). So i.valid reaches the L + G slot flip-flops, not the k parts (LFC's
        # fc2: 512 one-bit parts, each enabled by i.valid, the FIFO level in front through i.valid to
        # part455: 1.00 ns logic, 8.99 ns routing, 100.12 MHz), and o.ready reaches part 0 and the slot.
        # Copied (``self.copied``): the beat is first held in a register with one copy per group, and "taken"
        # means taken from that register into its part; a part other than 0 is next only while no output beat
        # is held, so the held beat is taken the cycle it is there, and the invariant above still holds.
        a = self.in_width
        lanes = gather_lanes(k)
        groups = -(-k // lanes)
        parts = [Signal(a, name=f"part{j}") for j in range(k)]
        lane = Signal(lanes, init=1)
        group = Signal(groups, init=1)
        valid = Signal()
        take = Signal()
        room = ~valid | self.o.ready  # the next part may be written
        m.d.comb += [
            self.o.valid.eq(valid),
            self.o.payload.eq(Cat(*parts)),
        ]
        if self.copied:
            held = Signal()
            beats = [Signal(a, name=f"beat{FANOUT_COPY}{g}", reset_less=True) for g in range(groups)]
            m.d.comb += [self.i.ready.eq(~held | room), take.eq(held & room)]
            with m.If(self.i.ready):
                m.d.sync += [held.eq(self.i.valid), *(beat.eq(self.i.payload) for beat in beats)]
        else:
            beats = [self.i.payload] * groups
            m.d.comb += [self.i.ready.eq(room), take.eq(self.i.valid & self.i.ready)]
        last_lane = (k - 1) % lanes            # the last part's lane, in the last group
        last_part = group[-1] & lane[last_lane]
        with m.If(self.o.valid & self.o.ready):
            m.d.sync += valid.eq(0)
        with m.If(take):
            with m.If(last_part):
                m.d.sync += [valid.eq(1), lane.eq(1), group.eq(1)]
            with m.Else():
                m.d.sync += lane.eq(lane.rotate_left(1))
                with m.If(lane[-1]):
                    m.d.sync += group.eq(group.rotate_left(1))
        for j, part in enumerate(parts):
            selected = group[j // lanes] & lane[j % lanes]
            with m.If(take & selected if j == 0 else selected):
                m.d.sync += part.eq(beats[j // lanes])

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

