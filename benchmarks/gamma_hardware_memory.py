"""On-chip memory of the XNOR-Net++ Gamma shapes in hardware: per-channel vs per-position thresholds.

    python benchmarks/gamma_hardware_memory.py [--models cnv vgg_small:0.25 RUN.ckpt NET.hwir] [--pe 16]
                                                [--folding FILE] [--target ecp5-85k]

Compiles each zoo model from a fresh initialisation with every scale mode
(or loads a trained checkpoint / IR given by path), folds it (``--pe``,
``--folding`` overrides) and reports what ``hwgen build`` would: weight and threshold bits (the
engines' threshold ROMs: H_out * W_out * NF words per layer for Gamma
shapes 2-4 of one field per PE lane, as wide as that lane's start values
need, plus an inversion bit where a channel's comparison direction changes
across positions), the estimated block RAMs and LUT4s with the weight ROMs
placed as ``hwgen build`` places them (``place_weights``: shallow ROMs in LUTs
when block RAM runs out), cycles per frame, and whether it fits the target.
No Verilog is generated. Threshold memory depends on the trained values: a
fresh initialisation gives every channel one threshold at every position,
so its lanes' fields take 0 bits; pass trained models for real numbers.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from hwgen.compile.ir import Network
from hwgen.errors import HwgenError
from hwgen.hw.accelerator import Accelerator
from hwgen.hw.builder import load_model, read_overrides
from hwgen.hw.fit import place_weights
from hwgen.hw.folding import fixed_stages, solve_folding, summarize
from hwgen.hw.report import layer_rows
from hwgen.hw.targets import get_target
from hwgen.compile.compiler import compile_initialised
from hwgen.train.architecture import hardware_normalization
from hwgen.train.scales import ScaleMode
from hwgen.train.zoo import ModelOptions, make_architecture

MODES = [ScaleMode.NONE, ScaleMode.GAMMA_CHANNEL, ScaleMode.GAMMA_ELEMENT, ScaleMode.GAMMA_CHANNEL_SPATIAL,
         ScaleMode.GAMMA_FACTORISED]


def initialised(model: str, width: float, mode: ScaleMode) -> Network:
    mean, std = hardware_normalization((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616))
    arch = make_architecture(model, input_shape=(3, 32, 32), num_classes=10, mean=mean, std=std,
                             options=ModelOptions(width=width, scale=mode))
    return compile_initialised(arch)


def model_row(name: str, mode: str, net: Network, pe: int, overrides: dict, target_name: str) -> dict:
    folds = solve_folding(net, pe=pe, overrides=overrides)
    target = get_target(target_name)
    memory = place_weights(net, folds, target).memory
    rows = layer_rows(Accelerator(net, folds, ecp5_cells=True, memory=memory), folds, target)
    weights = sum(r["weights_bits"] for r in rows)
    thresholds = sum(r["thresholds_bits"] for r in rows)
    blocks = sum(r["bram_blocks_estimate"] for r in rows)
    fits = weights + thresholds <= target.bram_bits and blocks <= target.bram_blocks
    cycles = summarize(folds, fixed_stages(net)).cycles_per_frame
    return {"model": name, "mode": mode, "cycles": cycles,
            "weights": weights, "thresholds": thresholds, "blocks": blocks,
            "lut4": sum(r["lut4_estimate"] for r in rows), "fits": fits}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=["cnv", "vgg_small:0.25"])
    parser.add_argument("--pe", type=int, default=16)
    parser.add_argument("--folding", type=Path, help="per-layer overrides, as hwgen build --folding")
    parser.add_argument("--target", default="ecp5-85k")
    args = parser.parse_args()
    try:
        target = get_target(args.target)
        overrides = read_overrides(args.folding) if args.folding else {}
        rows = []
        for spec in args.models:
            if spec.endswith((".ckpt", ".hwir")):
                net, _ = load_model(Path(spec))
                rows.append(model_row(Path(spec).name, "trained", net, args.pe, overrides, args.target))
                continue
            model, _, width = spec.partition(":")
            for mode in MODES:
                net = initialised(model, float(width or 1.0), mode)
                rows.append(model_row(f"{model} x{float(width or 1.0):g}", mode.value, net, args.pe, overrides,
                                      args.target))
    except HwgenError as exc:
        parser.exit(2, f"{parser.prog}: error: {exc}\n")
    print(f"--pe {args.pe}, {target.name}: {target.bram_bits:,} bits in {target.bram_blocks} block RAMs\n")
    print("| model | scale | cycles/frame | weight bits | threshold bits | EBR (est.) | LUT4 (est.) | fits |")
    print("|---|---|---:|---:|---:|---:|---:|---|")
    for r in rows:
        print(f"| {r['model']} | {r['mode']} | {r['cycles']:,} | {r['weights']:,} | {r['thresholds']:,} | "
              f"{r['blocks']:,} | {r['lut4']:,} | {'yes' if r['fits'] else 'no'} |")


if __name__ == "__main__":
    main()
