"""MVTU: the matrix-vector-threshold unit, one binary layer's XNOR-popcount engine.

See :class:`MVTU` for the ports, the arithmetic, the pipeline and its timing;
the schedule, flow control, accumulator and output stage are
:class:`~hwgen.hw.engines.folded.FoldedEngine`'s. The arithmetic is the
golden model's (DESIGN.md section 2, :mod:`hwgen.compile.golden`): for input
bits x, weight bits w and the tap mask ``valid`` of one SIMD-wide slice,
``2 * popcount(XNOR(x, w) & valid) - popcount(valid)``, summed over the
synapse folds of a vector.
"""

from __future__ import annotations

import numpy as np
from amaranth.hdl import Cat, Const, Module, Signal, Value, signed

from hwgen.hw.engines.folded import (
    FoldedEngine,
    Schedule,
    check_thresholds,
    check_weight_matrix,
)
from hwgen.hw.engines.pipeline import adder_tree, delay_copies, tree_register_stages
from hwgen.hw.engines.popcount import CarryChain, chain_adder, match_count, match_count_stages
from hwgen.hw.engines.swu import check_count
from hwgen.hw.families import MemoryMap
from hwgen.compile.ir import signed_bits
from hwgen.errors import BuildError

__all__ = ["MVTU", "popcount_register_stages"]


