"""COCO ``person_keypoints`` reader (numpy + OpenCV only).

Every malformed field is reported with the file and the JSON path of the field, e.g.
``annotations/x.json: field 'annotations[3].keypoints': expected 51 numbers, got 50``.
Shape legend: K joints; keypoints (K, 2) image pixels; visibility (K,) in {0, 1, 2}.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from numbers import Integral, Real
from pathlib import Path

import numpy as np

from tfpose.data.fields import UniqueIds, flag, integer, number, numbers, read_json, text
from tfpose.data.images import read_rgb
from tfpose.errors import InputError
from tfpose.metrics import truth_area


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
        if not (isinstance(val_fraction, Real) and 0 <= val_fraction <= 1):
            raise InputError(f"must lie in [0, 1], got {val_fraction!r}", field="val_fraction")
        if not (isinstance(seed, Integral) and seed >= 0):
            raise InputError(f"expected a non-negative integer, got {seed!r}", field="split_seed")
        ids = np.array(sorted(self.images))
        rng = np.random.default_rng(seed)
        rng.shuffle(ids)
        n_val = max(1, int(round(val_fraction * len(ids))))
        return self.subset(ids[n_val:]), self.subset(ids[:n_val])


def load_coco(annotation_file: str | Path, image_dir: str | Path, num_keypoints: int = 17) -> CocoDataset:
    """Parse and check a COCO keypoints file; images are read later, on demand.

    Every field that the readers and the evaluation use is checked: ids are unique integers, each annotation's image
    is listed, numbers are finite, areas not negative, visibility flags 0, 1 or 2. What an annotation may leave out
    (id, area, keypoints, iscrowd, category_id) the scorer does without (``tfpose.metrics``).
    """
    if not (isinstance(num_keypoints, Integral) and num_keypoints > 0):
        raise InputError(f"expected a positive integer, got {num_keypoints!r}", field="num_keypoints")
    annotation_file, image_dir = Path(annotation_file), Path(image_dir)
    raw = read_json(annotation_file, "annotation file not found")
    if not image_dir.is_dir():
        raise InputError("image folder not found", path=image_dir)
    if not isinstance(raw, dict):
        raise InputError("expected a JSON object with 'images' and 'annotations'", path=annotation_file)
    for key in ("images", "annotations"):
        if not isinstance(raw.get(key), list):
            raise InputError("missing or not a list", path=annotation_file, field=key)

    images = _read_images(raw["images"], annotation_file)
    ann_ids = UniqueIds(annotation_file, "annotation id")
    persons = []
    for i, ann in enumerate(raw["annotations"]):
        person = _read_annotation(ann, f"annotations[{i}]", i, images, ann_ids, annotation_file, image_dir,
                                  num_keypoints)
        if person is not None:
            persons.append(person)
    return CocoDataset(annotation_file, image_dir, images, persons, raw)


def _read_images(records: list, path: Path) -> dict[int, dict]:
    images, ids = {}, UniqueIds(path, "image id")
    for i, im in enumerate(records):
        where = f"images[{i}]"
        if not isinstance(im, dict):
            raise InputError("expected an object", path=path, field=where)
        for key in ("id", "file_name"):
            if key not in im:
                raise InputError("missing", path=path, field=f"{where}.{key}")
        image_id = ids.add(integer(im["id"], path, f"{where}.id"), f"{where}.id")
        text(im["file_name"], path, f"{where}.file_name")
        for key in ("width", "height"):
            if key in im:
                number(im[key], path, f"{where}.{key}", minimum=0, above=True)
        images[image_id] = im
    return images


def _read_annotation(ann, where: str, index: int, images: dict[int, dict], ann_ids: UniqueIds, path: Path,
                     image_dir: Path, num_keypoints: int) -> Person | None:
    """The person of one annotation, None for a crowd region, another category or a degenerate box (all checked
    all the same: the evaluation reads them from ``raw``)."""
    if not isinstance(ann, dict):
        raise InputError("expected an object", path=path, field=where)
    if "image_id" not in ann:
        raise InputError("missing", path=path, field=f"{where}.image_id")
    if "id" in ann:
        ann_id = ann_ids.add(integer(ann["id"], path, f"{where}.id"), f"{where}.id")
    else:
        ann_id = ann_ids.add(index, f"{where}, which has no 'id' and takes its position")
    image_id = integer(ann["image_id"], path, f"{where}.image_id")
    if image_id not in images:
        raise InputError(f"image id {image_id} is not in 'images'", path=path, field=f"{where}.image_id")
    crowd = flag(ann.get("iscrowd", 0), path, f"{where}.iscrowd")
    if integer(ann.get("category_id", 1), path, f"{where}.category_id") != 1:
        return None
    if "bbox" not in ann:
        raise InputError("missing", path=path, field=f"{where}.bbox")
    box = tuple(float(v) for v in numbers(ann["bbox"], 4, path, f"{where}.bbox", layout="[x, y, w, h]"))
    if "area" in ann:
        area = number(ann["area"], path, f"{where}.area", minimum=0)
    else:
        area = truth_area(box)
        if not math.isfinite(area):
            raise InputError(f"w x h, the default area, is not finite ({area})", path=path, field=f"{where}.bbox")
    if "num_keypoints" in ann:
        integer(ann["num_keypoints"], path, f"{where}.num_keypoints")
    kp = np.zeros((num_keypoints, 3), np.float32)
    if "keypoints" in ann:
        kp = numbers(ann["keypoints"], 3 * num_keypoints, path, f"{where}.keypoints", np.float32).reshape(-1, 3)
        if not np.isin(kp[:, 2], (0, 1, 2)).all():
            raise InputError("visibility flags must be 0, 1 or 2", path=path, field=f"{where}.keypoints")
    if crowd or box[2] <= 1 or box[3] <= 1:
        return None  # degenerate boxes carry nothing to learn or score
    return Person(image_id=image_id, ann_id=ann_id, image_path=image_dir / images[image_id]["file_name"], box=box,
                  keypoints=kp[:, :2].copy(), visibility=kp[:, 2].astype(np.int64), area=area)


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
