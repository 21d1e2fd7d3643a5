"""Markdown table of training runs from their checkpoints.

    python benchmarks/summarize_runs.py runs/ablation/*.ckpt

One row per checkpoint: model, scale mode, estimator, epochs, final and best
test top-1, and training throughput, read from the checkpoint's metadata.
"""

from __future__ import annotations

import sys

from hwgen.train.checkpoint import load_checkpoint


def main(paths: list[str]) -> None:
    print("| run | model | scale | act scale | estimator | epochs | test top-1 | best | train img/s |")
    print("|---|---|---|---|---|---:|---:|---:|---:|")
    for path in paths:
        if path.endswith(".train-state.ckpt"):
            continue
        ckpt = load_checkpoint(path)
        o, m = ckpt.train_config["model_options"], ckpt.metrics
        name = path.rsplit("/", 1)[-1].removesuffix(".ckpt")
        print(f"| {name} | {ckpt.architecture.name} x{o['width']} | {o['scale']} | {o['act_scale']} | "
              f"{o['estimator']} | {m['epochs']} | {100 * m['test_acc']:.2f}% | {100 * m['best_test_acc']:.2f}% | "
              f"{m['train_images_per_s']:.0f} |")


if __name__ == "__main__":
    main(sys.argv[1:])
