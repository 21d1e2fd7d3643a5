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
from hwgen.boards import command as run_command
from hwgen.build import command as build_command
from hwgen.errors import HwgenError
from hwgen.explore import command as explore_command
from hwgen.report import command as report_command
from hwgen.interop import command as import_command
from hwgen.interop import export_command
from hwgen.sim import command as sim_command
from hwgen.synth import command as synth_command


def _add_train(sub: argparse._SubParsersAction) -> None:
    from hwgen.data.datasets import DATASET_NAMES
    from hwgen.train.config import Optimizer
    from hwgen.train.quantizers import Estimator
    from hwgen.train.scales import ActScaleMode, ScaleMode
    from hwgen.train.zoo import MODELS

    p = sub.add_parser("train", help="train a binary network from the zoo",
                       description="Train a zoo model with binary weights and activations; writes OUT, "
                                   "OUT's training state, a JSON-lines log and a PNG of the curves.")
    p.add_argument("model", choices=list(MODELS), help="zoo model")
    p.add_argument("--dataset", required=True, choices=DATASET_NAMES)
    p.add_argument("--data-dir", required=True, help="folder with the dataset in its standard format")
    p.add_argument("-o", "--output", required=True, type=Path, help="checkpoint to write (e.g. model.ckpt)")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--batch-size", type=int, default=128, help="global batch size (split across processes)")
    g = p.add_argument_group("binarization and scale factors")
    g.add_argument("--scale", choices=[m.value for m in ScaleMode], default="none",
                   help="output scale of binary layers: xnor = mean|W|; gamma_* = XNOR-Net++ shapes 1-4; "
                        "trained = Xu & Cheung alpha (default: none)")
    g.add_argument("--act-scale", choices=[m.value for m in ActScaleMode], default="none",
                   help="trained activation scale beta (Xu & Cheung): per layer or per output channel")
    g.add_argument("--estimator", choices=[e.value for e in Estimator], default="ste",
                   help="gradient of sign() for activations: ste, approx_sign (Bi-Real), tight (Xu & Cheung)")
    g.add_argument("--weight-estimator", choices=[e.value for e in Estimator], default="ste",
                   help="gradient of sign() for weights")
    g.add_argument("--scale-l2", type=float, default=0.0, help="L2 coefficient on trained weight scales alpha")
    g.add_argument("--first-layer", default=None, help="first-layer weights: float, int8 (intK) or binary")
    g.add_argument("--last-layer", default=None, help="last-layer weights: float, int8 (intK) or binary")
    g.add_argument("--width", type=float, default=1.0, help="channel width multiplier")
    g.add_argument("--dropout", type=float, default=None, help="dropout of the MLPs (default 0.2)")
    g.add_argument("--stage1-epochs", type=int, default=0,
                   help="two-stage schedule: epochs with binary activations and real weights before binary weights")
    g.add_argument("--no-clip-weights", action="store_true", help="do not clamp latent binary weights to [-1, 1]")
    o = p.add_argument_group("optimisation")
    o.add_argument("--optimizer", choices=[m.value for m in Optimizer], default="adam")
    o.add_argument("--lr", type=float, default=1e-3, help="peak learning rate")
    o.add_argument("--momentum", type=float, default=0.9, help="SGD momentum (Nesterov)")
    o.add_argument("--weight-decay", type=float, default=0.0)
    o.add_argument("--warmup-epochs", type=float, default=0.0, help="linear warm-up before the cosine decay")
    o.add_argument("--label-smoothing", type=float, default=0.0)
    r = p.add_argument_group("run")
    r.add_argument("--augment", action=argparse.BooleanOptionalAction, default=None,
                   help="random crop + flip: CIFAR-10 pad 4 + flip (default on), MNIST pad 2, Fashion-MNIST pad 2 + flip")
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N; multi-GPU: launch with torchrun")
    r.add_argument("--compile", action="store_true", help="torch.compile the model (needs a C++ compiler)")
    r.add_argument("--resume", type=Path, default=None,
                   help="continue a run from CKPT's training state (CKPT.train-state.ckpt); --epochs may grow")
    r.add_argument("--limit-train", type=int, default=None, help="use only the first N training images")
    r.add_argument("--limit-test", type=int, default=None, help="use only the first N test images")
    r.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=_run_train)


