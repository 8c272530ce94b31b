"""Score any pose predictor on COCO (ground-truth or detected boxes) or MPII annotations (numpy + OpenCV only).

The Keras path and the on-device TFLite validator both go through ``predict_keypoints`` and the scorers here, so
their numbers are comparable by construction; a peer model differs only in its own crop size, padding and decoding.
Shape legend: N crops, K joints, H x W input pixels, h x w heatmap cells.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Literal

import numpy as np

from tfpose.codec import HeatmapCodec
from tfpose.data.coco import CocoDataset, ImageStore, Person, load_coco
from tfpose.data.detections import read_detections
from tfpose.data.mpii import MpiiDataset, load_mpii
from tfpose.data.transforms import apply_matrix, box_to_crop, crop_matrix, invert_matrix, warp_image
from tfpose.errors import InputError
from tfpose.metrics import MPII_UNSCORED, bootstrap_ci, coco_keypoint_eval, mpii_pckh, oks_matrix, oks_nms, pck
from tfpose.skeleton import COCO17, Skeleton

Predictor = Callable[[np.ndarray], np.ndarray]   # (N, H, W, 3) uint8 -> (N, h, w, K) float heatmaps
# (N, H, W, 3) uint8 -> keypoints (N, K, 2) input pixels, scores (N, K)
KeypointPredictor = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]


@dataclass
class Predictions:
    persons: list[Person]
    keypoints: np.ndarray     # (N, K, 2) image pixels
    scores: np.ndarray        # (N, K) confidences (heatmap peaks, or the model's own scores)
    crops: np.ndarray         # (N, H, W, 3) uint8, kept for overlays
    matrices: np.ndarray | None = None     # (N, 2, 3) image -> crop pixels
    box_scores: np.ndarray | None = None   # (N,) detector confidences; None for ground-truth boxes

    def coco_results(self, category_id: int = 1) -> list[dict]:
        """COCO keypoint results; score = box score x mean keypoint score (box score 1 for ground-truth boxes)."""
        box_scores = np.ones(len(self.persons)) if self.box_scores is None else self.box_scores
        out = []
        for p, kp, sc, bs in zip(self.persons, self.keypoints, self.scores, box_scores):
            flat = np.hstack([kp, sc[:, None]]).ravel()
            out.append({"image_id": p.image_id, "category_id": category_id, "keypoints": [float(v) for v in flat],
                        "score": float(bs * np.clip(sc, 0, None).mean())})
        return out

    def in_crops(self) -> np.ndarray:
        """(N, K, 2) keypoints in crop pixels, for drawing on ``crops``."""
        return np.stack([apply_matrix(kp, m) for kp, m in zip(self.keypoints, self.matrices)])


def crop_person(person: Person, images: ImageStore, codec: HeatmapCodec | tuple[int, int], padding: float):
    """(H, W, 3) uint8 crop and the (2, 3) image -> input matrix for one person box.

    codec: the heatmap codec, or just the (W, H) input size of a model that has none.
    """
    input_size = codec.input_size if isinstance(codec, HeatmapCodec) else tuple(int(v) for v in codec)
    matrix = crop_matrix(box_to_crop(person.box, input_size, padding), input_size)
    return warp_image(images(person.image_path), matrix, input_size), matrix


def predict_keypoints(predict: KeypointPredictor, persons: list[Person], input_size: tuple[int, int],
                      padding: float = 1.25, batch_size: int = 16, images: ImageStore | None = None,
                      box_scores: np.ndarray | None = None) -> Predictions:
    """Crop every person box to ``input_size`` (W, H), predict and map the keypoints back to image pixels."""
    if not persons:
        raise InputError("no person boxes to evaluate (empty dataset)")
    images = images or ImageStore()
    crops, matrices = zip(*(crop_person(p, images, input_size, padding) for p in persons))
    crops, matrices = np.stack(crops), np.stack(matrices)
    outputs = [predict(crops[i:i + batch_size]) for i in range(0, len(crops), batch_size)]
    keypoints = np.concatenate([o[0] for o in outputs])
    scores = np.concatenate([o[1] for o in outputs])
    in_image = np.stack([apply_matrix(kp, invert_matrix(m)) for kp, m in zip(keypoints, matrices)])
    return Predictions(list(persons), in_image.astype(np.float32), scores.astype(np.float32), crops, matrices,
                       box_scores)


def predict_persons(predict: Predictor, persons: list[Person], codec: HeatmapCodec, padding: float = 1.25,
                    batch_size: int = 16, images: ImageStore | None = None) -> Predictions:
    """Crop every person box, predict heatmaps, decode them with ``codec`` and map the keypoints to the image."""
    return predict_keypoints(lambda crops: codec.decode(predict(crops)), persons, codec.input_size, padding,
                             batch_size, images)


def score_predictions(preds: Predictions, dataset: CocoDataset, skeleton: Skeleton, seed: int = 0,
                      ap_resamples: int = 200) -> dict:
    """OKS AP family (pycocotools-equal), PCK@0.2 and per-person OKS with a bootstrap 95 % interval.

    ``ap_resamples``: image resamples of AP's interval, nine tenths of the cost; 0 leaves ``AP_ci95`` NaN (a
    learning curve's points)."""
    coco = coco_keypoint_eval(dataset.raw, preds.coco_results(), skeleton.oks_sigmas)
    truth = np.stack([p.keypoints for p in preds.persons])
    visible = np.stack([p.visibility > 0 for p in preds.persons])
    boxes = np.array([p.box[2:] for p in preds.persons])
    pck_all, pck_joint = pck(preds.keypoints, truth, visible, boxes, 0.2)
    # per person: how many of its labelled joints PCK@0.2 counts as hits, so paired bootstraps can pool them
    hits = (np.linalg.norm((preds.keypoints - truth) / np.maximum(boxes[:, None, :], 1e-6), axis=-1) < 0.2) & visible
    per_person = np.array([
        oks_matrix([{"keypoints": np.hstack([kp, np.ones((len(kp), 1))]).ravel()}],
                   [{"keypoints": np.hstack([p.keypoints, p.visibility[:, None]]).ravel(), "bbox": p.box,
                     "area": p.area}], skeleton.oks_sigmas)[0, 0]
        for p, kp in zip(preds.persons, preds.keypoints)])
    labelled = np.array([p.num_labelled > 0 for p in preds.persons])
    oks_labelled = per_person[labelled]
    lo, hi = bootstrap_ci(oks_labelled, seed=seed)
    ap_lo, ap_hi = _bootstrap_ap(dataset, preds.coco_results(), skeleton, seed, ap_resamples) if ap_resamples \
        else (float("nan"), float("nan"))
    return {
        **coco, "AP_ci95": [ap_lo, ap_hi], "PCK@0.2": pck_all,
        "PCK@0.2_per_joint": {n: (None if np.isnan(v) else float(v)) for n, v in zip(skeleton.keypoints, pck_joint)},
        "mean_OKS": float(oks_labelled.mean()) if oks_labelled.size else float("nan"), "mean_OKS_ci95": [lo, hi],
        "persons": int(labelled.sum()), "per_person_oks": [float(v) for v in per_person],
        "per_person_pck_hits": [int(v) for v in hits.sum(1)], "per_person_labelled": [int(v) for v in visible.sum(1)],
    }


