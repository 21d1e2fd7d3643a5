"""Board table, protocol encoding, generated board files (Verilog, LPF / PCF, board.json), ``hwgen synth --board`` options.

The pin tables are checked against amaranth-boards' ULX3S and iCEBreaker
definitions when that package is installed (the ``test`` extra). ``-m slow``
takes a small design through ``hwgen synth --board ulx3s-85f`` and
``--board icebreaker`` to bitstreams.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from hwgen.boards.boards import BOARDS, get_board
from hwgen.boards.generate import read_board_info, read_ident, write_board_files
from hwgen.boards.protocol import (
    IDENT_MAGIC,
    REQUEST_CLASSIFY,
    Ident,
    classify_request,
    decode_reply,
    design_id,
    encode_reply,
)
from hwgen.cli import main
from hwgen.compile.artifact import load_network, save_network
from hwgen.errors import BoardError, SynthError
from hwgen.synth.scripts import render_toolchain_scripts

pytestmark = pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")


@pytest.fixture(scope="module")
def small_build(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A build folder of a small random network (3x6x6 input, 4 classes)."""
    from irnets import random_network

    from hwgen.hw.builder import BuildOptions, build

    net = random_network(np.random.default_rng(21), (3, 6, 6), [("conv", 4, 3, 1, 1), ("pool", 2), ("fc", 8)],
                         num_classes=4, first_weight_bits=4)
    root = tmp_path_factory.mktemp("boards")
    save_network(root / "small.hwir", net)
    build(root / "small.hwir", root / "small", BuildOptions(pe=2), log=lambda *a: None)
    return root / "small"


# -- board table -----------------------------------------------------------------

def test_board_table() -> None:
    assert set(BOARDS) == {"ulx3s-85f", "ulx3s-45f", "ulx3s-25f", "icebreaker"}
    for board in BOARDS.values():
        sites = [p.site for p in board.pins]
        ports = [p.port for p in board.pins]
        assert len(set(sites)) == len(sites) and len(set(ports)) == len(ports)
        assert board.pin(board.clock_port).direction == "i" and board.pin(board.reset_port).direction == "i"
        assert {f"led[{k}]" for k in range(board.led_count)} <= set(ports)
        if board.name.startswith("ulx3s"):
            assert board.target.package == "CABGA381" and board.oscillator_hz == 25e6
    assert get_board("ulx3s-85f").target.part == "LFE5U-85F"
    ice = get_board("icebreaker")
    assert (ice.target.part, ice.target.package, ice.oscillator_hz, ice.lpf_name) == \
        ("iCE40UP5K", "sg48", 12e6, "icebreaker.pcf")
    with pytest.raises(BoardError, match="unknown board 'orangecrab': choose one of ulx3s-85f, ulx3s-45f, ulx3s-25f, "
                                         "icebreaker"):
        get_board("orangecrab")
    with pytest.raises(BoardError, match="no pin 'led\\[8\\]'"):
        get_board("ulx3s-85f").pin("led[8]")


def test_ulx3s_pins_match_amaranth_boards() -> None:
    ulx3s = pytest.importorskip("amaranth_boards.ulx3s", reason="amaranth-boards (the test extra) is not installed")
    platform = ulx3s.ULX3S_85F_Platform()
    assert platform.device == get_board("ulx3s-85f").target.part

    def pins(name: str, number: int = 0, sub: str | None = None):
        res = platform.lookup(name, number)
        ios = res.ios if sub is None else next(s.ios for s in res.ios if getattr(s, "name", None) == sub)
        return ios[0]

    board = get_board("ulx3s-85f")
    clock = platform.lookup("clk25", 0)
    assert pins("clk25").names == [board.pin("clk25").site] and clock.clock.frequency == board.oscillator_hz
    pwr = pins("button_pwr")
    assert pwr.names == [board.pin("btn_pwr_n").site] and pwr.invert  # active low: our "_n"
    assert pins("uart", sub="rx").names == [board.pin("uart_rx").site]
    assert pins("uart", sub="tx").names == [board.pin("uart_tx").site]
    assert pins("esp32", sub="gpio0").names == [board.pin("wifi_gpio0").site]
    for k in range(8):
        led = pins("led", k)
        assert led.names == [board.pin(f"led[{k}]").site] and not led.invert


