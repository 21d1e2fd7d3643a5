"""Score unit: the last layer's accumulators -> integer class scores and the top-1 index, as words.

The arithmetic is the golden model's (:func:`hwgen.compile.golden.class_scores`,
DESIGN.md section 2): ``score_c = scale_c * acc_c + bias_c``, prediction =
argmax with ties to the lowest index. See :class:`ScoreUnit`.
"""

from __future__ import annotations

import numpy as np
from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal, signed
from amaranth.lib import stream, wiring
from amaranth.lib.data import ArrayLayout, StructLayout
from amaranth.lib.wiring import In, Out

from hwgen.hw.engines.multiply import LATENCY as PRODUCT_LATENCY
from hwgen.hw.engines.multiply import registered_product
from hwgen.hw.engines.pipeline import FANOUT_GROUP_BITS, delay, delay_copies, spans
from hwgen.hw.engines.swu import check_count, check_divides
from hwgen.compile.ir import signed_bits
from hwgen.errors import BuildError

__all__ = ["ScoreUnit", "frame_interval", "score_range"]

#: Bits of a scale chunk: the unsigned chunk plus a zero sign bit is an 18-bit multiplier operand
#: (ECP5 MULT18X18D, iCE40 SB_MAC16 16 x 16 takes it in fabric as before).
_CHUNK_BITS = 17


def _check_vector(name: str, values: object, n: int) -> np.ndarray:
    v = np.asarray(values)
    if v.shape != (n,) or not np.issubdtype(v.dtype, np.integer):
        raise BuildError(f"{name} must be an integer array of shape ({n},), not {v.dtype} {v.shape}")
    return v.astype(np.int64)  # own copy


#: Registers from the issue of a class to the multiplier cells' operands: the selected operands, then the
#: same once more, so that the route to the multiplier cells starts at a register, not at the selection's
#: multiplexers (LFC seed 3 and CNV ``--pe 16`` seed 1: ``scores.issue_c`` through the accumulator select into
#: the multiplier's operand register, 1.47-1.63 ns logic + 8.07-9.08 ns routing).
OPERAND_STAGES = 2


def frame_interval(num_classes: int) -> int:
    """Fewest cycles between two frames through a :class:`ScoreUnit` of C = ``num_classes`` classes:

        1 + C + (OPERAND_STAGES - 1 + PRODUCT_LATENCY + 4) + (C + 1) = 2C + 9

    one cycle to start scoring once the frame is collected and the bank is free, C issue cycles, the
    last class through the operand stages, the product (PRODUCT_LATENCY), stages 3-5 and the store that marks the
    bank full, then the bank's C + 1 words emitted at one per cycle (the bank is single: scoring the
    next frame waits for the last word). Measured by tests/test_accelerator.py at several C and PE.
    The folding counts it as a stage (:func:`hwgen.hw.folding.fixed_stages`): it is the bottleneck of
    a network with few pixels and many classes (a 1 x 2 x 2 input with 2 classes: 12 cycles, not 4).
    """
    return 1 + num_classes + (OPERAND_STAGES - 1 + PRODUCT_LATENCY + 4) + (num_classes + 1)


def score_range(scale: np.ndarray, bias: np.ndarray, acc_range: tuple[int, int]) -> tuple[int, int]:
    """Exact (min, max) of ``scale_c * acc + bias_c`` over every class c and acc in ``acc_range``."""
    lo, hi = acc_range
    ends = np.stack([scale * lo + bias, scale * hi + bias])
    return int(ends.min()), int(ends.max())


