"""What each change of the recipe buys: students trained one change apart, each against the row before it.

    python benchmarks/ablation.py --config configs/default_student.yaml \
        start=runs/ablation/start.h5 schedule=runs/ablation/r1_schedule/student.keras ... [--write]

Rows are ``name=student`` (a .keras or .h5 Keras model), in order; every student predicts every labelled person
of every dev-val set of the config (ground-truth boxes, float Keras), and each row's gap is against the row before
it on the same persons (``tfpose.evaluation.paired_gaps``: persons for mean OKS and PCK@0.2, images for AP, 95 %
paired bootstrap). ``--notes`` adds a column saying what each row changed.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))   # run from a checkout without installing

from benchmarks._sections import publish  # noqa: E402
from tfpose import pipeline as p  # noqa: E402
from tfpose.config import load_config  # noqa: E402
from tfpose.evaluation import evaluate_predictor, gap_cells, paired_gaps  # noqa: E402


def _row(text: str) -> tuple[str, Path]:
    name, sep, path = text.partition("=")
    if not sep:
        raise argparse.ArgumentTypeError(f"expected name=student, got '{text}'")
    return name, Path(path)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("rows", nargs="+", type=_row, help="name=student, the first the baseline")
    parser.add_argument("--config", required=True, help="the config the rows share (data, split, codec)")
    parser.add_argument("--notes", nargs="*", default=[], help="what each row changed, one per row")
    parser.add_argument("--preamble", default="", help="text above the tables (how the rows were trained)")
    parser.add_argument("--section", default="ablation")
    parser.add_argument("--write", action="store_true", help="put the section into BENCHMARKS.md")
    args = parser.parse_args(argv)
    if args.notes and len(args.notes) != len(args.rows):
        parser.error(f"{len(args.notes)} notes for {len(args.rows)} rows")
    ctx = p.make_context(load_config(args.config), Path(tempfile.mkdtemp()))
    p.load_data(ctx)
    lines = [f"Command: `python benchmarks/ablation.py --config {args.config} "
             + " ".join(f"{n}={path}" for n, path in args.rows) + " --notes ... --write`", ""]
    if args.preamble:
        lines += [args.preamble, ""]
    scores = {name: {} for name, _ in args.rows}
    results = {name: {} for name, _ in args.rows}
    for name, path in args.rows:
        model = p.load_keras(path)
        for set_name, dataset in ctx.val_sets.items():
            metrics, preds = evaluate_predictor(lambda crops: model.predict_on_batch(crops.astype(np.float32)),
                                                dataset, ctx.codec, ctx.skeleton, ctx.cfg.data.padding)
            scores[name][set_name], results[name][set_name] = metrics, preds.coco_results()
            print(f"    {name} on {set_name}: AP {metrics['AP']:.3f}, mean OKS {metrics['mean_OKS']:.3f}, "
                  f"PCK@0.2 {metrics['PCK@0.2']:.3f}", flush=True)
    notes = args.notes or [""] * len(args.rows)
    for set_name, dataset in ctx.val_sets.items():
        first = scores[args.rows[0][0]][set_name]
        lines += [f"**{set_name}** ({first['persons']} persons); gaps: the row minus the row before it", "",
                  "| row | changes | OKS AP | mean OKS | PCK@0.2 | gap AP | gap mean OKS | gap PCK@0.2 |",
                  "|---|---|---|---|---|---|---|---|"]
        for i, ((name, _), note) in enumerate(zip(args.rows, notes)):
            m = scores[name][set_name]
            gaps = ["", "", ""]
            if i:
                before = args.rows[i - 1][0]
                gaps = gap_cells(paired_gaps(dataset, m, scores[before][set_name], results[name][set_name],
                                             results[before][set_name], ctx.skeleton))
            lines.append(f"| {name} | {note} | {m['AP']:.3f} | {m['mean_OKS']:.3f} | {m['PCK@0.2']:.3f} | "
                         + " | ".join(gaps) + " |")
        lines.append("")
    publish(args.section, "\n".join(lines), args.write)
    return 0


if __name__ == "__main__":
    sys.exit(main())