def _image_resamples(dataset: CocoDataset, result_sets: list[list[dict]], seed: int, samples: int):
    """Yield ``samples`` bootstrap resamples of the images (with replacement), each as (ground truth, [results of
    each set]) renumbered so that an image drawn twice counts twice; the same draws for every result set."""
    anns_by_image: dict[int, list] = {}
    for a in dataset.raw["annotations"]:
        anns_by_image.setdefault(a["image_id"], []).append(a)
    by_image = []
    for results in result_sets:
        grouped: dict[int, list] = {}
        for r in results:
            grouped.setdefault(r["image_id"], []).append(r)
        by_image.append(grouped)
    # every image that can move AP: one with a prediction or with a person to find
    image_ids = sorted(set().union(*by_image) | {a["image_id"] for a in dataset.raw["annotations"]
                                                 if a.get("num_keypoints", 0)})
    if len(image_ids) < 2:
        return
    rng = np.random.default_rng(seed)
    for _ in range(samples):
        chosen = rng.choice(image_ids, len(image_ids), replace=True)
        images, anns, res = [], [], [[] for _ in result_sets]
        for new_id, old_id in enumerate(chosen, start=1):
            images.append({"id": new_id})
            anns += [{**a, "image_id": new_id, "id": len(anns) + k + 1} for k, a in enumerate(anns_by_image.get(old_id, []))]
            for out, grouped in zip(res, by_image):
                out += [{**r, "image_id": new_id} for r in grouped.get(old_id, [])]
        yield {"images": images, "annotations": anns}, res


