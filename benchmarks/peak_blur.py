"""How the peak search's blur (``codec.peak_blur``) changes accuracy and int8 agreement, on trained students.

    python benchmarks/peak_blur.py --config configs/default_student.yaml runs/kd/gt runs/kd/fpd runs/kd/dskd \
        runs/kd/okdhp --write

Each RUN folder holds a pipeline's ``student.keras`` and ``student_int8.tflite``. For every blur sigma (in heatmap
cells; 0 is the raw argmax) both models predict the labelled val persons of the config's split and are decoded by
the same codec: PCK@0.2 and mean OKS of each, the share of visible joints (v = 2) where the int8 keypoint lies
within one heatmap cell of the float one, and the float model's mean-OKS gap to the raw argmax, paired by person
with a 95 % bootstrap interval. The config fixes the data, the split and the codec; only ``peak_blur`` varies.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))   # run from a checkout without installing

from benchmarks._sections import publish  # noqa: E402
from benchmarks.kd_compare import paired_gap  # noqa: E402
from tfpose import pipeline as p  # noqa: E402
from tfpose.config import load_config  # noqa: E402
from tfpose.evaluation import evaluate_predictor  # noqa: E402


def once_per_batch(predict):
    """``predict`` (crops -> heatmaps), run once per distinct batch: every sigma decodes the same heatmaps."""
    seen = {}

    def run(crops):
        key = hashlib.sha1(crops.tobytes()).digest()
        if key not in seen:
            seen[key] = predict(crops)
        return seen[key]

    return run


def measure(run: Path, ctx, sigmas: list[float]) -> list[dict]:
    """One row per sigma for the student of ``run``: float and int8 scores, agreement, paired gap to sigma 0."""
    from tflite.runtime import TFLiteModel

    student = p.load_keras(run / "student.keras")
    keras_heatmaps = once_per_batch(lambda crops: student.predict_on_batch(crops.astype(np.float32)))
    int8 = once_per_batch(TFLiteModel(run / "student_int8.tflite"))
    padding = ctx.cfg.data.padding
    rows, raw_oks = [], None
    for sigma in sigmas:
        codec = dataclasses.replace(ctx.codec, peak_blur=sigma)
        float_metrics, float_preds = evaluate_predictor(keras_heatmaps, ctx.val, codec, ctx.skeleton, padding)
        int8_metrics, int8_preds = evaluate_predictor(int8, ctx.val, codec, ctx.skeleton, padding)
        visible = np.stack([person.visibility == 2 for person in float_preds.persons])
        cells = np.linalg.norm(float_preds.in_crops() - int8_preds.in_crops(), axis=-1) / codec.stride
        oks = np.array(float_metrics["per_person_oks"])
        raw_oks = oks if raw_oks is None else raw_oks
        rows.append({"run": str(run), "peak_blur": sigma,
                     "float_pck": float_metrics["PCK@0.2"], "float_oks": float_metrics["mean_OKS"],
                     "int8_pck": int8_metrics["PCK@0.2"], "int8_oks": int8_metrics["mean_OKS"],
                     "agreement": float((cells[visible] <= 1.0).mean()),
                     "gap_to_raw": paired_gap(oks, raw_oks)})
        r = rows[-1]
        print(f"{run} peak_blur {sigma:g}: float PCK {r['float_pck']:.3f} OKS {r['float_oks']:.3f} | int8 PCK "
              f"{r['int8_pck']:.3f} OKS {r['int8_oks']:.3f} | agreement {r['agreement']:.3f}", flush=True)
    return rows


def section(rows: list[dict], command: str, persons: int) -> str:
    lines = ["## The peak search: blur before argmax (issue 5)", "", f"    {command}", "",
             f"Float Keras and int8 files of the runs, {persons} labelled val persons; every model decoded by the "
             "same codec (DARK refinement), only `peak_blur` varying. Agreement: visible joints within one heatmap "
             "cell of the float model. Gap: float mean OKS minus the raw argmax's, paired by person, 95 % "
             "bootstrap interval.", "",
             "| run | peak_blur | float PCK@0.2 | float mean OKS | gap to raw [95 % CI] | int8 PCK@0.2 | "
             "int8 mean OKS | int8 agreement |", "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        gap, lo, hi = r["gap_to_raw"]
        lines.append(f"| {r['run']} | {r['peak_blur']:g} | {r['float_pck']:.3f} | {r['float_oks']:.3f} | "
                     f"{gap:+.3f} [{lo:+.3f}, {hi:+.3f}] | {r['int8_pck']:.3f} | {r['int8_oks']:.3f} | "
                     f"{100 * r['agreement']:.1f} % |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", type=Path, help="pipeline output folders")
    parser.add_argument("--config", type=Path, default=ROOT / "configs/default_student.yaml")
    parser.add_argument("--sigmas", type=float, nargs="+", default=[0.0, 1.0, 2.0, 3.0])
    parser.add_argument("--write", action="store_true", help="rewrite the decoding section of BENCHMARKS.md")
    args = parser.parse_args(argv)
    if args.sigmas[0] != 0:
        parser.error("--sigmas must start with 0, the raw argmax every gap is measured against")
    ctx = p.make_context(load_config(args.config), Path(tempfile.mkdtemp(prefix="tfpose-peak-blur-")))
    p.load_data(ctx)
    rows = [row for run in args.runs for row in measure(run, ctx, args.sigmas)]
    command = "python benchmarks/peak_blur.py --config " + " ".join(
        [str(args.config.relative_to(ROOT) if args.config.is_relative_to(ROOT) else args.config)]
        + [str(r) for r in args.runs]) + " --sigmas " + " ".join(f"{v:g}" for v in args.sigmas) + " --write"
    text = section(rows, command, len(ctx.val.labelled()))
    publish("decoding", text, args.write)
    return 0


if __name__ == "__main__":
    sys.exit(main())
