"""``hwgen synth``: run Yosys, nextpnr and the packer on a build folder and report what came out.

:func:`run_synth` renders the toolchain scripts for the chosen target
(:mod:`hwgen.synth.scripts`), runs the three stages with visible progress
(:mod:`hwgen.synth.stage`; logs ``synth.log``, ``pnr.log``, ``pack.log`` stay
in the build folder), parses the tools' outputs (:mod:`hwgen.synth.parse`) and
writes ``synth_report.md`` and ``synth_report.json`` (:mod:`hwgen.synth.report`).

Failures are :class:`~hwgen.errors.SynthError` messages with the numbers:

* no build folder or no Verilog, a tool not found, a bad --clock / --seed, a --nextpnr-args option
  the stage script sets itself;
* Yosys fails (its ERROR lines), or leaves no cells;
* the design does not fit (nextpnr's utilisation above 100 %: which resource, used / available);
* placement or routing fails for another reason (nextpnr's ERROR lines);
* router1 does not finish within its time limit: not a failure, nextpnr runs again with router2
  (:mod:`hwgen.synth.routers`; router1's log is kept as ``ROUTER1_LOG``);
* the design misses timing: nextpnr exits 1 but writes its outputs; the
  bitstream and reports are still written (the design works at the achieved
  Fmax), then the error gives the achieved and requested MHz and the critical
  path, unless ``allow_timing_fail`` is set.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator, Sequence
from functools import partial
from pathlib import Path
from typing import TextIO

from hwgen.hw.families import FAMILIES
from hwgen.hw.targets import Target, get_target
from hwgen.errors import SynthError
from hwgen.synth.parse import (
    log_errors,
    log_utilisation,
    read_cell_counts,
    read_pnr_report,
)
from hwgen.synth.report import (
    StageTime,
    SynthResult,
    resources,
    write_reports,
)
from hwgen.synth.routers import ROUTER1_LIMIT_S, ROUTER1_LOG, Router1Limit, choose_router
from hwgen.synth.scripts import (
    ToolchainFiles,
    render_pnr_script,
    render_toolchain_scripts,
    toolchain_files,
)
from hwgen.synth.stage import StageRun, run_stage
from hwgen.synth.tools import resolve_toolchain

__all__ = ["DEFAULT_FREQ_MHZ", "DEFAULT_SEED", "NEXTPNR_OPTIONS_SET", "check_nextpnr_args", "output_names", "run_synth"]

DEFAULT_FREQ_MHZ = 100.0
DEFAULT_SEED = 1

#: Phrases of nextpnr errors that mean the placer found no room.
_PLACEMENT_FAILURES = ("Unable to place", "Unable to find a placement location", "Failed to expand region",
                       "not enough", "exceeds")


def _read_log(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return ""


def _build_figures(build_dir: Path) -> dict[str, int]:
    """The positive integers of the build's report.json (``cycles_per_frame``, ``lut4_estimate``...); {} without one."""
    path = build_dir / "report.json"
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise SynthError(f"{path} cannot be read: {exc}") from None
    if not isinstance(data, dict):
        return {}
    return {k: v for k, v in data.items() if isinstance(v, int) and not isinstance(v, bool) and v > 0}


def _friendly(target: Target, bel: str) -> str:
    """"SB_IO" -> "I/O (SB_IO)"; bels without a resource name stay as they are."""
    name = target.spec.resource_of(bel)
    return f"{name} ({bel})" if name else bel


def _tool_failure(run: StageRun, tool: str, option: str, log_path: Path, top: str) -> SynthError:
    """A tool that failed for a reason other than fit or timing: its first ERROR lines; ``option`` replaces it."""
    log = _read_log(log_path)
    if "wasm trap" in log or "call stack exhausted" in log:
        return SynthError(f"{tool} ran out of stack on {top} (a limit of the WebAssembly build, typically a very "
                          f"long chain of logic); use a native build with --{option} PATH; log: {log_path}")
    errors = log_errors(log)
    detail = "; ".join(errors[:3]) if errors else (log.strip().splitlines() or ["no output"])[-1][:300]
    return SynthError(f"{tool} failed on {top} (exit {run.returncode}): {detail}; log: {log_path}")


