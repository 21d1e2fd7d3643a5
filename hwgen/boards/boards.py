"""Boards that ``hwgen synth --board`` can wrap the accelerator for: the one table of board facts.

A :class:`Board` names its FPGA target (:mod:`hwgen.hw.targets`), its
oscillator, its top module and every pin the board top uses, with the I/O
standard and pull / drive settings written into the LPF.

Radiona ULX3S (v3.x): all variants share one pinout (as in amaranth-boards'
``ulx3s.py`` and the board's LPF net names, ``ftdi_txd`` on M1 etc.; checked
against amaranth-boards by ``tests/test_boards.py`` when it is installed).
Port, ball, direction, board net:

* ``clk25``      G2  in   25 MHz oscillator
* ``btn_pwr_n``  D6  in   BTN0 "PWR" push button, low when pressed (pull-up)
* ``uart_rx``    M1  in   FT231X TXD (the host's serial output)
* ``uart_tx``    L4  out  FT231X RXD (the host's serial input)
* ``led[0..7]``  B2 C2 C1 D2 D1 E2 E1 H3  out  LED0-LED7, high = lit
* ``wifi_gpio0`` L2  out  ESP32 GPIO0: held high so the ESP32 does not reset the FPGA

The FT231X USB serial chip runs at up to 3 Mbaud.

1BitSquared iCEBreaker (v1.0, iCE40UP5K-SG48; as amaranth-boards'
``icebreaker.py``, checked by ``tests/test_boards.py``): the FT2232H's
second channel is the UART; the class shows on the break-off PMOD's LEDs.

* ``clk12``     35  in   12 MHz oscillator
* ``btn_n``     10  in   user button, low when pressed (pull-up)
* ``uart_rx``   6   in   FT2232H channel B TXD (the host's serial output)
* ``uart_tx``   9   out  FT2232H channel B RXD (the host's serial input)
* ``led[0..3]`` 27 25 23 21  out  break-off PMOD green LEDs, high = lit
* ``led[4]``    26  out  break-off PMOD red LED (toggles with every reply)

OrangeCrab is not in the
table: its USB port is wired to the FPGA (no USB serial chip), so a host link
needs a USB core or an external adapter on its header, and its CSFBGA285
package is not one of the synthesis targets.
"""

from __future__ import annotations

from dataclasses import dataclass

from hwgen.hw.targets import TARGETS, Target, get_target
from hwgen.errors import BoardError

__all__ = ["BOARDS", "Board", "Pin", "get_board"]


@dataclass(frozen=True)
class Pin:
    """One top-level port bit on one package ball, with its LPF ``IOBUF`` settings."""

    port: str            #: port bit as the netlist names it: "clk25", "led[3]"
    site: str            #: package ball, e.g. "G2"
    direction: str       #: "i" or "o"
    net: str             #: what it is on the board
    io_type: str = "LVCMOS33"
    pull: str | None = None     #: PULLMODE: "UP", "DOWN", "NONE" or None (the LPF does not say)
    drive: int | None = None    #: DRIVE in mA (outputs)


@dataclass(frozen=True)
class Board:
    """A board: its FPGA target, oscillator, top module, pins and host link limits."""

    name: str               #: the ``--board`` name
    title: str
    target_name: str        #: an :data:`hwgen.hw.targets.TARGETS` key
    oscillator_hz: float    #: the clock on ``clock_port``
    clock_port: str
    top_module: str         #: Verilog module of the board top (board_top.v)
    pins: tuple[Pin, ...]
    max_baud: int           #: fastest rate of the USB serial chip
    program: str            #: how to load a bitstream (shown to the user)
    reset_port: str         #: push button, low when pressed: resets the link and the accelerator
    led_count: int          #: LEDs ``led[0..n-1]``: the class index in binary, the last one toggles per reply
    constant_high: tuple[str, ...] = ()  #: outputs held high (ULX3S: the ESP32's GPIO0)

    @property
    def target(self) -> Target:
        return get_target(self.target_name)

    @property
    def lpf_name(self) -> str:
        """The pin constraints file written into the build folder: ``NAME.lpf`` (ECP5) or ``NAME.pcf`` (iCE40)."""
        return f"{self.name}.{self.target.spec.constraints}"

    def pin(self, port: str) -> Pin:
        try:
            return next(p for p in self.pins if p.port == port)
        except StopIteration:
            raise BoardError(f"board {self.name} has no pin {port!r}") from None


_ULX3S_LEDS = ("B2", "C2", "C1", "D2", "D1", "E2", "E1", "H3")

_ULX3S_PINS = (
    Pin("clk25", "G2", "i", "25 MHz oscillator"),
    Pin("btn_pwr_n", "D6", "i", "BTN0 PWR button, low when pressed", pull="UP"),
    Pin("uart_rx", "M1", "i", "FT231X TXD", pull="UP"),
    Pin("uart_tx", "L4", "o", "FT231X RXD", drive=4),
    *(Pin(f"led[{k}]", site, "o", f"LED{k}", drive=4) for k, site in enumerate(_ULX3S_LEDS)),
    Pin("wifi_gpio0", "L2", "o", "ESP32 GPIO0 (held high)", pull="UP", drive=4),
)


def _ulx3s(size: str) -> Board:
    return Board(name=f"ulx3s-{size}f", title=f"Radiona ULX3S ({TARGETS[f'ecp5-{size}k'].part})",
                 target_name=f"ecp5-{size}k", oscillator_hz=25e6, clock_port="clk25", top_module="ulx3s_top",
                 pins=_ULX3S_PINS, max_baud=3_000_000, program="openFPGALoader --board ulx3s top.bit",
                 reset_port="btn_pwr_n", led_count=8, constant_high=("wifi_gpio0",))


_ICEBREAKER_PINS = (
    Pin("clk12", "35", "i", "12 MHz oscillator"),
    Pin("btn_n", "10", "i", "user button, low when pressed", pull="UP"),
    Pin("uart_rx", "6", "i", "FT2232H channel B TXD", pull="UP"),
    Pin("uart_tx", "9", "o", "FT2232H channel B RXD"),
    *(Pin(f"led[{k}]", site, "o", f"break-off PMOD green LED {k + 1}") for k, site in enumerate(("27", "25", "23", "21"))),
    Pin("led[4]", "26", "o", "break-off PMOD red LED"),
)

_ICEBREAKER = Board(name="icebreaker", title="1BitSquared iCEBreaker (iCE40UP5K)", target_name="ice40-up5k",
                    oscillator_hz=12e6, clock_port="clk12", top_module="icebreaker_top", pins=_ICEBREAKER_PINS,
                    max_baud=3_000_000, program="iceprog top.bin", reset_port="btn_n", led_count=5)

BOARDS: dict[str, Board] = {b.name: b for b in (_ulx3s("85"), _ulx3s("45"), _ulx3s("25"), _ICEBREAKER)}


def get_board(name: str | Board) -> Board:
    """The :class:`Board` called ``name`` (a Board passes through); BoardError listing the valid names otherwise."""
    if isinstance(name, Board):
        return name
    try:
        return BOARDS[name]
    except (KeyError, TypeError):
        raise BoardError(f"unknown board {name!r}: choose one of {', '.join(BOARDS)}") from None
