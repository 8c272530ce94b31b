"""``tfpose predict``: poses on an image, a folder of images or a video, with a Keras or a TFLite model.

Person boxes come from a detection file when one is given, else from OpenCV's HOG people detector (no download;
OpenCV 4.x has it, OpenCV 5 moved it out of the main package), else the whole frame is one person. Every box is
cropped as the model was trained (tfpose.evaluation), its keypoints go back to frame pixels, persons are linked
across frames by box overlap, and each track can be smoothed with a One-Euro filter. A .tflite runs through the
TensorFlow-free runtime with the metadata inside the file (tflite.adapters), so this also runs on a device.

Writes, atomically: ``keypoints.json`` (per frame, per person: box, keypoints (K, 3) as x, y, score in frame
pixels) and overlays - ``<name>.jpg`` per image, or ``<video>_overlay.mp4`` for a video.
Shape legend: N persons in a frame, K joints, H x W model input pixels.
"""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Literal

import cv2
import numpy as np

from tfpose.artifacts import atomic_path, write_bytes, write_json
from tfpose.data.detections import read_detections
from tfpose.data.transforms import apply_matrix, box_to_crop, crop_matrix, invert_matrix, warp_image
from tfpose.data.video import open_frames
from tfpose.errors import InputError, TfposeError
from tfpose.skeleton import COCO17, Skeleton
from tfpose.smoothing import OneEuroFilter, Smoothing
from tfpose.visualize import draw_skeleton

Detector = Literal["auto", "hog", "frame"]
DETECTORS: tuple[Detector, ...] = ("auto", "hog", "frame")


# -- models ------------------------------------------------------------------------------------------------------
@dataclass
class PoseModel:
    """Crops (N, H, W, 3) uint8 -> keypoints (N, K, 2) in crop pixels and scores (N, K)."""

    name: str
    predict: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]
    input_size: tuple[int, int]   # (W, H)
    padding: float
    skeleton: Skeleton


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
    from tfpose.pipeline import load_keras

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
class DetectionFile:
    """COCO detection results (a JSON list of {image_id or file_name, bbox [x, y, w, h], score}) per frame.

    A frame matches an entry by ``file_name``, else by ``image_id`` equal to the number in its file name
    (000003.jpg -> 3) or, for a video, to its frame index.
    """

    def __init__(self, path: str | Path, min_score: float = 0.0):
        self.path = Path(path)
        self.by_key: dict[object, list[tuple[list[float], float]]] = {}
        for det in read_detections(self.path, min_score):
            key = det.file_name if det.file_name is not None else det.image_id
            self.by_key.setdefault(key, []).append((list(det.box), det.score))

    def __call__(self, index: int, name: str, image: np.ndarray):
        stem_number = re.findall(r"\d+", Path(name.split("#")[0]).stem)
        keys = [name, index] if "#" in name else [name, int(stem_number[-1]) if stem_number else index]
        for key in keys:
            if key in self.by_key:
                return self.by_key[key]
        return []


def hog_available() -> bool:
    return hasattr(cv2, "HOGDescriptor") and hasattr(cv2, "HOGDescriptor_getDefaultPeopleDetector")


class HogDetector:
    """OpenCV's pedestrian HOG + linear SVM (Dalal and Triggs), on the frame shrunk to ``max_side`` for speed."""

    def __init__(self, min_score: float = 0.3, max_side: int = 640):
        if not hog_available():
            raise TfposeError("this OpenCV build has no HOG people detector (OpenCV 5 moved it out of the main "
                              "package): pass --detections FILE or --detector frame")
        self.hog = cv2.HOGDescriptor()
        self.hog.setSVMDetector(cv2.HOGDescriptor_getDefaultPeopleDetector())
        self.min_score, self.max_side = min_score, max_side

    def __call__(self, index: int, name: str, image: np.ndarray):
        scale = min(1.0, self.max_side / max(image.shape[:2]))
        small = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA) if scale < 1 else image
        rects, weights = self.hog.detectMultiScale(cv2.cvtColor(small, cv2.COLOR_RGB2GRAY), winStride=(8, 8),
                                                   padding=(8, 8), scale=1.05)
        if len(rects) == 0:
            return []
        weights = np.asarray(weights, np.float64).ravel()
        keep = cv2.dnn.NMSBoxes([list(map(int, r)) for r in rects], weights.tolist(), self.min_score, 0.4) \
            if hasattr(cv2, "dnn") else np.flatnonzero(weights >= self.min_score)
        return [([float(v) / scale for v in rects[i]], float(weights[i])) for i in np.asarray(keep).ravel()]


