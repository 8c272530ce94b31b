"""``tfpose detect``: the people in a folder of photos, found by the person detector ``tfpose predict`` uses, written
as COCO detection results - the file a ``detected`` training source reads (``tfpose.data.detected``), so that the
teacher alone labels their joints. No TensorFlow.

Boxes are [x, y, w, h] in image pixels.
"""

from __future__ import annotations

import time
from pathlib import Path

from tfpose.artifacts import write_json
from tfpose.data.detections import PERSON
from tfpose.data.video import open_frames
from tfpose.errors import InputError
from tfpose.predict import PersonDetector, default_detector

MIN_HEIGHT = 80.0   # pixels: har-photos' people were picked at least this tall


def detect_people(images: str | Path, out: str | Path, detector: str | Path | None = None, min_score: float = 0.3,
                  min_height: float = MIN_HEIGHT, threads: int = 1) -> dict:
    """Write to ``out`` (atomically) the person boxes of every image of ``images`` (a folder or one image) scoring
    at least ``min_score`` and at least ``min_height`` pixels tall: a JSON list of {file_name, bbox [x, y, w, h],
    score, category_id: 1}, ``file_name`` relative to the folder.

    detector: a tfpose person detector .tflite; None: the repository's (``tfpose.predict.default_detector``).
    A corrupt image in a folder is skipped with a warning that names it, as ``tfpose predict`` skips it.
    Returns {"detector", "images", "skipped", "boxes", "empty", "seconds", "out"}; "empty": images without a box.
    """
    if not 0 <= min_score <= 1:
        raise InputError(f"must lie in [0, 1], got {min_score}", field="--min-score")
    if min_height < 0:
        raise InputError(f"must be >= 0, got {min_height}", field="--min-height")
    frames = open_frames(images)
    if frames.kind not in ("image", "folder"):
        raise InputError(f"expected an image or a folder of images, got a {frames.kind}", path=images)
    path = Path(detector) if detector is not None else default_detector()
    find_boxes = PersonDetector(path, min_score, threads)
    results, read, empty = [], 0, 0
    every = max(1, len(frames.files) // 10)
    start = time.perf_counter()
    for index, name, image in frames:
        boxes = [(box, score) for box, score in find_boxes(index, name, image) if box[3] >= min_height]
        results += [{"file_name": name, "bbox": [round(v, 2) for v in box], "score": round(score, 4),
                     "category_id": PERSON} for box, score in boxes]
        read, empty = read + 1, empty + (not boxes)
        if (index + 1) % every == 0:
            per_image = (time.perf_counter() - start) / read
            print(f"    detect: {index + 1}/{len(frames.files)} images, {len(results)} persons, "
                  f"{1000 * per_image:.1f} ms/image, {per_image * (len(frames.files) - index - 1) / 60:.1f} min left",
                  flush=True)
    seconds = time.perf_counter() - start
    write_json(out, results)
    return {"detector": str(path), "images": read, "skipped": list(frames.skipped), "boxes": len(results),
            "empty": empty, "seconds": round(seconds, 2), "out": str(out)}


def summary_line(result: dict) -> str:
    skipped = f" ({len(result['skipped'])} skipped)" if result["skipped"] else ""
    return (f"{result['images']} images{skipped}, {result['boxes']} person boxes (none in {result['empty']} of the "
            f"images), {result['seconds']:.1f} s with {Path(result['detector']).name} -> {result['out']}")