def test_icebreaker_pins_match_amaranth_boards() -> None:
    icebreaker = pytest.importorskip("amaranth_boards.icebreaker",
                                     reason="amaranth-boards (the test extra) is not installed")
    platform = icebreaker.ICEBreakerPlatform()
    board = get_board("icebreaker")
    assert platform.device == board.target.part and platform.package.lower() == board.target.package

    def ios(name: str, number: int = 0, sub: str | None = None):
        res = platform.lookup(name, number)
        return res.ios[0] if sub is None else next(s.ios for s in res.ios if getattr(s, "name", None) == sub)[0]

    assert ios("clk12").names == [board.pin("clk12").site]
    assert platform.lookup("clk12", 0).clock.frequency == board.oscillator_hz
    button = ios("button")
    assert button.names == [board.pin("btn_n").site] and button.invert  # active low: our "_n"
    assert ios("uart", sub="rx").names == [board.pin("uart_rx").site]
    assert ios("uart", sub="tx").names == [board.pin("uart_tx").site]
    platform.add_resources(platform.break_off_pmod)  # the break-off PMOD's LEDs, as the board ships
    greens = [platform.lookup("led_g", k).ios[0] for k in range(1, 5)]
    red = platform.lookup("led_r", 1).ios[0]
    connector = dict(platform.connectors[("pmod", 2)].mapping)  # break-off PMOD pin -> package pin

    def package_pin(io) -> str:
        (name,) = io.names
        return connector[name.split(":")[-1]] if ":" in name else name

    assert [package_pin(io) for io in greens] == [board.pin(f"led[{k}]").site for k in range(4)]
    assert package_pin(red) == board.pin("led[4]").site


def test_icebreaker_board_files(small_build: Path) -> None:
    """The iCEBreaker top runs from its 12 MHz oscillator (no iCE40 PLL): a PCF with every pin, no PLL."""
    files = write_board_files(small_build, "icebreaker")
    assert files.pll is None and files.clock_hz == 12e6 and files.divisor == 12 and files.lpf == "icebreaker.pcf"
    text = (small_build / "board_top.v").read_text()
    assert "EHXPLLL" not in text and "hwgen_top accelerator" in text
    assert sorted(_ports(text, "icebreaker_top")) == sorted(p.port for p in files.board.pins)
    pcf = (small_build / "icebreaker.pcf").read_text()
    for pin in files.board.pins:
        assert re.search(rf"^set_io( -pullup yes)? {re.escape(pin.port)} {pin.site}\b", pcf, re.MULTILINE), pin
    assert "set_io -pullup yes uart_rx 6" in pcf and "set_frequency clk12 12" in pcf
    with pytest.raises(BoardError, match="runs from its 12 MHz oscillator .* use --freq 12"):
        write_board_files(small_build, "icebreaker", clock_mhz=48)


# -- protocol ------------------------------------------------------------------------

def test_ident_round_trip_and_refusals() -> None:
    ident = Ident(3, 32, 32, 10, b"\x01\x02\x03\x04")
    data = ident.pack()
    assert len(data) == 16 and data[:4] == IDENT_MAGIC and Ident.unpack(data) == ident
    assert data.hex() == "6877676e" "01" "03" "2000" "2000" "0a00" "01020304"
    with pytest.raises(BoardError, match="starts with b'xwgn'"):
        Ident.unpack(b"x" + data[1:])
    with pytest.raises(BoardError, match="protocol version 9"):
        Ident.unpack(data[:4] + b"\x09" + data[5:])
    with pytest.raises(BoardError, match="15 bytes"):
        Ident.unpack(data[:-1])
    with pytest.raises(BoardError, match="channels must be an integer in 1..255"):
        Ident(0, 1, 1, 1, b"abcd")


def test_classify_request_is_y_x_c_order() -> None:
    image = np.arange(2 * 2 * 3, dtype=np.uint8).reshape(3, 2, 2)  # (C, H, W)
    req = classify_request(image)
    assert req[0] == REQUEST_CLASSIFY
    assert list(req[1:]) == [image[c, y, x] for y in range(2) for x in range(2) for c in range(3)]
    with pytest.raises(BoardError, match="uint8 \\(C, H, W\\)"):
        classify_request(image.astype(np.int16))


def test_reply_round_trip_and_checks() -> None:
    scores = np.array([-5, 1 << 30, -(1 << 31), 7])
    data = encode_reply(scores, 1)
    assert data[:4] == (-5).to_bytes(4, "little", signed=True) and data[-4:] == b"\x01\0\0\0"
    got, cls = decode_reply(data, 4)
    assert got.tolist() == scores.tolist() and cls == 1
    with pytest.raises(BoardError, match="19 bytes, expected 20"):
        decode_reply(data[:-1], 4)
    with pytest.raises(BoardError, match="replied class 9, but the network has 4 classes"):
        decode_reply(data[:-4] + b"\x09\0\0\0", 4)
    with pytest.raises(BoardError, match="argmax of its scores .* is 1"):
        decode_reply(data[:-4] + b"\x03\0\0\0", 4)
    # ties go to the lowest index, as in the hardware
    assert decode_reply(encode_reply(np.array([3, 3, 1]), 0), 3)[1] == 0


