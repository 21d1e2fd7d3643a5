"""One markdown table of synthesised build folders: resources, Fmax, frames/s and tool-stage wall times.

Usage::

    python benchmarks/synth_table.py build/cnv16 build/tfc ... [--ci-design build/ci_tiny]

Each BUILD_DIR must hold the ``synth_report.json`` of ``hwgen synth``. Columns:
LUT4 / FF / EBR / DSP as placed (nextpnr), with ``hwgen build``'s estimates
from ``report.json`` in brackets (the cost model at build time), Fmax of the
accelerator's clock, frames/s at Fmax (cycles per frame from
``report.json``), frames/s per 1,000 LUT4, and the wall time of each stage
(Yosys, nextpnr, ecppack).

``--peers`` adds the published figures of the peer designs in :data:`PEERS`
(their own tools and devices, not measured here; units differ: a Xilinx LUT6
is not an ECP5 LUT4, a BRAM36 tile is two 18 Kbit EBRs' worth of bits).

``--ci-design DIR`` first builds and synthesises CI's small design into DIR,
exactly as ``tests/test_synth.py::test_a_generated_accelerator_to_an_ecp5_bitstream``
does (a random 1 x 6 x 6 -> fc 8 -> 4 classes network, ``--pe 2``, ECP5-25F at
50 MHz), and adds its row.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

#: (design, device and clock, cycles per frame, LUT, FF, block RAM, DSP, Fmax MHz), as their authors report them.
PEERS = [
    ("BNN-PYNQ CNV-W1A1 (FINN; Vivado report)", "Pynq-Z1 (Zynq-7020)", 32_768, "26,072 LUT6", "41,312",
     "124 BRAM36", 24, 100.0),
]


def build_ci_design(out: Path) -> Path:
    """CI's synthesis design (see the module docstring), built and synthesised into ``out``."""
    import numpy as np

    sys.path.insert(0, str(REPO / "tests"))
    from irnets import random_network

    from hwgen.hw.builder import BuildOptions, build
    from hwgen.compile.artifact import save_network
    from hwgen.synth.runner import run_synth

    net = random_network(np.random.default_rng(0), (1, 6, 6), [("fc", 8)], num_classes=4)
    out.parent.mkdir(parents=True, exist_ok=True)
    ir = out.parent / f"{out.name}.hwir"
    save_network(ir, net)
    folder = build(ir, out, BuildOptions(pe=2, target="ecp5-25k"), log=lambda *_: None).out_dir
    run_synth(folder, "ecp5-25k", 50, 1, stream=io.StringIO())
    return folder


def _with_estimate(placed: int, estimate: int | None) -> str:
    return f"{placed:,}" + (f" ({estimate:,})" if estimate is not None else "")


def peer_row(design: str, device: str, cycles: int, lut: str, ff: str, bram: str, dsp: int, fmax: float) -> str:
    """A row of :data:`PEERS`: frames/s = Fmax / cycles; per 1k of their LUTs."""
    fps = fmax * 1e6 / cycles
    luts = int(lut.split()[0].replace(",", ""))
    cells = [design, device, f"{cycles:,}", lut, ff, bram, f"{dsp}", f"{fmax:.2f}", f"{fps:,.0f}",
             f"{fps / luts * 1000:,.1f} (per 1k {lut.split()[1]})", "-", "-", "-"]
    return "| " + " | ".join(cells) + " |"


def row(folder: Path) -> str:
    """The table row of one synthesised build folder."""
    rep = json.loads((folder / "synth_report.json").read_text())
    build = json.loads((folder / "report.json").read_text()) if (folder / "report.json").is_file() else {}
    used = {name: r["used"] for name, r in rep["resources"].items()}
    stages = {s["name"]: s["seconds"] for s in rep["stages"]}
    fmax, fps = rep["fmax_mhz"], rep["frames_per_second"]
    per_klut = fps / used["LUT4"] * 1000 if fps else None
    met = "met" if rep["timing_met"] else "missed"
    cells = [folder.name, rep["target"]["name"],
             f"{rep['cycles_per_frame']:,}", _with_estimate(used["LUT4"], build.get("lut4_estimate")),
             f"{used['FF']:,}",
             _with_estimate(used["block RAM"], build.get("bram_blocks_estimate")),
             f"{used['DSP']:,}", f"{fmax:.2f} ({rep['freq_mhz']:g} {met})" if fmax else "-",
             f"{fps:,.0f}" if fps else "-", f"{per_klut:,.1f}" if per_klut else "-",
             *(f"{stages[s]:.0f}" if s in stages else "-" for s in ("synth", "pnr", "pack"))]
    return "| " + " | ".join(cells) + " |"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("build_dirs", type=Path, nargs="*")
    p.add_argument("--ci-design", type=Path, default=None, help="build + synthesise CI's small design here first")
    p.add_argument("--peers", action="store_true", help="add the peer designs' published figures (PEERS)")
    args = p.parse_args(argv)
    folders = list(args.build_dirs)
    if args.ci_design is not None:
        folders.append(build_ci_design(args.ci_design))
    print("| design | target | cycles/frame | LUT4 (est.) | FF | EBR (est.) | DSP | Fmax MHz (requested) "
          "| frames/s at Fmax "
          "| frames/s per 1k LUT4 | Yosys s | nextpnr s | ecppack s |")
    print("|---|---|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|")
    for folder in folders:
        print(row(folder))
    if args.peers:
        for peer in PEERS:
            print(peer_row(*peer))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
