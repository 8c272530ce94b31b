"""Pose accuracy metrics in numpy: COCO OKS AP/AR (the same numbers as pycocotools' COCOeval), PCK and PCKh.

``coco_keypoint_eval`` re-implements COCOeval(iouType='keypoints') step for step, so the on-device validator
needs no pycocotools; a test holds it equal to pycocotools on real annotations. It reads no ground-truth field
that the COCO reader lets a file leave out (``_truth``).
Shape legend: K joints; keypoint lists are COCO's flat [x1, y1, v1, ..., xK, yK, vK].
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np

IOU_THRESHOLDS = np.linspace(0.5, 0.95, 10)
RECALL_THRESHOLDS = np.linspace(0.0, 1.0, 101)
AREA_RANGES = {"all": (0.0, 1e10), "medium": (32.0**2, 96.0**2), "large": (96.0**2, 1e10)}
MAX_DETS = 20


def truth_area(box) -> float:
    """The area of a ground truth that gives none: its box's w x h, as pycocotools' ``COCO.loadRes`` takes it for
    a box (a negative side counts as 0). box: [x, y, w, h] pixels."""
    return max(float(box[2]), 0.0) * max(float(box[3]), 0.0)


def _truth(ann: dict, num_keypoints: int) -> dict:
    """A reader-checked ground-truth annotation with what the scorer reads filled in where the file leaves it
    out: ``area`` from the box (``truth_area``), ``keypoints`` unlabelled. pycocotools would stop with a KeyError
    instead; it also marks a match with the ground truth's ``id``, which is not read here (an ``id`` of 0 makes
    pycocotools count its match a false positive)."""
    filled = {"keypoints": [0] * (3 * num_keypoints), **ann}
    if "area" not in ann:
        filled["area"] = truth_area(ann["bbox"])
    return filled


def oks_matrix(detections: list[dict], truths: list[dict], sigmas: np.ndarray) -> np.ndarray:
    """(D, G) object keypoint similarity, as COCOeval.computeOks (detections already score-sorted)."""
    ious = np.zeros((len(detections), len(truths)))
    variances = (np.asarray(sigmas) * 2) ** 2
    k = len(sigmas)
    for j, gt in enumerate(truths):
        g = np.asarray(gt["keypoints"], np.float64)
        xg, yg, vg = g[0::3], g[1::3], g[2::3]
        k1 = np.count_nonzero(vg > 0)
        bx, by, bw, bh = gt["bbox"]
        x0, x1, y0, y1 = bx - bw, bx + bw * 2, by - bh, by + bh * 2
        for i, dt in enumerate(detections):
            d = np.asarray(dt["keypoints"], np.float64)
            xd, yd = d[0::3], d[1::3]
            if k1 > 0:
                dx, dy = xd - xg, yd - yg
            else:
                z = np.zeros(k)
                dx = np.maximum(z, x0 - xd) + np.maximum(z, xd - x1)
                dy = np.maximum(z, y0 - yd) + np.maximum(z, yd - y1)
            e = (dx**2 + dy**2) / variances / (gt["area"] + np.spacing(1)) / 2
            if k1 > 0:
                e = e[vg > 0]
            ious[i, j] = np.sum(np.exp(-e)) / e.shape[0]
    return ious


def _prepare_detections(results: list[dict]) -> list[dict]:
    """What COCO.loadRes adds to keypoint results: an id, and the area and box of the keypoints' extent."""
    out = []
    for i, r in enumerate(results):
        s = np.asarray(r["keypoints"], np.float64)
        x, y = s[0::3], s[1::3]
        x0, x1, y0, y1 = np.min(x), np.max(x), np.min(y), np.max(y)
        out.append({**r, "id": i + 1, "area": (x1 - x0) * (y1 - y0), "bbox": [x0, y0, x1 - x0, y1 - y0],
                    "iscrowd": 0})
    return out


