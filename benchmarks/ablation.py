"""What each change of the recipe buys: students trained one change apart, each against the row before it.

    python benchmarks/ablation.py --config configs/default_student.yaml \
        start=runs/ablation/start.h5 schedule=runs/ablation/r1_schedule/student.keras ... [--write]

Rows are ``name=student`` (a .keras or .h5 Keras model), in order; every student predicts every labelled person
of every dev-val set of the config (ground-truth boxes, float Keras), and each row's gap is against the row before
it on the same persons (``tfpose.evaluation.paired_gaps``: persons for mean OKS and PCK@0.2, images for AP, 95 %
paired bootstrap), or against the row ``--against`` names for it ("-": the row before; a branch of the recipe).
``--notes`` adds a column saying what each row changed.
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
    parser.add_argument("--against", nargs="*", default=[], help="the row each row is compared with, one per row "
                        "('-': the row before it)")
    parser.add_argument("--preamble", default="", help="text above the tables (how the rows were trained)")
    parser.add_argument("--section", default="ablation")
    parser.add_argument("--write", action="store_true", help="put the section into BENCHMARKS.md")
    args = parser.parse_args(argv)
    names = [name for name, _ in args.rows]
    for option in ("notes", "against"):
        if getattr(args, option) and len(getattr(args, option)) != len(args.rows):
            parser.error(f"{len(getattr(args, option))} --{option} for {len(args.rows)} rows")
    against = [names[i - 1] if i and (not args.against or args.against[i] == "-") else
               (args.against[i] if i else None) for i in range(len(names))]
    for i, base in enumerate(against):
        if base is not None and base not in names[:i]:
            parser.error(f"row {names[i]} is compared with '{base}', which is not a row before it")
    ctx = p.make_context(load_config(args.config), Path(tempfile.mkdtemp()))
    p.load_data(ctx)
    lines = [f"Command: `python benchmarks/ablation.py --config {args.config} "
             + " ".join(f"{n}={path}" for n, path in args.rows) + " --notes ... --against ... --write`", ""]
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
        lines += [f"**{set_name}** ({first['persons']} persons); gaps: the row minus the row it is against", "",
                  "| row | changes | against | OKS AP | mean OKS | PCK@0.2 | gap AP | gap mean OKS | gap PCK@0.2 |",
                  "|---|---|---|---|---|---|---|---|---|"]
        for (name, _), note, base in zip(args.rows, notes, against):
            m = scores[name][set_name]
            gaps = ["", "", ""]
            if base is not None:
                gaps = gap_cells(paired_gaps(dataset, m, scores[base][set_name], results[name][set_name],
                                             results[base][set_name], ctx.skeleton))
            lines.append(f"| {name} | {note} | {base or ''} | {m['AP']:.3f} | {m['mean_OKS']:.3f} | "
                         f"{m['PCK@0.2']:.3f} | " + " | ".join(gaps) + " |")
        lines.append("")
    publish(args.section, "\n".join(lines), args.write)
    return 0


if __name__ == "__main__":
    sys.exit(main())
