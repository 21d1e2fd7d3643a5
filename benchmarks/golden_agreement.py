"""PyTorch eval model vs golden model on the full test set, one markdown row per checkpoint.

    python benchmarks/golden_agreement.py models/tfc_mnist.ckpt runs/fc/*.ckpt ...

Each checkpoint is compiled and both models run on its dataset's whole test
split (the dataset and folder the checkpoint records); see hwgen/compile/verify.py
for what counts as a float tie.
"""

from __future__ import annotations

import sys
import time

from hwgen.compile.compiler import compile_checkpoint
from hwgen.compile.verify import compare_models
from hwgen.data.datasets import load_dataset
from hwgen.train.checkpoint import load_checkpoint
from hwgen.train.network import model_from_checkpoint


def main(paths: list[str]) -> None:
    print("| checkpoint | model | dataset | images | same top-1 | identical in every layer | float ties "
          "(changing top-1) | mismatches | PyTorch top-1 | golden top-1 | seconds |")
    print("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for path in paths:
        if path.endswith(".train-state.ckpt"):
            continue
        started = time.perf_counter()
        ckpt = load_checkpoint(path)
        net = compile_checkpoint(ckpt, path)
        data = load_dataset(ckpt.train_config["dataset"], ckpt.train_config["data_dir"])
        r = compare_models(model_from_checkpoint(ckpt, path), net, data.test_images.numpy(),
                           data.test_labels.numpy())
        identical = r.images - len(r.float_ties) - len(r.mismatches)
        changing = sum(not t["same_prediction"] for t in r.float_ties)
        o = ckpt.train_config["model_options"]
        print(f"| {path} | {ckpt.architecture.name} x{o['width']} {o['scale']}/{o['estimator']} | "
              f"{ckpt.train_config['dataset']} | {r.images:,} | {r.same_prediction:,} | {identical:,} | "
              f"{len(r.float_ties)} ({changing}) | {len(r.mismatches)} | {100 * r.torch_correct / r.images:.2f}% | "
              f"{100 * r.golden_correct / r.images:.2f}% | {time.perf_counter() - started:.0f} |", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
