"""Trained students on the same validation persons: scores, and paired bootstraps of their mean-OKS gaps.

    python benchmarks/kd_compare.py --config configs/default_student.yaml \
        runs/default_gt/student.keras runs/default/student.keras [more students ...]

The config fixes the data, the split and the codec (every student must share them). Each student predicts every
labelled val person; per-person OKS is paired by person, and a gap's 95 % interval comes from resampling the
persons (2000 resamples, fixed seed): on a few dozen persons, AP alone cannot rank weak students. The first
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
from tfpose.evaluation import evaluate_predictor  # noqa: E402


def paired_gap(a: np.ndarray, b: np.ndarray, resamples: int = 2000, seed: int = 0) -> tuple[float, float, float]:
    """(mean(a - b), 2.5th, 97.5th percentile) over person resamples; a, b: (N,) per-person OKS of the same N."""
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(a), (resamples, len(a)))
    gaps = (a[idx] - b[idx]).mean(axis=1)
    return float((a - b).mean()), float(np.percentile(gaps, 2.5)), float(np.percentile(gaps, 97.5))


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
    scores = []
    for path in args.students:
        model = p.load_keras(path)
        metrics, _ = evaluate_predictor(lambda crops: model.predict_on_batch(crops.astype(np.float32)), ctx.val,
                                        ctx.codec, ctx.skeleton, ctx.cfg.data.padding)
        scores.append(metrics)
    print("| student | OKS AP [95 % CI] | PCK@0.2 | mean OKS [95 % CI] |\n|---|---|---|---|")
    for path, m in zip(args.students, scores):
        print(f"| {path} | {m['AP']:.3f} [{m['AP_ci95'][0]:.3f}, {m['AP_ci95'][1]:.3f}] | {m['PCK@0.2']:.3f} | "
              f"{m['mean_OKS']:.3f} [{m['mean_OKS_ci95'][0]:.3f}, {m['mean_OKS_ci95'][1]:.3f}] |")
    labelled = [i for i, person in enumerate(ctx.val.labelled()) if person.num_labelled > 0]
    oks = [np.asarray(m["per_person_oks"])[labelled] for m in scores]
    best = int(np.argmax([m["mean_OKS"] for m in scores]))
    pairs = [(i, 0) for i in range(1, len(oks))]
    if len(oks) > 2:
        pairs += [(best, j) for j in range(1, len(oks)) if j != best]
    print(f"\n| mean OKS gap, paired over {len(oks[0])} persons | gap [95 % CI] | ahead on / behind on |\n"
          "|---|---|---|")
    for i, j in pairs:
        gap, lo, hi = paired_gap(oks[i], oks[j])
        print(f"| {args.students[i]} - {args.students[j]} | {gap:+.3f} [{lo:+.3f}, {hi:+.3f}] | "
              f"{int((oks[i] > oks[j]).sum())} / {int((oks[j] > oks[i]).sum())} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
