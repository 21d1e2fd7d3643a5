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
after ``synth_ecp5``. A port X (A or B, data width at most 18: a 36-bit port
spans both halves and is left alone) of a DP16KD is packed when every one of
its used read-data bits ``DOXk`` drives exactly one load, the ``DI`` input of
a TRELLIS_FF, and those flip-flops agree:

* clocked by the port's clock net ``CLKX``, not inverted (``CLKMUX = CLK``);
* one clock enable for all (``CEMUX = 1``, or one ``CE`` net, not inverted),
  which becomes the output register's enable ``OCEX``;
* reset: none (``LSR`` tied to 0), or one synchronous reset to 0
  (``SRMODE = LSR_OVER_CE``, ``REGSET = RESET``, not inverted) with the
  clock enable 1, while the block RAM's ``RSTX`` is tied to 0 and its ``CEX``
  to 1 and the other port's reset is tied to 0; it becomes ``RSTX`` with
  ``RESETMODE = SYNC`` (the reset of the output register);
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

__all__ = ["PackResult", "pack_output_registers", "pack_netlist_file"]

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


def _top(netlist: dict) -> dict:
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


def _port_flip_flops(cells: dict, loads: dict, bram: dict, x: str) -> list[tuple[int, str]] | None:
    """[(DO bit number, flip-flop name)] when port ``x``'s read data all go straight into flip-flops, else None."""
    found = []
    for k in range(_DATA_BITS):
        net = _net(bram, f"DO{x}{k}")
        if not isinstance(net, int) or net not in loads:
            continue  # unused bit
        users = loads[net]
        if len(users) != 1:
            return None
        name, pin = users[0]
        if cells[name]["type"] != "TRELLIS_FF" or pin != "DI":
            return None
        found.append((k, name))
    return found or None


def _packable(bram: dict, other_reset: object, ffs: list[dict], x: str) -> tuple[object, object] | None:
    """(OCE, RST) for port ``x`` if its flip-flops ``ffs`` can be the output register (module docstring)."""
    clock = _net(bram, f"CLK{x}")
    if not isinstance(clock, int) or _param(bram, f"CLK{x}MUX", f"CLK{x}") != f"CLK{x}":
        return None
    if _param(bram, f"OCE{x}MUX", f"OCE{x}") != f"OCE{x}" or _param(bram, f"RST{x}MUX", f"RST{x}") != f"RST{x}":
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
        if enable != "1" or _net(bram, f"RST{x}") != "0" or _net(bram, f"CE{x}") != "1" or other_reset != "0":
            return None
    return enable, reset


def pack_output_registers(netlist: dict) -> PackResult:
    """Pack, in place, the flip-flops after DP16KD read ports into the block RAMs (module docstring)."""
    cells = _top(netlist)["cells"]
    loads = _loads(cells)
    ports = absorbed = brams = 0
    for bram in [c for c in cells.values() if c["type"] == "DP16KD"]:
        brams += 1
        for x, other in zip(_PORTS, reversed(_PORTS)):
            if _param(bram, f"REGMODE_{x}", "NOREG") != "NOREG" or _width(bram["parameters"].get(
                    f"DATA_WIDTH_{x}", _DATA_BITS)) > _DATA_BITS:
                continue
            pairs = _port_flip_flops(cells, loads, bram, x)
            if pairs is None:
                continue
            other_reset = _net(bram, f"RST{other}")
            packed = _packable(bram, other_reset, [cells[n] for _, n in pairs], x)
            if packed is None:
                continue
            enable, reset = packed
            for k, name in pairs:
                bram["connections"][f"DO{x}{k}"] = list(cells.pop(name)["connections"]["Q"])
            bram["connections"][f"OCE{x}"] = [enable]
            bram["parameters"][f"REGMODE_{x}"] = "OUTREG"
            if reset != "0":
                bram["connections"][f"RST{x}"] = [reset]
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
