"""Trained students on the same dev-val persons: scores, and paired bootstraps of their gaps, on every dev-val set.

    python benchmarks/kd_compare.py --config configs/default_student.yaml \
        runs/default_gt/student.keras runs/default/student.keras [more students ...]

The config fixes the data, the split and the codec (every student must share them). Each student predicts every
labelled val person; per-person OKS is paired by person, and a gap's 95 % interval comes from resampling the
persons (``tfpose.evaluation.paired_gaps``: persons for mean OKS and PCK@0.2, images for AP). The first
student is the baseline every other one is compared with; with three or more, the best (by mean OKS) is also
compared with each of the others.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))   # run from a checkout without installing

from tfpose import pipeline as p  # noqa: E402
from tfpose.config import load_config  # noqa: E402
from tfpose.evaluation import evaluate_predictor, gap_cells, paired_gaps  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("students", nargs="+", type=Path, help="Keras students, the baseline first")
    parser.add_argument("--config", required=True, help="the config all were trained with (data, split, codec)")
    parser.add_argument("overrides", nargs="*", default=[], help="key=value config overrides")
    args = parser.parse_args(argv)
    if len(args.students) < 2:
        parser.error("give at least two students")
    ctx = p.make_context(load_config(args.config, args.overrides), Path(tempfile.mkdtemp()))
    p.load_data(ctx)
    models = [p.load_keras(path) for path in args.students]
    for name, dataset in ctx.val_sets.items():
        scores, results = [], []
        for model in models:
            metrics, preds = evaluate_predictor(lambda crops: model.predict_on_batch(crops.astype(np.float32)),
                                                dataset, ctx.codec, ctx.skeleton, ctx.cfg.data.padding)
            scores.append(metrics)
            results.append(preds.coco_results())
        print(f"\n### {name}: {scores[0]['persons']} persons\n")
        print("| student | OKS AP [95 % CI] | PCK@0.2 | mean OKS [95 % CI] |\n|---|---|---|---|")
        for path, m in zip(args.students, scores):
            print(f"| {path} | {m['AP']:.3f} [{m['AP_ci95'][0]:.3f}, {m['AP_ci95'][1]:.3f}] | {m['PCK@0.2']:.3f} | "
                  f"{m['mean_OKS']:.3f} [{m['mean_OKS_ci95'][0]:.3f}, {m['mean_OKS_ci95'][1]:.3f}] |")
        best = int(np.argmax([m["mean_OKS"] for m in scores]))
        pairs = [(i, 0) for i in range(1, len(scores))]
        if len(scores) > 2:
            pairs += [(best, j) for j in range(1, len(scores)) if j != best]
        print("\n| paired gap (95 % bootstrap) | AP | mean OKS | PCK@0.2 |\n|---|---|---|---|")
        for i, j in pairs:
            g = paired_gaps(dataset, scores[i], scores[j], results[i], results[j])
            print(f"| {args.students[i]} - {args.students[j]} | " + " | ".join(gap_cells(g)) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
