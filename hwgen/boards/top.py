"""Board top: the accelerator behind a UART host link, for any board of :mod:`hwgen.boards.boards`.

::

    CLOCK --[PLL, when the system clock is not the oscillator's]--> sync clock
    RESET button (low = pressed), PLL not locked --> reset synchroniser --> sync reset (also the accelerator's rst)
    uart_rx --> UARTReceiver --> HostLink --pixels--> hwgen_top (s_axis)
    uart_tx <-- UARTTransmitter <-- HostLink <--words-- hwgen_top (m_axis)
    led[n-2:0] = last class index (binary), led[n-1] toggles with every reply; constant-high pins = 1

CLOCK, RESET, n and the constant-high pins are the board's (ULX3S: ``clk25``,
``btn_pwr_n``, 8 LEDs, ``wifi_gpio0``; iCEBreaker: ``clk12``, ``btn_n``, 5
LEDs). The PLL is the family's: the ECP5's EHXPLLL (:mod:`hwgen.boards.pll`);
an iCE40 board runs from its oscillator.

The accelerator is the build folder's ``hwgen_top`` (``top.v``), instantiated
by name (``Instance``), so the board top is generated in about a second
whatever the network, and ``board_top.v`` + ``top.v`` are synthesised (or
simulated) together. An Amaranth component with the same flat ports
(:class:`hwgen.hw.accelerator.Accelerator`, or a stand-in in tests) can be
passed instead.
"""

from __future__ import annotations

from types import SimpleNamespace

from amaranth.hdl import ClockDomain, ClockSignal, Instance, Module, ResetSignal, Signal
from amaranth.lib import wiring
from amaranth.lib.cdc import ResetSynchronizer
from amaranth.lib.wiring import In, Out

from hwgen.boards.boards import Board, get_board
from hwgen.boards.link import HostLink
from hwgen.boards.pll import ECP5PLL, ecp5_pll_config
from hwgen.boards.protocol import Ident
from hwgen.boards.uart import UARTReceiver, UARTTransmitter, uart_divisor
from hwgen.errors import BoardError

__all__ = ["ACCELERATOR_MODULE", "DEFAULT_FRAME_TIMEOUT_S", "BoardTop"]

ACCELERATOR_MODULE = "hwgen_top"
DEFAULT_FRAME_TIMEOUT_S = 0.02
#: A frame timeout must exceed this many character times (10 bits each) of the UART.
MIN_TIMEOUT_CHARACTERS = 2


