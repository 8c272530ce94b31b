"""COCO ``person_keypoints`` reader (numpy + OpenCV only).

Every malformed field is reported with the file and the JSON path of the field, e.g.
``annotations/x.json: field 'annotations[3].keypoints': expected 51 numbers, got 50``.
Shape legend: K joints; keypoints (K, 2) image pixels; visibility (K,) in {0, 1, 2}.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from tfpose.errors import InputError, load_json


@dataclass(frozen=True)
class Person:
    image_id: int
    ann_id: int
    image_path: Path
    box: tuple[float, float, float, float]   # [x, y, w, h] image pixels
    keypoints: np.ndarray                     # (K, 2) image pixels
    visibility: np.ndarray                    # (K,) 0 unlabelled, 1 labelled but occluded, 2 visible
    area: float

    @property
    def num_labelled(self) -> int:
        return int((self.visibility > 0).sum())


@dataclass
class CocoDataset:
    annotation_file: Path
    image_dir: Path
    images: dict[int, dict]                  # image id -> COCO image record
    persons: list[Person]                    # every non-crowd person box, labelled or not
    raw: dict                                # the parsed JSON, for pycocotools

    def labelled(self, min_keypoints: int = 1) -> list[Person]:
        return [p for p in self.persons if p.num_labelled >= max(1, min_keypoints)]

    def unlabelled(self) -> list[Person]:
        return [p for p in self.persons if p.num_labelled == 0]

    def subset(self, image_ids) -> "CocoDataset":
        """The same dataset restricted to ``image_ids`` (annotations and images), e.g. one side of a split."""
        keep = set(int(i) for i in image_ids)
        raw = dict(self.raw)
        raw["images"] = [im for im in self.raw["images"] if im["id"] in keep]
        raw["annotations"] = [a for a in self.raw["annotations"] if a["image_id"] in keep]
        return CocoDataset(self.annotation_file, self.image_dir, {i: r for i, r in self.images.items() if i in keep},
                           [p for p in self.persons if p.image_id in keep], raw)

    def split(self, val_fraction: float, seed: int) -> tuple["CocoDataset", "CocoDataset"]:
        """Split by image (never a person of one photo on both sides), fixed by ``seed``."""
        ids = np.array(sorted(self.images))
        rng = np.random.default_rng(seed)
        rng.shuffle(ids)
        n_val = max(1, int(round(val_fraction * len(ids))))
        return self.subset(ids[n_val:]), self.subset(ids[:n_val])


def load_coco(annotation_file: str | Path, image_dir: str | Path, num_keypoints: int = 17) -> CocoDataset:
    """Parse and check a COCO keypoints file; images are read later, on demand."""
    annotation_file, image_dir = Path(annotation_file), Path(image_dir)
    raw = load_json(annotation_file, "annotation file not found")
    if not image_dir.is_dir():
        raise InputError("image folder not found", path=image_dir)
    if not isinstance(raw, dict):
        raise InputError("expected a JSON object with 'images' and 'annotations'", path=annotation_file)
    for key in ("images", "annotations"):
        if not isinstance(raw.get(key), list):
            raise InputError("missing or not a list", path=annotation_file, field=key)

    images = {}
    for i, im in enumerate(raw["images"]):
        for key in ("id", "file_name"):
            if not isinstance(im, dict) or key not in im:
                raise InputError("missing", path=annotation_file, field=f"images[{i}].{key}")
        images[int(im["id"])] = im

    persons = []
    for i, ann in enumerate(raw["annotations"]):
        where = f"annotations[{i}]"
        if not isinstance(ann, dict):
            raise InputError("expected an object", path=annotation_file, field=where)
        if ann.get("iscrowd", 0) or ann.get("category_id", 1) != 1:
            continue
        for key in ("image_id", "bbox"):
            if key not in ann:
                raise InputError("missing", path=annotation_file, field=f"{where}.{key}")
        if int(ann["image_id"]) not in images:
            raise InputError(f"image id {ann['image_id']} is not in 'images'", path=annotation_file,
                             field=f"{where}.image_id")
        box = ann["bbox"]
        if not (isinstance(box, list) and len(box) == 4 and all(isinstance(v, (int, float)) for v in box)):
            raise InputError(f"expected [x, y, w, h], got {box!r}", path=annotation_file, field=f"{where}.bbox")
        if box[2] <= 1 or box[3] <= 1:
            continue  # degenerate boxes carry nothing to learn or score
        kps = ann.get("keypoints", [0] * (3 * num_keypoints))
        if not (isinstance(kps, list) and len(kps) == 3 * num_keypoints):
            n = len(kps) if isinstance(kps, list) else type(kps).__name__
            raise InputError(f"expected {3 * num_keypoints} numbers, got {n}", path=annotation_file,
                             field=f"{where}.keypoints")
        try:
            kp = np.asarray(kps, np.float32).reshape(num_keypoints, 3)
        except (TypeError, ValueError):
            raise InputError("keypoints must be numbers", path=annotation_file, field=f"{where}.keypoints") from None
        visibility = kp[:, 2].astype(np.int64)
        if not np.isin(visibility, (0, 1, 2)).all():
            raise InputError("visibility flags must be 0, 1 or 2", path=annotation_file, field=f"{where}.keypoints")
        persons.append(Person(
            image_id=int(ann["image_id"]), ann_id=int(ann.get("id", i)),
            image_path=image_dir / images[int(ann["image_id"])]["file_name"],
            box=tuple(float(v) for v in box), keypoints=kp[:, :2].copy(), visibility=visibility,
            area=float(ann.get("area", box[2] * box[3])),
        ))
    return CocoDataset(annotation_file, image_dir, images, persons, raw)


class ImageStore:
    """Decoded RGB images, read once and kept: small datasets are read far more often than they change."""

    def __init__(self, cache: bool = True):
        self._cache: dict[Path, np.ndarray] = {}
        self._enabled = cache

    def __call__(self, path: Path) -> np.ndarray:
        image = self._cache.get(path)
        if image is None:
            image = read_rgb(path)
            if self._enabled:
                self._cache[path] = image
        return image


def read_rgb(path: str | Path) -> np.ndarray:
    """(H, W, 3) uint8 RGB; a missing or undecodable file is an InputError that names it."""
    path = Path(path)
    if not path.is_file():
        raise InputError("image not found", path=path)
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise InputError("image cannot be decoded (corrupt or not an image)", path=path)
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
