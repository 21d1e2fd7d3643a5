"""Markdown table (and optionally a bar chart) of training runs, from their checkpoints.

    python benchmarks/summarize_runs.py runs/ablation/*.ckpt [--plot ablation.png]

One row per checkpoint: model, scale mode, activation scale, estimator,
epochs, final and best test top-1, and training throughput, read from the
checkpoint's metadata (``*.train-state.ckpt`` files are skipped).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from hwgen.train.checkpoint import load_checkpoint


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoints", nargs="+", type=Path)
    parser.add_argument("--plot", type=Path, default=None, help="write a bar chart of the final accuracies")
    args = parser.parse_args()
    rows = []
    print("| run | model | scale | act scale | estimator | epochs | test top-1 | best | train img/s |")
    print("|---|---|---|---|---|---:|---:|---:|---:|")
    for path in args.checkpoints:
        if path.name.endswith(".train-state.ckpt"):
            continue
        ckpt = load_checkpoint(path)
        o, m = ckpt.train_config["model_options"], ckpt.metrics
        name = path.name.removesuffix(".ckpt")
        rows.append((name, 100 * m["test_acc"]))
        print(f"| {name} | {ckpt.architecture.name} x{o['width']} | {o['scale']} | {o['act_scale']} | "
              f"{o['estimator']} | {m['epochs']} | {100 * m['test_acc']:.2f}% | {100 * m['best_test_acc']:.2f}% | "
              f"{m['train_images_per_s']:.0f} |")
    if args.plot:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(1.2 * len(rows) + 2, 4))
        bars = ax.bar([r[0] for r in rows], [r[1] for r in rows], color="tab:blue")
        ax.bar_label(bars, fmt="%.2f")
        low = min(r[1] for r in rows)
        ax.set(ylabel="test top-1 (%)", ylim=(max(0, low - 5), max(r[1] for r in rows) + 2),
               title="fixed-budget ablation")
        ax.tick_params(axis="x", rotation=30)
        fig.tight_layout()
        fig.savefig(args.plot, dpi=100)
        print(f"wrote {args.plot}")


if __name__ == "__main__":
    main()
