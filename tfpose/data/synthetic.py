"""The embedded default dataset: procedurally rendered people in COCO ``person_keypoints`` format.

Figures are front-facing articulated bodies on the COCO-17 skeleton (the person's left on the image's right,
as in most photos), with random proportions, poses, clothing colours, cluttered backgrounds, a second
person and occluding objects. Everything comes from the seed: the same seed gives the same files.
Joints hidden by an occluder are labelled with visibility 1, joints outside the image with 0, as in COCO.
"""

from __future__ import annotations

import json
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np

from tfpose.artifacts import atomic_path
from tfpose.skeleton import COCO17

NOSE, L_EYE, R_EYE, L_EAR, R_EAR, L_SH, R_SH, L_EL, R_EL, L_WR, R_WR, L_HIP, R_HIP, L_KN, R_KN, L_AN, R_AN = range(17)


def _unit(deg: float) -> np.ndarray:
    """Unit vector at ``deg`` degrees from straight down, positive toward the image's right."""
    a = np.deg2rad(deg)
    return np.array([np.sin(a), np.cos(a)])


def sample_pose(rng: np.random.Generator, centre: np.ndarray, height: float) -> tuple[np.ndarray, dict]:
    """(17, 2) joint positions in image pixels for one figure, plus the drawing sizes."""
    lean = rng.normal(0, 10)
    up = -_unit(lean)
    right = np.array([-up[1], up[0]])           # the image's right, perpendicular to the spine
    yaw = np.cos(np.deg2rad(rng.uniform(-50, 50)))
    pelvis = centre + up * 0.05 * height
    neck = pelvis + up * 0.30 * height
    kp = np.zeros((17, 2))
    # front-facing: the person's left side is on the image's right
    kp[L_SH], kp[R_SH] = neck + right * 0.11 * height * yaw, neck - right * 0.11 * height * yaw
    kp[L_HIP], kp[R_HIP] = pelvis + right * 0.075 * height * yaw, pelvis - right * 0.075 * height * yaw
    for side, sh, el, wr in ((+1, L_SH, L_EL, L_WR), (-1, R_SH, R_EL, R_WR)):
        a_upper = lean + side * rng.uniform(-25, 165)
        a_fore = a_upper + side * rng.uniform(-20, 140) * rng.choice([1, -1], p=[0.8, 0.2])
        kp[el] = kp[sh] + _unit(a_upper) * 0.17 * height * rng.uniform(0.8, 1.1)
        kp[wr] = kp[el] + _unit(a_fore) * 0.15 * height * rng.uniform(0.8, 1.1)
    for side, hip, kn, an in ((+1, L_HIP, L_KN, L_AN), (-1, R_HIP, R_KN, R_AN)):
        a_thigh = lean + side * rng.uniform(-15, 70)
        a_shin = a_thigh - side * rng.uniform(0, 70)
        kp[kn] = kp[hip] + _unit(a_thigh) * 0.24 * height * rng.uniform(0.75, 1.05)
        kp[an] = kp[kn] + _unit(a_shin) * 0.24 * height * rng.uniform(0.75, 1.05)
    head_tilt = lean + rng.normal(0, 12)
    head_up = -_unit(head_tilt)
    head_right = np.array([-head_up[1], head_up[0]])
    radius = 0.075 * height
    head = neck + head_up * 0.13 * height
    turn = rng.uniform(-0.3, 0.3) * radius       # looking slightly left or right moves the face sideways
    kp[NOSE] = head + head_right * turn - head_up * 0.15 * radius
    kp[L_EYE] = head + head_right * (0.38 * radius + turn) + head_up * 0.2 * radius
    kp[R_EYE] = head + head_right * (-0.38 * radius + turn) + head_up * 0.2 * radius
    kp[L_EAR] = head + head_right * 0.95 * radius
    kp[R_EAR] = head - head_right * 0.95 * radius
    # limb widths as fractions of the body's height: about a clothed adult's, so that the silhouette (the OKS
    # area) fills half the box, as COCO people do (median 0.50), not a third, as stick limbs did
    build = rng.uniform(0.85, 1.2)
    widths = {part: max(2, int(round(fraction * height * build))) for part, fraction in
              (("thigh", 0.10), ("shin", 0.075), ("upper_arm", 0.07), ("forearm", 0.055), ("torso", 0.05))}
    return kp, {"head": head, "radius": radius, "neck": neck, "limb": max(2, int(0.065 * height)), **widths}


