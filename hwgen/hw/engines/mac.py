"""MAC unit: uint8 pixels (the first layer) or binary inputs (a k-bit last layer) times k-bit / +-1 weights.

See :class:`MACUnit` for the ports, the arithmetic, the pipeline and its timing;
the schedule, flow control, accumulator and output stage are
:class:`~hwgen.hw.engines.folded.FoldedEngine`'s. The arithmetic is the
golden model's (DESIGN.md section 2, :mod:`hwgen.compile.golden`,
``input_kind == "uint8"``): for pixels x of input channel c with offset p_c,
``acc = sum over valid taps of W * (x - p_c)``, padded taps contributing 0.
"""

from __future__ import annotations

import math

import numpy as np
from amaranth.hdl import Const, Module, Mux, Signal, Value, signed

from hwgen.hw.engines.folded import (
    FoldedEngine,
    Schedule,
    check_thresholds,
    check_weight_matrix,
    pack_fields,
)
from hwgen.hw.engines.pipeline import adder_tree, delay, delay_copies, tree_register_stages
from hwgen.hw.engines.swu import check_count, check_divides
from hwgen.hw.families import MemoryMap
from hwgen.compile.ir import ConvLayer, ScoreOutput, accumulator_range, signed_bits
from hwgen.errors import BuildError

__all__ = ["MACUnit", "adder_tree_register_stages", "tree_node_bits"]

#: Widest weight field accepted (two's complement bits).
MAX_WEIGHT_BITS = 16

#: Bits per pixel element and of ``x - p`` (signed, in [-255, 255]).
_PIXEL_BITS = 8
_DIFF_BITS = 9
_DIFF_MAX = 255


def adder_tree_register_stages(simd: int) -> int:
    """Register stages of the adder tree over ``simd`` products: one every 2 adder levels."""
    return tree_register_stages(simd)


def _check_weights(weights: object) -> np.ndarray:
    w = check_weight_matrix(weights, "an integer array").astype(np.int64)  # own copy
    limit = (1 << (MAX_WEIGHT_BITS - 1)) - 1
    if int(np.abs(w).max()) > limit:
        bad = w[np.abs(w) > limit].ravel()[0]
        raise BuildError(f"weights must lie in the signed {MAX_WEIGHT_BITS}-bit range "
                         f"[-{limit}, {limit}], found {int(bad)}")
    return w


def _check_offsets(offsets: object, c_in: int) -> np.ndarray:
    p = np.asarray(offsets)
    if p.shape != (c_in,):
        raise BuildError(f"input_offset must have shape (in_channels,) = ({c_in},), not {p.shape}")
    if not np.issubdtype(p.dtype, np.integer):
        raise BuildError(f"input_offset must be an integer array, not dtype {p.dtype}")
    if p.min() < 0 or p.max() > 255:
        bad = p[(p < 0) | (p > 255)].ravel()[0]
        raise BuildError(f"input_offset values must lie in 0..255, found {int(bad)}")
    return p.astype(np.int64)  # own copy


def _accumulator_range(weights: np.ndarray, offsets: np.ndarray | None, c_in: int,
                       weight_bits: int) -> tuple[int, int]:
    """The exact accumulator range, from the IR's own definition (a (C_out, C_in, taps, 1) kernel).

    ``offsets`` None: binary inputs (values +-1, 0 when padded).
    """
    c_out, fan_in = weights.shape
    taps = fan_in // c_in
    kernel = weights.reshape(c_out, taps, c_in).transpose(0, 2, 1)[..., None]
    layer = ConvLayer(name="mac", in_shape=(c_in, taps, 1), weights=kernel,
                      weight_bits=weight_bits, stride=1, padding=0,
                      input_kind="binary" if offsets is None else "uint8",
                      output=ScoreOutput(scale=np.ones(c_out, dtype=np.int64),
                                         bias=np.zeros(c_out, dtype=np.int64)),
                      input_offset=offsets)
    return accumulator_range(layer)