def popcount_register_stages(simd: int) -> int:
    """Register stages of the XNOR-popcount over ``simd`` lanes: the pair level, then the adder tree.

    Lanes are summed in pairs first (1 + 1 bits -> 2 bits: each output bit is
    one LUT4 of x0, w0, x1, w1), registered; a balanced adder tree over the
    ceil(SIMD / 2) pair sums follows, a register every 2 adder levels.
    """
    return 1 + tree_register_stages((simd + 1) // 2)


def _check_weights(weights: object) -> np.ndarray:
    w = check_weight_matrix(weights, "an integer array of +-1")
    if not np.all((w == 1) | (w == -1)):
        bad = w[(w != 1) & (w != -1)].ravel()[0]
        raise BuildError(f"binary weights must be +-1, found {int(bad)}")
    return w


class MVTU(FoldedEngine):
    """Matrix-vector-threshold unit: PE output channels x SIMD input bits per cycle.

    Computes, for each input vector x (F bits, with a tap mask ``valid``) and
    output channel c, ``acc_c = sum_{f valid} w[c, f] * (2 x_f - 1)``, then
    either the bit ``acc_c >= T[c]`` (threshold mode) or ``acc_c`` itself
    (accumulator mode, the last layer).

    Parameters (keyword-only; a :class:`~hwgen.errors.BuildError` names any violation)
    ----------
    weights : int array (C_out, F) of +-1
        Binary weights; the fan-in F in the order the input stream delivers it.
        Copied: changing the array afterwards does not change the design.
    pe : int
        Output channels computed in parallel; must divide C_out.
    simd : int
        Input bits consumed per cycle; must divide F.
    thresholds : int array (C_out,) or (C_out, P), or None
        Output bit = ``acc >= T[c]``, per channel, or per position:
        ``T[c, v mod P]`` for the v-th input vector since reset (P output
        positions per frame, XNOR-Net++ Gamma shapes 2-4), read in that order
        from the threshold ROM (:mod:`~hwgen.hw.engines.thresholds`).
        Values outside [-F, F] give constant outputs; they are saturated to
        [-F, F + 1] (same bits), so the threshold width stays small.
        ``None``: accumulator mode.
    directions : int array of +1 / -1 shaped like ``thresholds``, or None (all +1)
        -1: the output bit is ``acc <= T`` instead (an inversion bit per
        threshold word, stored only when some direction is -1).
    masked : bool (default True)
        False when no tap is ever padded (fully connected layers, convolutions
        without padding): the ``valid`` field of ``i`` is then ignored (it
        must be all ones), and the mask AND, its popcount and its buffer bits
        are not built; the weight ROM holds the inverted bits u = NOT w and
        the engine counts matches, popcount(x ^ u) (:mod:`~hwgen.hw.engines.popcount`),
        which threshold mode accumulates directly: the output bit is
        ``sum of matches >= ceil((F + T) / 2)`` (the same as ``2 * matches - F >= T``),
        so the accumulator starts at ``-ceil((F + T) / 2)``; accumulator mode
        adds dot = 2 * matches - SIMD.
    ecp5_cells : bool (default False)
        True on ECP5 (only matters when ``masked`` is False): the match count
        is built from ECP5 cells, CCU2C carry-chain cells with the XORs inside
        (2 LUT4 per 3 lanes) and LUT4 full adders
        (:mod:`~hwgen.hw.engines.popcount`).
    match_count_model : bool (default False)
        Simulation only: the match counts (``ecp5_cells``, not ``masked``) as
        instances of the simulation model that stands for the cells
        (:data:`~hwgen.hw.engines.popcount.MODEL_MODULE`), the same counts in
        the same cycles (:mod:`hwgen.sim.match_counts`).
    memory : MemoryMap or None
        Where the weight ROM and the input buffer go (the target family's,
        :class:`~hwgen.hw.families.MemoryMap`); None: the default target's.

    With NF = C_out / PE neuron folds and SF = F / SIMD synapse folds:

    Ports
    -----
    i : In(stream.Signature(StructLayout({"data": SIMD, "valid": SIMD})))
        One SIMD-wide slice of an input vector per beat, SF beats per vector.
        Bit k of ``data`` is element ``sf * SIMD + k`` (1 = +1, 0 = -1);
        ``valid`` bit k = 0 marks a padded tap that contributes 0.
        ``i.ready`` does not depend on ``i.valid`` nor on ``o.ready``.
    o : Out(stream.Signature(PE))  (threshold mode)
        One beat per neuron fold, NF beats per vector; bit p is channel
        ``nf * PE + p``.
    o : Out(stream.Signature(ArrayLayout(signed(acc_width), PE)))  (accumulator mode)
        Same order, element p is ``acc`` of channel ``nf * PE + p``.

    Schedule and pipeline
    ---------------------
    As :class:`~hwgen.hw.engines.folded.FoldedEngine` (steps nf-major, the
    input buffer of SF x 2*SIMD bits re-read for nf = 1..NF-1, credit flow
    control, :attr:`fifo_depth` = latency // SF + 1), with the term stages:
    issue (the weight ROM [fold][PE][SIMD] read at the step's address) -> S1
    (input slice, weight word) -> S2 (both registered again, so the block
    RAM's output only drives a register) -> popcount of XNOR(x, w) & valid
    (:func:`popcount_register_stages` stages: pair sums in LUT4s, then a
    balanced adder tree; popcount(valid) has the same shape, once for all
    PEs) -> dot = 2*popcount - popcount(valid) -> accumulator (threshold
    mode: the sign of acc - T) -> output FIFO. Not masked: S2 -> the match
    count (:func:`~hwgen.hw.engines.popcount.match_count_stages`) -> (dot,
    accumulator mode only) -> accumulator. The pipeline never stalls.

    Timing
    ------
    Throughput: one step per cycle while the input is offered (during nf = 0)
    and credits remain, i.e. :attr:`cycles_per_vector` = NF * SF cycles per
    vector, back to back. :attr:`latency`: cycles from the cycle of the last
    input beat of a vector (handshake) to the cycle its first output beat is
    valid (``5 + popcount_register_stages(SIMD)`` masked, ``4 + match_count_stages(SIMD)``
    not masked in threshold mode, one more in accumulator mode; two more with the input buffer in
    block RAM, :attr:`read_stages`); the beat of neuron fold nf
    follows nf * SF cycles later when nothing stalls.
    """

    #: Term stages outside the popcount: S1 (input slice, weight word), S2 (registered again) and the dot stage.
    _TERM_STAGES = 3

    def __init__(self, *, weights: np.ndarray, pe: int, simd: int, thresholds: np.ndarray | None,
                 directions: np.ndarray | None = None, masked: bool = True, ecp5_cells: bool = False,
                 match_count_model: bool = False, memory: MemoryMap | None = None) -> None:
        w = _check_weights(weights)
        c_out, fan_in = (int(n) for n in w.shape)
        pe = check_count("PE", pe)
        simd = check_count("SIMD", simd)
        if c_out % pe:
            raise BuildError(f"PE must divide C_out ({c_out}), not {pe}")
        if fan_in % simd:
            raise BuildError(f"SIMD must divide the fan-in F ({fan_in}), not {simd}")
        t = check_thresholds("MVTU", thresholds, c_out, directions)
        if not isinstance(masked, (bool, np.bool_)):
            raise BuildError(f"masked must be True or False, not {masked!r}")
        if not isinstance(ecp5_cells, (bool, np.bool_)):
            raise BuildError(f"ecp5_cells must be True or False, not {ecp5_cells!r}")
        self.ecp5_cells = bool(ecp5_cells)
        self.match_count_model = bool(match_count_model) and self.ecp5_cells
        # own copy; the match count of an unmasked engine reads the inverted bits
        self._weight_bits = (w == (1 if masked else -1)).astype(np.uint8)
        super().__init__(c_out=c_out, fan_in=fan_in, pe=pe, simd=simd, lane_bits=1,
                         acc_range=(-fan_in, fan_in), thresholds=t, masked=masked, memory=memory)

    @property
    def weight_rom_bits(self) -> int:
        """C_out * F: one bit per weight."""
        return self.c_out * self.fan_in

    def weight_words(self) -> list[int]:
        """Weight ROM contents: word nf*SF + sf, bit p*SIMD + k = weight bit (nf*PE + p, sf*SIMD + k)
        (1 = +1 when masked; inverted, 1 = -1, when not)."""
        return self._fold_words(self._weight_bits, 1)

    def term_latency(self) -> int:
        """Issue -> S1 -> S2 -> popcount -> dot (masked: :func:`popcount_register_stages`); not masked:
        the match count (:func:`~hwgen.hw.engines.popcount.match_count_stages`), then dot only in
        accumulator mode."""
        if self.masked:
            return self._TERM_STAGES + self.weight_word_stages + popcount_register_stages(self.simd)
        return (self._TERM_STAGES + self.weight_word_stages - (not self.accumulator_mode)
                + match_count_stages(self.simd))

    def _preloads(self, thresholds: np.ndarray) -> tuple[np.ndarray, tuple[int, int]]:
        """Not masked: the engine sums matches (range [0, F]); start = -ceil((F + T) / 2)."""
        if self.masked:
            return super()._preloads(thresholds)
        return (-(self.fan_in + thresholds)) // 2, (0, self.fan_in)

    # -- hardware ----------------------------------------------------------

    def elaborate(self, platform) -> Module:
        """The folded engine; with ECP5 cells and no mask, one carry chain per PE holds its lane adders,
        its final popcount adder and (threshold mode) its accumulator adder (``total = acc + count``)."""
        cells = self.ecp5_cells and not self.masked
        self._chains = [CarryChain(f"pe{p}_chain") if cells else None for p in range(self.pe)]
        m = super().elaborate(platform)
        for chain in self._chains:
            if chain is not None:
                chain.build(m)
        return m

    def _accumulate(self, m: Module, p: int, acc: Signal, term: Value) -> Value:
        """On PE p's carry chain when it has one (the count zero-extended to the accumulator's width)."""
        chain = self._chains[p]
        if chain is None:
            return super()._accumulate(m, p, acc, term)
        total = Signal(signed(len(acc)), name=f"total{p}")
        count = Cat(term, Const(0, max(0, len(acc) - len(term))))[:len(acc)]  # 0..SIMD fits the width
        m.d.comb += total.eq(chain_adder(chain, acc, count, carry_out=False))
        return total

    def _lane_sums(self, m: Module, s: Schedule, x: Value, v: Value) -> list[Value]:
        """Per PE: dot = 2 * popcount(XNOR(x, w) & v) - popcount(v), in [-SIMD, SIMD]; not masked, in
        threshold mode: the match count popcount(x ^ u), in [0, SIMD]."""
        PE, SIMD = self.pe, self.simd
        w2 = self._weight_rom(m, s.addr, "w2")  # the registered word at S2 (+ weight_word_stages)
        # the slice at S2, one register copy per PE: each drives its own PE's lanes (delay_copies)
        x2 = delay_copies(m, x, self.operand_copy_stages, PE, "x2")
        if not self.masked:
            counts = [match_count(m, x2[p], w2[p * SIMD:(p + 1) * SIMD], SIMD, f"mc{p}",
                                  ecp5_cells=self.ecp5_cells, chain=chain, model=self.match_count_model)
                      for p, chain in enumerate(self._chains)]
            if not self.accumulator_mode:
                return counts
            return _dots(m, counts, SIMD, SIMD)
        v2 = delay_copies(m, v, self.operand_copy_stages, PE, "v2")
        pcs = []
        for p in range(PE):
            # A named signal: the popcount slices it bit by bit, and a slice of an expression
            # would repeat the whole SIMD-wide expression in the netlist for every bit.
            match = Signal(SIMD, name=f"match{p}")
            m.d.comb += match.eq(~(x2[p] ^ w2[p * SIMD:(p + 1) * SIMD]) & v2[p])
            pcs.append(_popcount(m, match, SIMD, f"pc{p}"))
        return _dots(m, pcs, _popcount(m, v2[0], SIMD, "pcv"), SIMD)


def _dots(m: Module, counts: list[Value], valid: Value | int, simd: int) -> list[Signal]:
    """Registered dot = 2 * count - valid per PE (valid: the taps counted, SIMD without a mask), in [-SIMD, SIMD]."""
    dots = [Signal(signed(signed_bits(-simd, simd)), name=f"dot{p}") for p in range(len(counts))]
    m.d.sync += [d.eq((c << 1) - valid) for d, c in zip(dots, counts)]
    return dots


def _popcount(m: Module, bits: Value, n: int, name: str) -> Value:
    """Popcount of the n bits of ``bits``, :func:`popcount_register_stages` (n) cycles later.

    Pair level: lanes 2j and 2j+1 summed as (sum, carry) = (a ^ b, a & b),
    plain logic (no adder cell), registered; an odd last lane is registered
    alone. Then a balanced adder tree over the pair sums with exact node
    widths (a node of k pairs holds 0..2k).
    """
    pairs = []
    for j in range(0, n - 1, 2):
        a, b = bits[j], bits[j + 1]
        pair = Signal(2, name=f"{name}_p{j // 2}")
        m.d.sync += pair.eq(Cat(a ^ b, a & b))
        pairs.append(pair)
    if n % 2:
        odd = Signal(2, name=f"{name}_p{n // 2}")
        m.d.sync += odd.eq(bits[n - 1])
        pairs.append(odd)
    return adder_tree(m, pairs, lambda k: range(2 * k + 1), name)
