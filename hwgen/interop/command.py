"""``hwgen import MODEL.onnx -o NET.hwir [--input-mean M] [--input-std S] [--verify --dataset D --data-dir DIR]``."""

from __future__ import annotations

import argparse
from pathlib import Path

from hwgen.argtypes import positive_int

__all__ = ["add_parser", "add_pixel_mapping_options", "pixel_mapping"]


def add_pixel_mapping_options(p: argparse.ArgumentParser) -> None:
    """--input-mean / --input-std: the QONNX model's float input x = (v / 255 - mean) / std."""
    g = p.add_argument_group("pixel mapping of a QONNX model (float input = (pixel / 255 - mean) / std, NCHW)")
    g.add_argument("--input-mean", default=None, metavar="M[,M,...]",
                   help="per-channel mean (one value for all channels; default 0)")
    g.add_argument("--input-std", default=None, metavar="S[,S,...]",
                   help="per-channel std (default 1: the float input is pixel / 255, as ToTensor gives)")


def pixel_mapping(args: argparse.Namespace):
    from hwgen.interop.qonnx_model import PixelMapping, parse_floats

    mean = parse_floats(getattr(args, "input_mean", None), "--input-mean")
    std = parse_floats(getattr(args, "input_std", None), "--input-std")
    return PixelMapping(mean=mean or (0.0,), std=std or (1.0,))


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("import", help="lower a QONNX model (Brevitas export_qonnx, FINN) to the integer IR",
                       description="Read a QONNX file, lower it into the same float stages and folding passes as a "
                                   "checkpoint, write the IR and print the per-layer table; --verify compares "
                                   "qonnx's executor with the golden model on the test set.")
    p.add_argument("model", type=Path, help="MODEL.onnx (an external MODEL.onnx.data beside it is read too)")
    p.add_argument("-o", "--output", type=Path, required=True, help="IR file to write (e.g. net.hwir)")
    add_pixel_mapping_options(p)
    p.add_argument("--verify", action="store_true",
                   help="compare qonnx's executor and the golden model on the test set (counts float ties)")
    p.add_argument("--dataset", default=None, help="for --verify")
    p.add_argument("--data-dir", default=None, help="for --verify")
    p.add_argument("--limit", type=positive_int, default=None, help="for --verify: only the first N test images")
    p.set_defaults(func=_run_import)


def _run_import(args: argparse.Namespace) -> int:
    from hwgen.compile.artifact import save_network
    from hwgen.compile.report import format_table, layer_rows
    from hwgen.interop.lower import import_qonnx
    from hwgen.outputs import check_output_file

    check_output_file(args.output, inputs=[args.model])
    mapping = pixel_mapping(args)
    net = import_qonnx(args.model, mapping)
    if args.dataset:
        net.metadata.update(dataset=args.dataset, data_dir=args.data_dir)
    save_network(args.output, net)
    print(format_table(layer_rows(net)))
    print(f"wrote {args.output}")
    return verify(args, net, mapping) if args.verify else 0


def verify(args: argparse.Namespace, net, mapping) -> int:
    """qonnx's executor against the golden model on the test set; exit status 1 on a mismatch."""
    from hwgen.data.datasets import load_dataset
    from hwgen.errors import ConfigError
    from hwgen.compile.report import format_agreement
    from hwgen.interop.reference import compare_with_executor

    if not args.dataset or not args.data_dir:
        raise ConfigError("--verify needs --dataset and --data-dir (a QONNX file does not record its dataset)")
    dataset, data = args.dataset, load_dataset(args.dataset, args.data_dir)
    images, labels = data.test_images[:args.limit].numpy(), data.test_labels[:args.limit].numpy()
    r = compare_with_executor(args.model, net, images, labels, mapping)
    print(format_agreement(r, reference="qonnx executor", reference_correct=r.executor_correct, dataset=dataset))
    return 0 if r.ok else 1
