"""MAC unit: the first layer's engine, uint8 pixels times k-bit (or +-1) integer weights.

See :class:`MACUnit` for the ports, the arithmetic, the pipeline and its timing.
The arithmetic is the golden model's (DESIGN.md section 2,
:mod:`hwgen.compile.golden`, ``input_kind == "uint8"``): for pixels x of input
channel c with offset p_c, ``acc = sum over valid taps of W * (x - p_c)``,
padded taps contributing 0.
"""

from __future__ import annotations

import math

import numpy as np
from amaranth.hdl import Cat, Const, Module, Mux, Signal, Value, signed, unsigned
from amaranth.lib import stream, wiring
from amaranth.lib.data import ArrayLayout, StructLayout
from amaranth.lib.fifo import SyncFIFO
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from hwgen.build.engines.swu import check_count, check_divides
from hwgen.compile.ir import ConvLayer, ScoreOutput, accumulator_range, signed_bits
from hwgen.errors import BuildError

__all__ = ["MACUnit", "adder_tree_register_stages"]

#: Pipeline registers outside the adder tree, from the issuing of a step to its
#: result in the output FIFO: S1 (input slice, offsets), S2 (x - p masked by
#: valid; weight word), S3 (products), the accumulator and the output FIFO.
_FIXED_STAGES = 5

#: Widest weight field accepted (two's complement bits).
MAX_WEIGHT_BITS = 16

#: Bits per pixel element and of ``x - p`` (signed, in [-255, 255]).
_PIXEL_BITS = 8
_DIFF_BITS = 9
_DIFF_MAX = 255


def _tree_levels(n: int) -> int:
    """Adder levels of a balanced binary tree over n leaves: ceil(log2 n), 0 for n == 1."""
    return (n - 1).bit_length()


def adder_tree_register_stages(simd: int) -> int:
    """Register stages of the adder tree over ``simd`` products: one every 2 adder levels."""
    return (_tree_levels(simd) + 1) // 2


def _check_weights(weights: object) -> np.ndarray:
    w = np.asarray(weights)
    if w.ndim != 2 or w.size == 0:
        raise BuildError(f"weights must be a non-empty (C_out, F) array, not shape {w.shape}")
    if not np.issubdtype(w.dtype, np.integer):
        raise BuildError(f"weights must be an integer array, not dtype {w.dtype}")
    w = w.astype(np.int64)  # own copy
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


def _check_thresholds(thresholds: object, c_out: int) -> np.ndarray | None:
    if thresholds is None:
        return None
    t = np.asarray(thresholds)
    if t.ndim == 3:
        raise BuildError(f"MACUnit takes per-channel thresholds (C_out,) = ({c_out},); per-position "
                         f"thresholds {t.shape} are not supported by this engine")
    if t.shape != (c_out,):
        raise BuildError(f"thresholds must have shape (C_out,) = ({c_out},), not {t.shape}")
    if not np.issubdtype(t.dtype, np.integer):
        raise BuildError(f"thresholds must be an integer array, not dtype {t.dtype}")
    return t.astype(np.int64)


def _pack_fields(values, width: int) -> int:
    """Integers as consecutive ``width``-bit two's-complement fields, element k on bits k*width.."""
    mask = (1 << width) - 1
    word = 0
    for k, v in enumerate(values):
        word |= (int(v) & mask) << (k * width)
    return word


