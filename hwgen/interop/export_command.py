"""``hwgen export CKPT|NET.hwir -o NET.onnx``: the compiled network as QONNX (hwgen/interop/export.py)."""

from __future__ import annotations

import argparse
from pathlib import Path

__all__ = ["add_parser"]


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export", help="write a checkpoint or IR as QONNX (what FINN and qonnx read)",
                       description="Compile a checkpoint (or load an IR) and write it as a QONNX file whose every "
                                   "tensor is an exact integer: qonnx's executor gives the golden model's scores. "
                                   "Float input: pixel / 255, NCHW.")
    p.add_argument("model", type=Path, help="model.ckpt or net.hwir")
    p.add_argument("-o", "--output", type=Path, required=True, help="QONNX file to write (e.g. net.onnx)")
    p.set_defaults(func=_run_export)


def _run_export(args: argparse.Namespace) -> int:
    from hwgen.hw.builder import load_model
    from hwgen.errors import CompileError
    from hwgen.interop.export import export_network
    from hwgen.outputs import check_output_file

    if args.model.suffix == ".onnx":
        raise CompileError(f"{args.model} is already an ONNX file; give a .ckpt or .hwir")
    check_output_file(args.output, inputs=[args.model])
    net, _ = load_model(args.model)
    net.require_chain("hwgen export writes chains only")
    export_network(net, args.output)
    print(f"wrote {args.output}: {len(net.layers)} layers, input {net.input_shape} as pixel / 255, "
          f"{net.num_classes} class scores")
    return 0
