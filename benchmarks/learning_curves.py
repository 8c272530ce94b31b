"""Dev-val mean OKS against training steps, one line per run and dev-val set, from each run's learning curve.

    python benchmarks/learning_curves.py runs/init/movenet runs/init/scratch --out runs/init/learning_curves.png

Each run folder holds ``distill_run/learning_curve.json`` (written by the pipeline at every evaluation: step, and
AP / mean OKS / PCK@0.2 on each dev-val set). Prints the table and draws the plot.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))   # run from a checkout without installing

from tfpose.visualize import plot_learning_curve  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", type=Path, help="pipeline run folders")
    parser.add_argument("--out", type=Path, required=True, help="the PNG to write")
    args = parser.parse_args(argv)
    curves, rows = {}, []
    for run in args.runs:
        path = run / "distill_run" / "learning_curve.json"
        if not path.is_file():
            print(f"error: {path} not found", file=sys.stderr)
            return 2
        points = json.loads(path.read_text())
        for name in (k for k in points[0] if k != "step"):
            curves[f"{run.name} on {name}"] = [(p["step"], p[name]["mean_OKS"]) for p in points]
        rows += [(run.name, p["step"], {k: v for k, v in p.items() if k != "step"}) for p in points]
    sets = sorted({s for _, _, by_set in rows for s in by_set})
    print("| run | step | " + " | ".join(f"{s} mean OKS | {s} PCK@0.2" for s in sets) + " |")
    print("|---|---|" + "---|---|" * len(sets))
    for run, step, by_set in rows:
        print(f"| {run} | {step} | " + " | ".join(f"{by_set[s]['mean_OKS']:.3f} | {by_set[s]['PCK@0.2']:.3f}"
                                              if s in by_set else " | " for s in sets) + " |")
    plot_learning_curve(curves, "dev-val mean OKS", args.out)
    print(f"plot: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
