"""Fast on every CPU: the default student against the one it replaces, the fast student, and MoveNet, in one
validator run, with the gates of the "every CPU" issue checked on the measured numbers.

    python benchmarks/every_cpu.py runs/s160/student_qat-int8.tflite --previous PREVIOUS.tflite \\
        --fast runs/fast/student_qat-int8_channels-0.135gmac.tflite --runs 100 --write

One ``tflite.validate`` run scores every file on both dev-val sets (coco-mini-train's val split and PARSE's test
half, ground-truth boxes) and times each at one thread; the paired gaps are the default's against each other model.
MACs are counted in each .tflite graph (``tflite.macs``); every latency is also given as GMAC/s and as a share of
this CPU's dense int8 rate (``benchmarks.cpu_ceiling``), measured in the same process. Gates (exit 1 when one fails):
- the default costs at most 0.75x Lightning's MACs;
- its paired intervals against the previous default reach above -0.01 on coco-mini val mean OKS and PARSE PCK@0.2;
- its int8 1-thread latency is at most 0.75x Lightning fp32's.
The fast student's goal (Lightning's mean OKS and PCK@0.2 on both sets at 0.5x its MACs) is reported, not gated.
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))   # run from a checkout without installing

from benchmarks._sections import publish  # noqa: E402
from benchmarks.cpu_ceiling import cpu_info, dense_int8_ceiling  # noqa: E402
from benchmarks.peers import parse_test_json  # noqa: E402
from tflite.macs import count_ops_macs  # noqa: E402
from tflite.validate import validate  # noqa: E402
from tfpose.errors import TfposeError  # noqa: E402
from tfpose.evaluation import gap_cells  # noqa: E402

SHARED = ROOT.parent / "shared"
LIGHTNING, THUNDER = "movenet-lightning_fp32.tflite", "movenet-thunder_fp32.tflite"
MAC_SHARE, LATENCY_SHARE, GAP_FLOOR, FAST_MAC_SHARE = 0.75, 0.75, -0.01, 0.5
FIGURE = "every_cpu_accuracy_latency.png"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("default", type=Path, help="the new default student (.tflite)")
    parser.add_argument("--previous", type=Path, default=ROOT / "android_assets/model.tflite",
                        help="the default it replaces")
    parser.add_argument("--fast", type=Path, help="the fast student (.tflite)")
    parser.add_argument("--shared", type=Path, default=SHARED)
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--out", type=Path, default=ROOT / "runs/every_cpu")
    parser.add_argument("--write", action="store_true", help="write the every_cpu section of BENCHMARKS.md")
    args = parser.parse_args(argv)
    # distinct names in the report, whatever the files are called
    named = {"default (new)": args.default, "previous default": args.previous}
    if args.fast:
        named["fast student"] = args.fast
    peers = args.shared / "models/movenet-peers"
    named.update({"MoveNet Lightning fp32": peers / LIGHTNING, "MoveNet Thunder fp32": peers / THUNDER})
    try:
        models = stage_models(named, args.out / "models")
        macs = {label: count_ops_macs(path)["macs"] for label, path in models.items()}
        data = args.shared / "data/coco-mini-train"
        extra = (("parse_test", parse_test_json(args.shared, args.out), args.shared / "data/lsp/parse"),)
        files = list(models.values())
        report = validate(files[0], data / "annotations/person_keypoints_train2017.json", data / "train2017",
                          args.out, threads=(1,), runs=args.runs, peers=files[1:], split="val", val_fraction=0.3,
                          split_seed=0, extra_sets=extra)
    except (TfposeError, ImportError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    ceiling = dense_int8_ceiling(1, 50)
    text, gates = section(report, models, macs, ceiling, argv)
    figure = (ROOT / "docs" if args.write else args.out) / FIGURE
    if plot(report, models, macs, figure):   # a link that works from BENCHMARKS.md, or from here without --write
        text += f"\n\n![coco-mini val mean OKS against 1-thread latency]({os.path.relpath(figure, ROOT)})"
    publish("every_cpu", text, args.write)
    return 0 if all(ok for _, ok in gates) else 1


def stage_models(named: dict[str, Path], folder: Path) -> dict[str, Path]:
    """Copies of the files under the labels the tables use (the validator names a model by its file)."""
    folder.mkdir(parents=True, exist_ok=True)
    staged = {}
    for label, path in named.items():
        if not Path(path).is_file():
            raise TfposeError(f"{path}: model file not found ({label})")
        staged[label] = folder / (label.replace(" ", "_").replace("(", "").replace(")", "") + ".tflite")
        shutil.copyfile(path, staged[label])
    return staged


def per_model(report: dict, models: dict[str, Path]):
    """(label by file stem, the two dev-val sets, {set: {label: comparison row}}, {label: 1-thread ms})."""
    by_file = {path.stem: label for label, path in models.items()}   # the validator names a model by its stem
    sets = {"coco-mini val": report["sets"]["main"], "PARSE test": report["sets"]["parse_test"]}
    rows = {name: {by_file[r["model"]]: r for r in s["comparison"]} for name, s in sets.items()}
    ms = {label: rows["coco-mini val"][label]["ms"]["1"] for label in models}
    return by_file, sets, rows, ms


def plot(report: dict, models: dict[str, Path], macs: dict[str, int], path: Path) -> bool:
    """coco-mini val mean OKS against 1-thread latency, one labelled point per model; False without matplotlib."""
    from tfpose.visualize import plot_accuracy_latency

    _, _, rows, ms = per_model(report, models)
    points = [{"label": f"{label}, {macs[label] / 1e9:.3f} GMAC", "latency_ms": ms[label],
               "value": rows["coco-mini val"][label]["mean_OKS"]} for label in models]
    return plot_accuracy_latency(points, "coco-mini val mean OKS", path)


def section(report: dict, models: dict[str, Path], macs: dict[str, int], ceiling: float, argv) -> tuple[str, list]:
    """The section's Markdown and the gates as (line, passed)."""
    by_file, sets, rows, ms = per_model(report, models)
    cpu, m = cpu_info(), report["machine"]
    isa = ", ".join(f"{flag} {'yes' if has else 'no'}" for flag, has in cpu.items() if flag != "cpu")
    lines = ["python benchmarks/every_cpu.py " + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:])), "",
             f"CPU: {cpu['cpu']}; {isa}. ai-edge-litert, XNNPACK, 1 thread, median of the validator's runs; load "
             f"average {m['load_average_1min']:.1f} at the start. Dense int8 3x3 ceiling measured in the same "
             f"process: {ceiling:.1f} GMAC/s. One validator run, ground-truth boxes.", "",
             "| model | GMAC | x Lightning MACs | 1-thread ms | x Lightning ms | GMAC/s | share of int8 ceiling "
             "| coco-mini AP | mean OKS | PCK@0.2 | PARSE AP | mean OKS | PCK@0.2 |", "|" + "---|" * 13]
    light = "MoveNet Lightning fp32"
    for label in models:
        gmac, coco, parse = macs[label] / 1e9, rows["coco-mini val"][label], rows["PARSE test"][label]
        rate = gmac / ms[label] * 1e3
        lines.append(f"| {label} | {gmac:.4f} | {macs[label] / macs[light]:.2f} | {ms[label]:.2f} | "
                     f"{ms[label] / ms[light]:.2f} | {rate:.1f} | {rate / ceiling:.2f} | "
                     f"{coco['AP']:.3f} | {coco['mean_OKS']:.3f} | {coco['PCK@0.2']:.3f} | "
                     f"{parse['AP']:.3f} | {parse['mean_OKS']:.3f} | {parse['PCK@0.2']:.3f} |")
    lines += ["", "The new default minus each other model on the same people (95 % paired bootstrap: persons for "
              "mean OKS and PCK, images for AP):", "", "| set | against | AP | mean OKS | PCK@0.2 |", "|---|---|---|---|---|"]
    for name, s in sets.items():
        for peer, g in s["gaps"].items():
            lines.append(f"| {name} | {by_file[peer]} | " + " | ".join(gap_cells(g)) + " |")
    previous = models["previous default"].stem
    coco_gap = sets["coco-mini val"]["gaps"][previous]["mean_OKS"]
    parse_gap = sets["PARSE test"]["gaps"][previous]["PCK@0.2"]
    new = "default (new)"
    gates = [
        (f"MACs: {macs[new] / 1e9:.4f} GMAC = {macs[new] / macs[light]:.3f}x Lightning (at most {MAC_SHARE})",
         macs[new] <= MAC_SHARE * macs[light]),
        (f"coco-mini val mean OKS against the previous default: {coco_gap['gap']:+.3f} "
         f"[{coco_gap['ci95'][0]:+.3f}, {coco_gap['ci95'][1]:+.3f}] (upper end above {GAP_FLOOR})",
         coco_gap["ci95"][1] > GAP_FLOOR),
        (f"PARSE PCK@0.2 against the previous default: {parse_gap['gap']:+.3f} "
         f"[{parse_gap['ci95'][0]:+.3f}, {parse_gap['ci95'][1]:+.3f}] (upper end above {GAP_FLOOR})",
         parse_gap["ci95"][1] > GAP_FLOOR),
        (f"1-thread latency: {ms[new]:.2f} ms = {ms[new] / ms[light]:.3f}x Lightning fp32's {ms[light]:.2f} ms "
         f"(at most {LATENCY_SHARE})", ms[new] <= LATENCY_SHARE * ms[light]),
    ]
    lines += ["", "Gates:", ""] + [f"- {'met' if ok else '**not met**'}: {line}" for line, ok in gates]
    if "fast student" in models:
        fast = "fast student"
        reached = [f"{name} {metric} {rows[name][fast][metric]:.3f} vs {rows[name][light][metric]:.3f}"
                   for name in sets for metric in ("mean_OKS", "PCK@0.2")]
        goal = macs[fast] <= FAST_MAC_SHARE * macs[light] and all(
            rows[name][fast][metric] >= rows[name][light][metric] for name in sets for metric in ("mean_OKS", "PCK@0.2"))
        lines += ["", f"Fast student goal ({macs[fast] / macs[light]:.3f}x Lightning's MACs, at most "
                  f"{FAST_MAC_SHARE}; Lightning's mean OKS and PCK@0.2 on both sets): "
                  f"{'met' if goal else 'not met'} ({'; '.join(reached)})."]
    return "\n".join(lines), gates


if __name__ == "__main__":
    sys.exit(main())
