"""Readers for what the tools write: Yosys ``stat -json``, nextpnr ``--report`` and nextpnr's log.

* :func:`read_cell_counts`: cells by type after synthesis (``LUT4``, ``CCU2C``,
  ``TRELLIS_FF``, ``SB_LUT4``, ``SB_DFFE``, ...).
* :func:`read_pnr_report`: post-route utilisation (used / available per bel
  type), Fmax per clock (MHz) and the critical paths (delays in ns).
* :func:`log_utilisation` / :func:`log_errors`: the "Device utilisation" table
  and the ``ERROR:`` lines of a nextpnr log, for runs that stopped before
  writing the report (a design that does not fit).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from hwgen.errors import SynthError

__all__ = ["ClockFmax", "CriticalPath", "PathEnd", "PnrReport", "clock_name", "log_errors", "log_utilisation",
           "read_cell_counts", "read_pnr_report", "signal_name"]


@dataclass(frozen=True)
class ClockFmax:
    """Post-route maximum frequency of one clock (MHz) against its constraint (MHz)."""

    name: str          #: clock signal, e.g. "clk"
    net: str           #: nextpnr's net name, e.g. "$glbnet$clk$TRELLIS_IO_IN"
    achieved_mhz: float
    constraint_mhz: float

    @property
    def met(self) -> bool:
        return self.achieved_mhz >= self.constraint_mhz


@dataclass(frozen=True)
class PathEnd:
    """One end of a timing path: the placed cell and port, and the design signal it belongs to."""

    cell: str
    port: str
    signal: str


@dataclass(frozen=True)
class CriticalPath:
    """nextpnr's worst path between two clock events ("posedge clk", "<async>" for I/O); delays in ns."""

    from_clock: str
    to_clock: str
    start: PathEnd
    end: PathEnd
    delay_ns: float    #: sum of all steps
    logic_ns: float    #: clock-to-q, logic and setup steps
    routing_ns: float  #: routing steps


@dataclass(frozen=True)
class PnrReport:
    """What nextpnr's ``--report`` JSON holds: utilisation by bel type (used, available), clocks, paths."""

    utilization: dict[str, tuple[int, int]]
    clocks: list[ClockFmax]
    critical_paths: list[CriticalPath]


def _load_json(path: Path, what: str) -> dict:
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise SynthError(f"{what} {path} was not written") from None
    except (OSError, ValueError) as exc:
        raise SynthError(f"{what} {path} cannot be read: {exc}") from None


def read_cell_counts(path: Path) -> dict[str, int]:
    """Cells by type from Yosys ``stat -json`` (the whole design), without Yosys' internal ``$`` cells."""
    data = _load_json(path, "Yosys statistics")
    design = data.get("design")
    if design is None:  # a single module: no "design" summary
        modules = list(data.get("modules", {}).values())
        if len(modules) != 1:
            raise SynthError(f"Yosys statistics {path} have no design summary")
        design = modules[0]
    counts = design.get("num_cells_by_type", {})
    return {name: int(n) for name, n in sorted(counts.items()) if not name.startswith("$")}


_CLOCK_DECORATIONS = re.compile(r"^\$glbnet\$|\$(TRELLIS_IO_IN|SB_IO_IN)(_\$glb_clk)?$|_?\$glb_clk$")
_REGISTER_SUFFIX = re.compile(r"_(TRELLIS_FF|SB_DFF[A-Z]*)_Q(?:_(\d+))?$")
_IO_SUFFIX = re.compile(r"\$(tr_io|sb_io)$")
_CELL_SUFFIX = re.compile(r"_(TRELLIS_|SB_|LUT4_|CCU2C_|PFUMX_|L6MUX21_)|\$")


def clock_name(net: str) -> str:
    """The design's clock signal for a nextpnr clock net: "$glbnet$clk$TRELLIS_IO_IN" -> "clk"."""
    return _CLOCK_DECORATIONS.sub("", net) or net


