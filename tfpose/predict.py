"""``tfpose predict``: every person's pose on an image, a folder of images, a video or a camera, with a Keras or a
TFLite pose model and a person detector.

Person boxes come from a tfpose person detector (.tflite; default: ``detector.tflite`` beside the pose model, else
the repository's ``android_assets/``), or from a detection file. Every box is cropped as the model was trained,
its keypoints go back to frame pixels (``tfpose.whole_image``). In a video or a camera stream the detector runs
every ``detect_every`` frames; in between, each person's crop follows from their previous keypoints (MoveNet's
crop-region rule), and the detector runs again as soon as a track is lost. Persons keep track ids across frames,
and each track can be smoothed with a One-Euro filter. A .tflite runs through the TensorFlow-free runtime.

Writes, atomically: ``keypoints.json`` (per frame, per person: box, keypoints (K, 3) as x, y, score in frame
pixels), ``results.json`` (COCO keypoint results that pycocotools reads) and overlays - ``<name>.jpg`` per image,
or ``<video>_overlay.mp4`` for a video or camera.
Shape legend: N persons in a frame, K joints, H x W model input pixels.
"""

from __future__ import annotations

import contextlib
import re
import time
from pathlib import Path

import cv2
import numpy as np

from tfpose.artifacts import atomic_path, write_bytes, write_json
from tfpose.data.detections import read_detections
from tfpose.data.video import open_frames
from tfpose.errors import InputError, TfposeError
from tfpose.skeleton import COCO17, Skeleton
from tfpose.smoothing import OneEuroFilter, Smoothing
from tfpose.visualize import draw_skeleton
from tfpose.whole_image import PoseModel, estimate

REPOSITORY_ASSETS = Path(__file__).resolve().parents[1] / "android_assets"
DETECTOR_FILE = "detector.tflite"


# -- models ------------------------------------------------------------------------------------------------------
def load_pose_model(path: str | Path, padding: float | None = None, threads: int = 1) -> PoseModel:
    """A tfpose .tflite (metadata inside; TensorFlow is not imported) or a Keras .keras heatmap model."""
    path = Path(path)
    if not path.is_file():
        raise InputError("model file not found", path=path)
    if path.suffix == ".tflite":
        from tflite.adapters import load_adapter

        adapter = load_adapter(path, num_threads=threads, padding=padding)
        return PoseModel(path.stem, adapter.predict, adapter.input_size,
                         float(padding or adapter.padding), adapter.skeleton)
    if path.suffix in (".keras", ".h5"):
        return _keras_pose_model(path, 1.25 if padding is None else padding)
    raise InputError("not a model: expected a .tflite (tfpose export) or a Keras .keras file", path=path)


