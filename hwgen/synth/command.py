"""``hwgen synth BUILD_DIR --target T [--freq MHZ] [--seed S] [--yosys PATH --nextpnr PATH --pack PATH]``."""

from __future__ import annotations

import argparse
from pathlib import Path

__all__ = ["add_parser"]


def add_parser(sub: argparse._SubParsersAction) -> None:
    from hwgen.build.targets import TARGETS
    from hwgen.synth.runner import DEFAULT_FREQ_MHZ, DEFAULT_SEED

    p = sub.add_parser("synth", help="synthesise, place and route a build folder to a bitstream (Yosys, nextpnr)",
                       description="Run Yosys, nextpnr and ecppack / icepack on a build folder's top.v; writes the "
                                   "bitstream, synth_report.md / .json (resources, Fmax, critical path, frames/s) "
                                   "and the tool logs into the folder.")
    p.add_argument("build_dir", type=Path, metavar="BUILD_DIR", help="folder written by hwgen build")
    p.add_argument("--target", required=True, choices=list(TARGETS), help="FPGA device and package")
    p.add_argument("--freq", type=float, default=DEFAULT_FREQ_MHZ, metavar="MHZ",
                   help=f"clock nextpnr must meet (default {DEFAULT_FREQ_MHZ:g})")
    p.add_argument("--seed", type=int, default=DEFAULT_SEED, help=f"placer seed (default {DEFAULT_SEED})")
    p.add_argument("--constraints", default=None, metavar="FILE",
                   help="LPF (ECP5) / PCF (iCE40) pin file in the build folder (default: none, I/O placed anywhere)")
    t = p.add_argument_group("tools (default: the YoWASP builds from PyPI)")
    t.add_argument("--yosys", default=None, metavar="PATH", help="yosys command")
    t.add_argument("--nextpnr", default=None, metavar="PATH", help="nextpnr-ecp5 / nextpnr-ice40 command")
    t.add_argument("--pack", default=None, metavar="PATH", help="ecppack / icepack command")
    p.set_defaults(func=_run_synth)


def _run_synth(args: argparse.Namespace) -> int:
    from hwgen.synth.runner import run_synth

    result = run_synth(args.build_dir, args.target, args.freq, args.seed, yosys=args.yosys, nextpnr=args.nextpnr,
                       pack=args.pack, constraints=args.constraints)
    print(result.summary())
    print(f"wrote {args.build_dir}/{result.bitstream}, synth_report.md, synth_report.json and the tool logs")
    return 0
