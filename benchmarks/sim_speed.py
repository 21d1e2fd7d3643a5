"""RTL simulation speed on a build folder: the cocotb bench vs the C++ bulk harness.

Usage::

    python benchmarks/sim_speed.py build/NAME [--dataset mnist --data-dir DIR | --dataset random]
        [--cocotb-images 5] [--bulk-images 1000] [--fresh] [--json FILE]

For each mode: a fresh Verilator build (``--fresh``: in a temporary cache,
so the build time and peak memory are measured; otherwise the cached model
is used and its recorded build figures are shown), then one unstalled run;
every image is checked against the golden model. Prints a table: simulated
cycles per second and images per second (simulation loop only: the cocotb
figure excludes the simulator's start-up, shown separately as "wall"), the
Verilator build time and the peak memory of the build (largest process).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from hwgen.sim.buildfolder import load_build_folder
from hwgen.sim.session import simulate


def _images(folder, dataset: str | None, data_dir: str | None, n: int, offset: int = 0) -> np.ndarray:
    if dataset == "random" or (dataset is None and not folder.dataset):
        return np.random.default_rng(0).integers(0, 256, size=(n, *folder.input_shape), dtype=np.uint8)
    from hwgen.data.datasets import load_dataset

    data = load_dataset(dataset or folder.dataset, data_dir or folder.report.get("data_dir"))
    return data.test_images[offset:offset + n].numpy()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("build_dir", type=Path)
    p.add_argument("--dataset", default=None)
    p.add_argument("--data-dir", default=None)
    p.add_argument("--cocotb-images", type=int, default=5)
    p.add_argument("--bulk-images", type=int, default=1000)
    p.add_argument("--fresh", action="store_true", help="build in a temporary cache to measure build time / memory")
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args(argv)

    folder = load_build_folder(args.build_dir)
    rows = []
    with tempfile.TemporaryDirectory(prefix="hwgen-sim-speed-") as tmp:
        cache = Path(tmp) / "cache" if args.fresh else None
        for mode, n in (("cocotb", args.cocotb_images), ("bulk", args.bulk_images)):
            if n <= 0:
                continue
            images = _images(folder, args.dataset, args.data_dir, n)
            t0 = time.monotonic()
            out = simulate(folder, images, mode=mode, cache_dir=cache, run_dir=Path(tmp) / "run", waves=False)
            wall = time.monotonic() - t0
            tm = out.timing
            rows.append({
                "mode": mode, "images": len(images), "agree": int(out.check.agree.sum()),
                "cycles": tm.cycles, "sim_s": round(tm.wall_s, 3), "cycles_per_s": round(tm.cycles_per_s),
                "images_per_s": round(tm.images_per_s, 2), "wall_s": round(wall, 1),
                "build_s": out.build_s, "build_cached": out.model_cached, "build_peak_mb": out.peak_rss_mb,
                "cycles_per_frame": tm.cycles_per_frame, "estimate": folder.cycles_per_frame,
                "latency": tm.latency,
            })
            if not out.ok:
                print(f"MISMATCH in {mode} mode:\n{out.check.first_mismatch}", file=sys.stderr)
    print(f"{folder.name}: {folder.cycles_per_frame:,} cycles per frame (folding estimate), input "
          f"{folder.input_shape}, {folder.num_classes} classes")
    head = (f"{'mode':6}  {'images':>6}  {'agree':>6}  {'cycles':>12}  {'sim s':>8}  {'cycles/s':>11}  "
            f"{'images/s':>9}  {'wall s':>7}  {'build s':>8}  {'build MB':>8}  {'cyc/frame':>10}  {'latency':>8}")
    print(head)
    for r in rows:
        cpf = f"{r['cycles_per_frame']:,.0f}" if r["cycles_per_frame"] else "-"
        built = f"{r['build_s']:.1f}" + ("*" if r["build_cached"] else "")
        mb = f"{r['build_peak_mb']:.0f}" if r["build_peak_mb"] else "-"
        print(f"{r['mode']:6}  {r['images']:>6}  {r['agree']:>6}  {r['cycles']:>12,}  {r['sim_s']:>8.2f}  "
              f"{r['cycles_per_s']:>11,}  {r['images_per_s']:>9,.1f}  {r['wall_s']:>7.1f}  {built:>8}  {mb:>8}  "
              f"{cpf:>10}  {r['latency'] or '-':>8}")
    if any(r["build_cached"] for r in rows):
        print("* cached model: the build figures are those recorded when it was built")
    if args.json:
        args.json.write_text(json.dumps({"build": str(folder.path), "rows": rows}, indent=1) + "\n")
    return 0 if all(r["agree"] == r["images"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
