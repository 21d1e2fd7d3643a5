"""The engines' FIFOs (hwgen.hw.engines.fifo): a wide FIFO in lockstep slices behaves as one SyncFIFO.

Random words through :class:`SlicedFIFO` under random write gaps and read
stalls (the protocol checks of :func:`streams.run_stream`): every word comes
out once, in order, unchanged, on the same cycles as through a plain
:class:`SyncFIFO` of the same width and depth driven by the same random
schedule. :func:`sliced_fifo` gives the same FIFO (flags from flip-flops) when one slice
holds the whole width.
"""

from __future__ import annotations

import random
from types import SimpleNamespace

import pytest
from streams import run_stream

from amaranth.lib import fifo

from hwgen.hw.engines.fifo import SlicedFIFO, SyncFIFO, sliced_fifo

WIDTH = 150


def ports(fifo):
    """The FIFO's write and read sides as the (input, output) streams of run_stream."""
    return (SimpleNamespace(valid=fifo.w_en, ready=fifo.w_rdy, payload=fifo.w_data),
            SimpleNamespace(valid=fifo.r_rdy, ready=fifo.r_en, payload=fifo.r_data))


@pytest.mark.parametrize("depth", [1, 3, 7])
@pytest.mark.parametrize("seed", range(3))
def test_slices_in_lockstep_match_one_fifo(depth: int, seed: int) -> None:
    rng = random.Random(seed)
    words = [rng.getrandbits(WIDTH) for _ in range(60)] + [0, (1 << WIDTH) - 1]
    sliced = SlicedFIFO(width=WIDTH, depth=depth, slice_bits=64)
    assert sliced.bounds == [(0, 64), (64, 128), (128, 150)]
    plain = SyncFIFO(width=WIDTH, depth=depth)
    traces = [run_stream(dut, words, len(words), budget=4000, seed=seed, gap_p=0.3, stall_p=0.5,
                         drain=depth + 4, ports=ports(dut)) for dut in (sliced, plain)]
    assert traces[0].outputs == words
    assert (traces[0].in_cycles, traces[0].out_cycles) == (traces[1].in_cycles, traces[1].out_cycles)


@pytest.mark.parametrize("depth", [1, 2, 5])
def test_one_slice_matches_one_fifo(depth: int) -> None:
    """Where one slice holds the whole width, sliced_fifo still gives the FIFO whose w_rdy and r_rdy are
    flip-flops: the same words on the same cycles as the plain SyncFIFO."""
    rng = random.Random(depth)
    words = [rng.getrandbits(WIDTH) for _ in range(60)]
    one = sliced_fifo(width=WIDTH, depth=depth, slice_bits=WIDTH)
    assert isinstance(one, SlicedFIFO) and one.bounds == [(0, WIDTH)]
    plain = SyncFIFO(width=WIDTH, depth=depth)
    traces = [run_stream(dut, words, len(words), budget=4000, seed=depth, gap_p=0.3, stall_p=0.5,
                         drain=depth + 4, ports=ports(dut)) for dut in (one, plain)]
    assert traces[0].outputs == words
    assert (traces[0].in_cycles, traces[0].out_cycles) == (traces[1].in_cycles, traces[1].out_cycles)


@pytest.mark.parametrize("depth", [1, 2, 5])
@pytest.mark.parametrize("slice_bits", [64, WIDTH])
def test_output_register_matches_a_buffered_fifo(depth: int, slice_bits: int) -> None:
    """With ``output_register`` the read side is one register stage after the slices: the same words on the
    same cycles as Amaranth's SyncFIFOBuffered holding one word more (depth slots and the output register)."""
    rng = random.Random(depth * 7 + slice_bits)
    words = [rng.getrandbits(WIDTH) for _ in range(60)] + [0, (1 << WIDTH) - 1]
    registered = sliced_fifo(width=WIDTH, depth=depth, slice_bits=slice_bits, output_register=True)
    buffered = fifo.SyncFIFOBuffered(width=WIDTH, depth=depth + 1)
    traces = [run_stream(dut, words, len(words), budget=4000, seed=depth, gap_p=0.3, stall_p=0.5,
                         drain=depth + 6, ports=ports(dut)) for dut in (registered, buffered)]
    assert traces[0].outputs == words
    assert (traces[0].in_cycles, traces[0].out_cycles) == (traces[1].in_cycles, traces[1].out_cycles)