class MACUnit(FoldedEngine):
    """Multiply-accumulate unit: PE output channels x SIMD uint8 input elements per cycle.

    Computes, for each input vector x (F uint8 elements, with a tap mask
    ``valid``) and output channel c,
    ``acc_c = sum_{f valid} W[c, f] * (x_f - p[f mod C_in])``, then either the bit
    ``acc_c >= T[c]`` (threshold mode) or ``acc_c`` itself (accumulator mode).

    Parameters (keyword-only; a :class:`~hwgen.errors.BuildError` names any violation)
    ----------
    weights : int array (C_out, F)
        F = KH*KW*C_in in (i, j, c) order, c fastest (the SWU's order). Either
        all +-1 (*binary*: 1 bit per weight, a conditional negate per lane) or
        any integers of at most :data:`MAX_WEIGHT_BITS` bits (*k-bit*: stored
        in the smallest two's-complement width holding them, a signed
        multiplier per lane). Copied: later changes do not change the design.
    input_offset : int array (C_in,) in 0..255, or None
        p_c, the pixel value that means 0 for input channel c (uint8 inputs);
        None for binary inputs.
    input_kind : "uint8" (default) or "binary"
        Binary inputs (a k-bit layer after binary ones, e.g. an int8 last
        layer): elements are bits b standing for 2b - 1, 1 bit per element on
        ``i``, and the term is ``b ? W : -W`` (0 when padded).
    masked : bool (default True)
        False when no tap is ever padded: ``valid`` is ignored and not buffered.
    memory : MemoryMap or None
        Where the weight ROM and the input buffer go (the target family's,
        :class:`~hwgen.hw.families.MemoryMap`); None: the default target's.
    in_channels : int
        C_in; must divide F. Element f of the fan-in belongs to channel f mod C_in.
    pe : int
        Output channels computed in parallel; must divide C_out.
    simd : int
        Input elements consumed per cycle; must divide F. Any such value is
        legal (see *Offsets*); the SWU delivers SIMD dividing C_in.
    thresholds : int array (C_out,) or (C_out, P), or None
        Output bit = ``acc >= T[c]``, per channel or per position (``T[c, v mod P]``
        for the v-th input vector, as :class:`~hwgen.hw.engines.mvtu.MVTU`).
        Values outside the accumulator range [lo, hi] (:attr:`acc_range`) give
        constant outputs and are saturated to [lo, hi + 1] (same bits).
        ``None``: accumulator mode.
    directions : int array of +1 / -1 shaped like ``thresholds``, or None (all +1)
        -1: the output bit is ``acc <= T`` (as the MVTU's).

    With NF = C_out / PE neuron folds and SF = F / SIMD synapse folds:

    Ports
    -----
    i : In(stream.Signature(StructLayout({"data": 8 * SIMD, "valid": SIMD})))
        One SIMD-wide slice of an input vector per beat, SF beats per vector.
        ``data`` bits 8k..8k+7 are element ``sf * SIMD + k`` (uint8);
        ``valid`` bit k = 0 marks a padded tap, which contributes 0 (its data
        is don't-care). ``i.ready`` does not depend on ``i.valid`` nor ``o.ready``.
    o : Out(stream.Signature(PE))  (threshold mode)
        One beat per neuron fold, NF beats per vector; bit p is channel ``nf * PE + p``.
    o : Out(stream.Signature(ArrayLayout(signed(acc_width), PE)))  (accumulator mode)
        Same order, element p is ``acc`` of channel ``nf * PE + p``.

    Offsets
    -------
    Lane k of synapse fold sf holds channel ``(sf * SIMD + k) mod C_in``. That
    pattern repeats every :attr:`offset_period` = C_in / gcd(SIMD, C_in) folds,
    and the period divides SF (F is a multiple of C_in), so a phase counter
    that wraps with sf selects one of ``offset_period`` constant offset words
    (:meth:`offset_words`). SIMD a multiple of C_in: period 1, the offsets are
    constants per lane; SIMD dividing C_in: period C_in / SIMD. So SIMD need
    only divide F, like the MVTU.

    Memory layout
    -------------
    Weight ROM (:meth:`weight_words`): word ``nf * SF + sf``, field
    ``p * SIMD + k`` (:attr:`weight_bits` bits) = W[nf*PE + p, sf*SIMD + k]
    ([fold][PE][SIMD]); binary weights are stored as the bit (W == +1).
    Threshold ROM (:meth:`threshold_words`, only when NF * P > 1): word
    ``pos * NF + nf``, field p = the start value -T of the next result, then
    the inversion bits (:mod:`~hwgen.hw.engines.thresholds`). Input buffer (only when NF > 1): SF words of 9*SIMD bits
    (the raw beat), written during nf = 0 and re-read for nf = 1..NF-1.

    Pipeline
    --------
    As :class:`~hwgen.hw.engines.folded.FoldedEngine` (steps nf-major,
    credit flow control: back-pressure on ``o`` never drops or duplicates a
    result, no combinational path from ``o.ready`` to ``i.ready``;
    :attr:`fifo_depth` = latency // SF + 1, just enough for full throughput),
    with the term stages: issue (schedule counters, addresses, offset phase)
    -> S1 (input slice from ``i`` or the buffer, offset word) -> S2 (per lane
    ``d = valid ? x - p : 0``, 9-bit signed; weight word read from the ROM)
    -> S3 (both registered again, so the block RAM's output only drives a
    register) -> S4 (per PE and lane ``W * d``: a signed k x 9 multiplier, or
    ``W ? d : -d`` for binary weights, ``W ? d : ~d`` with inverted terms,
    below) -> balanced adder tree per PE, a
    register every 2 adder levels (:func:`adder_tree_register_stages`), nodes
    sized exactly (capped at the accumulator width, which bounds every partial
    sum) -> accumulator (reset at sf = 0) -> compare with T[nf] (threshold ROM
    read alongside) -> output FIFO. The pipeline never stalls: a cycle without
    a step carries a bubble.

    Inverted terms
    --------------
    Binary weights on uint8 pixels in threshold mode (:attr:`inverted_terms`):
    the lane's term is ``W ? d : ~d`` = ``W * d - [W = -1]`` (two's complement:
    ``~d = -d - 1``), nine LUTs and no negating adder per lane (TFC's fc0 at
    8 x 7, LUT4 before packing: 2,397 with negating products, 1,008 of them
    the products; 1,890 with inverted terms; docs/synth.md). The missing
    ones sum, over a result, to N_c = channel c's count of -1 weights (every
    tap, padded ones too: their d = 0 gives ``~0 = -1``), a constant: the
    start value is -T + N_c (:meth:`_preloads`), so ``start + sum of terms
    >= 0`` is the same bit. Terms lie in [-256, 255] and a tree node over n
    lanes in [lo - n, hi], which sizes the nodes (still exact). Accumulator
    mode keeps ``W ? d : -d`` (its output is the sum itself).

    Accumulator width
    -----------------
    :attr:`acc_width` = the signed width of the exact range
    (:func:`hwgen.compile.ir.accumulator_range`: per tap W * v with v in
    [-p_c, 255 - p_c]). Every tap's range contains 0, so every partial sum
    (tree node, accumulator over folds) lies in the same range: no overflow.

    Timing
    ------
    Throughput: one step per cycle while the input is offered (during nf = 0)
    and credits remain: :attr:`cycles_per_vector` = NF * SF, back to back.
    :attr:`latency`: cycles from the last input beat of a vector (handshake)
    to its first output beat being valid, ``6 + adder_tree_register_stages(SIMD)``
    (two more with the input buffer in block RAM, :attr:`read_stages`);
    the beat of neuron fold nf follows nf * SF cycles later when nothing stalls.
    """

    #: Term stages outside the adder tree: S1 (input slice, offsets), S2 (x - p masked by valid;
    #: weight word) and S3 (products).
    _TERM_STAGES = 4

    def __init__(self, *, weights: np.ndarray, input_offset: np.ndarray | None, in_channels: int,
                 pe: int, simd: int, thresholds: np.ndarray | None, directions: np.ndarray | None = None,
                 input_kind: str = "uint8", masked: bool = True, memory: MemoryMap | None = None) -> None:
        w = _check_weights(weights)
        c_out, fan_in = (int(n) for n in w.shape)
        c_in = check_count("in_channels", in_channels)
        check_divides("in_channels", c_in, "the fan-in F", fan_in)
        if input_kind not in ("uint8", "binary"):
            raise BuildError(f"input_kind must be 'uint8' or 'binary', not {input_kind!r}")
        self.binary_inputs = input_kind == "binary"
        if self.binary_inputs and input_offset is not None:
            raise BuildError("binary inputs take no input_offset (give None)")
        p = None if self.binary_inputs else _check_offsets(input_offset, c_in)
        pe = check_divides("PE", check_count("PE", pe), "C_out", c_out)
        simd = check_divides("SIMD", check_count("SIMD", simd), "the fan-in F", fan_in)
        t = check_thresholds("MACUnit", thresholds, c_out, directions)

        self.in_channels = c_in
        self.offset_period = 1 if self.binary_inputs else c_in // math.gcd(simd, c_in)
        self.binary_weights = bool(np.all(np.abs(w) == 1))
        self.weight_bits = 1 if self.binary_weights else signed_bits(int(w.min()), int(w.max()))
        #: Binary weights on uint8 pixels in threshold mode: each lane's term is ``W ? d : ~d`` (see *Inverted
        #: terms*), the -1 weights counted back into the start values.
        self.inverted_terms = self.binary_weights and not self.binary_inputs and t is not None
        self._negatives = np.count_nonzero(w == -1, axis=1)  # N_c: -1 weights of channel c (inverted terms)
        self._weights = w
        self._offsets = p
        super().__init__(c_out=c_out, fan_in=fan_in, pe=pe, simd=simd,
                         lane_bits=1 if self.binary_inputs else _PIXEL_BITS,
                         acc_range=_accumulator_range(w, p, c_in, self.weight_bits), thresholds=t,
                         masked=bool(masked), memory=memory)

    # -- figures -----------------------------------------------------------

    @property
    def weight_rom_bits(self) -> int:
        return self.c_out * self.fan_in * self.weight_bits

    def weight_words(self) -> list[int]:
        """Weight ROM contents: word nf*SF + sf, field p*SIMD + k = W[nf*PE + p, sf*SIMD + k]."""
        w = (self._weights == 1).astype(np.int64) if self.binary_weights else self._weights
        return self._fold_words(w, self.weight_bits)

    def offset_words(self) -> list[int]:
        """Offset words by phase ph = sf mod offset_period: field k (8 bits) = p[(ph*SIMD + k) mod C_in]."""
        if self.binary_inputs:
            return [0]
        return [pack_fields([self._offsets[(ph * self.simd + k) % self.in_channels] for k in range(self.simd)],
                            _PIXEL_BITS)
                for ph in range(self.offset_period)]

    def _preloads(self, thresholds: np.ndarray) -> tuple[np.ndarray, tuple[int, int]]:
        """Threshold mode with :attr:`inverted_terms`: the step sums are sums of ``W ? d : ~d`` =
        ``W * d - [W = -1]`` (``~d = -d - 1``), so start = -T + N_c (N_c: channel c's -1 weights, every tap's:
        a padded tap's d = 0 gives ~0 = -1 as well) and a partial sum of the terms lies in [lo - F, hi];
        otherwise start = -T (the base rule)."""
        if not self.inverted_terms:
            return super()._preloads(thresholds)
        lo, hi = self.acc_range
        return -thresholds + self._negatives[:thresholds.shape[0], None], (lo - self.fan_in, hi)

    @property
    def difference_bits(self) -> int:
        """Bits of a lane's difference d (``dK``, S2; signed): 2 on bits (d in {-1, 0, 1}), else 9 (x - p)."""
        return 2 if self.binary_inputs else _DIFF_BITS

    def term_shape(self) -> tuple[int, int, int]:
        """(B, product bits, widest tree node bits): every lane's term (``prodP_K``, S4) lies in [-B, B], in
        the signed width of that range (at most the widest node's); a tree node over n terms holds
        :func:`tree_node_bits` (n, B, widest) bits, the widest the accumulator's (with inverted terms, the
        terms lie in [-256, 255] and a partial sum of n of them in [lo - n, hi]: widest = signed_bits(lo -
        SIMD, hi))."""
        wmax = 1 if self.binary_weights else int(np.abs(self._weights).max())
        bound = wmax * (1 if self.binary_inputs else _DIFF_MAX)
        widest = self.acc_width
        if self.inverted_terms:
            bound = _DIFF_MAX + 1
            widest = signed_bits(self.acc_range[0] - self.simd, self.acc_range[1])
        return bound, min(signed_bits(-bound, bound - self.inverted_terms), widest), widest

    # -- hardware ----------------------------------------------------------

    def _lane_sums(self, m: Module, s: Schedule, x: Value, v: Value) -> list[Value]:
        """Per PE: the adder tree over lanes k of ``W[p, k] * (valid_k ? x_k - p_k : 0)``."""
        PE, SIMD = self.pe, self.simd
        WB, PERIOD = self.weight_bits, self.offset_period

        # Issue: offset phase (wraps with sf: PERIOD divides SF). S1: offset word, ROM address.
        phase = Signal(range(PERIOD))
        if PERIOD > 1:
            with m.If(s.step):
                m.d.sync += phase.eq(Mux(phase == PERIOD - 1, 0, phase + 1))
        offsets = self.offset_words()
        if PERIOD == 1:
            off = Const(offsets[0], _PIXEL_BITS * SIMD)
        else:
            off = Signal(_PIXEL_BITS * SIMD)
            with m.Switch(phase):
                for ph, word in enumerate(offsets):
                    with m.Case(ph):
                        m.d.sync += off.eq(word)
        addr1 = delay(m, s.addr, 1, "addr1")

        # S2: d = valid ? x - p : 0 per lane (9-bit signed; 2b - 1 for binary inputs); weight word from the ROM.
        ds = []
        for k in range(SIMD):
            d = Signal(signed(self.difference_bits), name=f"d{k}")
            if self.binary_inputs:
                m.d.sync += d.eq(Mux(v[k], Mux(x[k], 1, -1), 0))
            else:
                xk = x[k * _PIXEL_BITS:(k + 1) * _PIXEL_BITS]
                pk = off[k * _PIXEL_BITS:(k + 1) * _PIXEL_BITS]
                m.d.sync += d.eq(Mux(v[k], xk - pk, 0))
            ds.append(d)

        # S3: the weight word and the differences registered once more, so the block RAM's output
        # only drives a register (measured: ROM -> product in one cycle limited a design to 61 MHz).
        # (+ weight_word_stages: a weight ROM in block RAM, :meth:`~hwgen.hw.engines.folded.FoldedEngine._weight_rom`)
        # The differences' last register in one copy per PE (delay_copies): each lane's difference feeds
        # every PE's product (CNV --pe 16, conv0 at PE 64, seed 2: one d3 register to 64 products, 12.05 ns
        # of routing, 72.58 MHz).
        wrd = self._weight_rom(m, addr1, "w3")
        ds = [delay_copies(m, d, self.operand_copy_stages, PE, f"d3_{k}") for k, d in enumerate(ds)]

        # S4: products W * d per PE and lane (inverted terms: W ? d : ~d, one LUT per bit and no carry chain),
        # then the adder trees.
        prod_bound, prod_width, tree_width = self.term_shape()
        sums = []
        for p in range(PE):
            prods = []
            for k in range(SIMD):
                field = wrd[(p * SIMD + k) * WB:(p * SIMD + k + 1) * WB]
                prod = Signal(signed(prod_width), name=f"prod{p}_{k}")
                if self.inverted_terms:
                    m.d.sync += prod.eq(Mux(field, ds[k][p], ~ds[k][p]))
                elif self.binary_weights:
                    m.d.sync += prod.eq(Mux(field, ds[k][p], -ds[k][p]))
                else:
                    m.d.sync += prod.eq(field.as_signed() * ds[k][p])
                prods.append(prod)
            sums.append(_adder_tree(m, prods, prod_bound, tree_width, f"sum{p}"))
        return sums


def _adder_tree(m: Module, leaves: list[Value], leaf_bound: int, max_width: int, name: str) -> Value:
    """Balanced adder tree over signed ``leaves`` (each in [-leaf_bound, leaf_bound]).

    :func:`adder_tree_register_stages` (len(leaves)) cycles later. A node of n
    leaves is sized for [-n*leaf_bound, n*leaf_bound], at most ``max_width``
    bits (the accumulator's, which holds every partial sum of a channel).
    """
    return adder_tree(m, leaves, lambda n: signed(tree_node_bits(n, leaf_bound, max_width)), name)


def tree_node_bits(n: int, leaf_bound: int, max_width: int) -> int:
    """Bits of an adder-tree node over n leaves in [-leaf_bound, leaf_bound]: the signed width of n times
    that range, at most ``max_width``."""
    return min(signed_bits(-n * leaf_bound, n * leaf_bound), max_width)
