#!/usr/bin/env bash
# The main job on the shipped default model (models/tfc_mnist.ckpt).
# Today the pipeline ends at training/evaluation: it checks the shipped model's
# accuracy on the MNIST test set. Later stages (compile, build, sim, synth) join here.
set -euo pipefail
cd "$(dirname "$0")/.."
MNIST_DIR=${MNIST_DIR:-../shared/data/mnist}
CKPT=models/tfc_mnist.ckpt
if ! ls "$MNIST_DIR"/t10k-images-idx3-ubyte* >/dev/null 2>&1; then
    echo "demo: no MNIST idx files in $MNIST_DIR; run 'make demo MNIST_DIR=/path/to/mnist'" >&2
    exit 2
fi
echo "== evaluating $CKPT on the MNIST test set"
hwgen eval "$CKPT" --dataset mnist --data-dir "$MNIST_DIR"
echo "== summary"
python3 - "$CKPT" <<'PY'
import sys
from hwgen.train.checkpoint import load_checkpoint
ckpt = load_checkpoint(sys.argv[1])
weights = [l for l in ckpt.architecture.layers if l["kind"] in ("conv", "linear")]
print(f"model {ckpt.architecture.name}: {len(weights)} weight layers, "
      f"bits {[l['weight_bits'] for l in weights]}, trained {ckpt.metrics['epochs']} epochs, "
      f"recorded test top-1 {100 * ckpt.metrics['test_acc']:.2f}%")
PY