class BoardTop(wiring.Component):
    """A board's top (see the module docstring).

    Parameters (keyword-only; BoardError names any violation)
    ----------
    board : Board or str
        An entry of :data:`hwgen.boards.boards.BOARDS` (its pins and oscillator).
    ident : protocol.Ident
        The input shape, classes and design id of the accelerator (the identify reply).
    clock_hz : float
        System clock. The oscillator's frequency runs from the pin; anything
        else goes through the PLL at the nearest frequency it makes
        (:attr:`clock_hz` is that one, :attr:`pll` its dividers); ECP5 boards only.
    baud : float
        UART rate; :attr:`divisor` = clock cycles per bit (:func:`uart_divisor`).
    frame_timeout_s : float
        A gap longer than this inside a frame discards it (default 20 ms).
    accelerator : wiring.Component, optional
        An Amaranth accelerator with ``hwgen_top``'s ports; default an
        ``Instance`` of ``hwgen_top`` (from ``top.v``).

    Ports (the pin file's names)
    -----
    CLOCK (``board.clock_port``), RESET (``board.reset_port``, low = pressed), uart_rx : In(1)
    uart_tx, each of ``board.constant_high`` : Out(1)
    led : Out(board.led_count)

    Latency: after the last byte of a request, the frame enters the
    accelerator in C*H*W cycles (one byte per cycle while it is accepted);
    every reply word leaves in 40 bit times.
    """

    def __init__(self, *, board: Board | str, ident: Ident, clock_hz: float, baud: float,
                 frame_timeout_s: float = DEFAULT_FRAME_TIMEOUT_S, accelerator: wiring.Component | None = None) -> None:
        self.board = get_board(board)
        if not isinstance(ident, Ident):
            raise BoardError(f"ident must be a protocol.Ident, not {ident!r}")
        self.ident = ident
        osc = self.board.oscillator_hz
        if isinstance(clock_hz, bool) or not isinstance(clock_hz, (int, float)) or not clock_hz > 0:
            raise BoardError(f"clock_hz must be a positive number, not {clock_hz!r}")
        if abs(clock_hz - osc) < 1e-6 * osc:
            self.pll = None
        elif self.board.target.spec.pll == "EHXPLLL":
            self.pll = ecp5_pll_config(osc, clock_hz)
        else:
            raise BoardError(f"the {self.board.name} top runs from its {osc / 1e6:g} MHz oscillator (no "
                             f"{self.board.target.spec.name} PLL yet), not at {clock_hz / 1e6:g} MHz: use --freq "
                             f"{osc / 1e6:g}")
        self.clock_hz = osc if self.pll is None else self.pll.f_out
        self.baud = baud
        self.divisor = uart_divisor(self.clock_hz, baud)
        if isinstance(frame_timeout_s, bool) or not isinstance(frame_timeout_s, (int, float)) \
                or not frame_timeout_s > 0:
            raise BoardError(f"frame_timeout_s must be a positive number of seconds, not {frame_timeout_s!r}")
        self.timeout_cycles = round(frame_timeout_s * self.clock_hz)
        shortest = MIN_TIMEOUT_CHARACTERS * 10 * self.divisor
        if self.timeout_cycles < shortest:
            raise BoardError(f"the frame timeout ({frame_timeout_s * 1e3:g} ms = {self.timeout_cycles} cycles) must "
                             f"exceed {MIN_TIMEOUT_CHARACTERS} characters at {baud:,.0f} baud ({shortest} cycles)")
        self.accelerator = accelerator
        b = self.board
        super().__init__({
            b.clock_port: In(1), b.reset_port: In(1, init=1), "uart_rx": In(1, init=1),
            "uart_tx": Out(1, init=1), "led": Out(b.led_count), **{port: Out(1) for port in b.constant_high},
        })

    def elaborate(self, platform) -> Module:
        m = Module()
        b = self.board
        clock, button = getattr(self, b.clock_port), getattr(self, b.reset_port)
        m.domains.sync = sync = ClockDomain("sync")
        locked = Signal(init=1)
        if self.pll is None:
            m.d.comb += sync.clk.eq(clock)
        else:
            m.submodules.pll = pll = ECP5PLL(config=self.pll)
            m.d.comb += [pll.clk_in.eq(clock), sync.clk.eq(pll.clk_out), locked.eq(pll.locked)]
        m.submodules.reset_sync = ResetSynchronizer(~button | ~locked, domain="sync")
        leds = b.led_count

        m.submodules.receiver = rx = UARTReceiver(divisor=self.divisor)
        m.submodules.transmitter = tx = UARTTransmitter(divisor=self.divisor)
        m.submodules.link = link = HostLink(frame_bytes=self.ident.frame_bytes, timeout_cycles=self.timeout_cycles,
                                            ident=self.ident.pack(), class_bits=leds - 1)
        m.d.comb += [rx.rx.eq(self.uart_rx), self.uart_tx.eq(tx.tx)]
        wiring.connect(m, rx.o, link.rx)
        wiring.connect(m, link.tx, tx.i)

        acc = self._accelerator(m)
        m.d.comb += [
            acc.s_axis_tdata.eq(link.pixels.payload.data), acc.s_axis_tlast.eq(link.pixels.payload.last),
            acc.s_axis_tvalid.eq(link.pixels.valid), link.pixels.ready.eq(acc.s_axis_tready),
            link.words.payload.data.eq(acc.m_axis_tdata), link.words.payload.last.eq(acc.m_axis_tlast),
            link.words.valid.eq(acc.m_axis_tvalid), acc.m_axis_tready.eq(link.words.ready),
            self.led.eq(link.last_class | (link.frame_toggle << (leds - 1))),
            *(getattr(self, port).eq(1) for port in b.constant_high),
        ]
        return m

    def _accelerator(self, m: Module):
        """The accelerator's ports (signals to drive and read): the given component's, or an Instance's."""
        if self.accelerator is not None:
            m.submodules.accelerator = self.accelerator
            return self.accelerator
        acc = SimpleNamespace(
            s_axis_tdata=Signal(8), s_axis_tvalid=Signal(), s_axis_tready=Signal(), s_axis_tlast=Signal(),
            m_axis_tdata=Signal(32), m_axis_tvalid=Signal(), m_axis_tready=Signal(), m_axis_tlast=Signal())
        m.submodules.accelerator = Instance(
            ACCELERATOR_MODULE, i_clk=ClockSignal("sync"), i_rst=ResetSignal("sync"),
            i_s_axis_tdata=acc.s_axis_tdata, i_s_axis_tvalid=acc.s_axis_tvalid, o_s_axis_tready=acc.s_axis_tready,
            i_s_axis_tlast=acc.s_axis_tlast, o_m_axis_tdata=acc.m_axis_tdata, o_m_axis_tvalid=acc.m_axis_tvalid,
            i_m_axis_tready=acc.m_axis_tready, o_m_axis_tlast=acc.m_axis_tlast)
        return acc