def _pnr_failure(target: Target, run: StageRun, log_path: Path, top: str) -> SynthError:
    """nextpnr stopped without outputs: the design does not fit, placement failed, or another error."""
    log = _read_log(log_path)
    utilization = log_utilisation(log)
    over = [(bel, used, avail) for bel, (used, avail) in utilization.items() if used > avail]
    where = f"{target.name} ({target.part} {target.package})"
    if over:
        items = ", ".join(f"{_friendly(target, bel)} {used:,} > {avail:,} ({100 * used / avail:.0f} %)"
                          if avail else f"{_friendly(target, bel)} {used:,} > 0 (the device has none)"
                          for bel, used, avail in over)
        io_bel = target.spec.bel("I/O")
        hints = []
        if any(bel != io_bel for bel, _, _ in over):
            hints.append("choose a larger --target or a smaller folding (hwgen build --pe)")
        if any(bel == io_bel for bel, _, _ in over):
            hints.append("every bit of the top level's ports needs a pin: use a package with more pins or a board "
                         "wrapper")
        return SynthError(f"{top} does not fit {where}: {items}; {'; '.join(hints)}; log: {log_path}")
    errors = log_errors(log)
    if any(phrase in e for e in errors for phrase in _PLACEMENT_FAILURES):
        use = ", ".join(f"{_friendly(target, bel)} {used:,}/{avail:,}" for bel, (used, avail) in utilization.items()
                        if used and target.spec.resource_of(bel))
        return SynthError(f"{top} could not be placed on {where} ({use}): {errors[0]}; log: {log_path}")
    return _tool_failure(run, target.spec.nextpnr, "nextpnr", log_path, top)


def output_names(files: ToolchainFiles) -> tuple[str, ...]:
    """The files a successful run writes besides its logs (what a failed run must not leave half-done)."""
    return (files.netlist, files.stat_text, files.stat_json, files.routed, files.pnr_report, files.bitstream,
            files.report_md, files.report_json)


@contextlib.contextmanager
def previous_outputs_kept(build_dir: Path, names: Sequence[str]) -> Iterator[None]:
    """Move the previous run's files ``names`` aside for the block; put them back if the block raises.

    A stage never sees (or reports) a stale file, and a failed run (a tool
    error, Ctrl-C) leaves the previous bitstream and reports as they were;
    the failed run's logs stay, as they say what went wrong. When the block
    completes, the previous outputs are deleted.
    """
    aside = Path(tempfile.mkdtemp(dir=build_dir, prefix=".hwgen-previous-"))
    moved = []
    try:
        for name in names:
            if (build_dir / name).is_file():
                os.replace(build_dir / name, aside / name)
                moved.append(name)
        yield
    except BaseException:
        for name in names:
            (build_dir / name).unlink(missing_ok=True)
        for name in moved:
            os.replace(aside / name, build_dir / name)
        raise
    finally:
        shutil.rmtree(aside, ignore_errors=True)


def timing_message(result: SynthResult, report_path: Path) -> str:
    """The one-line error of a run that wrote its bitstream but missed its clock."""
    missed = [c for c in result.clocks if not c.met]
    parts = [f"{c.name} reaches {c.achieved_mhz:.2f} MHz, {c.constraint_mhz:g} MHz requested" for c in missed]
    paths = result.clock_paths()
    worst = max(paths, key=lambda p: p.delay_ns, default=None)
    path = (f" (critical path {worst.delay_ns:.2f} ns, {worst.logic_ns:.2f} logic + {worst.routing_ns:.2f} routing: "
            f"{worst.start.signal} -> {worst.end.signal})") if worst else ""
    fmax = result.fmax_mhz
    bit = f"the bitstream {result.bitstream} was written and runs at up to {fmax:.2f} MHz; " if result.bitstream else ""
    return (f"{result.top} misses timing on {result.target.name}: {'; '.join(parts)}{path}; {bit}"
            f"retry with --clock {int(fmax)} or another --seed; report: {report_path}")


def _refuse_other_family_cells(build_dir: Path, sources: Sequence[str], target: Target) -> None:
    """SynthError when a source instantiates another family's cells (e.g. an ECP5 build for an iCE40 target)."""
    for spec in FAMILIES.values():
        if spec.family is target.family:
            continue
        for source in sources:
            if spec.instantiates_cells((build_dir / source).read_text(errors="replace")):
                raise SynthError(f"{build_dir / source} was built for an {spec.name} (its MVTUs instantiate "
                                 f"{spec.name} cells: {', '.join(spec.cells)}), not for {target.name}: rebuild it "
                                 f"with `hwgen build ... --target {target.name}`")


