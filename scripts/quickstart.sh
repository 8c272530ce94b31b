#!/usr/bin/env bash
# The main job on the embedded default dataset: teacher -> distillation -> int8 TFLite -> validation.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/tfpose pipeline --config configs/quickstart.yaml --out runs/quickstart "$@"