def _evaluate_image(gts, dts, ious, area_range, max_dets: int = MAX_DETS):
    if not gts and not dts:
        return None
    gt_ignore = np.array([int(g["ignore"] or not (area_range[0] <= g["area"] <= area_range[1])) for g in gts])
    gt_order = np.argsort(gt_ignore, kind="mergesort")
    gts = [gts[i] for i in gt_order]
    gt_ignore = gt_ignore[gt_order]
    dt_order = np.argsort([-d["score"] for d in dts], kind="mergesort")
    dts = [dts[i] for i in dt_order[:max_dets]]
    iscrowd = [int(g.get("iscrowd", 0)) for g in gts]
    ious = ious[:, gt_order] if len(ious) else ious
    t, g, d = len(IOU_THRESHOLDS), len(gts), len(dts)
    gt_matched = np.zeros((t, g))
    dt_matched = np.zeros((t, d))
    dt_ignore = np.zeros((t, d))
    if len(ious):
        for ti, thr in enumerate(IOU_THRESHOLDS):
            for di in range(d):
                best = min(thr, 1 - 1e-10)
                m = -1
                for gi in range(g):
                    if gt_matched[ti, gi] > 0 and not iscrowd[gi]:
                        continue
                    if m > -1 and gt_ignore[m] == 0 and gt_ignore[gi] == 1:
                        break
                    if ious[di, gi] < best:
                        continue
                    best = ious[di, gi]
                    m = gi
                if m == -1:
                    continue
                dt_ignore[ti, di] = gt_ignore[m]
                dt_matched[ti, di] = 1
                gt_matched[ti, m] = 1
    outside = np.array([not (area_range[0] <= dd["area"] <= area_range[1]) for dd in dts]).reshape(1, d)
    dt_ignore = np.logical_or(dt_ignore, np.logical_and(dt_matched == 0, np.repeat(outside, t, 0)))
    return {"scores": np.array([dd["score"] for dd in dts]), "matched": dt_matched, "dt_ignore": dt_ignore,
            "gt_ignore": gt_ignore}


def _accumulate(evals, max_dets: int = MAX_DETS):
    """(T, R) precision and (T,) recall over images, as COCOeval.accumulate (one category, ``max_dets``)."""
    precision = -np.ones((len(IOU_THRESHOLDS), len(RECALL_THRESHOLDS)))
    recall = -np.ones(len(IOU_THRESHOLDS))
    evals = [e for e in evals if e is not None]
    if not evals:
        return precision, recall
    scores = np.concatenate([e["scores"][:max_dets] for e in evals])
    order = np.argsort(-scores, kind="mergesort")
    matched = np.concatenate([e["matched"][:, :max_dets] for e in evals], axis=1)[:, order]
    dt_ignore = np.concatenate([e["dt_ignore"][:, :max_dets] for e in evals], axis=1)[:, order]
    gt_ignore = np.concatenate([e["gt_ignore"] for e in evals])
    positives = np.count_nonzero(gt_ignore == 0)
    if positives == 0:
        return precision, recall
    tps = np.logical_and(matched, np.logical_not(dt_ignore))
    fps = np.logical_and(np.logical_not(matched), np.logical_not(dt_ignore))
    tp_sum = np.cumsum(tps, axis=1).astype(float)
    fp_sum = np.cumsum(fps, axis=1).astype(float)
    for ti, (tp, fp) in enumerate(zip(tp_sum, fp_sum)):
        nd = len(tp)
        rc = tp / positives
        pr = (tp / (fp + tp + np.spacing(1))).tolist()
        recall[ti] = rc[-1] if nd else 0
        for i in range(nd - 1, 0, -1):
            if pr[i] > pr[i - 1]:
                pr[i - 1] = pr[i]
        q = np.zeros(len(RECALL_THRESHOLDS))
        for ri, pi in enumerate(np.searchsorted(rc, RECALL_THRESHOLDS, side="left")):
            if pi >= nd:
                break
            q[ri] = pr[pi]
        precision[ti] = q
    return precision, recall


def coco_keypoint_eval(ground_truth: dict, results: list[dict], sigmas) -> dict[str, float]:
    """AP, AP50, AP75, APm, APl, AR, AR50, AR75, ARm, ARl exactly as pycocotools' keypoint summary.

    ground_truth: a COCO keypoints dict (images, annotations); results: [{image_id, keypoints, score}].
    """
    sigmas = np.asarray(sigmas, np.float64)
    image_ids = sorted({im["id"] for im in ground_truth["images"]})
    known = set(image_ids)
    gts, dts = defaultdict(list), defaultdict(list)
    for ann in ground_truth["annotations"]:
        if ann.get("category_id", 1) != 1:
            continue
        ignore = bool(ann.get("iscrowd", 0)) or ann.get("num_keypoints", 0) == 0 or bool(ann.get("ignore", 0))
        gts[ann["image_id"]].append({**_truth(ann, len(sigmas)), "ignore": ignore})
    for det in _prepare_detections(results):
        if det["image_id"] not in known:
            raise ValueError(f"result for image {det['image_id']}, which is not in the ground truth")
        dts[det["image_id"]].append(det)
    ious = {}
    for image_id in image_ids:
        d = dts[image_id]
        d_sorted = [d[i] for i in np.argsort([-x["score"] for x in d], kind="mergesort")][:MAX_DETS]
        ious[image_id] = oks_matrix(d_sorted, gts[image_id], sigmas) if d and gts[image_id] else []
    stats = {}
    for area, rng in AREA_RANGES.items():
        evals = [_evaluate_image(gts[i], dts[i], ious[i], rng) for i in image_ids]
        precision, recall = _accumulate(evals)
        suffix = "" if area == "all" else area[0]
        stats[f"AP{suffix}"] = _mean(precision)
        stats[f"AR{suffix}"] = _mean(recall)
        if area == "all":
            stats["AP50"], stats["AP75"] = _mean(precision[0]), _mean(precision[5])
            stats["AR50"], stats["AR75"] = _mean(recall[0:1]), _mean(recall[5:6])
    order = ["AP", "AP50", "AP75", "APm", "APl", "AR", "AR50", "AR75", "ARm", "ARl"]
    return {k: stats[k] for k in order}


