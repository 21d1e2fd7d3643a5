"""Drive the whole accelerator in Amaranth's simulator: images in over AXI4-Stream, words out, golden words.

The AXI4-Stream ports are wrapped (the input as ``acc.in_width``-bit beats, :func:`hwgen.sim.formats.pixel_beats`) as streams for :func:`streams.run_stream`
(protocol checks, random gaps and back-pressure); an output beat is the pair
(tdata, tlast). :func:`golden_words` gives what the accelerator must send:
per image the class scores as 32-bit words, then the class with tlast.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
from amaranth.hdl import Cat
from streams import Trace, run_stream

from hwgen.hw.accelerator import WORD_BITS, Accelerator
from hwgen.compile.golden import run_network
from hwgen.sim.formats import pixel_beats

MASK = (1 << WORD_BITS) - 1


def golden_words(net, images: np.ndarray) -> list[tuple[int, int]]:
    """(tdata, tlast) per output word: scores as two's complement words, then the class."""
    g = run_network(net, images)
    words = []
    for scores, cls in zip(g.scores, g.predictions):
        words += [(int(s) & MASK, 0) for s in scores] + [(int(cls), 1)]
    return words


def simulate_accelerator(acc: Accelerator, images: np.ndarray, *, budget: int, seed: int = 0,
                         gap_p: float = 0.0, stall_p: float = 0.0) -> Trace:
    """Stream ``images`` through ``acc``; ``trace.outputs`` holds (tdata, tlast) pairs."""
    n_words = len(images) * (acc.net.num_classes + 1)
    port_i = SimpleNamespace(valid=acc.s_axis_tvalid, ready=acc.s_axis_tready, payload=acc.s_axis_tdata)
    port_o = SimpleNamespace(valid=acc.m_axis_tvalid, ready=acc.m_axis_tready,
                             payload=Cat(acc.m_axis_tdata, acc.m_axis_tlast))
    trace = run_stream(acc, pixel_beats(images, acc.in_width), n_words, budget=budget, seed=seed, gap_p=gap_p,
                       stall_p=stall_p, ports=(port_i, port_o), drain=64)
    trace.outputs = [(v & MASK, v >> WORD_BITS) for v in trace.outputs]
    return trace


def frame_intervals(acc: Accelerator, trace: Trace) -> np.ndarray:
    """Cycles between the class words (tlast) of consecutive frames."""
    last = trace.out_cycles[acc.net.num_classes::acc.net.num_classes + 1]
    return np.diff(last)
