"""The board side of the host link in Amaranth's simulator, with a stand-in accelerator (tests/board_stub.py).

* :class:`HostLink` fed bytes directly: classify replies (decoded with the
  protocol module, checked against the stub's Python model), bytes before a
  sync byte ignored, a frame short of a byte discarded after the timeout and
  the next one intact, a gap just under the timeout tolerated, identify;
* :class:`ULX3STop` through its pins: UART characters into ``uart_rx``,
  replies decoded from ``uart_tx``, LEDs, the reset button;
* the ECP5 PLL divider search and the PLL in the generated Verilog;
* parameter validation.

The whole board top with the real accelerator (TFC on MNIST) over the UART
pins runs under Verilator in ``tests/test_board_sim.py``.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
from amaranth.back import verilog
from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.sim import Simulator
from board_stub import StubAccelerator, expected, random_frame
from uart_wave import decode, encode

from hwgen.boards.link import HostLink
from hwgen.boards.pll import ecp5_pll_config
from hwgen.boards.protocol import (
    REQUEST_CLASSIFY,
    REQUEST_IDENTIFY,
    Ident,
    decode_reply,
    reply_bytes,
)
from hwgen.boards.ulx3s import ULX3STop
from hwgen.errors import BoardError

pytestmark = pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")

IDENT = Ident(1, 4, 5, 3, bytes.fromhex("c0ffee01"))
N = IDENT.frame_bytes
K = IDENT.num_classes
TIMEOUT = 200


class _LinkBench(wiring.Component):
    """HostLink + stub accelerator; the link's rx and tx are the bench's ports."""

    def __init__(self) -> None:
        self.link = HostLink(frame_bytes=N, timeout_cycles=TIMEOUT, ident=IDENT.pack(), class_bits=7)
        self.acc = StubAccelerator(frame_bytes=N, num_classes=K)
        super().__init__({})

    def elaborate(self, platform) -> Module:
        m = Module()
        m.submodules.link, m.submodules.acc = link, acc = self.link, self.acc
        m.d.comb += [
            acc.s_axis_tdata.eq(link.pixels.payload.data), acc.s_axis_tvalid.eq(link.pixels.valid),
            acc.s_axis_tlast.eq(link.pixels.payload.last), link.pixels.ready.eq(acc.s_axis_tready),
            link.words.payload.data.eq(acc.m_axis_tdata), link.words.payload.last.eq(acc.m_axis_tlast),
            link.words.valid.eq(acc.m_axis_tvalid), acc.m_axis_tready.eq(link.words.ready),
        ]
        return m


def run_link(events: list[tuple[int, int]], cycles: int):
    """Bytes (gap in cycles before it, value) into the link's rx; tx taken every other cycle.

    Returns (tx bytes, aborted pulse count, [(cycle, last_class, frame_toggle) at each class word],
    whether pixels.last was seen on every frame's final byte only).
    """
    bench = _LinkBench()
    link = bench.link
    out, aborts, classes, lasts = [], [], [], []

    async def tb(ctx):
        schedule = []
        t = 0
        for gap, value in events:
            t += gap
            schedule.append((t, value))
        k = 0
        prev_toggle = 0
        pixels_seen = 0
        for cycle in range(cycles):
            if k < len(schedule) and schedule[k][0] == cycle:
                ctx.set(link.rx.valid, 1)
                ctx.set(link.rx.payload, schedule[k][1])
                k += 1
            else:
                ctx.set(link.rx.valid, 0)
            ctx.set(link.tx.ready, cycle % 2)
            if ctx.get(link.tx.valid) and cycle % 2:
                out.append(ctx.get(link.tx.payload))
            if ctx.get(link.pixels.valid) and ctx.get(link.pixels.ready):
                pixels_seen += 1
                lasts.append((pixels_seen % N == 0) == bool(ctx.get(link.pixels.payload.last)))
            await ctx.tick()
            if ctx.get(link.aborted):
                aborts.append(cycle)
            toggle = ctx.get(link.frame_toggle)
            if toggle != prev_toggle:
                classes.append((cycle, ctx.get(link.last_class), toggle))
                prev_toggle = toggle

    sim = Simulator(bench)
    sim.add_clock(1e-6)
    sim.add_testbench(tb)
    sim.run()
    return bytes(out), aborts, classes, all(lasts) and len(lasts) > 0


def request(frame: bytes, spacing: int = 3, first_gap: int = 5) -> list[tuple[int, int]]:
    return [(first_gap, REQUEST_CLASSIFY)] + [(spacing, b) for b in frame]


def replies(data: bytes) -> list[tuple[list[int], int]]:
    n = reply_bytes(K)
    assert len(data) % n == 0, f"{len(data)} reply bytes is not a whole number of {n}-byte replies"
    return [tuple(x.tolist() if i == 0 else x for i, x in enumerate(decode_reply(data[i:i + n], K)))
            for i in range(0, len(data), n)]


def test_link_classifies_frames() -> None:
    rng = np.random.default_rng(1)
    frames = [random_frame(rng, N) for _ in range(3)]
    events = [e for f in frames for e in request(f, first_gap=400)]
    out, aborts, classes, lasts_ok = run_link(events, 2500)
    assert replies(out) == [expected(f, K) for f in frames]
    assert aborts == [] and lasts_ok
    assert [(c, t) for _, c, t in classes] == [(expected(f, K)[1], (i + 1) % 2) for i, f in enumerate(frames)]


def test_link_ignores_bytes_before_the_sync_byte() -> None:
    frame = random_frame(np.random.default_rng(2), N)
    garbage = [(2, b) for b in (0x00, 0xFF, 0x12, 0x5A)]
    out, aborts, _, _ = run_link(garbage + request(frame), 1000)
    assert replies(out) == [expected(frame, K)] and aborts == []


def test_link_discards_a_frame_short_of_a_byte_after_the_timeout() -> None:
    rng = np.random.default_rng(3)
    short, full = random_frame(rng, N), random_frame(rng, N)
    events = request(short[:-1]) + request(full, first_gap=TIMEOUT + 50)
    out, aborts, _, _ = run_link(events, 1500)
    assert len(aborts) == 1
    assert replies(out) == [expected(full, K)]


def test_link_without_the_timeout_gap_the_next_request_is_misread() -> None:
    """The same lost byte with the next request sent at once: the frames run together (what the timeout prevents)."""
    rng = np.random.default_rng(3)
    short, full = random_frame(rng, N), random_frame(rng, N)
    out, aborts, _, _ = run_link(request(short[:-1]) + request(full, first_gap=3), 1500)
    assert aborts == []
    first = replies(out[:reply_bytes(K)])[0]
    assert first == expected(short[:-1] + bytes([REQUEST_CLASSIFY]), K) != expected(full, K)


def test_link_tolerates_a_gap_just_under_the_timeout() -> None:
    frame = random_frame(np.random.default_rng(4), N)
    events = request(frame)
    events[7] = (TIMEOUT - 2, events[7][1])
    out, aborts, _, _ = run_link(events, 1200)
    assert aborts == [] and replies(out) == [expected(frame, K)]


def test_link_identify() -> None:
    out, _, _, _ = run_link([(3, 0x00), (3, REQUEST_IDENTIFY)], 100)
    assert out == IDENT.pack()
    assert Ident.unpack(out) == IDENT


@pytest.mark.parametrize("kwargs, match", [
    (dict(frame_bytes=0, timeout_cycles=10, ident=IDENT.pack()), "frame_bytes"),
    (dict(frame_bytes=4, timeout_cycles=True, ident=IDENT.pack()), "timeout_cycles"),
    (dict(frame_bytes=4, timeout_cycles=10, ident=b"short"), "16 bytes"),
])
def test_link_validates_parameters(kwargs, match) -> None:
    with pytest.raises(BoardError, match=match):
        HostLink(**kwargs)


# -- the ULX3S top through its pins ---------------------------------------------

DIVISOR = 4


def run_top(rx_bytes_at: list[tuple[int, bytes]], cycles: int, *, press: tuple[int, int] | None = None,
            board: str = "ulx3s-85f"):
    """The board's top (stub accelerator, at its oscillator, 4 cycles per bit): characters into uart_rx at the
    given cycles. ULX3STop for a ULX3S, else BoardTop.

    Returns (uart_tx levels per cycle, led value per cycle, the constant-high pins' values seen).
    ``press``: hold the reset button low from cycle a to cycle b.
    """
    from hwgen.boards.boards import get_board
    from hwgen.boards.top import BoardTop

    b = get_board(board)
    osc = b.oscillator_hz
    cls = ULX3STop if board.startswith("ulx3s") else BoardTop
    top = cls(board=board, ident=IDENT, clock_hz=osc, baud=osc / DIVISOR,
              frame_timeout_s=TIMEOUT / osc, accelerator=StubAccelerator(frame_bytes=N, num_classes=K))
    assert top.pll is None and top.divisor == DIVISOR and top.timeout_cycles == TIMEOUT
    clk, button = getattr(top, b.clock_port), getattr(top, b.reset_port)
    line = [1] * cycles
    for start, data in rx_bytes_at:
        wave = encode(data, DIVISOR, idle_before=0, idle_after=0)
        line[start:start + len(wave)] = wave
    tx, leds, gpio0 = [], [], []

    async def clock(ctx):
        while True:
            ctx.set(clk, 0)
            await ctx.delay(0.5 / osc)
            ctx.set(clk, 1)
            await ctx.delay(0.5 / osc)

    async def tb(ctx):
        for cycle in range(cycles):
            ctx.set(top.uart_rx, line[cycle])
            ctx.set(button, 0 if press and press[0] <= cycle < press[1] else 1)
            await ctx.posedge(clk)
            tx.append(ctx.get(top.uart_tx))
            leds.append(ctx.get(top.led))
            gpio0.extend(ctx.get(getattr(top, port)) for port in b.constant_high)

    sim = Simulator(top)
    sim.add_process(clock)
    sim.add_testbench(tb)
    sim.run()
    return tx, leds, set(gpio0)


def test_ulx3s_top_over_the_uart_pins() -> None:
    rng = np.random.default_rng(5)
    frame = random_frame(rng, N)
    while expected(frame, K)[1] == 0:  # a class that shows on the LEDs
        frame = random_frame(rng, N)
    req = bytes([REQUEST_CLASSIFY]) + frame
    tx, leds, gpio0 = run_top([(20, bytes([REQUEST_IDENTIFY])), (1000, req)], 3500)
    got, _, problems = decode(tx, DIVISOR)
    assert not problems
    assert bytes(got[:16]) == IDENT.pack()
    scores, cls = decode_reply(bytes(got[16:]), K)
    assert (scores.tolist(), cls) == expected(frame, K)
    assert leds[0] == 0 and leds[-1] == cls | 0x80  # class in binary, LED7 toggled by the reply
    assert gpio0 == {1}


def test_icebreaker_top_over_the_uart_pins() -> None:
    """The iCEBreaker's top (clk12, btn_n, 5 LEDs: class bits 0-3, LED 4 toggles), the same link inside."""
    rng = np.random.default_rng(6)
    frame = random_frame(rng, N)
    while expected(frame, K)[1] == 0:
        frame = random_frame(rng, N)
    req = bytes([REQUEST_CLASSIFY]) + frame
    tx, leds, constant = run_top([(20, bytes([REQUEST_IDENTIFY])), (1000, req)], 3500, board="icebreaker")
    got, _, problems = decode(tx, DIVISOR)
    assert not problems and bytes(got[:16]) == IDENT.pack()
    scores, cls = decode_reply(bytes(got[16:]), K)
    assert (scores.tolist(), cls) == expected(frame, K)
    assert leds[0] == 0 and leds[-1] == cls | 0x10 and constant == set()
    _, leds, _ = run_top([(20, req)], 2400, press=(2000, 2010), board="icebreaker")
    assert leds[1900] == cls | 0x10 and leds[2030] == 0  # btn_n resets the link


def test_ulx3s_top_reset_button() -> None:
    frame = bytes([2]) + bytes(N - 1)  # class 2
    req = bytes([REQUEST_CLASSIFY]) + frame
    _, leds, _ = run_top([(20, req)], 2400, press=(2000, 2010))
    assert leds[1900] == 2 | 0x80
    assert leds[2030] == 0  # pressing PWR resets the link (and the accelerator)
    assert leds[-1] == 0


def test_ulx3s_top_validates_settings() -> None:
    with pytest.raises(BoardError, match="too fast"):
        ULX3STop(board="ulx3s-85f", ident=IDENT, clock_hz=25e6, baud=12.5e6)
    with pytest.raises(BoardError, match="frame timeout .* must exceed 2 characters"):
        ULX3STop(board="ulx3s-85f", ident=IDENT, clock_hz=25e6, baud=1e6, frame_timeout_s=10e-6)
    with pytest.raises(BoardError, match="unknown board 'ulx3s-12f'"):
        ULX3STop(board="ulx3s-12f", ident=IDENT, clock_hz=25e6, baud=1e6)
    with pytest.raises(BoardError, match="ECP5 PLL makes"):
        ULX3STop(board="ulx3s-85f", ident=IDENT, clock_hz=500e6, baud=1e6)


# -- PLL -----------------------------------------------------------------------

@pytest.mark.parametrize("f_out", [100e6, 75e6, 50e6, 125e6, 90e6, 33.3e6, 10e6, 200e6])
def test_pll_config_within_limits(f_out: float) -> None:
    cfg = ecp5_pll_config(25e6, f_out)
    assert 400e6 <= cfg.f_vco <= 800e6 and 3.125e6 <= cfg.f_pfd <= 400e6
    assert all(1 <= d <= 128 for d in (cfg.clki_div, cfg.clkfb_div, cfg.clkop_div))
    assert abs(cfg.f_out - f_out) / f_out < 0.002


def test_pll_config_exact_for_100_mhz() -> None:
    cfg = ecp5_pll_config(25e6, 100e6)
    assert (cfg.clki_div, cfg.clkfb_div, cfg.clkop_div, cfg.f_out) == (1, 4, 6, 100e6)


def test_pll_in_the_board_verilog() -> None:
    top = ULX3STop(board="ulx3s-85f", ident=IDENT, clock_hz=75e6, baud=1e6)
    assert top.pll is not None and top.clock_hz == 75e6 and top.divisor == 75
    text = verilog.convert(top, name="ulx3s_top", emit_src=False)
    inst = text[text.index("EHXPLLL #("):]
    inst = inst[:inst.index(");\n")]
    params = dict(re.findall(r"\.(\w+)\(([^()]*)\)", inst))
    assert params["CLKI_DIV"].endswith("d1") and params["CLKFB_DIV"].endswith("d3") \
        and params["CLKOP_DIV"].endswith("d8") and params["FEEDBK_PATH"] == '"CLKOP"', params
    assert re.search(r"^module ulx3s_top\(", text, re.MULTILINE) and "hwgen_top accelerator" in text


def test_pll_refuses_out_of_range() -> None:
    with pytest.raises(BoardError, match="3.125-400 MHz"):
        ecp5_pll_config(25e6, 1e6)
    with pytest.raises(BoardError, match="takes 8-400 MHz in"):
        ecp5_pll_config(1e6, 50e6)
