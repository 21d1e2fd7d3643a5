"""UART receiver and transmitter in Amaranth's simulator: framing, back-to-back bytes, baud error, bad stop bits.

The line waveforms come from ``tests/uart_wave.py`` (an independent
encoder / decoder of 8N1 characters, fractional bit lengths allowed).
"""

from __future__ import annotations

import random

import pytest
from amaranth.sim import Simulator
from uart_wave import decode, encode

from hwgen.boards.uart import MIN_DIVISOR, UARTReceiver, UARTTransmitter, uart_divisor
from hwgen.errors import BoardError

pytestmark = pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")


def receive(levels: list[int], divisor: int) -> tuple[list[int], list[int], list[int]]:
    """Drive ``levels`` (one per cycle) into a UARTReceiver: (bytes, cycle of each, cycles of error pulses)."""
    dut = UARTReceiver(divisor=divisor)
    got, cycles, errors = [], [], []

    async def bench(ctx):
        for t, level in enumerate(levels):
            ctx.set(dut.rx, level)
            await ctx.tick()
            if ctx.get(dut.o.valid):
                got.append(ctx.get(dut.o.payload))
                cycles.append(t)
            if ctx.get(dut.error):
                errors.append(t)

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    return got, cycles, errors


def transmit(data: bytes, divisor: int, *, gaps: list[int] | None = None, tail: int = 0) -> tuple[list[int], list[int]]:
    """Offer ``data`` to a UARTTransmitter (after ``gaps[k]`` idle cycles before byte k): (line levels, take cycles)."""
    dut = UARTTransmitter(divisor=divisor)
    levels, taken = [], []
    gaps = gaps or [0] * len(data)

    async def bench(ctx):
        t = 0
        for byte, gap in zip(data, gaps):
            for _ in range(gap):
                levels.append(ctx.get(dut.tx))
                await ctx.tick()
                t += 1
            ctx.set(dut.i.payload, byte)
            ctx.set(dut.i.valid, 1)
            while True:
                ready = ctx.get(dut.i.ready)
                levels.append(ctx.get(dut.tx))
                await ctx.tick()
                t += 1
                if ready:
                    taken.append(t - 1)
                    break
            ctx.set(dut.i.valid, 0)
        for _ in range(11 * divisor + tail):
            levels.append(ctx.get(dut.tx))
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    return levels, taken


# -- transmitter ---------------------------------------------------------------

@pytest.mark.parametrize("divisor", [4, 7, 16])
def test_transmitter_frames_one_byte(divisor: int) -> None:
    levels, taken = transmit(bytes([0x4B]), divisor)
    assert taken == [0] and levels[0] == 1  # idle high until the byte is taken
    start = levels.index(0)
    assert start == 1  # the start bit begins the cycle after the handshake
    expected = [0] * divisor + sum(([(0x4B >> j) & 1] * divisor for j in range(8)), []) + [1] * divisor
    assert levels[start:start + 10 * divisor] == expected
    assert set(levels[start + 10 * divisor:]) == {1}


def test_transmitter_sends_back_to_back_bytes_without_gaps() -> None:
    data = bytes(random.Random(3).randrange(256) for _ in range(40))
    levels, taken = transmit(data, 8)
    got, starts, problems = decode(levels, 8)
    assert not problems and bytes(got) == data
    assert [b - a for a, b in zip(starts, starts[1:])] == [80] * (len(data) - 1)  # exactly 10 bits per byte
    assert [b - a for a, b in zip(taken, taken[1:])] == [80] * (len(data) - 1)


def test_transmitter_with_idle_gaps_between_bytes() -> None:
    rng = random.Random(4)
    data = bytes(rng.randrange(256) for _ in range(12))
    levels, _ = transmit(data, 5, gaps=[rng.choice([0, 1, 3, 60, 200]) for _ in data])
    got, _, problems = decode(levels, 5)
    assert not problems and bytes(got) == data


# -- receiver ------------------------------------------------------------------

@pytest.mark.parametrize("divisor", [4, 8, 25])
def test_receiver_decodes_back_to_back_bytes(divisor: int) -> None:
    data = bytes([0x00, 0xFF, 0x55, 0xAA, 0x01, 0x80]) + bytes(random.Random(divisor).randrange(256) for _ in range(30))
    got, cycles, errors = receive(encode(data, divisor), divisor)
    assert bytes(got) == data and errors == []
    # one byte per 10 bit times, each reported at the second edge after the one sampling its stop bit's middle
    assert [b - a for a, b in zip(cycles, cycles[1:])] == [10 * divisor] * (len(data) - 1)
    assert cycles[0] == 5 + 9 * divisor + divisor // 2 + 2


@pytest.mark.parametrize("error", [-0.035, 0.035])
def test_receiver_tolerates_baud_error(error: float) -> None:
    """Within the documented (D/2 - 1) / (9.5 D) = 3.9 % at D = 8: every byte, back to back."""
    data = bytes(random.Random(7).randrange(256) for _ in range(40))
    got, _, errors = receive(encode(data, 8 * (1 + error)), 8)
    assert bytes(got) == data and errors == []


def test_receiver_fails_far_outside_tolerance() -> None:
    """A 12 % slow sender is not decoded: the check above can fail."""
    data = bytes(random.Random(8).randrange(256) for _ in range(20))
    got, _, _ = receive(encode(data, 8 * 1.12), 8)
    assert bytes(got) != data


def test_receiver_drops_a_byte_with_a_wrong_stop_bit_and_recovers() -> None:
    data = bytes([0x12, 0x34, 0x56, 0x78])
    got, _, errors = receive(encode(data, 8, gap_bits=1, bad_stop=frozenset({1})), 8)
    assert bytes(got) == bytes([0x12, 0x56, 0x78])  # 0x34 dropped
    assert len(errors) == 1


def test_receiver_reports_a_break_once_and_recovers() -> None:
    levels = [1] * 10 + [0] * 300 + [1] * 30 + encode(bytes([0xC3]), 8)
    got, _, errors = receive(levels, 8)
    assert got == [0xC3] and len(errors) == 1


def test_receiver_ignores_a_glitch_shorter_than_half_a_bit() -> None:
    levels = [1] * 10 + [0] * 2 + [1] * 40 + encode(bytes([0x5A]), 8)
    got, _, errors = receive(levels, 8)
    assert got == [0x5A] and errors == []


def test_transmitter_into_receiver() -> None:
    data = bytes(range(256))
    levels, _ = transmit(data, 6)
    got, _, errors = receive(levels, 6)
    assert bytes(got) == data and errors == []


# -- parameters ----------------------------------------------------------------

def test_divisor_from_clock_and_baud() -> None:
    assert uart_divisor(100e6, 1e6) == 100
    assert uart_divisor(25e6, 1e6) == 25
    assert uart_divisor(100e6, 3e6) == 33  # 3.03 Mbaud, 1 % off
    with pytest.raises(BoardError, match=r"too fast for a 25 MHz clock.*at least 4 cycles per bit"):
        uart_divisor(25e6, 10e6)
    with pytest.raises(BoardError, match=r"cannot be made from a 25 MHz clock: 8 cycles per bit give 3,125,000 baud"):
        uart_divisor(25e6, 3e6)
    with pytest.raises(BoardError, match="positive"):
        uart_divisor(25e6, 0)


@pytest.mark.parametrize("cls", [UARTReceiver, UARTTransmitter])
@pytest.mark.parametrize("bad", [MIN_DIVISOR - 1, 0, 8.0, True])
def test_components_validate_divisor(cls, bad) -> None:
    with pytest.raises(BoardError, match="divisor"):
        cls(divisor=bad)
