"""The on-device validator: accuracy, parity with the Keras model, latency and size of a tfpose .tflite.

Runs with numpy, OpenCV and ai-edge-litert or tflite-runtime only - no TensorFlow - so the numbers are
the ones a phone or a Raspberry Pi produces. Everything about the model (input size, codec, skeleton,
crop padding) comes from the metadata inside the file.

    tfpose-validate student.tflite --annotations val.json --images val/ --out report/
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import time
from pathlib import Path

import cv2
import numpy as np

from tflite import metadata as tfl_metadata
from tflite.runtime import TFLiteModel
from tfpose.artifacts import write_json, write_text
from tfpose.codec import HeatmapCodec
from tfpose.data.coco import load_coco
from tfpose.errors import InputError, TfposeError
from tfpose.evaluation import evaluate_predictor
from tfpose.skeleton import get_skeleton
from tfpose.visualize import contact_sheet, draw_skeleton


def measure_latency(model_path: Path, crop: np.ndarray, threads: int, xnnpack: bool = True, warmup: int = 5,
                    runs: int = 50) -> dict:
    """Median, p90 and p99 milliseconds of one inference (after ``warmup`` runs)."""
    model = TFLiteModel(model_path, num_threads=threads, xnnpack=xnnpack)
    for _ in range(warmup):
        model.run(crop)
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        model.run(crop)
        times.append((time.perf_counter() - t) * 1e3)
    times = np.array(times)
    return {"threads": threads, "delegate": model.delegate, "runtime": f"{model.runtime} {model.runtime_version}",
            "median_ms": float(np.median(times)), "p90_ms": float(np.percentile(times, 90)),
            "p99_ms": float(np.percentile(times, 99)), "runs": runs}


def parity(model: TFLiteModel, reference_file: Path, codec: HeatmapCodec) -> dict:
    """Agreement with the Keras model's heatmaps saved at export on the same crops."""
    if not reference_file.is_file():
        raise InputError("reference outputs not found", path=reference_file)
    ref = np.load(reference_file)
    for key in ("crops", "heatmaps", "weights"):
        if key not in ref:
            raise InputError("missing array", path=reference_file, field=key)
    ours = model(ref["crops"])
    if ours.shape != ref["heatmaps"].shape:
        raise InputError(f"model output {ours.shape[1:]} does not match the reference {ref['heatmaps'].shape[1:]}",
                         path=reference_file, field="heatmaps")
    diff = np.abs(ours - ref["heatmaps"])
    kp_ours, _ = codec.decode(ours)
    kp_ref, _ = codec.decode(ref["heatmaps"])
    cells = np.linalg.norm(kp_ours - kp_ref, axis=-1) / codec.stride
    visible = ref["weights"] > 0
    return {"crops": int(len(ours)), "max_abs_diff": float(diff.max()), "mean_abs_diff": float(diff.mean()),
            "joints_within_1_cell": float((cells[visible] <= 1.0).mean()) if visible.any() else float("nan"),
            "mean_joint_shift_cells": float(cells[visible].mean()) if visible.any() else float("nan")}