def whole_frame(index: int, name: str, image: np.ndarray):
    h, w = image.shape[:2]
    return [([0.0, 0.0, float(w), float(h)], 1.0)]


def make_detector(detections: str | Path | None, detector: Detector, min_score: float):
    """(the detector callable, its name): a file beats HOG, HOG (where OpenCV has it) beats the whole frame."""
    if detections is not None:
        return DetectionFile(detections, min_score), "file"
    if detector == "hog" or (detector == "auto" and hog_available()):
        return HogDetector(max(min_score, 0.3)), "hog"
    return whole_frame, "frame"


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


# -- the command -------------------------------------------------------------------------------------------------
def estimate(model: PoseModel, image: np.ndarray, boxes: list[list[float]]) -> tuple[np.ndarray, np.ndarray]:
    """Keypoints (N, K, 2) in frame pixels and scores (N, K) for the N boxes of one frame (H, W, 3)."""
    if not boxes:
        return np.zeros((0, model.skeleton.num_keypoints, 2), np.float32), np.zeros((0, 0), np.float32)
    matrices = [crop_matrix(box_to_crop(b, model.input_size, model.padding), model.input_size) for b in boxes]
    crops = np.stack([warp_image(image, m, model.input_size) for m in matrices])
    keypoints, scores = model.predict(crops)
    in_frame = np.stack([apply_matrix(kp, invert_matrix(m)) for kp, m in zip(keypoints, matrices)])
    # a padded crop reaches past the frame, where it is black: a joint found there is clamped to the frame's edge
    h, w = image.shape[:2]
    in_frame = np.clip(in_frame, 0, [w - 1, h - 1])
    return in_frame.astype(np.float32), np.asarray(scores, np.float32)


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


def predict(source: str | Path, model_path: str | Path, out_dir: str | Path, detections: str | Path | None = None,
            detector: Detector = "auto", smooth: Smoothing = "none", det_min_score: float = 0.0,
            padding: float | None = None, threshold: float = 0.2, threads: int = 1, overlays: bool = True) -> dict:
    """Run ``model_path`` on every frame of ``source``; write keypoints.json and overlays into ``out_dir``.

    Returns what keypoints.json holds: {"source", "model", "detector", "smoothing", "keypoint_names",
    "frames": [{"frame", "name", "width", "height", "persons": [{"track_id", "box", "box_score", "keypoints"}]}]}.
    """
    frames = open_frames(source)
    model = load_pose_model(model_path, padding, threads)
    detect, detector_name = make_detector(detections, detector, det_min_score)
    tracker = Tracker(smooth, frames.fps)
    out_dir = Path(out_dir)
    records = []
    with contextlib.ExitStack() as stack:
        video = stack.enter_context(VideoOut(out_dir / f"{frames.path.stem}_overlay.mp4", frames.fps)) \
            if overlays and frames.kind == "video" else None
        for index, name, image in frames:
            found = detect(index, name, image)
            boxes = [b for b, _ in found]
            keypoints, scores = estimate(model, image, boxes)
            persons = []
            for tid, (box, box_score), kp, sc in zip(tracker.assign(boxes), found, keypoints, scores):
                kp = tracker.filter(tid, kp)
                persons.append({"track_id": tid, "box": [round(float(v), 2) for v in box],
                                "box_score": round(float(box_score), 4),
                                "keypoints": [[round(float(x), 2), round(float(y), 2), round(float(s), 4)]
                                              for (x, y), s in zip(kp, sc)]})
            records.append({"frame": index, "name": name, "width": int(image.shape[1]),
                            "height": int(image.shape[0]), "persons": persons})
            if not overlays:
                continue
            drawn = draw_frame(image, persons, model.skeleton, threshold)
            if video is not None:
                video.write(drawn)
            else:
                ok, buf = cv2.imencode(".jpg", cv2.cvtColor(drawn, cv2.COLOR_RGB2BGR))
                write_bytes(out_dir / "overlays" / f"{Path(name).stem}.jpg", buf.tobytes())
    result = {"source": str(frames.path), "kind": frames.kind, "model": model.name, "detector": detector_name,
              "smoothing": smooth, "fps": frames.fps, "keypoint_names": list(model.skeleton.keypoints),
              "frames": records}
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
    return (f"{len(result['frames'])} frames, {persons} persons ({result['detector']} boxes, smoothing "
            f"{result['smoothing']}) -> {Path(out_dir) / 'keypoints.json'}")

