"""``hwgen run (--port PORT | --golden) IMAGE [--build DIR] [--baud N] [--timeout S] [--retries N] [--no-resize] [--invert]``.

The host side of the board's UART link (:mod:`hwgen.boards.host`); with
``--golden`` no board: the build folder's golden model answers, offline.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from hwgen.argtypes import non_negative_int

__all__ = ["add_parser"]


def add_parser(sub: argparse._SubParsersAction) -> None:
    from hwgen.boards.host import DEFAULT_RETRIES, DEFAULT_TIMEOUT_S

    p = sub.add_parser("run", help="classify an image on a board over its serial port (the host link)",
                       description="Send an image to a board running a hwgen bitstream (hwgen synth --board) and "
                                   "print its class and scores; with --build, check the board runs that build's "
                                   "design and compare with the golden model on its net.hwir. Exit status 1 "
                                   "when the board and the golden model disagree.")
    p.add_argument("image", type=Path, help="PNG, JPEG (anything Pillow reads) or a .npy uint8 (C, H, W) array")
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--port", help="serial port of the board, e.g. /dev/ttyUSB0 or COM3")
    where.add_argument("--golden", action="store_true",
                       help="no board: answer with the build folder's golden model (needs --build)")
    p.add_argument("--build", type=Path, default=None, metavar="BUILD_DIR",
                   help="the board's build folder: design check, golden model, and its baud rate")
    p.add_argument("--baud", type=int, default=None,
                   help="baud rate (default: the build folder's board.json, else 1,000,000)")
    p.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT_S, metavar="S",
                   help=f"seconds to wait for a reply (default {DEFAULT_TIMEOUT_S:g})")
    p.add_argument("--retries", type=non_negative_int, default=DEFAULT_RETRIES,
                   help=f"times to resend a request that got no reply (default {DEFAULT_RETRIES})")
    p.add_argument("--no-resize", action="store_true", help="refuse an image of another size instead of resizing it")
    p.add_argument("--invert", action="store_true", help="send 255 - pixel (dark on light -> light on dark)")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from hwgen.boards import host
    from hwgen.errors import BoardError

    if args.golden:
        if args.build is None:
            raise BoardError("--golden answers with a build folder's golden model: give --build BUILD_DIR")
        image, notes, scores, cls = host.run_golden(args.image, args.build, resize=not args.no_resize,
                                                    invert=args.invert)
        shape = "x".join(map(str, image.shape))
        print(f"golden model of {args.build}/net.hwir (no board): input {shape}")
        print(f"image {args.image}: " + ("; ".join(notes) if notes else f"{shape} as given"))
        print(f"class {cls}")
        print(f"scores {scores.tolist()}")
        return 0
    r = host.run_on_board(args.port, args.image, build_dir=args.build, baud=args.baud, timeout_s=args.timeout,
                          retries=args.retries, resize=not args.no_resize, invert=args.invert)
    shape = "x".join(map(str, r.ident.input_shape))
    check = f" = {args.build}/net.hwir" if r.build_checked else ""
    print(f"board on {args.port}: input {shape}, {r.ident.num_classes} classes, design {r.ident.design.hex()}{check}")
    print(f"image {args.image}: " + ("; ".join(r.notes) if r.notes else f"{shape} as given"))
    retried = f", {r.attempts} attempts" if r.attempts > 1 else ""
    print(f"class {r.cls}  ({1e3 * r.seconds:.1f} ms round trip{retried})")
    print(f"scores {r.scores.tolist()}")
    if r.agrees is None:
        print("not compared with the golden model (give --build BUILD_DIR)")
        return 0
    if r.agrees:
        print(f"golden model: class {r.golden_cls}, all {len(r.scores)} scores equal: board agrees")
        return 0
    diff = [k for k in range(len(r.scores)) if r.scores[k] != r.golden_scores[k]]
    print(f"golden model: class {r.golden_cls}, scores {r.golden_scores.tolist()}: board DISAGREES "
          f"(class {'same' if r.cls == r.golden_cls else 'differs'}, scores differ for class(es) "
          f"{', '.join(map(str, diff)) or 'none'})")
    return 1
