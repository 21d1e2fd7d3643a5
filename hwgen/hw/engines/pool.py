"""Max-pool unit: per-channel OR / AND of K x K windows, any stride S (overlapping when K > S), of a bit stream.

See :class:`MaxPoolUnit`. The arithmetic is the golden model's
(:func:`hwgen.compile.golden.max_pool_bits`, DESIGN.md section 2): output
channel c is the OR of the window's bits when ``use_and[c]`` is False, the AND
when True (computed as ``NOT OR(NOT b)``); no padding; trailing rows and
columns that do not fill a window are dropped.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from amaranth.hdl import Cat, Const, Module, Mux, Signal, Value, unsigned
from amaranth.lib import stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from hwgen.errors import BuildError
from hwgen.hw.engines.fifo import SyncFIFO
from hwgen.hw.engines.pipeline import credit_full_next
from hwgen.hw.engines.swu import check_count, check_divides, check_shape

__all__ = ["MaxPoolUnit", "SlotPhase", "axis_slots"]

#: Output FIFO entries = credits for window results in flight: one result per
#: cycle holds 4 (a result's last input beat is in stage 1 one cycle after its
#: handshake, in stage 2 the next, in the result register the next, in the
#: FIFO the next, and may leave it then), plus one to spare.
_FIFO_DEPTH = 5

#: Cycles from the handshake of a window's last input beat to its result being valid on ``o``.
_LATENCY = 4


def _check_use_and(use_and: object, c: int) -> np.ndarray:
    a = np.asarray(use_and)
    if a.shape != (c,):
        raise BuildError(f"use_and must have shape (C,) = ({c},), not {a.shape}")
    if a.dtype != np.bool_ and (not np.issubdtype(a.dtype, np.integer) or not np.all((a == 0) | (a == 1))):
        raise BuildError(f"use_and must be a bool array (True = AND, False = OR), not dtype {a.dtype}")
    return a.astype(bool)  # own copy


class SlotPhase(NamedTuple):
    """What slot j of one axis does at phase u of that axis (see :func:`axis_slots`)."""

    inside: bool   #: the coordinate lies in slot j's current window
    first: bool    #: ... as the window's first row / column
    last: bool     #: ... as its last one
    wrapped: bool  #: the window began in the previous period (its index is block - 1)


def axis_slots(kernel: int, stride: int) -> list[list[SlotPhase]]:
    """Per phase u = coordinate mod (R * S) and slot j < R = ceil(K / S): [u][j] -> :class:`SlotPhase`.

    Along one axis, window i covers coordinates i*S .. i*S + K - 1. At most
    R = ceil(K / S) windows cover a coordinate, and windows i and i + R never
    overlap (R * S >= K), so window i is kept in slot i mod R. With the
    coordinate z = block * R * S + u, slot j's current window starts at
    offset (u - j*S) mod (R*S) before z, i.e. it is window
    (block - wrapped) * R + j with ``wrapped = u < j*S``; z lies in it when
    that offset is below K. The window index must also lie in 0 .. n - 1
    (n windows along the axis), which the engine checks with its block counter.
    """
    r = -(-kernel // stride)
    period = r * stride
    table = []
    for u in range(period):
        row = []
        for j in range(r):
            off = (u - j * stride) % period
            row.append(SlotPhase(inside=off < kernel, first=off == 0, last=off == kernel - 1, wrapped=u < j * stride))
        table.append(row)
    return table


class MaxPoolUnit(wiring.Component):
    """Max-pool over bits: per-channel OR (or AND) of each K x K window, stride S.

    Parameters (keyword-only; a :class:`~hwgen.errors.BuildError` names any violation)
    ----------
    in_shape : (C, H, W)
        The input map.
    kernel : int
        K, the window's side; at most min(H, W).
    stride : int
        S >= 1: non-overlapping windows (S = K, the zoo's 2x2 stride-2 pools),
        overlapping ones (S < K, AlexNet's 3x3 stride 2) or gaps (S > K).
    use_and : bool array (C,)
        Per channel: True = AND of the window (the pool feeds a decreasing
        function), False = OR. Copied: changing it afterwards does not change the design.
    width : int
        Bits per beat on both streams; must divide C.

    Output map (C, H_out, W_out) with ``H_out = (H - K) // S + 1`` (the same
    for W); input pixels in no window (trailing rows and columns, gaps) are
    consumed and dropped (e.g. 5x5 -> 2x2 for K = S = 2).

    Ports
    -----
    i : In(stream.Signature(width))
        Frames of H*W pixels in row-major order, each pixel C / width beats;
        beat q holds channels ``q*width .. q*width + width - 1``, channel
        ``q*width + k`` on bit k; frames back to back.
    o : Out(stream.Signature(width))
        The output map in the same format.
        ``i.ready`` is a flip-flop (it does not depend on ``i.valid`` nor
        on ``o.ready`` in the same cycle).

    Storage
    -------
    R = ceil(K / S) windows overlap along each axis (:func:`axis_slots`), so
    the partial results of the windows a pixel can touch are kept in R x R
    *slots*: slot (jv, jh) holds the windows with row index = jv and column
    index = jh (mod R) of the current rows, one
    :class:`~amaranth.lib.memory.Memory` of ceil(W_out / R) * C/width words of
    width bits each (word ``(xo // R) * C/width + q``), read synchronously
    (transparent to its write port), the word read registered, and written
    back two cycles after the read; the word written one cycle before is
    forwarded in place of the one read when both are the same word (so
    back-to-back updates of one word see each other); :attr:`buffer_bits` =
    R * R * ceil(W_out / R) * C, one row of W_out partial pixels when K = S,
    none when K == 1. Plus an output FIFO of 5 words of width bits and
    its write register (width bits).

    Flow control and timing
    -----------------------
    Every input beat is read-modified-written in all slots whose windows
    contain it, in a three-stage pipeline that never stalls (the read, the
    word read registered, the update and write back). A window's result
    leaves when its last tap (K-1, K-1) arrives; at most one window ends at
    any pixel. A window's result is registered before the output FIFO (the
    slot memories' read and the OR of the slots do not reach the FIFO's
    memory in one cycle: CNV ``--pe 16``'s pool3, 1.75 ns logic + 8.85 routing).
    A beat is accepted only while fewer than 5 results are in the pipeline
    or the output FIFO (credits, a register test); at full rate at most 4
    are, so the unit takes one input beat per cycle
    while ``o`` is not back-pressured, overlapping or not:
    :attr:`cycles_per_frame` = :attr:`beats_per_frame_in` = H*W*C/width.
    :attr:`latency` = 4 cycles from the handshake of a window's last beat to
    its result on ``o``; the output beats of one output pixel leave in the
    same cycles as its last input pixel's beats, four cycles later.
    """

    def __init__(self, *, in_shape: tuple[int, int, int], kernel: int, stride: int,
                 use_and: np.ndarray, width: int) -> None:
        c, h, w = check_shape("in_shape", in_shape)
        k = check_count("kernel", kernel)
        s = check_count("stride", stride)
        if k > min(h, w):
            raise BuildError(f"kernel must be at most min(H, W) = {min(h, w)} "
                             f"(legal: 1..{min(h, w)}), not {k}")
        width = check_divides("width", check_count("width", width), "C", c)
        self._use_and = _check_use_and(use_and, c)
        self.in_shape = (c, h, w)
        self.kernel, self.stride, self.width = k, s, width
        self.h_out, self.w_out = (h - k) // s + 1, (w - k) // s + 1
        self.slots = -(-k // s)  #: R, windows overlapping along an axis
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
    def lanes(self) -> int:
        """Beats per input pixel: C / width (a beat's lane moves on by one modulo this with each beat taken)."""
        return self.in_shape[0] // self.width

    @property
    def beats_per_frame_in(self) -> int:
        c, h, w = self.in_shape
        return h * w * c // self.width

    @property
    def beats_per_frame_out(self) -> int:
        return self.h_out * self.w_out * self.in_shape[0] // self.width

    @property
    def buffer_bits(self) -> int:
        """Partial results: R * R slots of ceil(W_out / R) * C bits (0 when K == 1). The output FIFO not included."""
        r = self.slots
        return 0 if self.kernel == 1 else r * r * -(-self.w_out // r) * self.in_shape[0]

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

    def _axis(self, m: Module, name: str, size: int, n_windows: int, advance: Value, wrap: Value):
        """Counters of one axis (coordinate, phase u, block) advanced by ``advance``, reset by ``wrap``;
        per slot j: (inside a window that exists, first, last, block index of the window)."""
        k, s, r = self.kernel, self.stride, self.slots
        period = r * s
        table = axis_slots(k, s)
        u = Signal(range(period), name=f"{name}_u")
        block = Signal(range(size // period + 2), name=f"{name}_block")
        with m.If(advance):
            with m.If(wrap):
                m.d.sync += [u.eq(0), block.eq(0)]
            with m.Elif(u == period - 1):
                m.d.sync += [u.eq(0), block.eq(block + 1)]
            with m.Else():
                m.d.sync += u.eq(u + 1)
        out = []
        for j in range(r):
            flags = {f: Signal(name=f"{name}{j}_{f}") for f in SlotPhase._fields}
            with m.Switch(u):
                for ph, row in enumerate(table):
                    with m.Case(ph):
                        m.d.comb += [flags[f].eq(getattr(row[j], f)) for f in SlotPhase._fields]
            count = -(-(n_windows - j) // r)  # windows with index j mod R
            index = Signal(range(max(2, count + 1)), name=f"{name}{j}_index")
            m.d.comb += index.eq(block - flags["wrapped"])
            exists = Mux(flags["wrapped"], (block >= 1) & (block <= count), block < count)
            out.append((flags["inside"] & exists, flags["first"], flags["last"], index))
        return out

    def elaborate(self, platform) -> Module:
        m = Module()
        c, h, w = self.in_shape
        k, width, r = self.kernel, self.width, self.slots
        lanes = self.lanes

        lane = Signal(range(lanes))
        col = Signal(range(w))
        row = Signal(range(h))
        take = Signal()
        pixel_done = take & (lane == lanes - 1)
        with m.If(take):
            m.d.sync += lane.eq(Mux(lane == lanes - 1, 0, lane + 1))
        with m.If(pixel_done):
            m.d.sync += col.eq(Mux(col == w - 1, 0, col + 1))
            with m.If(col == w - 1):
                m.d.sync += row.eq(Mux(row == h - 1, 0, row + 1))
        xs = self._axis(m, "x", w, self.w_out, pixel_done, col == w - 1)
        ys = self._axis(m, "y", h, self.h_out, pixel_done & (col == w - 1), row == h - 1)
        depth = -(-self.w_out // r) * lanes

        # Per slot (jv, jh): the beat lies in its window; first / last tap; word address.
        slots = []
        for jv, (y_in, y_first, y_last, _) in enumerate(ys):
            for jh, (x_in, x_first, x_last, x_index) in enumerate(xs):
                addr = Signal(range(max(2, depth)), name=f"addr{jv}{jh}")
                m.d.comb += addr.eq(x_index * lanes + lane)
                slots.append((y_in & x_in, y_first & x_first, y_last & x_last & y_in & x_in, addr))
        last_tap = Signal()
        m.d.comb += last_tap.eq(Cat(*(e for _, _, e, _ in slots)).any())

        fifo = m.submodules.out_fifo = SyncFIFO(width=width, depth=_FIFO_DEPTH)
        emit1 = Signal()     # stage 1 holds a beat that completes a window
        emit2 = Signal()     # ... stage 2
        emit3 = Signal()     # the result register holds its result
        # Credits: results issued (last taps taken) and not yet taken from o. `i.ready` is a register, set while
        # fewer than _FIFO_DEPTH are, for every beat: the last-tap logic (the phase tables, the block compares)
        # reaches only the count, never the producer (CNV --pe 16, seed 3: pool1's `y_block` through three LUT
        # levels into its `i.ready`, conv1's result FIFO and back, 1.71 ns logic + 7.27 routing).
        pending = Signal(range(_FIFO_DEPTH + 1))
        has_credit = Signal(init=1)
        issue_result = take & last_tap
        pop = fifo.r_rdy & self.o.ready
        m.d.sync += [pending.eq(pending + issue_result - pop),
                     has_credit.eq(~credit_full_next(pending, issue_result, pop, _FIFO_DEPTH))]
        m.d.comb += [
            self.i.ready.eq(has_credit),
            take.eq(self.i.valid & has_credit),
        ]

        # Stage 1 holds the beat (AND channels inverted, De Morgan) while the slots' partial results are read;
        # stage 2 OR-s it into each slot's partial result and writes that back.
        flip = Const(self.flip_word(), c)
        flip_lane = flip if lanes == 1 else flip.word_select(lane, width)
        d1, d2 = Signal(width), Signal(width)
        flip1, flip2 = Signal(width), Signal(width)
        m.d.sync += [d1.eq(self.i.payload ^ flip_lane), flip1.eq(flip_lane), emit1.eq(issue_result),
                     d2.eq(d1), flip2.eq(flip1), emit2.eq(emit1)]
        result = 0
        for n, (inside, first, emit, addr) in enumerate(slots):
            v1, first1, emit_1 = Signal(name=f"v1_{n}"), Signal(name=f"first1_{n}"), Signal(name=f"emit1_{n}")
            v2, first2, emit_2 = Signal(name=f"v2_{n}"), Signal(name=f"first2_{n}"), Signal(name=f"emit2_{n}")
            m.d.sync += [v1.eq(take & inside), first1.eq(first), emit_1.eq(take & emit),
                         v2.eq(v1), first2.eq(first1), emit_2.eq(emit_1)]
            acc = Signal(width, name=f"acc{n}")
            if k == 1:
                m.d.comb += acc.eq(d2)
            else:
                mem = m.submodules[f"partials{n}" if len(slots) > 1 else "partials"] = Memory(
                    shape=unsigned(width), depth=depth, init=[])
                wr = mem.write_port()
                rd = mem.read_port(transparent_for=(wr,))
                addr1 = Signal.like(addr, name=f"addr1_{n}")
                addr2 = Signal.like(addr, name=f"addr2_{n}")
                read2 = Signal(width, name=f"read2_{n}")     # the word read, registered
                written = Signal(width, name=f"written_{n}")  # the word written in the cycle before
                fresh = Signal(name=f"fresh_{n}")             # ... which is the word stage 2 updates
                m.d.sync += [addr1.eq(addr), addr2.eq(addr1), read2.eq(rd.data), written.eq(acc),
                             fresh.eq(wr.en & (addr2 == addr1))]
                # The read (transparent) sees every write up to its own cycle; the write of the beat just
                # before lands one cycle later and is taken from `written` instead (`fresh`, compared a
                # cycle ahead from registers). The read, the OR and the write back in one cycle were CNV
                # --pe 16's pool3 path: 1.51 ns logic + 7.16 routing through its LUT RAM, 115.34 MHz.
                m.d.comb += [
                    rd.addr.eq(addr),
                    acc.eq(Mux(first2, d2, Mux(fresh, written, read2) | d2)),
                    wr.addr.eq(addr2),
                    wr.data.eq(acc),
                    wr.en.eq(v2 & ~emit_2),
                ]
            result = result | Mux(emit_2, acc, 0)
        result3 = Signal(width)
        m.d.sync += [emit3.eq(emit2), result3.eq(result ^ flip2)]
        m.d.comb += [
            fifo.w_en.eq(emit3),
            fifo.w_data.eq(result3),
            self.o.valid.eq(fifo.r_rdy),
            self.o.payload.eq(fifo.r_data),
            fifo.r_en.eq(self.o.ready),
        ]
        return m

