"""The ``detected`` format: people a person detector found in unlabelled photos (``tfpose detect``), as person records
with no labelled joint, so that they land in ``CocoDataset.unlabelled()`` and the teacher alone labels them
(``distill.unlabelled``). numpy + OpenCV only.

    - {format: detected, root: ../shared/data/har-photos, images: images, annotations: runs/har_people.json}

``annotations`` is the detection file (COCO detection results, read by ``tfpose.data.detections``; every entry needs a
``file_name``, relative to ``root``/``images``): relative to ``root`` like every format's, else, where ``root`` holds
no such file, to the working folder (the repository root) - the dataset folder may be read-only, and ``tfpose
detect`` writes into ``runs/``. Entries whose image is not in the folder are left out.
Shape legend: K joints; boxes [x, y, w, h] image pixels.
"""

from __future__ import annotations

from numbers import Integral
from pathlib import Path

import numpy as np

from tfpose.data.coco import CocoDataset, Person
from tfpose.data.detections import PERSON, read_detections
from tfpose.data.formats import register_format
from tfpose.data.images import image_size
from tfpose.errors import InputError


def detection_file(root: Path, annotations: str, image_dir: Path) -> Path:
    """The detection file ``annotations`` names: under ``root``, else from the working folder."""
    for path in (root / annotations, Path(annotations)):
        if path.is_file():
            return path
    raise InputError(f"detection file not found (neither under {root} nor from the working folder); make it with "
                     f"`tfpose detect {image_dir} --out {annotations}`", path=annotations, field="annotations")


@register_format("detected", summary="person boxes of `tfpose detect` over a folder of photos, no keypoints: "
                 "the teacher alone labels them")
def read_detected(root: Path, annotations: str | None = None, images: str | None = None, split: str = "all",
                  num_keypoints: int = 17) -> CocoDataset:
    """Every person box of the detection file ``annotations`` whose image is in ``root``/``images`` (default
    ``root``), each with K unlabelled joints."""
    if not (isinstance(num_keypoints, Integral) and num_keypoints > 0):
        raise InputError(f"expected a positive integer, got {num_keypoints!r}", field="num_keypoints")
    root = Path(root)
    image_dir = root / (images or ".")
    if annotations is None:
        raise InputError(f"the detected format needs annotations= (the file `tfpose detect {image_dir} --out FILE` "
                         "writes)", path=root, field="annotations")
    if not image_dir.is_dir():
        raise InputError("image folder not found", path=image_dir)
    path = detection_file(root, annotations, image_dir)
    detections = read_detections(path, require=("file_name",))
    records, persons, raw_annotations = {}, [], []
    for det in detections:
        x, y, w, h = det.box
        image_path = image_dir / det.file_name
        if w <= 1 or h <= 1 or not image_path.is_file():
            continue    # degenerate boxes, as load_coco drops them; photos not here
        if det.file_name not in records:
            width, height = image_size(image_path)
            records[det.file_name] = {"id": len(records) + 1, "file_name": det.file_name, "width": width,
                                      "height": height}
        image_id, ann_id = records[det.file_name]["id"], det.entry + 1
        persons.append(Person(image_id=image_id, ann_id=ann_id, image_path=image_path, box=det.box,
                              keypoints=np.zeros((num_keypoints, 2), np.float32),
                              visibility=np.zeros(num_keypoints, np.int64), area=w * h))
        raw_annotations.append({"id": ann_id, "image_id": image_id, "category_id": PERSON, "iscrowd": 0,
                                "bbox": list(det.box), "area": w * h, "score": det.score,
                                "keypoints": [0] * (3 * num_keypoints), "num_keypoints": 0})
    if detections and not records:     # a wrong images= would otherwise read as a source without people
        raise InputError(f"none of the {len(detections)} boxes' photos is in {image_dir}", path=path, field="file_name")
    raw = {"info": {"description": "person boxes of a detector, no keypoints, written by tfpose.data.detected",
                    "source": path.name},
           "images": list(records.values()), "annotations": raw_annotations,
           "categories": [{"id": PERSON, "name": "person", "supercategory": "person"}]}
    return CocoDataset(path, image_dir, {r["id"]: r for r in records.values()}, persons, raw)
