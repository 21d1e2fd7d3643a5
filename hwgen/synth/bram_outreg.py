"""Move the flip-flops that register an ECP5 block RAM's read data into the block RAM (DP16KD ``REGMODE = OUTREG``).

A DP16KD without its output register (``REGMODE_A/B = "NOREG"``, all Yosys
0.70 makes: ``share/lattice/brams_16kd.txt`` has no output-register option)
delivers its read data 5.8 ns after the clock edge (nextpnr's ECP5 timing);
with its output register, 1.0 ns. The engines register every block-RAM read
once in fabric (a weight ROM word into ``w2``, the input buffer into
``buffered``: hwgen/hw/engines/folded.py), so the clock-to-output plus the
route to that flip-flop was the critical path of TFC (fc1's weight ROM to
``w2``, 7.67 ns, 130.5 MHz on the ECP5-85F). Measured alone (one ROM read
into logic): 102.9 MHz without the output register, 216.9 MHz with it.

:func:`pack_output_registers` rewrites Yosys's JSON netlist (``write_json``)
after ``synth_ecp5``. A read port of a DP16KD (port A or B of at most 18 bits; or a 36-bit read
on B, Yosys's pseudo dual-port mapping, data on DOA0..17 and DOB0..17, only
when side A is never enabled, ``CEA = 0``: a ROM, or only writes, ``WEA = 1``,
clocked by B's clock net, neither inverted: a RAM such as a line buffer)
is packed when every one
of its used read-data bits drives exactly one load, the ``DI`` input of a
TRELLIS_FF, and those flip-flops agree:

* clocked by the read port's clock net (``CLKB`` for a 36-bit read), not
  inverted (``CLKMUX = CLK``);
* one clock enable for all (``CEMUX = 1``, or one ``CE`` net, not inverted),
  which becomes the output register's enable ``OCEX`` (both halves' for a
  36-bit read);
* reset: none (``LSR`` tied to 0), or one synchronous reset to 0
  (``SRMODE = LSR_OVER_CE``, ``REGSET = RESET``, not inverted) with the
  clock enable 1, while the block RAM's ``RSTA`` and ``RSTB`` are tied to 0
  and the read port's ``CE`` to 1; it becomes the port's ``RST`` (both
  halves' for a 36-bit read) with ``RESETMODE = SYNC``;
* initial value 0 (``REGSET = RESET``): the output register starts at 0.

The flip-flops are removed and their ``Q`` nets driven by ``DOXk``; the
latency is unchanged (the same register, inside the block RAM). Each change
is the register the engines already have, so the design's function does not
change; only where that register sits.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

__all__ = ["PackResult", "pack_output_registers", "pack_netlist_file", "top_module"]

_PORTS = ("A", "B")
_DATA_BITS = 18  # DOA0..17 / DOB0..17


@dataclass(frozen=True)
class PackResult:
    """What :func:`pack_output_registers` did: ports packed, flip-flops absorbed, block RAMs seen."""

    ports: int
    flip_flops: int
    block_rams: int

    def summary(self) -> str:
        return (f"block RAM output registers: {self.ports} read port(s) of {self.block_rams} DP16KD packed "
                f"(REGMODE OUTREG), {self.flip_flops} flip-flops moved into them")


def top_module(netlist: dict) -> dict:
    """The one module of a Yosys JSON netlist whose ``top`` attribute is set; ValueError otherwise."""
    if not isinstance(netlist, dict) or not isinstance(netlist.get("modules"), dict):
        raise ValueError("not a Yosys JSON netlist (no \"modules\")")
    tops = [m for m in netlist["modules"].values() if str(m.get("attributes", {}).get("top", "0")).strip("0 ")]
    if len(tops) != 1:
        raise ValueError(f"expected one top module in the netlist, found {len(tops)}")
    return tops[0]


def _width(value: object) -> int:
    """A Yosys JSON integer parameter (a binary string, or an int)."""
    return value if isinstance(value, int) else int(str(value).strip() or "0", 2)


def _param(cell: dict, name: str, default: str) -> str:
    return str(cell["parameters"].get(name, default)).strip()


def _net(cell: dict, port: str) -> object:
    """The single bit on ``port``: a net number, a constant "0"/"1", or None when unconnected."""
    bits = cell["connections"].get(port)
    return bits[0] if bits else None


def _loads(cells: dict) -> dict[int, list[tuple[str, str]]]:
    loads: dict[int, list[tuple[str, str]]] = {}
    for name, cell in cells.items():
        directions = cell.get("port_directions", {})
        for port, bits in cell["connections"].items():
            if directions.get(port) == "output":
                continue
            for b in bits:
                if isinstance(b, int):
                    loads.setdefault(b, []).append((name, port))
    return loads


@dataclass(frozen=True)
class _ReadPort:
    """One read port of a DP16KD: its data pins DO<h>0..17 for each half h, clocked by the ``side`` port.

    A port of at most 18 bits is one half on its own side; a 36-bit read (``DATA_WIDTH_B = 36``, Yosys's
    pseudo dual-port mapping) reads on side B and delivers DOA0..17 (low) and DOB0..17 (high): both halves'
    output registers (REGMODE_A and REGMODE_B), enables and resets are set alike.
    """

    halves: tuple[str, ...]
    side: str

    @property
    def pins(self) -> list[str]:
        return [f"DO{h}{k}" for h in self.halves for k in range(_DATA_BITS)]


def _side_a_writes_on_b_clock(bram: dict) -> bool:
    """Side A of a 36-bit read only writes (``WEA = 1``, no read of its own) on side B's clock, not inverted."""
    clocks = {_net(bram, f"CLK{x}") for x in _PORTS}
    return (_net(bram, "WEA") == "1" and len(clocks) == 1 and isinstance(clocks.pop(), int)
            and all(_param(bram, f"CLK{x}MUX", f"CLK{x}") == f"CLK{x}" for x in _PORTS))


