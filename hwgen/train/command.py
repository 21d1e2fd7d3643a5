"""``hwgen train MODEL --dataset D --data-dir DIR -o OUT.ckpt [options]``.

Every option has ``default=None`` on the command line, meaning "not given":
the defaults live in one place, :class:`~hwgen.train.config.TrainConfig` and
:class:`~hwgen.train.zoo.ModelOptions`, and ``--help`` quotes them from
there. Knowing which options were given makes two rules possible:

* ``--resume CKPT`` continues the saved run with its saved options; an option
  given with a value other than the saved one is refused, except those in
  :data:`~hwgen.train.trainer.RESUME_MAY_CHANGE` (``--epochs``, ``--device``,
  ``--compile``, ``--data-dir``), which take the new value;
* ``--momentum`` is refused with an optimiser that has none (Adam, AdamW).

Outputs (docs/outputs.md): ``OUT.ckpt`` holds the best epoch so far (highest
test top-1; ``--save last``: the latest), ``OUT.train-state.ckpt`` the latest
epoch with the optimiser state; an existing ``OUT.ckpt`` is never replaced by
a new run unless ``--overwrite`` is given (``--resume OUT.ckpt`` continues it).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path
from typing import Any

from hwgen.argtypes import fraction, non_negative_int, positive_float, positive_int
from hwgen.errors import ConfigError

__all__ = ["add_parser"]

#: Command-line option (dest) -> TrainConfig field; options of ModelOptions are prefixed "model_options.".
_CONFIG_KEYS = {
    "epochs": "epochs", "batch_size": "batch_size", "optimizer": "optimizer", "lr": "lr", "momentum": "momentum",
    "weight_decay": "weight_decay", "warmup_epochs": "warmup_epochs", "label_smoothing": "label_smoothing",
    "scale_l2": "scale_l2", "stage1_epochs": "stage1_epochs", "no_clip_weights": "clip_weights",
    "augment": "augment", "seed": "seed", "device": "device", "compile": "compile", "limit_train": "limit_train",
    "limit": "limit_test", "data_dir": "data_dir",
    "width": "model_options.width", "first_layer": "model_options.first_bits",
    "last_layer": "model_options.last_bits", "scale": "model_options.scale", "act_scale": "model_options.act_scale",
    "estimator": "model_options.estimator", "weight_estimator": "model_options.weight_estimator",
    "dropout": "model_options.dropout", "depth": "model_options.depth", "shortcut": "model_options.shortcut",
}


def _default(key: str) -> Any:
    """The default of a TrainConfig / ModelOptions field, as the user writes it."""
    from hwgen.train.config import TrainConfig
    from hwgen.train.zoo import ModelOptions

    cls, name = (ModelOptions, key.split(".", 1)[1]) if key.startswith("model_options.") else (TrainConfig, key)
    field = next(f for f in dataclasses.fields(cls) if f.name == name)
    value = field.default
    return getattr(value, "value", value)


def _d(key: str) -> str:
    return f"(default {_default(key)})"


def add_parser(sub: argparse._SubParsersAction) -> None:
    from hwgen.data.datasets import DATASET_NAMES
    from hwgen.train.config import Optimizer
    from hwgen.train.quantizers import Estimator
    from hwgen.train.scales import ActScaleMode, ScaleMode
    from hwgen.train.zoo import MODELS

    p = sub.add_parser("train", help="train a binary network from the zoo",
                       description="Train a zoo model with binary weights and activations; writes OUT (the best "
                                   "epoch), OUT's training state (the latest epoch), a JSON-lines log and a PNG "
                                   "of the curves. See docs/outputs.md for what is written when.")
    p.add_argument("model", choices=list(MODELS), help="zoo model")
    p.add_argument("--dataset", required=True, choices=DATASET_NAMES)
    p.add_argument("--data-dir", required=True, help="folder with the dataset in its standard format")
    p.add_argument("-o", "--output", required=True, type=Path, help="checkpoint to write (e.g. model.ckpt)")
    p.add_argument("--epochs", type=positive_int, default=None, help=_d("epochs"))
    p.add_argument("--batch-size", type=positive_int, default=None,
                   help=f"global batch size (split across processes) {_d('batch_size')}")
    g = p.add_argument_group("binarization and scale factors")
    g.add_argument("--scale", choices=[m.value for m in ScaleMode], default=None,
                   help="output scale of binary layers: xnor = mean|W|; gamma_* = XNOR-Net++ shapes 1-4; "
                        f"trained = Xu & Cheung alpha {_d('model_options.scale')}")
    g.add_argument("--act-scale", choices=[m.value for m in ActScaleMode], default=None,
                   help="trained activation scale beta (Xu & Cheung): per layer or per output channel "
                        f"{_d('model_options.act_scale')}")
    g.add_argument("--estimator", choices=[e.value for e in Estimator], default=None,
                   help="gradient of sign() for activations: ste, approx_sign (Bi-Real), tight (Xu & Cheung) "
                        f"{_d('model_options.estimator')}")
    g.add_argument("--weight-estimator", choices=[e.value for e in Estimator], default=None,
                   help=f"gradient of sign() for weights {_d('model_options.weight_estimator')}")
    g.add_argument("--scale-l2", type=float, default=None,
                   help=f"L2 coefficient on trained weight scales alpha {_d('scale_l2')}")
    g.add_argument("--first-layer", default=None,
                   help="first-layer weights: float, int8 (intK) or binary (default: the model's)")
    g.add_argument("--last-layer", default=None,
                   help="last-layer weights: float, int8 (intK) or binary (default: the model's)")
    g.add_argument("--width", type=positive_float, default=None,
                   help=f"channel width multiplier {_d('model_options.width')}")
    g.add_argument("--dropout", type=fraction, default=None,
                   help="dropout of the MLPs, in [0, 1) (default 0.2)")
    g.add_argument("--depth", type=positive_int, default=None,
                   help="resnet depth 6n + 2: 8, 14, 20, ... (default 8)")
    g.add_argument("--shortcut", choices=["binary", "float"], default=None,
                   help="resnet shortcut: binary (the sign bits, exact in integer hardware) or float (the "
                        f"accuracy reference, not compilable; docs/residual.md) {_d('model_options.shortcut')}")
    g.add_argument("--stage1-epochs", type=non_negative_int, default=None,
                   help="two-stage schedule: epochs with binary activations and real weights before binary "
                        f"weights {_d('stage1_epochs')}")
    g.add_argument("--no-clip-weights", action="store_true", default=None,
                   help="do not clamp latent binary weights to [-1, 1] (default: clamp)")
    o = p.add_argument_group("optimisation")
    o.add_argument("--optimizer", choices=[m.value for m in Optimizer], default=None, help=_d("optimizer"))
    o.add_argument("--lr", type=positive_float, default=None, help=f"peak learning rate {_d('lr')}")
    o.add_argument("--momentum", type=float, default=None,
                   help=f"SGD momentum (Nesterov); only with --optimizer sgd {_d('momentum')}")
    o.add_argument("--weight-decay", type=float, default=None, help=_d("weight_decay"))
    o.add_argument("--warmup-epochs", type=float, default=None,
                   help=f"linear warm-up before the cosine decay, at most --epochs {_d('warmup_epochs')}")
    o.add_argument("--label-smoothing", type=fraction, default=None, help=_d("label_smoothing"))
    r = p.add_argument_group("run")
    r.add_argument("--augment", action=argparse.BooleanOptionalAction, default=None,
                   help="random crop + flip (default: on for CIFAR-10 (pad 4 + flip), off for MNIST (pad 2) "
                        "and Fashion-MNIST (pad 2 + flip))")
    r.add_argument("--seed", type=int, default=None, help=_d("seed"))
    r.add_argument("--device", default=None, help=f"cpu, cuda or cuda:N; multi-GPU: launch with torchrun "
                                                  f"{_d('device')}")
    r.add_argument("--compile", action="store_true", default=None,
                   help="torch.compile the model (needs a C++ compiler) (default: off)")
    r.add_argument("--resume", type=Path, default=None, metavar="CKPT",
                   help="continue the run saved in CKPT's training state (CKPT.train-state.ckpt) with its saved "
                        "options; only --epochs, --device, --compile and --data-dir may change")
    r.add_argument("--limit-train", type=positive_int, default=None, metavar="N",
                   help="use only the first N training images (default: all)")
    r.add_argument("--limit", type=positive_int, default=None, metavar="N",
                   help="use only the first N test images (default: all)")
    r.add_argument("--limit-test", dest="limit", type=positive_int, default=None, help=argparse.SUPPRESS)
    r.add_argument("--save", choices=["best", "last"], default="best",
                   help="what OUT holds: the epoch with the best test top-1 so far, or the latest (default best)")
    r.add_argument("--overwrite", action="store_true",
                   help="replace an existing OUT with this new run (default: refuse; --resume OUT continues it)")
    r.add_argument("--no-progress", action="store_true", help="no progress bar (default: shown)")
    p.set_defaults(func=_run_train)


def _given(args: argparse.Namespace) -> dict[str, Any]:
    """The options given on the command line, as TrainConfig keys ("model_options.x" for ModelOptions)."""
    from hwgen.train.zoo import parse_precision

    given: dict[str, Any] = {}
    for dest, key in _CONFIG_KEYS.items():
        value = getattr(args, dest)
        if value is None:
            continue
        if dest in ("first_layer", "last_layer"):
            value = parse_precision(value)
        elif dest == "no_clip_weights":
            value = not value
        given[key] = value
    given["model"], given["dataset"] = args.model, args.dataset
    return given


def _nest(flat: dict[str, Any]) -> dict[str, Any]:
    """{"model_options.x": v, "y": w} -> {"model_options": {"x": v}, "y": w}."""
    out: dict[str, Any] = {"model_options": {}}
    for key, value in flat.items():
        if key.startswith("model_options."):
            out["model_options"][key.split(".", 1)[1]] = value
        else:
            out[key] = value
    return out


def _flat(config: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in config.items() if k != "model_options"}
    out.update({f"model_options.{k}": v for k, v in config.get("model_options", {}).items()})
    return out


def _option(key: str) -> str:
    dest = {"model": "MODEL", "dataset": "--dataset", "limit_test": "--limit",
            "clip_weights": "--no-clip-weights"}.get(key)
    if dest:
        return dest
    dest = next((d for d, k in _CONFIG_KEYS.items() if k == key), key)
    return "--" + dest.replace("_", "-")


def _resume_config(given: dict[str, Any], resume: Path):
    """The saved run's TrainConfig with the allowed changes; ConfigError listing any other option that differs."""
    from hwgen.train.checkpoint import read_metadata
    from hwgen.train.config import TrainConfig
    from hwgen.train.trainer import RESUME_MAY_CHANGE, resume_state_path

    state = resume_state_path(resume)
    saved = _flat(json.loads(read_metadata(state).get("train_config", "{}")))
    plain = {k: getattr(v, "value", v) for k, v in given.items()}
    conflicts = [f"{_option(k)} {v} (saved: {saved.get(k)})" for k, v in plain.items()
                 if k not in RESUME_MAY_CHANGE and saved.get(k) != v]
    if conflicts:
        raise ConfigError(f"--resume {resume} continues a run with its saved options, and these differ: "
                          f"{'; '.join(conflicts)}; leave them out, or start a new run without --resume "
                          f"(only {', '.join(_option(k) for k in RESUME_MAY_CHANGE)} may change)")
    saved.update({k: v for k, v in plain.items() if k in RESUME_MAY_CHANGE})
    return TrainConfig.from_dict(_nest(saved))


