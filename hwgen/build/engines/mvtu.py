"""MVTU: the matrix-vector-threshold unit, one binary layer's XNOR-popcount engine.

See :class:`MVTU` for the ports, the arithmetic, the pipeline and its timing.
The arithmetic is the golden model's (DESIGN.md section 2,
:mod:`hwgen.compile.golden`): for input bits x, weight bits w and the tap mask
``valid`` of one SIMD-wide slice, ``2 * popcount(XNOR(x, w) & valid) - popcount(valid)``,
summed over the synapse folds of a vector.
"""

from __future__ import annotations

import numpy as np
from amaranth.hdl import Cat, Const, Module, Mux, Signal, Value, signed, unsigned
from amaranth.lib import stream, wiring
from amaranth.lib.data import ArrayLayout, StructLayout
from amaranth.lib.fifo import SyncFIFO
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from hwgen.compile.ir import signed_bits
from hwgen.errors import BuildError

__all__ = ["MVTU", "popcount_register_stages"]

#: Pipeline registers outside the popcount tree, from the issuing of a step to
#: its result in the output FIFO: the input / weight-memory stage (S1), the
#: dot-product stage, the accumulator stage and the output FIFO itself.
_FIXED_STAGES = 4


def _tree_levels(n: int) -> int:
    """Adder levels of a balanced binary tree over n leaves: ceil(log2 n), 0 for n == 1."""
    return (n - 1).bit_length()


def popcount_register_stages(simd: int) -> int:
    """Register stages of the popcount tree over ``simd`` bits: one every 2 adder levels."""
    return (_tree_levels(simd) + 1) // 2


def _pack_row(bits: np.ndarray) -> int:
    """A row of {0, 1} values as an int, element k on bit k."""
    return int.from_bytes(np.packbits(bits.astype(np.uint8), bitorder="little").tobytes(), "little")


def _check_count(what: str, value: object) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or value < 1:
        raise BuildError(f"{what} must be a positive integer, not {value!r}")
    return int(value)


def _check_weights(weights: object) -> np.ndarray:
    w = np.asarray(weights)
    if w.ndim != 2 or w.size == 0:
        raise BuildError(f"weights must be a non-empty (C_out, F) array, not shape {w.shape}")
    if not np.issubdtype(w.dtype, np.integer):
        raise BuildError(f"weights must be an integer array of +-1, not dtype {w.dtype}")
    if not np.all((w == 1) | (w == -1)):
        bad = w[(w != 1) & (w != -1)].ravel()[0]
        raise BuildError(f"binary weights must be +-1, found {int(bad)}")
    return w


def _check_thresholds(thresholds: object, c_out: int) -> np.ndarray | None:
    if thresholds is None:
        return None
    t = np.asarray(thresholds)
    if t.ndim == 3:
        raise BuildError(f"MVTU takes per-channel thresholds (C_out,) = ({c_out},); per-position "
                         f"thresholds {t.shape} are not supported by this engine")
    if t.shape != (c_out,):
        raise BuildError(f"thresholds must have shape (C_out,) = ({c_out},), not {t.shape}")
    if not np.issubdtype(t.dtype, np.integer):
        raise BuildError(f"thresholds must be an integer array, not dtype {t.dtype}")
    return t.astype(np.int64)


