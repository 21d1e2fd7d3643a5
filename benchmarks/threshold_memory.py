"""Threshold memory of VGG-Small for each scale mode (per-channel vs per-position thresholds).

    python benchmarks/threshold_memory.py [--width 1.0]

XNOR-Net++ Gamma shapes 2-4 vary over output positions, so after folding into
BatchNorm and sign every output position of a layer gets its own threshold
(DESIGN.md section 2). This compiles a randomly initialised VGG-Small (CIFAR-10
shape) for each scale mode and reports, per binarized layer and in total, the
number of thresholds and their bits, each threshold provisioned at the width
that holds any value of the layer's accumulator range widened by one (for
constant channels): what on-chip memory must hold whatever the trained values.
"""

from __future__ import annotations

import argparse

from hwgen.compile.compiler import compile_initialised
from hwgen.compile.ir import ConvLayer, ThresholdOutput, accumulator_range, signed_bits
from hwgen.train.architecture import hardware_normalization
from hwgen.train.scales import ScaleMode
from hwgen.train.zoo import ModelOptions, make_architecture

MODES = [ScaleMode.NONE, ScaleMode.GAMMA_CHANNEL, ScaleMode.GAMMA_ELEMENT, ScaleMode.GAMMA_CHANNEL_SPATIAL,
         ScaleMode.GAMMA_FACTORISED]


def threshold_layers(mode: ScaleMode, width: float) -> list[tuple[str, tuple, int, int, int]]:
    """(layer, output shape, thresholds, bits each, weight bits) for every thresholded layer."""
    mean, std = hardware_normalization((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616))
    arch = make_architecture("vgg_small", input_shape=(3, 32, 32), num_classes=10, mean=mean, std=std,
                             options=ModelOptions(width=width, scale=mode))
    rows = []
    for layer in compile_initialised(arch).layers:
        if isinstance(layer, ConvLayer) and isinstance(layer.output, ThresholdOutput):
            lo, hi = accumulator_range(layer)
            rows.append((layer.name, layer.out_shape, int(layer.output.thresholds.size), signed_bits(lo - 1, hi + 1),
                         int(layer.weights.size) * layer.weight_bits))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--width", type=float, default=1.0)
    args = parser.parse_args()
    per_mode = {mode: threshold_layers(mode, args.width) for mode in MODES}
    print(f"VGG-Small width {args.width}: thresholds per layer (count x bits) for each scale mode\n")
    print("| layer | output | weight bits | " + " | ".join(m.value for m in MODES) + " |")
    print("|---|---|---:|" + "---:|" * len(MODES))
    for i, (name, shape, _, _, wbits) in enumerate(per_mode[ScaleMode.NONE]):
        cells = [f"{per_mode[m][i][2]:,} x {per_mode[m][i][3]}" for m in MODES]
        print(f"| {name} | {'x'.join(map(str, shape))} | {wbits:,} | " + " | ".join(cells) + " |")
    totals = [sum(r[2] * r[3] for r in per_mode[m]) for m in MODES]
    weights = sum(r[4] for r in per_mode[ScaleMode.NONE])
    print(f"| **total threshold bits** | | {weights:,} | " + " | ".join(f"**{t:,}**" for t in totals) + " |")
    print("| ratio to weight bits | | | " + " | ".join(f"{t / weights:.1%}" for t in totals) + " |")


if __name__ == "__main__":
    main()