BOX_MAX_DETS = 100


def coco_box_eval(ground_truth: dict, results: list[dict]) -> dict[str, float]:
    """Person box AP and AR as pycocotools' COCOeval(iouType='bbox') summary (maxDets 100, category 1 alone).

    results: [{image_id, bbox [x, y, w, h], score}]. A crowd ground truth is matched by the share of the
    detection it covers, and a detection on it is ignored, as COCOeval does.
    """
    image_ids = sorted({im["id"] for im in ground_truth["images"]})
    known = set(image_ids)
    gts, dts = defaultdict(list), defaultdict(list)
    for ann in ground_truth["annotations"]:
        if ann.get("category_id", 1) == 1:
            box = ann["bbox"]
            gts[ann["image_id"]].append({**ann, "area": ann.get("area", truth_area(box)),
                                         "ignore": bool(ann.get("iscrowd", 0)) or bool(ann.get("ignore", 0))})
    for i, r in enumerate(results):
        if r["image_id"] not in known:
            raise ValueError(f"result for image {r['image_id']}, which is not in the ground truth")
        if r.get("category_id", 1) == 1:
            dts[r["image_id"]].append({**r, "id": i + 1, "area": float(r["bbox"][2]) * float(r["bbox"][3])})
    stats = {}
    for area, rng in {"all": (0.0, 1e10), "small": (0.0, 32.0**2), **AREA_RANGES}.items():
        evals = []
        for image_id in image_ids:
            d = dts[image_id]
            d = [d[i] for i in np.argsort([-x["score"] for x in d], kind="mergesort")][:BOX_MAX_DETS]
            g = gts[image_id]
            ious = _box_ious(d, g) if d and g else []
            evals.append(_evaluate_image(g, d, ious, rng, BOX_MAX_DETS))
        precision, recall = _accumulate(evals, BOX_MAX_DETS)
        suffix = "" if area == "all" else area[0]
        stats[f"AP{suffix}"], stats[f"AR{suffix}"] = _mean(precision), _mean(recall)
        if area == "all":
            stats["AP50"], stats["AP75"] = _mean(precision[0]), _mean(precision[5])
            stats["AR50"] = _mean(recall[0:1])
    order = ["AP", "AP50", "AP75", "APs", "APm", "APl", "AR", "AR50", "ARs", "ARm", "ARl"]
    return {k: stats[k] for k in order}


def _box_ious(dts: list[dict], gts: list[dict]) -> np.ndarray:
    """(D, G) IoU of [x, y, w, h] boxes; against a crowd ground truth, intersection over the detection's area."""
    d = np.array([x["bbox"] for x in dts], np.float64).reshape(-1, 4)
    g = np.array([x["bbox"] for x in gts], np.float64).reshape(-1, 4)
    lo = np.maximum(d[:, None, :2], g[None, :, :2])
    hi = np.minimum(d[:, None, :2] + d[:, None, 2:], g[None, :, :2] + g[None, :, 2:])
    inter = np.prod(np.clip(hi - lo, 0, None), -1)
    d_area, g_area = d[:, 2] * d[:, 3], g[:, 2] * g[:, 3]
    crowd = np.array([bool(x.get("iscrowd", 0)) for x in gts])
    union = np.where(crowd[None], d_area[:, None], d_area[:, None] + g_area[None] - inter)
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


def _mean(values: np.ndarray) -> float:
    valid = values[values > -1]
    return float(np.mean(valid)) if valid.size else -1.0


def pck(pred: np.ndarray, truth: np.ndarray, visible: np.ndarray, norm: np.ndarray, threshold: float = 0.2):
    """Fraction of labelled joints within ``threshold`` of the truth after per-axis normalisation.

    pred, truth: (N, K, 2) pixels; visible: (N, K) bool; norm: (N, 2) per-axis normaliser, e.g. the box
    [w, h] (mmpose's PCKAccuracy for COCO-style data). Returns (overall, per-joint (K,) with NaN where unlabelled).
    """
    d = np.linalg.norm((pred - truth) / np.maximum(norm[:, None, :], 1e-6), axis=-1)
    hit = (d < threshold) & visible
    per_joint = np.where(visible.sum(0) > 0, hit.sum(0) / np.maximum(visible.sum(0), 1), np.nan)
    return float(hit.sum() / max(visible.sum(), 1)), per_joint