class ScoreUnit(wiring.Component):
    """Class scores ``scale_c * acc_c + bias_c`` and their argmax, sent as ``word_bits``-bit words.

    Parameters (keyword-only; a :class:`~hwgen.errors.BuildError` names any violation)
    ----------
    scale, bias : int arrays (C,)
        The integer affine of each class (the IR's ScoreOutput).
    acc_range : (lo, hi)
        The range of the incoming accumulators (their width is signed_bits(lo, hi)).
    pe : int
        Accumulators per input beat; must divide C.
    word_bits : int
        Output word width; every score must fit it as a signed integer.
    ecp5_cells : bool
        The products as ECP5 MULT18X18D cells with their own registers
        (:func:`~hwgen.hw.engines.multiply.registered_product`).

    Ports
    -----
    i : In(stream.Signature(ArrayLayout(signed(acc_width), PE)))
        The last engine's accumulator mode: C / PE beats per frame, element p
        of beat nf is acc of class ``nf * PE + p``.
    o : Out(stream.Signature(StructLayout({"data": word_bits, "last": 1})))
        C + 1 words per frame: score_0 .. score_{C-1} (two's complement,
        sign-extended), then the class index; ``last`` = 1 on the class word.

    Operation and timing
    --------------------
    Three phases, the last overlapping the next frame's first: *collect* the
    C / PE input beats into C accumulator registers (one beat per cycle,
    ``i.ready`` high); *score* one class per cycle through an 8-cycle pipeline
    (acc_c from the accumulators, which shift down one class per cycle while scoring so that acc_c is always
    the first, and the constants, registered twice (:data:`OPERAND_STAGES`) -> partial products acc_c * chunk of
    scale_c, the scale cut into 17-bit unsigned chunks and a signed top chunk
    of at most 18 bits, one multiplier cell each with its operand and product
    registers, 2 cycles (:func:`~hwgen.hw.engines.multiply.registered_product`;
    without them the cell's delay set TFC's Fmax on the ECP5-85F, 7.40 ns) ->
    their shifted sum -> add the bias -> compare -> store, replacing the best
    only when strictly greater, so ties keep the lowest index) into an output
    bank, once the bank is free; *emit* the bank's C + 1 words, one per cycle
    while ``o.ready``. The bank is a shift register: each store moves every
    word one down and puts the class's score in the top word, so after the
    frame's C stores (classes in order) word c holds score_c, and each score
    emitted shifts it down once more, so the output reads word 0 only; its enables are
    register copies of the store stage's valid flag, one per
    :data:`~hwgen.hw.engines.pipeline.FANOUT_GROUP_BITS` bits of words, and no
    decode of the class index reaches the bank (SFC and CNV ``--pe 16``: the
    decode of ``c3`` into one bank word's enable, 1.00 ns logic + 8.8-9.4 ns
    routing, was a critical path). The running maximum is a loop: compare and replace in
    one cycle set TFC's Fmax (7.31 ns). So the compare stage compares class c
    with both candidates for the best before it, the best register (classes
    < c - 1) and class c - 1's score, registered; the store stage picks one by
    whether class c - 1 replaced the best. Collect resumes right after the
    last issue, while the bank is emitted; scoring the next frame waits for the
    bank, so frames are at least :func:`frame_interval` = 2C + 9 cycles apart
    (tests/test_accelerator.py), a stage of the folding estimate: below
    every engine's frame time in most networks (TFC at 128-bit input: 49
    cycles against 28).
    ``i.ready`` is a register (it does not depend on ``i.valid`` nor ``o.ready``).
    """

    def __init__(self, *, scale: np.ndarray, bias: np.ndarray, acc_range: tuple[int, int], pe: int,
                 word_bits: int = 32, ecp5_cells: bool = False) -> None:
        scale_arr = np.asarray(scale)
        n = check_count("the number of classes", int(scale_arr.shape[0]) if scale_arr.ndim == 1 else 0)
        self.scale = _check_vector("scale", scale, n)
        self.bias = _check_vector("bias", bias, n)
        self.num_classes = n
        self.pe = check_divides("PE", check_count("PE", pe), "the number of classes", n)
        self.word_bits = check_count("word_bits", word_bits)
        self.ecp5_cells = ecp5_cells
        lo, hi = (int(v) for v in acc_range)
        if lo > hi:
            raise BuildError(f"acc_range must be (lo, hi) with lo <= hi, not {acc_range!r}")
        self.acc_range = (lo, hi)
        self.acc_width = signed_bits(lo, hi)
        self.score_range = score_range(self.scale, self.bias, self.acc_range)
        self.score_width = signed_bits(*self.score_range)
        if self.score_width > self.word_bits:
            raise BuildError(f"class scores span {self.score_range[0]}..{self.score_range[1]} "
                             f"({self.score_width} bits): they do not fit {self.word_bits}-bit output words")
        if signed_bits(0, n - 1) > self.word_bits:
            raise BuildError(f"{n} classes do not fit a {self.word_bits}-bit class word")
        super().__init__({
            "i": In(stream.Signature(ArrayLayout(signed(self.acc_width), self.pe))),
            "o": Out(stream.Signature(StructLayout({"data": self.word_bits, "last": 1}))),
        })

    @property
    def scale_width(self) -> int:
        """Bits of the widest scale (signed)."""
        return signed_bits(int(self.scale.min()), int(self.scale.max()))

    @property
    def chunk_offsets(self) -> list[int]:
        """Bit offsets of the scale's chunks, one multiplier cell (18 x 18) each: unsigned chunks of
        ``_CHUNK_BITS`` bits from bit 0 while more than ``_CHUNK_BITS + 1`` bits remain, then the signed rest."""
        offsets = [0]
        while self.scale_width - offsets[-1] > _CHUNK_BITS + 1:
            offsets.append(offsets[-1] + _CHUNK_BITS)
        return offsets

    @property
    def words_per_frame(self) -> int:
        return self.num_classes + 1

    def elaborate(self, platform) -> Module:
        m = Module()
        n, pe = self.num_classes, self.pe
        nf_count = n // pe
        sw = self.score_width
        scale_w = self.scale_width
        bias_w = signed_bits(int(self.bias.min()), int(self.bias.max()))

        # collect
        accs = Array(Signal(signed(self.acc_width), name=f"acc{c}") for c in range(n))
        beat = Signal(range(nf_count))
        collecting = Signal(init=1)
        m.d.comb += self.i.ready.eq(collecting)
        with m.If(self.i.valid & self.i.ready):
            with m.Switch(beat):
                for nf in range(nf_count):
                    with m.Case(nf):
                        m.d.sync += [accs[nf * pe + p].eq(self.i.payload[p]) for p in range(pe)]
            m.d.sync += beat.eq(Mux(beat == nf_count - 1, 0, beat + 1))
            with m.If(beat == nf_count - 1):
                m.d.sync += collecting.eq(0)

        # score: issue one class per cycle once the frame is collected and the bank is free
        bank = [Signal(signed(sw), name=f"score{c}") for c in range(n)]
        bank_busy = Signal()  # from the start of scoring to the last word emitted
        bank_full = Signal()  # every score in the bank: emitting
        cls = Signal(range(n))
        scoring = Signal()
        issue_c = Signal(range(n))
        with m.If(~collecting & ~bank_busy):
            m.d.sync += [scoring.eq(1), bank_busy.eq(1), issue_c.eq(0)]
        with m.If(scoring):
            m.d.sync += issue_c.eq(issue_c + 1)
            # the accumulators shift down one class per issue, so the class issued is always acc0: no
            # C:1 multiplexer of accumulators before the operand register (CNV: issue_c through the
            # accumulators' multiplexer into a1, four LUT levels, 9.26 ns); they are all loaded again while
            # the next frame is collected (collecting and scoring never overlap)
            m.d.sync += [accs[c].eq(accs[c + 1]) for c in range(n - 1)]
            with m.If(issue_c == n - 1):
                m.d.sync += [scoring.eq(0), collecting.eq(1)]
        scales = Array(Const(int(v), signed(scale_w)) for v in self.scale)
        biases = Array(Const(int(v), signed(bias_w)) for v in self.bias)
        # stage 1: operands
        v1, c1 = Signal(), Signal(range(n))
        a1, s1, b1 = Signal(signed(self.acc_width)), Signal(signed(scale_w)), Signal(signed(bias_w))
        m.d.sync += [v1.eq(scoring), c1.eq(issue_c), a1.eq(accs[0]), s1.eq(scales[issue_c]),
                     b1.eq(biases[issue_c])]
        a1, s1 = (delay(m, sig, OPERAND_STAGES - 1, f"{name}_r") for sig, name in ((a1, "a1"), (s1, "s1")))
        # stage 2 (LATENCY cycles): partial products acc * scale chunk (every product lies in the score range
        # minus the bias: 2 more bits suffice). A scale wider than a multiplier operand is cut into
        # _CHUNK_BITS-bit unsigned chunks (the top one signed) so that each product is one multiplier cell:
        # TFC's 8 x 26-bit product as one expression (two MULT18X18D and their sum) was its critical path.
        pw = max(sw, bias_w) + 1
        parts = []
        for lo in self.chunk_offsets:
            top = lo == self.chunk_offsets[-1]  # the rest, signed, is one operand
            chunk = s1[lo:].as_signed() if top else Cat(s1[lo:lo + _CHUNK_BITS], Const(0, 1)).as_signed()
            # exact width; the sum below is taken mod 2**pw, exact because the whole product fits pw bits
            part = registered_product(m, a1, chunk, name=f"prod_{lo}", ecp5_cells=self.ecp5_cells)
            parts.append((part, lo))
        vp, cp, bp = (delay(m, sig, OPERAND_STAGES - 1 + PRODUCT_LATENCY, name)
                      for sig, name in ((v1, "vp"), (c1, "cp"), (b1, "bp")))
        # stage 3: the product, sum of the shifted partial products
        vq, cq = Signal(), Signal(range(n))
        prod = Signal(signed(pw))
        bq = Signal(signed(bias_w))
        m.d.sync += [vq.eq(vp), cq.eq(cp), bq.eq(bp), prod.eq(sum(part << lo for part, lo in parts))]
        # stage 4: add the bias
        v2, c2 = Signal(), Signal(range(n))
        score2 = Signal(signed(sw))
        m.d.sync += [v2.eq(vq), c2.eq(cq), score2.eq(prod + bq)]
        # stage 5: compare class c with both candidates for the best before it: the best register (the best
        # of classes < c - 1: class c - 1 is in stage 6 now) and class c - 1's score (stage 6's score3)
        best = Signal(signed(sw))
        v3, c3 = Signal(), Signal(range(n))
        score3 = Signal(signed(sw))
        over_best, over_previous = Signal(), Signal()
        # each compare as the sign of a difference one bit wider (exact): a subtraction, which synthesis puts on
        # a carry chain (SFC: score2 > score3 as LUT and multiplexer logic, 3.46 ns of the 8.37 ns path)
        below_best, below_previous = Signal(signed(sw + 1)), Signal(signed(sw + 1))
        m.d.comb += [below_best.eq(best - score2), below_previous.eq(score3 - score2)]
        m.d.sync += [v3.eq(v2), c3.eq(c2), score3.eq(score2), over_best.eq(below_best[-1]),
                     over_previous.eq(below_previous[-1])]
        # stage 6: store; class c replaces the best when strictly greater than the best before it, which is
        # class c - 1's score if c - 1 replaced (previous_won), else the best register (ties keep the lowest
        # index); class 0 always replaces
        previous_won = Signal()
        wins = Signal()
        m.d.comb += wins.eq((c3 == 0) | Mux(previous_won, over_previous, over_best))
        # the bank shifts down by one word per store (score3 into the top word), each group of words enabled
        # by its own copy of v3 (registered from v2 like v3)
        # it also shifts down by one word per emitted score: word 0 is always the next score out, so no read
        # multiplexer lies between the bank and the output (TFC: the bank's (C + 1):1 multiplexer into the
        # first output FIFO, 1.47 + 5.30 ns, 147.78 MHz)
        bank_groups = spans(n, max(1, FANOUT_GROUP_BITS // sw))
        stores = delay_copies(m, v2, 1, len(bank_groups), "store")
        emitted = Signal()
        for store, (lo, hi) in zip(stores, bank_groups):
            with m.If(store | emitted):
                m.d.sync += [bank[c].eq(bank[c + 1] if c < n - 1 else score3) for c in range(lo, hi)]
        with m.If(v3):
            m.d.sync += previous_won.eq(wins)
            with m.If(wins):
                m.d.sync += [best.eq(score3), cls.eq(c3)]
            with m.If(c3 == n - 1):
                m.d.sync += bank_full.eq(1)

        # emit
        word = Signal(range(n + 1))
        last = word == n
        data = Signal(self.word_bits)
        m.d.comb += data.eq(Mux(last, cls, bank[0]))
        m.d.comb += emitted.eq(self.o.valid & self.o.ready & ~last)
        m.d.comb += [
            self.o.valid.eq(bank_full),
            self.o.payload.data.eq(data),
            self.o.payload.last.eq(last),
        ]
        with m.If(self.o.valid & self.o.ready):
            m.d.sync += word.eq(Mux(last, 0, word + 1))
            with m.If(last):
                m.d.sync += [bank_full.eq(0), bank_busy.eq(0)]
        return m
