"""cocotb valid/ready stream driver and monitor (AXI4-Stream or ``amaranth.lib.stream`` ports).

A :class:`Source` offers a list of beats with seeded random gaps; a
:class:`Sink` takes beats under seeded random back-pressure and checks the
protocol; :func:`run_streams` clocks them together. One coroutine does all the
work, two triggers per cycle:

* at the falling edge, every source and sink sets its outputs for the next
  rising edge (``valid`` + data, ``ready``);
* in the ``ReadOnly`` phase of the same time step (the design settled with
  those inputs, so a ``ready`` that depends on ``valid`` is seen correctly)
  every side records the handshakes the rising edge will perform.

Rules (AXI4-Stream, and ``amaranth.lib.stream``'s):

* Source: beat k is offered once beat k-1 was taken; each cycle it is not
  yet offered it is offered with probability ``1 - gap_p``; once offered it
  stays offered, unchanged, until taken.
* Sink: ``ready`` is low with probability ``stall_p`` each cycle. A beat seen
  valid and not taken must stay valid with the same data (and ``last``);
  anything else is recorded in :attr:`Sink.errors`.

Cycle numbers count rising edges since :func:`run_streams` started: a
handshake recorded at cycle t happens at the t-th rising edge.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from cocotb.triggers import FallingEdge, ReadOnly, RisingEdge

__all__ = ["Pins", "Sink", "Source", "amaranth_pins", "axis_pins", "reset", "run_streams"]


@dataclass
class Pins:
    """Handles of one stream's signals (``last`` optional)."""

    valid: Any
    ready: Any
    data: Any
    last: Any = None


def amaranth_pins(dut, port: str) -> Pins:
    """An ``amaranth.lib.stream`` port as exported to Verilog: ``PORT__valid``, ``PORT__ready``, ``PORT__payload``."""
    return Pins(getattr(dut, f"{port}__valid"), getattr(dut, f"{port}__ready"), getattr(dut, f"{port}__payload"))


def axis_pins(dut, prefix: str) -> Pins:
    """AXI4-Stream signals ``PREFIX_tvalid``, ``_tready``, ``_tdata``, ``_tlast``."""
    return Pins(getattr(dut, f"{prefix}_tvalid"), getattr(dut, f"{prefix}_tready"),
                getattr(dut, f"{prefix}_tdata"), getattr(dut, f"{prefix}_tlast", None))


async def reset(dut, cycles: int = 4) -> None:
    """Synchronous active-high ``rst`` for ``cycles`` rising edges, released at a falling edge."""
    dut.rst.value = 1
    for _ in range(cycles):
        await RisingEdge(dut.clk)
    await FallingEdge(dut.clk)
    dut.rst.value = 0


def _unsigned(value) -> int:
    """A handle's value as an int: a LogicArray (vectors) or a Logic (1-bit signals)."""
    return value.to_unsigned() if hasattr(value, "to_unsigned") else int(value)


class Source:
    """Offers ``beats`` (ints) on ``pins`` with random gaps; ``lasts``: the ``last`` bit per beat (optional)."""

    def __init__(self, pins: Pins, beats: Sequence[int], *, seed: int = 0, gap_p: float = 0.0,
                 lasts: Sequence[int] | None = None) -> None:
        self.pins = pins
        self.beats = [int(b) for b in beats]
        self.lasts = None if lasts is None else [int(v) for v in lasts]
        self.rng = random.Random(seed)
        self.gap_p = gap_p
        self.sent = 0
        self.cycles: list[int] = []  # handshake cycle of every beat
        self._offering = False
        self._valid_driven = None
        pins.valid.value = 0

    @property
    def done(self) -> bool:
        return self.sent == len(self.beats)

    def drive(self, cycle: int) -> None:
        if not self._offering and self.sent < len(self.beats) and (
                self.gap_p <= 0 or self.rng.random() >= self.gap_p):
            self._offering = True
            self.pins.data.value = self.beats[self.sent]
            if self.lasts is not None and self.pins.last is not None:
                self.pins.last.value = self.lasts[self.sent]
        if self._valid_driven != self._offering:
            self.pins.valid.value = int(self._offering)
            self._valid_driven = self._offering

    def sample(self, cycle: int) -> None:
        if self._offering and self.pins.ready.value:
            self.cycles.append(cycle)
            self.sent += 1
            self._offering = False


class Sink:
    """Takes beats from ``pins`` under random back-pressure; records data, ``last`` and cycles; checks the protocol."""

    def __init__(self, pins: Pins, *, seed: int = 1, stall_p: float = 0.0, max_errors: int = 10) -> None:
        self.pins = pins
        self.rng = random.Random(seed)
        self.stall_p = stall_p
        self.data: list[int] = []
        self.lasts: list[int] = []
        self.cycles: list[int] = []
        self.errors: list[str] = []
        self.max_errors = max_errors
        self._ready = False
        self._held: tuple[int, int] | None = None  # a beat seen valid and not taken
        self._ready_driven = None

    def drive(self, cycle: int) -> None:
        self._ready = self.stall_p <= 0 or self.rng.random() >= self.stall_p
        if self._ready_driven != self._ready:
            self.pins.ready.value = int(self._ready)
            self._ready_driven = self._ready

    def sample(self, cycle: int) -> None:
        if not self.pins.valid.value:
            if self._held is not None:
                self._error(f"cycle {cycle}: valid dropped before beat {len(self.data)} was taken")
                self._held = None
            return
        beat = (_unsigned(self.pins.data.value),
                int(self.pins.last.value) if self.pins.last is not None else 0)
        if self._held is not None and beat != self._held:
            self._error(f"cycle {cycle}: beat {len(self.data)} changed while stalled "
                        f"({self._held[0]:#x} -> {beat[0]:#x})")
        if self._ready:
            self.data.append(beat[0])
            self.lasts.append(beat[1])
            self.cycles.append(cycle)
            self._held = None
        else:
            self._held = beat

    def _error(self, msg: str) -> None:
        if len(self.errors) < self.max_errors:
            self.errors.append(msg)


async def run_streams(clk, sources: Sequence[Source], sinks: Sequence[Sink], *, until: Callable[[], bool],
                      max_cycles: int, start: int = 0) -> int:
    """Clock ``sources`` and ``sinks`` until ``until()`` is true after a cycle, or ``max_cycles`` cycles.

    Returns the cycle count reached (``start`` + cycles run). Call it right
    after a falling edge or reset (it first waits for the next falling edge
    only when already past one). Does not raise on timeout: the caller
    compares what came out with what it expected.
    """
    cycle = start
    sides = [*sources, *sinks]
    end = start + max_cycles
    while cycle < end:
        for side in sides:
            side.drive(cycle)
        await ReadOnly()
        for side in sides:
            side.sample(cycle)
        cycle += 1
        await FallingEdge(clk)
        if until():
            break
    return cycle