#: nextpnr options the stage script sets itself: the hwgen synth option to use instead, or None (not settable).
NEXTPNR_OPTIONS_SET = {"--freq": "--clock", "--seed": "--seed", "--router": "--router", "--lpf": "--constraints",
                       "--pcf": "--constraints", "--json": None, "--textcfg": None, "--asc": None, "--report": None}


def check_nextpnr_args(args: Sequence[str]) -> tuple[str, ...]:
    """``args`` as a tuple, or SynthError: an option the stage script sets itself
    (:data:`NEXTPNR_OPTIONS_SET`), or a word the script's unquoted ``${NEXTPNR_FLAGS}`` would split or
    expand (white space, ``*?[``, quotes, ``$``, backslash)."""
    for arg in args:
        name = arg.split("=", 1)[0]
        if name in NEXTPNR_OPTIONS_SET:
            instead = NEXTPNR_OPTIONS_SET[name]
            raise SynthError(f"--nextpnr-args: hwgen synth sets nextpnr's {name} itself"
                             + (f": use hwgen synth {instead}" if instead else ""))
        if not arg or any(c.isspace() or c in "*?['\"$\\`" for c in arg):
            raise SynthError(f"--nextpnr-args: {arg!r} is not one plain word (no spaces, quotes, $, *, ?, [ or "
                             f"backslash): pass each option and value as its own word")
    return tuple(args)


def run_synth(build_dir: Path | str, target: Target | str, freq_mhz: float = DEFAULT_FREQ_MHZ,
              seed: int = DEFAULT_SEED, *, yosys: str | None = None, nextpnr: str | None = None,
              pack: str | None = None, top: str = "hwgen_top", verilog: str | Sequence[str] = "top.v",
              constraints: str | None = None, allow_timing_fail: bool = False, router: str | None = None,
              router1_limit_s: float = ROUTER1_LIMIT_S, nextpnr_args: Sequence[str] = (),
              stream: TextIO | None = None) -> SynthResult:
    """Synthesise, place and route and pack ``build_dir/verilog`` for ``target``; the parsed result.

    ``verilog``: one file, or several read in order (a board top and the
    accelerator); ``top``: the module to synthesise.

    ``yosys``, ``nextpnr``, ``pack``: commands replacing the YoWASP defaults.
    ``constraints``: an LPF / PCF file in the build folder (None: out of
    context, I/O placed anywhere). Progress goes to ``stream`` (default
    standard error). Raises SynthError (see the module docstring); with
    ``allow_timing_fail`` a timing miss returns the result instead. ``router``:
    nextpnr-ecp5's router (None: :func:`~hwgen.synth.routers.choose_router` of
    the build's LUT4 estimate in report.json). ``router1_limit_s``: seconds of
    routing router1 gets before nextpnr runs again with router2 (0: no limit;
    :class:`~hwgen.synth.routers.Router1Limit`). ``nextpnr_args``: extra nextpnr
    options, checked by :func:`check_nextpnr_args` (recorded in the reports).
    """
    nextpnr_args = check_nextpnr_args(nextpnr_args)
    if isinstance(router1_limit_s, bool) or not isinstance(router1_limit_s, (int, float)) \
            or not math.isfinite(router1_limit_s) or router1_limit_s < 0:
        raise SynthError(f"--router1-limit must be a number of seconds >= 0 (0: no limit), not {router1_limit_s!r}")
    build_dir = Path(build_dir)
    if not build_dir.is_dir():
        raise SynthError(f"build folder {build_dir} does not exist (run hwgen build first)")
    for source in [verilog] if isinstance(verilog, str) else verilog:
        if not (build_dir / source).is_file():
            raise SynthError(f"build folder {build_dir} has no {source} (run hwgen build first)")
    if constraints is not None and not (build_dir / constraints).is_file():
        raise SynthError(f"constraints file {build_dir / constraints} does not exist")
    target = get_target(target)
    _refuse_other_family_cells(build_dir, [verilog] if isinstance(verilog, str) else verilog, target)
    tools = resolve_toolchain(target.family, yosys=yosys, nextpnr=nextpnr, pack=pack)
    figures = _build_figures(build_dir)
    if router is None:
        router = choose_router(figures.get("lut4_estimate"))
    script_args = dict(top=top, verilog=verilog, target=target, freq_mhz=freq_mhz, seed=seed, constraints=constraints)
    render_toolchain_scripts(build_dir, **script_args, router=router)
    files = toolchain_files(target.family)
    cycles = figures.get("cycles_per_frame")
    limit = router1_limit_s if target.spec.router_choice and router == "router1" else 0
    with previous_outputs_kept(build_dir, output_names(files)):
        result = _run_stages(build_dir, target, tools, files, top=top, freq_mhz=freq_mhz, seed=seed, cycles=cycles,
                             nextpnr_args=nextpnr_args, stream=stream, router=router, router1_limit_s=limit,
                             render_pnr=partial(render_pnr_script, build_dir, **script_args))
    if not result.timing_met and not allow_timing_fail:
        raise SynthError(timing_message(result, build_dir / files.report_md))
    return result


