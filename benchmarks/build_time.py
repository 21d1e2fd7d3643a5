"""Wall time of ``hwgen build`` per step for CNV and VGG-Small, and the peak memory of each build.

    python benchmarks/build_time.py [--out build/bench]

Each model is compiled from a fresh initialisation (CIFAR-10 shape; timing
does not depend on trained values) and written as a checkpoint-free IR, then
built in a child process (``hwgen build NET.hwir ...``) so that the peak
resident memory is that build's alone. VGG-Small's weights exceed an
ECP5-85F's block RAM, so it is built with ``--no-memory-check``. Target: VGG-Small
at ``--pe 64`` in under 2 minutes on a 2-core machine.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

from hwgen.compile.artifact import save_network
from hwgen.compile.compiler import compile_initialised
from hwgen.train.architecture import hardware_normalization
from hwgen.train.zoo import make_architecture

CASES = [("cnv", ["--pe", "16"]), ("vgg_small", ["--pe", "64", "--no-memory-check"])]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("build/bench"))
    args = parser.parse_args()
    mean, std = hardware_normalization((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616))
    print("| model | options | compile (s) | build wall (s) | top.v (MB) | peak RSS (MB) |")
    print("|---|---|---:|---:|---:|---:|")
    for model, options in CASES:
        t = time.perf_counter()
        arch = make_architecture(model, input_shape=(3, 32, 32), num_classes=10, mean=mean, std=std)
        ir = args.out / f"{model}.hwir"
        args.out.mkdir(parents=True, exist_ok=True)
        save_network(ir, compile_initialised(arch))
        compile_s = time.perf_counter() - t
        out = args.out / model
        before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        t = time.perf_counter()
        subprocess.run([sys.executable, "-m", "hwgen.cli", "build", str(ir), *options, "-o", str(out)],
                       check=True, stdout=subprocess.DEVNULL)
        wall = time.perf_counter() - t
        peak = max(before, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss) / 1024
        size = (out / "top.v").stat().st_size / 1e6
        cycles = json.loads((out / "report.json").read_text())["cycles_per_frame"]
        print(f"| {model} | {' '.join(options)} ({cycles:,} cycles/frame) | {compile_s:.1f} | {wall:.1f} | "
              f"{size:.1f} | {peak:,.0f} |")


if __name__ == "__main__":
    main()
