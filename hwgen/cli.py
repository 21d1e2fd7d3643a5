"""The ``hwgen`` command line: one subcommand per pipeline stage.

User mistakes (bad options, missing files, incompatible checkpoints) print
``hwgen: error: <message>`` and exit with status 2, without a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from hwgen import __version__
from hwgen.argtypes import Parser, positive_int
from hwgen.boards import command as run_command
from hwgen.hw import command as build_command
from hwgen.errors import HwgenError
from hwgen.explore import command as explore_command
from hwgen.report import command as report_command
from hwgen.interop import command as import_command
from hwgen.interop import export_command
from hwgen.sim import command as sim_command
from hwgen.synth import command as synth_command
from hwgen.train import command as train_command


def _add_compile(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("compile", help="lower a checkpoint to the integer IR (thresholds, packed weights)",
                       description="Fold BatchNorm, scales and sign into integer thresholds, pack the weights, "
                                   "and write the IR that the golden model and the hardware generator read.")
    p.add_argument("checkpoint", type=Path)
    p.add_argument("-o", "--output", type=Path, required=True, help="IR file to write (e.g. net.hwir)")
    p.add_argument("--verify", action="store_true",
                   help="compare the PyTorch model and the golden model on the test set (counts float ties)")
    p.add_argument("--dataset", default=None, help="for --verify (default: the checkpoint's)")
    p.add_argument("--data-dir", default=None, help="for --verify (default: the checkpoint's; see docs/outputs.md)")
    p.add_argument("--limit", type=positive_int, default=None, metavar="N",
                   help="for --verify: only the first N test images (default: all)")
    p.set_defaults(func=_run_compile)


def _run_compile(args: argparse.Namespace) -> int:
    from hwgen.compile.artifact import save_network
    from hwgen.compile.compiler import compile_checkpoint
    from hwgen.compile.report import format_table, layer_rows

    from hwgen.outputs import check_output_file
    from hwgen.train.checkpoint import load_checkpoint

    check_output_file(args.output, inputs=[args.checkpoint])
    ckpt = load_checkpoint(args.checkpoint)
    net = compile_checkpoint(ckpt, str(args.checkpoint))
    save_network(args.output, net)
    print(format_table(layer_rows(net)))
    print(f"wrote {args.output}")
    return _verify(args, ckpt, net) if args.verify else 0


def _test_data(args: argparse.Namespace, recorded: dict):
    """(dataset name, Dataset) from --dataset/--data-dir, else what the model records."""
    from hwgen.data.datasets import load_dataset
    from hwgen.errors import ConfigError

    from hwgen.data.location import resolve_recorded_data_dir

    dataset = args.dataset or recorded.get("dataset")
    data_dir = args.data_dir or recorded.get("data_dir")
    if not dataset or not data_dir:
        raise ConfigError(f"{args.checkpoint} does not record its dataset: pass --dataset and --data-dir")
    if args.data_dir is None:
        data_dir = resolve_recorded_data_dir(data_dir, args.checkpoint)
    return dataset, load_dataset(dataset, data_dir)


def _verify(args: argparse.Namespace, ckpt, net) -> int:
    """Compare the checkpoint's PyTorch model with the compiled golden model on the test set."""
    from hwgen.compile.verify import compare_models
    from hwgen.compile.report import format_agreement
    from hwgen.train.network import model_from_checkpoint

    model = model_from_checkpoint(ckpt, str(args.checkpoint))
    dataset, data = _test_data(args, ckpt.train_config)
    images, labels = data.test_images[:args.limit].numpy(), data.test_labels[:args.limit].numpy()
    result = compare_models(model, net, images, labels)
    print(format_agreement(result, reference="PyTorch", reference_correct=result.torch_correct, dataset=dataset))
    return 0 if result.ok else 1


