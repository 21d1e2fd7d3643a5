"""The engine bench body shared by the cocotb test modules bench_*.py.

:func:`run_case` loads the case folder named by ``$HWGEN_SIM_CASE`` (see
:mod:`cases`), drives the engine's ``i`` stream with the case's inputs
(random gaps), takes ``o`` under random back-pressure, then idles for a while
to catch extra beats, decodes the outputs into maps and compares them with
the golden model (:func:`cases.expected_outputs`) through
:func:`hwgen.sim.scoreboard.compare_maps`. It writes ``result.json`` into the
case folder (cycles, beats, measured cycles per frame) and fails with the
first mismatch (frame, position, channels, values) or the protocol error.
With ``check_timing`` in the case (an unstalled run) it also asserts the
DUT's documented throughput.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
from cases import Case, expected_outputs, load_case
from cocotb.clock import Clock

from hwgen.sim.formats import (
    beats_to_map,
    decode_fold_beats,
    map_beats,
    vector_beats,
    window_vectors,
)
from hwgen.sim.scoreboard import compare_maps
from hwgen.sim.streams import Sink, Source, amaranth_pins, reset, run_streams


def stimulus(case: Case) -> list[int]:
    """The input beats: map beats (swu, pool) or window-vector slices (mvtu, mac)."""
    p, layer, x = case.params, case.layer, case.inputs
    if case.engine == "pool":
        return map_beats(x, p["width"])
    if case.engine == "swu":
        return map_beats(x, p["in_width"])
    data, valid = window_vectors(x, layer.kernel[0], layer.stride, layer.padding)
    return vector_beats(data, valid, p["simd"], p["lane_bits"])


def beats_per_frame(case: Case, expected: np.ndarray) -> int:
    """Output beats per frame of the engine."""
    p = case.params
    _, c, h, w = expected.shape
    if case.engine == "pool":
        return c * h * w // p["width"]
    if case.engine == "swu":
        return (c // 2) * h * w // p["simd"]
    return h * w * p["nf"]


def decode(case: Case, beats: list[int], shape: tuple[int, int, int]) -> np.ndarray:
    """Output beats (whole frames only) -> maps (N, C, H, W) in the layout of :func:`cases.expected_outputs`."""
    p = case.params
    c, h, w = shape
    if case.engine == "pool":
        per = c * h * w // p["width"]
        return beats_to_map(beats[:len(beats) // per * per], shape, p["width"])
    if case.engine == "swu":
        f, simd = c // 2, p["simd"]
        per = f * h * w // simd
        beats = beats[:len(beats) // per * per]
        data = np.array([[(b >> k) & 1 for k in range(simd)] for b in beats], dtype=np.uint8)
        valid = np.array([[(b >> (simd + k)) & 1 for k in range(simd)] for b in beats], dtype=np.uint8)
        data, valid = data.reshape(-1, h, w, f), valid.reshape(-1, h, w, f)
        return np.concatenate([data, valid], axis=-1).transpose(0, 3, 1, 2)
    vals = decode_fold_beats(beats, p["pe"], p["nf"], p["acc_width"])
    n = len(vals) // (h * w)
    return vals[:n * h * w].reshape(n, h, w, c).transpose(0, 3, 1, 2)


async def run_case(dut) -> None:
    folder = Path(os.environ["HWGEN_SIM_CASE"])
    case = load_case(folder)
    p = case.params
    expected = expected_outputs(case)  # the golden model
    in_beats = stimulus(case)
    n_frames = len(case.inputs)
    per_frame = beats_per_frame(case, expected)
    n_out = per_frame * n_frames

    Clock(dut.clk, 10, unit="ns").start()
    prefix = p.get("prefix", "")  # engines bundled in one model have their name as a port prefix
    src = Source(amaranth_pins(dut, f"{prefix}i"), in_beats, seed=p["seed"], gap_p=p["gap_p"])
    snk = Sink(amaranth_pins(dut, f"{prefix}o"), seed=p["seed"] + 1, stall_p=p["stall_p"])
    await reset(dut)
    slow = 1.0 / max(0.05, (1 - p["gap_p"]) * (1 - p["stall_p"]))
    budget = int((p["cycles_per_frame"] * n_frames + len(in_beats) + n_out) * slow * 2) + 200
    cycles = await run_streams(dut.clk, [src], [snk], until=lambda: src.done and len(snk.data) >= n_out,
                               max_cycles=budget)
    drain = 2 * p["cycles_per_frame"] + 50
    await run_streams(dut.clk, [src], [snk], until=lambda: False, max_cycles=drain, start=cycles)

    got = decode(case, snk.data, expected.shape[1:])
    first = snk.cycles[per_frame - 1::per_frame]  # last beat of every frame
    measured = (first[-1] - first[0]) / (len(first) - 1) if len(first) > 1 else None
    (folder / "result.json").write_text(json.dumps({
        "cycles": cycles, "in_beats": src.sent, "out_beats": len(snk.data), "expected_out_beats": n_out,
        "cycles_per_frame_measured": measured, "cycles_per_frame": p["cycles_per_frame"]}, indent=1))

    what = f"{case.engine} layer {case.layer.name!r}"
    problems = list(snk.errors)
    if not src.done:
        problems.append(f"{what}: only {src.sent}/{len(in_beats)} input beats were taken in {budget} cycles")
    if len(snk.data) != n_out:
        problems.append(f"{what}: {len(snk.data)} output beats, expected {n_out}")
    mismatch = compare_maps(got, expected, what)
    if mismatch is not None:
        problems.insert(0, mismatch if isinstance(mismatch, str) else mismatch.describe())
    if p.get("check_timing") and measured != p["cycles_per_frame"]:
        problems.append(f"{what}: {measured} cycles per frame measured, the DUT documents {p['cycles_per_frame']}")
    if problems:
        raise AssertionError("\n".join(problems))
