#!/usr/bin/env bash
# Reproduce the MNIST / Fashion-MNIST accuracies of docs/training.md.
#   bash benchmarks/train_fc_zoo.sh MODEL DATASET DATA_DIR [OUT_DIR]
# One process per run; OMP_NUM_THREADS=1 lets two runs share a 2-core machine. SEED=N picks the seed (default 0).
set -euo pipefail
model=$1 dataset=$2 data_dir=$3 out=${4:-runs/fc}
case $model in
    tfc) epochs=30 batch=128 dropout=0.2 extra= ;;
    sfc) epochs=40 batch=128 dropout=0.1 extra= ;;
    lfc) epochs=60 batch=256 dropout=0.1 extra="--augment --label-smoothing 0.1" ;;
    *) echo "model must be tfc, sfc or lfc" >&2; exit 2 ;;
esac
mkdir -p "$out"
hwgen train "$model" --dataset "$dataset" --data-dir "$data_dir" --epochs $epochs --batch-size $batch --dropout $dropout $extra \
    --lr 3e-3 --optimizer adam --seed "${SEED:-0}" -o "$out/${model}_${dataset}.ckpt" --no-progress
