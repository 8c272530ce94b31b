"""Two trained students on the same validation persons: scores, and a paired bootstrap of their mean-OKS gap.

    python benchmarks/kd_compare.py --config configs/default_student.yaml \
        runs/default/student.keras runs/default_gt/student.keras

The config fixes the data, the split and the codec (both students must share them). Each student predicts every
labelled val person; per-person OKS is paired by person, and the gap's 95 % interval comes from resampling the
persons (2000 resamples, fixed seed): on a few dozen persons, AP alone cannot rank two weak students.
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
    parser.add_argument("students", nargs=2, type=Path, help="two Keras students: A, then B (the gap is A - B)")
    parser.add_argument("--config", required=True, help="the config both were trained with (data, split, codec)")
    parser.add_argument("overrides", nargs="*", default=[], help="key=value config overrides")
    args = parser.parse_args(argv)
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
    a, b = (np.asarray(m["per_person_oks"])[labelled] for m in scores)
    gap, lo, hi = paired_gap(a, b)
    print(f"\nmean OKS, A - B, paired over {len(a)} persons: {gap:+.3f} [95 % CI {lo:+.3f}, {hi:+.3f}]; "
          f"A ahead on {int((a > b).sum())} persons, B on {int((b > a).sum())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
