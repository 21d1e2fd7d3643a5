"""Board files for a build folder: ``board_top.v``, the board's LPF and ``board.json``.

:func:`write_board_files` reads what ``hwgen build`` wrote (``report.json``:
input shape, classes, clock; ``net.hwir``: the design id) and writes

* ``board_top.v``: Verilog of the board top (:class:`~hwgen.boards.top.BoardTop`,
  module e.g. ``ulx3s_top``), which instantiates ``hwgen_top`` from ``top.v``:
  synthesise or simulate the two files together;
* ``BOARD.lpf`` / ``BOARD.pcf`` (e.g. ``ulx3s-85f.lpf``, ``icebreaker.pcf``): pin
  locations, I/O settings and the oscillator's frequency (from the family's
  template, ``templates/boards/ecp5.lpf.j2`` / ``ice40.pcf.j2``);
* ``board.json``: what the board top was generated with (board, clock, PLL
  dividers, baud rate and cycles per bit, frame timeout, the identify reply),
  read back by ``hwgen run --build`` for its defaults.

The same arguments give byte-identical files.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from hwgen import __version__
from hwgen.boards.boards import Board, get_board
from hwgen.boards.pll import PLLConfig
from hwgen.boards.protocol import Ident, design_id
from hwgen.boards.top import ACCELERATOR_MODULE, DEFAULT_FRAME_TIMEOUT_S, BoardTop
from hwgen.errors import BoardError

__all__ = ["BOARD_INFO", "BOARD_VERILOG", "DEFAULT_BAUD", "BoardFiles", "board_file_names", "lpf_context", "read_board_info",
           "read_ident", "write_board_files"]

DEFAULT_BAUD = 1_000_000
BOARD_VERILOG = "board_top.v"
BOARD_INFO = "board.json"


@dataclass(frozen=True)
class BoardFiles:
    """What :func:`write_board_files` generated, and with which settings."""

    board: Board
    build_dir: Path
    lpf: str                  #: constraints file name, in build_dir
    ident: Ident
    clock_hz: float           #: the system clock (the PLL's output, or the oscillator)
    pll: PLLConfig | None
    baud: float               #: requested baud rate
    divisor: int              #: clock cycles per bit
    timeout_cycles: int
    frame_timeout_s: float
    verilog: str = BOARD_VERILOG
    info: str = BOARD_INFO

    @property
    def achieved_baud(self) -> float:
        return self.clock_hz / self.divisor

    @property
    def sources(self) -> tuple[str, str]:
        """The Verilog files of the whole design, accelerator first."""
        return ("top.v", self.verilog)

    def summary(self) -> str:
        clock = (f"{self.clock_hz / 1e6:g} MHz from the PLL (CLKI_DIV {self.pll.clki_div}, CLKFB_DIV "
                 f"{self.pll.clkfb_div}, CLKOP_DIV {self.pll.clkop_div}, VCO {self.pll.f_vco / 1e6:g} MHz)"
                 if self.pll else f"{self.clock_hz / 1e6:g} MHz straight from the oscillator")
        return (f"{self.board.name}: {self.board.top_module} in {self.verilog} + {self.lpf}; clock {clock}; UART "
                f"{self.achieved_baud:,.0f} baud ({self.divisor} cycles per bit), 8N1; frame timeout "
                f"{self.frame_timeout_s * 1e3:g} ms; input {'x'.join(map(str, self.ident.input_shape))} "
                f"({self.ident.frame_bytes} bytes), {self.ident.num_classes} classes, design id "
                f"{self.ident.design.hex()}")


def _read_report(build_dir: Path) -> dict:
    if not build_dir.is_dir():
        raise BoardError(f"build folder {build_dir} does not exist (run hwgen build first)")
    path = build_dir / "report.json"
    try:
        report = json.loads(path.read_text())
    except FileNotFoundError:
        raise BoardError(f"build folder {build_dir} has no report.json (run hwgen build first)") from None
    except (OSError, ValueError) as exc:
        raise BoardError(f"{path} cannot be read: {exc}") from None
    missing = [k for k in ("top_module", "input_shape", "num_classes", "clock_mhz") if k not in report]
    if missing:
        raise BoardError(f"{path} lacks {', '.join(missing)}: rebuild with this hwgen")
    if report["top_module"] != ACCELERATOR_MODULE:
        raise BoardError(f"{path}: the board top instantiates {ACCELERATOR_MODULE}, but the build's top module is "
                         f"{report['top_module']!r}")
    if report.get("in_width", 8) != 8:
        raise BoardError(f"{path}: the board top feeds one pixel byte per beat, but this build's s_axis is "
                         f"{report['in_width']} bits wide; rebuild with --in-width 8 for a board")
    return report


def read_ident(build_dir: str | Path) -> Ident:
    """The identify reply a board top built from ``build_dir`` gives (input shape, classes, net.hwir's id)."""
    build_dir = Path(build_dir)
    report = _read_report(build_dir)
    hwir = build_dir / "net.hwir"
    if not hwir.is_file():
        raise BoardError(f"build folder {build_dir} has no net.hwir (run hwgen build first)")
    c, h, w = (int(v) for v in report["input_shape"])
    return Ident(c, h, w, int(report["num_classes"]), design_id(hwir))


def lpf_context(board: Board, *, clock_hz: float, pll: bool) -> dict:
    """The one context of the board's pin template (``templates/boards/ecp5.lpf.j2``, ``ice40.pcf.j2``)."""
    return {
        "banner": f"Generated by hwgen {__version__} (hwgen synth --board): edits are overwritten.",
        "top": board.top_module, "board": board, "pll": pll,
        "clock_mhz": f"{clock_hz / 1e6:.6g}", "oscillator_mhz": f"{board.oscillator_hz / 1e6:.6g}",
    }


def board_file_names(board: Board | str) -> tuple[str, str, str]:
    """The files :func:`write_board_files` writes for ``board``: its Verilog, constraints and ``board.json``."""
    return BOARD_VERILOG, get_board(board).lpf_name, BOARD_INFO


def write_board_files(build_dir: str | Path, board: Board | str, *, clock_mhz: float | None = None,
                      baud: float = DEFAULT_BAUD, frame_timeout_s: float = DEFAULT_FRAME_TIMEOUT_S,
                      simulation: bool = False) -> BoardFiles:
    """Write ``board_top.v``, the LPF and ``board.json`` into ``build_dir`` (see the module docstring).

    ``clock_mhz``: the system clock (default: the build's ``--clock``, or the
    oscillator's on a family without a PLL in hwgen, iCE40); the
    oscillator's frequency needs no PLL. ``simulation``: allow baud rates
    above the board's USB serial chip (a fast UART for a simulation).
    BoardError for a missing build folder, an unknown board, a clock the PLL
    cannot make, or a baud rate the clock or the board cannot do.
    """
    from amaranth.back import verilog

    from hwgen.synth.scripts import render_template

    build_dir = Path(build_dir)
    board = get_board(board)
    ident = read_ident(build_dir)
    if clock_mhz is None:  # the build's clock, through the PLL; a board without one runs at its oscillator
        clock_mhz = (float(_read_report(build_dir)["clock_mhz"]) if board.target.spec.pll
                     else board.oscillator_hz / 1e6)
    if not simulation and baud > board.max_baud:
        raise BoardError(f"{board.name}'s USB serial chip runs at up to {board.max_baud:,} baud, not {baud:,.0f}")
    top = BoardTop(board=board, ident=ident, clock_hz=clock_mhz * 1e6, baud=baud, frame_timeout_s=frame_timeout_s)
    files = BoardFiles(board=board, build_dir=build_dir, lpf=board.lpf_name, ident=ident, clock_hz=top.clock_hz,
                       pll=top.pll, baud=baud, divisor=top.divisor, timeout_cycles=top.timeout_cycles,
                       frame_timeout_s=frame_timeout_s)
    text = verilog.convert(top, name=board.top_module, emit_src=False)
    header = (f"// Generated by hwgen {__version__} (hwgen synth --board {board.name}): {board.top_module} wraps "
              f"{ACCELERATOR_MODULE} (top.v). Do not edit.\n// {files.summary()}\n")
    (build_dir / files.verilog).write_text(header + text)
    (build_dir / files.lpf).write_text(render_template(board.target.spec.templates.pins,
                                                       lpf_context(board, clock_hz=top.clock_hz, pll=bool(top.pll))))
    info = {
        "format": "hwgen-board", "version": 1, "hwgen": __version__,
        "board": board.name, "target": board.target_name, "top_module": board.top_module,
        "verilog": list(files.sources), "constraints": files.lpf,
        "clock_hz": top.clock_hz, "oscillator_hz": board.oscillator_hz,
        "pll": None if top.pll is None else {"clki_div": top.pll.clki_div, "clkfb_div": top.pll.clkfb_div,
                                             "clkop_div": top.pll.clkop_div, "vco_hz": top.pll.f_vco},
        "baud": baud, "uart_divisor": top.divisor, "achieved_baud": files.achieved_baud,
        "frame_timeout_s": frame_timeout_s, "frame_timeout_cycles": top.timeout_cycles,
        "input_shape": list(ident.input_shape), "num_classes": ident.num_classes,
        "design_id": ident.design.hex(), "program": board.program,
    }
    (build_dir / files.info).write_text(json.dumps(info, indent=2) + "\n")
    return files


def read_board_info(build_dir: str | Path) -> dict | None:
    """``board.json`` of a build folder, or None when there is none."""
    path = Path(build_dir) / BOARD_INFO
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise BoardError(f"{path} cannot be read: {exc}") from None
