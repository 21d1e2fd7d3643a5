"""cocotb bench of the whole accelerator (``hwgen_top``): N images in, scores and class out, vs the golden model.

Run by :func:`hwgen.sim.session.run_cocotb` with ``$HWGEN_SIM_CONFIG``
naming a JSON file:

``hwir``
    the IR the golden model runs (normally the build folder's ``net.hwir``);
``images``
    a ``.npy`` of uint8 images (N, C, H, W);
``trace``
    where to write the :class:`~hwgen.sim.trace.StreamTrace` (``.npz``);
``seed``, ``gap_p``, ``stall_p``
    the random input gaps and output back-pressure;
``in_width``
    bits of ``s_axis_tdata`` (optional, default 8; :func:`hwgen.sim.formats.pixel_beats`);
``max_cycles``, ``idle_limit``
    give up after this many cycles in all, or this many cycles without a handshake.

The bench resets the design, streams the images back to back on s_axis
(tlast on each frame's last beat), takes the m_axis words, idles a little
longer to catch extra words, writes the trace and fails with the
scoreboard's description of the first mismatching image (class and every
score against the golden model) or of the protocol error.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import cocotb
import numpy as np
from cocotb.clock import Clock

from hwgen.compile.artifact import load_network
from hwgen.compile.golden import run_network
from hwgen.sim.formats import pixel_beats, words_per_frame
from hwgen.sim.scoreboard import check_accelerator
from hwgen.sim.streams import Sink, Source, axis_pins, reset, run_streams
from hwgen.sim.trace import StreamTrace


@cocotb.test()
async def accelerator_matches_golden(dut):
    cfg = json.loads(Path(os.environ["HWGEN_SIM_CONFIG"]).read_text())
    net = load_network(cfg["hwir"])
    images = np.load(cfg["images"])
    n = len(images)
    k = words_per_frame(net.num_classes)
    in_width = int(cfg.get("in_width", 8))
    frame_beats = int(np.prod(images.shape[1:])) // (in_width // 8)
    beats = np.array(pixel_beats(images, in_width), dtype=object)
    lasts = np.zeros(len(beats), dtype=np.uint8)
    lasts[frame_beats - 1::frame_beats] = 1

    Clock(dut.clk, 10, unit="ns").start()
    src = Source(axis_pins(dut, "s_axis"), beats.tolist(), seed=cfg["seed"], gap_p=cfg["gap_p"],
                 lasts=lasts.tolist())
    dut.s_axis_tlast.value = 0
    snk = Sink(axis_pins(dut, "m_axis"), seed=cfg["seed"] + 1, stall_p=cfg["stall_p"])
    await reset(dut)

    idle_limit = int(cfg["idle_limit"])
    state = {"counts": (0, 0), "idle": 0}

    def finished() -> bool:
        if len(snk.data) >= n * k:
            return True
        counts = (src.sent, len(snk.data))
        state["idle"] = 0 if counts != state["counts"] else state["idle"] + 1
        state["counts"] = counts
        return state["idle"] > idle_limit

    t0 = time.monotonic()
    cycles = await run_streams(dut.clk, [src], [snk], until=finished, max_cycles=int(cfg["max_cycles"]))
    wall = time.monotonic() - t0
    stuck = len(snk.data) < n * k
    if not stuck:  # nothing more may come out
        before = len(snk.data)
        await run_streams(dut.clk, [src], [snk], until=lambda: False, max_cycles=min(idle_limit, 2000),
                          start=cycles)
        if len(snk.data) > before:
            snk.errors.append(f"{len(snk.data) - before} extra output words after the last frame")

    trace = StreamTrace.from_handshakes(net.num_classes, frame_beats, n, src.cycles, snk.data, snk.lasts,
                                        snk.cycles, cycles=cycles, wall_s=wall, stuck=stuck,
                                        protocol_errors=snk.errors)
    trace.save(cfg["trace"])
    scores, classes = trace.decoded()
    check = check_accelerator(net, images, scores, classes, golden=run_network(net, images),
                              protocol_errors=trace.errors())
    if not check.ok:
        raise AssertionError("\n".join([check.summary(), *([check.first_mismatch] if check.first_mismatch else [])]))
