"""UART receiver and transmitter (8 data bits, no parity, 1 stop bit, LSB first; line idle high).

A bit lasts ``divisor`` clock cycles (:func:`uart_divisor` picks it from the
clock and the baud rate and refuses rates the clock cannot approximate
within 2 %). Both components are in the ``sync`` domain.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.cdc import FFSynchronizer
from amaranth.lib.wiring import In, Out

from hwgen.errors import BoardError

__all__ = ["MAX_BAUD_ERROR", "MIN_DIVISOR", "UARTReceiver", "UARTTransmitter", "uart_divisor"]

#: Fewest clock cycles per bit: the receiver samples mid-bit and needs a start-bit check half a bit in.
MIN_DIVISOR = 4
#: Largest relative error between the requested baud rate and clock / divisor.
MAX_BAUD_ERROR = 0.02


def uart_divisor(clock_hz: float, baud: float) -> int:
    """Clock cycles per bit, ``round(clock_hz / baud)``; BoardError when it is below
    :data:`MIN_DIVISOR` or the achieved rate is more than :data:`MAX_BAUD_ERROR` off."""
    for name, value in (("clock", clock_hz), ("baud rate", baud)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
            raise BoardError(f"the UART {name} must be a positive number, not {value!r}")
    divisor = round(clock_hz / baud)
    if divisor < MIN_DIVISOR:
        raise BoardError(f"baud rate {baud:,.0f} is too fast for a {clock_hz / 1e6:g} MHz clock: the UART needs at "
                         f"least {MIN_DIVISOR} cycles per bit (at most {clock_hz / MIN_DIVISOR:,.0f} baud)")
    error = abs(clock_hz / divisor - baud) / baud
    if error > MAX_BAUD_ERROR:
        raise BoardError(f"baud rate {baud:,.0f} cannot be made from a {clock_hz / 1e6:g} MHz clock: "
                         f"{divisor} cycles per bit give {clock_hz / divisor:,.0f} baud ({100 * error:.1f} % off, "
                         f"more than {100 * MAX_BAUD_ERROR:g} %); choose a baud rate that divides the clock, "
                         f"e.g. {clock_hz / divisor:,.0f}")
    return divisor


def _check_divisor(divisor: int) -> int:
    if isinstance(divisor, bool) or not isinstance(divisor, int) or divisor < MIN_DIVISOR:
        raise BoardError(f"divisor (clock cycles per bit) must be an integer >= {MIN_DIVISOR}, not {divisor!r}")
    return divisor


class UARTReceiver(wiring.Component):
    """UART receiver: a serial line in, one byte out per correctly framed character.

    Parameters (keyword-only)
    ----------
    divisor : int
        Clock cycles per bit, >= :data:`MIN_DIVISOR`.

    Ports
    -----
    rx : In(1)
        The line (idle high), asynchronous: it goes through a two-flop synchroniser.
    o : Out(stream.Signature(8, always_ready=True))
        ``o.valid`` is high for one cycle per received byte, ``o.payload`` the
        byte; there is no back-pressure (the consumer must take it then).
    error : Out(1)
        High for one cycle when a character's stop bit is 0 (a framing error,
        or a break: the line held low). That character is dropped, and the
        receiver waits for the line to go high before it looks for the next
        start bit, so a break gives one error and no bytes.

    Timing
    ------
    A falling edge starts a character; the start bit is checked half a bit
    later (still low, else it was a glitch and is ignored), then each data bit
    and the stop bit are sampled one bit apart: D/2 to D/2 + 1 cycles after
    each bit's start (D = divisor; the synchroniser delays the edge and the
    samples alike). ``o.valid`` rises at the second clock edge after the
    one that samples the middle of the stop bit at the pin. The receiver looks for the next start bit from the
    middle of the stop bit on, so characters may follow each other without a
    gap. It tolerates a baud rate error of up to ``(D/2 - 1) / (9.5 * D)``
    (5.2 % at 100 cycles per bit, 3.9 % at 8).
    """

    def __init__(self, *, divisor: int) -> None:
        self.divisor = _check_divisor(divisor)
        super().__init__({
            "rx": In(1, init=1),
            "o": Out(stream.Signature(8, always_ready=True)),
            "error": Out(1),
        })

    def elaborate(self, platform) -> Module:
        m = Module()
        line = Signal(init=1)
        m.submodules.sync_rx = FFSynchronizer(self.rx, line, init=1)
        count = Signal(range(self.divisor))
        bits = Signal(range(8))
        shreg = Signal(8)
        m.d.sync += [self.o.valid.eq(0), self.error.eq(0)]
        m.d.comb += self.o.payload.eq(shreg)
        with m.If(count != 0):
            m.d.sync += count.eq(count - 1)
        with m.FSM():
            with m.State("IDLE"):
                with m.If(~line):
                    m.d.sync += count.eq(self.divisor // 2 - 1)
                    m.next = "START"
            with m.State("START"):
                with m.If(count == 0):
                    with m.If(line):
                        m.next = "IDLE"  # a glitch, not a start bit
                    with m.Else():
                        m.d.sync += [count.eq(self.divisor - 1), bits.eq(0)]
                        m.next = "DATA"
            with m.State("DATA"):
                with m.If(count == 0):
                    m.d.sync += [shreg.eq(Cat(shreg[1:], line)), count.eq(self.divisor - 1), bits.eq(bits + 1)]
                    with m.If(bits == 7):
                        m.next = "STOP"
            with m.State("STOP"):
                with m.If(count == 0):
                    with m.If(line):
                        m.d.sync += self.o.valid.eq(1)
                        m.next = "IDLE"
                    with m.Else():
                        m.d.sync += self.error.eq(1)
                        m.next = "BREAK"
            with m.State("BREAK"):
                with m.If(line):
                    m.next = "IDLE"
        return m


class UARTTransmitter(wiring.Component):
    """UART transmitter: bytes in, a serial line out.

    Parameters (keyword-only)
    ----------
    divisor : int
        Clock cycles per bit, >= :data:`MIN_DIVISOR`.

    Ports
    -----
    i : In(stream.Signature(8))
        A byte is taken when ``i.valid & i.ready``.
    tx : Out(1)
        The line, idle high, driven straight from a flip-flop (no glitches).

    Timing
    ------
    The start bit begins the cycle after the byte is taken; start, 8 data
    bits (LSB first) and the stop bit last ``divisor`` cycles each.
    ``i.ready`` is high while idle and in the last cycle of a stop bit, so
    bytes offered back to back leave without a gap (10 bits per byte).
    """

    def __init__(self, *, divisor: int) -> None:
        self.divisor = _check_divisor(divisor)
        super().__init__({
            "i": In(stream.Signature(8)),
            "tx": Out(1, init=1),
        })

    def elaborate(self, platform) -> Module:
        m = Module()
        shreg = Signal(10, init=(1 << 10) - 1)  # bit 0 is on the line; idle shifts in ones
        count = Signal(range(self.divisor))
        remaining = Signal(range(11))  # bits still to send, the current one included
        done = Signal()
        m.d.comb += [
            self.tx.eq(shreg[0]),
            done.eq((remaining == 0) | ((remaining == 1) & (count == 0))),
            self.i.ready.eq(done),
        ]
        with m.If(self.i.valid & done):
            m.d.sync += [shreg.eq(Cat(0, self.i.payload, 1)), remaining.eq(10), count.eq(self.divisor - 1)]
        with m.Elif(remaining != 0):
            with m.If(count == 0):
                m.d.sync += [shreg.eq(Cat(shreg[1:], 1)), remaining.eq(remaining - 1),
                             count.eq(self.divisor - 1)]
            with m.Else():
                m.d.sync += count.eq(count - 1)
        return m