def pckh(pred: np.ndarray, truth: np.ndarray, visible: np.ndarray, head_sizes: np.ndarray, threshold: float = 0.5):
    """PCKh: joints within ``threshold`` x head size (MPII); head_sizes (N,) pixels. Returns (overall, per-joint)."""
    d = np.linalg.norm(pred - truth, axis=-1) / np.maximum(head_sizes[:, None], 1e-6)
    hit = (d < threshold) & visible
    per_joint = np.where(visible.sum(0) > 0, hit.sum(0) / np.maximum(visible.sum(0), 1), np.nan)
    return float(hit.sum() / max(visible.sum(), 1)), per_joint


def bootstrap_ci(per_item: np.ndarray, statistic=np.mean, samples: int = 1000, seed: int = 0,
                 level: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap confidence interval of ``statistic`` over items (small-sample figures)."""
    per_item = np.asarray(per_item)
    if per_item.size == 0:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    stats = [statistic(per_item[rng.integers(0, len(per_item), len(per_item))]) for _ in range(samples)]
    lo, hi = np.percentile(stats, [(1 - level) / 2 * 100, (1 + level) / 2 * 100])
    return float(lo), float(hi)


def oks_nms(keypoints: np.ndarray, scores: np.ndarray, areas: np.ndarray, sigmas, threshold: float = 0.9) -> np.ndarray:
    """Greedy non-maximum suppression by OKS between poses of one image, as mmpose's ``oks_nms``.

    keypoints: (N, K, 2) pixels; scores: (N,); areas: (N,) box areas in pixels^2. A pose is dropped when its OKS
    with a higher-scoring kept pose exceeds ``threshold`` (the pair's mean area is the scale). Returns kept indices.
    """
    variances = (np.asarray(sigmas, np.float64) * 2) ** 2
    order = np.argsort(-np.asarray(scores), kind="mergesort")
    keep = []
    while order.size:
        i, rest = order[0], order[1:]
        keep.append(int(i))
        d2 = ((keypoints[rest] - keypoints[i]) ** 2).sum(-1)                       # (R, K)
        scale = (areas[rest] + areas[i])[:, None] / 2 + np.spacing(1)
        oks = np.exp(-d2 / variances / scale / 2).mean(-1)
        order = rest[oks <= threshold]
    return np.array(keep, np.int64)


# MPII's 16 joints in their standard order (tfpose.skeleton.MPII16); pelvis and thorax are not scored.
MPII_UNSCORED = (6, 7)
MPII_GROUPS = {"head": (9,), "shoulder": (12, 13), "elbow": (11, 14), "wrist": (10, 15), "hip": (2, 3),
               "knee": (1, 4), "ankle": (0, 5)}


def mpii_pckh(pred: np.ndarray, truth: np.ndarray, visible: np.ndarray, head_sizes: np.ndarray,
              threshold: float = 0.5) -> dict:
    """PCKh as the MPII evaluation script (and mmpose's MpiiPCKAccuracy) computes it.

    pred, truth: (N, 16, 2) pixels in MPII joint order; visible: (N, 16) bool, joints to score; head_sizes: (N,)
    pixels. A joint is correct when its error is <= ``threshold`` x head size; the total pools every scored joint
    except pelvis and thorax (each joint weighted by its count). Returns fractions in [0, 1]: ``PCKh`` at
    ``threshold``, ``PCKh@0.1``, ``per_joint`` (16,) and ``groups`` (left/right averaged), NaN where nothing is
    scored, and ``hits``/``counts`` (N,) per person for the pooled total.
    """
    err = np.linalg.norm(pred - truth, axis=-1) / np.maximum(head_sizes[:, None], 1e-6)
    scored = visible.copy()
    scored[:, list(MPII_UNSCORED)] = False
    hits, counts = ((err <= threshold) & scored).sum(1), scored.sum(1)

    def pooled(thr: float) -> float:
        n = scored.sum()
        return float(((err <= thr) & scored).sum() / n) if n else float("nan")

    joint_counts = visible.sum(0)
    per_joint = np.where(joint_counts > 0, ((err <= threshold) & visible).sum(0) / np.maximum(joint_counts, 1), np.nan)
    groups = {name: float(np.nanmean(per_joint[list(idx)])) if np.isfinite(per_joint[list(idx)]).any() else float("nan")
              for name, idx in MPII_GROUPS.items()}
    return {"PCKh": pooled(threshold), "PCKh@0.1": pooled(0.1), "per_joint": per_joint, "groups": groups,
            "hits": hits, "counts": counts}
