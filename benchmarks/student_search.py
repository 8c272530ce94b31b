"""Which student at which input size: int8 1-thread latency of each candidate beside MoveNet Lightning's, and the
accuracy each starts from (its initialisation, before any training), on coco-mini val and PARSE's test half.

    python benchmarks/student_search.py [--runs 100]          # about 6 minutes on 2 cores

Candidates: the MoveNet-initialised MobileNetV2 + pyramid (the default's architecture) at four input sizes, the
ImageNet MobileNetV1 + pyramid, and PeleeNet-DUC (random weights: the from-scratch control) at the previous
default's 96x128 and at 192x256. Each is exported full-integer int8 with 64 calibration crops from the training
sources and timed in this process (ai-edge-litert, XNNPACK, median) in the same run as Lightning's fp32 file, so
the ratio holds on a noisy machine. Accuracy before training says what pretraining buys: the trained figures are
in BENCHMARKS.md, sections `default` and `init`.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))   # run from a checkout without installing

from benchmarks._sections import publish  # noqa: E402
from tfpose.artifacts import write_bytes  # noqa: E402

SHARED = ROOT.parent / "shared"
MOVENET = SHARED / "models/init/movenet-lightning-keras.h5"
MOBILENET_V1 = SHARED / "models/init/mobilenet-v1-1.0-imagenet.weights.h5"
PELEE = dict(growth=16, duc_channels=(128, 64, 32), act="relu6")
CANDIDATES = (   # label, registry name, builder params, init, (W, H)
    ("MobileNetV2 + pyramid, MoveNet init", "mobilenetv2", dict(head="fpn"), MOVENET, (128, 160)),
    ("MobileNetV2 + pyramid, MoveNet init", "mobilenetv2", dict(head="fpn"), MOVENET, (160, 192)),
    ("MobileNetV2 + pyramid, MoveNet init", "mobilenetv2", dict(head="fpn"), MOVENET, (192, 256)),
    ("MobileNetV2 + pyramid, MoveNet init", "mobilenetv2", dict(head="fpn"), MOVENET, (224, 288)),
    ("MobileNetV1 + pyramid, ImageNet init", "mobilenetv1", dict(head="fpn"), MOBILENET_V1, (192, 256)),
    ("PeleeNet-DUC half growth, scratch", "peleenet_duc", PELEE, None, (96, 128)),
    ("PeleeNet-DUC half growth, scratch", "peleenet_duc", PELEE, None, (192, 256)),
)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--write", action="store_true", help="replace the `search` section of BENCHMARKS.md")
    args = parser.parse_args(argv)
    from tflite.benchmark import measure_latency
    from tflite.convert import convert
    from tfpose.config import load_config
    from tfpose.evaluation import evaluate_predictor
    from tfpose.models import build_model
    from tfpose.models.init import initialise
    from tfpose.pipeline import load_data, make_context

    cfg = load_config(ROOT / "configs/default_student.yaml")
    work = Path(tempfile.mkdtemp())
    lightning = SHARED / "models/movenet-peers/movenet-lightning_fp32.tflite"
    rows = []
    for label, name, params, init, size in CANDIDATES:
        ctx = make_context(load_config(ROOT / "configs/default_student.yaml",
                                       [f"codec.input_size=[{size[0]}, {size[1]}]"]), work)
        with contextlib.redirect_stdout(io.StringIO()):
            load_data(ctx)
        sampler, draw = ctx.training_sampler(with_unlabelled=False, augment=False)
        picks = np.random.default_rng(0).choice(len(sampler), 64, replace=False, p=draw)
        calibration = [sampler.sample(int(i)).crop.astype(np.float32) for i in picks]
        model = build_model(name, ctx.skeleton.num_keypoints, size, **params)
        if init is not None:
            initialise(model, str(init))
        path = work / f"{name}_{size[0]}x{size[1]}.tflite"
        write_bytes(path, convert(model, "int8", calibration))
        accuracy = {}
        for set_name, dataset in ctx.val_sets.items():
            metrics, _ = evaluate_predictor(lambda crops: model.predict_on_batch(crops.astype(np.float32)), dataset,
                                            ctx.codec, ctx.skeleton, cfg.data.padding)
            accuracy[set_name] = metrics
        ms = measure_latency(path, calibration[0].astype(np.uint8), 1, runs=args.runs)["median_ms"]
        peer = measure_latency(lightning, None, 1, runs=args.runs)["median_ms"]
        rows.append((label, size, model.count_params(), path.stat().st_size, ms, peer, accuracy))
        print(f"{label} {size}: {ms:.2f} ms (Lightning {peer:.2f} ms)", flush=True)
    lines = ["    python benchmarks/student_search.py --runs %d --write" % args.runs, "",
             "int8 1-thread latency (ai-edge-litert, XNNPACK, median) beside Lightning fp32 timed right after it, and "
             "float accuracy as initialised (before training; PeleeNet: random weights):", "",
             "| student | input W x H | params M | int8 size | int8 1-thread ms | Lightning ms | ratio | "
             "coco-mini val mean OKS | PARSE test PCK@0.2 |", "|---|---|---|---|---|---|---|---|---|"]
    for label, size, params, size_bytes, ms, peer, acc in rows:
        lines.append(f"| {label} | {size[0]} x {size[1]} | {params / 1e6:.2f} | {size_bytes / 2**20:.2f} MiB | "
                     f"{ms:.2f} | {peer:.2f} | {ms / peer:.2f} | {acc['val']['mean_OKS']:.3f} | "
                     f"{acc['parse:test']['PCK@0.2']:.3f} |")
    publish("search", "\n".join(lines), args.write)
    return 0


if __name__ == "__main__":
    sys.exit(main())