class MVTU(wiring.Component):
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
    thresholds : int array (C_out,) or None
        Output bit = ``acc >= T[c]`` (every channel already flipped to ``>=``).
        Values outside [-F, F] give constant outputs; they are saturated to
        [-F, F + 1] (same bits), so the threshold width stays small.
        ``None``: accumulator mode.

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

    Schedule
    --------
    One *step* (one synapse fold of one neuron fold) per cycle, in the order
    nf = 0..NF-1, sf = 0..SF-1. During nf = 0 the SF beats come from ``i`` and
    are written to an input buffer (SF x 2*SIMD bits, only when NF > 1);
    nf = 1..NF-1 re-read the buffer, so every input beat is consumed once and
    ``i.ready`` is low for the (NF-1)*SF cycles of those folds.

    Pipeline
    --------
    issue (schedule counters, memory addresses) -> S1 (input slice, weight word
    from the weight ROM [fold][PE][SIMD], XNOR & valid, 2 adder levels) ->
    popcount tree, balanced, a register every 2 adder levels
    (:func:`popcount_register_stages` stages; popcount(valid) shares the same
    tree shape once for all PEs) -> dot = 2*popcount - popcount(valid) ->
    accumulator (reset at sf = 0) -> compare with T[nf] (threshold ROM read
    alongside) -> output FIFO. The pipeline never stalls: a cycle without a
    step carries a bubble. Flow control is by credits: a step that completes a
    result (sf = SF-1) is issued only while fewer than :attr:`fifo_depth`
    results are in flight or waiting in the FIFO, so back-pressure on ``o``
    never drops or duplicates a result and there is no combinational path from
    ``o.ready`` to ``i.ready``. :attr:`fifo_depth` = latency // SF + 1 is just
    enough for full throughput.

    Timing
    ------
    Throughput: one step per cycle while the input is offered (during nf = 0)
    and credits remain, i.e. :attr:`cycles_per_vector` = NF * SF cycles per
    vector, back to back. :attr:`latency`: cycles from the cycle of the last
    input beat of a vector (handshake) to the cycle its first output beat is
    valid (``4 + popcount_register_stages(SIMD)``); the beat of neuron fold nf
    follows nf * SF cycles later when nothing stalls.
    """

    def __init__(self, *, weights: np.ndarray, pe: int, simd: int, thresholds: np.ndarray | None) -> None:
        w = _check_weights(weights)
        c_out, fan_in = (int(n) for n in w.shape)
        pe = _check_count("PE", pe)
        simd = _check_count("SIMD", simd)
        if c_out % pe:
            raise BuildError(f"PE must divide C_out ({c_out}), not {pe}")
        if fan_in % simd:
            raise BuildError(f"SIMD must divide the fan-in F ({fan_in}), not {simd}")
        t = _check_thresholds(thresholds, c_out)

        self.c_out, self.fan_in, self.pe, self.simd = c_out, fan_in, pe, simd
        self.nf, self.sf = c_out // pe, fan_in // simd
        self.acc_width = signed_bits(-fan_in, fan_in)
        self._weight_bits = (w == 1).astype(np.uint8)  # own copy
        if t is None:
            self._thresholds = None
            self.threshold_width = None
            out_shape = ArrayLayout(signed(self.acc_width), pe)
        else:
            self._thresholds = np.clip(t, -fan_in, fan_in + 1)
            self.threshold_width = signed_bits(int(self._thresholds.min()), int(self._thresholds.max()))
            out_shape = unsigned(pe)
        super().__init__({
            "i": In(stream.Signature(StructLayout({"data": simd, "valid": simd}))),
            "o": Out(stream.Signature(out_shape)),
        })

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
        return _FIXED_STAGES + popcount_register_stages(self.simd)

    @property
    def fifo_depth(self) -> int:
        """Output FIFO entries (= result credits): enough for full throughput."""
        return self.latency // self.sf + 1

    def weight_words(self) -> list[int]:
        """Weight ROM contents: word nf*SF + sf, bit p*SIMD + k = weight bit (nf*PE + p, sf*SIMD + k)."""
        b = self._weight_bits.reshape(self.nf, self.pe, self.sf, self.simd).transpose(0, 2, 1, 3)
        return [_pack_row(row) for row in b.reshape(self.nf * self.sf, self.pe * self.simd)]

    def threshold_words(self) -> list[int]:
        """Threshold ROM contents: word nf, field p (threshold_width bits) = T[nf*PE + p]."""
        tw = self.threshold_width
        words = []
        for row in self._thresholds.reshape(self.nf, self.pe):
            words.append(sum((int(v) & ((1 << tw) - 1)) << (p * tw) for p, v in enumerate(row)))
        return words

    # -- hardware ----------------------------------------------------------

    def elaborate(self, platform) -> Module:
        m = Module()
        PE, SIMD, NF, SF = self.pe, self.simd, self.nf, self.sf
        depth = self.fifo_depth

        # Schedule: one step per cycle when allowed.
        sf = Signal(range(SF))
        nf = Signal(range(NF))
        addr = Signal(range(NF * SF))
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
            with m.If(last_sf):
                m.d.sync += nf.eq(Mux(nf == NF - 1, 0, nf + 1))
        push = Signal()
        pop = Signal()
        m.d.comb += [push.eq(step & last_sf), pop.eq(self.o.valid & self.o.ready)]
        m.d.sync += pending.eq(pending + push - pop)

        # S1: weight word, input slice (stream or buffer), control.
        wmem = m.submodules.weights = Memory(shape=unsigned(PE * SIMD), depth=NF * SF, init=self.weight_words())
        wrd = wmem.read_port()
        m.d.comb += wrd.addr.eq(addr)

        x1 = Signal(SIMD)
        v1 = Signal(SIMD)
        m.d.sync += [x1.eq(self.i.payload.data), v1.eq(self.i.payload.valid)]
        if NF > 1:
            buf = m.submodules.input_buffer = Memory(shape=unsigned(2 * SIMD), depth=SF, init=[])
            bw = buf.write_port()
            br = buf.read_port()
            m.d.comb += [
                bw.addr.eq(sf), bw.data.eq(self.i.payload.as_value()), bw.en.eq(step & first_nf),
                br.addr.eq(sf),
            ]
            from_stream = Signal()
            m.d.sync += from_stream.eq(first_nf)
            x = Signal(SIMD)
            v = Signal(SIMD)
            m.d.comb += [x.eq(Mux(from_stream, x1, br.data[:SIMD])), v.eq(Mux(from_stream, v1, br.data[SIMD:]))]
        else:
            x, v = x1, v1

        ctl = {"valid": step, "first": sf == 0, "last": last_sf, "nf": nf}
        ctl = {k: _delay(m, Value.cast(s), 1, f"{k}_s1") for k, s in ctl.items()}

        # Popcount trees.
        pcs = []
        for p in range(PE):
            match = Signal(SIMD, name=f"match{p}")
            m.d.comb += match.eq(~(x ^ wrd.data[p * SIMD:(p + 1) * SIMD]) & v)
            pcs.append(_popcount(m, match, SIMD, f"pc{p}"))
        pcv = _popcount(m, v, SIMD, "pcv")
        stages = popcount_register_stages(SIMD)
        ctl = {k: _delay(m, s, stages, f"{k}_pc") for k, s in ctl.items()}

        # Dot stage: 2 * popcount - popcount(valid), in [-SIMD, SIMD].
        dots = [Signal(signed(signed_bits(-SIMD, SIMD)), name=f"dot{p}") for p in range(PE)]
        m.d.sync += [d.eq((pc << 1) - pcv) for d, pc in zip(dots, pcs)]
        ctl = {k: _delay(m, s, 1, f"{k}_dot") for k, s in ctl.items()}

        # Accumulator stage.
        accs = [Signal(signed(self.acc_width), name=f"acc{p}") for p in range(PE)]
        with m.If(ctl["valid"]):
            m.d.sync += [a.eq(Mux(ctl["first"], 0, a) + d) for a, d in zip(accs, dots)]
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
                m.d.comb += trd.addr.eq(ctl["nf"])  # read alongside the dot stage: ready at the acc stage
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


def _popcount(m: Module, bits: Value, n: int, name: str) -> Value:
    """Balanced adder tree over the n bits of ``bits``, a register after every 2 levels and the last.

    Returns the count after :func:`popcount_register_stages` (n) register stages
    (combinational for n == 1). Node widths are exact (a node of k leaves holds 0..k).
    """
    nodes: list[tuple[Value, int]] = [(bits[k], 1) for k in range(n)]
    levels = _tree_levels(n)
    for level in range(levels):
        paired = [(nodes[j][0] + nodes[j + 1][0], nodes[j][1] + nodes[j + 1][1])
                  for j in range(0, len(nodes) - 1, 2)]
        if len(nodes) % 2:
            paired.append(nodes[-1])
        nodes = paired
        if level % 2 == 1 or level == levels - 1:
            registered = []
            for j, (expr, top) in enumerate(nodes):
                reg = Signal(range(top + 1), name=f"{name}_l{level + 1}_{j}")
                m.d.sync += reg.eq(expr)
                registered.append((reg, top))
            nodes = registered
    assert len(nodes) == 1
    return nodes[0][0]
