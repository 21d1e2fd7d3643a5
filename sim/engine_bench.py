"""The engine bench body shared by the cocotb test modules bench_*.py.

:func:`run_case` loads the case folder named by ``$HWGEN_SIM_CASE`` (see
:mod:`cases`); the case's engine kind (:data:`engine_kinds.ENGINES`) gives
the input beats per input stream, the output port, the output beats per
frame, their decoding and the golden model's maps. It drives every input
stream with its own :class:`~hwgen.sim.streams.Source` (its own random gaps:
stream k is seeded ``seed + 2k``), takes the output under random
back-pressure (seed ``seed + 1``), then idles for a while to catch extra
beats, decodes the outputs into maps and compares them with the golden model
through :func:`hwgen.sim.scoreboard.compare_maps`. It writes ``result.json``
into the case folder (cycles, beats, measured cycles per frame) and fails
with the first mismatch (frame, position, channels, values) or the protocol
error. With ``check_timing`` in the case (an unstalled run) it also asserts
the DUT's documented throughput.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from cases import load_case
from cocotb.clock import Clock
from engine_kinds import engine_kind

from hwgen.sim.scoreboard import compare_maps
from hwgen.sim.streams import Sink, Source, amaranth_pins, reset, run_streams


async def run_case(dut) -> None:
    folder = Path(os.environ["HWGEN_SIM_CASE"])
    case = load_case(folder)
    kind = engine_kind(case.engine)
    p = case.params
    expected = kind.expected(case)  # the golden model
    n_frames = len(expected)
    per_frame = kind.beats_per_frame(case, expected.shape[1:])
    n_out = per_frame * n_frames

    Clock(dut.clk, 10, unit="ns").start()
    prefix = p.get("prefix", "")  # engines bundled in one model have their name as a port prefix
    stimulus = kind.stimulus(case)  # (port, beats) per input stream
    ports = [port for port, _ in stimulus]
    sources = [Source(amaranth_pins(dut, f"{prefix}{port}"), beats, seed=p["seed"] + 2 * k, gap_p=p["gap_p"])
               for k, (port, beats) in enumerate(stimulus)]
    snk = Sink(amaranth_pins(dut, f"{prefix}{kind.output}"), seed=p["seed"] + 1, stall_p=p["stall_p"])
    await reset(dut)
    in_beats = max(len(src.beats) for src in sources)
    slow = 1.0 / max(0.05, (1 - p["gap_p"]) ** len(sources) * (1 - p["stall_p"]))
    budget = int((p["cycles_per_frame"] * n_frames + in_beats + n_out) * slow * 2) + 200
    cycles = await run_streams(dut.clk, sources, [snk], until=lambda: all(s.done for s in sources)
                               and len(snk.data) >= n_out, max_cycles=budget)
    drain = 2 * p["cycles_per_frame"] + 50
    await run_streams(dut.clk, sources, [snk], until=lambda: False, max_cycles=drain, start=cycles)

    got = kind.decode(case, snk.data, expected.shape[1:])
    first = snk.cycles[per_frame - 1::per_frame]  # last beat of every frame
    measured = (first[-1] - first[0]) / (len(first) - 1) if len(first) > 1 else None
    sent = {port: src.sent for port, src in zip(ports, sources)}
    (folder / "result.json").write_text(json.dumps({
        "cycles": cycles, "in_beats": sent if len(sent) > 1 else sources[0].sent, "out_beats": len(snk.data),
        "expected_out_beats": n_out, "cycles_per_frame_measured": measured,
        "cycles_per_frame": p["cycles_per_frame"]}, indent=1))

    what = f"{case.engine} layer {case.layer.name!r}"
    problems = list(snk.errors)
    for port, src in zip(ports, sources):
        if not src.done:
            problems.append(f"{what}: only {src.sent}/{len(src.beats)} input beats on {port!r} were taken in "
                            f"{budget} cycles")
    if len(snk.data) != n_out:
        problems.append(f"{what}: {len(snk.data)} output beats, expected {n_out}")
    mismatch = compare_maps(got, expected, what)
    if mismatch is not None:
        problems.insert(0, mismatch if isinstance(mismatch, str) else mismatch.describe())
    if p.get("check_timing") and measured != p["cycles_per_frame"]:
        problems.append(f"{what}: {measured} cycles per frame measured, the DUT documents {p['cycles_per_frame']}")
    if problems:
        raise AssertionError("\n".join(problems))
