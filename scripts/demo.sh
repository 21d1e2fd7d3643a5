#!/usr/bin/env bash
# The main job on the shipped default model (models/tfc_mnist.ckpt): the pipeline as far as it
# exists today. Evaluate the PyTorch model, compile it to the integer IR, and check the golden
# model against PyTorch on the whole MNIST test set. build, sim and synth join here.
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
OUT=${OUT:-build/demo}
mkdir -p "$OUT"
echo "== compiling to $OUT/tfc_mnist.hwir and checking the golden model against PyTorch"
hwgen compile "$CKPT" -o "$OUT/tfc_mnist.hwir" --verify --dataset mnist --data-dir "$MNIST_DIR" | tee "$OUT/compile.txt"
echo "== summary"
python3 - "$CKPT" "$OUT/compile.txt" <<'PY'
import sys
from hwgen.train.checkpoint import load_checkpoint
ckpt = load_checkpoint(sys.argv[1])
weights = [l for l in ckpt.architecture.layers if l["kind"] in ("conv", "linear")]
print(f"model {ckpt.architecture.name}: {len(weights)} weight layers, "
      f"bits {[l['weight_bits'] for l in weights]}, trained {ckpt.metrics['epochs']} epochs, "
      f"recorded test top-1 {100 * ckpt.metrics['test_acc']:.2f}%")
verdict = [l for l in open(sys.argv[2]) if l.startswith("PyTorch vs golden")]
print(verdict[0].strip() if verdict else "no golden-model check ran")
PY