def _bootstrap_ap(dataset: CocoDataset, results: list[dict], skeleton: Skeleton, seed: int,
                  samples: int = 200) -> tuple[float, float]:
    """95 % interval of AP by resampling images with replacement (AP is not a per-person mean)."""
    aps = [ap for truth, (res,) in _image_resamples(dataset, [results], seed, samples)
           if (ap := coco_keypoint_eval(truth, res, skeleton.oks_sigmas)["AP"]) >= 0]
    if not aps:
        return float("nan"), float("nan")
    lo, hi = np.percentile(aps, [2.5, 97.5])
    return float(lo), float(hi)


GAP_METRICS = ("AP", "mean_OKS", "PCK@0.2")


def gap_cells(gaps: dict) -> list[str]:
    """``paired_gaps`` as table cells, one per ``GAP_METRICS``: "+0.072 [-0.026, +0.151]"."""
    return [f"{gaps[k]['gap']:+.3f} [{gaps[k]['ci95'][0]:+.3f}, {gaps[k]['ci95'][1]:+.3f}]" for k in GAP_METRICS]


def paired_gaps(dataset: CocoDataset, a: dict, b: dict, results_a: list[dict], results_b: list[dict],
                skeleton: Skeleton = COCO17, seed: int = 0, samples: int = 1000) -> dict:
    """Model a minus model b on the same persons, with paired bootstrap 95 % intervals: mean OKS and pooled
    PCK@0.2 by resampling persons, AP by resampling images (200 draws). ``a``, ``b``: ``score_predictions`` dicts."""
    oks_a, oks_b = np.array(a["per_person_oks"]), np.array(b["per_person_oks"])
    hits_a, hits_b = np.array(a["per_person_pck_hits"]), np.array(b["per_person_pck_hits"])
    labelled = np.array(a["per_person_labelled"])
    if len(oks_a) != len(oks_b) or not np.array_equal(labelled, b["per_person_labelled"]):
        raise ValueError("paired gaps need both models scored on the same persons")
    rng = np.random.default_rng(seed)
    scored = labelled > 0
    oks_gap, pck_gap = [], []
    for _ in range(samples):
        i = rng.integers(0, len(oks_a), len(oks_a))
        keep = i[scored[i]]
        oks_gap.append(oks_a[keep].mean() - oks_b[keep].mean())
        pck_gap.append((hits_a[i].sum() - hits_b[i].sum()) / max(labelled[i].sum(), 1))
    ap_gap = [coco_keypoint_eval(truth, ra, skeleton.oks_sigmas)["AP"] - coco_keypoint_eval(truth, rb, skeleton.oks_sigmas)["AP"]
              for truth, (ra, rb) in _image_resamples(dataset, [results_a, results_b], seed, 200)]

    def gap(point, draws):
        lo, hi = np.percentile(draws, [2.5, 97.5]) if len(draws) else (np.nan, np.nan)
        return {"gap": float(point), "ci95": [float(lo), float(hi)]}

    return {"mean_OKS": gap(a["mean_OKS"] - b["mean_OKS"], oks_gap),
            "PCK@0.2": gap(a["PCK@0.2"] - b["PCK@0.2"], pck_gap), "AP": gap(a["AP"] - b["AP"], ap_gap)}


def evaluate_predictor(predict: Predictor, dataset: CocoDataset, codec: HeatmapCodec, skeleton: Skeleton,
                       padding: float = 1.25, batch_size: int = 16, min_keypoints: int = 1, ap_resamples: int = 200):
    """Predict on every labelled ground-truth box of ``dataset`` and score it (``score_predictions``). Returns
    (metrics, predictions)."""
    persons = dataset.labelled(min_keypoints)
    if not persons:
        raise InputError("no annotation with labelled keypoints (empty dataset)", path=dataset.annotation_file)
    preds = predict_persons(predict, persons, codec, padding, batch_size)
    return score_predictions(preds, dataset, skeleton, ap_resamples=ap_resamples), preds


# -- detected boxes ------------------------------------------------------------------------------------------------
def load_detections(path: str | Path, dataset: CocoDataset, min_score: float = 0.0) -> tuple[list[Person], np.ndarray]:
    """Person boxes of a COCO detection-results file ([{image_id, bbox, score, category_id}]) on ``dataset``'s images.

    Returns persons without keypoints and their (N,) box scores; a box on an image ``dataset`` does not know is an
    error that names it.
    """
    path = Path(path)
    k = COCO17.num_keypoints
    persons, scores = [], []
    # every box's image is checked, low-scoring ones too: a file made for other images fails whatever the threshold
    for det in read_detections(path, require=("image_id", "score")):
        if det.image_id not in dataset.images:
            raise InputError(f"image id {det.image_id} is not in {Path(dataset.annotation_file).name}", path=path,
                             field=f"{det.field}.image_id")
        if det.score < min_score or det.box[2] <= 1 or det.box[3] <= 1:
            continue
        persons.append(Person(det.image_id, -(det.entry + 1),
                              dataset.image_dir / dataset.images[det.image_id]["file_name"], det.box,
                              np.zeros((k, 2), np.float32), np.zeros(k, np.int64), det.box[2] * det.box[3]))
        scores.append(det.score)
    return persons, np.array(scores, np.float64)


