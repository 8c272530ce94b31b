"""Our int8 student beside MoveNet Lightning and Thunder: the same persons, the same runtime, one validator run.

Two dev-val sets, never trained on: the validation side of coco-mini-train split by image
(``CocoDataset.split(0.3, seed=0)``, the split training uses) and PARSE's test half (its last 205 images, written
as COCO JSON by ``python -m tfpose.data.lsp --format parse --split test``). Persons are cropped from ground-truth
boxes; each model crops them its own way (tfpose: its metadata's input size and padding; MoveNet: a square crop
with the same centre). The report gives paired bootstrap gaps of the student against each peer on both sets.

    python benchmarks/peers.py runs/default/student_int8.tflite      # student + MoveNet Lightning and Thunder
    python benchmarks/peers.py NEW.tflite OLD.tflite                  # gaps of NEW against OLD and both MoveNets
    python benchmarks/peers.py                                        # MoveNet alone

It is ``tfpose-validate STUDENT LIGHTNING THUNDER --annotations ... --split val --extra-set parse_test ...`` with
the paths filled in; the full report (JSON, Markdown, overlays, accuracy-vs-latency plot) goes to ``--out``.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))   # run from a checkout without installing

from tflite.validate import comparison_markdown, validate  # noqa: E402
from tfpose.errors import TfposeError  # noqa: E402
from tfpose.evaluation import gap_cells  # noqa: E402

SHARED = ROOT.parent / "shared"
# the fastest MoveNet files under XNNPACK (the dynamic-range int8 ones run about 1.5x slower: ../shared/TOOLCHAIN.md)
PEERS = ("movenet-lightning_fp32.tflite", "movenet-thunder_fp32.tflite")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("students", nargs="*", help="our .tflite files (tfpose exports); the gaps are the first's "
                        "against every other model; omit for MoveNet alone")
    parser.add_argument("--shared", type=Path, default=SHARED, help="the shared data and models folder")
    parser.add_argument("--peers", nargs="+", default=list(PEERS), help="files in SHARED/models/movenet-peers")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--xnnpack", choices=("on", "off"), nargs="+", default=["on"])
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--out", type=Path, default=ROOT / "runs/peers")
    parser.add_argument("--no-parse", action="store_true", help="score on coco-mini val alone")
    args = parser.parse_args(argv)
    data = args.shared / "data/coco-mini-train"
    peers = [args.shared / "models/movenet-peers" / p for p in args.peers]
    models = [Path(s) for s in args.students] + peers
    extra = ()
    try:
        if not args.no_parse:
            extra = (("parse_test", parse_test_json(args.shared, args.out), args.shared / "data/lsp/parse"),)
        report = validate(models[0], data / "annotations/person_keypoints_train2017.json", data / "train2017",
                          args.out, threads=args.threads, warmup=args.warmup, runs=args.runs,
                          xnnpack=[x == "on" for x in args.xnnpack], peers=models[1:], split="val", val_fraction=0.3,
                          split_seed=0, extra_sets=extra)
    except (TfposeError, ImportError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    m = report["machine"]
    print(f"coco-mini-train val split (0.3 by image, seed 0): {report['dataset']['crops']} ground-truth crops; "
          f"{m['cpu']}, {m['cpus']} CPUs, load average {m['load_average_1min']:.1f} at the start\n")
    print(comparison_markdown(report["comparison"], report["dataset"]["headline"]))
    for name, scored in report.get("sets", {}).items():
        if name != "main":
            print(f"\n{name}: {scored['dataset']['crops']} ground-truth crops\n")
            print(comparison_markdown(scored["comparison"], "AP"))
    print(gaps_markdown(report))
    print("command: python benchmarks/peers.py " + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:])))
    print(f"report: {args.out / 'report.md'}")
    return 0


def parse_test_json(shared: Path, out: Path) -> Path:
    """PARSE's test half as COCO keypoints JSON under ``out`` (needs scipy, the training install)."""
    from tfpose.artifacts import write_json
    from tfpose.data.readers import read_dataset

    path = out / "parse_test.json"
    write_json(path, read_dataset("parse", shared / "data/lsp/parse", split="test").raw)
    return path


def gaps_markdown(report: dict) -> str:
    """The first model minus each other one on every set, paired bootstrap 95 % intervals."""
    lines = ["", f"{report['model']} minus each peer (95 % paired bootstrap):", "",
             "| set | peer | AP | mean OKS | PCK@0.2 |", "|---|---|---|---|---|"]
    for name, scored in report.get("sets", {}).items():
        for peer, g in scored["gaps"].items():
            lines.append(f"| {'coco-mini val' if name == 'main' else name} | {peer} | " + " | ".join(gap_cells(g))
                         + " |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
