"""Stream fork: one map stream delivered, beat for beat, to several consumers (a node read by several nodes)."""

from __future__ import annotations

from amaranth.hdl import Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from hwgen.hw.engines.swu import check_count
from hwgen.errors import BuildError

__all__ = ["Fork"]


class Fork(wiring.Component):
    """Broadcast ``i`` to ``o[0] .. o[n-1]``; each consumer takes every beat once, at its own pace within the beat.

    Parameters (keyword-only)
    ----------
    width : int
        Bits per beat.
    n : int
        Consumers (at least 2).

    Ports
    -----
    i : In(stream.Signature(width))
    o : Out(stream.Signature(width)).array(n)
        The same beats in the same order.

    Timing
    ------
    No register on the data (latency 0). A register of n ``taken`` flags
    remembers which consumers already took the current beat: ``o[k].valid =
    i.valid & ~taken[k]`` and ``i.ready`` = every consumer has taken it or takes
    it now, so the beat leaves the input when the last consumer takes it and a
    slow consumer never makes another see a beat twice. A beat all consumers
    take at once passes in one cycle, so the fork runs at one beat per cycle
    when they keep up; it stalls the producer while one of them does not
    (a skip buffer on the shortcut edge keeps that from happening,
    :mod:`hwgen.hw.graph`). ``i.ready`` depends on every ``o[k].ready`` (combinationally).
    """

    def __init__(self, *, width: int, n: int) -> None:
        self.width = check_count("width", width)
        if check_count("n", n) < 2:
            raise BuildError(f"a fork has at least 2 consumers, not {n}")
        self.n = n
        super().__init__({"i": In(stream.Signature(self.width)), "o": Out(stream.Signature(self.width)).array(n)})

    def elaborate(self, platform) -> Module:
        m = Module()
        taken = Signal(self.n)
        done = Signal(self.n)
        for k, out in enumerate(self.o):
            m.d.comb += [out.valid.eq(self.i.valid & ~taken[k]), out.payload.eq(self.i.payload),
                         done[k].eq(taken[k] | out.ready)]
        m.d.comb += self.i.ready.eq(done.all())
        with m.If(self.i.valid):
            with m.If(self.i.ready):
                m.d.sync += taken.eq(0)
            with m.Else():
                for k, out in enumerate(self.o):
                    with m.If(out.ready):
                        m.d.sync += taken[k].eq(1)
        return m
