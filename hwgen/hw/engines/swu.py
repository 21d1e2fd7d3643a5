"""SWU: the sliding-window unit, a bit feature-map stream turned into window vectors for the MVTU.

See :class:`SlidingWindowUnit` for the ports, the stream formats, the line
buffer, the flow control and the timing. The window order is the golden
model's (:mod:`hwgen.compile.golden`, DESIGN.md section 2): fan-in element
``(i * K + j) * C + c`` is channel c of tap (i, j), and a padded tap
contributes 0, which the MVTU implements through its ``valid`` mask.
"""

from __future__ import annotations

import numpy as np
from amaranth.hdl import Array, Cat, Const, Module, Mux, Shape, Signal, signed, unsigned
from amaranth.lib import stream, wiring
from amaranth.lib.data import StructLayout
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from hwgen.errors import BuildError
from hwgen.hw.engines.fifo import sliced_fifo
from hwgen.hw.engines.pipeline import (
    FANOUT_COPY,
    FANOUT_GROUP_BITS,
    credit_full_next,
    delay,
    spans,
)
from hwgen.hw.families import DEFAULT_FAMILY, MemoryMap

__all__ = ["OUTPUT_FIFO_DEPTH", "SlidingWindowUnit"]

#: Cycles from the input handshake that completes the last input row an
#: output row needs to that output row's first beat being valid on ``o``
#: (the row count's test is registered, the read address is registered, the
#: line buffer is read synchronously, its word is registered, then written
#: into the output FIFO).
_LATENCY = 5

#: Words of the output FIFO, = the reader's credits: a beat issued in cycle t is in the read pipeline
#: in t + 1 .. t + 3 and can leave the FIFO from t + 4, so 4 are in flight at full rate, and the credit
#: test is a register (set from the count's next value), which needs one more.
OUTPUT_FIFO_DEPTH = 5


def _clamp_rows(v: int, h: int) -> int:
    """``clamp(v, 0, h)``."""
    return max(0, min(h, v))


def rows_needed(top: int, k: int, h: int) -> int:
    """Input rows the output row whose window starts at row ``top`` needs, counted from its oldest.

    ``clamp(top + K, 0, H) - clamp(top, 0, H)``, but 1 for a window entirely above
    the map: it still waits for the frame's row 0, so that no beat of a frame
    leaves before the frame has started to arrive.
    """
    return 1 if top + k <= 0 else _clamp_rows(top + k, h) - _clamp_rows(top, h)


def rows_released(top: int, s: int, h: int, last: bool) -> int:
    """Input rows released when the reader leaves the output row at ``top``.

    ``clamp(top + S, 0, H) - clamp(top, 0, H)``; at the frame's ``last`` output
    row every row left of the frame, ``H - clamp(top, 0, H)``.
    """
    return (h if last else _clamp_rows(top + s, h)) - _clamp_rows(top, h)


def _divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


