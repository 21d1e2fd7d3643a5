"""Brevitas's own bnn_pynq networks through `hwgen import`: train briefly, export QONNX, compare with qonnx's executor.

    python benchmarks/qonnx_bnn_pynq.py tfc_1w1a --data-dir ../shared/data/mnist --epochs 1 -o runs/qonnx

For each model: Brevitas's `model_with_cfg(NAME, pretrained=False)` is trained
for ``--epochs`` (0: untrained, BatchNorm statistics randomised) with Adam on
the training split (inputs ``v / 255``, as the
bnn_pynq trainer feeds them; square hinge loss replaced by cross-entropy to
keep the script short), exported with ``brevitas.export.export_qonnx`` to
``OUT/NAME.onnx`` (+ ``.onnx.data``), imported with hwgen's importer and
compared with ``qonnx.core.onnx_exec.execute_onnx`` on the test split
(every bit of every layer and the top-1; float ties counted). Prints one
table row per model.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from hwgen.compile.artifact import save_network
from hwgen.data.datasets import load_dataset
from hwgen.interop.lower import import_qonnx
from hwgen.interop.reference import compare_with_executor


def train(name: str, images: torch.Tensor, labels: torch.Tensor, epochs: int, seed: int) -> torch.nn.Module:
    from brevitas_examples.bnn_pynq.models import model_with_cfg

    torch.manual_seed(seed)
    model, _ = model_with_cfg(name, pretrained=False)
    opt = torch.optim.Adam(model.parameters(), lr=0.02 if "fc" in name else 0.005)
    steps = epochs * (len(images) // 100)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    if epochs == 0:  # untrained: random weights, BatchNorm statistics drawn so that thresholds are not trivial
        for mod in model.modules():
            if isinstance(mod, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
                c = mod.num_features
                with torch.no_grad():
                    mod.weight.copy_(torch.randn(c))
                    mod.running_mean.copy_(torch.randn(c) * mod.running_var.new_tensor(3.0))
                    mod.running_var.copy_(torch.rand(c) * 4 + 0.1)
                    mod.bias.copy_(torch.randn(c))
    model.train()
    for epoch in range(epochs):
        perm = torch.randperm(len(images))
        for k in range(0, len(images) - 99, 100):
            idx = perm[k:k + 100]
            x = images[idx].float() / 255
            loss = torch.nn.functional.cross_entropy(model(x), labels[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            model.clip_weights(-1, 1)
        print(f"{name} epoch {epoch + 1}: loss {loss.item():.3f}", flush=True)
    return model.eval()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("models", nargs="+")
    ap.add_argument("--dataset", default="mnist")
    ap.add_argument("--data-dir", required=True)
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--limit", type=int, default=None, help="test images (default: all)")
    ap.add_argument("--train-limit", type=int, default=None, help="training images (default: all)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("-o", "--out", type=Path, default=Path("runs/qonnx"))
    args = ap.parse_args()
    from brevitas.export import export_qonnx

    torch.set_num_threads(2)
    data = load_dataset(args.dataset, args.data_dir)
    test_x, test_y = data.test_images[:args.limit].numpy(), data.test_labels[:args.limit].numpy()
    args.out.mkdir(parents=True, exist_ok=True)
    print("| model | images | same top-1 | identical in every layer | float ties (changing top-1) | mismatches "
          "| executor acc | golden acc | compare s |", flush=True)
    print("|---|---|---|---|---|---|---|---|---|", flush=True)
    for name in args.models:
        path = args.out / f"{name}.onnx"
        if not path.exists():
            t0 = time.time()
            model = train(name, data.train_images[:args.train_limit], data.train_labels[:args.train_limit],
                          args.epochs, args.seed)
            export_qonnx(model, torch.rand(1, *data.test_images.shape[1:]), export_path=str(path))
            print(f"{name}: trained and exported in {time.time() - t0:.0f} s", flush=True)
        net = import_qonnx(path)
        save_network(args.out / f"{name}.hwir", net)
        t0 = time.time()
        r = compare_with_executor(path, net, test_x, test_y)
        changing = sum(not t["same_prediction"] for t in r.float_ties)
        for item in r.float_ties[:5] + r.mismatches[:5]:
            print("  ", item)
        print(f"| {name} | {r.images:,} | {r.same_prediction:,} | {r.identical:,} | {len(r.float_ties)} ({changing}) "
              f"| {len(r.mismatches)} | {100 * r.executor_correct / r.images:.2f}% "
              f"| {100 * r.golden_correct / r.images:.2f}% | {time.time() - t0:.0f} |", flush=True)


if __name__ == "__main__":
    main()
