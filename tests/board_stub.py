"""A stand-in accelerator with ``hwgen_top``'s flat ports, for fast board-top tests in Amaranth's simulator.

Per frame of ``frame_bytes`` input bytes it answers ``num_classes`` scores and
a class index (the accelerator's output format), computed so that a wrong,
missing or reordered byte changes them:

* class ``c = first byte % num_classes``;
* score c = ``1000 + S``, every other score k = ``-(S + k)`` (negative, so the
  words' sign extension is exercised), where ``S = sum(b_i * (i + 1))`` over
  the frame's bytes b_0, b_1, ... (mod 2**20).

``s_axis_tready`` is low one cycle in three (back-pressure on the link's frame buffer).
:func:`expected` is the same computation in Python.
"""

from __future__ import annotations

import numpy as np
from amaranth.hdl import Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

SUM_BITS = 20


def expected(frame: bytes, num_classes: int) -> tuple[list[int], int]:
    s = sum(b * (i + 1) for i, b in enumerate(frame)) % (1 << SUM_BITS)
    c = frame[0] % num_classes
    return [1000 + s if k == c else -(s + k) for k in range(num_classes)], c


class StubAccelerator(wiring.Component):
    def __init__(self, *, frame_bytes: int, num_classes: int) -> None:
        self.frame_bytes = frame_bytes
        self.num_classes = num_classes
        super().__init__({
            "s_axis_tdata": In(8), "s_axis_tvalid": In(1), "s_axis_tready": Out(1), "s_axis_tlast": In(1),
            "m_axis_tdata": Out(32), "m_axis_tvalid": Out(1), "m_axis_tready": In(1), "m_axis_tlast": Out(1),
        })

    def elaborate(self, platform) -> Module:
        m = Module()
        n, k = self.frame_bytes, self.num_classes
        index = Signal(range(n + 1))
        total = Signal(SUM_BITS)
        cls = Signal(range(k))
        word = Signal(range(k + 1))
        phase = Signal(2)
        m.d.sync += phase.eq(phase + 1)
        with m.If(phase == 2):
            m.d.sync += phase.eq(0)
        with m.FSM():
            with m.State("IN"):
                m.d.comb += self.s_axis_tready.eq(phase != 2)
                with m.If(self.s_axis_tvalid & self.s_axis_tready):
                    m.d.sync += [total.eq(total + self.s_axis_tdata * (index + 1)), index.eq(index + 1)]
                    with m.If(index == 0):
                        m.d.sync += [cls.eq(self.s_axis_tdata % k), total.eq(self.s_axis_tdata)]
                    with m.If(index == n - 1):
                        m.d.sync += word.eq(0)
                        m.next = "OUT"
            with m.State("OUT"):
                m.d.comb += self.m_axis_tvalid.eq(1)
                with m.If(word == k):
                    m.d.comb += [self.m_axis_tdata.eq(cls), self.m_axis_tlast.eq(1)]
                with m.Elif(word == cls):
                    m.d.comb += self.m_axis_tdata.eq(1000 + total)
                with m.Else():
                    m.d.comb += self.m_axis_tdata.eq(-(total + word))
                with m.If(self.m_axis_tready):
                    m.d.sync += word.eq(word + 1)
                    with m.If(word == k):
                        m.d.sync += [index.eq(0), total.eq(0)]
                        m.next = "IN"
        return m


def random_frame(rng: np.random.Generator, n: int) -> bytes:
    return rng.integers(0, 256, size=n, dtype=np.uint8).tobytes()
