"""RTL simulation speed on a build folder: the cocotb bench vs the C++ bulk harness.

Usage::

    python benchmarks/sim_speed.py build/NAME [--dataset mnist --data-dir DIR | --dataset random]
        [--cocotb-images 5] [--bulk-images 1000] [--fresh] [--json FILE]
    python benchmarks/sim_speed.py build/NAME --variants inline,shell,shell-O1 [--bulk-images 200]

For each mode: a fresh Verilator build (``--fresh``: in a temporary cache,
so the build time and peak memory are measured; otherwise the cached model
is used and its recorded build figures are shown), then one unstalled run;
every image is checked against the golden model. Prints a table: simulated
cycles per second and images per second (simulation loop only: the cocotb
figure excludes the simulator's start-up, shown separately as "wall"), the
Verilator build time and the peak memory of the build (largest process).

``--variants``: bulk harness builds side by side, each fresh in a temporary
cache, then the same images through each (checked against the golden
model): ``inline`` compiles ``top.v`` as written (every memory's contents
inline, as before issue 13), ``shell`` the shell whose memories load their
contents at run time (:mod:`hwgen.sim.memfiles`) with the default options
(:data:`hwgen.sim.bulk.BULK_ARGS`), ``model`` the same for ``top_sim.v``, the
match counts as their simulation model (what ``hwgen sim`` builds where the
folder has one, :mod:`hwgen.sim.match_counts`), and the other
variants the shell with other Verilator / C++ options (:data:`VARIANTS`):
``shell-splitN`` model functions of N statements (``shell-nosplit``:
Verilator's own size), ``shell-clang`` the C++ compiled by Debian's clang 14
(``apt-get install clang-14``; not a project dependency).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from hwgen.sim.bulk import BULK_ARGS, build_harness, run_harness
from hwgen.sim.buildfolder import load_build_folder, verilog_sources
from hwgen.sim.memfiles import plusarg, shell_sources, split_memories, write_mem_dir
from hwgen.sim.scoreboard import check_accelerator
from hwgen.sim.session import simulate

_NO_CFLAGS = tuple(a for a in BULK_ARGS if a not in ("-CFLAGS", "-O2"))
_SPLIT_AT = BULK_ARGS.index("--output-split-cfuncs")
_NO_SPLIT = BULK_ARGS[:_SPLIT_AT] + BULK_ARGS[_SPLIT_AT + 2:]  # without the option and its value
#: name -> (memories loaded at run time?, Verilator options of the bulk model); all but ``model`` compile
#: top.v (the match counts as ECP5 cells, as synthesised)
VARIANTS = {
    "inline": (False, BULK_ARGS),
    "shell": (True, BULK_ARGS),
    "model": (True, BULK_ARGS),  # top_sim.v: the match counts as their simulation model (hwgen sim's default)
    "shell-O1": (True, (*_NO_CFLAGS, "-CFLAGS", "-O1")),          # C++ -O1 instead of -O2
    "shell-Os": (True, _NO_CFLAGS),                                # Verilator's default C++ flags (-Os)
    "shell-O0": (True, (*_NO_CFLAGS, "-CFLAGS", "-O0")),          # no C++ optimisation: fastest compile
    "shell-native": (True, (*_NO_CFLAGS, "-CFLAGS", "-O2 -march=native")),  # -O2 for this machine's CPU
    "shell-clang": (True, (*BULK_ARGS, "-MAKEFLAGS", "CXX=clang++-14", "-LDFLAGS", "-latomic")),  # Debian's clang 14
    "shell-nosplit": (True, _NO_SPLIT),  # Verilator's own function size (before SPLIT_CFUNCS)
    # model functions split at N statements
    **{f"shell-split{n}": (True, (*_NO_SPLIT, "--output-split-cfuncs", str(n))) for n in (30, 100, 300, 1000, 3000)},
}


def compare_builds(folder, images: np.ndarray, variants: list[str]) -> list[dict]:
    """Per variant: a fresh bulk build in a temporary cache, then ``images`` through it; one row each."""
    rows = []
    for name in variants:
        runtime, vargs = VARIANTS[name]
        top = folder.verilog(model=name == "model")
        design = split_memories(top.read_text())
        with tempfile.TemporaryDirectory(prefix="hwgen-sim-variant-") as tmp:
            cache, plus = Path(tmp) / "cache", []
            if runtime:
                with shell_sources(design, verilog_sources(top)) as sources:
                    verilog_bytes = sources[0].stat().st_size
                    harness = build_harness(sources, folder.top_module, cache_dir=cache,
                                            memory_layout=design.layout_sha256, verilator_args=vargs)
                plus = [plusarg(write_mem_dir(design, Path(tmp) / "mem"))]
            else:
                verilog_bytes = folder.top_v.stat().st_size
                harness = build_harness(folder.sources, folder.top_module, cache_dir=cache, verilator_args=vargs)
            cpu0 = _children_cpu_s()
            trace = run_harness(harness, images, folder.num_classes, plusargs=plus)
            sim_cpu = _children_cpu_s() - cpu0
            check = check_accelerator(folder.net, images, *trace.decoded(), protocol_errors=trace.errors())
            tm = trace.timing()
            rows.append({"variant": name, "verilog_mb": round(verilog_bytes / 2**20, 2), "build_s": harness.build_s,
                         "build_cpu_s": harness.build_cpu_s,
                         "build_peak_mb": harness.peak_rss_mb, "images": len(images),
                         "agree": int(check.agree.sum()), "cycles_per_s": round(tm.cycles_per_s),
                         "cycles_per_cpu_s": round(tm.cycles / sim_cpu), "images_per_s": round(tm.images_per_s, 2), "options": " ".join(vargs)})
            print(f"  {name}: built in {harness.build_s:.1f} s ({harness.build_cpu_s or 0:.1f} CPU s), "
                  f"{tm.cycles_per_s:,.0f} cycles/s, {tm.cycles / sim_cpu:,.0f} cycles per CPU s", flush=True)
    return rows


def _children_cpu_s() -> float:
    """CPU seconds (user + system) of this process's finished children so far."""
    import resource

    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def print_variants(folder, rows: list[dict]) -> None:
    print(f"{folder.name}: bulk harness builds ({folder.cycles_per_frame:,} cycles per frame)")
    print(f"{'variant':9}  {'Verilog MB':>10}  {'build s':>8}  {'CPU s':>7}  {'build MB':>8}  {'images':>6}  "
          f"{'agree':>5}  {'cycles/s':>10}  {'cyc/CPU s':>10}  {'images/s':>8}  options")
    for r in rows:
        mb = f"{r['build_peak_mb']:.0f}" if r["build_peak_mb"] else "-"
        print(f"{r['variant']:9}  {r['verilog_mb']:>10.2f}  {r['build_s']:>8.1f}  {r['build_cpu_s']:>7.1f}  {mb:>8}  "
              f"{r['images']:>6}  {r['agree']:>5}  {r['cycles_per_s']:>10,}  {r['cycles_per_cpu_s']:>10,}  {r['images_per_s']:>8.1f}  {r['options']}")


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
    p.add_argument("--variants", default=None,
                   help=f"compare fresh bulk builds: comma-separated, of {', '.join(VARIANTS)}")
    args = p.parse_args(argv)

    folder = load_build_folder(args.build_dir)
    if args.variants:
        names = args.variants.split(",")
        unknown = [n for n in names if n not in VARIANTS]
        if unknown:
            p.error(f"unknown variant(s) {', '.join(unknown)}; choose from {', '.join(VARIANTS)}")
        rows = compare_builds(folder, _images(folder, args.dataset, args.data_dir, args.bulk_images), names)
        print_variants(folder, rows)
        if args.json:
            args.json.write_text(json.dumps({"build": str(folder.path), "variants": rows}, indent=1) + "\n")
        return 0 if all(r["agree"] == r["images"] for r in rows) else 1
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
