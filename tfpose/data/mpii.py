"""MPII single-person annotations in mmpose's JSON form (numpy only), for PCKh.

The file is a list of ``{image, center, scale, joints (16 x [x, y]), joints_vis (16), [headbox]}``; ``scale`` is the
person height in units of 200 pixels and all coordinates are MATLAB 1-based. As mmpose (and the MPII evaluation
script) does, the reader moves to 0-based pixels, shifts the centre down by 15 x scale pixels and takes the square
box of side 200 x scale around it; the model's own ``padding`` then enlarges it (mmpose: 1.25).

Head size, the PCKh unit: 0.6 x the diagonal of the annotated head box (``headbox`` = [x1, y1, x2, y2]), as the MPII
script and mmpose's ``MpiiPCKAccuracy`` do. mmpose reads head boxes only from MPII's ``mpii_gt_val.mat`` and has no
rule without one; when an annotation has none (mmpose's test fixture) we use the head segment, the distance from
upper neck to head top: PCKh is defined on that segment (Andriluka et al., CVPR 2014), and 0.6 x the box diagonal is
the script's stand-in for it. Such numbers are close to, not equal to, official MPII figures.
Shape legend: N persons, 16 joints; keypoints (16, 2) image pixels.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tfpose.data.coco import Person
from tfpose.data.fields import ID_LIMIT, number, numbers, read_json, shown, text
from tfpose.errors import InputError
from tfpose.skeleton import MPII16, Skeleton

PIXEL_STD = 200.0       # MPII's unit of ``scale``
HEAD_BOX_FACTOR = 0.6   # MPII's SC_BIAS: head size = 0.6 x head-box diagonal
UPPER_NECK, HEAD_TOP = 8, 9


@dataclass
class MpiiDataset:
    annotation_file: Path
    image_dir: Path
    persons: list[Person]          # one per annotation, 16 joints in MPII order
    head_sizes: np.ndarray         # (N,) PCKh unit in pixels; NaN where neither a head box nor a head segment exists
    head_size_source: list[str]    # (N,) "head box" or "head segment"
    skeleton: Skeleton = MPII16

    def labelled(self, min_keypoints: int = 1) -> list[Person]:
        return [p for p in self.persons if p.num_labelled >= max(1, min_keypoints)]


def mpii_box(center, scale: float) -> tuple[float, float, float, float]:
    """mmpose's person box [x, y, w, h] (0-based pixels) from MPII's 1-based ``center`` and ``scale``."""
    side = float(scale) * PIXEL_STD
    cx, cy = float(center[0]) - 1, float(center[1]) + 15.0 / PIXEL_STD * side - 1
    return cx - side / 2, cy - side / 2, side, side


def load_mpii(annotation_file: str | Path, image_dir: str | Path) -> MpiiDataset:
    """Parse and check an mmpose-style MPII JSON list; images are read later, on demand."""
    annotation_file, image_dir = Path(annotation_file), Path(image_dir)
    raw = read_json(annotation_file, "annotation file not found")
    if not image_dir.is_dir():
        raise InputError("image folder not found", path=image_dir)
    if not isinstance(raw, list):
        raise InputError("expected a JSON list of MPII annotations", path=annotation_file)
    k = MPII16.num_keypoints
    persons, head_sizes, sources = [], [], []
    for i, ann in enumerate(raw):
        where = f"[{i}]"
        if not isinstance(ann, dict):
            raise InputError("expected an object", path=annotation_file, field=where)
        for key in ("image", "center", "scale", "joints", "joints_vis"):
            if key not in ann:
                raise InputError("missing", path=annotation_file, field=f"{where}.{key}")
        joints = _joints(ann["joints"], k, annotation_file, f"{where}.joints")
        vis = numbers(ann["joints_vis"], k, annotation_file, f"{where}.joints_vis")
        center = numbers(ann["center"], 2, annotation_file, f"{where}.center", layout="[x, y]")
        scale = number(ann["scale"], annotation_file, f"{where}.scale", minimum=0, above=True)
        box = mpii_box(center, scale)
        if not np.isfinite(box).all():
            raise InputError(f"the person box {box} is not finite", path=annotation_file, field=f"{where}.scale")
        keypoints = joints - 1                      # MATLAB 1-based -> 0-based pixels
        visibility = np.where(vis > 0, 2, 0).astype(np.int64)
        head, source = _head_size(ann.get("headbox"), keypoints, visibility, annotation_file, f"{where}.headbox")
        image = text(ann["image"], annotation_file, f"{where}.image")
        stem = Path(image).stem
        numbered = stem.isascii() and stem.isdigit() and int(stem) < ID_LIMIT
        persons.append(Person(image_id=int(stem) if numbered else i, ann_id=i, image_path=image_dir / image,
                              box=box, keypoints=keypoints, visibility=visibility, area=box[2] * box[3]))
        head_sizes.append(head)
        sources.append(source)
    return MpiiDataset(annotation_file, image_dir, persons, np.array(head_sizes, np.float64), sources)


def _joints(value, k: int, path: Path, field: str) -> np.ndarray:
    """(k, 2) float32 from ``joints`` as mmpose writes them ([[x, y], ...]) or flat ([x1, y1, x2, ...])."""
    if isinstance(value, list) and value and all(isinstance(v, list) for v in value):
        if len(value) != k or any(len(v) != 2 for v in value):
            raise InputError(f"expected {k} joints [x, y], got {shown(value)}", path=path, field=field)
        value = [x for v in value for x in v]
    return numbers(value, 2 * k, path, field, np.float32).reshape(k, 2)


def _head_size(headbox, keypoints: np.ndarray, visibility: np.ndarray, path: Path, field: str) -> tuple[float, str]:
    if headbox is not None:
        x1, y1, x2, y2 = numbers(headbox, 4, path, field, layout="[x1, y1, x2, y2]")
        size = HEAD_BOX_FACTOR * float(np.hypot(x2 - x1, y2 - y1))
        if not 0 < size < float("inf"):
            raise InputError(f"the head box has size {size}: PCKh needs a positive, finite one", path=path, field=field)
        return size, "head box"
    if visibility[UPPER_NECK] > 0 and visibility[HEAD_TOP] > 0:
        size = float(np.linalg.norm(keypoints[HEAD_TOP] - keypoints[UPPER_NECK]))
        if 0 < size < float("inf"):
            return size, "head segment"
    return float("nan"), "none"
