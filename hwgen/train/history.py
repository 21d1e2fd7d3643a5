"""Training history: one JSON object per epoch in ``<ckpt>.log.jsonl`` and a PNG plot.

Each record has ``epoch`` (1-based), ``stage`` (1: real weights, 2: binary),
``lr``, ``train_loss``, ``train_acc``, ``test_loss``, ``test_acc``,
``seconds`` and ``images_per_s`` (training throughput of that epoch).
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

from hwgen.outputs import write_bytes_atomic, write_text_atomic


def history_paths(ckpt_path: Path) -> tuple[Path, Path]:
    """(JSON-lines log, PNG plot) that sit next to a checkpoint."""
    return ckpt_path.with_suffix(".log.jsonl"), ckpt_path.with_suffix(".curves.png")


def read_history(log_path: Path) -> list[dict[str, Any]]:
    if not log_path.exists():
        return []
    return [json.loads(line) for line in log_path.read_text().splitlines() if line.strip()]


def write_history(log_path: Path, records: list[dict[str, Any]]) -> None:
    write_text_atomic(log_path, "".join(json.dumps(r, sort_keys=True) + "\n" for r in records))


def plot_history(records: list[dict[str, Any]], png_path: Path, title: str) -> None:
    """Loss and accuracy against epoch, train and test, in one PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [r["epoch"] for r in records]
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 4))
    for key, style in (("train", "-"), ("test", "--")):
        ax_loss.plot(epochs, [r[f"{key}_loss"] for r in records], style, marker=".", label=key)
        ax_acc.plot(epochs, [100 * r[f"{key}_acc"] for r in records], style, marker=".", label=key)
    stage2 = next((r["epoch"] for r in records if r.get("stage") == 2), None)
    if stage2 is not None and stage2 > 1:
        for ax in (ax_loss, ax_acc):
            ax.axvline(stage2 - 0.5, color="grey", lw=0.8, ls=":", label="binary weights on")
    ax_loss.set(xlabel="epoch", ylabel="loss", title="loss")
    ax_acc.set(xlabel="epoch", ylabel="top-1 accuracy (%)", title="accuracy")
    best = max(records, key=lambda r: r["test_acc"])
    ax_acc.annotate(f"best {100 * best['test_acc']:.2f}%", (best["epoch"], 100 * best["test_acc"]),
                    textcoords="offset points", xytext=(-40, -15))
    for ax in (ax_loss, ax_acc):
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(title)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    write_bytes_atomic(png_path, buffer.getvalue())
    plt.close(fig)
