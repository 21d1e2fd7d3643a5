"""A ``hwgen build`` output folder, as the simulator reads it.

Contract (written by ``hwgen build``):

* ``top.v``: Verilog module ``hwgen_top`` (``report.json``'s ``top_module``)
  with ports ``clk``, ``rst`` (synchronous, active high), ``s_axis_tdata[IN_WIDTH-1:0]``,
  ``s_axis_tvalid``, ``s_axis_tready``, ``s_axis_tlast`` (ignored by the
  design), ``m_axis_tdata[31:0]``, ``m_axis_tvalid``, ``m_axis_tready``,
  ``m_axis_tlast``. Input and output formats: :mod:`hwgen.sim.formats`.
* ``top_sim.v`` (optional; ``report.json``'s ``sim_verilog``): the same design
  for simulation, its match counts as their simulation model
  (:mod:`hwgen.sim.match_counts`), with the same ports.
* ``net.hwir``: the compiled IR, the golden model's source of truth.
* ``report.json``: at least ``top_module``, ``input_shape`` [C, H, W],
  ``num_classes``, ``cycles_per_frame`` (the folding estimate), ``dataset``
  (may be null) and ``layers``; ``in_width`` (IN_WIDTH, default 8: folders
  written before ``--in-width``), which must be the width top.v declares.

:func:`load_build_folder` checks all of that and raises
:class:`~hwgen.errors.SimError` naming what is missing or inconsistent.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from hwgen.hw.targets import instantiates_ecp5_cells
from hwgen.compile.artifact import load_network
from hwgen.compile.ir import Network
from hwgen.errors import CompileError, SimError

__all__ = ["MATCH_COUNTS", "TOP_PORTS", "BuildFolder", "load_build_folder", "verilog_sources"]

#: How a simulation runs the MVTU match counts: as their simulation model (``top_sim.v``) or as the cells.
MATCH_COUNTS = ("model", "cells")

TOP_PORTS = ("clk", "rst", "s_axis_tdata", "s_axis_tvalid", "s_axis_tready", "s_axis_tlast",
             "m_axis_tdata", "m_axis_tvalid", "m_axis_tready", "m_axis_tlast")
_REQUIRED_REPORT = ("top_module", "input_shape", "num_classes", "cycles_per_frame")


@dataclass
class BuildFolder:
    """A checked build folder: paths, the IR and the report's fields the simulator uses."""

    path: Path
    top_v: Path
    net: Network
    report: dict
    sim_v: Path | None = None  # top_sim.v, where the build wrote one

    def verilog(self, *, model: bool = True) -> Path:
        """The top Verilog a simulator compiles: ``top_sim.v`` (the match counts as their simulation
        model) where the build wrote one, ``model`` and :attr:`model_current`, else ``top.v`` (the cells,
        as synthesised)."""
        return self.sim_v if model and self.sim_v is not None and self.model_current else self.top_v

    @property
    def model_current(self) -> bool:
        """Whether ``top_sim.v`` was written by this hwgen's match-count code (report.json's
        ``match_count_code``), which the proofs of :mod:`hwgen.sim.match_counts` are made with."""
        from hwgen.hw.engines.popcount import source_digest

        return self.report.get("match_count_code") == source_digest()

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def top_module(self) -> str:
        return self.report["top_module"]

    @property
    def sources(self) -> list[Path]:
        """The Verilog files a simulator compiles by default: :meth:`verilog` and the models it needs."""
        return verilog_sources(self.verilog())

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return tuple(self.net.input_shape)

    @property
    def num_classes(self) -> int:
        return self.net.num_classes

    @property
    def cycles_per_frame(self) -> int:
        """The folding estimate of the steady-state cycles per frame."""
        return int(self.report["cycles_per_frame"])

    @property
    def latency_estimate(self) -> int | None:
        """The report's first-frame latency estimate in cycles, if it has one."""
        v = self.report.get("latency_cycles")
        return None if v is None else int(v)

    @property
    def dataset(self) -> str | None:
        return self.report.get("dataset") or self.net.metadata.get("dataset")

    @property
    def frame_bytes(self) -> int:
        c, h, w = self.input_shape
        return c * h * w

    @property
    def in_width(self) -> int:
        """Bits of ``s_axis_tdata``: in_width / 8 pixel bytes per beat (:func:`hwgen.sim.formats.pixel_beats`)."""
        return int(self.report.get("in_width", 8))

    @property
    def frame_beats(self) -> int:
        """s_axis beats per frame."""
        return self.frame_bytes // (self.in_width // 8)