def _read_ports(bram: dict) -> list[_ReadPort]:
    widths = {x: _width(bram["parameters"].get(f"DATA_WIDTH_{x}", _DATA_BITS)) for x in _PORTS}
    if widths["B"] > _DATA_BITS:
        # 36-bit read: when side A never runs (a ROM) or only writes on B's clock (a RAM), so that A's
        # output controls serve nothing but the low half of B's read
        usable = _net(bram, "CEA") == "0" or _side_a_writes_on_b_clock(bram)
        return [_ReadPort(halves=_PORTS, side="B")] if usable else []
    return [_ReadPort(halves=(x,), side=x) for x in _PORTS if widths[x] <= _DATA_BITS]


def _port_flip_flops(cells: dict, loads: dict, bram: dict, port: _ReadPort) -> list[tuple[str, str]] | None:
    """[(DO pin, flip-flop name)] when the port's read data all go straight into flip-flops, else None."""
    found = []
    for pin in port.pins:
        net = _net(bram, pin)
        if not isinstance(net, int) or net not in loads:
            continue  # unused bit
        users = loads[net]
        if len(users) != 1:
            return None
        name, ff_pin = users[0]
        if cells[name]["type"] != "TRELLIS_FF" or ff_pin != "DI":
            return None
        found.append((pin, name))
    return found or None


def _packable(bram: dict, ffs: list[dict], port: _ReadPort) -> tuple[object, object] | None:
    """(OCE, RST) for ``port`` if its flip-flops ``ffs`` can be the output register (module docstring)."""
    x = port.side
    clock = _net(bram, f"CLK{x}")
    if not isinstance(clock, int) or _param(bram, f"CLK{x}MUX", f"CLK{x}") != f"CLK{x}":
        return None
    if any(_param(bram, f"{pin}{h}MUX", f"{pin}{h}") != f"{pin}{h}" for pin in ("OCE", "RST") for h in port.halves):
        return None
    enables, resets = set(), set()
    for ff in ffs:
        if _net(ff, "CLK") != clock or _param(ff, "CLKMUX", "CLK") != "CLK":
            return None
        if _param(ff, "REGSET", "RESET") != "RESET" or _param(ff, "LSRMUX", "LSR") != "LSR":
            return None
        cemux = _param(ff, "CEMUX", "CE")
        if cemux == "1":
            enables.add("1")
        elif cemux == "CE" and _net(ff, "CE") is not None:
            enables.add(_net(ff, "CE"))
        else:
            return None
        lsr = _net(ff, "LSR")
        if lsr in (None, "0"):
            resets.add("0")
        elif isinstance(lsr, int) and _param(ff, "SRMODE", "LSR_OVER_CE") == "LSR_OVER_CE":
            resets.add(lsr)
        else:
            return None
    if len(enables) != 1 or len(resets) != 1:
        return None
    enable, reset = enables.pop(), resets.pop()
    if reset != "0":
        # a synchronous reset: only when nothing else decides the output register's reset or enable
        if enable != "1" or _net(bram, f"CE{x}") != "1" or any(_net(bram, f"RST{h}") != "0" for h in _PORTS):
            return None
    return enable, reset


def pack_output_registers(netlist: dict) -> PackResult:
    """Pack, in place, the flip-flops after DP16KD read ports into the block RAMs (module docstring)."""
    cells = top_module(netlist)["cells"]
    loads = _loads(cells)
    ports = absorbed = brams = 0
    for bram in [c for c in cells.values() if c["type"] == "DP16KD"]:
        brams += 1
        for port in _read_ports(bram):
            if any(_param(bram, f"REGMODE_{h}", "NOREG") != "NOREG" for h in port.halves):
                continue
            pairs = _port_flip_flops(cells, loads, bram, port)
            if pairs is None:
                continue
            packed = _packable(bram, [cells[n] for _, n in pairs], port)
            if packed is None:
                continue
            enable, reset = packed
            for pin, name in pairs:
                bram["connections"][pin] = list(cells.pop(name)["connections"]["Q"])
            for h in port.halves:
                bram["connections"][f"OCE{h}"] = [enable]
                bram["parameters"][f"REGMODE_{h}"] = "OUTREG"
                if reset != "0":
                    bram["connections"][f"RST{h}"] = [reset]
            if reset != "0":
                bram["parameters"]["RESETMODE"] = "SYNC"
            ports += 1
            absorbed += len(pairs)
    return PackResult(ports=ports, flip_flops=absorbed, block_rams=brams)


def pack_netlist_file(path: Path | str) -> PackResult:
    """:func:`pack_output_registers` on a JSON netlist file, rewritten in place (atomically)."""
    path = Path(path)
    netlist = json.loads(path.read_text())
    result = pack_output_registers(netlist)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(netlist))
    os.replace(tmp, path)
    return result


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m hwgen.synth.bram_outreg NETLIST.json", file=sys.stderr)
        return 2
    try:
        result = pack_netlist_file(args[0])
    except (OSError, ValueError, KeyError) as exc:
        print(f"bram_outreg: error: {args[0]}: {exc}", file=sys.stderr)
        return 2
    print(f"bram_outreg: {result.summary()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
