"""The synthesis report: resources against the device, Fmax, critical paths, stage times, frames/s.

Resources, per family (post-route counts from nextpnr, except where noted):

=========  ===========================  ===================================
resource   ECP5                         iCE40
=========  ===========================  ===================================
LUT4       TRELLIS_COMB (LUT4s, carry   ICESTORM_LC (logic cells: one LUT4
           halves, LUT RAM)             and one FF each)
FF         TRELLIS_FF                   SB_DFF* cells (Yosys)
block RAM  DP16KD                       ICESTORM_RAM (SB_RAM40_4K)
DSP        MULT18X18D                   ICESTORM_DSP (SB_MAC16)
I/O        TRELLIS_IO                   SB_IO
=========  ===========================  ===================================

The bel counted for each resource is the family's
(:attr:`hwgen.hw.families.FamilySpec.bels`, the table above); the available
counts are the :class:`~hwgen.hw.targets.Target`'s (I/O: the
pins of the package). Frames per second = Fmax (Hz) / cycles per frame, with
Fmax the slowest clock's post-route maximum frequency and cycles per frame
from the build's ``report.json``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from hwgen.hw.families import ECP5, ICE40
from hwgen.hw.targets import Target
from hwgen.synth.parse import ClockFmax, CriticalPath
from hwgen.synth.routers import ROUTER1_LOG

__all__ = ["RESOURCE_BELS", "Resource", "StageTime", "SynthResult", "resources", "write_reports"]

#: (resource, ECP5 bel, iCE40 bel) as nextpnr names them; None: counted from the Yosys cells
#: (a view of the families' ``bels``, for readers that compare the two).
RESOURCE_BELS = [(name, bel, ICE40.bel(name)) for name, bel in ECP5.bels]


@dataclass(frozen=True)
class Resource:
    """One resource's use against the device."""

    name: str        #: "LUT4", "FF", "block RAM", "DSP", "I/O"
    source: str      #: what was counted, e.g. "TRELLIS_COMB"
    used: int
    available: int

    @property
    def percent(self) -> float:
        return 100.0 * self.used / self.available if self.available else (0.0 if not self.used else float("inf"))

    @property
    def fits(self) -> bool:
        return self.used <= self.available


def _available(target: Target, name: str) -> int:
    return {"LUT4": target.lut4, "FF": target.ff, "block RAM": target.bram_blocks, "DSP": target.dsp,
            "I/O": target.io}[name]


def resources(target: Target, utilization: dict[str, tuple[int, int]], cells: dict[str, int]) -> list[Resource]:
    """LUT4, FF, block RAM, DSP and I/O use from nextpnr's utilisation (bel: (used, available)) and Yosys' cells."""
    out = []
    spec = target.spec
    for name, bel in spec.bels:
        if bel is None:  # iCE40 FFs share logic cells with LUTs: count the Yosys cells
            used = sum(n for cell, n in cells.items() if cell.startswith(spec.ff_cells))
            source = f"{spec.ff_cells}* cells"
        else:
            used = utilization.get(bel, (0, 0))[0]
            source = bel
        out.append(Resource(name, source, used, _available(target, name)))
    return out


@dataclass(frozen=True)
class StageTime:
    """Wall time of one toolchain stage (seconds)."""

    name: str
    tool: str
    seconds: float


