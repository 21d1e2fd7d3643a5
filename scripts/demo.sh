#!/usr/bin/env bash
# The main job on the shipped default model (models/tfc_mnist.ckpt): the whole pipeline.
#   eval     PyTorch accuracy on the MNIST test set
#   compile  integer IR; golden model vs PyTorch on all 10,000 test images
#   build    streaming accelerator (Verilog, memories, report) at FPS frames/s
#   sim      the RTL (Verilator, C++ bulk harness) on all 10,000 test images vs the golden model
#   synth    Yosys + nextpnr + ecppack to an ECP5-85F bitstream
# and a summary. Set SYNTH=0 to stop after sim (synthesis takes a few minutes).
set -euo pipefail
cd "$(dirname "$0")/.."
MNIST_DIR=${MNIST_DIR:-../shared/data/mnist}
CKPT=models/tfc_mnist.ckpt
OUT=${OUT:-build/demo}
FPS=${FPS:-100000}
TARGET=${TARGET:-ecp5-85k}
if ! ls "$MNIST_DIR"/t10k-images-idx3-ubyte* >/dev/null 2>&1; then
    echo "demo: no MNIST idx files in $MNIST_DIR; run 'make demo MNIST_DIR=/path/to/mnist'" >&2
    exit 2
fi
mkdir -p "$OUT"
started=$(date +%s)

echo "== 1/5 eval: $CKPT on the MNIST test set (PyTorch)"
hwgen eval "$CKPT" --dataset mnist --data-dir "$MNIST_DIR" --json > "$OUT/eval.json"
python3 -c "import json,sys; r=json.load(open(sys.argv[1])); print(f\"top-1 {100*r['top1']:.2f}%\")" "$OUT/eval.json"

echo "== 2/5 compile: integer IR, golden model vs PyTorch on every test image"
hwgen compile "$CKPT" -o "$OUT/tfc_mnist.hwir" --verify --dataset mnist --data-dir "$MNIST_DIR" | tee "$OUT/compile.txt"

echo "== 3/5 build: accelerator for $FPS frames/s at 100 MHz"
hwgen build "$CKPT" --fps "$FPS" --target "$TARGET" -o "$OUT/tfc" | tail -n 4

echo "== 4/5 sim: RTL (Verilator) on all MNIST test images vs the golden model"
hwgen sim "$OUT/tfc" --bulk --dataset mnist --data-dir "$MNIST_DIR" --json "$OUT/sim.json"

if [ "${SYNTH:-1}" != 0 ]; then
    echo "== 5/5 synth: Yosys + nextpnr + ecppack for $TARGET"
    # router1 (hwgen synth's choice below 10,000 estimated LUT4: 166-170 MHz on this TFC, router2 134-145),
    # stopped after --router1-limit seconds of routing and replaced by router2 if it has not converged
    hwgen synth "$OUT/tfc" --target "$TARGET" | tail -n 12
fi

echo "== summary"
python3 - "$OUT" "$(( $(date +%s) - started ))" <<'PY'
import json, sys
from pathlib import Path
out, seconds = Path(sys.argv[1]), int(sys.argv[2])
acc = json.load(open(out / "eval.json"))["top1"]
verdict = next((l.strip() for l in open(out / "compile.txt") if l.startswith("PyTorch vs golden")), "no check")
report = json.load(open(out / "tfc" / "report.json"))
sim = json.load(open(out / "sim.json"))
print(f"model        models/tfc_mnist.ckpt: PyTorch top-1 {100 * acc:.2f}% on MNIST")
print(f"golden       {verdict}")
print(f"RTL          {sim['agree']:,}/{sim['images']:,} images bit-exact with the golden model "
      f"(scores and class), RTL top-1 {100 * sim['rtl_accuracy']:.2f}%")
print(f"throughput   {sim['cycles_per_frame']:,.0f} cycles per frame measured, "
      f"{report['cycles_per_frame']:,} estimated ({report['summary']['bottleneck']} bound)")
synth = out / "tfc" / "synth_report.json"
if synth.is_file():
    s = json.load(open(synth))
    r = s["resources"]
    used = ", ".join(f"{k} {v['used']:,}/{v['available']:,}" for k, v in r.items() if k in ("LUT4", "FF", "block RAM", "DSP"))
    met = "met" if s["timing_met"] else "missed"
    print(f"resources    {s['target']['part']}: {used}")
    print(f"Fmax         {s['fmax_mhz']} MHz (timing at {s['freq_mhz']:g} MHz {met}); "
          f"{s['frames_per_second']:,.0f} frames/s at Fmax")
print(f"total        {seconds} s")
PY