def verilog_sources(top_v: Path) -> list[Path]:
    """``top_v``, the ECP5 cell models (``hwgen/sim/ecp5_cells.v``) if it instantiates ECP5 cells, and the
    match-count model (``hwgen/sim/match_count.v``) if it instantiates that."""
    from hwgen.hw.engines.popcount import MODEL_MODULE  # here: the CLI reads MATCH_COUNTS without the engines

    text = Path(top_v).read_text(errors="replace")
    models = [name for name, used in (("ecp5_cells.v", instantiates_ecp5_cells(text)),
                                      ("match_count.v", MODEL_MODULE in text)) if used]
    return [Path(top_v), *(Path(str(resources.files("hwgen.sim").joinpath(name))) for name in models)]


def load_build_folder(path: str | Path) -> BuildFolder:
    """Read and check ``path`` (top.v, net.hwir, report.json); SimError naming any problem."""
    path = Path(path)
    if not path.exists():
        raise SimError(f"build folder {path} does not exist (create it with `hwgen build ... -o {path}`)")
    if not path.is_dir():
        raise SimError(f"{path} is not a build folder (a directory written by `hwgen build`)")
    missing = [name for name in ("top.v", "net.hwir", "report.json") if not (path / name).is_file()]
    if missing:
        raise SimError(f"build folder {path} has no {', '.join(missing)}: is it the output of `hwgen build`?")
    try:
        report = json.loads((path / "report.json").read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise SimError(f"{path / 'report.json'} is not valid JSON: {exc}") from None
    if not isinstance(report, dict):
        raise SimError(f"{path / 'report.json'} must hold a JSON object")
    absent = [k for k in _REQUIRED_REPORT if k not in report]
    if absent:
        raise SimError(f"{path / 'report.json'} lacks {', '.join(absent)}")
    try:
        net = load_network(path / "net.hwir")
    except CompileError as exc:
        raise SimError(str(exc)) from None
    if list(report["input_shape"]) != list(net.input_shape):
        raise SimError(f"report.json says input_shape {report['input_shape']} but net.hwir has "
                       f"{list(net.input_shape)}: the folder mixes two builds")
    if int(report["num_classes"]) != net.num_classes:
        raise SimError(f"report.json says {report['num_classes']} classes but net.hwir has {net.num_classes}")
    top_v = path / "top.v"
    _check_ports(top_v, report["top_module"], int(report.get("in_width", 8)))
    sim_v = None
    if report.get("sim_verilog"):
        sim_v = path / str(report["sim_verilog"])
        if not sim_v.is_file():
            raise SimError(f"report.json names {sim_v.name} but {path} has none: rebuild the folder")
        _check_ports(sim_v, report["top_module"], int(report.get("in_width", 8)))
    return BuildFolder(path=path, top_v=top_v, net=net, report=report, sim_v=sim_v)


def _check_ports(top_v: Path, module: str, in_width: int) -> None:
    """The top module exists in top.v and declares every contract port."""
    text = top_v.read_text(errors="replace")
    m = re.search(rf"^\s*module\s+\\?{re.escape(module)}\s*\((.*?)\);", text, re.DOTALL | re.MULTILINE)
    if m is None:
        raise SimError(f"{top_v} defines no module {module!r} (report.json's top_module)")
    declared = set(re.findall(r"\b\w+\b", m.group(1)))
    lacking = [p for p in TOP_PORTS if p not in declared]
    if lacking:
        raise SimError(f"module {module} in {top_v} lacks the port(s) {', '.join(lacking)} "
                       f"of the AXI4-Stream contract")
    width = re.search(r"^\s*input\s*(?:\[(\d+):0\])?\s*\\?s_axis_tdata\s*;", text[m.end():], re.MULTILINE)
    bits = int(width.group(1)) + 1 if width and width.group(1) else 1
    if width is not None and bits != in_width:
        raise SimError(f"{top_v} declares s_axis_tdata[{bits - 1}:0] but report.json says in_width {in_width}: "
                       f"the folder mixes two builds")