@dataclass(frozen=True)
class SynthResult:
    """Everything ``hwgen synth`` measured for one build folder."""

    build_dir: str
    top: str
    target: Target
    freq_mhz: float          #: requested clock (nextpnr --freq)
    seed: int
    resources: list[Resource]
    cells: dict[str, int]    #: Yosys cells by type after synthesis
    clocks: list[ClockFmax]
    critical_paths: list[CriticalPath]
    stages: list[StageTime]
    bitstream: str | None    #: file name in the build folder
    cycles_per_frame: int | None
    nextpnr_args: tuple[str, ...] = ()  #: the user's extra nextpnr options (``hwgen synth --nextpnr-args``)
    router: str | None = None  #: nextpnr's router that routed the design (None: the family has no choice)
    #: router1's limit (s) when it was stopped there and router2 routed the design instead, else None
    router1_stopped_s: float | None = None

    @property
    def fmax_mhz(self) -> float | None:
        """The slowest clock's post-route Fmax (MHz); None without a clocked path."""
        return min((c.achieved_mhz for c in self.clocks), default=None)

    @property
    def timing_met(self) -> bool:
        return all(c.met for c in self.clocks)

    @property
    def frames_per_second(self) -> float | None:
        """Fmax (Hz) / cycles per frame, when both are known."""
        if self.fmax_mhz is None or not self.cycles_per_frame:
            return None
        return self.fmax_mhz * 1e6 / self.cycles_per_frame

    @property
    def router_text(self) -> str:
        """``routed with router1``, or why router2 routed it instead of router1."""
        if self.router1_stopped_s is None:
            return f"routed with {self.router}"
        return (f"routed with {self.router} (router1 was stopped after {self.router1_stopped_s:g} s of routing; "
                f"its log: {ROUTER1_LOG})")

    def resource(self, name: str) -> Resource:
        return next(r for r in self.resources if r.name == name)

    def clock_paths(self) -> list[CriticalPath]:
        """Register-to-register critical paths (those that set Fmax), without the I/O ones."""
        return [p for p in self.critical_paths if "<async>" not in (p.from_clock, p.to_clock)]

    def to_json(self) -> dict:
        t = self.target
        return {
            "top": self.top,
            "target": {"name": t.name, "family": t.family.value, "part": t.part, "package": t.package},
            "freq_mhz": self.freq_mhz,
            "seed": self.seed,
            "nextpnr_args": list(self.nextpnr_args),
            "router": self.router,
            "router1_stopped_s": self.router1_stopped_s,
            "resources": {r.name: {"used": r.used, "available": r.available, "source": r.source}
                          for r in self.resources},
            "cells": self.cells,
            "clocks": [{"name": c.name, "net": c.net, "fmax_mhz": round(c.achieved_mhz, 2),
                        "constraint_mhz": c.constraint_mhz, "met": c.met} for c in self.clocks],
            "fmax_mhz": None if self.fmax_mhz is None else round(self.fmax_mhz, 2),
            "timing_met": self.timing_met,
            "critical_paths": [{"from": p.from_clock, "to": p.to_clock, "delay_ns": round(p.delay_ns, 3),
                                "logic_ns": round(p.logic_ns, 3), "routing_ns": round(p.routing_ns, 3),
                                "start": {"signal": p.start.signal, "cell": p.start.cell, "port": p.start.port},
                                "end": {"signal": p.end.signal, "cell": p.end.cell, "port": p.end.port}}
                               for p in self.critical_paths],
            "stages": [{"name": s.name, "tool": s.tool, "seconds": round(s.seconds, 2)} for s in self.stages],
            "bitstream": self.bitstream,
            "cycles_per_frame": self.cycles_per_frame,
            "frames_per_second": None if self.frames_per_second is None else round(self.frames_per_second, 1),
        }

    def to_markdown(self) -> str:
        t = self.target
        lines = [f"# Synthesis report: {self.top} on {t.part} {t.package} ({t.name})", "",
                 f"Requested clock {self.freq_mhz:g} MHz, placer seed {self.seed}"
                 + (f", nextpnr options `{' '.join(self.nextpnr_args)}`" if self.nextpnr_args else "")
                 + (f", {self.router_text}" if self.router else "") + "; "
                 + (f"bitstream `{self.bitstream}`." if self.bitstream else "no bitstream."), "",
                 "| resource | used | available | use | counted |", "|---|---:|---:|---:|---|"]
        for r in self.resources:
            lines.append(f"| {r.name} | {r.used:,} | {r.available:,} | {r.percent:.1f} % | {r.source} |")
        io = self.resource("I/O")
        if not io.fits:
            lines += ["", (f"The design has more I/O ({io.used}) than the {t.package} package bonds out "
                          f"({io.available}): fine for an out-of-context measurement, a board needs a wrapper.")]
        lines += ["", "| clock | Fmax (MHz) | requested (MHz) | timing |", "|---|---:|---:|---|"]
        for c in self.clocks:
            lines.append(f"| {c.name} | {c.achieved_mhz:.2f} | {c.constraint_mhz:g} | {'met' if c.met else 'MISSED'} |")
        if self.critical_paths:
            lines += ["", "| critical path | delay (ns) | logic / routing (ns) | from | to |",
                      "|---|---:|---:|---|---|"]
            for p in self.critical_paths:
                lines.append(f"| {p.from_clock} -> {p.to_clock} | {p.delay_ns:.2f} | {p.logic_ns:.2f} / "
                             f"{p.routing_ns:.2f} | `{p.start.signal}` | `{p.end.signal}` |")
        if self.frames_per_second is not None:
            lines += ["", (f"Frames per second at {self.fmax_mhz:.2f} MHz: {self.frames_per_second:,.1f} "
                          f"({self.cycles_per_frame:,} cycles per frame).")]
        lines += ["", "| stage | tool | wall time (s) |", "|---|---|---:|"]
        lines += [f"| {s.name} | {s.tool} | {s.seconds:.1f} |" for s in self.stages]
        lines += ["", "Cells after synthesis (Yosys): "
                  + ", ".join(f"{name} {n:,}" for name, n in self.cells.items()) + "."]
        return "\n".join(lines) + "\n"

    def summary(self) -> str:
        """A few lines for the terminal."""
        use = ", ".join(f"{r.name} {r.used:,}/{r.available:,}" for r in self.resources)
        lines = [f"{self.target.name}: {use}"]
        if self.router1_stopped_s is not None:
            lines.append(self.router_text)
        for c in self.clocks:
            lines.append(f"{c.name}: Fmax {c.achieved_mhz:.2f} MHz ({'met' if c.met else 'MISSED'} "
                         f"{c.constraint_mhz:g} MHz)")
        if self.frames_per_second is not None:
            lines.append(f"{self.frames_per_second:,.1f} frames/s at {self.fmax_mhz:.2f} MHz "
                         f"({self.cycles_per_frame:,} cycles per frame)")
        return "\n".join(lines)


def write_reports(result: SynthResult, md_path: Path, json_path: Path) -> None:
    """Write the markdown and JSON reports."""
    Path(md_path).write_text(result.to_markdown())
    Path(json_path).write_text(json.dumps(result.to_json(), indent=2) + "\n")