def _run_stages(build_dir: Path, target: Target, tools, files: ToolchainFiles, *, top: str, freq_mhz: float,
                seed: int, cycles: int | None, nextpnr_args: tuple[str, ...], stream: TextIO | None, router: str,
                router1_limit_s: float, render_pnr: Callable[..., object]) -> SynthResult:
    """Yosys, nextpnr, the packer, then the reports (written even when timing is missed); SynthError on failure.

    ``router1_limit_s`` > 0: nextpnr (with router1) is stopped after that much routing
    (:class:`~hwgen.synth.routers.Router1Limit`), its log kept as :data:`ROUTER1_LOG`, and runs again on the
    ``pnr.sh`` that ``render_pnr(router="router2")`` writes.
    """
    env = dict(os.environ, YOSYS=tools.yosys, NEXTPNR=tools.nextpnr, PACK=tools.pack,
               FREQ=f"{float(freq_mhz):.6g}", SEED=str(seed), NEXTPNR_FLAGS=" ".join(nextpnr_args))
    stages: list[StageTime] = []

    def stage(name: str, tool: str, script: str, log: str, stop=None) -> StageRun:
        run = run_stage(name, tool, ["sh", script], cwd=build_dir, env=env, log_path=build_dir / log, stream=stream,
                        stop=stop)
        stages.append(StageTime(name if run.stopped is None else f"{name} ({run.stopped}: stopped)", tool,
                                run.seconds))
        return run

    run = stage("synth", "yosys", files.scripts.synth, files.logs.synth)
    if run.returncode != 0 or not (build_dir / files.netlist).is_file():
        raise _tool_failure(run, "yosys", "yosys", build_dir / files.logs.synth, top)
    cells = read_cell_counts(build_dir / files.stat_json)
    if not cells:
        raise SynthError(f"synthesis of {top} left no cells: nothing drives an output of the design; "
                         f"log: {build_dir / files.logs.synth}")

    pnr_tool = target.spec.nextpnr
    (build_dir / ROUTER1_LOG).unlink(missing_ok=True)  # only a run that stopped router1 leaves one
    limit = Router1Limit(build_dir / files.logs.pnr, router1_limit_s) if router1_limit_s else None
    run = stage("pnr", pnr_tool, files.scripts.pnr, files.logs.pnr, stop=limit)
    router_stopped_s = None
    if run.stopped is not None:
        router_stopped_s = router1_limit_s
        os.replace(build_dir / files.logs.pnr, build_dir / ROUTER1_LOG)
        router = "router2"
        render_pnr(router=router)
        run = stage("pnr", pnr_tool, files.scripts.pnr, files.logs.pnr)
    report_written = (build_dir / files.pnr_report).is_file() and (build_dir / files.routed).is_file()
    if run.returncode != 0 and not report_written:
        raise _pnr_failure(target, run, build_dir / files.logs.pnr, top)
    pnr = read_pnr_report(build_dir / files.pnr_report)
    timing_met = all(c.met for c in pnr.clocks)
    if run.returncode != 0 and timing_met:
        raise _tool_failure(run, pnr_tool, "nextpnr", build_dir / files.logs.pnr, top)

    pack_tool = target.spec.packer
    run = stage("pack", pack_tool, files.scripts.pack, files.logs.pack)
    if run.returncode != 0 or not (build_dir / files.bitstream).is_file():
        raise _tool_failure(run, pack_tool, "pack", build_dir / files.logs.pack, top)

    result = SynthResult(
        build_dir=str(build_dir), top=top, target=target, freq_mhz=float(freq_mhz), seed=seed,
        resources=resources(target, pnr.utilization, cells), cells=cells, clocks=pnr.clocks,
        critical_paths=pnr.critical_paths, stages=stages, bitstream=files.bitstream, cycles_per_frame=cycles,
        nextpnr_args=nextpnr_args, router=router if target.spec.router_choice else None,
        router1_stopped_s=router_stopped_s)
    write_reports(result, build_dir / files.report_md, build_dir / files.report_json)
    return result