def check_count(what: str, value: object) -> int:
    """``value`` as an int, or BuildError "WHAT must be a positive integer, not VALUE"."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or value < 1:
        raise BuildError(f"{what} must be a positive integer, not {value!r}")
    return int(value)


def check_divides(what: str, value: int, of_what: str, n: int) -> int:
    """``value``, or BuildError "WHAT must divide OF_WHAT (n): one of ..., not VALUE"."""
    if n % value:
        legal = ", ".join(map(str, _divisors(n)))
        raise BuildError(f"{what} must divide {of_what} ({n}): one of {legal}; not {value}")
    return value


def check_shape(what: str, shape: object) -> tuple[int, int, int]:
    """A (C, H, W) tuple of positive integers, or BuildError naming it."""
    try:
        dims = tuple(shape)  # type: ignore[arg-type]
    except TypeError:
        dims = None
    if dims is None or len(dims) != 3 or any(
            isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer)) or v < 1 for v in dims):
        raise BuildError(f"{what} must be (C, H, W), three positive integers, not {shape!r}")
    return tuple(int(v) for v in dims)  # type: ignore[return-value]


class SlidingWindowUnit(wiring.Component):
    """Sliding-window unit: a (C, H, W) bit map in, K x K x C window vectors out, zero padding marked.

    Parameters (keyword-only; a :class:`~hwgen.errors.BuildError` names any violation)
    ----------
    in_shape : (C, H, W)
        The input map.
    kernel : int
        K, the square window's side; at most ``min(H, W) + 2 * padding``.
    stride : int
        S >= 1.
    padding : int
        P >= 0 rows / columns of zeros (padded taps, marked invalid) on every side.
    in_width : int
        W_in, input bits per beat; must divide C.
    simd : int
        Output bits per beat; must divide C (a beat never straddles two taps).
    memory : MemoryMap, optional
        The family's memory map (default: the default family's): whether Yosys puts the line buffer in
        block RAM, which decides :attr:`buffer_groups`.

    Output size: ``H_out = (H + 2P - K) // S + 1``, the same for ``W_out``.

    Ports
    -----
    i : In(stream.Signature(W_in))
        Frames of H*W pixels in row-major order, each pixel C / W_in beats;
        beat q holds channels ``q*W_in .. q*W_in + W_in - 1``, channel
        ``q*W_in + k`` on bit k. Frames follow each other back to back.
        ``i.ready`` is a register compare (it depends neither on ``i.valid``
        nor on ``o.ready``).
    o : Out(stream.Signature(StructLayout({"data": SIMD, "valid": SIMD})))
        The MVTU's input format. For every output position (y, x) in row-major
        order, every tap (i, j) in row-major order and every channel chunk
        q = 0 .. C/SIMD - 1: ``data`` bit k = channel ``q*SIMD + k`` of input
        pixel ``(y*S + i - P, x*S + j - P)`` and ``valid`` = all ones when that
        pixel lies inside the map; ``data = 0``, ``valid = 0`` for a padded
        tap. One window vector = F = K*K*C elements in (i, j, c) order
        (element ``(i*K + j)*C + c``) = F / SIMD beats.
        :attr:`beats_per_frame_out` = H_out * W_out * K*K*C / SIMD.

    Line buffer
    -----------
    A circular buffer of R = max(K' + S, 2 (K' - P)) input rows, K' = min(K, H) (:attr:`rows`), in one
    :class:`~amaranth.lib.memory.Memory` of R*W words of C bits, one word per
    pixel (written W_in bits at a time through a write port of that
    granularity, read through one synchronous read port, one chunk selected).
    :attr:`buffer_bits` = R * W * C. Outside block RAM a line buffer wider than
    :data:`~hwgen.hw.engines.pipeline.FANOUT_GROUP_BITS` is one memory per
    :attr:`buffer_groups` slice, each read at its own copy of the read address
    (a register kept equal to ``slot * W + col``): CNV ``--pe 16``'s conv4,
    ``slot_word + col`` into the address of 64 LUT RAM cells, 1.92 ns of logic
    and about 8 ns of routing, was its critical path on every seed.
    Input row g (counted across frames) lives
    in slot ``g mod R``. At most K' rows are needed by one output row;
    K' + S slots let the S new rows the next output row needs arrive while the
    current one is emitted; 2 (K' - P) slots let the K' - P rows of the next
    frame's first output row arrive while the frame's last output row (K' - P
    rows) is emitted, so an unpadded layer does not stall at frame starts
    (with K' + S rows CNV's conv1 lost 5.5 % of its throughput waiting there).
    When K == H (the kernel covers the map height, P = 0) the buffer holds two frames.

    Flow control
    ------------
    A writer (input side) and a reader (output side) share one signed counter
    D = rows completely written - rows released by the reader, counted from
    the oldest row the current output row y needs (row
    ``clamp(y*S - P, 0, H)``).

    * The writer accepts input (``i.ready``) while D < R, i.e. while the
      slot of the row it writes holds no row the reader may still need. It
      therefore stops accepting input at the start of an input row when all R
      slots are taken, and resumes when the reader finishes an output row and
      releases the rows below the next one's window (S rows in mid frame; at a
      frame's last output row, every row left of that frame). Rows that no
      window uses (stride > K, or trailing rows dropped by the floor in
      H_out) are still consumed, written into a free slot and released.
    * The reader starts an output row when all the rows its window needs are
      written (D >= rows needed; a window entirely above the map waits for the
      frame's row 0, one entirely below it needs nothing),
      then emits the row's W_out * K*K*C/SIMD beats, one per cycle while it
      holds a credit (a four-stage pipeline that never stalls: the read
      address register, the memory read, the register of the word read, which
      the synthesis flow moves into a block RAM's output register, then an
      output FIFO of
      :data:`OUTPUT_FIFO_DEPTH` words, whose ``r_rdy`` and read data are
      ``o``; a beat is issued only while fewer than that many are issued and
      not yet taken, a register test, so ``o.ready`` reaches the FIFO and
      the credit count only).
    * Both tests of D are registers (``i.ready`` and the reader's
      ``can_issue``), loaded each cycle with the tests of D's next value:
      for each of the four cases (an input row completed or not, an output
      row ended or not) D is compared with bounds that hold per output row
      (:meth:`credit_bounds`, registers loaded when a row ends), and the
      handshakes only select one case. The values are those of testing D
      itself; the handshakes reach them through one multiplexer, not
      through an adder and a compare.
    * No deadlock for any legal parameters: the rows an output row needs are
      always within R slots of its oldest row, so the writer can always
      deliver them; nothing is dropped or duplicated.

    Timing
    ------
    Per input row ``T_in = W * C / W_in`` cycles, per output row
    ``T_out = W_out * K*K * C / SIMD`` cycles when unstalled.
    The input beat is registered (with its address and lane enables) before
    it is written, so writes and reads both reach the memory one cycle after
    their counters' handshakes.
    :attr:`latency` = 5 cycles from the handshake completing the last input
    row an output row needs to its first beat on ``o`` (when the reader is
    waiting). :attr:`cycles_per_frame`: the steady-state period of back-to-back
    frames with an always-valid producer and an always-ready consumer; it is
    computed by an exact row-level model of this schedule
    (:meth:`row_schedule`) and satisfies
    ``max(beats_in, beats_out) <= cycles_per_frame <= beats_in + beats_out``.
    It equals ``max(beats_in, beats_out)`` (one beat per cycle on the busier
    side) when the same side is the bottleneck in every output row and the
    next frame's first window fits in the slots beside the current frame's
    last window. Examples (C=64, 32x32, W_in = SIMD = 32, K=3, S=1):
    P=1: 18432 = beats_out (R = 4); P=0: 16200 = beats_out (R = 6). A
    whole-map kernel (K == H == W, P=0): ``max(beats_in, beats_out)``.
    """

    def __init__(self, *, in_shape: tuple[int, int, int], kernel: int, stride: int, padding: int,
                 in_width: int, simd: int, memory: MemoryMap | None = None) -> None:
        c, h, w = check_shape("in_shape", in_shape)
        k = check_count("kernel", kernel)
        s = check_count("stride", stride)
        if isinstance(padding, (bool, np.bool_)) or not isinstance(padding, (int, np.integer)) or padding < 0:
            raise BuildError(f"padding must be a non-negative integer, not {padding!r}")
        p = int(padding)
        in_width = check_divides("in_width", check_count("in_width", in_width), "C", c)
        simd = check_divides("SIMD", check_count("SIMD", simd), "C", c)
        if k > min(h, w) + 2 * p:
            raise BuildError(f"kernel must be at most the padded map size min(H, W) + 2*padding = "
                             f"{min(h, w) + 2 * p} (legal: 1..{min(h, w) + 2 * p}), not {k}")

        self.in_shape = (c, h, w)
        self.kernel, self.stride, self.padding = k, s, p
        self.in_width, self.simd = in_width, simd
        if memory is not None and not isinstance(memory, MemoryMap):
            raise BuildError(f"memory must be a MemoryMap (a family's spec.memory), not {memory!r}")
        self.memory = DEFAULT_FAMILY.spec.memory if memory is None else memory
        self.h_out = (h + 2 * p - k) // s + 1
        self.w_out = (w + 2 * p - k) // s + 1
        self.rows = max(min(k, h) + s, 2 * (min(k, h) - p))
        super().__init__({
            "i": In(stream.Signature(in_width)),
            "o": Out(stream.Signature(StructLayout({"data": simd, "valid": simd}))),
        })

    # -- figures -----------------------------------------------------------

    @property
    def out_shape(self) -> tuple[int, int, int]:
        """(K*K*C, H_out, W_out): one window vector of K*K*C elements per output position."""
        c = self.in_shape[0]
        return (self.kernel * self.kernel * c, self.h_out, self.w_out)

    @property
    def fan_in(self) -> int:
        """F = K*K*C, the window vector's length."""
        return self.kernel * self.kernel * self.in_shape[0]

    @property
    def beats_per_frame_in(self) -> int:
        c, h, w = self.in_shape
        return h * w * c // self.in_width

    @property
    def beats_per_frame_out(self) -> int:
        return self.h_out * self.w_out * self.fan_in // self.simd

    @property
    def buffer_bits(self) -> int:
        """Line buffer size: R rows of W pixels of C bits."""
        c, _, w = self.in_shape
        return self.rows * w * c

    @property
    def buffer_groups(self) -> list[tuple[int, int]]:
        """Bit ranges [lo, hi) of the line buffer's word that are one memory each, with their own read address
        register: slices of about :data:`~hwgen.hw.engines.pipeline.FANOUT_GROUP_BITS` bits (whole input
        lanes of W_in bits, or, for lanes wider than that, equal parts of a lane) when the buffer is outside
        block RAM (:meth:`~hwgen.hw.families.MemoryMap.ram_in_block_ram`), else the whole word."""
        c, _, w = self.in_shape
        iw = self.in_width
        if c <= FANOUT_GROUP_BITS or self.memory.ram_in_block_ram(c, self.rows * w):
            return [(0, c)]
        if iw <= FANOUT_GROUP_BITS:
            step = iw * (FANOUT_GROUP_BITS // iw)
        else:
            step = max(d for d in range(1, FANOUT_GROUP_BITS + 1) if iw % d == 0)
        return spans(c, step)

    @property
    def latency(self) -> int:
        return _LATENCY

    @property
    def cycles_per_frame(self) -> int:
        """Steady-state cycles per frame, producer always valid and consumer always ready (exact)."""
        frames = 8
        starts = self.row_schedule(frames=frames)["reader_start"][::self.h_out]
        return starts[-1] - starts[-2]

    def row_credits(self) -> list[tuple[int, int, int]]:
        """Per output row y: ``(clamp(top, 0, H), rows_needed, rows_released)`` of its window top
        ``top = y * S - P`` (:func:`rows_needed`, :func:`rows_released`; the last row releases the rest
        of the frame). The hardware loads its ``need`` / ``release`` registers from these values and
        :meth:`row_schedule` models them."""
        h = self.in_shape[1]
        k, s, p = self.kernel, self.stride, self.padding
        return [(_clamp_rows(y * s - p, h), rows_needed(y * s - p, k, h),
                 rows_released(y * s - p, s, h, y == self.h_out - 1)) for y in range(self.h_out)]

    @property
    def credit_shape(self) -> Shape:
        """The shape of the row counter D and of its bound registers (signed: D is negative while rows no window
        uses are released before they are written; see Flow control)."""
        return signed(max(self.rows, self.in_shape[1] + self.stride).bit_length() + 2)

    def credit_bounds(self) -> list[dict[tuple[int, int], tuple[int, int]]]:
        """Per output row y, per (done, end): the bounds (lo, hi) on D for the credit tests of
        D' = D + done - end * release after row y's cycle (done: an input row completed; end: row y
        ended and released ``release`` rows).

        ``ready_in' = D' < R`` is ``D < hi`` with ``hi = R - done + end * release``; ``can_issue' = need' == 0
        or D' >= need'`` (need' the next row's need after a row end, else row y's) is ``D >= lo`` with
        ``lo = need' - done + end * release``, or the lowest value of :attr:`credit_shape` when need' = 0.
        """
        credits = self.row_credits()
        lowest = -(1 << (self.credit_shape.width - 1))
        table = []
        for y, (_, need_now, release) in enumerate(credits):
            need_next = credits[(y + 1) % self.h_out][1]
            bounds = {}
            for done in (0, 1):
                for end in (0, 1):
                    need = need_next if end else need_now
                    shift = end * release - done
                    bounds[done, end] = (lowest if need == 0 else need + shift, self.rows + shift)
            table.append(bounds)
        return table

    def row_schedule(self, frames: int) -> dict[str, list[int]]:
        """Exact row-level timing of this schedule for ``frames`` back-to-back frames, unstalled.

        Input beats valid from cycle 0, ``o.ready`` always high. Returns
        ``reader_start``: per output row (counted across frames) the cycle its
        first beat is read (it is valid on ``o`` :attr:`latency` - 1 cycles later), and
        ``writer_start``: per input row the cycle of its first input handshake.
        Both sides stall only at row starts (see the class docstring): the
        writer row g starts once the previous row is done and the released rows
        number at least g - R + 1; the reader row starts once the previous one
        is done and the last row it needs is complete (visible one cycle after
        its last handshake).
        """
        c, h, w = self.in_shape
        k, r = self.kernel, self.rows
        t_in = w * c // self.in_width
        t_out = self.w_out * k * k * c // self.simd
        n_w, n_r = frames * h, frames * self.h_out
        w_start: list[int] = []
        w_done: list[int] = []  # cycle at which the row's completion is visible in D
        r_start: list[int] = []
        r_done: list[int] = []  # cycle at which the release is visible (and the next row may start)
        released: list[int] = []  # rows released after each reader row (cumulative)
        released_seen = 0

        credits = self.row_credits()

        def reader_needs(n: int) -> int | None:
            """The last input row (counted across frames) output row n needs; None if it needs none."""
            f, y = divmod(n, self.h_out)
            first, need, _ = credits[y]
            return f * h + first + need - 1 if need else None

        while len(r_start) < n_r:
            n = len(r_start)
            need = reader_needs(n)
            if need is None or need < len(w_done):
                t = max(r_done[-1] if r_done else 0, w_done[need] if need is not None else 0)
                r_start.append(t)
                r_done.append(t + t_out)
                f, y = divmod(n, self.h_out)
                first, _, release = credits[y]
                released.append(f * h + first + release)
                continue
            g = len(w_start)
            assert g < n_w, "row schedule: reader waits for rows past the last frame"
            t = w_done[-1] if w_done else 0
            if g - r + 1 > 0:
                while released_seen < len(released) and released[released_seen] < g - r + 1:
                    released_seen += 1  # the first reader row whose release frees slot g
                assert released_seen < len(released), "row schedule: deadlock"
                t = max(t, r_done[released_seen])
            w_start.append(t)
            w_done.append(t + t_in)
        return {"writer_start": w_start, "reader_start": r_start}

    # -- hardware ----------------------------------------------------------

    def elaborate(self, platform) -> Module:
        m = Module()
        c, h, w = self.in_shape
        k, s, p, rows = self.kernel, self.stride, self.padding, self.rows
        iw, simd = self.in_width, self.simd
        lanes_in, chunks = c // iw, c // simd
        depth = rows * w

        # no_rw_check: Yosys need not make a read of the word being written return the old word (the
        # bypass logic it adds for that sits between the block RAM and `word`, which the ECP5 flow then
        # cannot move into the block RAM). No read whose word is used meets a write of its address: the
        # writer fills only slots whose rows no output row still needs, and the reader reads only rows
        # completely written, or a padded tap or an unissued beat, whose word is masked or dropped.
        # One memory, or one per buffer_groups slice (line_buffer_sK): whole lanes of the input beat each
        # (written through lane enables as the whole word is), or a part of one lane.
        groups = self.buffer_groups
        writes, reads = [], []
        for index, (lo, hi) in enumerate(groups):
            part = Memory(shape=unsigned(hi - lo), depth=depth, init=[], attrs={"no_rw_check": 1})
            m.submodules["line_buffer" if len(groups) == 1 else f"line_buffer_s{index}"] = part
            wr = part.write_port(granularity=iw if -(-hi // iw) - lo // iw > 1 else None)
            rd = part.read_port()
            writes.append(wr)
            reads.append(rd)

        # D: rows written - rows released (signed; negative while the reader has
        # released rows that no window uses and the writer has not consumed yet).
        d_rows = Signal(self.credit_shape)
        row_done = Signal()
        credits = self.row_credits()
        # D's two tests as registers, kept equal to them: ready_in = D < R (the writer's), can_issue = the
        # reader's (need == 0 or D >= need); D = 0 at reset.
        ready_in = Signal(init=1)
        can_issue = Signal(init=credits[0][1] == 0)

        # -- writer --------------------------------------------------------
        lane = Signal(range(lanes_in))
        wcol = Signal(range(w))
        waddr = Signal(range(depth))
        take = Signal()
        # the next beat taken completes an input row: a flag kept from the counters' next values, so that the
        # handshake reaches the row credit's case select through one gate, not through the counters' compares
        # (CNV --pe 16: conv3's i.ready and conv2's FIFO flag through five LUT levels into the window's
        # registered i.ready, 9.32 ns)
        at_row_end = Signal(init=lanes_in == 1 and w == 1)
        lane_next = Mux(lane == lanes_in - 1, 0, lane + 1)
        wcol_next = Mux(lane == lanes_in - 1, Mux(wcol == w - 1, 0, wcol + 1), wcol)
        m.d.comb += [
            self.i.ready.eq(ready_in),
            take.eq(self.i.valid & self.i.ready),
            row_done.eq(take & at_row_end),
        ]
        # The write is registered (address, beat, lane enables), as the read address is (below): both reach
        # the memory one cycle after their counters, so every read and write meet in the same order as the
        # counters' handshakes, and the no_rw_check argument above holds as it is.
        write_addr = Signal.like(waddr, name="write_addr")
        write_data = Signal(iw, name="write_data", reset_less=True)
        write_lanes = Signal(lanes_in, name="write_lanes")
        m.d.sync += [write_addr.eq(waddr), write_data.eq(self.i.payload),
                     write_lanes.eq(Mux(take, 1 << lane, 0) if lanes_in > 1 else take)]
        for (lo, hi), wr in zip(groups, writes):
            lane_lo, lane_hi = lo // iw, -(-hi // iw)  # the lanes this slice holds (part of one when hi - lo < iw)
            m.d.comb += [
                wr.addr.eq(write_addr),
                wr.data.eq(Cat(*([write_data] * (lane_hi - lane_lo))) if hi - lo >= iw
                           else write_data[lo % iw:lo % iw + hi - lo]),
                wr.en.eq(write_lanes if len(groups) == 1 else write_lanes[lane_lo:lane_hi]),
            ]
        with m.If(take):
            m.d.sync += [lane.eq(lane_next), wcol.eq(wcol_next),
                         at_row_end.eq((lane_next == lanes_in - 1) & (wcol_next == w - 1))]
            with m.If(lane == lanes_in - 1):
                m.d.sync += waddr.eq(Mux(waddr == depth - 1, 0, waddr + 1))

        # -- reader counters -----------------------------------------------
        row_lo, row_hi = -p - k, (self.h_out - 1) * s - p + k + s
        col_lo, col_hi = -p - k, (self.w_out - 1) * s - p + k + s
        q = Signal(range(chunks))
        j = Signal(range(k))
        i = Signal(range(k))
        x = Signal(range(self.w_out))
        y = Signal(range(self.h_out))
        top = Signal(range(row_lo, row_hi + 1), init=-p)      # y*S - P
        r = Signal(range(row_lo, row_hi + 1), init=-p)        # top + i: input row of the tap
        xleft = Signal(range(col_lo, col_hi + 1), init=-p)    # x*S - P
        col = Signal(range(col_lo, col_hi + 1), init=-p)      # xleft + j: input column of the tap
        # Slots held as their first word's address (slot * W), so that the read address is one
        # addition (slot * W + col), not a multiply-add; advancing by n rows adds (n mod R) * W mod R*W.
        base_word = Signal(range(depth))                       # slot of row 0 of this frame
        top_word = Signal(range(depth), init=(-p) % rows * w)  # slot of row `top`
        slot_word = Signal(range(depth), init=(-p) % rows * w)  # slot of row `r`

        def rows_ahead(word, n: int):
            """The word address of the slot ``n`` rows after the one at ``word`` (mod R): the compare of
            ``word`` with a constant beside the two constant additions, one carry chain deep (comparing the
            sum instead put the compare's chain after the adder's)."""
            step = n % rows * w
            if step == 0:
                return word
            return Mux(word >= depth - step, word - (depth - step), word + step)

        def rows_ahead_const(word: int, n: int) -> int:
            return (word + n % rows * w) % depth

        # Registers kept equal to the slots the counters move to next, so that the counters' next values
        # are one level of logic: rows_ahead (an adder, a compare and a multiplexer) of slot_word in series
        # with another was CNV --pe 16's conv4 path once placement was compact (9.49 ns, four carry chains).
        # Each is loaded whenever its source is, from the source's own register, never from another next-value.
        slot_next = Signal(range(depth), init=rows_ahead_const(slot_word.init, 1))  # rows_ahead(slot_word, 1)
        top_next = Signal(range(depth), init=rows_ahead_const(top_word.init, s))    # rows_ahead(top_word, S)
        base_start = Signal(range(depth), init=rows_ahead_const(0, h - p))          # rows_ahead(base_word, H - P)
        xleft_next = Signal(range(col_lo, col_hi + 1), init=-p + s)                 # xleft + S

        # `release` (rows_released of the current output row y) and the bounds on D of the credit tests
        # (:meth:`credit_bounds`) are registers, loaded from constant tables indexed by y when the row
        # ends (the next row's values): no clamp arithmetic and no adder before a compare.
        release = Signal(range(h + 1), init=credits[0][2])
        release_after = Array(Const(credits[(yy + 1) % self.h_out][2], release.shape()) for yy in range(self.h_out))
        bounds = self.credit_bounds()
        bound_regs = {key: (Signal(d_rows.shape(), name=f"can_from_{key[0]}{key[1]}", init=lo),
                            Signal(d_rows.shape(), name=f"ready_below_{key[0]}{key[1]}", init=hi))
                      for key, (lo, hi) in bounds[0].items()}
        bounds_after = {key: [Array(Const(bounds[(yy + 1) % self.h_out][key][n], d_rows.shape())
                                    for yy in range(self.h_out)) for n in (0, 1)] for key in bound_regs}

        # -- output pipeline: the read port's register, then the word's, then the output FIFO ----------
        # The pipeline never stalls: a beat is issued only with a credit (fewer than OUTPUT_FIFO_DEPTH
        # beats issued and not yet taken from ``o``), so every word read has a place in the FIFO, and
        # ``o.ready`` reaches only the FIFO and the credit count, never the reader's counters (CNV --pe 16:
        # the register slice's w_rdy through the window's issue logic into its counters, 1.95 ns of logic
        # and 7.77 ns of routing, 102.89 MHz).
        # no reset (its value counts only under o_valid): the ECP5 flow moves it into the block RAM's output
        # register (hwgen.synth.bram_outreg)
        word = Signal(c, reset_less=True)
        issue = Signal()
        tap_valid = Signal()
        out = m.submodules.out_fifo = sliced_fifo(width=simd + 1, depth=OUTPUT_FIFO_DEPTH, slice_bits=simd + 1)
        pending = Signal(range(OUTPUT_FIFO_DEPTH + 1))  # beats issued and not yet taken from o
        has_credit = Signal(init=1)                     # pending < OUTPUT_FIFO_DEPTH, a register
        pop = Signal()
        m.d.comb += [
            pop.eq(out.r_rdy & self.o.ready),
            issue.eq(has_credit & can_issue),
            tap_valid.eq((r >= 0) & (r < h) & (col >= 0) & (col < w)),
        ]
        full_next = credit_full_next(pending, issue, pop, OUTPUT_FIFO_DEPTH)
        m.d.sync += [pending.eq(pending + issue - pop), has_credit.eq(~full_next)]
        # The read address, registered: slot_word + col of the beat issued in the cycle before (any address on a
        # padded tap: the data is masked), one adder from two registers; with slices, each reads at its own
        # copy. Loading it from the counters' next values instead put the adders of five cases and their
        # multiplexer before it (CNV --pe 16: conv4's top_word through a carry chain and three LUT levels to
        # the copies, 2.15 ns of logic + 6.47 of routing, 115.97 MHz).
        addresses = [Signal(range(depth), name="read_address" if len(groups) == 1 else f"read_address{FANOUT_COPY}{n}")
                     for n in range(len(groups))]
        m.d.sync += [a.eq(slot_word + col) for a in addresses]
        m.d.comb += [rd.addr.eq(a) for rd, a in zip(reads, addresses)]

        # a beat issued in cycle t: its address registered in t + 1, its word on the read ports in t + 2 and in
        # `word` in t + 3, with the beat's chunk index and tap flag delayed as far
        m.d.sync += word.eq(Cat(*(rd.data for rd in reads)))
        o_valid = delay(m, issue, 3, "issued")
        o_chunk = delay(m, q, 3, "chunk")
        o_tap_valid = delay(m, tap_valid, 3, "tap_valid")
        chunk = word if chunks == 1 else word.word_select(o_chunk, simd)
        # a beat's valid mask is all ones or all zeros (a tap inside the map or a padded one): one bit is kept
        m.d.comb += [
            out.w_en.eq(o_valid),
            out.w_data.eq(Cat(Mux(o_tap_valid, chunk, 0), o_tap_valid)),
            self.o.valid.eq(out.r_rdy),
            self.o.payload.data.eq(out.r_data[:simd]),
            self.o.payload.valid.eq(out.r_data[simd].replicate(simd)),
            out.r_en.eq(self.o.ready),
        ]

        # -- reader schedule: q fastest, then j, i, x, y ---------------------
        last_q, last_j, last_i = q == chunks - 1, j == k - 1, i == k - 1
        last_x, last_y = x == self.w_out - 1, y == self.h_out - 1
        row_end = Signal()
        m.d.comb += row_end.eq(issue & last_q & last_j & last_i & last_x)
        with m.If(issue):
            m.d.sync += q.eq(Mux(last_q, 0, q + 1))
            with m.If(last_q):
                with m.If(~last_j):
                    m.d.sync += [j.eq(j + 1), col.eq(col + 1)]
                with m.Else():
                    m.d.sync += j.eq(0)
                    with m.If(~last_i):
                        m.d.sync += [i.eq(i + 1), r.eq(r + 1), col.eq(xleft),
                                     slot_word.eq(slot_next), slot_next.eq(rows_ahead(slot_word, 2))]
                    with m.Else():
                        m.d.sync += i.eq(0)
                        with m.If(~last_x):
                            m.d.sync += [x.eq(x + 1), xleft.eq(xleft_next), xleft_next.eq(xleft_next + s),
                                         col.eq(xleft_next), r.eq(top), slot_word.eq(top_word),
                                         slot_next.eq(rows_ahead(top_word, 1))]
                        with m.Else():
                            m.d.sync += [x.eq(0), xleft.eq(-p), xleft_next.eq(-p + s), col.eq(-p),
                                         release.eq(release_after[y])]
                            m.d.sync += [reg.eq(bounds_after[key][n][y])
                                         for key, regs in bound_regs.items() for n, reg in enumerate(regs)]
                            with m.If(~last_y):
                                m.d.sync += [y.eq(y + 1), top.eq(top + s), r.eq(top + s),
                                             top_word.eq(top_next), top_next.eq(rows_ahead(top_word, 2 * s)),
                                             slot_word.eq(top_next), slot_next.eq(rows_ahead(top_word, s + 1))]
                            with m.Else():
                                m.d.sync += [y.eq(0), top.eq(-p), r.eq(-p),
                                             base_word.eq(rows_ahead(base_word, h)),
                                             base_start.eq(rows_ahead(base_word, 2 * h - p)),
                                             top_word.eq(base_start), top_next.eq(rows_ahead(base_word, h - p + s)),
                                             slot_word.eq(base_start), slot_next.eq(rows_ahead(base_word, h - p + 1))]
        # D' = D + row_done - (row_end ? release : 0) and its two tests (D compared with the bounds), for
        # each of the four (row_done, row_end), from registers alone: the handshakes (i.valid, and the
        # output credit through `issue`) only select one of the four.
        nexts = {}
        for (done, end), (can_from, ready_below) in bound_regs.items():
            d_next = Signal.like(d_rows, name=f"d_rows_{done}{end}")
            m.d.comb += d_next.eq(d_rows + done - (release if end else 0))
            nexts[done, end] = Cat(d_next, d_rows < ready_below, d_rows >= can_from)
        m.d.sync += Cat(d_rows, ready_in, can_issue).eq(
            Mux(row_end, Mux(row_done, nexts[1, 1], nexts[0, 1]), Mux(row_done, nexts[1, 0], nexts[0, 0])))
        return m
