"""Folding of CNV and VGG-Small at several ``--pe`` values: cycles per frame, ideal cycles, balance, frames/s.

    python benchmarks/folding_table.py [--pe 1 2 4 8 16 32 64] [--clock 100]

Folding depends only on the layer shapes, so each model is compiled from a
fresh initialisation (CIFAR-10 shape). Per row: the heaviest layer's PE
(``hwgen build --pe``), cycles per frame of the slowest stage, the ideal
cycles (total MACs / total lanes), balance = ideal / actual, frames/s at the
clock, total lanes, the LUT4 estimate of the report (hwgen/hw/cost.py) and
the weight + threshold memory. FINN's CNV-W1A1 on a Zynq-7020 is the
reference point: 3,020 frames/s at 100 MHz with about 26k LUT6.
"""

from __future__ import annotations

import argparse

from hwgen.hw.accelerator import Accelerator
from hwgen.hw.folding import fixed_stages, solve_folding, summarize
from hwgen.hw.report import layer_rows
from hwgen.hw.targets import get_target
from hwgen.compile.compiler import compile_initialised
from hwgen.errors import BuildError
from hwgen.train.architecture import hardware_normalization
from hwgen.train.zoo import make_architecture


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pe", type=int, nargs="+", default=[1, 2, 4, 8, 16, 32, 64])
    parser.add_argument("--clock", type=float, default=100.0, help="MHz")
    args = parser.parse_args()
    mean, std = hardware_normalization((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616))
    print("| model | --pe | bottleneck | cycles/frame | ideal cycles | balance | frames/s "
          f"@ {args.clock:g} MHz | lanes | LUT4 (est.) | weight + threshold bits | ECP5 EBR (est.) |")
    print("|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for model in ("cnv", "vgg_small"):
        net = compile_initialised(make_architecture(model, input_shape=(3, 32, 32), num_classes=10,
                                                    mean=mean, std=std))
        for pe in args.pe:
            try:
                folds = solve_folding(net, pe=pe)
            except BuildError as exc:
                print(f"| {model} | {pe} | {exc} | | | | | | | | |")
                continue
            s = summarize(folds, fixed_stages(net))
            rows = layer_rows(Accelerator(net, folds, ecp5_cells=True), folds, get_target("ecp5-85k"))
            blocks = sum(r["bram_blocks_estimate"] for r in rows)
            lut = sum(r["lut4_estimate"] for r in rows)
            mem = sum(r["weights_bits"] + r["thresholds_bits"] for r in rows)
            print(f"| {model} | {pe} | {s.bottleneck} | {s.cycles_per_frame:,} | {s.ideal_cycles:,.0f} | "
                  f"{s.balance:.2f} | {s.fps(args.clock * 1e6):,.0f} | {s.total_lanes:,} | {lut:,} | {mem:,} | {blocks} |")
    print("| FINN CNV-W1A1 (Zynq-7020) | | | | | | 3,020 | | ~26k LUT6 | | 124 BRAM36 |")


if __name__ == "__main__":
    main()
