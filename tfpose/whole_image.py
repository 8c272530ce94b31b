"""Whole-image pose: every person of a photo, from a person detector and a top-down pose model (``TopDown``) or
from a one-pass multi-person model, and their scoring by the COCO protocol (numpy + OpenCV only).

``tfpose predict``, the validator and the benchmarks all go through ``TopDown`` and ``score_whole_images``.
Shape legend: N persons, K joints, H x W model input pixels; boxes are [x, y, w, h] image pixels.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

import numpy as np

from tfpose.data.coco import CocoDataset, ImageStore
from tfpose.data.transforms import apply_matrix, box_to_crop, crop_matrix, invert_matrix, warp_image
from tfpose.evaluation import _bootstrap_ap, _image_resamples
from tfpose.metrics import coco_box_eval, coco_keypoint_eval
from tfpose.skeleton import COCO17, Skeleton


@dataclass
class PoseModel:
    """Crops (N, H, W, 3) uint8 -> keypoints (N, K, 2) in crop pixels and scores (N, K)."""

    name: str
    predict: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]
    input_size: tuple[int, int]   # (W, H)
    padding: float
    skeleton: Skeleton


@dataclass
class PosedPerson:
    """One person of a whole image: box (4,) and keypoints (K, 2) in image pixels, joint scores (K,)."""

    box: np.ndarray
    box_score: float
    keypoints: np.ndarray
    scores: np.ndarray

    @property
    def score(self) -> float:
        """What COCO ranks a person by: box score x mean joint score."""
        return float(self.box_score * np.clip(self.scores, 0, None).mean())


WholeImageModel = Callable[[np.ndarray], list[PosedPerson]]


def estimate(model: PoseModel, image: np.ndarray, boxes) -> tuple[np.ndarray, np.ndarray]:
    """Keypoints (N, K, 2) in frame pixels and scores (N, K) for the N boxes of one frame (H, W, 3)."""
    if not len(boxes):
        return np.zeros((0, model.skeleton.num_keypoints, 2), np.float32), np.zeros((0, 0), np.float32)
    matrices = [crop_matrix(box_to_crop(b, model.input_size, model.padding), model.input_size) for b in boxes]
    crops = np.stack([warp_image(image, m, model.input_size) for m in matrices])
    keypoints, scores = model.predict(crops)
    in_frame = np.stack([apply_matrix(kp, invert_matrix(m)) for kp, m in zip(keypoints, matrices)])
    # a padded crop reaches past the frame, where it is black: a joint found there is clamped to the frame's edge
    h, w = image.shape[:2]
    in_frame = np.clip(in_frame, 0, [w - 1, h - 1])
    return in_frame.astype(np.float32), np.asarray(scores, np.float32)


class TopDown:
    """A person detector, then ``pose`` on each of its boxes scoring at least ``min_score`` (at most
    ``max_persons``, best first): image (H, W, 3) uint8 RGB -> posed persons."""

    def __init__(self, detector, pose: PoseModel, min_score: float = 0.3, max_persons: int = 20):
        self.detector, self.pose = detector, pose
        self.min_score, self.max_persons = min_score, max_persons

    @property
    def name(self) -> str:
        return f"{self.detector.name} + {self.pose.name}"

    def __call__(self, image: np.ndarray) -> list[PosedPerson]:
        found = self.detector(image, self.min_score)
        boxes, box_scores = found.boxes[: self.max_persons], found.scores[: self.max_persons]
        keypoints, scores = estimate(self.pose, image, boxes)
        return [PosedPerson(np.asarray(b, np.float64), float(s), kp, sc)
                for b, s, kp, sc in zip(boxes, box_scores, keypoints, scores)]


def coco_results(image_id: int, persons: list[PosedPerson], category_id: int = 1) -> list[dict]:
    """COCO keypoint results of one image, as pycocotools reads them."""
    return [{"image_id": int(image_id), "category_id": category_id,
             "keypoints": [round(float(v), 2) for v in np.hstack([p.keypoints, p.scores[:, None]]).ravel()],
             "score": round(p.score, 5)} for p in persons]


def crowd_size(dataset: CocoDataset, image_id: int) -> int:
    """People in a photo: its non-crowd person annotations, labelled or not."""
    return sum(1 for a in dataset.raw["annotations"]
               if a["image_id"] == image_id and not a.get("iscrowd", 0) and a.get("category_id", 1) == 1)


def run_whole_images(model: WholeImageModel, dataset: CocoDataset, images: ImageStore) -> dict:
    """``model`` on every image of ``dataset``: its COCO results, person boxes and ms per image (by image id)."""
    results, boxes, ms = [], [], {}
    for image_id in sorted(dataset.images):
        image = images(dataset.image_dir / dataset.images[image_id]["file_name"])
        start = time.perf_counter()
        persons = model(image)
        ms[image_id] = 1000 * (time.perf_counter() - start)
        results += coco_results(image_id, persons)
        boxes += [{"image_id": int(image_id), "category_id": 1, "bbox": [float(v) for v in p.box],
                   "score": float(p.box_score)} for p in persons]
    return {"results": results, "boxes": boxes, "ms": ms}


def score_whole_images(runs: dict[str, dict], dataset: CocoDataset, skeleton: Skeleton = COCO17, seed: int = 0,
                       crowd_groups: dict[str, tuple[int, int]] | None = None) -> dict:
    """COCO keypoint AP of each model's whole-image results (``run_whole_images``), with a bootstrap interval
    over images, its median ms per image, the same on groups of photos by how many people they hold, and the
    paired AP gap of the first model against each other one."""
    crowd_groups = crowd_groups or {"1 person": (1, 1), "5+ persons": (5, 10**6)}
    sizes = {i: crowd_size(dataset, i) for i in dataset.images}
    out = {"models": {}, "gaps": {}, "images": len(dataset.images),
           "persons": sum(a.get("num_keypoints", 0) > 0 for a in dataset.raw["annotations"])}
    for name, run in runs.items():
        metrics = coco_keypoint_eval(dataset.raw, run["results"], skeleton.oks_sigmas)
        lo, hi = _bootstrap_ap(dataset, run["results"], skeleton, seed)
        entry = {**metrics, "AP_ci95": [lo, hi], "ms_per_image": float(np.median(list(run["ms"].values()))),
                 "boxes": coco_box_eval(dataset.raw, run["boxes"]) if run["boxes"] else None, "groups": {}}
        for group, (low, high) in crowd_groups.items():
            ids = [i for i, n in sizes.items() if low <= n <= high]
            if not ids:
                continue
            part = dataset.subset(np.array(ids))
            kept = [r for r in run["results"] if r["image_id"] in part.images]
            entry["groups"][group] = {"images": len(ids), "AP": coco_keypoint_eval(part.raw, kept,
                                                                                   skeleton.oks_sigmas)["AP"],
                                      "ms_per_image": float(np.median([run["ms"][i] for i in ids]))}
        out["models"][name] = entry
    names = list(runs)
    for other in names[1:]:
        first, second = runs[names[0]]["results"], runs[other]["results"]
        draws = [coco_keypoint_eval(truth, a, skeleton.oks_sigmas)["AP"] - coco_keypoint_eval(truth, b,
                 skeleton.oks_sigmas)["AP"] for truth, (a, b) in _image_resamples(dataset, [first, second], seed, 200)]
        point = out["models"][names[0]]["AP"] - out["models"][other]["AP"]
        lo, hi = np.percentile(draws, [2.5, 97.5]) if draws else (np.nan, np.nan)
        out["gaps"][other] = {"AP": {"gap": float(point), "ci95": [float(lo), float(hi)]}}
    return out
