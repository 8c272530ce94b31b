#!/usr/bin/env bash
# The four training methods of issue 4 at the default student's scale, one budget, then their paired comparison.
#
#   bash benchmarks/kd_methods.sh [EPOCHS] [OUT]       # defaults: 24 epochs, runs/kd; about 20 min per method on 2 cores
#
# Every run is configs/default_student.yaml (MoveNet Thunder teacher, 64 cached views per person, half-growth
# PeleeNet-DUC at 96x128) with EPOCHS epochs of 388 steps, no early stopping and the last epoch's student kept, so
# nothing is chosen on the val split. Only the method changes: ground truth only (alpha 0, labelled boxes only),
# FPD / Park (alpha 0.5, + unlabelled boxes), DSKD and OKDHP (both with the teacher and the unlabelled boxes). The
# runs sharing a training set share the teacher's cached views (OUT/teacher_cache, keyed by what they depend on).
# A finished run (its summary.json) is not redone.
set -euo pipefail
cd "$(dirname "$0")/.."
EPOCHS=${1:-24}
OUT=${2:-runs/kd}
PY=${PYTHON:-.venv/bin/python}
BUDGET=(distill.train.epochs="$EPOCHS" distill.train.early_stopping_patience=0 distill.train.steps_per_epoch=388
        distill.teacher_cache="$OUT/teacher_cache")

run() {
    local name=$1; shift
    if [[ -f $OUT/$name/summary.json ]]; then echo "== $name: done before"; return; fi
    mkdir -p "$OUT/$name"
    echo "== $name ($(date +%T)): log in $OUT/$name.log"
    "$PY" -m tfpose.cli pipeline --config configs/default_student.yaml --out "$OUT/$name" "${BUDGET[@]}" "$@" \
        > "$OUT/$name.log" 2>&1
}

run fpd
run dskd distill.method=dskd
run okdhp distill.method=okdhp
run gt distill.alpha=0 distill.unlabelled=false
"$PY" benchmarks/kd_compare.py --config configs/default_student.yaml \
    "$OUT"/gt/student.keras "$OUT"/fpd/student.keras "$OUT"/dskd/student.keras "$OUT"/okdhp/student.keras
