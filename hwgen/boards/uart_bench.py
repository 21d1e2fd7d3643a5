"""cocotb bench of a board top (e.g. ``ulx3s_top`` + ``hwgen_top``) through its pins: UART in, UART out, LEDs.

Run by ``cocotb_tools.runner`` (:func:`hwgen.sim.runner.run_bench`) with
``$HWGEN_BOARD_BENCH`` naming a JSON file:

``images``
    a ``.npy`` of uint8 images (N, C, H, W);
``divisor``
    clock cycles per UART bit of the board top (``board.json``'s ``uart_divisor``);
``timeout_cycles``
    the board's frame timeout in cycles;
``requests``
    a list of ``{"kind": "identify"}`` or ``{"kind": "classify", "image": i}``,
    optionally with ``"lose": k`` (pixel byte k is not sent) or
    ``"bad_stop": k`` (pixel byte k is sent with a stop bit of 0): such a
    request must get no reply, and the bench then idles past the frame timeout;
``reply_bytes``
    bytes of a classify reply; the identify reply is 16;
``results``
    where to write the outcome (JSON): per request the reply bytes (hex), the
    cycles waited for them after the request's last bit, and the LEDs after it;
``clock_port``, ``reset_port``, ``clock_ns`` (optional)
    the board's oscillator pin, its reset button and the oscillator's period
    (default the ULX3S's: ``clk25``, ``btn_pwr_n``, 40 ns).

The oscillator pin is driven at its period (the board top runs without a
PLL in simulation); the reset button is held high (released). Characters are
driven on ``uart_rx`` one bit per ``divisor`` clock cycles and decoded from
``uart_tx`` by sampling the middle of each bit (a stop bit that is not 1 is
recorded as an error). The comparison with the golden model is made by the
caller on the results file.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, FallingEdge

from hwgen.boards.protocol import IDENT_BYTES, REQUEST_CLASSIFY, REQUEST_IDENTIFY


async def _send(dut, data: bytes, divisor: int, bad_stop: int | None = None) -> None:
    for k, byte in enumerate(data):
        for level in [0, *((byte >> j) & 1 for j in range(8)), 0 if k == bad_stop else 1]:
            dut.uart_rx.value = level
            await ClockCycles(dut.clk, divisor)
        dut.uart_rx.value = 1


class _Pins:
    """The board top's pins under the bench's names: ``clk`` is the oscillator pin, whatever the board calls it."""

    def __init__(self, dut, clock_port: str) -> None:
        self.clk = getattr(dut, clock_port)
        self.uart_rx, self.uart_tx, self.led = dut.uart_rx, dut.uart_tx, dut.led


class _Receiver:
    """Decodes ``uart_tx`` in the background into :attr:`data`; framing problems go to :attr:`errors`."""

    def __init__(self, dut, divisor: int) -> None:
        self.dut, self.divisor = dut, divisor
        self.data = bytearray()
        self.errors: list[str] = []

    async def run(self) -> None:
        dut, d = self.dut, self.divisor
        while True:
            await FallingEdge(dut.uart_tx)
            await ClockCycles(dut.clk, d // 2)
            if int(dut.uart_tx.value) != 0:
                self.errors.append(f"glitch on uart_tx after byte {len(self.data)}")
                continue
            value = 0
            for j in range(8):
                await ClockCycles(dut.clk, d)
                value |= int(dut.uart_tx.value) << j
            await ClockCycles(dut.clk, d)
            if int(dut.uart_tx.value) != 1:
                self.errors.append(f"stop bit of reply byte {len(self.data)} is 0")
            self.data.append(value)


@cocotb.test()
async def board_over_uart(top):
    cfg = json.loads(Path(os.environ["HWGEN_BOARD_BENCH"]).read_text())
    dut = _Pins(top, cfg.get("clock_port", "clk25"))
    images = np.load(cfg["images"])
    divisor, timeout = int(cfg["divisor"]), int(cfg["timeout_cycles"])
    reply_len = int(cfg["reply_bytes"])
    char = 10 * divisor

    Clock(dut.clk, cfg.get("clock_ns", 40), unit="ns").start()
    dut.uart_rx.value = 1
    getattr(top, cfg.get("reset_port", "btn_pwr_n")).value = 1
    await ClockCycles(dut.clk, 20)
    rx = _Receiver(dut, divisor)
    cocotb.start_soon(rx.run())

    results = []
    for req in cfg["requests"]:
        start = len(rx.data)
        fault = "lose" in req or "bad_stop" in req
        if req["kind"] == "identify":
            payload, expect, bad = bytes([REQUEST_IDENTIFY]), IDENT_BYTES, None
        else:
            frame = np.ascontiguousarray(images[req["image"]].transpose(1, 2, 0)).tobytes()
            if "lose" in req:
                frame = frame[:req["lose"]] + frame[req["lose"] + 1:]
            payload, expect = bytes([REQUEST_CLASSIFY]) + frame, (0 if fault else reply_len)
            bad = req["bad_stop"] + 1 if "bad_stop" in req else None  # + 1: the sync byte comes first
        await _send(dut, payload, divisor, bad_stop=bad)
        if fault:  # no reply may come: idle past the board's frame timeout
            waited = timeout + 4 * char
            await ClockCycles(dut.clk, waited)
        else:
            waited = 0
            while waited < 200_000 + (expect + 2) * char and len(rx.data) - start < expect:
                await ClockCycles(dut.clk, char)
                waited += char
            await ClockCycles(dut.clk, 3 * char)  # extra bytes would show up here
        results.append({"request": req, "reply": bytes(rx.data[start:]).hex(), "reply_wait_cycles": waited,
                        "led": dut.led.value.to_unsigned()})

    Path(cfg["results"]).write_text(json.dumps({"results": results, "errors": rx.errors}, indent=1))
    assert not rx.errors, rx.errors