def _add_eval(sub: argparse._SubParsersAction) -> None:
    from hwgen.data.datasets import DATASET_NAMES

    p = sub.add_parser("eval", help="top-1 accuracy of a checkpoint (PyTorch) or IR file (golden model)",
                       description="Evaluate a checkpoint (.ckpt, PyTorch), a compiled IR (.hwir, the integer "
                                   "golden model) or a QONNX model (.onnx: qonnx's executor and the golden model "
                                   "of its import) on the test split of a dataset.")
    p.add_argument("checkpoint", type=Path, help="model.ckpt, net.hwir or model.onnx")
    p.add_argument("--dataset", choices=DATASET_NAMES, default=None, help="default: the one it was trained on")
    p.add_argument("--data-dir", default=None,
                   help="default: the one it was trained with, from here or from the model's folder and above")
    p.add_argument("--batch-size", type=positive_int, default=1000, help="images per forward pass (default 1000)")
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default cpu)")
    p.add_argument("--limit", type=positive_int, default=None, metavar="N",
                   help="only the first N test images (default: all)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    import_command.add_pixel_mapping_options(p)
    p.set_defaults(func=_run_eval)


def _run_eval(args: argparse.Namespace) -> int:
    from hwgen.errors import ConfigError

    if args.checkpoint.suffix == ".onnx":
        from hwgen.interop.lower import import_qonnx

        net = import_qonnx(args.checkpoint, import_command.pixel_mapping(args))
        name, input_shape, recorded = net.name, net.input_shape, net.metadata
    elif args.checkpoint.suffix == ".hwir":
        from hwgen.compile.artifact import load_network

        net = load_network(args.checkpoint)
        name, input_shape, recorded = net.name, net.input_shape, net.metadata
    else:
        from hwgen.train.checkpoint import load_checkpoint

        ckpt = load_checkpoint(args.checkpoint)
        name, input_shape, recorded = ckpt.architecture.name, ckpt.architecture.input.shape, ckpt.train_config
    dataset, data = _test_data(args, recorded)
    if tuple(data.test_images.shape[1:]) != tuple(input_shape):
        raise ConfigError(f"{dataset} images have shape {tuple(data.test_images.shape[1:])} but "
                          f"{args.checkpoint} expects {tuple(input_shape)}")
    images, labels = data.test_images[:args.limit], data.test_labels[:args.limit]
    extra = {}
    if args.checkpoint.suffix == ".onnx":
        from hwgen.compile.golden import run_network
        from hwgen.interop.reference import execute

        scores, _ = execute(args.checkpoint, images.numpy(), import_command.pixel_mapping(args))
        extra["executor_top1"] = float((scores.argmax(axis=1) == labels.numpy()).mean())
        predictions = run_network(net, images.numpy()).predictions
        acc, loss = float((predictions == labels.numpy()).mean()), None
    elif args.checkpoint.suffix == ".hwir":
        from hwgen.compile.golden import run_network

        predictions = run_network(net, images.numpy()).predictions
        acc, loss = float((predictions == labels.numpy()).mean()), None
    else:
        from hwgen.train.distributed import resolve_device
        from hwgen.train.network import load_model
        from hwgen.train.trainer import evaluate

        device = resolve_device(args.device)
        model, _ = load_model(args.checkpoint, device)
        loss, acc = evaluate(model, images, labels, device=device, batch_size=args.batch_size)
    result = {"checkpoint": str(args.checkpoint), "model": name, "dataset": dataset,
              "images": len(images), "top1": acc, "loss": loss, **extra}
    if args.json:
        print(json.dumps(result))
    elif extra:
        print(f"{name} on {dataset}: top-1 {100 * acc:.2f}% (golden model of the import), "
              f"{100 * extra['executor_top1']:.2f}% (qonnx executor, float) on {len(images)} images")
    else:
        print(f"{name} on {dataset}: top-1 {100 * acc:.2f}% ({round(acc * len(images))}/{len(images)})"
              + (f", loss {loss:.4f}" if loss is not None else " (golden model)"))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="hwgen",
        description="Open FPGA accelerator generator for binary neural networks.",
    )
    parser.add_argument("--version", action="version", version=f"hwgen {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    train_command.add_parser(sub)
    _add_compile(sub)
    import_command.add_parser(sub)
    export_command.add_parser(sub)
    _add_eval(sub)
    build_command.add_parser(sub)
    sim_command.add_parser(sub)
    synth_command.add_parser(sub)
    run_command.add_parser(sub)
    report_command.add_parser(sub)
    explore_command.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    from hwgen.manifest import set_command

    parser = build_parser()
    set_command(sys.argv[1:] if argv is None else argv)
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, or a one-line parsing error (argtypes.Parser)
        return exc.code if isinstance(exc.code, int) else 0
    try:
        return args.func(args)
    except HwgenError as exc:
        print(f"hwgen: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("hwgen: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
