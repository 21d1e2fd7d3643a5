"""One markdown table of synthesised build folders: resources, Fmax, frames/s and tool-stage wall times.

Usage::

    python benchmarks/synth_table.py build/cnv16 build/tfc ... [--ci-design build/ci_tiny]

Each BUILD_DIR must hold the ``synth_report.json`` of ``hwgen synth``. Columns:
LUT4 / FF / EBR / DSP as placed (nextpnr), Fmax of the accelerator's clock,
frames/s at Fmax (cycles per frame from ``report.json``), frames/s per 1,000
LUT4, and the wall time of each stage (Yosys, nextpnr, ecppack).

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


def row(folder: Path) -> str:
    """The table row of one synthesised build folder."""
    rep = json.loads((folder / "synth_report.json").read_text())
    used = {name: r["used"] for name, r in rep["resources"].items()}
    stages = {s["name"]: s["seconds"] for s in rep["stages"]}
    fmax, fps = rep["fmax_mhz"], rep["frames_per_second"]
    per_klut = fps / used["LUT4"] * 1000 if fps else None
    met = "met" if rep["timing_met"] else "missed"
    cells = [folder.name, rep["target"]["name"],
             f"{rep['cycles_per_frame']:,}", f"{used['LUT4']:,}", f"{used['FF']:,}", f"{used['block RAM']:,}",
             f"{used['DSP']:,}", f"{fmax:.2f} ({rep['freq_mhz']:g} {met})" if fmax else "-",
             f"{fps:,.0f}" if fps else "-", f"{per_klut:,.1f}" if per_klut else "-",
             *(f"{stages[s]:.0f}" if s in stages else "-" for s in ("synth", "pnr", "pack"))]
    return "| " + " | ".join(cells) + " |"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("build_dirs", type=Path, nargs="*")
    p.add_argument("--ci-design", type=Path, default=None, help="build + synthesise CI's small design here first")
    args = p.parse_args(argv)
    folders = list(args.build_dirs)
    if args.ci_design is not None:
        folders.append(build_ci_design(args.ci_design))
    print("| design | target | cycles/frame | LUT4 | FF | EBR | DSP | Fmax MHz (requested) | frames/s at Fmax "
          "| frames/s per 1k LUT4 | Yosys s | nextpnr s | ecppack s |")
    print("|---|---|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|")
    for folder in folders:
        print(row(folder))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
