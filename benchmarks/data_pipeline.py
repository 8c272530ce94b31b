"""Throughput of the training input pipeline: augmented crops + heatmap targets per second.

    python benchmarks/data_pipeline.py --config configs/quickstart.yaml [--batches 40] [--real]

Measures the numpy sampler alone (one core) and the tf.data pipeline (parallel map + prefetch), in one run.
With --real it also reads the real photos of ../shared/data/coco-mini-train at 256x192.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from tfpose import pipeline as p
from tfpose.codec import HeatmapCodec
from tfpose.config import AugmentConfig, load_config
from tfpose.data.coco import load_coco
from tfpose.data.pipeline import build_dataset
from tfpose.data.samples import CropSampler
from tfpose.skeleton import COCO17

ROOT = Path(__file__).resolve().parents[1]


def measure(sampler: CropSampler, batch_size: int, batches: int) -> dict:
    for i in range(min(len(sampler), 64)):   # warm the image cache, as after the first epoch
        sampler.sample(i, i)
    n = min(len(sampler), 300)
    t = time.perf_counter()
    for i in range(n):
        sampler.sample(i % len(sampler), i)
    numpy_rate = n / (time.perf_counter() - t)
    ds = build_dataset(sampler, batch_size, training=True, seed=0).repeat()
    it = iter(ds)
    next(it)
    t = time.perf_counter()
    for _ in range(batches):
        next(it)
    tf_rate = batches * batch_size / (time.perf_counter() - t)
    return {"numpy_sampler_crops_per_s": round(numpy_rate, 1), "tf_data_crops_per_s": round(tf_rate, 1)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--config", default=str(ROOT / "configs/quickstart.yaml"))
    parser.add_argument("--batches", type=int, default=40)
    parser.add_argument("--real", action="store_true", help="also the real COCO photos in ../shared")
    args = parser.parse_args()
    cfg = load_config(args.config)
    ctx = p.make_context(cfg, ROOT / "runs/bench_data")
    p.load_data(ctx)
    results = {f"synthetic {ctx.codec.input_size[0]}x{ctx.codec.input_size[1]}":
               measure(ctx.sampler(ctx.train, augment=True), cfg.distill.train.batch_size, args.batches)}
    if args.real:
        ann = ROOT.parent / "shared/data/coco-mini-train/annotations/person_keypoints_train2017.json"
        ds = load_coco(ann, ann.parent.parent / "train2017")
        sampler = CropSampler(ds.labelled(), HeatmapCodec((192, 256)), COCO17.flip_index, augment=AugmentConfig())
        results["coco-mini-train 192x256"] = measure(sampler, 32, args.batches)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    np.set_printoptions(precision=3)
    main()
