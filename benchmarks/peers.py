"""Our int8 student beside MoveNet Lightning and Thunder: the same persons, the same runtime, one table.

The persons are the validation side of coco-mini-train split by image (``CocoDataset.split(0.3, seed=0)``, the split
training uses), cropped from ground-truth boxes; each model crops them its own way (tfpose: its metadata's input
size and padding; MoveNet: a square crop with the same centre). Needs only the device install (no TensorFlow).

    python benchmarks/peers.py runs/quickstart/student_int8.tflite     # student + MoveNet Lightning and Thunder
    python benchmarks/peers.py                                          # MoveNet alone

It is ``tfpose-validate STUDENT LIGHTNING THUNDER --annotations ... --split val ...`` with the paths filled in; the
full report (JSON, Markdown, overlays, accuracy-vs-latency plot) goes to ``--out``.
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

SHARED = ROOT.parent / "shared"
# the fastest MoveNet files under XNNPACK (the dynamic-range int8 ones run about 1.5x slower: ../shared/TOOLCHAIN.md)
PEERS = ("movenet-lightning_fp32.tflite", "movenet-thunder_fp32.tflite")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("student", nargs="?", help="our .tflite (a tfpose export); omit for MoveNet alone")
    parser.add_argument("--shared", type=Path, default=SHARED, help="the shared data and models folder")
    parser.add_argument("--peers", nargs="+", default=list(PEERS), help="files in SHARED/models/movenet-peers")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--xnnpack", choices=("on", "off"), nargs="+", default=["on"])
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--out", type=Path, default=ROOT / "runs/peers")
    args = parser.parse_args(argv)
    data = args.shared / "data/coco-mini-train"
    peers = [args.shared / "models/movenet-peers" / p for p in args.peers]
    models = ([Path(args.student)] if args.student else []) + peers
    try:
        report = validate(models[0], data / "annotations/person_keypoints_train2017.json", data / "train2017",
                          args.out, threads=args.threads, warmup=args.warmup, runs=args.runs,
                          xnnpack=[x == "on" for x in args.xnnpack], peers=models[1:], split="val", val_fraction=0.3,
                          split_seed=0)
    except (TfposeError, ImportError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    m = report["machine"]
    print(f"coco-mini-train val split (0.3 by image, seed 0): {report['dataset']['crops']} ground-truth crops; "
          f"{m['cpu']}, {m['cpus']} CPUs, load average {m['load_average_1min']:.1f} at the start\n")
    print(comparison_markdown(report["comparison"], report["dataset"]["headline"]))
    print("command: python benchmarks/peers.py " + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:])))
    print(f"report: {args.out / 'report.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