def _colour(rng: np.random.Generator) -> tuple[int, int, int]:
    return tuple(int(v) for v in rng.integers(0, 256, 3))


def _shade(colour, factor: float) -> tuple[int, int, int]:
    return tuple(int(min(255, v * factor)) for v in colour)


def draw_figure(canvas: np.ndarray, mask: np.ndarray, kp: np.ndarray, sizes: dict, rng: np.random.Generator):
    """Draw one figure on ``canvas`` (H, W, 3) and its silhouette on ``mask`` (H, W).

    Limbs have dark outlines and the joints carry mannequin-style caps, so every keypoint is visible in
    the picture even where a sleeve crosses a shirt of the same colour.
    """
    shirt, trousers = _colour(rng), _colour(rng)
    sleeve = _shade(shirt, 0.75)
    skin = tuple(int(v) for v in np.array([224, 172, 140]) * rng.uniform(0.45, 1.1))
    hair = tuple(int(v) for v in rng.integers(0, 120, 3))
    outline = (25, 25, 25)
    t = sizes["limb"]
    r = int(round(sizes["radius"]))
    head = tuple(int(v) for v in sizes["head"])
    neck = tuple(int(v) for v in sizes["neck"])
    p = lambda i: tuple(int(round(v)) for v in kp[i])  # noqa: E731
    thigh, shin, upper, fore = (sizes.get(part, t) for part in ("thigh", "shin", "upper_arm", "forearm"))
    legs = [(L_HIP, L_KN, trousers, thigh), (L_KN, L_AN, trousers, shin), (R_HIP, R_KN, trousers, thigh),
            (R_KN, R_AN, trousers, shin)]
    arms = [(L_SH, L_EL, sleeve, upper), (L_EL, L_WR, skin, fore), (R_SH, R_EL, sleeve, upper),
            (R_EL, R_WR, skin, fore)]
    caps = [(L_KN, trousers), (R_KN, trousers), (L_AN, (40, 30, 20)), (R_AN, (40, 30, 20)),
            (L_EL, sleeve), (R_EL, sleeve), (L_WR, skin), (R_WR, skin)]

    def limbs(segments):
        for a, b, colour, width in segments:
            cv2.line(canvas, p(a), p(b), outline, max(2, width) + 2, cv2.LINE_AA)
            cv2.line(canvas, p(a), p(b), colour, max(2, width), cv2.LINE_AA)
            cv2.line(mask, p(a), p(b), 1, max(2, width) + 2)

    def joint_caps(joints):
        for j, colour in joints:
            cv2.circle(canvas, p(j), max(2, t // 2 + 1), _shade(colour, 0.6), -1, cv2.LINE_AA)
            cv2.circle(mask, p(j), max(2, t // 2 + 1), 1, -1)

    limbs(legs)
    joint_caps(caps[:4])
    torso = np.array([p(L_SH), p(R_SH), p(R_HIP), p(L_HIP)], np.int32)
    flesh = sizes.get("torso", 1)      # the trunk is rounder than the polygon between its four joints
    cv2.polylines(canvas, [torso], True, outline, flesh + 2, cv2.LINE_AA)
    cv2.fillConvexPoly(canvas, torso, shirt)
    cv2.polylines(canvas, [torso], True, shirt, flesh, cv2.LINE_AA)
    cv2.fillConvexPoly(mask, torso, 1)
    cv2.polylines(mask, [torso], True, 1, flesh + 2)
    cv2.line(canvas, neck, head, skin, t)
    cv2.line(mask, neck, head, 1, t)
    cv2.circle(canvas, head, r + 1, outline, -1, cv2.LINE_AA)
    cv2.circle(canvas, head, r, skin, -1, cv2.LINE_AA)
    cv2.circle(mask, head, r + 1, 1, -1)
    cv2.ellipse(canvas, head, (r, r), 0, 180, 360, hair, -1)
    for j in (L_EYE, R_EYE):
        cv2.circle(canvas, p(j), max(1, r // 5), (20, 20, 20), -1)
    cv2.circle(canvas, p(NOSE), max(1, r // 6), _shade(skin, 0.6), -1)
    for j in (L_EAR, R_EAR):
        cv2.circle(canvas, p(j), max(1, r // 4), _shade(skin, 0.75), -1)
    limbs(arms)
    joint_caps(caps[4:])


def draw_background(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    corners = rng.integers(0, 256, (2, 2, 3)).astype(np.float32)
    image = cv2.resize(corners, (width, height), interpolation=cv2.INTER_LINEAR)
    for _ in range(rng.integers(3, 10)):
        c = _colour(rng)
        kind = rng.integers(3)
        x, y = int(rng.integers(0, width)), int(rng.integers(0, height))
        if kind == 0:
            cv2.rectangle(image, (x, y), (x + int(rng.integers(5, width // 2)), y + int(rng.integers(5, height // 2))),
                          c, -1)
        elif kind == 1:
            cv2.circle(image, (x, y), int(rng.integers(3, width // 5)), c, -1)
        elif rng.random() < 0.5:  # limb-like distractors, so a thick line alone is no evidence of a person
            cv2.line(image, (x, y), (int(rng.integers(0, width)), int(rng.integers(0, height))), c,
                     int(rng.integers(2, 8)))
    image += rng.normal(0, 8, image.shape).astype(np.float32)
    return np.clip(image, 0, 255)


def render_image(rng: np.random.Generator, width: int, height: int, max_people: int):
    """One picture and its people: image (H, W, 3) uint8 RGB, and a list of (keypoints (17, 3), box, area)."""
    image = draw_background(rng, width, height)
    people = []
    for _ in range(int(rng.integers(1, max_people + 1))):
        body = rng.uniform(0.45, 0.95) * height
        centre = np.array([rng.uniform(0.25, 0.75) * width, rng.uniform(0.4, 0.6) * height])
        kp, sizes = sample_pose(rng, centre, body)
        mask = np.zeros((height, width), np.uint8)
        draw_figure(image, mask, kp, sizes, rng)
        # an earlier figure's joints now covered by this one become occluded
        for other in people:
            covered = _inside(other["kp"][:, :2], mask) & (other["kp"][:, 2] == 2)
            other["kp"][covered, 2] = 1
        vis = np.full(17, 2.0)
        people.append({"kp": np.hstack([kp, vis[:, None]]), "mask": mask})
    if rng.random() < 0.35:  # an occluding object in front of everybody
        x, y = int(rng.uniform(0, width)), int(rng.uniform(0.2, 1.0) * height)
        w, h = int(rng.uniform(0.15, 0.4) * width), int(rng.uniform(0.1, 0.35) * height)
        occluder = np.zeros((height, width), np.uint8)
        cv2.rectangle(occluder, (x, y), (x + w, y + h), 1, -1)
        cv2.rectangle(image, (x, y), (x + w, y + h), _colour(rng), -1)
        for person in people:
            covered = _inside(person["kp"][:, :2], occluder) & (person["kp"][:, 2] == 2)
            person["kp"][covered, 2] = 1
            person["mask"] &= 1 - occluder
    image = cv2.GaussianBlur(np.clip(image, 0, 255).astype(np.uint8), (3, 3), 0)
    out = []
    for person in people:
        kp = person["kp"]
        outside = (kp[:, 0] < 0) | (kp[:, 1] < 0) | (kp[:, 0] > width - 1) | (kp[:, 1] > height - 1)
        kp[outside] = 0
        ys, xs = np.nonzero(person["mask"])
        if len(xs) < 20 or (kp[:, 2] > 0).sum() < 3:
            continue
        box = [float(xs.min()), float(ys.min()), float(xs.max() - xs.min() + 1), float(ys.max() - ys.min() + 1)]
        out.append((kp, box, float(len(xs))))
    return image, out


def _inside(points: np.ndarray, mask: np.ndarray) -> np.ndarray:
    h, w = mask.shape
    xy = np.round(points).astype(int)
    ok = (xy[:, 0] >= 0) & (xy[:, 1] >= 0) & (xy[:, 0] < w) & (xy[:, 1] < h)
    hit = np.zeros(len(points), bool)
    hit[ok] = mask[xy[ok, 1], xy[ok, 0]] > 0
    return hit


def generate_split(out_dir: str | Path, split: str, num_images: int, image_size: tuple[int, int],
                   max_people: int, seed: int) -> Path:
    """Render ``num_images`` pictures into ``out_dir/images/<split>`` and write their COCO annotation file."""
    out_dir = Path(out_dir)
    width, height = image_size
    image_dir = out_dir / "images" / split
    ann_file = out_dir / "annotations" / f"person_keypoints_{split}.json"
    image_dir.mkdir(parents=True, exist_ok=True)
    base = {"train": 0, "val": 1, "test": 2}.get(split, 3)

    def render(index: int):
        rng = np.random.default_rng([seed, base, index])
        image, people = render_image(rng, width, height, max_people)
        image_id = base * 1_000_000 + index + 1
        name = f"{image_id:012d}.jpg"
        with atomic_path(image_dir / name) as tmp:
            ok, buf = cv2.imencode(".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 92])
            tmp.write_bytes(buf.tobytes())
        return {"id": image_id, "file_name": name, "width": width, "height": height}, people

    images, annotations = [], []
    # OpenCV drops the GIL while it draws and encodes: threads render about twice as fast on two cores, and each
    # image depends on its index alone, so the files are the same
    with ThreadPoolExecutor(max(1, min(4, os.cpu_count() or 1))) as pool:
        for image, people in pool.map(render, range(num_images)):
            images.append(image)
            for kp, box, area in people:
                annotations.append({
                    "id": len(annotations) + 1 + base * 1_000_000, "image_id": image["id"], "category_id": 1,
                    "iscrowd": 0, "bbox": [round(v, 2) for v in box], "area": area,
                    "keypoints": [round(float(v), 2) if i % 3 != 2 else int(v) for i, v in enumerate(kp.ravel())],
                    "num_keypoints": int((kp[:, 2] > 0).sum()),
                })
    coco = {
        "info": {"description": f"tfpose synthetic people, split {split}, seed {seed}"},
        "images": images, "annotations": annotations,
        "categories": [{"id": 1, "name": "person", "supercategory": "person", "keypoints": list(COCO17.keypoints),
                        "skeleton": [[a + 1, b + 1] for a, b in COCO17.edges]}],
    }
    with atomic_path(ann_file) as tmp:
        tmp.write_text(json.dumps(coco))
    return ann_file


def ensure_synthetic(root: str | Path, num_train: int, num_val: int, image_size: tuple[int, int],
                     max_people: int, seed: int) -> Path:
    """Generate the dataset once; a stamp file records the parameters so a change regenerates it."""
    root = Path(root)
    stamp = root / "synthetic.json"
    params = {"num_train": num_train, "num_val": num_val, "image_size": list(image_size),
              "max_people": max_people, "seed": seed, "version": 4}
    if stamp.is_file() and json.loads(stamp.read_text()) == params:
        return root
    generate_split(root, "train", num_train, image_size, max_people, seed)
    generate_split(root, "val", num_val, image_size, max_people, seed)
    with atomic_path(stamp) as tmp:
        tmp.write_text(json.dumps(params))
    return root
