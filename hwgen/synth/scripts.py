"""Toolchain scripts rendered into a build folder from the jinja2 templates in ``templates/``.

A build folder gets, for its target's family (ECP5 or iCE40):

* ``synth.ys``: the Yosys script (the family's pass, ``synth_ecp5`` / ``synth_ice40``; cell counts
  with ``stat`` into ``synth_stat.txt`` / ``synth_stat.json``; ``synth.json``);
* ``synth.sh``, ``pnr.sh``, ``pack.sh``: one shell script per stage, the only
  place the tool command lines are written; ``hwgen synth`` runs them and so
  does the Makefile. Tools come from the environment (YOSYS, NEXTPNR, PACK;
  default the YoWASP commands), FREQ (MHz) and SEED default to the rendered values;
* ``Makefile``: ``make synth``, ``make pnr``, ``make bitstream`` by hand, without hwgen.

:func:`toolchain_context` is the one place the templates' context is built;
:func:`render_toolchain_scripts` writes the files (byte-identical for the
same arguments).
"""

from __future__ import annotations

import math
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import jinja2

from hwgen import __version__
from hwgen.hw.engines.pipeline import FANOUT_COPY
from hwgen.hw.targets import Family, Target, get_target
from hwgen.errors import SynthError
from hwgen.synth.routers import ROUTER2_MIN_LUT4, ROUTERS
from hwgen.synth.sources import SOURCE_DIR, synthesis_source_names, write_synthesis_sources
from hwgen.synth.tools import default_toolchain

__all__ = ["TEMPLATE_DIR", "StageFiles", "ToolchainFiles", "render_pnr_script", "render_template",
           "render_toolchain_scripts", "toolchain_context", "toolchain_files"]

TEMPLATE_DIR = Path(__file__).resolve().parents[1] / "templates"  # hwgen/templates -> templates/ in a checkout

#: Names that go into shell scripts and the Makefile unquoted: no spaces or shell characters.
_SAFE_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.+\-/]*")
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_$]*")


@dataclass(frozen=True)
class StageFiles:
    """One file name per stage (scripts or logs)."""

    synth: str
    pnr: str
    pack: str


@dataclass(frozen=True)
class ToolchainFiles:
    """File names in a build folder, relative to it."""

    synth_script: str   #: Yosys script
    netlist: str        #: synthesised netlist (Yosys JSON)
    stat_text: str      #: Yosys ``stat`` (text)
    stat_json: str      #: Yosys ``stat -json``: cells by type
    routed: str         #: placed and routed design (ECP5 Trellis .config, iCE40 .asc)
    pnr_report: str     #: nextpnr ``--report``: utilisation, Fmax, critical paths
    bitstream: str      #: ECP5 .bit, iCE40 .bin
    scripts: StageFiles  #: stage shell scripts
    logs: StageFiles    #: stage logs (stdout and stderr of each tool)
    report_md: str = "synth_report.md"
    report_json: str = "synth_report.json"


def toolchain_files(family: Family) -> ToolchainFiles:
    """The build folder's file names for ``family`` (routed design and bitstream: its spec's)."""
    spec = family.spec
    return ToolchainFiles(
        synth_script="synth.ys", netlist="synth.json", stat_text="synth_stat.txt", stat_json="synth_stat.json",
        routed=spec.routed, pnr_report="pnr_report.json", bitstream=spec.bitstream,
        scripts=StageFiles("synth.sh", "pnr.sh", "pack.sh"),
        logs=StageFiles("synth.log", "pnr.log", "pack.log"),
    )


def _format_freq(freq_mhz: float) -> str:
    """MHz as nextpnr's --freq takes it: ``125``, ``62.5`` (at most 6 significant digits)."""
    return f"{freq_mhz:.6g}"


def netlist_pass(target: Target) -> str | None:
    """The module ``synth.sh`` runs on Yosys's netlist (the family's :attr:`~hwgen.hw.families.FamilySpec.netlist_pass`),
    or None on a family without one; with either router.

    ECP5's pass (:mod:`hwgen.synth.bram_outreg`) was measured first with router1: TFC from 130.45 to
    145.26-155.88 MHz (docs/synth.md). With router2 its first try failed (CNV ``--pe 16``, older engines,
    2026-12-05: 2,012 overused wires after 19 iterations and 45 minutes); on the engines with register slices
    between windows and engines, the packed CNV ``--pe 16`` routed in 28 iterations at 85.01 MHz against
    76.38 unpacked (seed 1, 2026-12-05), so it runs with both routers.
    """
    return target.spec.netlist_pass


#: The out-of-context run's constraints file: ``clk`` on the target's primary-clock ball (Target.clock_site).
CLOCK_LPF = "clock.lpf"