def test_design_id_names_the_network_not_the_file_bytes(small_build: Path, tmp_path: Path) -> None:
    net = load_network(small_build / "net.hwir")
    save_network(tmp_path / "copy.hwir", net)
    assert design_id(tmp_path / "copy.hwir") == design_id(small_build / "net.hwir")
    net.layers[-1].weights[0].flat[0] *= -1
    save_network(tmp_path / "changed.hwir", net)
    assert design_id(tmp_path / "changed.hwir") != design_id(small_build / "net.hwir")
    (tmp_path / "bad.hwir").write_bytes(b"nonsense")
    with pytest.raises(BoardError, match="not a readable hwgen IR file"):
        design_id(tmp_path / "bad.hwir")


# -- generated files --------------------------------------------------------------------

def _ports(verilog_text: str, module: str) -> list[str]:
    """Port bits of ``module``: ``led[0]`` .. for buses."""
    body = verilog_text[verilog_text.index(f"module {module}("):]
    body = body[:body.index("endmodule")]
    bits = []
    for width, name in re.findall(r"^\s*(?:input|output|inout)\s+(?:\[(\d+):0\]\s+)?(\w+);", body, re.MULTILINE):
        bits += [f"{name}[{k}]" for k in range(int(width) + 1)] if width else [name]
    return bits


def test_board_files(small_build: Path) -> None:
    files = write_board_files(small_build, "ulx3s-85f")  # the build's --clock: 100 MHz, through the PLL
    assert files.pll is not None and files.clock_hz == 100e6 and files.divisor == 100
    text = (small_build / "board_top.v").read_text()
    lpf = (small_build / "ulx3s-85f.lpf").read_text()
    assert text.startswith("// Generated by hwgen") and "EHXPLLL" in text and "hwgen_top accelerator" in text
    ports = _ports(text, "ulx3s_top")
    assert sorted(ports) == sorted(p.port for p in files.board.pins)
    for pin in files.board.pins:  # every port bit has a location and an I/O standard
        assert f'LOCATE COMP "{pin.port}" SITE "{pin.site}";' in lpf
        assert re.search(rf'IOBUF PORT "{re.escape(pin.port)}" IO_TYPE=LVCMOS33', lpf)
    assert 'FREQUENCY PORT "clk25" 25 MHZ;' in lpf
    info = read_board_info(small_build)
    assert info["board"] == "ulx3s-85f" and info["uart_divisor"] == 100 and info["baud"] == 1_000_000
    assert info["pll"] == {"clki_div": 1, "clkfb_div": 4, "clkop_div": 6, "vco_hz": 600e6}
    assert info["design_id"] == read_ident(small_build).design.hex()
    assert info["input_shape"] == [3, 6, 6] and info["num_classes"] == 4
    assert "PLL" in files.summary() and "100 cycles per bit" in files.summary()


def test_board_files_are_deterministic_and_follow_the_options(small_build: Path) -> None:
    write_board_files(small_build, "ulx3s-45f", clock_mhz=25, baud=115200)
    first = {n: (small_build / n).read_bytes() for n in ("board_top.v", "ulx3s-45f.lpf", "board.json")}
    write_board_files(small_build, "ulx3s-45f", clock_mhz=25, baud=115200)
    assert first == {n: (small_build / n).read_bytes() for n in first}
    info = json.loads(first["board.json"])
    assert info["pll"] is None and info["uart_divisor"] == 217 and info["target"] == "ecp5-45k"
    assert b"EHXPLLL" not in first["board_top.v"]


@pytest.mark.parametrize("kwargs, match", [
    (dict(baud=4_000_000), "runs at up to 3,000,000 baud, not 4,000,000"),
    (dict(clock_mhz=25, baud=3_000_000), "cannot be made from a 25 MHz clock"),
    (dict(clock_mhz=1), "ECP5 PLL makes 3.125-400 MHz"),
    (dict(frame_timeout_s=1e-6), "frame timeout"),
])
def test_board_files_refuse_bad_settings(small_build: Path, kwargs, match) -> None:
    with pytest.raises(BoardError, match=match):
        write_board_files(small_build, "ulx3s-85f", **kwargs)


def test_board_files_need_a_build(tmp_path: Path) -> None:
    with pytest.raises(BoardError, match="does not exist \\(run hwgen build first\\)"):
        write_board_files(tmp_path / "nope", "ulx3s-85f")
    (tmp_path / "empty").mkdir()
    with pytest.raises(BoardError, match="has no report.json"):
        write_board_files(tmp_path / "empty", "ulx3s-85f")


