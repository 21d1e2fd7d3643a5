#!/usr/bin/env bash
# Fixed-budget ablation of binarization methods on CIFAR-10 (docs/training.md).
# Every row: VGG-Small at width 0.25, same epochs, seed, optimizer and schedule;
# only the scale factor and the sign estimator change.
#   bash benchmarks/ablation_cifar10.sh CIFAR_DIR [OUT_DIR] [ROW ...]
# EPOCHS (default 2) sets the budget; ROWs default to all of them. Summarise with
#   python benchmarks/summarize_runs.py OUT_DIR/*.ckpt
set -euo pipefail
data=$1; out=${2:-runs/ablation}; shift $(( $# >= 2 ? 2 : 1 ))
epochs=${EPOCHS:-2}
declare -A ROWS=(
    [none_ste]="--scale none --estimator ste"
    [xnor_ste]="--scale xnor --estimator ste"
    [gamma1_ste]="--scale gamma_channel --estimator ste"
    [gamma4_ste]="--scale gamma_factorised --estimator ste"
    [trained_tight]="--scale trained --act-scale layer --scale-l2 1e-4 --estimator tight"
    [none_approxsign]="--scale none --estimator approx_sign"
    [none_tight]="--scale none --estimator tight"
)
rows=("$@"); [ ${#rows[@]} -gt 0 ] || rows=(none_ste xnor_ste gamma1_ste gamma4_ste trained_tight none_approxsign none_tight)
mkdir -p "$out"
for row in "${rows[@]}"; do
    [ -n "${ROWS[$row]:-}" ] || { echo "unknown row $row (rows: ${!ROWS[*]})" >&2; exit 2; }
    # shellcheck disable=SC2086
    hwgen train vgg_small --width 0.25 --dataset cifar10 --data-dir "$data" --epochs "$epochs" \
        --batch-size 128 --optimizer adam --lr 1e-3 --seed 0 --compile --no-progress \
        ${ROWS[$row]} -o "$out/$row.ckpt"
done
