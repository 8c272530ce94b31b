"""Person boxes from a detector, as COCO detection results: the one reader of such files (no TensorFlow).

A file is a JSON list of ``{image_id or file_name, bbox: [x, y, w, h], score, category_id}``; the validator
matches boxes to a dataset's images by ``image_id``, ``tfpose predict`` to frames by either key.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tfpose.data.fields import integer, number, numbers, read_json, text
from tfpose.errors import InputError

PERSON = 1   # COCO category id


@dataclass(frozen=True)
class Detection:
    entry: int                                   # position in the file, for error messages and stable ids
    box: tuple[float, float, float, float]       # [x, y, w, h] image pixels
    score: float
    image_id: int | None = None
    file_name: str | None = None

    @property
    def field(self) -> str:
        return f"[{self.entry}]"


def read_detections(path: str | Path, min_score: float = 0.0, require: tuple[str, ...] = ()) -> list[Detection]:
    """The person boxes of a detection file scoring at least ``min_score`` (other categories are skipped).

    Every entry must be an object with a finite ``bbox`` [x, y, w, h] and an integer ``image_id`` or a string
    ``file_name``; ``score`` (finite) defaults to 1. ``require``: keys that must be present as well (e.g.
    ("image_id", "score")). A bad entry is an error naming the file and the field.
    """
    path = Path(path)
    raw = read_json(path, "detection file not found")
    if not isinstance(raw, list):
        raise InputError("expected a JSON list of detections [{image_id or file_name, bbox, score}]", path=path)
    out = []
    for i, entry in enumerate(raw):
        where = f"[{i}]"
        if not isinstance(entry, dict):
            raise InputError("expected an object", path=path, field=where)
        for key in ("bbox", *require):
            if key not in entry:
                raise InputError("missing", path=path, field=f"{where}.{key}")
        if entry.get("image_id") is None and entry.get("file_name") is None:
            raise InputError("needs 'image_id' or 'file_name'", path=path, field=where)
        box = tuple(float(v) for v in numbers(entry["bbox"], 4, path, f"{where}.bbox", layout="[x, y, w, h]"))
        score = number(entry.get("score", 1.0), path, f"{where}.score")
        image_id = entry.get("image_id")
        if image_id is not None:
            image_id = integer(image_id, path, f"{where}.image_id")
        file_name = entry.get("file_name")
        if file_name is not None:
            text(file_name, path, f"{where}.file_name")
        if integer(entry.get("category_id", PERSON), path, f"{where}.category_id") != PERSON or score < min_score:
            continue
        out.append(Detection(i, box, score, image_id, file_name))
    return out