def _keras_pose_model(path: Path, padding: float) -> PoseModel:
    from tfpose.codec import HeatmapCodec
    from tfpose.config import CodecConfig
    from tfpose.models.registry import deployable
    from tfpose.keras_io import load_keras

    model = deployable(load_keras(path))
    in_shape, out_shape = model.input_shape, model.output_shape
    if len(in_shape) != 4 or in_shape[-1] != 3 or len(out_shape) != 4 or not out_shape[2]:
        raise InputError(f"expected an image-to-heatmaps model, got {in_shape} -> {out_shape}", path=path)
    width, height = int(in_shape[2]), int(in_shape[1])
    codec = HeatmapCodec((width, height), width // int(out_shape[2]), peak_blur=CodecConfig.peak_blur)
    skeleton = COCO17 if out_shape[-1] == 17 else None
    if skeleton is None:
        raise InputError(f"the model predicts {out_shape[-1]} joints; predict draws COCO-17", path=path)

    def predict(crops: np.ndarray):
        return codec.decode(model(crops.astype(np.float32), training=False).numpy())

    return PoseModel(path.stem, predict, (width, height), padding, skeleton)


# -- person boxes ------------------------------------------------------------------------------------------------
Boxes = list[tuple[list[float], float]]   # ([x, y, w, h] frame pixels, score) per person


class DetectionFile:
    """COCO detection results (a JSON list of {image_id or file_name, bbox [x, y, w, h], score}) per frame.

    A frame matches an entry by ``file_name``, else by ``image_id`` equal to the number in its file name
    (000003.jpg -> 3) or, for a video, to its frame index.
    """

    name = "file"

    def __init__(self, path: str | Path, min_score: float = 0.0):
        self.path = Path(path)
        self.by_key: dict[object, Boxes] = {}
        for det in read_detections(self.path, min_score):
            key = det.file_name if det.file_name is not None else det.image_id
            self.by_key.setdefault(key, []).append((list(det.box), det.score))

    def __call__(self, index: int, name: str, image: np.ndarray) -> Boxes:
        stem_number = re.findall(r"\d+", Path(name.split("#")[0]).stem)
        keys = [name, index] if "#" in name else [name, int(stem_number[-1]) if stem_number else index]
        for key in keys:
            if key in self.by_key:
                return self.by_key[key]
        return []


class PersonDetector:
    """A tfpose person detector .tflite as a box source: frame -> boxes scoring at least ``min_score``."""

    def __init__(self, path: str | Path, min_score: float = 0.3, threads: int = 1, max_persons: int = 20):
        from tflite.detector import TFLiteDetector

        self.model = TFLiteDetector(path, num_threads=threads)
        self.name, self.min_score, self.max_persons = str(path), min_score, max_persons

    def __call__(self, index: int, name: str, image: np.ndarray) -> Boxes:
        found = self.model(image, self.min_score)
        return [([float(v) for v in b], float(s)) for b, s in zip(found.boxes[: self.max_persons],
                                                                  found.scores[: self.max_persons])]


def whole_frame(index: int, name: str, image: np.ndarray) -> Boxes:
    h, w = image.shape[:2]
    return [([0.0, 0.0, float(w), float(h)], 1.0)]


def default_detector(model_path: str | Path | None = None) -> Path:
    """The person detector that goes with a pose model: ``detector.tflite`` beside it, else the repository's (no
    model: the repository's)."""
    candidates = [REPOSITORY_ASSETS / DETECTOR_FILE]
    if model_path is not None:
        candidates.insert(0, Path(model_path).parent / DETECTOR_FILE)
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    others = ", --detections FILE, or --detector frame" if model_path is not None else ""
    raise InputError(f"no person detector at {' or '.join(map(str, candidates))}; pass --detector FILE "
                     f"(`tfpose export-detector`){others}")


def make_box_source(detections: str | Path | None, detector: str | Path | None, model_path: str | Path,
                    min_score: float, threads: int = 1):
    """(the box source, its name): a detection file beats a detector; ``detector`` is a .tflite, "frame" (the
    whole frame is one person) or None (the default detector, ``default_detector``)."""
    if detections is not None:
        return DetectionFile(detections, min_score), "file"
    if detector == "frame":
        return whole_frame, "frame"
    path = Path(detector) if detector is not None else default_detector(model_path)
    source = PersonDetector(path, min_score, threads)
    return source, f"detector {path.name}"


# -- tracks ------------------------------------------------------------------------------------------------------
def box_iou(a, b) -> float:
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    iw = max(0.0, min(ax + aw, bx + bw) - max(ax, bx))
    ih = max(0.0, min(ay + ah, by + bh) - max(ay, by))
    inter = iw * ih
    union = aw * ah + bw * bh - inter
    return inter / union if union > 0 else 0.0


class Tracker:
    """Greedy box-overlap linking of persons between consecutive frames; each track owns its One-Euro filter."""

    def __init__(self, smooth: Smoothing, fps: float, min_iou: float = 0.3):
        self.smooth, self.fps, self.min_iou = smooth, fps, min_iou
        self.previous: list[tuple[int, list[float]]] = []
        self.filters: dict[int, OneEuroFilter] = {}
        self.next_id = 0

    def assign(self, boxes: list[list[float]]) -> list[int]:
        pairs = sorted(((box_iou(b, pb), i, tid) for i, b in enumerate(boxes) for tid, pb in self.previous),
                       reverse=True)
        ids: dict[int, int] = {}
        used = set()
        for iou, i, tid in pairs:
            if iou >= self.min_iou and i not in ids and tid not in used:
                ids[i] = tid
                used.add(tid)
        for i in range(len(boxes)):
            if i not in ids:
                ids[i], self.next_id = self.next_id, self.next_id + 1
        self.previous = [(ids[i], b) for i, b in enumerate(boxes)]
        for tid in list(self.filters):   # a track that is gone restarts its filter if it ever comes back
            if tid not in used and tid not in ids.values():
                del self.filters[tid]
        return [ids[i] for i in range(len(boxes))]

    def filter(self, track_id: int, keypoints: np.ndarray) -> np.ndarray:
        """(K, 2) frame pixels, smoothed along the track when smoothing is on."""
        if self.smooth == "none":
            return keypoints
        f = self.filters.setdefault(track_id, OneEuroFilter(self.fps))
        return f(keypoints).astype(np.float32)


def crop_region(keypoints: np.ndarray, scores: np.ndarray, frame_size: tuple[int, int], skeleton: Skeleton = COCO17,
                min_score: float = 0.1) -> list[float] | None:
    """Where to look for a person in the next frame, from their keypoints (K, 2) in this one: MoveNet's crop-region
    rule, a square about the hips whose half side is the larger of 1.9 x the torso's and 1.2 x the body's extent
    from there, as [x, y, w, h]. None when the torso is not seen (the track is lost: detect again)."""
    names = list(skeleton.keypoints)
    torso = [names.index(n) for n in ("left_shoulder", "right_shoulder", "left_hip", "right_hip")]
    hips = torso[2:]
    seen = scores >= min_score
    if not (seen[hips].any() and seen[torso[:2]].any()):
        return None
    centre = keypoints[hips][seen[hips]].mean(0)
    torso_extent = np.abs(keypoints[torso][seen[torso]] - centre).max()
    body_extent = np.abs(keypoints[seen] - centre).max()
    half = max(1.9 * torso_extent, 1.2 * body_extent)
    w, h = frame_size
    half = min(half, max(centre[0], w - centre[0], centre[1], h - centre[1]))
    return [float(centre[0] - half), float(centre[1] - half), float(2 * half), float(2 * half)]


def region_box(region: list[float], padding: float) -> list[float]:
    """The person box whose padded crop is ``region``: the crop region shrunk by the model's padding."""
    x, y, w, h = region
    return [x + w * (1 - 1 / padding) / 2, y + h * (1 - 1 / padding) / 2, w / padding, h / padding]


# -- the command -------------------------------------------------------------------------------------------------
def draw_frame(image: np.ndarray, persons: list[dict], skeleton: Skeleton, threshold: float) -> np.ndarray:
    """A copy of ``image`` (H, W, 3) RGB with each person's box and skeleton; line widths follow the frame size."""
    thickness = max(1, round(max(image.shape[:2]) / 400))
    out = image
    for p in persons:
        kp = np.asarray(p["keypoints"], np.float32)
        out = draw_skeleton(out, kp[:, :2], kp[:, 2], skeleton, threshold)
        x, y, w, h = (int(round(v)) for v in p["box"])
        cv2.rectangle(out, (x, y), (x + w, y + h), (255, 255, 255), thickness)
        cv2.putText(out, f"#{p['track_id']}", (x + 3, y + 16 * thickness), cv2.FONT_HERSHEY_SIMPLEX,
                    0.5 * thickness, (255, 255, 255), thickness, cv2.LINE_AA)
    return out


def image_ids_by_name(annotations: str | Path) -> dict[str, int]:
    """file_name -> image id of a COCO annotation file, so that results can be scored against it."""
    from tfpose.data.fields import read_json

    raw = read_json(Path(annotations), "annotation file not found")
    images = raw.get("images") if isinstance(raw, dict) else None
    if not isinstance(images, list):
        raise InputError("expected a COCO object with an 'images' list", path=annotations, field="images")
    ids = {}
    for i, im in enumerate(images):
        if not isinstance(im, dict) or not isinstance(im.get("file_name"), str) or \
                not isinstance(im.get("id"), int) or isinstance(im.get("id"), bool):
            raise InputError("expected {id: integer, file_name: string}", path=annotations, field=f"images[{i}]")
        ids[Path(im["file_name"]).name] = im["id"]
    return ids


def frame_image_id(index: int, name: str, ids: dict[str, int] | None) -> int | None:
    """The COCO image id of a frame: by file name from ``ids``, else the number in the file name (a video or
    camera frame: its index)."""
    if "#" in name:
        return index
    if ids is not None:
        return ids.get(name)
    digits = re.findall(r"\d+", Path(name).stem)
    return int(digits[-1]) if digits else index


def predict(source: str | Path, model_path: str | Path, out_dir: str | Path, detections: str | Path | None = None,
            detector: str | Path | None = None, smooth: Smoothing = "none", det_min_score: float = 0.3,
            padding: float | None = None, threshold: float = 0.2, threads: int = 1, overlays: bool = True,
            detect_every: int = 5, annotations: str | Path | None = None, max_frames: int | None = None) -> dict:
    """Run ``model_path`` on every frame of ``source``; write keypoints.json, results.json and overlays into
    ``out_dir``.

    detector: a person detector .tflite, "frame", or None for the default (``default_detector``).
    detect_every: in a video or camera stream, the detector runs on every N-th frame and whenever a followed track
    is lost; in between, each track's crop follows its previous keypoints (``crop_region``). 1: detect on every
    frame.
    annotations: a COCO file whose image ids the results take, by file name.
    Returns what keypoints.json holds: {"source", "model", "detector", "smoothing", "keypoint_names", "frames":
    [{"frame", "name", "width", "height", "detected", "ms", "persons": [{"track_id", "box", "box_score",
    "keypoints"}]}]}.
    """
    if detect_every < 1:
        raise InputError(f"must be at least 1, got {detect_every}", field="--detect-every")
    frames = open_frames(source, max_frames)
    model = load_pose_model(model_path, padding, threads)
    find_boxes, detector_name = make_box_source(detections, detector, model_path, det_min_score, threads)
    ids = image_ids_by_name(annotations) if annotations is not None else None
    streaming = frames.kind in ("video", "camera")
    follow = streaming and detect_every > 1 and isinstance(find_boxes, PersonDetector)
    tracker = Tracker(smooth, frames.fps)
    out_dir = Path(out_dir)
    records, results = [], []
    following: list[tuple[int, list[float], float]] = []     # (track id, crop region, box score) per person
    since_detection = 0
    with contextlib.ExitStack() as stack:
        video = stack.enter_context(VideoOut(out_dir / f"{frames.path.stem}_overlay.mp4", frames.fps)) \
            if overlays and streaming else None
        for index, name, image in frames:
            start = time.perf_counter()
            detect = not follow or not following or since_detection >= detect_every
            if detect:
                found = find_boxes(index, name, image)
                boxes, box_scores = [b for b, _ in found], [s for _, s in found]
                track_ids = tracker.assign(boxes)
                since_detection = 1
            else:
                track_ids, boxes, box_scores = (list(v) for v in zip(*following))
                tracker.previous = list(zip(track_ids, boxes))
                since_detection += 1
            keypoints, scores = estimate(model, image, boxes)
            size = (image.shape[1], image.shape[0])
            following = []
            if follow:
                regions = [crop_region(kp, sc, size, model.skeleton) for kp, sc in zip(keypoints, scores)]
                following = [(t, region_box(r, model.padding), s)
                             for t, r, s in zip(track_ids, regions, box_scores) if r is not None]
                # a followed track that loses its torso is lost: the detector looks again on the next frame; a box
                # that shows no torso when it is detected (a dog, a far-away face) is just not followed
                if not detect and len(following) < len(regions):
                    following = []
            persons = []
            for tid, box, box_score, kp, sc in zip(track_ids, boxes, box_scores, keypoints, scores):
                kp = tracker.filter(tid, kp)
                persons.append({"track_id": tid, "box": [round(float(v), 2) for v in box],
                                "box_score": round(float(box_score), 4),
                                "keypoints": [[round(float(x), 2), round(float(y), 2), round(float(s), 4)]
                                              for (x, y), s in zip(kp, sc)]})
            ms = 1000 * (time.perf_counter() - start)
            records.append({"frame": index, "name": name, "width": size[0], "height": size[1], "detected": detect,
                            "ms": round(ms, 2), "persons": persons})
            image_id = frame_image_id(index, name, ids)
            if image_id is not None:
                for p in persons:
                    kp = np.asarray(p["keypoints"], np.float64)
                    results.append({"image_id": image_id, "category_id": 1, "keypoints": kp.ravel().tolist(),
                                    "score": round(float(p["box_score"] * np.clip(kp[:, 2], 0, None).mean()), 5)})
            if not overlays:
                continue
            drawn = draw_frame(image, persons, model.skeleton, threshold)
            if video is not None:
                video.write(drawn)
            else:
                ok, buf = cv2.imencode(".jpg", cv2.cvtColor(drawn, cv2.COLOR_RGB2BGR))
                write_bytes(out_dir / "overlays" / f"{Path(name).stem}.jpg", buf.tobytes())
    result = {"source": str(frames.path), "kind": frames.kind, "model": model.name, "detector": detector_name,
              "detect_every": detect_every if follow else 1, "smoothing": smooth, "fps": frames.fps,
              "keypoint_names": list(model.skeleton.keypoints), "skipped_frames": frames.skipped, "frames": records}
    write_json(out_dir / "results.json", results)
    write_json(out_dir / "keypoints.json", result)
    return result


class VideoOut:
    """An mp4 written frame by frame (MPEG-4 Part 2, which every OpenCV build writes) under a temporary name,
    renamed into place only when the context exits without an error."""

    def __init__(self, path: Path, fps: float):
        self.path, self.fps = Path(path), fps
        self.writer = None

    def __enter__(self) -> "VideoOut":
        self._atomic = atomic_path(self.path)
        self.tmp = self._atomic.__enter__()
        return self

    def write(self, frame: np.ndarray) -> None:
        """One RGB frame (H, W, 3) uint8; the first one fixes the size."""
        if self.writer is None:
            h, w = frame.shape[:2]
            self.writer = cv2.VideoWriter(str(self.tmp), cv2.VideoWriter_fourcc(*"mp4v"), self.fps, (w, h))
            if not self.writer.isOpened():
                raise TfposeError(f"{self.path}: OpenCV cannot write mp4 video here")
        self.writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))

    def __exit__(self, *exc) -> bool:
        if self.writer is not None:
            self.writer.release()
        return bool(self._atomic.__exit__(*exc))


def summary_line(result: dict, out_dir: str | Path) -> str:
    persons = sum(len(f["persons"]) for f in result["frames"])
    ms = np.median([f["ms"] for f in result["frames"]])
    skipped = f", {len(result['skipped_frames'])} skipped" if result["skipped_frames"] else ""
    return (f"{len(result['frames'])} frames{skipped}, {persons} persons ({result['detector']} boxes, smoothing "
            f"{result['smoothing']}), {ms:.1f} ms per frame -> {Path(out_dir) / 'keypoints.json'}")