def score_detections(preds: Predictions, dataset: CocoDataset, skeleton: Skeleton, nms_threshold: float | None = None,
                     seed: int = 0) -> dict:
    """OKS AP family on detected boxes (pycocotools-equal), after optional OKS NMS within each image."""
    results = detection_results(preds, skeleton, nms_threshold)
    coco = coco_keypoint_eval(dataset.raw, results, skeleton.oks_sigmas)
    ap_lo, ap_hi = _bootstrap_ap(dataset, results, skeleton, seed)
    return {**coco, "AP_ci95": [ap_lo, ap_hi], "detections": len(preds.persons), "scored": len(results),
            "oks_nms": nms_threshold,
            "persons": sum(a.get("num_keypoints", 0) > 0 for a in dataset.raw["annotations"]),
            "per_person_score": [r["score"] for r in preds.coco_results()]}


def detection_results(preds: Predictions, skeleton: Skeleton, nms_threshold: float | None = None) -> list[dict]:
    """The COCO results that are scored: one per box, score = box score x mean keypoint score, then OKS NMS."""
    results = preds.coco_results()
    if nms_threshold is None:
        return results
    areas = np.array([p.box[2] * p.box[3] for p in preds.persons])
    scores = np.array([r["score"] for r in results])
    by_image: dict[int, list[int]] = {}
    for i, p in enumerate(preds.persons):
        by_image.setdefault(p.image_id, []).append(i)
    keep = []
    for idx in map(np.array, by_image.values()):
        keep += idx[oks_nms(preds.keypoints[idx], scores[idx], areas[idx], skeleton.oks_sigmas, nms_threshold)].tolist()
    return [results[i] for i in sorted(keep)]


# -- MPII ----------------------------------------------------------------------------------------------------------
def joint_index(model: Skeleton, data: Skeleton) -> np.ndarray:
    """(K_data,) index of each dataset joint among the model's joints by name, -1 where the model has none."""
    names = {n: i for i, n in enumerate(model.keypoints)}
    return np.array([names.get(n, -1) for n in data.keypoints], np.int64)


def score_pckh(preds: Predictions, dataset: MpiiDataset, model_skeleton: Skeleton, threshold: float = 0.5,
               seed: int = 0) -> dict:
    """MPII PCKh on the joints the model predicts (matched by name), with a bootstrap 95 % interval over persons."""
    index = joint_index(model_skeleton, dataset.skeleton)
    predicted = index >= 0
    if not predicted.any():
        raise InputError(f"the model's joints ({model_skeleton.name}) share no name with MPII's")
    truth = np.stack([p.keypoints for p in preds.persons])
    head = np.array([dataset.head_sizes[p.ann_id] for p in preds.persons])
    scored = np.stack([p.visibility > 0 for p in preds.persons]) & predicted & np.isfinite(head)[:, None]
    res = mpii_pckh(preds.keypoints[:, np.maximum(index, 0)], truth, scored, np.nan_to_num(head, nan=1.0), threshold)
    hits, counts = res["hits"], res["counts"]
    lo, hi = bootstrap_ci(np.stack([hits, counts], 1)[counts > 0],
                          statistic=lambda a: a[:, 0].sum() / max(a[:, 1].sum(), 1), seed=seed)
    names = dataset.skeleton.keypoints
    return {
        f"PCKh@{threshold:g}": res["PCKh"], f"PCKh@{threshold:g}_ci95": [lo, hi], "PCKh@0.1": res["PCKh@0.1"],
        "PCKh_per_joint": {n: (None if np.isnan(v) else float(v)) for n, v in zip(names, res["per_joint"])},
        "PCKh_groups": {k: (None if np.isnan(v) else v) for k, v in res["groups"].items()},
        "joints_scored": [n for j, n in enumerate(names) if predicted[j] and j not in MPII_UNSCORED],
        "head_size": sorted({dataset.head_size_source[p.ann_id] for p in preds.persons}),
        "persons": int((counts > 0).sum()),
        "per_person_pckh": [float(h / c) if c else float("nan") for h, c in zip(hits, counts)],
    }


