"""Test helpers shared by the folded-engine tests (MVTU, MACUnit): beats in, beats out, timing checks.

An engine takes SF slices per input vector (element k of slice sf on
``data`` bits ``lane_bits * k ..``, its valid bit on ``valid`` bit k) and gives
NF beats per vector (bit p / accumulator p is channel ``nf * PE + p``).
:func:`simulate` drives it through :func:`streams.run_stream`;
:func:`beats_from_acc` turns reference accumulators (N, C_out) into the beats
the checker (:func:`streams.mismatches`) compares; :func:`check_timing` asserts
throughput (NF * SF cycles per vector) and the documented latency.
"""

from __future__ import annotations

import numpy as np
from streams import Trace, run_stream

from hwgen.compile.golden import apply_threshold
from hwgen.compile.ir import ThresholdOutput


def beats_from_acc(dut, acc: np.ndarray, thresholds: np.ndarray | None) -> list:
    """Output beats in stream order: per vector, per neuron fold (raw int, or a tuple of accumulators)."""
    beats = []
    if thresholds is None:
        for row in acc:
            for nf in range(dut.nf):
                beats.append(tuple(int(a) for a in row[nf * dut.pe:(nf + 1) * dut.pe]))
        return beats
    out = ThresholdOutput(thresholds=np.asarray(thresholds, dtype=np.int64),
                          direction=np.ones(len(thresholds), dtype=np.int8))
    bits = apply_threshold(acc[:, :, None, None], out)[:, :, 0, 0]
    for row in bits:
        for nf in range(dut.nf):
            beats.append(sum(int(b) << p for p, b in enumerate(row[nf * dut.pe:(nf + 1) * dut.pe])))
    return beats


def decode(dut, raw: int):
    """A raw output payload as the checker compares it: as is, or PE signed accumulators."""
    if not dut.accumulator_mode:
        return raw
    w = dut.acc_width
    vals = []
    for p in range(dut.pe):
        f = (raw >> (p * w)) & ((1 << w) - 1)
        vals.append(f - (1 << w) if f >> (w - 1) else f)
    return tuple(vals)


def input_beats(dut, x: np.ndarray, valid: np.ndarray) -> list[int]:
    """Raw i.payload values: per vector, SF slices; element k on data bits lane_bits*k.., valid bits above."""
    s = dut.simd
    lane_bits = len(dut.i.payload.data) // s
    beats = []
    for xv, vv in zip(x, valid):
        for sf in range(dut.sf):
            data = sum(int(b) << (lane_bits * k) for k, b in enumerate(xv[sf * s:(sf + 1) * s]))
            mask = sum(int(b) << k for k, b in enumerate(vv[sf * s:(sf + 1) * s]))
            beats.append(data | (mask << (lane_bits * s)))
    return beats


def simulate(dut, x: np.ndarray, valid: np.ndarray, *, seed: int = 0,
             gap_p: float = 0.0, stall_p: float = 0.0) -> Trace:
    """Drive all vectors through ``dut`` with random input gaps / output stalls; collect every output beat.

    :func:`streams.run_stream` checks the protocol on the way (an offered input
    beat stays offered until taken, an output beat not taken stays valid and
    unchanged, no extra beats afterwards); the outputs come back decoded.
    """
    n_out = len(x) * dut.nf
    budget = (len(x) * dut.cycles_per_vector + dut.latency) * (3 + int(10 * (gap_p + stall_p))) + 50
    trace = run_stream(dut, input_beats(dut, x, valid), n_out, budget=budget, seed=seed,
                       gap_p=gap_p, stall_p=stall_p, drain=dut.latency + dut.cycles_per_vector + 4)
    trace.outputs = [decode(dut, raw) for raw in trace.outputs]
    return trace


def check_timing(dut, trace: Trace, n: int) -> None:
    """An unstalled run of n vectors: NF*SF cycles per vector back to back, the documented latency."""
    nf, sf = dut.nf, dut.sf
    first_out = trace.out_cycles[::nf]
    measured = (first_out[-1] - first_out[0]) / (n - 1)
    assert abs(measured - dut.cycles_per_vector) <= 0.05 * dut.cycles_per_vector
    assert measured == dut.cycles_per_vector  # in fact exact
    # Whole run: NF*SF cycles per vector plus the pipeline fill.
    assert trace.out_cycles[-1] - trace.in_cycles[0] == n * nf * sf - 1 + dut.latency
    # Latency: last input beat of vector 0 to its first output beat.
    assert first_out[0] - trace.in_cycles[sf - 1] == dut.latency
    # Within a vector, neuron folds follow each other every SF cycles.
    assert all(b - a == sf for a, b in zip(trace.out_cycles[:nf - 1], trace.out_cycles[1:nf]))
