"""``hwgen report BUILD_DIR [-o FILE]``: the build folder's ``report.html``."""

from __future__ import annotations

import argparse
from pathlib import Path

__all__ = ["add_parser"]


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("report", help="write a build folder's report.html (charts of folding, memory, "
                                      "resources, Fmax, bit-exactness)",
                       description="Write report.html, a static page that opens from disk: cycles per frame per "
                                   "layer with the bottleneck, memory per layer against the device, and, when "
                                   "present, resources and Fmax after hwgen synth and the bit-exactness and "
                                   "measured cycles of hwgen sim. build, sim and synth refresh it as they finish.")
    p.add_argument("build_dir", type=Path, metavar="BUILD_DIR", help="folder written by hwgen build")
    p.add_argument("-o", "--output", type=Path, default=None, metavar="FILE",
                   help="page to write (default BUILD_DIR/report.html)")
    p.set_defaults(func=_run_report)


def _run_report(args: argparse.Namespace) -> int:
    from hwgen.report.build_page import write_build_report

    page = write_build_report(args.build_dir, args.output)
    print(f"wrote {page}")
    return 0