def _run_train(args: argparse.Namespace) -> int:
    from hwgen.train.config import Optimizer, TrainConfig
    from hwgen.train.quantizers import Estimator
    from hwgen.train.scales import ActScaleMode, ScaleMode
    from hwgen.train.trainer import train
    from hwgen.train.zoo import ModelOptions, parse_precision

    options = ModelOptions(
        width=args.width,
        first_bits=parse_precision(args.first_layer) if args.first_layer else None,
        last_bits=parse_precision(args.last_layer) if args.last_layer else None,
        scale=ScaleMode(args.scale),
        act_scale=ActScaleMode(args.act_scale),
        estimator=Estimator(args.estimator),
        weight_estimator=Estimator(args.weight_estimator),
        dropout=args.dropout,
    )
    cfg = TrainConfig(
        model=args.model, dataset=args.dataset, data_dir=str(args.data_dir), model_options=options,
        epochs=args.epochs, batch_size=args.batch_size, optimizer=Optimizer(args.optimizer), lr=args.lr,
        momentum=args.momentum, weight_decay=args.weight_decay, warmup_epochs=args.warmup_epochs,
        label_smoothing=args.label_smoothing, scale_l2=args.scale_l2, stage1_epochs=args.stage1_epochs,
        clip_weights=not args.no_clip_weights, augment=args.augment, seed=args.seed, device=args.device,
        compile=args.compile, limit_train=args.limit_train, limit_test=args.limit_test,
    )
    metrics = train(cfg, args.output, resume=args.resume, progress=not args.no_progress)
    if metrics.get("test_acc") is not None:
        print(f"wrote {args.output}: test top-1 {100 * metrics['test_acc']:.2f}% "
              f"(best {100 * metrics['best_test_acc']:.2f}% at epoch {metrics['best_epoch']})")
    return 0


def _add_compile(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("compile", help="lower a checkpoint to the integer IR (thresholds, packed weights)",
                       description="Fold BatchNorm, scales and sign into integer thresholds, pack the weights, "
                                   "and write the IR that the golden model and the hardware generator read.")
    p.add_argument("checkpoint", type=Path)
    p.add_argument("-o", "--output", type=Path, required=True, help="IR file to write (e.g. net.hwir)")
    p.add_argument("--verify", action="store_true",
                   help="compare the PyTorch model and the golden model on the test set (counts float ties)")
    p.add_argument("--dataset", default=None, help="for --verify (default: the checkpoint's)")
    p.add_argument("--data-dir", default=None, help="for --verify (default: the checkpoint's)")
    p.add_argument("--limit", type=int, default=None, help="for --verify: only the first N test images")
    p.set_defaults(func=_run_compile)


def _run_compile(args: argparse.Namespace) -> int:
    from hwgen.compile.artifact import save_network
    from hwgen.compile.compiler import compile_checkpoint
    from hwgen.compile.report import format_table, layer_rows

    from hwgen.train.checkpoint import load_checkpoint

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

    dataset = args.dataset or recorded.get("dataset")
    data_dir = args.data_dir or recorded.get("data_dir")
    if not dataset or not data_dir:
        raise ConfigError(f"{args.checkpoint} does not record its dataset: pass --dataset and --data-dir")
    return dataset, load_dataset(dataset, data_dir)


def _verify(args: argparse.Namespace, ckpt, net) -> int:
    """Compare the checkpoint's PyTorch model with the compiled golden model on the test set."""
    from hwgen.compile.verify import compare_models
    from hwgen.train.network import model_from_checkpoint

    model = model_from_checkpoint(ckpt, str(args.checkpoint))
    dataset, data = _test_data(args, ckpt.train_config)
    images, labels = data.test_images[:args.limit].numpy(), data.test_labels[:args.limit].numpy()
    result = compare_models(model, net, images, labels)
    print(f"PyTorch vs golden model on {result.images} {dataset} test images: "
          f"{result.same_prediction} same top-1, {result.images - len(result.float_ties) - len(result.mismatches)} "
          f"identical in every layer, {len(result.float_ties)} with a float tie "
          f"({sum(not t['same_prediction'] for t in result.float_ties)} changing top-1), "
          f"{len(result.mismatches)} mismatches; accuracy PyTorch {100 * result.torch_correct / result.images:.2f}% "
          f"golden {100 * result.golden_correct / result.images:.2f}%")
    for item in result.float_ties[:10]:
        print(f"  tie: image {item['image']} at {item['layer']}: {item}")
    for item in result.mismatches[:10]:
        print(f"  MISMATCH: image {item['image']} at {item['layer']}: {item}")
    return 0 if result.ok else 1


def _add_eval(sub: argparse._SubParsersAction) -> None:
    from hwgen.data.datasets import DATASET_NAMES

    p = sub.add_parser("eval", help="top-1 accuracy of a checkpoint (PyTorch) or IR file (golden model)",
                       description="Evaluate a checkpoint (.ckpt, PyTorch), a compiled IR (.hwir, the integer "
                                   "golden model) or a QONNX model (.onnx: qonnx's executor and the golden model "
                                   "of its import) on the test split of a dataset.")
    p.add_argument("checkpoint", type=Path, help="model.ckpt, net.hwir or model.onnx")
    p.add_argument("--dataset", choices=DATASET_NAMES, default=None, help="default: the one it was trained on")
    p.add_argument("--data-dir", default=None, help="default: the one it was trained with")
    p.add_argument("--batch-size", type=int, default=1000)
    p.add_argument("--device", default="cpu")
    p.add_argument("--limit", type=int, default=None, help="only the first N test images")
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
    parser = argparse.ArgumentParser(
        prog="hwgen",
        description="Open FPGA accelerator generator for binary neural networks.",
    )
    parser.add_argument("--version", action="version", version=f"hwgen {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    _add_train(sub)
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
    parser = build_parser()
    args = parser.parse_args(argv)
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
