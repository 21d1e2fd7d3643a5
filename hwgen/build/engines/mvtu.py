"""MVTU: the matrix-vector-threshold unit, one binary layer's XNOR-popcount engine.

See :class:`MVTU` for the ports, the arithmetic, the pipeline and its timing;
the schedule, flow control, accumulator and output stage are
:class:`~hwgen.build.engines.folded.FoldedEngine`'s. The arithmetic is the
golden model's (DESIGN.md section 2, :mod:`hwgen.compile.golden`): for input
bits x, weight bits w and the tap mask ``valid`` of one SIMD-wide slice,
``2 * popcount(XNOR(x, w) & valid) - popcount(valid)``, summed over the
synapse folds of a vector.
"""

from __future__ import annotations

import numpy as np
from amaranth.hdl import Module, Signal, Value, signed

from hwgen.build.engines.folded import (
    FoldedEngine,
    Schedule,
    check_thresholds,
    check_weight_matrix,
)
from hwgen.build.engines.pipeline import adder_tree, tree_register_stages
from hwgen.build.engines.swu import check_count
from hwgen.compile.ir import signed_bits
from hwgen.errors import BuildError

__all__ = ["MVTU", "popcount_register_stages"]


def popcount_register_stages(simd: int) -> int:
    """Register stages of the popcount tree over ``simd`` bits: one every 2 adder levels."""
    return tree_register_stages(simd)


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

    Schedule and pipeline
    ---------------------
    As :class:`~hwgen.build.engines.folded.FoldedEngine` (steps nf-major, the
    input buffer of SF x 2*SIMD bits re-read for nf = 1..NF-1, credit flow
    control, :attr:`fifo_depth` = latency // SF + 1), with the term stages:
    issue (the weight ROM [fold][PE][SIMD] read at the step's address) -> S1
    (input slice, weight word; XNOR & valid, 2 adder levels) -> popcount tree,
    balanced, a register every 2 adder levels
    (:func:`popcount_register_stages` stages; popcount(valid) shares the same
    tree shape once for all PEs) -> dot = 2*popcount - popcount(valid) ->
    accumulator -> compare with T[nf] -> output FIFO. The pipeline never stalls.

    Timing
    ------
    Throughput: one step per cycle while the input is offered (during nf = 0)
    and credits remain, i.e. :attr:`cycles_per_vector` = NF * SF cycles per
    vector, back to back. :attr:`latency`: cycles from the cycle of the last
    input beat of a vector (handshake) to the cycle its first output beat is
    valid (``4 + popcount_register_stages(SIMD)``); the beat of neuron fold nf
    follows nf * SF cycles later when nothing stalls.
    """

    #: Term stages outside the popcount tree: S1 (input slice, weight word) and the dot stage.
    _TERM_STAGES = 2

    def __init__(self, *, weights: np.ndarray, pe: int, simd: int, thresholds: np.ndarray | None) -> None:
        w = _check_weights(weights)
        c_out, fan_in = (int(n) for n in w.shape)
        pe = check_count("PE", pe)
        simd = check_count("SIMD", simd)
        if c_out % pe:
            raise BuildError(f"PE must divide C_out ({c_out}), not {pe}")
        if fan_in % simd:
            raise BuildError(f"SIMD must divide the fan-in F ({fan_in}), not {simd}")
        t = check_thresholds("MVTU", thresholds, c_out)
        self._weight_bits = (w == 1).astype(np.uint8)  # own copy
        super().__init__(c_out=c_out, fan_in=fan_in, pe=pe, simd=simd, lane_bits=1,
                         acc_range=(-fan_in, fan_in), thresholds=t)

    @property
    def weight_rom_bits(self) -> int:
        """C_out * F: one bit per weight."""
        return self.c_out * self.fan_in

    def weight_words(self) -> list[int]:
        """Weight ROM contents: word nf*SF + sf, bit p*SIMD + k = weight bit (nf*PE + p, sf*SIMD + k)."""
        return self._fold_words(self._weight_bits, 1)

    # -- hardware ----------------------------------------------------------

    def _lane_sums(self, m: Module, s: Schedule, x: Value, v: Value) -> list[Value]:
        """Per PE: dot = 2 * popcount(XNOR(x, w) & v) - popcount(v), in [-SIMD, SIMD]."""
        PE, SIMD = self.pe, self.simd
        wrd = self._weight_rom(m, s.addr, 1)  # word ready at S1
        pcs = []
        for p in range(PE):
            match = Signal(SIMD, name=f"match{p}")
            m.d.comb += match.eq(~(x ^ wrd[p * SIMD:(p + 1) * SIMD]) & v)
            pcs.append(_popcount(m, match, SIMD, f"pc{p}"))
        pcv = _popcount(m, v, SIMD, "pcv")
        dots = [Signal(signed(signed_bits(-SIMD, SIMD)), name=f"dot{p}") for p in range(PE)]
        m.d.sync += [d.eq((pc << 1) - pcv) for d, pc in zip(dots, pcs)]
        return dots


def _popcount(m: Module, bits: Value, n: int, name: str) -> Value:
    """Popcount of the n bits of ``bits``: an adder tree, :func:`popcount_register_stages` (n) cycles later.

    Node widths are exact (a node of k leaves holds 0..k).
    """
    return adder_tree(m, [bits[k] for k in range(n)], lambda k: range(k + 1), name)
