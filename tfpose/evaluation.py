"""Score any heatmap predictor on a COCO-format dataset (numpy + OpenCV only).

The Keras path and the on-device TFLite validator both go through ``evaluate_predictor``, so their numbers
are comparable by construction. Shape legend: N crops, K joints, H x W input pixels, h x w heatmap cells.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from tfpose.codec import HeatmapCodec
from tfpose.data.coco import CocoDataset, ImageStore, Person
from tfpose.data.transforms import apply_matrix, box_to_crop, crop_matrix, invert_matrix, warp_image
from tfpose.errors import InputError
from tfpose.metrics import bootstrap_ci, coco_keypoint_eval, oks_matrix, pck
from tfpose.skeleton import Skeleton

Predictor = Callable[[np.ndarray], np.ndarray]   # (N, H, W, 3) uint8 -> (N, h, w, K) float heatmaps


@dataclass
class Predictions:
    persons: list[Person]
    keypoints: np.ndarray     # (N, K, 2) image pixels
    scores: np.ndarray        # (N, K) heatmap peak values
    crops: np.ndarray         # (N, H, W, 3) uint8, kept for overlays

    def coco_results(self, category_id: int = 1) -> list[dict]:
        out = []
        for p, kp, sc in zip(self.persons, self.keypoints, self.scores):
            flat = np.hstack([kp, sc[:, None]]).ravel()
            out.append({"image_id": p.image_id, "category_id": category_id,
                        "keypoints": [float(v) for v in flat], "score": float(np.clip(sc, 0, None).mean())})
        return out


def crop_person(person: Person, images: ImageStore, codec: HeatmapCodec, padding: float):
    """(H, W, 3) uint8 crop and the (2, 3) image -> input matrix for one person box."""
    matrix = crop_matrix(box_to_crop(person.box, codec.input_size, padding), codec.input_size)
    return warp_image(images(person.image_path), matrix, codec.input_size), matrix


def predict_persons(predict: Predictor, persons: list[Person], codec: HeatmapCodec, padding: float = 1.25,
                    batch_size: int = 16, images: ImageStore | None = None) -> Predictions:
    """Crop every person box, predict, decode and map the keypoints back to image pixels."""
    if not persons:
        raise InputError("no person boxes to evaluate (empty dataset)")
    images = images or ImageStore()
    crops, matrices = zip(*(crop_person(p, images, codec, padding) for p in persons))
    crops = np.stack(crops)
    heatmaps = np.concatenate([predict(crops[i:i + batch_size]) for i in range(0, len(crops), batch_size)])
    keypoints, scores = codec.decode(heatmaps)
    in_image = np.stack([apply_matrix(kp, invert_matrix(m)) for kp, m in zip(keypoints, matrices)])
    return Predictions(list(persons), in_image.astype(np.float32), scores, crops)


def score_predictions(preds: Predictions, dataset: CocoDataset, skeleton: Skeleton, seed: int = 0) -> dict:
    """OKS AP family (pycocotools-equal), PCK@0.2 and per-person OKS with a bootstrap 95 % interval."""
    coco = coco_keypoint_eval(dataset.raw, preds.coco_results(), skeleton.oks_sigmas)
    truth = np.stack([p.keypoints for p in preds.persons])
    visible = np.stack([p.visibility > 0 for p in preds.persons])
    boxes = np.array([p.box[2:] for p in preds.persons])
    pck_all, pck_joint = pck(preds.keypoints, truth, visible, boxes, 0.2)
    per_person = np.array([
        oks_matrix([{"keypoints": np.hstack([kp, np.ones((len(kp), 1))]).ravel()}],
                   [{"keypoints": np.hstack([p.keypoints, p.visibility[:, None]]).ravel(), "bbox": p.box,
                     "area": p.area}], skeleton.oks_sigmas)[0, 0]
        for p, kp in zip(preds.persons, preds.keypoints)])
    labelled = np.array([p.num_labelled > 0 for p in preds.persons])
    oks_labelled = per_person[labelled]
    lo, hi = bootstrap_ci(oks_labelled, seed=seed)
    ap_lo, ap_hi = _bootstrap_ap(dataset, preds, skeleton, seed)
    return {
        **coco, "AP_ci95": [ap_lo, ap_hi], "PCK@0.2": pck_all,
        "PCK@0.2_per_joint": {n: (None if np.isnan(v) else float(v)) for n, v in zip(skeleton.keypoints, pck_joint)},
        "mean_OKS": float(oks_labelled.mean()) if oks_labelled.size else float("nan"), "mean_OKS_ci95": [lo, hi],
        "persons": int(labelled.sum()), "per_person_oks": [float(v) for v in per_person],
    }


def _bootstrap_ap(dataset: CocoDataset, preds: Predictions, skeleton: Skeleton, seed: int,
                  samples: int = 200) -> tuple[float, float]:
    """95 % interval of AP by resampling images with replacement (AP is not a per-person mean)."""
    results = preds.coco_results()
    by_image: dict[int, list] = {}
    for r in results:
        by_image.setdefault(r["image_id"], []).append(r)
    anns_by_image: dict[int, list] = {}
    for a in dataset.raw["annotations"]:
        anns_by_image.setdefault(a["image_id"], []).append(a)
    image_ids = sorted({p.image_id for p in preds.persons})
    if len(image_ids) < 2:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    aps = []
    for _ in range(samples):
        chosen = rng.choice(image_ids, len(image_ids), replace=True)
        images, anns, res = [], [], []
        for new_id, old_id in enumerate(chosen, start=1):
            images.append({"id": new_id})
            anns += [{**a, "image_id": new_id, "id": len(anns) + k + 1} for k, a in enumerate(anns_by_image.get(old_id, []))]
            res += [{**r, "image_id": new_id} for r in by_image.get(old_id, [])]
        ap = coco_keypoint_eval({"images": images, "annotations": anns}, res, skeleton.oks_sigmas)["AP"]
        if ap >= 0:
            aps.append(ap)
    if not aps:
        return float("nan"), float("nan")
    lo, hi = np.percentile(aps, [2.5, 97.5])
    return float(lo), float(hi)


def evaluate_predictor(predict: Predictor, dataset: CocoDataset, codec: HeatmapCodec, skeleton: Skeleton,
                       padding: float = 1.25, batch_size: int = 16, min_keypoints: int = 1):
    """Predict on every labelled ground-truth box of ``dataset`` and score it. Returns (metrics, predictions)."""
    persons = dataset.labelled(min_keypoints)
    if not persons:
        raise InputError("no annotation with labelled keypoints (empty dataset)", path=dataset.annotation_file)
    preds = predict_persons(predict, persons, codec, padding, batch_size)
    return score_predictions(preds, dataset, skeleton), preds
