"""The teacher's own dev-val accuracy under test-time augmentation: MoveNet Thunder as the student's cache sees it.

    python benchmarks/teacher_tta.py --config configs/default_student.yaml [--write]

Each variant is the SavedModel teacher of the config (its ``teacher.tta_flip`` / ``teacher.tta_scales`` set as the
row says) scored as the pipeline scores it (``tfpose.pipeline.evaluate``: ground-truth boxes, the student's crop
seen through the teacher's square view, heatmaps on the student's grid decoded by the student's codec). Every
row's paired gap (``tfpose.evaluation.paired_gaps``: persons for mean OKS and PCK@0.2, images for AP) is against
the plain teacher; the best row is what ``teacher.tta_*`` should hold for the cache.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))   # run from a checkout without installing

from benchmarks._sections import publish  # noqa: E402
from benchmarks.cpu_ceiling import cpu_info  # noqa: E402
from tfpose import pipeline as p  # noqa: E402
from tfpose.config import load_config  # noqa: E402
from tfpose.distill.teachers import predict_teacher  # noqa: E402
from tfpose.evaluation import gap_cells, paired_gaps, score_predictions  # noqa: E402
from tfpose.report import print_metrics  # noqa: E402

VARIANTS = {            # name: (flip, scales)
    "plain": (False, (1.0,)),
    "flip": (True, (1.0,)),
    "scales 0.9, 1, 1.1": (False, (0.9, 1.0, 1.1)),
    "flip + scales 0.9, 1, 1.1": (True, (0.9, 1.0, 1.1)),
    "flip + scales 1, 1.15": (True, (1.0, 1.15)),
}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default="configs/default_student.yaml")
    parser.add_argument("--write", action="store_true", help="put the section into BENCHMARKS.md")
    parser.add_argument("overrides", nargs="*", default=[], help="key=value config overrides")
    args = parser.parse_args(argv)
    base = load_config(args.config, args.overrides)
    ctx = p.make_context(base, Path(tempfile.mkdtemp()))
    p.load_data(ctx)
    scores, results, seconds = {}, {}, {}
    for name, (flip, scales) in VARIANTS.items():
        cfg = load_config(args.config, [*args.overrides, f"teacher.tta_flip={flip}",
                                        f"teacher.tta_scales={list(scales)}"])
        teacher = p.train_teacher(cfg, ctx.data, ctx.out)
        started = time.perf_counter()
        for set_name, dataset in ctx.val_sets.items():
            preds = predict_teacher(teacher, dataset, ctx.codec, base.data.padding, ctx.images)
            scores[name, set_name] = score_predictions(preds, dataset, ctx.skeleton)
            results[name, set_name] = preds.coco_results()
            print_metrics(f"{name} on {set_name}", scores[name, set_name])
        seconds[name] = time.perf_counter() - started
    lines = ["### The teacher under test-time augmentation", "",
             f"Command: `python benchmarks/teacher_tta.py --config {args.config} --write`; teacher "
             f"`{base.teacher.path}` ({base.teacher.output_key}), student grid {list(base.codec.input_size)} "
             f"(W, H); {cpu_info()['cpu']}, seconds for both sets on the machine's cores.", ""]
    for set_name, dataset in ctx.val_sets.items():
        plain = scores["plain", set_name]
        lines += [f"**{set_name}** ({plain['persons']} persons; gaps against the plain teacher, 95 % paired bootstrap)",
                  "", "| teacher | OKS AP | mean OKS | PCK@0.2 | gap AP | gap mean OKS | gap PCK@0.2 | s |",
                  "|---|---|---|---|---|---|---|---|"]
        for name in VARIANTS:
            m = scores[name, set_name]
            gaps = ["", "", ""] if name == "plain" else gap_cells(paired_gaps(
                dataset, m, plain, results[name, set_name], results["plain", set_name]))
            lines.append(f"| {name} | {m['AP']:.3f} | {m['mean_OKS']:.3f} | {m['PCK@0.2']:.3f} | "
                         + " | ".join(gaps) + f" | {seconds[name]:.0f} |")
        lines.append("")
    publish("teacher_tta", "\n".join(lines), args.write)
    return 0


if __name__ == "__main__":
    sys.exit(main())