# -- one evaluation set for any model ------------------------------------------------------------------------------
@dataclass
class EvalSet:
    """The persons every model is scored on, and how: COCO OKS AP (+ PCK), COCO on detected boxes, or MPII PCKh."""
    kind: Literal["coco", "coco-detections", "mpii"]
    dataset: CocoDataset | MpiiDataset
    persons: list[Person]
    box_scores: np.ndarray | None = None
    nms_threshold: float | None = None
    images: ImageStore | None = None

    @property
    def headline(self) -> str:
        """The metric that ranks models on this set."""
        return "PCKh@0.5" if self.kind == "mpii" else "AP"

    @property
    def per_person_key(self) -> str:
        return {"coco": "per_person_oks", "coco-detections": "per_person_score", "mpii": "per_person_pckh"}[self.kind]

    def results(self, preds: Predictions) -> list[dict]:
        """The COCO-format results this set scores (for pycocotools or any other tool)."""
        if self.kind == "coco-detections":
            return detection_results(preds, COCO17, self.nms_threshold)
        return preds.coco_results()

    def describe(self) -> dict:
        return {"kind": self.kind, "annotations": str(self.dataset.annotation_file),
                "images": str(self.dataset.image_dir),
                "boxes": "detections" if self.kind == "coco-detections" else "ground truth",
                "crops": len(self.persons), "headline": self.headline}

    def evaluate(self, predict: KeypointPredictor, skeleton: Skeleton, input_size: tuple[int, int], padding: float,
                 batch_size: int = 16) -> tuple[dict, Predictions]:
        """Crop, predict and score one model. skeleton: the joints the model predicts."""
        self.images = self.images or ImageStore()
        if self.kind != "mpii" and skeleton.keypoints != COCO17.keypoints:
            raise InputError(f"COCO keypoint AP needs a coco17 model; this one predicts {skeleton.name} joints")
        preds = predict_keypoints(predict, self.persons, input_size, padding, batch_size, self.images, self.box_scores)
        if self.kind == "mpii":
            return score_pckh(preds, self.dataset, skeleton), preds
        if self.kind == "coco-detections":
            return score_detections(preds, self.dataset, COCO17, self.nms_threshold), preds
        return score_predictions(preds, self.dataset, COCO17), preds


def load_eval_set(annotations: str | Path, images: str | Path, detections: str | Path | None = None,
                  split: Literal["all", "train", "val"] = "all", val_fraction: float = 0.3, split_seed: int = 0,
                  min_keypoints: int = 1, det_min_score: float = 0.0, nms_threshold: float | None = None) -> EvalSet:
    """Read COCO keypoints (a JSON object) or MPII (a JSON list) annotations and choose the persons to score.

    split: "train"/"val" take that side of ``CocoDataset.split(val_fraction, split_seed)`` (by image), so every
    tool scores the same persons; detections: a COCO detection-results file whose boxes replace the ground truth's.
    """
    annotations = Path(annotations)
    if _is_mpii(annotations):
        if detections is not None or split != "all":
            raise InputError("detections and --split apply to COCO annotations, not MPII", path=annotations)
        dataset = load_mpii(annotations, images)
        persons = dataset.labelled(min_keypoints)
        if not persons:
            raise InputError("no annotation with labelled joints (empty dataset)", path=annotations)
        return EvalSet("mpii", dataset, persons)
    full = dataset = load_coco(annotations, images, COCO17.num_keypoints)
    if split != "all":
        train, val = dataset.split(val_fraction, split_seed)
        dataset = val if split == "val" else train
    if detections is not None:
        persons, box_scores = load_detections(detections, full, det_min_score)
        on_split = np.array([p.image_id in dataset.images for p in persons], bool)
        persons, box_scores = [p for p, ok in zip(persons, on_split) if ok], box_scores[on_split]
        if not persons:
            raise InputError("no detected person box on the evaluated images (empty dataset)", path=detections)
        return EvalSet("coco-detections", dataset, persons, box_scores, nms_threshold)
    persons = dataset.labelled(min_keypoints)
    if not persons:
        raise InputError("no annotation with labelled keypoints (empty dataset)", path=annotations)
    return EvalSet("coco", dataset, persons)


def _is_mpii(path: Path) -> bool:
    """MPII files are JSON lists; COCO files are objects (the first non-blank character tells)."""
    if not path.is_file():
        raise InputError("annotation file not found", path=path)
    with open(path, "rb") as f:
        head = f.read(4096).lstrip()
    return head[:1] == b"["
