"""The validator's whole-image checks, no TensorFlow: a person detector's own accuracy (person AP50, AP, recall and
precision against COCO boxes, int8 beside float), and keypoint AP on detected people by the COCO protocol for
detector + each pose model and for one-pass multi-person peers (MoveNet MultiPose).

Shape legend: boxes are [x, y, w, h] image pixels.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from tflite.benchmark import benchmark
from tflite.detector import MultiPoseModel, TFLiteDetector
from tflite.runtime import TFLiteModel
from tfpose.data.coco import CocoDataset, ImageStore
from tfpose.detection import box_iou, letterbox
from tfpose.metrics import coco_box_eval
from tfpose.whole_image import TopDown, run_whole_images, score_whole_images

OPERATING_SCORE = 0.3     # the box score `tfpose predict` draws from


def is_multipose(path: str | Path) -> bool:
    """Whether a .tflite is a one-pass multi-person model (MoveNet MultiPose's signature)."""
    return MultiPoseModel.accepts(TFLiteModel(path))


def detection_accuracy(detector: TFLiteDetector, dataset: CocoDataset, images: ImageStore,
                       operating_score: float = OPERATING_SCORE) -> tuple[dict, list[dict]]:
    """Person box AP family (pycocotools-equal) of ``detector`` on ``dataset``, recall and precision at IoU 0.5 of
    the boxes scoring at least ``operating_score``, and ms per image (letterbox + invoke + decoding)."""
    results, ms = [], []
    for image_id in sorted(dataset.images):
        image = images(dataset.image_dir / dataset.images[image_id]["file_name"])
        start = time.perf_counter()
        found = detector(image)
        ms.append(1000 * (time.perf_counter() - start))
        results += [{"image_id": int(image_id), "category_id": 1, "bbox": [float(v) for v in b], "score": float(s)}
                    for b, s in zip(found.boxes, found.scores)]
    accuracy = {**coco_box_eval(dataset.raw, results), **recall_precision(dataset, results, operating_score),
                "operating_score": operating_score, "images": len(dataset.images),
                "ms_per_image": float(np.median(ms))}
    return accuracy, results


def recall_precision(dataset: CocoDataset, results: list[dict], min_score: float, iou: float = 0.5) -> dict:
    """Share of non-crowd person boxes found (IoU >= ``iou``, each box matched once, best score first) and share of
    the boxes scoring at least ``min_score`` that found one."""
    truths: dict[int, list] = {}
    for a in dataset.raw["annotations"]:
        if a.get("category_id", 1) == 1 and not a.get("iscrowd", 0):
            truths.setdefault(a["image_id"], []).append(a["bbox"])
    found = kept = 0
    for image_id in dataset.images:
        boxes = sorted((r for r in results if r["image_id"] == image_id and r["score"] >= min_score),
                       key=lambda r: -r["score"])
        kept += len(boxes)
        free = list(truths.get(image_id, []))
        for r in boxes:
            if not free:
                break
            overlap = box_iou(np.array([r["bbox"]]), np.array(free))[0]
            best = int(np.argmax(overlap))
            if overlap[best] >= iou:
                free.pop(best)
                found += 1
    persons = sum(len(v) for v in truths.values())
    return {"recall": found / persons if persons else float("nan"), "precision": found / kept if kept else float("nan"),
            "persons": persons}


def detector_report(paths: list[str | Path], dataset: CocoDataset, threads, xnnpack, warmup: int, runs: int,
                    runtime: str | None, isolate: bool) -> dict:
    """Each detector's accuracy and latency on ``dataset`` (the first is the one validated, the rest peers such
    as its float version), and the agreement of the first's boxes with every other's."""
    images = ImageStore()
    entries, all_results = [], []
    for path in paths:
        detector = TFLiteDetector(path, num_threads=max(threads), xnnpack=xnnpack[0], runtime=runtime)
        accuracy, results = detection_accuracy(detector, dataset, images)
        image = images(dataset.image_dir / dataset.images[sorted(dataset.images)[0]]["file_name"])
        square = letterbox(image, detector.codec.input_size)[0]
        latency = benchmark(detector.path, square, threads, xnnpack, warmup, runs, detector.model.runtime, isolate) \
            if runs > 0 else []
        entries.append({"model": detector.name, "path": str(detector.path), "family": detector.family,
                        "size_bytes": detector.path.stat().st_size, "runtime": detector.model.runtime_label,
                        "quantization": detector.meta.get("quantization"), "detection": accuracy,
                        "latency": latency})
        all_results.append(results)
    for entry, results in zip(entries[1:], all_results[1:]):
        entry["agreement_with_first"] = box_agreement(all_results[0], results, OPERATING_SCORE)
    return {"entries": entries}


def box_agreement(a: list[dict], b: list[dict], min_score: float, iou: float = 0.5) -> dict:
    """How many of ``b``'s boxes scoring at least ``min_score`` ``a`` found too (IoU >= ``iou``), and the reverse."""
    def share(x, y):
        hits = total = 0
        for image_id in {r["image_id"] for r in x}:
            xs = [r["bbox"] for r in x if r["image_id"] == image_id and r["score"] >= min_score]
            ys = [r["bbox"] for r in y if r["image_id"] == image_id and r["score"] >= min_score]
            total += len(xs)
            if xs and ys:
                hits += int((box_iou(np.array(xs), np.array(ys)).max(1) >= iou).sum())
        return hits / total if total else float("nan")
    return {"first_found_by_other": share(a, b), "other_found_by_first": share(b, a), "min_score": min_score}


def whole_image_report(detector_path: str | Path, pose_adapters: list, multipose: list[str | Path],
                       dataset: CocoDataset, threads: int, runtime: str | None, min_score: float) -> dict:
    """Keypoint AP on whole images by the COCO protocol: detector + each pose model, then each MultiPose peer,
    with ms per image on ``threads`` threads and the paired AP gap of the first against each other."""
    detector = TFLiteDetector(detector_path, num_threads=threads, runtime=runtime)
    images = ImageStore()
    runs = {}
    for adapter in pose_adapters:
        model = TopDown(detector, adapter, min_score)
        runs[model.name] = run_whole_images(model, dataset, images)
    for path in multipose:
        model = MultiPoseModel(path, num_threads=threads, runtime=runtime)
        runs[model.name] = run_whole_images(lambda image, m=model: m(image, min_score), dataset, images)
    scored = score_whole_images(runs, dataset)
    scored.update({"detector": detector.name, "min_box_score": min_score, "threads": threads})
    return scored


def whole_image_markdown(w: dict) -> list[str]:
    lines = [f"## Whole images: detector {w['detector']} (boxes scoring >= {w['min_box_score']:g}), COCO protocol",
             "", f"{w['images']} images, {w['persons']} labelled persons; ms per image on {w['threads']} thread(s), "
             "median; AP 95 % interval by bootstrap over images.", "",
             "| model | keypoint AP [95 % CI] | AP50 | AR | person box AP50 | ms / image | 1-person photos: AP, ms | "
             "5+ persons: AP, ms |", "|---|---|---|---|---|---|---|---|"]
    for name, m in w["models"].items():
        lo, hi = m["AP_ci95"]
        groups = [m["groups"].get(g) for g in ("1 person", "5+ persons")]
        box = "" if m["boxes"] is None else f"{m['boxes']['AP50']:.3f}"
        lines.append(f"| {name} | {m['AP']:.3f} [{lo:.3f}, {hi:.3f}] | {m['AP50']:.3f} | {m['AR']:.3f} | {box} | "
                     f"{m['ms_per_image']:.1f} | " + " | ".join(
                         "" if g is None else f"{g['AP']:.3f}, {g['ms_per_image']:.0f} ({g['images']} photos)"
                         for g in groups) + " |")
    if w["gaps"]:
        first = next(iter(w["models"]))
        lines += ["", f"Paired AP gaps, {first} minus each (bootstrap over images, 200 draws):", ""]
        lines += [f"- {other}: {g['AP']['gap']:+.3f} [{g['AP']['ci95'][0]:+.3f}, {g['AP']['ci95'][1]:+.3f}]"
                  for other, g in w["gaps"].items()]
    return lines + [""]


def detector_markdown(d: dict) -> list[str]:
    lines = ["## Person detection (COCO boxes, pycocotools-equal)", "",
             "| model | quantization | size MiB | person AP50 | AP | AR | recall / precision at score >= "
             f"{OPERATING_SCORE:g} | ms / image (all) | 1-thread invoke ms |", "|---|---|---|---|---|---|---|---|---|"]
    for e in d["entries"]:
        a = e["detection"]
        one = next((lat["median_ms"] for lat in e["latency"] if lat["threads"] == 1 and lat["xnnpack"]), None)
        lines.append(f"| {e['model']} | {e['quantization']} | {e['size_bytes'] / 2**20:.2f} | {a['AP50']:.3f} | "
                     f"{a['AP']:.3f} | {a['AR']:.3f} | {a['recall']:.3f} / {a['precision']:.3f} | "
                     f"{a['ms_per_image']:.1f} | {'' if one is None else f'{one:.1f}'} |")
    for e in d["entries"][1:]:
        g = e["agreement_with_first"]
        lines.append(f"\n- {d['entries'][0]['model']} found {100 * g['other_found_by_first']:.1f} % of {e['model']}'s "
                     f"boxes and it {100 * g['first_found_by_other']:.1f} % of its (score >= {g['min_score']:g}, "
                     "IoU >= 0.5)")
    return lines + [""]
