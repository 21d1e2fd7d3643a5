"""Board wrappers and the host link (issue 6, "Boards"): the accelerator on a real FPGA board, driven over a UART.

* :mod:`hwgen.boards.boards`: the table of boards (ULX3S 85F / 45F / 25F, iCEBreaker): target, oscillator, pins.
* :mod:`hwgen.boards.protocol`: the host link protocol (requests, replies, the identify block), plain Python.
* :mod:`hwgen.boards.uart`: UART receiver and transmitter (Amaranth).
* :mod:`hwgen.boards.link`: the board side of the protocol: frame buffer, timeout, reply serialiser (Amaranth).
* :mod:`hwgen.boards.pll`: the ECP5 PLL (EHXPLLL) and its divider search.
* :mod:`hwgen.boards.top`: the board top (clock, reset button, UART, LEDs around ``hwgen_top``); :mod:`hwgen.boards.ulx3s` its ULX3S form.
* :mod:`hwgen.boards.generate`: ``board_top.v``, the LPF / PCF and ``board.json`` for a build folder.
* :mod:`hwgen.boards.host`: the host side: image loading, the serial link, the golden-model comparison.
* :mod:`hwgen.boards.command`: ``hwgen run``; ``hwgen synth --board`` lives in :mod:`hwgen.synth.command`.
* :mod:`hwgen.boards.uart_bench`: cocotb bench of the board top over its UART pins (Verilator).
"""
