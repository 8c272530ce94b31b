"""Accuracy against latency over students and input sizes: the default recipe for every candidate, one short
budget, the Pareto front kept.

    python benchmarks/pareto.py --epochs 8 --write

Each candidate is one ``tfpose pipeline`` run of configs/default_student.yaml (MoveNet Thunder teacher, the
unlabelled boxes, cached teacher views) with its student, input size and the budget overridden, and FPD as the
method: the cheapest one, since the search ranks architectures and input sizes (section ``kd`` ranks methods):
``--epochs`` epochs of 388 steps, no early stopping, the last epoch's student kept (nothing is chosen on the val
split). The on-device validator scores each int8 file on the val split (never trained on): mean OKS with its
95 % interval (AP is 0 for every student this data can train, so it cannot rank them), PCK@0.2, AP, and the
1-thread latency measured in the same run. A finished candidate (its validation/report.json) is reused, so an
interrupted search resumes; candidates of one input size share the teacher's cached views. Writes
runs/pareto/pareto.json, pareto.png and, with --write, the ``pareto`` section of BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))   # run from a checkout without installing

from benchmarks._sections import publish  # noqa: E402
from tfpose.artifacts import atomic_path, write_text  # noqa: E402

HALF_PELEE = "{growth: 16, duc_channels: [128, 64, 32], act: relu6}"
# (label, registry name, builder parameters as YAML, (W, H) input)
CANDIDATES = (
    ("peleenet_duc half, 64x96", "peleenet_duc", HALF_PELEE, (64, 96)),
    ("peleenet_duc half, 96x128 (default)", "peleenet_duc", HALF_PELEE, (96, 128)),
    ("peleenet_duc half, 128x160", "peleenet_duc", HALF_PELEE, (128, 160)),
    ("shufflenetv2 0.5, 96x128", "shufflenetv2", "{width: 0.5}", (96, 128)),
)


def run_candidate(label: str, name: str, params: str, size: tuple[int, int], epochs: int, out: Path,
                  config: Path) -> dict:
    """Train, export and validate one candidate (or reuse its finished run); returns its row."""
    report = out / "validation" / "report.json"
    if not report.is_file():
        out.mkdir(parents=True, exist_ok=True)
        # candidates with the same input size share the teacher's views (the cache is keyed by what they depend on)
        overrides = [f"distill.teacher_cache={out.parent / 'teacher_cache'}", "distill.method=fpd", f"distill.student.name={name}", f"distill.student.params={params}",
                     f"codec.input_size=[{size[0]}, {size[1]}]", f"distill.train.epochs={epochs}",
                     "distill.train.early_stopping_patience=0", "distill.train.steps_per_epoch=388",
                     "validate.threads=[1]"]
        command = [sys.executable, "-m", "tfpose.cli", "pipeline", "--config", str(config), "--out", str(out),
                   *overrides]
        print(f"== {label}: {' '.join(command[2:])}", flush=True)
        started = time.perf_counter()
        with open(out.with_suffix(".log"), "w") as log:
            if subprocess.run(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT).returncode != 0:
                raise SystemExit(f"error: candidate '{label}' failed; see {out.with_suffix('.log')}")
        print(f"   done in {time.perf_counter() - started:.0f} s", flush=True)
    r = json.loads(report.read_text())
    acc, summary = r["accuracy"], json.loads((out / "summary.json").read_text())
    one_thread = next(x for x in r["latency"] if x["threads"] == 1 and x["xnnpack"])
    return {"label": label, "model": name, "input": list(size), "params_M": summary["student_int8"]["params_M"],
            "size_kib": int(r["size_bytes"]) / 1024, "latency_ms": one_thread["median_ms"],
            "mean_OKS": acc["mean_OKS"], "mean_OKS_ci95": acc["mean_OKS_ci95"], "PCK@0.2": acc["PCK@0.2"],
            "AP": acc["AP"], "AP_ci95": acc["AP_ci95"], "train_s": summary["stage_seconds"]["distill"]}


def pareto_front(rows: list[dict]) -> list[dict]:
    """Rows no other row beats on both latency (lower) and mean OKS (higher), fastest first."""
    front = [r for r in rows if not any(o["latency_ms"] <= r["latency_ms"] and o["mean_OKS"] >= r["mean_OKS"]
                                        and (o["latency_ms"], o["mean_OKS"]) != (r["latency_ms"], r["mean_OKS"])
                                        for o in rows)]
    return sorted(front, key=lambda r: r["latency_ms"])


def plot(rows: list[dict], front: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    for r in rows:
        lo, hi = r["mean_OKS_ci95"]
        ax.errorbar(r["latency_ms"], r["mean_OKS"], yerr=[[r["mean_OKS"] - lo], [hi - r["mean_OKS"]]], fmt="o",
                    capsize=3, color="tab:blue" if r in front else "tab:gray")
        ax.annotate(r["label"], (r["latency_ms"], r["mean_OKS"]), textcoords="offset points", xytext=(5, 4),
                    fontsize=7)
    ax.plot([r["latency_ms"] for r in front], [r["mean_OKS"] for r in front], "-", color="tab:blue", alpha=0.5,
            label="Pareto front")
    ax.margins(x=0.3)
    ax.set_xlabel("int8 latency, 1 thread (ms)")
    ax.set_ylabel("val mean OKS (95 % CI)")
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=120)
    plt.close(fig)


def section(rows: list[dict], front: list[dict], args) -> str:
    lines = ["## Students and input sizes: accuracy against latency (issue 8)", "",
             f"    python benchmarks/pareto.py --epochs {args.epochs} --write", "",
             f"Every candidate: configs/default_student.yaml with its student and input size and FPD, "
             f"{args.epochs} epochs of 388 steps (the last epoch's student: nothing chosen on the val split), "
             "then int8 and the on-device validator on the 35 val persons; latency: ai-edge-litert + XNNPACK, "
             "1 thread, in the same validator run (the 2-core CPU was shared with other jobs: compare within this "
             "table). Plot: runs/pareto/pareto.png.", "",
             "| candidate | params M | int8 KiB | 1-thread ms | mean OKS [95 % CI] | PCK@0.2 | OKS AP | train s "
             "| front |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in sorted(rows, key=lambda r: r["latency_ms"]):
        lo, hi = r["mean_OKS_ci95"]
        lines.append(f"| {r['label']} | {r['params_M']:.2f} | {r['size_kib']:.0f} | {r['latency_ms']:.2f} | "
                     f"{r['mean_OKS']:.3f} [{lo:.3f}, {hi:.3f}] | {r['PCK@0.2']:.3f} | {r['AP']:.3f} | "
                     f"{r['train_s']:.0f} | {'yes' if r in front else ''} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--config", type=Path, default=ROOT / "configs/default_student.yaml")
    parser.add_argument("--out", type=Path, default=ROOT / "runs/pareto")
    parser.add_argument("--write", action="store_true", help="rewrite the pareto section of BENCHMARKS.md")
    args = parser.parse_args(argv)
    rows = []
    for label, name, params, size in CANDIDATES:
        folder = args.out / f"{name}_{size[0]}x{size[1]}"
        rows.append(run_candidate(label, name, params, size, args.epochs, folder, args.config))
    front = pareto_front(rows)
    args.out.mkdir(parents=True, exist_ok=True)
    write_text(args.out / "pareto.json", json.dumps({"rows": rows, "front": [r["label"] for r in front]}, indent=1))
    plot(rows, front, args.out / "pareto.png")
    text = section(rows, front, args)
    publish("pareto", text, args.write)
    return 0


if __name__ == "__main__":
    sys.exit(main())
