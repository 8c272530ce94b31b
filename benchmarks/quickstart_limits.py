"""What limits OKS AP on the rendered people: the codec's round trip, OKS's strictness, and training length.

    python benchmarks/quickstart_limits.py [--config configs/quickstart.yaml] [--scales 1 2 4] [--write]

Part one needs no model: the val split's ground truth, encoded into targets and decoded back (the ceiling the
codec sets), then ground truth moved by Gaussian noise of a fraction of a heatmap cell (what a given localisation
error costs under OKS on these figures). Part two runs the whole pipeline at 1x, 2x and 4x the configured
training steps (teacher and student both) into ``--out/<scale>x`` and tabulates the three models' AP.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks._sections import publish  # noqa: E402
from tfpose import pipeline as p  # noqa: E402
from tfpose.artifacts import write_json  # noqa: E402
from tfpose.config import load_config  # noqa: E402
from tfpose.data.transforms import apply_matrix, invert_matrix  # noqa: E402
from tfpose.evaluation import Predictions, score_predictions  # noqa: E402


def ground_truth_rows(ctx, noise_cells: list[float], seed: int = 0) -> list[dict]:
    """AP of the val split's own ground truth: through the codec (round trip) and moved by noise (OKS strictness)."""
    sampler = ctx.sampler(ctx.val, augment=False)
    samples = [sampler.sample(i) for i in range(len(sampler))]
    persons = sampler.persons
    crops = np.stack([s.crop for s in samples])
    matrices = np.stack([s.matrix for s in samples])

    def score(in_crop: np.ndarray) -> dict:
        in_image = np.stack([apply_matrix(k, invert_matrix(m)) for k, m in zip(in_crop, matrices)])
        scores = np.ones(in_crop.shape[:2], np.float32)
        return score_predictions(Predictions(persons, in_image.astype(np.float32), scores, crops, matrices),
                                 ctx.val, ctx.skeleton)

    rows = []
    for refine in ("dark", "none"):
        codec = dataclasses.replace(ctx.codec, refine=refine, peak_blur=0.0)
        decoded, _ = codec.decode(np.stack([codec.encode(s.keypoints, s.weights)[0] for s in samples]))
        m = score(decoded)
        rows.append({"case": f"perfect targets, decoded ({'DARK' if refine == 'dark' else 'argmax only'})",
                     "AP": m["AP"], "mean_OKS": m["mean_OKS"]})
    truth = np.stack([s.keypoints for s in samples])
    rng = np.random.default_rng(seed)
    for cells in noise_cells:
        m = score(truth + rng.normal(0, cells * ctx.codec.stride, truth.shape))
        rows.append({"case": f"ground truth + N(0, {cells:g} cell) per axis", "AP": m["AP"], "mean_OKS": m["mean_OKS"]})
    return rows


def area_ratio(dataset) -> float:
    """Median OKS area over box area: how much of its box a person's silhouette fills."""
    return float(np.median([p.area / max(p.box[2] * p.box[3], 1e-6) for p in dataset.labelled()]))


def scaled_run(cfg, scale: int, out: Path) -> dict:
    """The pipeline with both training stages ``scale`` times as long; its summary plus the training steps."""
    scaled = dataclasses.replace(cfg, teacher=dataclasses.replace(cfg.teacher, train=dataclasses.replace(
        cfg.teacher.train, epochs=cfg.teacher.train.epochs * scale)), distill=dataclasses.replace(
        cfg.distill, train=dataclasses.replace(cfg.distill.train, epochs=cfg.distill.train.epochs * scale)))
    summary = p.run_pipeline(scaled, out / f"{scale}x")
    return {"scale": scale, "teacher_epochs": scaled.teacher.train.epochs,
            "student_epochs": scaled.distill.train.epochs, **summary}


def section(config: str, command: str, gt_rows: list[dict], ratio: float, runs: list[dict]) -> str:
    lines = ["## What limits AP on the rendered people (issue 16)", "", f"    {command}", "",
             f"Config `{config}`; val split of the rendered people; AP is COCO OKS AP over its persons, median "
             f"silhouette area / box area {ratio:.2f} (COCO-mini people: 0.50).", "",
             "| ground truth | OKS AP | mean OKS |", "|---|---|---|"]
    lines += [f"| {r['case']} | {r['AP']:.3f} | {r['mean_OKS']:.3f} |" for r in gt_rows]
    if runs:
        lines += ["", "| steps | teacher AP | student float AP | student int8 AP | int8 mean OKS | teacher s | "
                  "student s |", "|---|---|---|---|---|---|---|"]
        for r in runs:
            t = r["stage_seconds"]
            lines.append(f"| {r['scale']}x ({r['teacher_epochs']} + {r['student_epochs']} epochs) "
                         f"| {r['teacher']['AP']:.3f} | {r['student_float']['AP']:.3f} "
                         f"| {r['student_int8']['AP']:.3f} | {r['student_int8']['mean_OKS']:.3f} "
                         f"| {t['teacher']:.0f} | {t['distill']:.0f} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default="configs/quickstart.yaml")
    ap.add_argument("--scales", type=int, nargs="*", default=[1, 2, 4], help="training lengths to run (none: skip)")
    ap.add_argument("--noise", type=float, nargs="*", default=[0.25, 0.5, 1.0], help="cells of ground-truth noise")
    ap.add_argument("--out", default="runs/quickstart_limits")
    ap.add_argument("--write", action="store_true", help="replace this section of BENCHMARKS.md")
    args = ap.parse_args()
    cfg = load_config(args.config)
    out = Path(args.out)
    ctx = p.make_context(cfg, out)
    p.load_data(ctx)
    gt_rows = ground_truth_rows(ctx, args.noise)
    for r in gt_rows:
        print(f"{r['case']}: AP {r['AP']:.3f}, mean OKS {r['mean_OKS']:.3f}", flush=True)
    runs = [scaled_run(cfg, scale, out) for scale in args.scales]
    write_json(out / "limits.json", {"ground_truth": gt_rows, "runs": runs})
    command = "python benchmarks/quickstart_limits.py " + " ".join(sys.argv[1:])
    publish("quickstart_limits", section(args.config, command.strip(), gt_rows, area_ratio(ctx.val), runs),
            args.write)


if __name__ == "__main__":
    main()