def test_synth_scripts_read_board_top_and_accelerator(tmp_path: Path) -> None:
    render_toolchain_scripts(tmp_path, top="ulx3s_top", verilog=["top.v", "board_top.v"], target="ecp5-85k",
                             freq_mhz=75, seed=1, constraints="ulx3s-85f.lpf")
    script = (tmp_path / "synth.ys").read_text()
    assert "read_verilog synth_src/top.v synth_src/board_top.v\n" in script
    assert [ln for ln in script.splitlines() if ln.startswith("synth_ecp5")] == [
        "synth_ecp5 -top ulx3s_top -run begin:coarse", "synth_ecp5 -top ulx3s_top -run coarse:"]
    assert "synth.json: top.v board_top.v synth.ys synth.sh" in (tmp_path / "Makefile").read_text()
    assert "--lpf ulx3s-85f.lpf" in (tmp_path / "pnr.sh").read_text()
    with pytest.raises(SynthError, match="'my top.v'"):
        render_toolchain_scripts(tmp_path, top="t", verilog=["top.v", "my top.v"], target="ecp5-85k", freq_mhz=75,
                                 seed=1)


# -- hwgen synth --board: options (no tool runs) ----------------------------------------------

@pytest.mark.parametrize("argv, message", [
    ([], "give --target (an FPGA, out of context) or --board"),
    (["--board", "ulx3s-85f", "--target", "ecp5-25k"], "--board ulx3s-85f has a LFE5U-85F (ecp5-85k), not --target"),
    (["--board", "ulx3s-85f", "--constraints", "x.lpf"], "writes its own constraints (ulx3s-85f.lpf)"),
    (["--target", "ecp5-85k", "--baud", "115200"], "--baud sets the board top's UART: it needs --board"),
    (["--board", "ulx3s-85f", "--freq", "-5"], "--clock must be a positive number"),
])
def test_synth_board_option_errors(small_build: Path, capsys, argv, message) -> None:
    assert main(["synth", str(small_build), *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("hwgen: error: ") and message in err, err


def test_synth_board_missing_build(tmp_path: Path, capsys) -> None:
    assert main(["synth", str(tmp_path / "nope"), "--board", "ulx3s-85f"]) == 2
    assert "does not exist (run hwgen build first)" in capsys.readouterr().err


@pytest.mark.slow
def test_synth_board_to_a_bitstream(small_build: Path, capsys) -> None:
    """The small design wrapped for the ULX3S 85F, through Yosys, nextpnr (with the LPF) and ecppack."""
    assert main(["synth", str(small_build), "--board", "ulx3s-85f", "--freq", "50"]) == 0
    out = capsys.readouterr().out
    assert "clock 50 MHz from the PLL" in out and "load it with: openFPGALoader" in out
    report = json.loads((small_build / "synth_report.json").read_text())
    assert (small_build / "top.bit").stat().st_size > 100_000
    assert report["top"] == "ulx3s_top"
    assert report["resources"]["I/O"]["used"] == len(get_board("ulx3s-85f").pins)
    pnr_log = (small_build / "pnr.log").read_text()
    assert "Derived frequency constraint of 50.0 MHz" in pnr_log
    assert "pin 'uart_rx$tr_io' constrained to Bel" in pnr_log


@pytest.mark.slow
def test_icebreaker_board_to_a_bitstream(tmp_path: Path, capsys) -> None:
    """A small network built for the UP5K (narrow: --pe 1 --simd 4), wrapped for the iCEBreaker, through Yosys,
    nextpnr-ice40 (with the PCF) and icepack, at the 12 MHz oscillator."""
    from irnets import random_network

    from hwgen.hw.builder import BuildOptions, build

    net = random_network(np.random.default_rng(0), (1, 6, 6), [("fc", 8)], num_classes=4)
    save_network(tmp_path / "tiny.hwir", net)
    folder = build(tmp_path / "tiny.hwir", tmp_path / "tiny", BuildOptions(pe=1, simd=4, target="ice40-up5k"),
                   log=lambda *a: None).out_dir
    assert main(["synth", str(folder), "--board", "icebreaker"]) == 0
    out = capsys.readouterr().out
    assert "clock 12 MHz straight from the oscillator" in out and "load it with: iceprog top.bin" in out
    report = json.loads((folder / "synth_report.json").read_text())
    assert report["top"] == "icebreaker_top" and report["timing_met"]
    assert report["resources"]["I/O"]["used"] == len(get_board("icebreaker").pins)
    assert (folder / "top.bin").stat().st_size > 100_000
    assert "--pcf icebreaker.pcf" in (folder / "pnr.sh").read_text()


def test_board_files_refuse_a_wide_input_stream(small_build: Path, tmp_path: Path) -> None:
    """The board tops feed one byte per beat: a build with --in-width 32 is refused, not wired wrong."""
    import shutil

    from hwgen.hw.builder import BuildOptions, build

    wide = tmp_path / "wide"
    build(small_build / "net.hwir", wide, BuildOptions(pe=2, in_width=32), log=lambda *a: None)
    with pytest.raises(BoardError, match=r"s_axis is 32 bits wide; rebuild with --in-width 8 for a board"):
        write_board_files(wide, "ulx3s-85f")
    shutil.rmtree(wide)