def validate(model_path: str | Path, annotations: str | Path | None = None, images: str | Path | None = None,
             out_dir: str | Path | None = None, reference: str | Path | None = None, threads=(1, 2),
             warmup: int = 5, runs: int = 50, overlays: int = 4, xnnpack: bool = True) -> dict:
    """Run every check that has its inputs; returns the report and writes report.json/.md (and overlays)."""
    model_path = Path(model_path)
    meta = tfl_metadata.read(model_path)
    try:
        codec = HeatmapCodec.from_dict(meta["codec"])
        skeleton = get_skeleton(meta["skeleton"])
        padding = float(meta.get("padding", 1.25))
    except (KeyError, TypeError, ValueError) as e:
        raise InputError(f"metadata is incomplete ({e})", path=model_path, field="codec/skeleton") from None
    model = TFLiteModel(model_path, num_threads=max(threads), xnnpack=xnnpack)
    if model.input_size != codec.input_size:
        raise InputError(f"model input {model.input_size} differs from the metadata's {codec.input_size}",
                         path=model_path, field="codec.input_size")
    report: dict = {
        "model": model_path.name, "size_bytes": model_path.stat().st_size, "metadata": meta,
        "runtime": f"{model.runtime} {model.runtime_version}", "machine": platform.machine(),
        "input": {"dtype": model.input.dtype.name, "shape": list(model.input.shape)},
        "output": {"dtype": model.output.dtype.name, "shape": list(model.output.shape)},
    }
    preds = None
    if annotations is not None:
        if images is None:
            raise InputError("--images is required with --annotations")
        dataset = load_coco(annotations, images, skeleton.num_keypoints)
        accuracy, preds = evaluate_predictor(model, dataset, codec, skeleton, padding)
        report["accuracy"] = accuracy
    reference = Path(reference) if reference else model_path.with_suffix(".reference.npz")
    if reference.is_file():
        report["parity"] = parity(model, reference, codec)
    crop = np.zeros((codec.input_size[1], codec.input_size[0], 3), np.uint8) if preds is None else preds.crops[0]
    report["latency"] = [measure_latency(model_path, crop, t, xnnpack, warmup, runs) for t in threads]
    report["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if out_dir is not None:
        out_dir = Path(out_dir)
        write_json(out_dir / "report.json", report)
        write_text(out_dir / "report.md", to_markdown(report))
        if preds is not None and overlays:
            write_overlays(preds, report["accuracy"]["per_person_oks"], skeleton, codec, out_dir, overlays)
    return report


def write_overlays(preds, per_person_oks, skeleton, codec, out_dir: Path, count: int) -> None:
    """best.png / worst.png: skeletons drawn on the best and worst crops by OKS."""
    from tfpose.data.transforms import apply_matrix, box_to_crop, crop_matrix

    order = np.argsort(per_person_oks)
    for name, picks in (("worst", order[:count]), ("best", order[::-1][:count])):
        tiles = []
        for i in picks:
            m = crop_matrix(box_to_crop(preds.persons[i].box, codec.input_size, 1.25), codec.input_size)
            kp = apply_matrix(preds.keypoints[i], m)
            tile = draw_skeleton(preds.crops[i], kp, preds.scores[i], skeleton, scale=2)
            cv2.putText(tile, f"OKS {per_person_oks[i]:.2f}", (4, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.45,
                        (255, 255, 255), 1, cv2.LINE_AA)
            tiles.append(tile)
        sheet = contact_sheet(tiles, columns=min(4, len(tiles)))
        ok, buf = cv2.imencode(".png", cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR))
        (out_dir / f"{name}.png").write_bytes(buf.tobytes())


def to_markdown(report: dict) -> str:
    lines = [f"# Validation of `{report['model']}`", "",
             f"- runtime: {report['runtime']} on {report['machine']}",
             f"- size: {report['size_bytes'] / 1024:.1f} KiB; input {report['input']['dtype']} "
             f"{report['input']['shape']}, output {report['output']['dtype']}", ""]
    if "accuracy" in report:
        a = report["accuracy"]
        lo, hi = a["AP_ci95"]
        lines += ["## Accuracy (ground-truth boxes)", "", "| metric | value |", "|---|---|"]
        lines += [f"| {k} | {a[k]:.3f} |" for k in ("AP", "AP50", "AP75", "AR", "PCK@0.2", "mean_OKS")]
        lines += [f"| AP 95 % CI (bootstrap over images) | {lo:.3f} - {hi:.3f} |", f"| persons | {a['persons']} |", ""]
    if "parity" in report:
        p = report["parity"]
        lines += ["## Parity with the Keras model", "",
                  f"- joints within one heatmap cell: {100 * p['joints_within_1_cell']:.1f} % of {p['crops']} crops",
                  f"- heatmap |diff|: max {p['max_abs_diff']:.4f}, mean {p['mean_abs_diff']:.4f}", ""]
    lines += ["## Latency", "", "| threads | delegate | median ms | p90 ms | p99 ms |", "|---|---|---|---|---|"]
    lines += [f"| {t['threads']} | {t['delegate']} | {t['median_ms']:.2f} | {t['p90_ms']:.2f} | {t['p99_ms']:.2f} |"
              for t in report["latency"]]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="tfpose-validate", description=__doc__.split("\n\n")[0])
    parser.add_argument("model", help="a .tflite exported by tfpose (metadata inside)")
    parser.add_argument("--annotations", help="COCO person_keypoints JSON")
    parser.add_argument("--images", help="folder of the images the annotations name")
    parser.add_argument("--reference", help="reference outputs saved at export (default: MODEL.reference.npz)")
    parser.add_argument("--out", help="folder for report.json, report.md and overlays")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--no-xnnpack", action="store_true", help="builtin kernels only")
    args = parser.parse_args(argv)
    try:
        report = validate(args.model, args.annotations, args.images, args.out, args.reference, tuple(args.threads),
                          args.warmup, args.runs, xnnpack=not args.no_xnnpack)
    except (TfposeError, ImportError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(to_markdown(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
