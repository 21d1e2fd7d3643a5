"""``hwgen build MODEL (--pe N [--simd S] | --fps F | --fit) [--folding FILE] [--in-width BITS] [--target T] [-o build/NAME]``.

The folder is written as a whole or not at all (docs/outputs.md): the
design is generated into a temporary folder inside it, under the folder's
lock (:func:`hwgen.outputs.folder_lock`), and moved in only when complete by
:func:`hwgen.manifest.install_build`, which also removes the previous
design's synthesis outputs (a bitstream of another top.v is stale). A
refused or failed build leaves the folder as it was.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
from pathlib import Path

from hwgen.argtypes import positive_float, positive_int

__all__ = ["add_parser"]


def add_parser(sub: argparse._SubParsersAction) -> None:
    from hwgen.hw.builder import DEFAULT_CLOCK_MHZ, DEFAULT_TARGET
    from hwgen.hw.folding import IN_WIDTHS, PIXEL_BITS
    from hwgen.hw.targets import TARGETS

    p = sub.add_parser("build", help="generate the accelerator (Verilog, memories, report, toolchain scripts)",
                       description="Compile (for a .ckpt), fold and generate a streaming accelerator into a build "
                                   "folder: top.v, mem/*.hex, net.hwir, report.md/json, synthesis scripts.")
    p.add_argument("model", type=Path, help="a checkpoint (.ckpt), a compiled IR (.hwir) or a QONNX model (.onnx, "
                                             "float input pixel / 255; other mappings: hwgen import first)")
    p.add_argument("-o", "--output", type=Path, default=None, help="build folder (default: build/<model name>)")
    fold = p.add_mutually_exclusive_group(required=True)
    fold.add_argument("--pe", type=positive_int, help="PEs of the heaviest layer; the others are balanced to keep up")
    fold.add_argument("--fps", type=positive_float,
                      help="frames per second to reach at --clock (fewest lanes that do)")
    fold.add_argument("--fit", action="store_true",
                      help="the fastest balanced folding that fits --target by the cost model (LUT4 <= 85 %%, "
                           "block RAM <= 100 %%; weight ROMs in block RAM or LUTs)")
    p.add_argument("--simd", type=positive_int, default=None,
                   help="SIMD of the heaviest layer, with --pe only (default: the largest legal value <= 64)")
    p.add_argument("--folding", type=Path, default=None, metavar="FILE",
                   help='per-layer overrides, JSON {"conv1": {"pe": 16, "simd": 32}, ...}')
    p.add_argument("--target", default=DEFAULT_TARGET, choices=sorted(TARGETS),
                   help=f"FPGA for the memory budget and the toolchain scripts (default {DEFAULT_TARGET})")
    p.add_argument("--in-width", type=int, default=PIXEL_BITS, choices=IN_WIDTHS, metavar="BITS",
                   help=f"bits of s_axis_tdata: BITS / 8 pixel bytes per beat, the first on bits 7..0; they must "
                        f"divide a frame's bytes ({', '.join(map(str, IN_WIDTHS))}; default {PIXEL_BITS})")
    p.add_argument("--clock", type=positive_float, default=DEFAULT_CLOCK_MHZ, metavar="MHZ",
                   help=f"clock for frames/s and the timing target (default {DEFAULT_CLOCK_MHZ:g})")
    p.add_argument("--no-memory-check", action="store_true",
                   help="generate even when weights + thresholds exceed the target's block RAM")
    p.set_defaults(func=_run_build)


def _run_build(args: argparse.Namespace) -> int:
    from hwgen.hw.builder import BuildOptions, build, read_overrides
    from hwgen.errors import BuildError
    from hwgen.manifest import install_build
    from hwgen.outputs import check_output_dir, folder_lock
    from hwgen.report.hooks import refresh_report

    if args.simd is not None and (args.fps is not None or args.fit):
        raise BuildError("--simd applies with --pe (the heaviest layer's SIMD); with --fps or --fit the solver chooses "
                         "every layer's PE and SIMD: drop --simd, or give per-layer values with --folding FILE")
    options = BuildOptions(pe=args.pe, simd=args.simd, fps=args.fps, fit=args.fit,
                           overrides=read_overrides(args.folding) if args.folding else {},
                           target=args.target, clock_mhz=args.clock, check_memory=not args.no_memory_check,
                           in_width=args.in_width)
    out = check_output_dir(args.output or Path("build") / args.model.stem)
    created = not out.exists()
    try:
        with folder_lock(out, what="build into"):
            staging = Path(tempfile.mkdtemp(dir=out, prefix=".hwgen-build-"))
            try:
                result = build(args.model, staging, options, name=Path(os.path.abspath(out)).name or "hwgen")
                removed = install_build(staging, out)
            finally:
                shutil.rmtree(staging, ignore_errors=True)
    except BaseException:
        if created:
            shutil.rmtree(out, ignore_errors=True)
        raise
    if removed:
        print(f"removed from {out}, stale next to the new design: {', '.join(removed)}")
    r = result.report
    print((out / "report.md").read_text())
    print(f"wrote {out}/top.v, report.md, report.json, net.hwir, mem/, toolchain scripts "
          f"in {result.seconds['total']:.1f} s (Verilog {result.seconds['verilog']:.1f} s); "
          f"{r['summary']['cycles_per_frame']:,} cycles per frame, "
          f"{r['summary']['fps']:,.0f} frames/s at {r['clock_mhz']:g} MHz")
    refresh_report(out)
    return 0