class MACUnit(wiring.Component):
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
    input_offset : int array (C_in,) in 0..255
        p_c, the pixel value that means 0 for input channel c.
    in_channels : int
        C_in; must divide F. Element f of the fan-in belongs to channel f mod C_in.
    pe : int
        Output channels computed in parallel; must divide C_out.
    simd : int
        Input elements consumed per cycle; must divide F. Any such value is
        legal (see *Offsets*); the SWU delivers SIMD dividing C_in.
    thresholds : int array (C_out,) or None
        Output bit = ``acc >= T[c]`` (already flipped to ``>=``). Values outside
        the accumulator range [lo, hi] (:attr:`acc_range`) give constant outputs
        and are saturated to [lo, hi + 1] (same bits). ``None``: accumulator mode.

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
    Threshold ROM (:meth:`threshold_words`, only when NF > 1): word nf, field p
    = T[nf*PE + p]. Input buffer (only when NF > 1): SF words of 9*SIMD bits
    (the raw beat), written during nf = 0 and re-read for nf = 1..NF-1.

    Pipeline
    --------
    issue (schedule counters, addresses) -> S1 (input slice from ``i`` or the
    buffer, offset word) -> S2 (per lane ``d = valid ? x - p : 0``, 9-bit
    signed; weight word read from the ROM) -> S3 (per PE and lane
    ``W * d``: a signed k x 9 multiplier, or ``W ? d : -d`` for binary
    weights) -> balanced adder tree per PE, a register every 2 adder levels
    (:func:`adder_tree_register_stages`), nodes sized exactly (capped at the
    accumulator width, which bounds every partial sum) -> accumulator (reset
    at sf = 0) -> compare with T[nf] (threshold ROM read alongside) -> output
    FIFO. The pipeline never stalls: a cycle without a step carries a bubble.
    Flow control by credits, as in the MVTU: a step completing a result
    (sf = SF-1) is issued only while fewer than :attr:`fifo_depth` results are
    in flight or waiting in the FIFO, so back-pressure on ``o`` never drops or
    duplicates a result, with no combinational path from ``o.ready`` to
    ``i.ready``. :attr:`fifo_depth` = latency // SF + 1: just enough for full
    throughput.

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
    to its first output beat being valid, ``5 + adder_tree_register_stages(SIMD)``;
    the beat of neuron fold nf follows nf * SF cycles later when nothing stalls.
    """

    def __init__(self, *, weights: np.ndarray, input_offset: np.ndarray, in_channels: int,
                 pe: int, simd: int, thresholds: np.ndarray | None) -> None:
        w = _check_weights(weights)
        c_out, fan_in = (int(n) for n in w.shape)
        c_in = check_count("in_channels", in_channels)
        check_divides("in_channels", c_in, "the fan-in F", fan_in)
        p = _check_offsets(input_offset, c_in)
        pe = check_divides("PE", check_count("PE", pe), "C_out", c_out)
        simd = check_divides("SIMD", check_count("SIMD", simd), "the fan-in F", fan_in)
        t = _check_thresholds(thresholds, c_out)

        self.c_out, self.fan_in, self.in_channels, self.pe, self.simd = c_out, fan_in, c_in, pe, simd
        self.nf, self.sf = c_out // pe, fan_in // simd
        self.offset_period = c_in // math.gcd(simd, c_in)
        self.binary_weights = bool(np.all(np.abs(w) == 1))
        self.weight_bits = 1 if self.binary_weights else signed_bits(int(w.min()), int(w.max()))
        self._weights = w
        self._offsets = p
        self.acc_range = self._accumulator_range()
        self.acc_width = signed_bits(*self.acc_range)
        if t is None:
            self._thresholds = None
            self.threshold_width = None
            out_shape = ArrayLayout(signed(self.acc_width), pe)
        else:
            lo, hi = self.acc_range
            self._thresholds = np.clip(t, lo, hi + 1)
            self.threshold_width = signed_bits(int(self._thresholds.min()), int(self._thresholds.max()))
            out_shape = unsigned(pe)
        super().__init__({
            "i": In(stream.Signature(StructLayout({"data": _PIXEL_BITS * simd, "valid": simd}))),
            "o": Out(stream.Signature(out_shape)),
        })

    def _accumulator_range(self) -> tuple[int, int]:
        """The exact accumulator range, from the IR's own definition (a (C_out, C_in, taps, 1) kernel)."""
        taps = self.fan_in // self.in_channels
        kernel = self._weights.reshape(self.c_out, taps, self.in_channels).transpose(0, 2, 1)[..., None]
        layer = ConvLayer(name="mac", in_shape=(self.in_channels, taps, 1), weights=kernel,
                          weight_bits=self.weight_bits, stride=1, padding=0, input_kind="uint8",
                          output=ScoreOutput(scale=np.ones(self.c_out, dtype=np.int64),
                                             bias=np.zeros(self.c_out, dtype=np.int64)),
                          input_offset=self._offsets)
        return accumulator_range(layer)

    # -- figures -----------------------------------------------------------

    @property
    def accumulator_mode(self) -> bool:
        return self._thresholds is None

    @property
    def cycles_per_vector(self) -> int:
        """Cycles per input vector at full throughput: NF * SF."""
        return self.nf * self.sf

    @property
    def latency(self) -> int:
        """Cycles from the last input beat of a vector to its first output beat (as built)."""
        return _FIXED_STAGES + adder_tree_register_stages(self.simd)

    @property
    def fifo_depth(self) -> int:
        """Output FIFO entries (= result credits): enough for full throughput."""
        return self.latency // self.sf + 1

    @property
    def weight_rom_bits(self) -> int:
        return self.c_out * self.fan_in * self.weight_bits

    def weight_words(self) -> list[int]:
        """Weight ROM contents: word nf*SF + sf, field p*SIMD + k = W[nf*PE + p, sf*SIMD + k]."""
        w = (self._weights == 1).astype(np.int64) if self.binary_weights else self._weights
        b = w.reshape(self.nf, self.pe, self.sf, self.simd).transpose(0, 2, 1, 3)
        return [_pack_fields(row, self.weight_bits) for row in b.reshape(self.nf * self.sf, -1)]

    def offset_words(self) -> list[int]:
        """Offset words by phase ph = sf mod offset_period: field k (8 bits) = p[(ph*SIMD + k) mod C_in]."""
        return [_pack_fields([self._offsets[(ph * self.simd + k) % self.in_channels] for k in range(self.simd)],
                             _PIXEL_BITS)
                for ph in range(self.offset_period)]

    def threshold_words(self) -> list[int]:
        """Threshold ROM contents: word nf, field p (threshold_width bits) = T[nf*PE + p]."""
        return [_pack_fields(row, self.threshold_width) for row in self._thresholds.reshape(self.nf, self.pe)]

    # -- hardware ----------------------------------------------------------

    def elaborate(self, platform) -> Module:
        m = Module()
        PE, SIMD, NF, SF = self.pe, self.simd, self.nf, self.sf
        WB, PERIOD = self.weight_bits, self.offset_period
        depth = self.fifo_depth

        # Schedule: one step per cycle when allowed (as the MVTU).
        sf = Signal(range(SF))
        nf = Signal(range(NF))
        addr = Signal(range(NF * SF))
        phase = Signal(range(PERIOD))
        pending = Signal(range(depth + 1))  # results issued and not yet taken from ``o``
        last_sf = sf == SF - 1
        first_nf = nf == 0
        can_issue = Signal()
        step = Signal()
        m.d.comb += [
            can_issue.eq(~last_sf | (pending != depth)),
            self.i.ready.eq(first_nf & can_issue),
            step.eq(can_issue & (~first_nf | self.i.valid)),
        ]
        with m.If(step):
            m.d.sync += [
                sf.eq(Mux(last_sf, 0, sf + 1)),
                addr.eq(Mux(addr == NF * SF - 1, 0, addr + 1)),
            ]
            if PERIOD > 1:  # PERIOD divides SF: wraps together with sf
                m.d.sync += phase.eq(Mux(phase == PERIOD - 1, 0, phase + 1))
            with m.If(last_sf):
                m.d.sync += nf.eq(Mux(nf == NF - 1, 0, nf + 1))
        push = Signal()
        pop = Signal()
        m.d.comb += [push.eq(step & last_sf), pop.eq(self.o.valid & self.o.ready)]
        m.d.sync += pending.eq(pending + push - pop)

        # S1: input slice (stream or buffer), offsets, weight ROM address.
        x1 = Signal(_PIXEL_BITS * SIMD)
        v1 = Signal(SIMD)
        m.d.sync += [x1.eq(self.i.payload.data), v1.eq(self.i.payload.valid)]
        if NF > 1:
            buf = m.submodules.input_buffer = Memory(shape=unsigned((_PIXEL_BITS + 1) * SIMD), depth=SF, init=[])
            bw = buf.write_port()
            br = buf.read_port()
            m.d.comb += [
                bw.addr.eq(sf), bw.data.eq(self.i.payload.as_value()), bw.en.eq(step & first_nf),
                br.addr.eq(sf),
            ]
            from_stream = Signal()
            m.d.sync += from_stream.eq(first_nf)
            x = Signal(_PIXEL_BITS * SIMD)
            v = Signal(SIMD)
            m.d.comb += [
                x.eq(Mux(from_stream, x1, br.data[:_PIXEL_BITS * SIMD])),
                v.eq(Mux(from_stream, v1, br.data[_PIXEL_BITS * SIMD:])),
            ]
        else:
            x, v = x1, v1
        offsets = self.offset_words()
        if PERIOD == 1:
            off = Const(offsets[0], _PIXEL_BITS * SIMD)
        else:
            off = Signal(_PIXEL_BITS * SIMD)
            with m.Switch(phase):
                for ph, word in enumerate(offsets):
                    with m.Case(ph):
                        m.d.sync += off.eq(word)
        addr1 = Signal.like(addr)
        m.d.sync += addr1.eq(addr)

        ctl = {"valid": step, "first": sf == 0, "last": last_sf, "nf": nf}
        ctl = {k: _delay(m, Value.cast(s), 1, f"{k}_s1") for k, s in ctl.items()}

        # S2: d = valid ? x - p : 0 per lane (9-bit signed); weight word from the ROM.
        wmem = m.submodules.weights = Memory(shape=unsigned(PE * SIMD * WB), depth=NF * SF,
                                             init=self.weight_words())
        wrd = wmem.read_port()
        m.d.comb += wrd.addr.eq(addr1)
        ds = []
        for k in range(SIMD):
            d = Signal(signed(_DIFF_BITS), name=f"d{k}")
            xk = x[k * _PIXEL_BITS:(k + 1) * _PIXEL_BITS]
            pk = off[k * _PIXEL_BITS:(k + 1) * _PIXEL_BITS]
            m.d.sync += d.eq(Mux(v[k], xk - pk, 0))
            ds.append(d)
        ctl = {k: _delay(m, s, 1, f"{k}_s2") for k, s in ctl.items()}

        # S3: products W * d per PE and lane.
        wmax = 1 if self.binary_weights else int(np.abs(self._weights).max())
        prod_bound = wmax * _DIFF_MAX
        prod_width = min(signed_bits(-prod_bound, prod_bound), self.acc_width)
        sums = []
        for p in range(PE):
            prods = []
            for k in range(SIMD):
                field = wrd.data[(p * SIMD + k) * WB:(p * SIMD + k + 1) * WB]
                prod = Signal(signed(prod_width), name=f"prod{p}_{k}")
                if self.binary_weights:
                    m.d.sync += prod.eq(Mux(field, ds[k], -ds[k]))
                else:
                    m.d.sync += prod.eq(field.as_signed() * ds[k])
                prods.append(prod)
            sums.append(_adder_tree(m, prods, prod_bound, self.acc_width, f"sum{p}"))
        ctl = {k: _delay(m, s, 1, f"{k}_s3") for k, s in ctl.items()}
        ctl = {k: _delay(m, s, adder_tree_register_stages(SIMD), f"{k}_tree") for k, s in ctl.items()}

        # Accumulator stage.
        accs = [Signal(signed(self.acc_width), name=f"acc{p}") for p in range(PE)]
        with m.If(ctl["valid"]):
            m.d.sync += [a.eq(Mux(ctl["first"], 0, a) + s) for a, s in zip(accs, sums)]
        done = Signal()
        m.d.sync += done.eq(ctl["valid"] & ctl["last"])

        # Output: compare (threshold mode) and FIFO.
        if self.accumulator_mode:
            result = Cat(*accs)
        else:
            tw = self.threshold_width
            if NF == 1:
                ts = [Const(int(t), signed(tw)) for t in self._thresholds]
            else:
                tmem = m.submodules.thresholds = Memory(shape=unsigned(PE * tw), depth=NF,
                                                        init=self.threshold_words())
                trd = tmem.read_port()
                m.d.comb += trd.addr.eq(ctl["nf"])  # read alongside the tree output: ready at the acc stage
                ts = [trd.data[p * tw:(p + 1) * tw].as_signed() for p in range(PE)]
            result = Cat(*[a >= t for a, t in zip(accs, ts)])
        fifo = m.submodules.out_fifo = SyncFIFO(width=len(result), depth=depth)
        m.d.comb += [
            fifo.w_en.eq(done),
            fifo.w_data.eq(result),
            self.o.valid.eq(fifo.r_rdy),
            self.o.payload.eq(fifo.r_data),
            fifo.r_en.eq(self.o.ready),
        ]
        return m


