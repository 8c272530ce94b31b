"""Person boxes from a detector, as COCO detection results: the one reader of such files (no TensorFlow).

A file is a JSON list of ``{image_id or file_name, bbox: [x, y, w, h], score, category_id}``; the validator
matches boxes to a dataset's images by ``image_id``, ``tfpose predict`` to frames by either key.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tfpose.errors import InputError, load_json

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

    Every entry must be an object with a numeric ``bbox`` [x, y, w, h] and an ``image_id`` or a ``file_name``;
    ``score`` defaults to 1. ``require``: keys that must be present as well (e.g. ("image_id", "score")).
    A bad entry is an error naming the file and the field.
    """
    path = Path(path)
    raw = load_json(path, "detection file not found")
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
        if "image_id" not in entry and "file_name" not in entry:
            raise InputError("needs 'image_id' or 'file_name'", path=path, field=where)
        box = entry["bbox"]
        if not (isinstance(box, list) and len(box) == 4 and all(_is_number(v) for v in box)):
            raise InputError(f"expected [x, y, w, h], got {box!r}", path=path, field=f"{where}.bbox")
        score = entry.get("score", 1.0)
        if not _is_number(score):
            raise InputError(f"expected a number, got {score!r}", path=path, field=f"{where}.score")
        image_id = entry.get("image_id")
        if image_id is not None and not (_is_number(image_id) and float(image_id).is_integer()):
            raise InputError(f"expected an integer, got {image_id!r}", path=path, field=f"{where}.image_id")
        if entry.get("category_id", PERSON) != PERSON or float(score) < min_score:
            continue
        out.append(Detection(i, tuple(float(v) for v in box), float(score),
                             None if image_id is None else int(image_id), entry.get("file_name")))
    return out


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)
