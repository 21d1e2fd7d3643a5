"""Folded engines: what the MVTU and the MAC unit share, around their per-lane term.

A folded engine computes, for each input vector x (F elements with a tap mask
``valid``) and output channel c, ``acc_c = sum_{f valid} term(W[c, f], x_f)``,
then either the bit ``acc_c >= T[c]`` (threshold mode) or ``acc_c`` itself
(accumulator mode), with PE output channels x SIMD input elements per cycle:
NF = C_out / PE neuron folds, SF = F / SIMD synapse folds.

:class:`FoldedEngine` holds the ports, the schedule and its credit flow
control, the input buffer, the control pipeline, the accumulator, the
threshold compare, the output FIFO and the figures. A subclass supplies the
term: the bits per input element, :attr:`FoldedEngine._TERM_STAGES`, the
weight ROM contents and :meth:`FoldedEngine._lane_sums`. Also here: the
validation and memory-layout helpers both engines use.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from amaranth.hdl import Cat, Const, Module, Mux, Signal, Value, signed, unsigned
from amaranth.lib import stream, wiring
from amaranth.lib.data import ArrayLayout, StructLayout
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from hwgen.compile.ir import signed_bits
from hwgen.errors import BuildError
from hwgen.hw.engines.fifo import sliced_fifo
from hwgen.hw.engines.pipeline import (
    COPY_TREE_ABOVE,
    FANOUT_COPY,
    FANOUT_GROUP_BITS,
    credit_full_next,
    delay,
    delay_copies,
    spans,
    tree_register_stages,
)
from hwgen.hw.engines.threshold_factors import (
    FACTOR_STAGES,
    ThresholdFactors,
    fit_factors,
)
from hwgen.hw.engines.thresholds import ThresholdTable, check_thresholds
from hwgen.hw.families import DEFAULT_FAMILY, MemoryMap

__all__ = ["DEFAULT_MEMORY", "FoldedEngine", "Schedule", "check_thresholds", "check_weight_matrix", "pack_fields",
           "registered_rom", "rom_slice_width", "sync_rom"]

#: Pipeline registers after the per-PE sums: the accumulator, the output FIFO and the FIFO's output register
#: (``sliced_fifo(output_register=True)``: the result is read from a flip-flop, not through the FIFO's LUT RAM).
_OUTPUT_STAGES = 3

#: Where memories go when the engine is not told (:class:`~hwgen.hw.families.MemoryMap`): the
#: default target's family. ``hwgen build`` passes its target's.
DEFAULT_MEMORY: MemoryMap = DEFAULT_FAMILY.spec.memory


def rom_slice_width(width: int, depth: int, memory: MemoryMap = DEFAULT_MEMORY) -> int:
    """Bits per block-RAM ROM slice on ``memory``'s family (:meth:`MemoryMap.rom_slice_width`)."""
    return memory.rom_slice_width(width, depth)


# -- validation --------------------------------------------------------------

def check_weight_matrix(weights: object, kind: str) -> np.ndarray:
    """``weights`` as a non-empty 2-D integer array (C_out, F); BuildError "weights must be KIND" otherwise."""
    w = np.asarray(weights)
    if w.ndim != 2 or w.size == 0:
        raise BuildError(f"weights must be a non-empty (C_out, F) array, not shape {w.shape}")
    if not np.issubdtype(w.dtype, np.integer):
        raise BuildError(f"weights must be {kind}, not dtype {w.dtype}")
    return w


# -- memory layout -----------------------------------------------------------

def pack_fields(values: object, width: int) -> int:
    """Integers as consecutive ``width``-bit two's-complement fields: element k on bits k*width .. (k+1)*width - 1.

    ``width`` <= 64; a value is reduced mod 2**width (its low ``width`` bits).
    """
    v = np.asarray(values, dtype=np.int64).reshape(-1, 1)
    bits = ((v >> np.arange(width)) & 1).astype(np.uint8)  # arithmetic shift: two's-complement bits
    return int.from_bytes(np.packbits(bits.ravel(), bitorder="little").tobytes(), "little")


class Schedule(NamedTuple):
    """The issue stage's signals (see :meth:`FoldedEngine._schedule`)."""

    step: Value     #: a step is issued this cycle
    sf: Value       #: its synapse fold
    nf: Value       #: its neuron fold
    addr: Value     #: its weight ROM word, nf * SF + sf
    first_nf: Value  #: nf == 0: the slice comes from ``i``, else from the input buffer
    last_sf: Value  #: sf == SF - 1: the step completes a result
    result: Value   #: its result in the frame, pos * NF + nf (threshold table order; nf when P = 1)
    pos: Value      #: its output position, result div NF (0 when P = 1)