def _continues(resume: Path | None, out: Path) -> bool:
    """Whether ``--resume`` names ``out``'s own run (``out`` or its train-state file)."""
    if resume is None:
        return False
    name = resume.name
    ckpt = resume.with_name(name[:-len(".train-state.ckpt")] + ".ckpt") if name.endswith(".train-state.ckpt") else resume
    return ckpt.exists() and out.exists() and ckpt.resolve() == out.resolve()


def _run_train(args: argparse.Namespace) -> int:
    from hwgen.outputs import check_output_file
    from hwgen.train.config import Optimizer, TrainConfig
    from hwgen.train.trainer import train
    from hwgen.train.zoo import ModelOptions

    given = _given(args)
    out = check_output_file(args.output)
    if out.exists() and not args.overwrite and not _continues(args.resume, out):
        raise ConfigError(f"{out} exists: continue its run with --resume {out}, give another -o, or pass "
                          f"--overwrite to replace it with a new run")
    if args.resume is not None:
        cfg = _resume_config(given, args.resume)
    else:
        nested = _nest(given)
        options = ModelOptions.from_dict({k: getattr(v, "value", v) for k, v in nested.pop("model_options").items()})
        nested["optimizer"] = Optimizer(nested.get("optimizer", "adam"))
        cfg = TrainConfig(model_options=options, **nested)
    if "momentum" in given and cfg.optimizer is not Optimizer.SGD:
        raise ConfigError(f"--momentum applies to --optimizer sgd only, not {cfg.optimizer.value} "
                          f"(Adam's moments are fixed); leave it out or use --optimizer sgd")
    metrics = train(cfg, out, resume=args.resume, progress=not args.no_progress, keep=args.save)
    if metrics.get("test_acc") is None:
        return 0
    if args.save == "best":
        print(f"wrote {out}: epoch {metrics['best_epoch']} of {metrics['epochs']}, the best, test top-1 "
              f"{100 * metrics['best_test_acc']:.2f}% (last epoch {100 * metrics['test_acc']:.2f}%)")
    else:
        print(f"wrote {out}: epoch {metrics['epochs']}, test top-1 {100 * metrics['test_acc']:.2f}% "
              f"(best {100 * metrics['best_test_acc']:.2f}% at epoch {metrics['best_epoch']})")
    return 0