def toolchain_context(*, top: str, verilog: str | Sequence[str], target: Target | str, freq_mhz: float,
                      seed: int, constraints: str | None = None, router: str = "router1") -> dict:
    """The templates' context; SynthError for a non-positive frequency, a negative seed or an unsafe name.

    ``verilog`` (one file, or several read in order: a board top with the
    accelerator's ``top.v``) and ``constraints`` (an LPF / PCF file, or None
    for an out-of-context run) are file names relative to the build folder.
    """
    target = get_target(target)
    if isinstance(freq_mhz, bool) or not isinstance(freq_mhz, (int, float)) or not math.isfinite(freq_mhz) \
            or freq_mhz <= 0:
        raise SynthError(f"--clock must be a positive number of MHz, not {freq_mhz!r}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise SynthError(f"--seed must be a non-negative integer, not {seed!r}")
    if router not in ROUTERS:
        raise SynthError(f"--router must be one of {', '.join(ROUTERS)}, not {router!r}")
    if not _IDENTIFIER.fullmatch(top):
        raise SynthError(f"top module name {top!r} is not a Verilog identifier")
    sources = [verilog] if isinstance(verilog, str) else list(verilog)
    if not sources:
        raise SynthError("no Verilog file to synthesise")
    for what, name in [*(("Verilog file", v) for v in sources), ("constraints file", constraints)]:
        if name is not None and not (isinstance(name, str) and _SAFE_NAME.fullmatch(name)):
            raise SynthError(f"{what} name {name!r} must be a plain relative path (letters, digits, _ . + - /)")
    return {
        "banner": f"Generated by hwgen {__version__} (hwgen synth / hwgen build): edits are overwritten.",
        "top": top,
        "verilog": " ".join(sources),
        # what Yosys reads: the sources with the memories' contents in $readmemh files (hwgen.synth.sources)
        "yosys_sources": list(zip(sources, synthesis_source_names(sources))),
        "target": target,
        "family": target.spec,
        "freq": _format_freq(float(freq_mhz)),
        "seed": seed,
        "router": router,
        "netlist_pass": netlist_pass(target),
        "router2_min_lut4": ROUTER2_MIN_LUT4,
        "source_dir": SOURCE_DIR,
        "fanout_copy": FANOUT_COPY,
        "constraints": constraints,
        "clock_lpf": CLOCK_LPF if constraints is None and target.clock_site else None,
        "files": toolchain_files(target.family),
        "tools": default_toolchain(target.family),
        "python": sys.executable,
    }


def _environment() -> jinja2.Environment:
    return jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATE_DIR), undefined=jinja2.StrictUndefined,
                              keep_trailing_newline=True, trim_blocks=True, lstrip_blocks=True,
                              autoescape=False)


def render_template(name: str, context: dict) -> str:
    """``templates/NAME`` rendered with ``context``; a variable missing from it raises jinja2.UndefinedError."""
    return _environment().get_template(name).render(context)


def render_toolchain_scripts(build_dir: Path, *, top: str, verilog: str | Sequence[str], target: Target | str,
                             freq_mhz: float, seed: int, constraints: str | None = None,
                             router: str = "router1") -> list[Path]:
    """Write ``synth.ys``, ``synth.sh``, ``pnr.sh``, ``pack.sh`` and ``Makefile`` into ``build_dir`` (and
    :data:`CLOCK_LPF` for an out-of-context run on a target with a ``clock_site``); their paths. Also the
    Verilog Yosys reads, ``synth_src/`` (:func:`~hwgen.synth.sources.write_synthesis_sources`), when every
    source is in ``build_dir`` (``synth.sh`` refuses to run without it, or when a source is newer).

    See :func:`toolchain_context` for the arguments; existing files are overwritten.
    """
    context = toolchain_context(top=top, verilog=verilog, target=target, freq_mhz=freq_mhz, seed=seed,
                                constraints=constraints, router=router)
    sources = [source for source, _ in context["yosys_sources"]]
    if all((Path(build_dir) / source).is_file() for source in sources):
        write_synthesis_sources(Path(build_dir), sources)
    spec = context["family"]
    files: ToolchainFiles = context["files"]
    outputs = {
        files.synth_script: "synth.ys.j2",
        files.scripts.synth: "synth.sh.j2",
        files.scripts.pnr: spec.templates.pnr,
        files.scripts.pack: spec.templates.pack,
        "Makefile": "Makefile.j2",
    }
    if context["clock_lpf"]:
        outputs[context["clock_lpf"]] = "clock.lpf.j2"
    return [_write_rendered(Path(build_dir) / name, template, context) for name, template in outputs.items()]


def render_pnr_script(build_dir: Path, *, top: str, verilog: str | Sequence[str], target: Target | str,
                      freq_mhz: float, seed: int, constraints: str | None = None, router: str = "router1") -> Path:
    """Write only the place-and-route script (``pnr.sh``) into ``build_dir``, as
    :func:`render_toolchain_scripts` does with the same arguments; its path. For ``hwgen synth``'s switch
    from router1 to router2 after Yosys has run (:mod:`hwgen.synth.routers`): the other scripts and
    ``synth_src/`` stay as they are."""
    context = toolchain_context(top=top, verilog=verilog, target=target, freq_mhz=freq_mhz, seed=seed,
                                constraints=constraints, router=router)
    return _write_rendered(Path(build_dir) / context["files"].scripts.pnr, context["family"].templates.pnr, context)


def _write_rendered(path: Path, template: str, context: dict) -> Path:
    """``template`` rendered with ``context`` into ``path`` (a ``.sh`` made executable); ``path``."""
    path.write_text(render_template(template, context))
    if path.name.endswith(".sh"):
        path.chmod(0o755)
    return path
