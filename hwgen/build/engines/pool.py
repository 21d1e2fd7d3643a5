"""Max-pool unit: per-channel OR / AND of non-overlapping K x K windows of a bit feature-map stream.

See :class:`MaxPoolUnit`. The arithmetic is the golden model's
(:func:`hwgen.compile.golden.max_pool_bits`, DESIGN.md section 2): output
channel c is the OR of the window's bits when ``use_and[c]`` is False, the AND
when True (computed as ``NOT OR(NOT b)``); no padding; trailing rows and
columns that do not fill a window are dropped.
"""

from __future__ import annotations

import numpy as np
from amaranth.hdl import Const, Module, Mux, Signal, unsigned
from amaranth.lib import stream, wiring
from amaranth.lib.fifo import SyncFIFO
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from hwgen.build.engines.swu import check_count, check_divides, check_shape
from hwgen.errors import BuildError

__all__ = ["MaxPoolUnit"]

#: Output FIFO entries = credits for window results in flight: enough for one
#: result per cycle (a result is written to the FIFO one cycle after its last
#: input beat and can leave it one cycle later).
_FIFO_DEPTH = 3

#: Cycles from the handshake of a window's last input beat to its result being valid on ``o``.
_LATENCY = 2


def _check_use_and(use_and: object, c: int) -> np.ndarray:
    a = np.asarray(use_and)
    if a.shape != (c,):
        raise BuildError(f"use_and must have shape (C,) = ({c},), not {a.shape}")
    if a.dtype != np.bool_ and (not np.issubdtype(a.dtype, np.integer) or not np.all((a == 0) | (a == 1))):
        raise BuildError(f"use_and must be a bool array (True = AND, False = OR), not dtype {a.dtype}")
    return a.astype(bool)  # own copy


