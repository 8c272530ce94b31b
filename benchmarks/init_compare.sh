#!/usr/bin/env bash
# Does the initialisation matter, and does the teacher still help once the student is pretrained and the data real?
#
#   bash benchmarks/init_compare.sh [OUT]      # default runs/init; about 25 min per run on 2 cores
#   OTHER_EPOCHS=3 bash benchmarks/init_compare.sh   # the ImageNet and scratch students at half the budget
#
# Every run is configs/default_student.yaml (8,363 real training persons from five sources, MoveNet Thunder's cached
# views, 6 epochs of 250 steps of 16 crops at 192x256, the last epoch kept) with one change:
#   movenet      the default: MoveNet Lightning's MobileNetV2 + pyramid + head, pose-pretrained, FPD alpha 0.5
#   movenet_gt   the same student on ground truth alone (no teacher, no boxes without keypoints; its crops are
#                drawn afresh from the photos, so it sees more views than the cached two, if anything a help)
#   imagenet_v1  tf_keras.applications MobileNetV1 with ImageNet weights and a fresh pyramid head, FPD
#   scratch      PeleeNet-DUC (the previous default's architecture) from random weights, FPD with MSE (its head is
#                linear) at its own learning rate
# Then the paired comparison on both dev-val sets (benchmarks/kd_compare.py). A finished run is not redone; the
# default run folder (runs/default) is reused for `movenet` when it exists.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-runs/init}
PY=${PYTHON:-.venv/bin/python}
CONFIG=configs/default_student.yaml

run() {
    local name=$1; shift
    if [[ -f $OUT/$name/student.keras ]]; then echo "== $name: done before"; return; fi
    mkdir -p "$OUT/$name"
    echo "== $name ($(date +%T)): log in $OUT/$name.log"
    # the students are what is compared: post-training int8 is enough for the export stage here
    "$PY" -m tfpose.cli pipeline --config "$CONFIG" --out "$OUT/$name" export.quant=int8 "$@" > "$OUT/$name.log" 2>&1
}

mkdir -p "$OUT"
if [[ -f runs/default/student.keras && ! -e $OUT/movenet ]]; then ln -s "$(pwd)/runs/default" "$OUT/movenet"; fi
run movenet
# no teacher at all (alpha 0 alone would still teach the joints without labels): crops drawn afresh from the photos
run movenet_gt teacher.source=none distill.alpha=0 distill.unlabelled=false
OTHER=(distill.train.epochs="${OTHER_EPOCHS:-6}")
run imagenet_v1 "${OTHER[@]}" distill.student.name=mobilenetv1 \
    distill.student.init=../shared/models/init/mobilenet-v1-1.0-imagenet.weights.h5 distill.train.learning_rate=0.001
run scratch "${OTHER[@]}" distill.student.name=peleenet_duc \
    'distill.student.params={growth: 16, duc_channels: [128, 64, 32], act: relu6}' "distill.student.init=''" \
    distill.student.freeze_batchnorm=false distill.train.learning_rate=0.003 distill.heatmap_loss=mse
"$PY" benchmarks/kd_compare.py --config "$CONFIG" \
    "$OUT"/movenet_gt/student.keras "$OUT"/movenet/student.keras "$OUT"/imagenet_v1/student.keras \
    "$OUT"/scratch/student.keras
"$PY" benchmarks/learning_curves.py "$OUT"/{movenet,movenet_gt,imagenet_v1,scratch} --out "$OUT/learning_curves.png"
