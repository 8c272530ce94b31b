"""The run's summary: summary.json's rows, summary.md's table and the figures it links (JSON; the figures through
``tfpose.visualize``). No TensorFlow: a finished run's numbers are read and written here, not computed."""

from __future__ import annotations

import json
import math
from pathlib import Path

NAN_METRICS = {"AP": float("nan"), "AP_ci95": [float("nan")] * 2, "PCK@0.2": float("nan"), "mean_OKS": float("nan")}


def set_slug(name: str) -> str:
    """A dev-val set's name ("parse:test") as the validator's set name and a file name ("parse_test")."""
    return name.replace(":", "_")


def print_metrics(name: str, metrics: dict) -> None:
    """One line: ``name``'s AP (with its 95 % interval when it has one), mean OKS and PCK@0.2."""
    lo, hi = metrics["AP_ci95"]
    interval = f" (95 % CI {lo:.3f}-{hi:.3f})" if math.isfinite(lo) else ""
    print(f"    {name}: AP {metrics['AP']:.3f}{interval}, mean OKS {metrics['mean_OKS']:.3f}, "
          f"PCK@0.2 {metrics['PCK@0.2']:.3f}", flush=True)


def build_summary(teacher_sets: dict, teacher_params: int, student_sets: dict, student_params: int, report: dict,
                  timings: dict, val_names: list[str]) -> dict:
    """summary.json (less its figures): the teacher's and the float student's metrics on each dev-val set (by name,
    "val" first; no teacher: {}), the int8 student's from the validator's ``report``, and the stage times."""
    summary = {
        "teacher": row(teacher_sets.get("val", NAN_METRICS), teacher_params),
        "student_float": row(student_sets["val"], student_params),
        "student_int8": {**row(report["accuracy"], student_params),
                         "size_kib": round(report["size_bytes"] / 1024, 1),
                         "latency_ms": {str(t["threads"]): round(t["median_ms"], 2) for t in report["latency"]},
                         "joints_within_1_cell": report["parity"]["joints_within_1_cell"]},
        "stage_seconds": timings,
    }
    if len(val_names) > 1:
        int8_sets = {name: report["sets"][set_slug(name)]["comparison"][0] for name in val_names[1:]}
        summary["other_dev_val"] = {
            name: {"teacher": row(teacher_sets[name], 0) if teacher_sets else None,
                   "student_float": row(student_sets[name], student_params),
                   "student_int8": {k: int8_sets[name][k] for k in ("AP", "mean_OKS", "PCK@0.2")}}
            for name in int8_sets}
    return summary


def summary_figures(out: Path) -> dict:
    """The pictures summary.md links, relative to the run folder: ``learning_curves.png`` (val mean OKS per epoch
    of the teacher and the student, from their runs' learning_curve.json) and the int8 student's best and worst
    overlays; a figure that was not made is left out."""
    from tfpose.visualize import plot_learning_curve

    curves = {}
    for label, run in (("teacher", "teacher_run"), ("student", "distill_run")):
        path = out / run / "learning_curve.json"
        if path.is_file():
            curves[label] = [(p["epoch"], p["val"]["mean_OKS"]) for p in json.loads(path.read_text()) if "epoch" in p]
    figures = {}
    if any(curves.values()) and plot_learning_curve(curves, "val mean OKS", out / "learning_curves.png", "epochs"):
        figures["learning_curves"] = "learning_curves.png"
    for name in ("best", "worst"):
        if (out / "validation" / f"{name}.png").is_file():
            figures[f"{name}_overlays"] = f"validation/{name}.png"
    return figures


def row(metrics: dict, params: int) -> dict:
    """One model's line of summary.json: AP with its 95 % interval, mean OKS, PCK@0.2 (4 decimals) and params (M)."""
    return {"AP": round(metrics["AP"], 4), "AP_ci95": [round(v, 4) for v in metrics["AP_ci95"]],
            "mean_OKS": round(metrics.get("mean_OKS", float("nan")), 4),
            "PCK@0.2": round(metrics["PCK@0.2"], 4), "params_M": round(params / 1e6, 3)}


def summary_markdown(s: dict) -> str:
    """summary.md: the teacher, float and int8 student table, stage times and the figures, from ``summary``."""
    lines = ["| model | params (M) | OKS AP | AP 95 % CI | PCK@0.2 | size | 1-thread ms |", "|---|---|---|---|---|---|---|"]
    for name, key in (("teacher", "teacher"), ("student (Keras float)", "student_float"),
                      ("student (int8 TFLite)", "student_int8")):
        r = s[key]
        size = f"{r['size_kib']:.0f} KiB" if "size_kib" in r else ""
        ms = f"{r['latency_ms'].get('1', float('nan')):.2f}" if "latency_ms" in r else ""
        params = f"{r['params_M']:.2f}" if r["params_M"] else "-"      # a SavedModel teacher does not say
        lines.append(f"| {name} | {params} | {r['AP']:.3f} | {r['AP_ci95'][0]:.3f}-{r['AP_ci95'][1]:.3f} "
                     f"| {r['PCK@0.2']:.3f} | {size} | {ms} |")
    lines += ["", "Stage times (s): " + ", ".join(f"{k} {v}" for k, v in s["stage_seconds"].items())]
    figures = s.get("figures", {})
    if "learning_curves" in figures:
        lines += ["", "Val mean OKS over the epochs, teacher and student:", "",
                  f"![learning curves]({figures['learning_curves']})"]
    overlays = [f"[{name}]({figures[f'{name}_overlays']})" for name in ("best", "worst") if f"{name}_overlays" in figures]
    if overlays:
        lines += ["", "The int8 student's " + " and ".join(overlays) + " crops of the val split, by OKS."]
    return "\n".join(lines) + "\n"


def load_summary(out: str | Path) -> dict:
    return json.loads((Path(out) / "summary.json").read_text())