class FoldedEngine(wiring.Component):
    """Base of the folded engines: PE output channels x SIMD input elements per cycle.

    Constructor (keyword-only, values already validated by the subclass):
    ``c_out``, ``fan_in`` (F), ``pe``, ``simd``, ``lane_bits`` (bits per input
    element), ``acc_range`` = (lo, hi), the exact range of every partial sum
    of a channel, ``thresholds`` (``(T, neg)``, int64 and bool (C_out, P)
    from :func:`~hwgen.hw.engines.thresholds.check_thresholds`: P = 1 per
    channel, else per output position; ``neg``: ``acc <= T``; or None),
    ``masked`` (False: every tap is valid, e.g. a layer without padding; the
    ``valid`` field of ``i`` is ignored and not stored) and ``memory`` (where
    the weight ROM and the input buffer go: a
    :class:`~hwgen.hw.families.MemoryMap`, the target family's; default
    :data:`DEFAULT_MEMORY`). ``acc <= T`` is computed as ``NOT (acc >= T +
    1)``; thresholds outside [lo, hi] give constant outputs; they are
    saturated to [lo, hi + 1] (same bits), so :attr:`threshold_width` (the
    accumulator's width in threshold mode: start values plus partial sums,
    :meth:`_preloads`) stays small. :attr:`acc_width` = signed_bits(lo, hi).

    Ports
    -----
    i : In(stream.Signature(StructLayout({"data": lane_bits * SIMD, "valid": SIMD})))
        One SIMD-wide slice of an input vector per beat, SF beats per vector;
        ``data`` bits ``lane_bits * k ..`` are element ``sf * SIMD + k``,
        ``valid`` bit k = 0 marks a padded tap, which contributes 0.
        ``i.ready`` does not depend on ``i.valid`` nor on ``o.ready``.
    o : Out(stream.Signature(PE))  (threshold mode)
        One beat per neuron fold, NF beats per vector; bit p is channel ``nf * PE + p``.
    o : Out(stream.Signature(ArrayLayout(signed(acc_width), PE)))  (accumulator mode)
        Same order, element p is ``acc`` of channel ``nf * PE + p``.

    Schedule
    --------
    One *step* (one synapse fold of one neuron fold) per cycle, in the order
    nf = 0..NF-1, sf = 0..SF-1. During nf = 0 the SF beats come from ``i`` and
    are written to an input buffer (SF words of the raw beat, (lane_bits + 1) * SIMD
    bits, lane_bits * SIMD when not masked; only when NF > 1; in block RAM when
    ``memory.buffer_in_block_ram``); nf = 1..NF-1 re-read the buffer, so every
    input beat is consumed once and ``i.ready`` is low for the (NF-1)*SF
    cycles of those folds.

    Pipeline
    --------
    issue (schedule counters, weight ROM address) -> S1 (input slice from
    ``i`` or the buffer; with the buffer in block RAM, :attr:`read_stages` = 2
    more registers for the read data and the stream's slice before their
    select, and the subclass sees the step two cycles later) -> the subclass's
    term stages and adder tree (:meth:`_lane_sums`: per-PE sums
    :meth:`sum_latency` = :attr:`read_stages` + :meth:`term_latency` cycles
    after the issue) -> accumulator (threshold mode: started at -T of the channel, the
    output bit is the sign of the last sum, inverted where the comparison is
    ``<=``; the next result's start values and this result's inversions
    read from the threshold ROM alongside the sums, constants when
    NF * P = 1; accumulator mode: reset at sf = 0) -> output FIFO. The
    control (valid, first, last, result) travels in a register chain of the
    same length. Per-position thresholds cost no cycle: the ROM address is
    the result counter (pos * NF + nf, advanced with each result issued),
    read one stage early. The pipeline never
    stalls: a cycle without a step carries a bubble. Flow control is by
    credits: a step that completes a result (sf = SF-1) is issued only while
    fewer than :attr:`fifo_depth` results are in flight or waiting in the
    FIFO, so back-pressure on ``o`` never drops or duplicates a result;
    ``i.ready`` (nf = 0 and a credit for the step) is a flip-flop, set from
    the counters' next values, so no path runs from ``o.ready`` or
    ``i.valid`` to it within a cycle.

    Memory layout
    -------------
    Weight ROM: word ``nf * SF + sf``, field ``p * SIMD + k`` = W[nf*PE + p,
    sf*SIMD + k] ([fold][PE][SIMD], :meth:`_fold_words`). Threshold ROM
    (:meth:`threshold_words`, only when NF * P > 1; :class:`~hwgen.hw.engines.thresholds.ThresholdTable`):
    word r = pos * NF + nf, field p (the used start values' signed width, at
    most :attr:`threshold_width`) = the start value (-T, or the subclass's
    :meth:`_preloads`), sign-extended when loaded, of result (r + 1) mod
    (P * NF), then PE inversion bits of result r when some comparison is
    ``<=``; in block RAM when deeper than
    :attr:`~hwgen.hw.families.MemoryMap.threshold_lut_max_depth` words.

    Timing
    ------
    Throughput: one step per cycle while the input is offered (during nf = 0)
    and credits remain: :attr:`cycles_per_vector` = NF * SF cycles per vector,
    back to back. :attr:`latency` = :meth:`sum_latency` + 2 cycles from the last input beat of a vector (handshake) to its first
    output beat being valid; the beat of neuron fold nf follows nf * SF cycles
    later when nothing stalls. :attr:`fifo_depth` = latency // SF + 1 credits
    are just enough for full throughput.
    """

    #: Registers from the issue of a step to its per-PE sums, the adder tree's excluded (S1 included).
    _TERM_STAGES: int

    def __init__(self, *, c_out: int, fan_in: int, pe: int, simd: int, lane_bits: int,
                 acc_range: tuple[int, int], thresholds: tuple[np.ndarray, np.ndarray] | None,
                 masked: bool = True, memory: MemoryMap | None = None) -> None:
        self.c_out, self.fan_in, self.pe, self.simd = c_out, fan_in, pe, simd
        self.masked = bool(masked)
        if memory is not None and not isinstance(memory, MemoryMap):
            raise BuildError(f"memory must be a MemoryMap (a family's spec.memory), not {memory!r}")
        self.memory = DEFAULT_MEMORY if memory is None else memory
        self.nf, self.sf = c_out // pe, fan_in // simd
        self.lane_bits = lane_bits
        self.acc_range = acc_range
        self.acc_width = signed_bits(*acc_range)
        self.positions = 1
        self._table: ThresholdTable | None = None
        if thresholds is None:
            self.threshold_width = None
            out_shape = ArrayLayout(signed(self.acc_width), pe)
        else:
            t, neg = thresholds  # (C_out, P), from check_thresholds
            lo, hi = acc_range
            # acc <= T is NOT (acc >= T + 1); then saturate to [lo, hi + 1] (same bits)
            t = np.clip(np.clip(t, lo - 1, hi + 1) + neg, lo, hi + 1)
            start, (slo, shi) = self._preloads(t)
            self.positions = t.shape[1]
            self.threshold_width = signed_bits(int(start.min()) + slo, int(start.max()) + shi)
            self._table = ThresholdTable.from_channels(start, neg, pe=pe)
            out_shape = unsigned(pe)
        super().__init__({
            "i": In(stream.Signature(StructLayout({"data": lane_bits * simd, "valid": simd}))),
            "o": Out(stream.Signature(out_shape)),
        })
        self._factors: ThresholdFactors | None = None
        if self._table is not None and self.memory.factor_thresholds and self.sum_latency() > FACTOR_STAGES:
            offset = int(self._preloads(np.zeros((1, 1), dtype=np.int64))[0][0, 0])
            self._factors = fit_factors(start, neg, offset=offset, pe=pe)

    # -- figures -----------------------------------------------------------

    @property
    def accumulator_mode(self) -> bool:
        return self._table is None

    @property
    def threshold_table(self) -> ThresholdTable | None:
        """The stored table (threshold mode; None in accumulator mode): the start values and inversions per
        result, or with :attr:`threshold_factors`, the corrections D and the inversions."""
        return self._table if self._factors is None else self._factors.table

    @property
    def threshold_factors(self) -> ThresholdFactors | None:
        """Per-position start values stored factored (:mod:`~hwgen.hw.engines.threshold_factors`: where the
        memory map allows it, the fit stores at most half the bits and the pipeline has the
        :data:`~hwgen.hw.engines.threshold_factors.FACTOR_STAGES` cycles), else None."""
        return self._factors

    @property
    def cycles_per_vector(self) -> int:
        """Cycles per input vector at full throughput: NF * SF."""
        return self.nf * self.sf

    @property
    def buffer_written_late(self) -> bool:
        """The block-RAM input buffer is written from the stream's slice registered twice, two cycles after
        its step instead of one (its address and enable registered once more), so that the slice's first
        register is the only load of the vector FIFO's read data: a block-RAM FIFO's read register then
        feeds one flip-flop, which the ECP5 flow moves into the FIFO's output register
        (``hwgen.synth.bram_outreg``). CNV ``--pe 16``'s conv5: the FIFO's block RAM, 5.61 ns clock-to-output
        without it, into the buffer's write data and into ``x1_r``, 9.81 and 11.84 ns. Word sf is re-read
        SF or more cycles after its step, so SF >= 3 (the write lands before the first re-read)."""
        return self.buffer_in_block_ram and self.nf > 1 and self.sf >= 3

    @property
    def read_stages(self) -> int:
        """Registers between the input buffer's read and the input slice: 2 when the buffer is in block RAM,
        else 0. The first only takes the block RAM's data (TFC's fc3: block-RAM clock-to-output, then the
        stream/buffer select in one cycle, 120.6 MHz); the ECP5 flow moves it into the block RAM
        (``hwgen.synth.bram_outreg``), so the second, in the fabric, keeps the route from the block RAM's
        row out of the cycle of the select and the lanes' first adders, as :meth:`_weight_rom` does for a
        weight word (LFC's fc0, seed 3: 5.51 ns from the buffer's block RAM at row 82 to the lanes' carry
        chains at row 25, 8.81 ns in all, 113.49 MHz)."""
        return 2 * int(self.buffer_in_block_ram)

    def sum_latency(self) -> int:
        """Cycles from the issue of a step to its per-PE sums: :attr:`read_stages`, then the subclass's
        :meth:`term_latency` (the term stages and the adder tree)."""
        return self.read_stages + self.term_latency()

    def term_latency(self) -> int:
        """Cycles from the input slice's issue (S1 one cycle later) to the per-PE sums: the term stages,
        :attr:`weight_word_stages` and the adder tree's registers."""
        return self._TERM_STAGES + self.weight_word_stages + tree_register_stages(self.simd)

    @property
    def weight_rom_shape(self) -> tuple[int, int]:
        """(width, depth) of the weight ROM: PE * SIMD fields of the weight bits, NF * SF words."""
        depth = self.nf * self.sf
        return self.weight_rom_bits // depth, depth

    @property
    def weight_rom_banks(self) -> int:
        """Banks of the weight ROM in depth (:func:`rom_banks`)."""
        width, depth = self.weight_rom_shape
        return rom_banks(self.memory, width, depth, block=self.weight_block_ram)

    @property
    def weight_block_ram(self) -> bool:
        """The weight ROM in block RAM (:meth:`~hwgen.hw.families.MemoryMap.rom_in_block_ram`), else in LUTs."""
        return self.memory.rom_in_block_ram(*self.weight_rom_shape)

    @property
    def weight_address_stages(self) -> int:
        """Registers between the weight ROM's address and its memories (:func:`rom_address_stages`)."""
        width, depth = self.weight_rom_shape
        return rom_address_stages(self.memory, width, depth, block=self.weight_block_ram)

    @property
    def weight_word_stages(self) -> int:
        """Cycles the weight word the lanes read comes later than a LUT ROM's (:func:`registered_rom`'s 2); the
        subclass delays the input slice's path to match. 1 for a block-RAM weight ROM: split in depth, the bank
        multiplexer's register (:func:`registered_rom_latency`); in one bank, a fabric register behind the block
        RAM's own output register (:meth:`_weight_rom`); plus :attr:`weight_address_stages`."""
        return (registered_rom_latency(self.weight_rom_banks, self.weight_address_stages)
                + self._weight_fabric_registers - REGISTERED_ROM_CYCLES)

    @property
    def operand_copy_stages(self) -> int:
        """Registers from a step's operands (S2: the MVTU's slice, the MAC's differences) to their per-PE copies
        beside the products (``x2``, ``v2``, ``d3_K``: :func:`~hwgen.hw.engines.pipeline.delay_copies`), in step
        with the weight word: 1 + :attr:`weight_word_stages`."""
        return 1 + self.weight_word_stages

    @property
    def _weight_fabric_registers(self) -> int:
        """Registers of the weight word after :func:`registered_rom` (:meth:`_weight_rom`): one for a block-RAM
        ROM in one bank (split in depth, the bank multiplexer's register already lies in the fabric), and one
        more for a ROM spread over the device (:func:`rom_spread`), so that the placer can put a register
        half-way between a far block RAM and the lanes (LFC's fc1 and fc2, 2,048 x 512 bits in 57 block RAMs
        over two of their rows: seed 2, a word bit from its block RAM at column 10 to its one fabric register
        at column 88, 7.93 ns of routing; seed 3, fc2's, 8.68 ns)."""
        if not self.weight_block_ram:
            return 0
        width, depth = self.weight_rom_shape
        return int(self.weight_rom_banks == 1) + int(rom_spread(self.memory, width, depth, block=True))

    @property
    def threshold_table_registered(self) -> bool:
        """The plain threshold table read as a registered block-RAM ROM (:func:`registered_rom`): a table of
        more than one word in block RAM, when the sum latency leaves room to read it that early. Then the
        accumulator loads from a register (which the ECP5 flow moves into the block RAM) instead of from the
        block RAM's slow read data (CNV ``--pe 16``: fc7's threshold ROM into ``acc0``, 90.24 MHz)."""
        table = self._table
        if self._factors is not None or table is None or table.depth == 1 or table.word_bits == 0:
            return False
        if not self.memory.threshold_rom_in_block_ram(table.depth):
            return False
        return self.sum_latency() >= self._threshold_registered_latency()

    def _threshold_registered_latency(self) -> int:
        """:func:`registered_rom_latency` of the threshold table in block RAM."""
        table = self._table
        return registered_rom_latency(rom_banks(self.memory, table.word_bits, table.depth, block=True))

    @property
    def threshold_read_latency(self) -> int:
        """Cycles from the threshold table's address to its word: 1 (a synchronous ROM), or
        :func:`registered_rom`'s 2 (3 in banks) when :attr:`threshold_table_registered`."""
        return self._threshold_registered_latency() if self.threshold_table_registered else 1

    @property
    def latency(self) -> int:
        """Cycles from the last input beat of a vector to its first output beat (as built)."""
        return self.sum_latency() + _OUTPUT_STAGES

    @property
    def fifo_depth(self) -> int:
        """Output FIFO entries (= result credits): enough for full throughput."""
        return self.latency // self.sf + 1

    @property
    def weight_rom_bits(self) -> int:
        """Weight ROM size in bits (the subclass's field width times C_out * F)."""
        raise NotImplementedError

    @property
    def threshold_rom_bits(self) -> int:
        """Threshold storage: R = P * NF words of the lanes' fields (each as wide as its own start values
        need, :mod:`hwgen.hw.engines.thresholds`) + PE inversion bits if any ``<=``; 0 in accumulator mode."""
        if self._factors is not None:
            return self._factors.bits
        return 0 if self.accumulator_mode else self._table.bits

    def threshold_roms(self) -> list[tuple[int, int]]:
        """(width, depth) of each threshold ROM: the table's (when it varies: more than one word of some
        bits); with :attr:`threshold_factors`, also the A ROM (NF > 1) and the B ROM. None in accumulator mode."""
        table = self.threshold_table
        if table is None:
            return []
        roms = [(table.word_bits, table.depth)] if table.depth > 1 and table.word_bits else []
        f = self._factors
        if f is not None:
            roms += [(self.pe * f.a_bits, self.nf)] if self.nf > 1 else []
            roms.append((2 * f.b_bits, len(f.b)))
        return roms

    @property
    def input_buffer_bits(self) -> int:
        """The input buffer re-read by neuron folds 1..NF-1: SF words of the raw beat (0 when NF = 1)."""
        return 0 if self.nf == 1 else self.sf * (self.lane_bits + self.masked) * self.simd

    @property
    def buffer_in_block_ram(self) -> bool:
        """Whether the input buffer (when there is one) is in block RAM (``memory.buffer_in_block_ram``)."""
        bits = self.input_buffer_bits
        return bits > 0 and self.memory.buffer_in_block_ram(bits // self.sf, self.sf)

    def threshold_words(self) -> list[int]:
        """Threshold ROM contents (:meth:`~hwgen.hw.engines.thresholds.ThresholdTable.words`): word
        r = pos * NF + nf, lane fields p (``threshold_table.fields``) = the start values (:meth:`_preloads`)
        of the next result, loaded at the last step of result r; then the inversion bits of result r."""
        return self.threshold_table.words()

    def weight_words(self) -> list[int]:
        """Weight ROM contents (the subclass's layout of :meth:`_fold_words`)."""
        raise NotImplementedError

    def _fold_words(self, matrix: np.ndarray, width: int) -> list[int]:
        """(C_out, F) fields as [fold][PE][SIMD] words: word nf*SF + sf, field p*SIMD + k = matrix[nf*PE + p, sf*SIMD + k]."""
        b = matrix.reshape(self.nf, self.pe, self.sf, self.simd).transpose(0, 2, 1, 3)
        return [pack_fields(row, width) for row in b.reshape(self.nf * self.sf, -1)]

    # -- hardware ----------------------------------------------------------

    def _lane_sums(self, m: Module, s: Schedule, x: Value, v: Value) -> list[Value]:
        """Per-PE sums of the step's terms, :meth:`sum_latency` cycles after its issue.

        ``x`` (lane_bits * SIMD bits) and ``v`` (SIMD bits) are the step's
        input slice and tap mask at S1; each sum must lie in :attr:`acc_range`.
        """
        raise NotImplementedError

    def elaborate(self, platform) -> Module:
        m = Module()
        s = self._schedule(m)
        x, v = self._input_slice(m, s)
        # the term stages see the step as if issued read_stages cycles later (the slice arrives that late)
        sums = self._lane_sums(m, self._delayed(m, s, self.read_stages), x, v)
        # the accumulator stage's valid and last as lists, their last register in one copy per PE: each copy
        # enables one PE's accumulator and result bit (CNV --pe 16's conv0, one register for all 64 PEs:
        # 6.12 ns route to the enable logic, 4.33 on to the result bits); copy 0 also completes the output
        # word. first: one copy.
        ctl = {k: delay_copies(m, Value.cast(sig), self.sum_latency(), copies, f"{k}_p")
               for k, sig, copies in (("valid", s.step, self.pe), ("first", s.sf == 0, 1),
                                      ("last", s.last_sf, self.pe))}
        # the result one cycle before the accumulator stage (FACTOR_STAGES more for factored thresholds):
        # the address of a synchronous ROM read; a registered table (threshold_read_latency) earlier still
        early = self.sum_latency() - self.threshold_read_latency - (FACTOR_STAGES if self._factors is not None else 0)
        ctl["result_early"] = delay(m, s.result, early, "result_p")
        if self._factors is not None:
            ctl["nf_early"] = delay(m, s.nf, early, "nf_p")
            ctl["pos_early"] = delay(m, s.pos, early, "pos_p")
        self._accumulate_and_output(m, sums, ctl)
        return m

    def _schedule(self, m: Module) -> Schedule:
        """Issue logic: one step per cycle when allowed, counters advanced on each step, result credits."""
        NF, SF, depth = self.nf, self.sf, self.fifo_depth
        sf = Signal(range(SF))
        nf = Signal(range(NF))
        addr = Signal(range(NF * SF))
        pending = Signal(range(depth + 1))  # results issued and not yet taken from ``o``
        # sf == SF - 1 and nf == 0 as flip-flops (set from the counters' next values): the issue logic starts
        # from registers, and so do the copies of the stream/buffer select (SFC's fc0: nf through nf == 0
        # into 14 select copies, 1.23 logic + 7.80 ns routing). Reset state: sf = nf = 0.
        last_sf = Signal(init=int(SF == 1))
        first_nf = Signal(init=1)
        can_issue = Signal()
        step = Signal()
        push = Signal()
        pop = Signal()

        def credit(completes_none: Value, room: Value) -> Value:
            """A step may issue: it completes no result, or there is ``room`` (fewer than ``depth`` results out)."""
            return completes_none | room

        m.d.comb += [
            can_issue.eq(credit(~last_sf, pending != depth)),
            step.eq(can_issue & (~first_nf | self.i.valid)),
            push.eq(step & last_sf),
            pop.eq(self.o.valid & self.o.ready),
        ]
        sf_next = Mux(step, Mux(last_sf, 0, sf + 1), sf)
        nf_next = Mux(push, Mux(nf == NF - 1, 0, nf + 1), nf)
        pending_next = pending + push - pop
        # The flags' next values from the flags and from compares of the counters with constants, not
        # through the incrementers (sf_next == SF - 1 is sf == SF - 2 after a step that does not complete a
        # result): SFC's fc0 went first_nf -> step -> the carry chain of sf + 1 -> sf_next == SF - 1 -> i.ready,
        # 1.73 ns logic + 7.62 ns routing, two hops of it to and from the carry chain placed 25 columns away.
        last_sf_next = Mux(step, Const(1) if SF == 1 else ~last_sf & (sf == SF - 2), last_sf)
        first_nf_next = Mux(push, nf == NF - 1, first_nf)
        full_next = credit_full_next(pending, push, pop, depth)
        m.d.sync += [sf.eq(sf_next), nf.eq(nf_next), pending.eq(pending_next),
                     last_sf.eq(last_sf_next), first_nf.eq(first_nf_next)]
        with m.If(step):
            m.d.sync += addr.eq(Mux(addr == NF * SF - 1, 0, addr + 1))
        # i.ready = first_nf & can_issue, registered the same way, so that it leaves a flip-flop for the FIFO
        # in front (SFC's fc0: the issue logic through i.ready to the pointers of 14 vector FIFO slices,
        # 8.4-9.1 ns of routing). Reset state: also pending = 0, so ready (depth >= 1).
        ready = Signal(init=1)
        m.d.sync += ready.eq(first_nf_next & credit(~last_sf_next, ~full_next))
        m.d.comb += self.i.ready.eq(ready)
        result, pos = nf, Const(0)
        if self.positions > 1:  # per-position thresholds: count the results of a frame
            R = self.positions * NF
            result = Signal(range(R))
            with m.If(push):
                m.d.sync += result.eq(Mux(result == R - 1, 0, result + 1))
        if self._factors is not None:  # and their positions
            pos = Signal(range(self.positions))
            with m.If(push & (nf == NF - 1)):
                m.d.sync += pos.eq(Mux(pos == self.positions - 1, 0, pos + 1))
        return Schedule(step=step, sf=sf, nf=nf, addr=addr, first_nf=first_nf, last_sf=last_sf, result=result,
                        pos=pos)

    @staticmethod
    def _delayed(m: Module, s: Schedule, n: int) -> Schedule:
        """The schedule's signals ``n`` cycles later (registers; ``s`` itself when n = 0)."""
        if n == 0:
            return s
        return Schedule(**{k: sig if isinstance(sig, Const) else delay(m, Value.cast(sig), n, f"{k}_r")
                           for k, sig in s._asdict().items()})

    @property
    def input_lane_groups(self) -> list[tuple[int, int]]:
        """Lane ranges [lo, hi) of the input slice that share one copy of its stream/buffer select: about
        :data:`~hwgen.hw.engines.pipeline.FANOUT_GROUP_BITS` bits each (at least one lane), so no select
        register drives more (SFC's fc0, one register into the select of all 896 bits: 7.88 ns of routing)."""
        per_group = max(1, FANOUT_GROUP_BITS // self.lane_bits)
        return spans(self.simd, per_group)

    @property
    def buffer_lane_groups(self) -> list[tuple[int, int]]:
        """Lane ranges of the input buffer's slices: :attr:`input_lane_groups` for a buffer of SF >= 2 words
        outside block RAM (each slice its own memory, read and written at its own copy of the sf counter, so no
        address register reaches more than its slice's LUT RAM cells: SFC's fc0, 224 cells), else one."""
        if self.sf < 2 or self.buffer_in_block_ram:
            return [(0, self.simd)]
        return self.input_lane_groups

    def _input_slice(self, m: Module, s: Schedule) -> tuple[Value, Value]:
        """S1 (+ :attr:`read_stages`): (data, valid) of the step's slice, from ``i`` during nf = 0, else
        re-read from the input buffer; with a block-RAM buffer its read data and the stream's slice are
        registered once more before the select. The select (stream or buffer) is registered once per
        :attr:`input_lane_groups`, the buffer built in :attr:`buffer_lane_groups`."""
        SIMD, NF = self.simd, self.nf
        lane = self.lane_bits
        data_bits = lane * SIMD
        # no reset (their words count only under the valid pipeline, which is reset): Yosys moves x1 into a
        # block-RAM vector FIFO as its read register, and a reset there (the block RAM's RST) kept the ECP5
        # flow from moving x1_r into the block RAM's output register (hwgen.synth.bram_outreg)
        x1 = Signal(data_bits, reset_less=True)
        v1 = Signal(SIMD, reset_less=True)
        m.d.sync += x1.eq(self.i.payload.data)
        if self.masked:
            m.d.sync += v1.eq(self.i.payload.valid)
        else:
            v1 = Const((1 << SIMD) - 1, SIMD)
        if NF == 1:
            return x1, v1
        n = self.read_stages
        late = None
        if n:  # with a block-RAM buffer the stream's slice is registered as often as the buffer's read data is
            x1 = delay(m, x1, 1, "x1_r")
            if self.masked:
                v1 = delay(m, v1, 1, "v1_r")
            late = (x1, v1)  # registered twice after its step (buffer_written_late)
            x1 = delay(m, x1, n - 1, "x1_rr")
            if self.masked:
                v1 = delay(m, v1, n - 1, "v1_rr")
        read = self._input_buffer(m, s, late if self.buffer_written_late else None)
        groups = self.input_lane_groups
        if len(groups) == 1:
            from_stream = [delay(m, Value.cast(s.first_nf), 1, "from_stream")]
            if n:
                from_stream = [delay(m, from_stream[0], n, "from_stream_r")]
        else:
            from_stream = delay_copies(m, Value.cast(s.first_nf), 1 + n, len(groups), "from_stream")
        if n:
            read = delay(m, read, n, "buffered")
        read_data, read_valid = read[:data_bits], read[data_bits:]
        x = Signal(data_bits)
        m.d.comb += x.eq(Cat(*(Mux(sel, x1[lo * lane:hi * lane], read_data[lo * lane:hi * lane])
                               for sel, (lo, hi) in zip(from_stream, groups))))
        if not self.masked:
            return x, v1
        v = Signal(SIMD)
        m.d.comb += v.eq(Cat(*(Mux(sel, v1[lo:hi], read_valid[lo:hi]) for sel, (lo, hi) in zip(from_stream, groups))))
        return x, v

    def _input_buffer(self, m: Module, s: Schedule, late: tuple[Value, Value] | None = None) -> Value:
        """The input buffer (SF words of the raw beat: data, then the valid mask when masked) read at the
        step's sf: that word (data, then valid) one cycle later. One memory, or one per
        :attr:`buffer_lane_groups` slice (``input_buffer_sK``), each holding its lanes' data and valid bits
        and read and written at its own sf counter copy. ``late`` (:attr:`buffer_written_late`): the stream's
        slice (data, valid) registered twice after its step, which is then written, a cycle later than the
        beat itself would be (with address and enable registered once more)."""
        lane, SF = self.lane_bits, self.sf
        if late is None:
            data = self.i.payload.data
            valid = self.i.payload.valid if self.masked else Const(0, 0)
        else:
            data, valid = late
        # not in block RAM: LUT RAM where the family has it (Yosys' choice), else flip-flops. no_rw_check:
        # word sf is written a cycle after its step (SF >= 2; in the step's own cycle for SF == 1; two cycles
        # after when buffer_written_late, SF >= 3) and read
        # for the later neuron folds, never in the cycle it is written but at the steps with the stream's
        # slice (first_nf), whose read is not used: Yosys need not give the old word on such a read.
        attrs = ({"ram_style": "block"} if self.buffer_in_block_ram else
                 {} if self.memory.lut_ram else {"ram_style": "logic"})
        attrs["no_rw_check"] = 1
        groups = self.buffer_lane_groups
        write_step = Value.cast(s.step & s.first_nf)
        if len(groups) == 1:
            addresses, enables = [s.sf], [write_step]
        else:
            # sf counter copies (advanced with every step, as sf is) and registered write enables, one per slice.
            # Each copy has its own incrementer beside its slice: only step and last_sf travel to the slices
            # (copies of a register loaded from the schedule's sf_next would route sf_next's bits to each).
            addresses = []
            for k in range(len(groups)):
                copy = Signal.like(s.sf, name=f"sf{FANOUT_COPY}{k}")
                with m.If(s.step):
                    m.d.sync += copy.eq(Mux(s.last_sf, 0, copy + 1))
                addresses.append(copy)
            enables = delay_copies(m, write_step, 1, len(groups), "buffer_write")
        read_data, read_valid = [], []
        for k, ((lo, hi), address, enable) in enumerate(zip(groups, addresses, enables)):
            raw = Cat(data[lo * lane:hi * lane], valid[lo:hi]) if self.masked else data[lo * lane:hi * lane]
            name = "input_buffer" if len(groups) == 1 else f"input_buffer_s{k}"
            buf = m.submodules[name] = Memory(shape=unsigned(len(raw)), depth=SF, init=[], attrs=attrs)
            bw = buf.write_port()
            br = buf.read_port()
            m.d.comb += br.addr.eq(address)
            # With SF >= 2 the write is registered once: the enable reaches every block RAM of a wide buffer
            # from a register, not from the issue logic (SFC's fc0: nf -> enable of 28 block RAMs, 69 MHz).
            # Word sf is re-read SF >= 2 cycles after its step, after the delayed write. In slices the
            # enable is already a register copy.
            write = m.d.sync if SF > 1 else m.d.comb
            if late is None:
                write += [bw.addr.eq(address), bw.data.eq(raw)]
            else:  # the slice is already registered twice: the address and enable one cycle more
                address, enable = delay(m, address, 1, "buffer_address"), delay(m, enable, 1, "buffer_write")
                write += bw.addr.eq(address)
                m.d.comb += bw.data.eq(raw)
            if len(groups) == 1:
                write += bw.en.eq(enable)
            else:
                m.d.comb += bw.en.eq(enable)
            width = (hi - lo) * lane
            read_data.append(br.data[:width])
            read_valid.append(br.data[width:])
        return Cat(*read_data, *read_valid)

    def _weight_rom(self, m: Module, addr: Value, name: str) -> Value:
        """The weight ROM (:meth:`weight_words`) read at ``addr``, its word registered (``name``):
        2 + :attr:`weight_word_stages` cycles later.

        :func:`registered_rom`, then, for a block-RAM ROM in one bank, the word
        registered once more in the fabric (``name``, no reset), and once more
        for a spread ROM (:func:`rom_spread`; ``name0``, ``name1`` when two). The ECP5 flow
        moves the first register into the block RAM (``hwgen.synth.bram_outreg``),
        so without the second the route from the block RAM's column to the lanes'
        carry chains and the chain itself shared one cycle (CNV ``--pe 16``, seed
        1: 0.96 ns clock-to-output, 7.33 ns route, the chain into ``acc``; 81.70 MHz).
        Split in depth, the bank multiplexer's register is that fabric register.
        """
        width, _ = self.weight_rom_shape
        fabric_registers = self._weight_fabric_registers
        word = registered_rom(m, "weights", self.weight_words(), width, addr, memory=self.memory,
                              block=self.weight_block_ram, name=f"{name}_rom" if fabric_registers else name,
                              address_stages=self.weight_address_stages)
        return delay(m, word, fabric_registers, name, reset_less=True)

    def _preloads(self, thresholds: np.ndarray) -> tuple[np.ndarray, tuple[int, int]]:
        """Threshold mode: the accumulator's start value per channel and the range of the summed terms.

        The output bit is ``start + sum of the step sums >= 0``. Here the step
        sums are the terms themselves (range :attr:`acc_range`), so start = -T;
        a subclass that sums something else (the MVTU's match counts) says so.
        """
        return -thresholds, self.acc_range

    def _accumulate(self, m: Module, p: int, acc: Signal, term: Value) -> Value:
        """Threshold mode: ``acc + term`` of PE p, combinational, ``len(acc)`` bits (no overflow by construction)."""
        total = Signal(signed(len(acc)), name=f"total{p}")
        m.d.comb += total.eq(acc + term)
        return total

    def _accumulate_and_output(self, m: Module, sums: list[Value], ctl: dict[str, list[Value] | Value]) -> None:
        """Accumulator and output FIFO; threshold mode starts each result at -T and outputs its sign.

        Threshold mode: ``total = acc + sum`` (one carry chain per PE); at the
        last synapse fold the output bit is ``total >= 0`` (its sign bit
        inverted) XOR the result's inversion bit, and ``acc`` is loaded with
        the start value of the next result (:meth:`threshold_words`, a ROM
        read at the result counter, a constant when NF * P = 1), otherwise
        with ``total``: no comparator and no reset multiplexer. Accumulator
        mode: ``acc = (first ? 0 : acc) + sum``.
        """
        PE = self.pe
        done = Signal()
        m.d.sync += done.eq(ctl["valid"][0] & ctl["last"][0])
        if self.accumulator_mode:
            accs = [Signal(signed(self.acc_width), name=f"acc{p}") for p in range(PE)]
            for a, d, valid in zip(accs, sums, ctl["valid"]):
                with m.If(valid):
                    m.d.sync += a.eq(Mux(ctl["first"][0], 0, a) + d)
            result = Cat(*accs)
        else:
            tw, table = self.threshold_width, self._table
            if self._factors is not None:
                nxt, inv = self._factored_starts(m, ctl)
            elif table.depth == 1 or table.word_bits == 0:  # one start value per lane: constants
                nxt = [Const(int(v), signed(tw)) for v in table.start[0]]
                inv = [Const(int(v), 1) for v in table.invert[0]]
            else:
                # ready at the accumulator stage: the next result's starts and this result's inversions
                block = self.memory.threshold_rom_in_block_ram(table.depth)
                if self.threshold_table_registered:
                    data = registered_rom(m, "thresholds", table.words(), table.word_bits, ctl["result_early"],
                                          memory=self.memory, block=block, name="threshold_word")
                else:
                    data = sync_rom(m, "thresholds", table.words(), table.word_bits, ctl["result_early"],
                                    memory=self.memory, block=block)
                at = table.offsets
                nxt = [_start_value(data[at[p]:at[p + 1]], high, tw) for p, (_, high) in enumerate(table.fields)]
                inv = [data[at[-1] + p] if table.has_directions else Const(0, 1) for p in range(PE)]
            result = Signal(PE)
            for p in range(PE):
                acc = Signal(signed(tw), name=f"acc{p}", init=int(table.start[0, p]))
                total = self._accumulate(m, p, acc, sums[p])
                valid, last = ctl["valid"][p], ctl["last"][p]
                with m.If(valid):
                    m.d.sync += acc.eq(Mux(last, nxt[p], total))
                    with m.If(last):
                        m.d.sync += result[p].eq(~total[-1] ^ inv[p])
        # o.valid from a flip-flop (sliced_fifo), not from the level's compare: it is the next unit's i.valid
        fifo = m.submodules.out_fifo = sliced_fifo(width=len(result), depth=self.fifo_depth, slice_bits=len(result),
                                                   output_register=True)
        m.d.comb += [
            fifo.w_en.eq(done),
            fifo.w_data.eq(result),
            self.o.valid.eq(fifo.r_rdy),
            self.o.payload.eq(fifo.r_data),
            fifo.r_en.eq(self.o.ready),
        ]

    def _factored_starts(self, m: Module, ctl: dict[str, Value]) -> tuple[list[Value], list[Value]]:
        """Per PE, the next result's start value and this result's inversion bit, at the accumulator stage,
        from the factored form (:mod:`~hwgen.hw.engines.threshold_factors`).

        Read at ``result_early``, ``nf_early``, ``pos_early`` (the result
        finishing, FACTOR_STAGES + 1 cycles before the accumulator stage):
        the A ROM (word nf: the next neuron fold's A per lane; constants when
        NF = 1), the B ROM (word pos: B[pos], B[pos + 1]; the next result's is
        B[pos + 1] after the last neuron fold) and the table of corrections
        and inversions (word r: D of result r + 1 per lane, inversions of r).
        Then three registers: the factors (A, the selected B) and D; the
        products A * B (one 18 x 18 multiplier per lane); start = K +
        (product >> s) + D.
        """
        f, tw, PE, NF = self._factors, self.threshold_width, self.pe, self.nf
        table = f.table
        a_rom = (sync_rom(m, "threshold_a", f.a_words(), PE * f.a_bits, ctl["nf_early"], memory=self.memory,
                          block=self.memory.threshold_rom_in_block_ram(NF)) if NF > 1 else None)
        b_pair = sync_rom(m, "threshold_b", f.b_words(), 2 * f.b_bits, ctl["pos_early"], memory=self.memory,
                          block=self.memory.threshold_rom_in_block_ram(len(f.b)))
        wrapped = delay(m, ctl["nf_early"] == NF - 1, 1, "threshold_wrap")  # the next result is at pos + 1
        if table.word_bits:
            d_word = sync_rom(m, "thresholds", table.words(), table.word_bits, ctl["result_early"],
                              memory=self.memory, block=self.memory.threshold_rom_in_block_ram(table.depth))
        b = Signal(signed(f.b_bits), name="threshold_b_q")
        m.d.sync += b.eq(Mux(wrapped, b_pair[f.b_bits:], b_pair[:f.b_bits]))
        at, nxt, inv = table.offsets, [], []
        for p, (bits, high) in enumerate(table.fields):
            if a_rom is None:
                a = Const(int(f.a[p]), signed(f.a_bits))
            else:
                a = Signal(signed(f.a_bits), name=f"threshold_a{p}_q")
                m.d.sync += a.eq(a_rom[p * f.a_bits:(p + 1) * f.a_bits])
            product = Signal(signed(f.a_bits + f.b_bits), name=f"threshold_product{p}")
            m.d.sync += product.eq(a * b)
            if bits:
                d = delay(m, _start_value(d_word[at[p]:at[p + 1]], high, tw), 2, f"threshold_d{p}_")
            else:
                d = Const(int(table.start[0, p]), signed(tw))
            start = Signal(signed(tw), name=f"threshold_start{p}")
            m.d.sync += start.eq(f.offset + (product >> f.shift) + d)
            nxt.append(start)
            inv.append(delay(m, d_word[at[-1] + p], FACTOR_STAGES, f"threshold_inv{p}_")
                       if table.has_directions else Const(0, 1))
        return nxt, inv


#: Cycles from a one-bank :func:`registered_rom`'s address to its word (the ROM's read, then its register).
REGISTERED_ROM_CYCLES = 2

#: A weight ROM bank of more block RAMs than this is spread over the device (:func:`rom_spread`).
SPREAD_ROM_BLOCKS = 8


def rom_banks(memory: MemoryMap, width: int, depth: int, *, block: bool) -> int:
    """Banks in depth of a ROM of ``width`` x ``depth``: :meth:`~hwgen.hw.families.MemoryMap.rom_banks` in
    block RAM (``block``), 1 in LUTs."""
    return memory.rom_banks(width, depth) if block else 1


def rom_slice_step(memory: MemoryMap, width: int, depth: int, *, block: bool) -> int:
    """Bits per memory of :func:`sync_rom`'s ROM of ``width`` x ``depth``: ``memory``'s
    :meth:`~hwgen.hw.families.MemoryMap.rom_slice_width` in block RAM; in LUTs
    :data:`~hwgen.hw.engines.pipeline.FANOUT_GROUP_BITS`, so that each slice's LUTs read at their own address
    copy (:func:`rom_address_stages`; CNV ``--fit``: conv2's 2,048-bit, 36-word LUT ROM read at one address
    register, its bits fanned out to thousands of LUT4s: 32,734 of router2's 48,700 overused wires at its
    seventh iteration, and the route did not converge). A one-word ROM is a constant: whole."""
    if block:
        return memory.rom_slice_width(width, depth)
    return min(width, FANOUT_GROUP_BITS) if depth > 1 else width


def rom_memories(memory: MemoryMap, width: int, depth: int, *, block: bool) -> int:
    """Memories :func:`registered_rom` builds for a ROM of ``width`` x ``depth``: per bank (:func:`rom_banks`),
    the slices of :func:`rom_slice_step` (counted at the full bank's depth)."""
    banks, slices = _rom_layout(memory, width, depth, block=block)
    return banks * slices


def _rom_layout(memory: MemoryMap, width: int, depth: int, *, block: bool) -> tuple[int, int]:
    """(banks, slices of a full bank) of a ROM of ``width`` x ``depth``: :func:`rom_banks`, and the
    :func:`rom_slice_step` slices counted at the full bank's depth."""
    banks = rom_banks(memory, width, depth, block=block)
    bank = memory.rom_bank_depth(width, depth) if banks > 1 else depth
    return banks, -(-width // rom_slice_step(memory, width, bank, block=block))


def rom_address_stages(memory: MemoryMap, width: int, depth: int, *, block: bool) -> int:
    """Registers that :func:`registered_rom`'s address passes before the memories of a ROM of ``width`` x
    ``depth`` (:func:`sync_rom`): 0 for one memory; else each memory reads at its own register copy, so that
    no register drives the address pins of all the block RAMs (CNV ``--pe 16``, seed 2: conv5's address
    register to 36 block RAMs, 11.60 ns of routing, 80.77 MHz): 1, or 2 when a bank has more than
    :data:`~hwgen.hw.engines.pipeline.COPY_TREE_ABOVE` slices, whose copies are then fed by about sqrt(slices)
    copies of their own (:func:`~hwgen.hw.engines.pipeline.delay_copies`; LFC's fc1, 57 slices)."""
    banks, slices = _rom_layout(memory, width, depth, block=block)
    if banks * slices == 1:
        return 0
    return 2 if slices > COPY_TREE_ABOVE else 1


def rom_spread(memory: MemoryMap, width: int, depth: int, *, block: bool) -> bool:
    """Whether a full bank of a block-RAM (``block``) ROM of ``width`` x ``depth`` takes more than
    :data:`SPREAD_ROM_BLOCKS` block RAMs
    (:meth:`~hwgen.hw.families.MemoryMap.rom_blocks` at :meth:`~hwgen.hw.families.MemoryMap.rom_bank_depth`):
    they then lie along rows of block RAM across the device, and the word is registered twice in the fabric
    (:attr:`FoldedEngine.weight_word_stages`)."""
    return block and memory.rom_blocks(width, memory.rom_bank_depth(width, depth)) > SPREAD_ROM_BLOCKS


def registered_rom_latency(banks: int, address_stages: int = 0) -> int:
    """Cycles from :func:`registered_rom`'s address to its word: :data:`REGISTERED_ROM_CYCLES`, one more for
    the bank multiplexer's register when ``banks`` > 1, plus the address's copy stages
    (:func:`rom_address_stages`)."""
    return REGISTERED_ROM_CYCLES + int(banks > 1) + address_stages


def registered_rom(m: Module, rom: str, words: list[int], width: int, addr: Value, *, memory: MemoryMap,
                   block: bool, name: str, address_stages: int = 0) -> Signal:
    """A ROM of ``words`` read at ``addr`` with its word registered (Signal ``name``): 2 cycles later, 3 when
    split in depth, plus ``address_stages`` (:func:`registered_rom_latency`; :func:`sync_rom`).

    One bank (:meth:`~hwgen.hw.families.MemoryMap.rom_banks`; always in
    LUTs): :func:`sync_rom`, then the register, which the synthesis flow
    moves into the block RAM (ECP5 OUTREG). B > 1 banks of D =
    :meth:`~hwgen.hw.families.MemoryMap.rom_bank_depth` words (a power of
    two; the last holds the rest): bank k (``ROM_bK``) holds words k * D ..
    k * D + D - 1 and is read at ``addr mod D``; its word is registered on
    its own (``ROM_bK_q``, again in the block RAM); ``addr div D``, delayed
    two cycles, selects a bank into ``name``, so the B:1 multiplexer lies
    between registers; the select in one register copy per
    :data:`~hwgen.hw.engines.pipeline.FANOUT_GROUP_BITS` bits of the word.
    """
    data = Signal(width, name=name)
    banks = rom_banks(memory, width, len(words), block=block)
    if banks == 1:
        m.d.sync += data.eq(sync_rom(m, rom, words, width, addr, memory=memory, block=block,
                                     address_stages=address_stages))
        return data
    depth = memory.rom_bank_depth(width, len(words))
    low = depth.bit_length() - 1
    if 1 << low != depth:
        raise BuildError(f"{rom}: a bank depth of {depth} words is not a power of two")
    # the select in one register copy per FANOUT_GROUP_BITS bits of the word, each driving its bits' multiplexers
    # (LFC's fc0, 4 banks of 224 bits: one select register into all 224, 10.09 ns of routing, 90.18 MHz)
    groups = spans(width, FANOUT_GROUP_BITS)
    selects = delay_copies(m, addr[low:], REGISTERED_ROM_CYCLES + address_stages, len(groups), f"{rom}_bank")
    read = []
    for k in range(banks):
        q = Signal(width, name=f"{rom}_b{k}_q")
        m.d.sync += q.eq(sync_rom(m, f"{rom}_b{k}", words[k * depth:(k + 1) * depth], width, addr[:low],
                                  memory=memory, block=True, address_stages=address_stages))
        read.append(q)
    for (lo, hi), select in zip(groups, selects):
        with m.Switch(select):
            for k, q in enumerate(read):
                with m.Case(k):
                    m.d.sync += data[lo:hi].eq(q[lo:hi])
    return data


def _start_value(field: Value, high: int | None, width: int) -> Value:
    """A lane's start value (``width`` bits, signed) from its ROM field: the field sign-extended (``high``
    None), else the field with the constant ``high`` above it (:mod:`hwgen.hw.engines.thresholds`)."""
    if high is None:
        return field.as_signed()
    return Cat(field, Const(high, signed(width - len(field)))).as_signed()


def sync_rom(m: Module, name: str, words: list[int], width: int, addr: Value, *, memory: MemoryMap,
         block: bool, address_stages: int = 0) -> Value:
    """A ROM of ``words`` (``width`` bits) read synchronously at ``addr``: the word 1 + ``address_stages``
    cycles later.

    ``block``: forced into block RAM (``ram_style = "block"``), else Yosys decides. A deep block-RAM
    ROM is built in slices of ``memory``'s :meth:`~hwgen.hw.families.MemoryMap.rom_slice_width`
    bits, a LUT ROM in slices of :data:`~hwgen.hw.engines.pipeline.FANOUT_GROUP_BITS`
    (:func:`rom_slice_step`; submodules ``NAME_sK``), else whole (``NAME``). ``address_stages`` > 0: each slice reads at
    its own copy of ``addr`` delayed that many registers (``NAME_addr_fanoutK``, no reset; kept apart in
    synthesis, :data:`~hwgen.hw.engines.pipeline.FANOUT_COPY`; with many slices in a tree,
    :func:`~hwgen.hw.engines.pipeline.delay_copies`), placed beside its block RAMs.
    """
    depth = len(words)
    attrs = {"ram_style": "block"} if block else None
    # the whole word unless a deep block-RAM ROM or a wide LUT ROM is sliced
    step = rom_slice_step(memory, width, depth, block=block)
    starts = range(0, width, step)
    if not address_stages:
        addresses = [addr] * len(starts)
    elif len(starts) == 1:  # one copy, still named as a copy: kept apart from the other banks' copies
        addresses = [delay(m, addr, address_stages, f"{name}_addr{FANOUT_COPY}0", reset_less=True)]
    else:
        addresses = delay_copies(m, addr, address_stages, len(starts), f"{name}_addr", reset_less=True)
    data = []
    for k, lo in enumerate(starts):
        bits = min(step, width - lo)
        mem = Memory(shape=unsigned(bits), depth=depth, init=[(w >> lo) & ((1 << bits) - 1) for w in words],
                     attrs=attrs)
        label = name if step >= width else f"{name}_s{k}"
        m.submodules[label] = mem
        rd = mem.read_port()
        m.d.comb += rd.addr.eq(addresses[k])
        data.append(rd.data)
    return Cat(*data)