def _clock_event(event: str) -> str:
    """"posedge $glbnet$clk$TRELLIS_IO_IN" -> "posedge clk"; "<async>" stays."""
    edge, _, net = event.partition(" ")
    return f"{edge} {clock_name(net)}" if net else event


def signal_name(cell: str) -> str:
    """The design signal a placed cell stands for, from the names Yosys gives cells.

    "acc0_TRELLIS_FF_Q_3" -> "acc0[3]" (a register bit); "o__ready$tr_io" ->
    "o__ready" (an I/O buffer); "q_SB_DFFSR_Q_D_SB_LUT4_O_LC" -> "q" (logic
    named after the signal it drives); other names unchanged.
    """
    cell = _IO_SUFFIX.sub("", cell)
    match = _REGISTER_SUFFIX.search(cell)
    if match is not None:
        base = cell[:match.start()]
        return f"{base}[{match.group(2)}]" if match.group(2) else base
    cut = _CELL_SUFFIX.search(cell)
    return cell[:cut.start()] if cut is not None and cut.start() > 0 else cell


def _path(entry: dict) -> CriticalPath:
    steps = entry.get("path", [])
    if not steps:
        raise SynthError("nextpnr report has an empty critical path")
    first, last = steps[0]["from"], steps[-1]["to"]
    routing = sum(float(s["delay"]) for s in steps if s.get("type") == "routing")
    total = sum(float(s["delay"]) for s in steps)
    # The start register's output net names the signal better than the cell.
    first_net = next((s.get("net") for s in steps if s.get("type") == "routing" and s.get("net")), None)
    start_signal = first_net if first_net and steps[0].get("type") == "clk-to-q" else signal_name(first["cell"])
    return CriticalPath(
        from_clock=_clock_event(entry.get("from", "?")), to_clock=_clock_event(entry.get("to", "?")),
        start=PathEnd(first["cell"], first["port"], start_signal),
        end=PathEnd(last["cell"], last["port"], signal_name(last["cell"])),
        delay_ns=total, logic_ns=total - routing, routing_ns=routing,
    )


def read_pnr_report(path: Path) -> PnrReport:
    """Parse nextpnr's ``--report`` JSON (utilization, fmax, critical_paths)."""
    data = _load_json(path, "nextpnr report")
    try:
        utilization = {name: (int(v["used"]), int(v["available"])) for name, v in data["utilization"].items()}
        clocks = [ClockFmax(clock_name(net), net, float(v["achieved"]), float(v["constraint"]))
                  for net, v in sorted(data.get("fmax", {}).items())]
        paths = [_path(p) for p in data.get("critical_paths", [])]
    except (KeyError, TypeError, ValueError) as exc:
        raise SynthError(f"nextpnr report {path} is malformed ({exc!r})") from None
    return PnrReport(utilization, clocks, paths)


_UTIL_LINE = re.compile(r"^Info:\s+(\w+):\s+(\d+)/\s*(\d+)\s+\d+%")


def log_utilisation(log: str) -> dict[str, tuple[int, int]]:
    """The last "Device utilisation" table of a nextpnr log: {bel type: (used, available)}."""
    tables: list[dict[str, tuple[int, int]]] = []
    for line in log.splitlines():
        if line.startswith("Info: Device utilisation"):
            tables.append({})
            continue
        match = _UTIL_LINE.match(line)
        if match and tables:
            tables[-1][match.group(1)] = (int(match.group(2)), int(match.group(3)))
    return tables[-1] if tables else {}


def log_errors(log: str) -> list[str]:
    """The messages of a tool log's ``ERROR:`` lines, in order, without repeats."""
    seen: list[str] = []
    for line in log.splitlines():
        for part in line.split("ERROR:")[1:]:  # nextpnr sometimes prints two on one line
            message = part.strip()
            if message and message not in seen:
                seen.append(message)
    return seen