def _delay(m: Module, sig: Value, n: int, name: str) -> Value:
    """``sig`` delayed by n registers."""
    for k in range(n):
        reg = Signal(sig.shape(), name=f"{name}{k}" if n > 1 else name)
        m.d.sync += reg.eq(sig)
        sig = reg
    return sig


def _adder_tree(m: Module, leaves: list[Value], leaf_bound: int, max_width: int, name: str) -> Value:
    """Balanced adder tree over signed ``leaves`` (each in [-leaf_bound, leaf_bound]).

    A register after every 2 adder levels and after the last, so the sum comes
    :func:`adder_tree_register_stages` (len(leaves)) cycles later (the leaf
    itself for one leaf). A node of n leaves is sized for [-n*leaf_bound,
    n*leaf_bound], at most ``max_width`` bits (the accumulator's, which holds
    every partial sum of a channel).
    """
    nodes: list[tuple[Value, int]] = [(leaf, 1) for leaf in leaves]
    levels = _tree_levels(len(leaves))
    for level in range(levels):
        paired = [(nodes[j][0] + nodes[j + 1][0], nodes[j][1] + nodes[j + 1][1])
                  for j in range(0, len(nodes) - 1, 2)]
        if len(nodes) % 2:
            paired.append(nodes[-1])
        nodes = paired
        if level % 2 == 1 or level == levels - 1:
            registered = []
            for j, (expr, count) in enumerate(nodes):
                bound = count * leaf_bound
                reg = Signal(signed(min(signed_bits(-bound, bound), max_width)), name=f"{name}_l{level + 1}_{j}")
                m.d.sync += reg.eq(expr)
                registered.append((reg, count))
            nodes = registered
    assert len(nodes) == 1
    return nodes[0][0]
