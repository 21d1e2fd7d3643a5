"""``hwgen synth BUILD_DIR (--target T | --board B [--baud N]) [--clock MHZ] [--seed S] [--yosys PATH ...]``.

With ``--board`` the accelerator is wrapped in the board's top first
(:func:`hwgen.boards.generate.write_board_files`), and that is synthesised.
The folder is locked while the tools run (a second synth or a build into it
is refused); a failed run leaves the previous bitstream and reports
(:func:`hwgen.synth.runner.run_synth`); a successful one records its files
in the folder's manifest (:mod:`hwgen.manifest`). ``--freq`` is an old
spelling of ``--clock``, still accepted.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from hwgen.argtypes import non_negative_int
from hwgen.errors import SynthError
from hwgen.report.hooks import refreshes_report

__all__ = ["add_parser"]


def add_parser(sub: argparse._SubParsersAction) -> None:
    from hwgen.boards.boards import BOARDS
    from hwgen.boards.generate import DEFAULT_BAUD
    from hwgen.hw.targets import TARGETS
    from hwgen.synth.runner import DEFAULT_FREQ_MHZ, DEFAULT_SEED
    from hwgen.synth.routers import ROUTER1_LIMIT_S, ROUTER2_MIN_LUT4, ROUTERS

    p = sub.add_parser("synth", help="synthesise, place and route a build folder to a bitstream (Yosys, nextpnr)",
                       description="Run Yosys, nextpnr and ecppack / icepack on a build folder's top.v; writes the "
                                   "bitstream, synth_report.md / .json (resources, Fmax, critical path, frames/s) "
                                   "and the tool logs into the folder. With --board, the accelerator is wrapped "
                                   "in the board's top (UART host link, clock, reset, LEDs; board_top.v, the "
                                   "board's LPF, board.json) and that is synthesised.")
    p.add_argument("build_dir", type=Path, metavar="BUILD_DIR", help="folder written by hwgen build")
    p.add_argument("--target", default=None, choices=list(TARGETS),
                   help="FPGA device and package (out of context: I/O on any pins); required without --board")
    p.add_argument("--board", default=None, choices=list(BOARDS),
                   help="wrap the accelerator for this board (implies its --target) and use its pin constraints")
    p.add_argument("--freq", dest="clock", type=float, default=None, help=argparse.SUPPRESS)
    p.add_argument("--clock", type=float, default=None, metavar="MHZ",
                   help=f"clock nextpnr must meet (default {DEFAULT_FREQ_MHZ:g}); with --board also the system "
                        f"clock the board's PLL makes (default: the build's --clock)")
    p.add_argument("--seed", type=int, default=DEFAULT_SEED, help=f"placer seed (default {DEFAULT_SEED})")
    p.add_argument("--router", default=None, choices=list(ROUTERS),
                   help=f"nextpnr-ecp5 router (default: router2 above {ROUTER2_MIN_LUT4:,} estimated LUT4, "
                        f"else router1)")
    p.add_argument("--router1-limit", type=non_negative_int, default=ROUTER1_LIMIT_S, metavar="SECONDS",
                   help=f"seconds of routing router1 gets; then nextpnr runs again with router2, the same seed "
                        f"(default {ROUTER1_LIMIT_S}; 0: no limit)")
    p.add_argument("--nextpnr-args", default="", metavar="ARGS",
                   help="extra nextpnr options, one string, given with '=' as they start with '-' (e.g. "
                        "--nextpnr-args='--timing-allow-fail --placer-heap-alpha 0.05'; default none); recorded in the reports")
    p.add_argument("--constraints", default=None, metavar="FILE",
                   help="LPF (ECP5) / PCF (iCE40) pin file in the build folder (default: none, I/O placed anywhere; "
                        "--board writes its own)")
    p.add_argument("--baud", type=int, default=None,
                   help=f"with --board: UART baud rate of the host link (default {DEFAULT_BAUD:,})")
    t = p.add_argument_group("tools (default: the YoWASP builds from PyPI)")
    t.add_argument("--yosys", default=None, metavar="PATH", help="yosys command")
    t.add_argument("--nextpnr", default=None, metavar="PATH", help="nextpnr-ecp5 / nextpnr-ice40 command")
    t.add_argument("--pack", default=None, metavar="PATH", help="ecppack / icepack command")
    p.set_defaults(func=refreshes_report(_run_synth))


def _run_synth(args: argparse.Namespace) -> int:
    from hwgen.manifest import record
    from hwgen.outputs import folder_lock
    from hwgen.synth.routers import ROUTER1_LOG
    from hwgen.synth.runner import output_names
    from hwgen.synth.scripts import toolchain_files

    if not args.build_dir.is_dir():
        raise SynthError(f"build folder {args.build_dir} does not exist (run hwgen build first)")
    with folder_lock(args.build_dir, what="synthesise"):
        result, hint, board_files = _synthesise(args)
        files = toolchain_files(result.target.family)
        logs = [files.logs.synth, files.logs.pnr, files.logs.pack]
        if result.router1_stopped_s is not None:
            logs.append(ROUTER1_LOG)
        record(args.build_dir, "synth", [*output_names(files), *logs])
        if board_files:
            record(args.build_dir, "board", board_files)
    print(result.summary())
    print(f"wrote {args.build_dir}/{result.bitstream}, synth_report.md, synth_report.json and the tool logs")
    if hint:
        print(hint)
    return 0


def _synthesise(args: argparse.Namespace):
    """(SynthResult, a hint to print or None, the board files written or ())."""
    import shlex
    from functools import partial

    from hwgen.synth.runner import DEFAULT_FREQ_MHZ, check_nextpnr_args, run_synth

    try:
        nextpnr_args = check_nextpnr_args(shlex.split(args.nextpnr_args))
    except ValueError as e:
        raise SynthError(f"--nextpnr-args {args.nextpnr_args!r}: {e}") from None
    run_synth = partial(run_synth, nextpnr_args=nextpnr_args)

    if args.board is None:
        if args.target is None:
            raise SynthError("give --target (an FPGA, out of context) or --board (a board top with its pins)")
        if args.baud is not None:
            raise SynthError("--baud sets the board top's UART: it needs --board")
        freq = DEFAULT_FREQ_MHZ if args.clock is None else args.clock
        result = run_synth(args.build_dir, args.target, freq, args.seed, yosys=args.yosys, nextpnr=args.nextpnr,
                           pack=args.pack, constraints=args.constraints, router=args.router,
                           router1_limit_s=args.router1_limit)
        return result, None, ()
    return _run_board(args, run_synth)


def _run_board(args: argparse.Namespace, run_synth):
    """Write the board files, synthesise the board top with the accelerator at the board's clock;
    (result, hint, board files)."""
    from hwgen.boards.boards import get_board
    from hwgen.boards.generate import DEFAULT_BAUD, board_file_names, write_board_files
    from hwgen.synth.runner import previous_outputs_kept, timing_message
    from hwgen.synth.scripts import toolchain_files

    board = get_board(args.board)
    if args.target is not None and args.target != board.target_name:
        raise SynthError(f"--board {board.name} has a {board.target.part} ({board.target_name}), not --target "
                         f"{args.target}: leave --target out")
    if args.constraints is not None:
        raise SynthError(f"--board {board.name} writes its own constraints ({board.lpf_name}): leave --constraints out")
    if args.clock is not None and not args.clock > 0:
        raise SynthError(f"--clock must be a positive number of MHz, not {args.clock!r}")
    # the board files and the bitstream go together: a failed run leaves the previous ones of both
    with previous_outputs_kept(args.build_dir, board_file_names(board)):
        files = write_board_files(args.build_dir, board, clock_mhz=args.clock,
                                  baud=DEFAULT_BAUD if args.baud is None else args.baud)
        print(f"board top: {files.summary()}")
        result = run_synth(args.build_dir, board.target, files.clock_hz / 1e6, args.seed, yosys=args.yosys,
                           nextpnr=args.nextpnr, pack=args.pack, top=board.top_module, verilog=files.sources,
                           constraints=files.lpf, router=args.router, router1_limit_s=args.router1_limit,
                           allow_timing_fail=True)
    if not result.timing_met:  # the new bitstream was written, with the new board files
        raise SynthError(timing_message(result, args.build_dir / toolchain_files(board.target.family).report_md))
    return result, (f"load it with: {board.program} (in {args.build_dir}); then: hwgen run --port PORT IMAGE "
                    f"--build {args.build_dir}"), (files.verilog, files.lpf, files.info)
