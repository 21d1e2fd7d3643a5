"""Stream test helpers shared by the engine tests: bit-map packing, a driver/monitor, a checker.

``run_stream`` drives a component's ``i`` stream (``amaranth.lib.stream``,
valid/ready) with a list of raw payloads and random input gaps, takes every
beat of ``o`` under random back-pressure, checks the stream protocol on both
sides, and records the cycle of every handshake. Seeded, so a failure repeats.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import numpy as np
from amaranth.hdl import Value
from amaranth.sim import Simulator


def map_beats(frames: np.ndarray, width: int) -> list[int]:
    """Bit maps (N, C, H, W) -> raw beats of the map stream format, ``width`` bits per beat.

    Pixels in row-major order, frame after frame; pixel = C / width beats,
    beat q holds channels q*width .. q*width + width - 1, channel q*width + k on bit k.
    """
    c = frames.shape[1]
    assert c % width == 0
    chunks = frames.transpose(0, 2, 3, 1).reshape(-1, width).astype(np.int64)
    weights = 1 << np.arange(width, dtype=np.int64) if width < 63 else None
    if weights is not None:
        return [int(v) for v in chunks @ weights]
    return [sum(int(b) << k for k, b in enumerate(row)) for row in chunks]


def beats_to_map(beats: list[int], shape: tuple[int, int, int], width: int) -> np.ndarray:
    """The inverse of :func:`map_beats`: raw beats -> uint8 (N, C, H, W)."""
    c, h, w = shape
    per_frame = h * w * c // width
    assert len(beats) % per_frame == 0, f"{len(beats)} beats is not a whole number of frames of {per_frame}"
    bits = np.array([[(v >> k) & 1 for k in range(width)] for v in beats], dtype=np.uint8)
    return bits.reshape(-1, h, w, c).transpose(0, 3, 1, 2)


def mismatches(got: list, expected: list, limit: int = 10) -> list[str]:
    """The checker: every beat equal, none missing or extra (the first ``limit`` differences)."""
    errors = [f"beat {k}: got {g:#x}, expected {e:#x}" if isinstance(g, int) and isinstance(e, int)
              else f"beat {k}: got {g}, expected {e}"
              for k, (g, e) in enumerate(zip(got, expected)) if g != e][:limit]
    if len(got) != len(expected):
        errors.append(f"got {len(got)} beats, expected {len(expected)}")
    return errors


@dataclass
class Trace:
    outputs: list = field(default_factory=list)  # raw ints, or as a test decodes them
    in_cycles: list[int] = field(default_factory=list)
    out_cycles: list[int] = field(default_factory=list)
    cycles: int = 0


def run_stream(dut, in_beats: list[int], n_out: int, *, budget: int, seed: int = 0,
               gap_p: float = 0.0, stall_p: float = 0.0, drain: int = 16, ports=None) -> Trace:
    """Simulate ``dut`` until ``n_out`` output beats were taken, then ``drain`` idle cycles.

    Input: beat k is offered once the previous one was taken, after a random
    gap (probability ``gap_p`` per cycle of not offering); an offered beat stays
    offered, unchanged, until taken. Output: ``o.ready`` is low with
    probability ``stall_p`` each cycle; a beat seen valid and not taken must stay
    valid and unchanged. After the last expected beat, ``o.valid`` must stay
    low for ``drain`` cycles (nothing duplicated or extra) while the input is idle.
    ``ports``: the (input, output) streams as objects with ``valid``, ``ready``
    and ``payload``, when they are not ``dut.i`` and ``dut.o`` (e.g. AXI4-Stream signals).
    """
    rng = random.Random(seed)
    trace = Trace()
    port_i, port_o = ports if ports is not None else (dut.i, dut.o)
    i_payload = Value.cast(port_i.payload)
    o_payload = Value.cast(port_o.payload)

    async def bench(ctx):
        bi = cycle = 0
        offering = False
        held = None
        while len(trace.outputs) < n_out:
            assert cycle < budget, (f"timeout: {len(trace.outputs)}/{n_out} outputs and "
                                    f"{bi}/{len(in_beats)} inputs after {cycle} cycles")
            if not offering and bi < len(in_beats) and rng.random() >= gap_p:
                offering = True
                ctx.set(i_payload, in_beats[bi])
            ctx.set(port_i.valid, offering)
            ready = rng.random() >= stall_p
            ctx.set(port_o.ready, ready)
            if offering and ctx.get(port_i.ready):
                trace.in_cycles.append(cycle)
                bi += 1
                offering = False
            if ctx.get(port_o.valid):
                raw = ctx.get(o_payload)
                assert held is None or held == raw, f"output changed while stalled at cycle {cycle}"
                if ready:
                    trace.outputs.append(raw)
                    trace.out_cycles.append(cycle)
                    held = None
                else:
                    held = raw
            else:
                assert held is None, f"output valid dropped while stalled at cycle {cycle}"
            await ctx.tick()
            cycle += 1
        trace.cycles = cycle
        # Inputs that no output depends on (rows / columns dropped at the end
        # of the last frame) must still be taken; then nothing more comes out.
        ctx.set(port_o.ready, 1)
        for _ in range(drain + len(in_beats) - bi):
            if offering or bi < len(in_beats):
                ctx.set(i_payload, in_beats[bi])
                ctx.set(port_i.valid, 1)
                if ctx.get(port_i.ready):
                    trace.in_cycles.append(cycle)
                    bi += 1
            else:
                ctx.set(port_i.valid, 0)
            offering = False
            assert not ctx.get(port_o.valid), f"extra output beat at cycle {cycle}"
            await ctx.tick()
            cycle += 1
        assert bi == len(in_beats), f"only {bi}/{len(in_beats)} input beats were taken"

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return trace