class MaxPoolUnit(wiring.Component):
    """Max-pool over bits: per-channel OR (or AND) of each K x K window, stride K.

    Parameters (keyword-only; a :class:`~hwgen.errors.BuildError` names any violation)
    ----------
    in_shape : (C, H, W)
        The input map.
    kernel : int
        K, the window's side; at most min(H, W).
    stride : int
        Must equal K (non-overlapping windows, as in the 2x2 stride-2 pools of the zoo).
    use_and : bool array (C,)
        Per channel: True = AND of the window (the pool feeds a decreasing
        function), False = OR. Copied: changing it afterwards does not change the design.
    width : int
        Bits per beat on both streams; must divide C.

    Output map (C, H_out, W_out) with ``H_out = (H - K) // K + 1`` (the same
    for W); input rows >= H_out*K and columns >= W_out*K are consumed and dropped
    (e.g. 5x5 -> 2x2 for K = 2).

    Ports
    -----
    i : In(stream.Signature(width))
        Frames of H*W pixels in row-major order, each pixel C / width beats;
        beat q holds channels ``q*width .. q*width + width - 1``, channel
        ``q*width + k`` on bit k; frames back to back.
    o : Out(stream.Signature(width))
        The output map in the same format.
        ``i.ready`` is computed from registers only (it does not depend on
        ``i.valid`` nor on ``o.ready``).

    Storage
    -------
    One row of partial results, W_out * C bits (:attr:`buffer_bits`), in a
    :class:`~amaranth.lib.memory.Memory` of W_out * C/width words of width
    bits (word ``xo * C/width + q``), read synchronously (transparent to its
    write port, so back-to-back updates of one word see each other) and
    written back one cycle later; none when K == 1. Plus an output FIFO of
    3 words of width bits.

    Flow control and timing
    -----------------------
    Every input beat is read-modified-written in a two-stage pipeline that
    never stalls. A beat that completes a window (the last tap, (K-1, K-1))
    is accepted only while fewer than 3 results are in the pipeline or the
    output FIFO (credits); every other beat is always accepted. So the unit
    takes one input beat per cycle while ``o`` is not back-pressured:
    :attr:`cycles_per_frame` = :attr:`beats_per_frame_in` = H*W*C/width.
    :attr:`latency` = 2 cycles from the handshake of a window's last beat to
    its result on ``o``; the output beats of one output pixel leave in the
    same cycles as its last input pixel's beats, two cycles later.
    """

    def __init__(self, *, in_shape: tuple[int, int, int], kernel: int, stride: int,
                 use_and: np.ndarray, width: int) -> None:
        c, h, w = check_shape("in_shape", in_shape)
        k = check_count("kernel", kernel)
        s = check_count("stride", stride)
        if s != k:
            raise BuildError(f"MaxPoolUnit supports only non-overlapping windows, stride == kernel "
                             f"({k}), not stride {s}")
        if k > min(h, w):
            raise BuildError(f"kernel must be at most min(H, W) = {min(h, w)} "
                             f"(legal: 1..{min(h, w)}), not {k}")
        width = check_divides("width", check_count("width", width), "C", c)
        self._use_and = _check_use_and(use_and, c)
        self.in_shape = (c, h, w)
        self.kernel, self.stride, self.width = k, s, width
        self.h_out, self.w_out = (h - k) // s + 1, (w - k) // s + 1
        super().__init__({
            "i": In(stream.Signature(width)),
            "o": Out(stream.Signature(width)),
        })

    # -- figures -----------------------------------------------------------

    @property
    def use_and(self) -> np.ndarray:
        return self._use_and.copy()

    @property
    def out_shape(self) -> tuple[int, int, int]:
        return (self.in_shape[0], self.h_out, self.w_out)

    @property
    def beats_per_frame_in(self) -> int:
        c, h, w = self.in_shape
        return h * w * c // self.width

    @property
    def beats_per_frame_out(self) -> int:
        return self.h_out * self.w_out * self.in_shape[0] // self.width

    @property
    def buffer_bits(self) -> int:
        """Partial-result row: W_out * C bits (0 when K == 1). The output FIFO (3*width) not included."""
        return 0 if self.kernel == 1 else self.w_out * self.in_shape[0]

    @property
    def cycles_per_frame(self) -> int:
        """Cycles per frame with an always-valid producer and always-ready consumer: one input beat per cycle."""
        return self.beats_per_frame_in

    @property
    def latency(self) -> int:
        return _LATENCY

    def flip_word(self) -> int:
        """The C-bit constant XOR-ed in before and after the OR: bit c = use_and[c]."""
        return sum(1 << c for c, a in enumerate(self._use_and) if a)

    # -- hardware ----------------------------------------------------------

    def elaborate(self, platform) -> Module:
        m = Module()
        c, h, w = self.in_shape
        k, width = self.kernel, self.width
        lanes = c // width
        in_rows, in_cols = self.h_out * k, self.w_out * k  # the part of the map that is pooled

        # Input position: lane, column (with b = column mod K, xo = column // K), row (a = row mod K).
        lane = Signal(range(lanes))
        col = Signal(range(w))
        b = Signal(range(k))
        xo = Signal(range(self.w_out + 1))
        row = Signal(range(h))
        a = Signal(range(k))
        pooled = Signal()
        first = Signal()
        last_tap = Signal()
        m.d.comb += [
            pooled.eq((row < in_rows) & (col < in_cols)),
            first.eq((a == 0) & (b == 0)),
            last_tap.eq(pooled & (a == k - 1) & (b == k - 1)),
        ]

        fifo = m.submodules.out_fifo = SyncFIFO(width=width, depth=_FIFO_DEPTH)
        v1 = Signal()        # stage 1 holds a pooled beat
        emit1 = Signal()     # ... that completes a window
        pending = Signal(range(_FIFO_DEPTH + 2))
        m.d.comb += pending.eq(fifo.level + (v1 & emit1))

        take = Signal()
        m.d.comb += [
            self.i.ready.eq(~last_tap | (pending < _FIFO_DEPTH)),
            take.eq(self.i.valid & self.i.ready),
        ]
        with m.If(take):
            m.d.sync += lane.eq(Mux(lane == lanes - 1, 0, lane + 1))
            with m.If(lane == lanes - 1):
                with m.If(col == w - 1):
                    m.d.sync += [col.eq(0), b.eq(0), xo.eq(0)]
                    m.d.sync += [row.eq(Mux(row == h - 1, 0, row + 1)),
                                 a.eq(Mux((a == k - 1) | (row == h - 1), 0, a + 1))]
                with m.Else():
                    m.d.sync += [col.eq(col + 1), b.eq(Mux(b == k - 1, 0, b + 1))]
                    with m.If(b == k - 1):
                        m.d.sync += xo.eq(xo + 1)

        # Stage 1: the beat with AND channels inverted (De Morgan), OR-ed into its partial result.
        flip = Const(self.flip_word(), c)
        flip_lane = flip if lanes == 1 else flip.word_select(lane, width)
        d1 = Signal(width)
        flip1 = Signal(width)
        first1 = Signal()
        addr = Signal(range(max(2, self.w_out * lanes)))
        addr1 = Signal.like(addr)
        m.d.comb += addr.eq(xo * lanes + lane)
        m.d.sync += [
            v1.eq(take & pooled),
            emit1.eq(last_tap),
            first1.eq(first),
            d1.eq(self.i.payload ^ flip_lane),
            flip1.eq(flip_lane),
            addr1.eq(addr),
        ]
        acc = Signal(width)
        if k == 1:
            m.d.comb += acc.eq(d1)
        else:
            mem = m.submodules.partials = Memory(shape=unsigned(width), depth=self.w_out * lanes, init=[])
            wr = mem.write_port()
            rd = mem.read_port(transparent_for=(wr,))
            m.d.comb += [
                rd.addr.eq(addr),
                acc.eq(Mux(first1, d1, rd.data | d1)),
                wr.addr.eq(addr1),
                wr.data.eq(acc),
                wr.en.eq(v1 & ~emit1),
            ]
        m.d.comb += [
            fifo.w_en.eq(v1 & emit1),
            fifo.w_data.eq(acc ^ flip1),
            self.o.valid.eq(fifo.r_rdy),
            self.o.payload.eq(fifo.r_data),
            fifo.r_en.eq(self.o.ready),
        ]
        return m
