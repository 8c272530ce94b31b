"""Video data (numpy + OpenCV only): frame sources for inference, and readers of frame sequences with per-frame
pose annotations, every layout mapped to COCO-17.

Readers:
- ``load_video_coco``: COCO-style JSON with video ids - PoseTrack18 (its per-video files, 17 joints with
  ``head_bottom``/``head_top`` where COCO has eyes) and mmpose's JHMDB (15 joints: neck, belly, head, ...).
  Images are grouped by ``vid_id`` (or ``video_id``) and ordered by ``frame_id``; joints are mapped to COCO-17 by name,
  so a layout whose names COCO lacks simply leaves those COCO joints unlabelled.
- ``load_penn_action``: Penn Action's ``frames/<video>/NNNNNN.jpg`` + ``labels/<video>.mat`` (13 joints).

Shape legend: K = 17 COCO joints; keypoints (K, 2) image pixels; visibility (K,) in {0, 1, 2}.
"""

from __future__ import annotations

import math
import sys
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np

from tfpose.data.coco import Person
from tfpose.data.fields import ID_LIMIT, UniqueIds, flag, integer, numbers, read_json, shown, text
from tfpose.data.images import read_rgb
from tfpose.data.matfile import read_mat
from tfpose.errors import InputError
from tfpose.skeleton import COCO17

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm")

# names other datasets use for a COCO joint; everything else maps by its own name (left_wrist, ...)
_ALIASES = {"l_shoulder": "left_shoulder", "r_shoulder": "right_shoulder", "l_elbow": "left_elbow",
            "r_elbow": "right_elbow", "l_wrist": "left_wrist", "r_wrist": "right_wrist", "l_hip": "left_hip",
            "r_hip": "right_hip", "l_knee": "left_knee", "r_knee": "right_knee", "l_ankle": "left_ankle",
            "r_ankle": "right_ankle"}
PENN_ACTION_JOINTS = ("head", "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist",
                      "right_wrist", "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle")
POSETRACK18_JOINTS = ("nose", "head_bottom", "head_top", "left_ear", "right_ear", "left_shoulder", "right_shoulder",
                      "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hip", "right_hip", "left_knee",
                      "right_knee", "left_ankle", "right_ankle")


def coco17_index(names) -> np.ndarray:
    """(K_src,) index of each source joint in COCO-17, -1 where COCO has no such joint."""
    coco = {n: i for i, n in enumerate(COCO17.keypoints)}
    return np.array([coco.get(_ALIASES.get(n.lower(), n.lower()), -1) for n in names], np.int64)


def to_coco17(keypoints: np.ndarray, visibility: np.ndarray, names) -> tuple[np.ndarray, np.ndarray]:
    """(K_src, 2), (K_src,) in the source layout -> (17, 2), (17,) COCO-17; unmapped COCO joints unlabelled."""
    index = coco17_index(names)
    kp, vis = np.zeros((17, 2), np.float32), np.zeros(17, np.int64)
    ok = index >= 0
    kp[index[ok]] = keypoints[ok]
    vis[index[ok]] = visibility[ok]
    return kp, vis


@dataclass(frozen=True)
class TrackedPerson:
    track_id: int
    person: Person          # keypoints and visibility already in COCO-17


@dataclass
class VideoFrame:
    index: int              # position in the video (0-based)
    image_path: Path
    labelled: bool
    persons: list[TrackedPerson] = field(default_factory=list)


@dataclass
class VideoSequence:
    name: str
    frames: list[VideoFrame]
    source_layout: tuple[str, ...]    # the file's own joint names, before mapping to COCO-17

    def track(self, track_id: int) -> tuple[np.ndarray, np.ndarray]:
        """One person over the labelled frames: keypoints (T, 17, 2), visibility (T, 17); zeros where absent."""
        kp, vis = np.zeros((len(self.frames), 17, 2), np.float32), np.zeros((len(self.frames), 17), np.int64)
        for t, frame in enumerate(self.frames):
            for p in frame.persons:
                if p.track_id == track_id:
                    kp[t], vis[t] = p.person.keypoints, p.person.visibility
        return kp, vis

    @property
    def track_ids(self) -> list[int]:
        return sorted({p.track_id for f in self.frames for p in f.persons})


def load_video_coco(annotation_file: str | Path, image_root: str | Path) -> list[VideoSequence]:
    """PoseTrack18 / JHMDB-style COCO JSON with video ids -> sequences in frame order, joints in COCO-17.

    Checked as ``load_coco`` checks: image, annotation and (per video) frame ids unique, every annotation's image
    listed, numbers finite, visibility flags 0, 1 or 2.
    """
    path, image_root = Path(annotation_file), Path(image_root)
    raw = read_json(path, "annotation file not found")
    for key in ("images", "annotations", "categories"):
        if not isinstance(raw, dict) or not isinstance(raw.get(key), list):
            raise InputError("missing or not a list", path=path, field=key)
    names = _joint_names(raw["categories"], path)
    images: dict[int, dict] = {}
    videos: dict[str, dict[int, int]] = {}      # video -> frame id -> image id
    image_ids = UniqueIds(path, "image id")
    for i, im in enumerate(raw["images"]):
        where = f"images[{i}]"
        vid = im.get("vid_id", im.get("video_id")) if isinstance(im, dict) else None
        if vid is None or "id" not in im or "file_name" not in im:
            raise InputError("needs 'id', 'file_name' and 'vid_id'", path=path, field=where)
        if not (isinstance(vid, str) and vid or isinstance(vid, int) and not isinstance(vid, bool)):
            raise InputError(f"expected a string or an integer, got {shown(vid)}", path=path, field=f"{where}.vid_id")
        image_id = image_ids.add(integer(im["id"], path, f"{where}.id"), f"{where}.id")
        text(im["file_name"], path, f"{where}.file_name")
        flag(im.get("is_labeled", True), path, f"{where}.is_labeled")
        frame_id = integer(im.get("frame_id", image_id), path, f"{where}.frame_id")
        frames = videos.setdefault(str(vid), {})
        if frame_id in frames:
            raise InputError(f"frame id {frame_id} appears twice in video {vid}", path=path, field=f"{where}.frame_id")
        frames[frame_id] = image_id
        images[image_id] = im
    by_image: dict[int, list[tuple[str, dict]]] = {}
    ann_ids = UniqueIds(path, "annotation id")
    for i, a in enumerate(raw["annotations"]):
        where = f"annotations[{i}]"
        if not isinstance(a, dict):
            raise InputError("expected an object", path=path, field=where)
        if "id" in a:
            ann_ids.add(integer(a["id"], path, f"{where}.id"), f"{where}.id")
        if "image_id" not in a:
            raise InputError("missing", path=path, field=f"{where}.image_id")
        image_id = integer(a["image_id"], path, f"{where}.image_id")
        if image_id not in images:
            raise InputError(f"image id {image_id} is not in 'images'", path=path, field=f"{where}.image_id")
        by_image.setdefault(image_id, []).append((where, a))
    sequences = []
    for vid, frames in sorted(videos.items()):
        sequence = []
        for index, (_, image_id) in enumerate(sorted(frames.items())):
            im = images[image_id]
            image_path = image_root / im["file_name"]
            persons = [_tracked_person(a, where, j, image_id, image_path, names, path)
                       for j, (where, a) in enumerate(by_image.get(image_id, []))]
            sequence.append(VideoFrame(index, image_path, bool(im.get("is_labeled", True)), persons))
        sequences.append(VideoSequence(vid, sequence, names))
    return sequences


def _joint_names(categories: list, path: Path) -> tuple[str, ...]:
    names = categories[0].get("keypoints") if categories and isinstance(categories[0], dict) else None
    field = "categories[0].keypoints"
    if not isinstance(names, list) or not names:
        raise InputError("missing the joint names", path=path, field=field)
    for j, name in enumerate(names):
        text(name, path, f"{field}[{j}]")
    doubled = sorted({n for n in names if names.count(n) > 1})
    if doubled:
        raise InputError(f"joint names appear twice: {', '.join(doubled)}", path=path, field=field)
    return tuple(names)


def _tracked_person(a: dict, where: str, j: int, image_id: int, image_path: Path, names: tuple[str, ...],
                    path: Path) -> TrackedPerson:
    """One annotation in COCO-17; ``j``, its place among its image's annotations, is the default id and track."""
    k = len(names)
    arr = numbers(a.get("keypoints"), 3 * k, path, f"{where}.keypoints", np.float32).reshape(k, 3)
    if not np.isin(arr[:, 2], (0, 1, 2)).all():
        raise InputError("visibility flags must be 0, 1 or 2", path=path, field=f"{where}.keypoints")
    # PoseTrack stores visibility as 0/1, JHMDB as 0/2: anything labelled counts as visible
    kp, vis = to_coco17(arr[:, :2], np.where(arr[:, 2] > 0, 2, 0), names)
    if a.get("bbox"):
        box = tuple(float(v) for v in numbers(a["bbox"], 4, path, f"{where}.bbox", layout="[x, y, w, h]"))
    else:
        box = _box_of(kp, vis)
    person = Person(image_id, integer(a.get("id", j), path, f"{where}.id"), image_path, box, kp, vis,
                    _area(box, path, f"{where}.bbox"))
    return TrackedPerson(integer(a.get("track_id", j), path, f"{where}.track_id", minimum=-ID_LIMIT), person)


def _area(box: tuple[float, float, float, float], path: Path, field: str) -> float:
    if box[2] < 0 or box[3] < 0:
        raise InputError(f"width and height must be >= 0, got {box[2]:g} x {box[3]:g}", path=path, field=field)
    area = box[2] * box[3]
    if not math.isfinite(area):
        raise InputError(f"w x h is not finite ({area})", path=path, field=field)
    return area


def load_penn_action(root: str | Path, video: str) -> VideoSequence:
    """Penn Action: ``root/frames/<video>/*.jpg`` and ``root/labels/<video>.mat`` (x, y, visibility, bbox;
    13 joints, one person). Needs scipy (a training-machine dependency) to read the .mat file."""
    root = Path(root)
    label_file = root / "labels" / f"{video}.mat"
    if not label_file.is_file():
        raise InputError("label file not found", path=label_file)
    frame_paths = list_images(root / "frames" / video)
    mat = read_mat(label_file, ("x", "y", "visibility"), optional=("bbox",))
    shape = (len(frame_paths), len(PENN_ACTION_JOINTS))
    x, y, vis = (_frames_array(mat[key], shape, label_file, key) for key in ("x", "y", "visibility"))
    boxes = _frames_array(mat["bbox"], (len(frame_paths), 4), label_file, "bbox") if "bbox" in mat else None
    frames = []
    for t, path in enumerate(frame_paths):
        kp, v = to_coco17(np.stack([x[t], y[t]], -1), np.where(vis[t] > 0, 2, 0), PENN_ACTION_JOINTS)
        if boxes is not None:   # Penn Action boxes are [x1, y1, x2, y2]
            x1, y1, x2, y2 = (float(c) for c in boxes[t])
            box = (x1, y1, x2 - x1, y2 - y1)
        else:
            box = _box_of(kp, v)
        person = Person(t, t, path, box, kp, v, _area(box, label_file, f"bbox[{t}]" if boxes is not None else "x"))
        frames.append(VideoFrame(t, path, True, [TrackedPerson(0, person)]))
    return VideoSequence(video, frames, PENN_ACTION_JOINTS)


def _frames_array(value: np.ndarray, shape: tuple[int, int], path: Path, field: str) -> np.ndarray:
    """``value`` as float32 (T, C), checked for its shape and for numbers that are finite as float32."""
    if value.shape != shape:
        raise InputError(f"has shape {value.shape}, expected ({shape[0]} frames, {shape[1]})", path=path, field=field)
    with np.errstate(over="ignore"):
        array = value.astype(np.float32)
    bad = np.argwhere(~np.isfinite(array))
    if bad.size:
        t, c = bad[0]
        raise InputError(f"{len(bad)} numbers not finite as float32, the first {value[t, c]:g} at frame {t + 1}, "
                         f"column {c + 1}", path=path, field=field)
    return array


def _box_of(keypoints: np.ndarray, visibility: np.ndarray) -> tuple[float, float, float, float]:
    """[x, y, w, h] around the labelled joints."""
    pts = keypoints[visibility > 0].astype(np.float64)   # float32 extents can overflow
    if not len(pts):
        return (0.0, 0.0, 0.0, 0.0)
    lo, hi = pts.min(0), pts.max(0)
    return (float(lo[0]), float(lo[1]), float(hi[0] - lo[0]), float(hi[1] - lo[1]))


# -- frame sources for inference ---------------------------------------------------------------------------------
def list_images(folder: str | Path) -> list[Path]:
    """Image files of ``folder`` in natural order (frame2 before frame10)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError("folder not found", path=folder)
    files = [p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES]
    if not files:
        raise InputError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in the folder", path=folder)
    return sorted(files, key=lambda p: [int(s) if s.isdigit() else s for s in re.split(r"(\d+)", p.name)])


@dataclass
class FrameSource:
    """Frames of an image, a folder of images, a video file or a camera, read one at a time as (H, W, 3) uint8 RGB.

    A frame that cannot be decoded is skipped with a warning that names it; a source that yields no frame at all
    is an InputError naming it.
    """

    path: Path
    kind: str                   # "image", "folder", "video" or "camera"
    files: list[Path]           # the image files; for a video, the video alone; for a camera, none
    fps: float = 30.0
    max_frames: int | None = None   # a camera streams until this many frames (None: until it stops)
    skipped: list[str] = field(default_factory=list)

    def __iter__(self) -> Iterator[tuple[int, str, np.ndarray]]:
        """(frame index, name, image) triples."""
        if self.kind in ("image", "folder"):
            yield from self._images()
        else:
            yield from self._capture()

    def _images(self):
        read = 0
        for i, f in enumerate(self.files):
            try:
                image = read_rgb(f)
            except InputError as e:
                if self.kind == "image":
                    raise
                self._skip(f.name, str(e))
                continue
            read += 1
            yield i, f.name, image
        if not read:
            raise InputError(f"no decodable image: {', '.join(self.skipped)}", path=self.path)

    def _capture(self):
        camera = self.kind == "camera"
        capture = cv2.VideoCapture(int(self.path.name) if camera else str(self.path))
        index, read = 0, 0
        try:
            if not capture.isOpened():
                raise InputError("camera cannot be opened" if camera else "video cannot be opened", path=self.path)
            total = 0 if camera else int(capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
            while self.max_frames is None or index < self.max_frames:
                ok, frame = capture.read()
                if not ok or frame is None:
                    # a frame the codec cannot decode mid-file: skip it while the container says more follow
                    if not camera and index < total - 1 and len(self.skipped) < 100:
                        self._skip(f"{self.path.name}#{index}", "cannot be decoded")
                        index += 1
                        continue
                    break
                yield index, f"{self.path.name}#{index}", cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
                index, read = index + 1, read + 1
        finally:
            capture.release()
        if read == 0:
            raise InputError(f"{'camera' if camera else 'video'} gave no decodable frames", path=self.path)

    def _skip(self, name: str, why: str) -> None:
        self.skipped.append(name)
        print(f"warning: {name}: skipped ({why})", file=sys.stderr)


def open_frames(path: str | Path, max_frames: int | None = None) -> FrameSource:
    """A FrameSource for an image, a folder of images, a video or a camera index ("0"); a clear error for anything
    else. max_frames: how many frames a camera streams (default: until it stops)."""
    path = Path(path)
    if not path.exists() and str(path).isdigit():
        return FrameSource(path, "camera", [], 30.0, max_frames)
    if not path.exists():
        raise InputError("input not found", path=path)
    if path.is_dir():
        return FrameSource(path, "folder", list_images(path))
    suffix = path.suffix.lower()
    if suffix in IMAGE_SUFFIXES:
        return FrameSource(path, "image", [path])
    if suffix in VIDEO_SUFFIXES:
        capture = cv2.VideoCapture(str(path))
        try:
            if not capture.isOpened():
                raise InputError("video cannot be opened (corrupt or an unsupported codec)", path=path)
            fps = capture.get(cv2.CAP_PROP_FPS) or 30.0
        finally:
            capture.release()
        return FrameSource(path, "video", [path], float(fps) if fps > 0 else 30.0)
    raise InputError(f"not an image ({', '.join(IMAGE_SUFFIXES)}), a video ({', '.join(VIDEO_SUFFIXES)}), a folder "
                     "or a camera index", path=path)


# -- crops of one tracked person ---------------------------------------------------------------------------------
@dataclass
class TrackCrops:
    crops: np.ndarray         # (T, H, W, 3) uint8
    heatmaps: np.ndarray      # (T, h, w, K) float32 targets
    weights: np.ndarray       # (T, K) float32
    keypoints: np.ndarray     # (T, K, 2) input pixels
    matrix: np.ndarray        # (2, 3) image -> input pixels, the same for every frame


def crop_track(frames: np.ndarray, keypoints: np.ndarray, visibility: np.ndarray, boxes: np.ndarray, codec,
               padding: float = 1.25) -> TrackCrops:
    """One person over T frames (T, H, W, 3), cropped by one box around all of its per-frame boxes (T, 4).

    One crop region for the whole track keeps the camera still inside the crop, so the motion a tracker sees is
    the person's, not the crop's.
    """
    from tfpose.data.transforms import apply_matrix, box_to_crop, crop_matrix, warp_image

    boxes = np.asarray(boxes, np.float64)
    lo = boxes[:, :2].min(0)
    hi = (boxes[:, :2] + boxes[:, 2:]).max(0)
    matrix = crop_matrix(box_to_crop([*lo, *(hi - lo)], codec.input_size, padding), codec.input_size)
    crops = np.stack([warp_image(f, matrix, codec.input_size) for f in frames])
    kp = apply_matrix(keypoints, matrix).astype(np.float32)
    encoded = [codec.encode(kp[t], visibility[t]) for t in range(len(frames))]
    return TrackCrops(crops, np.stack([e[0] for e in encoded]), np.stack([e[1] for e in encoded]), kp, matrix)
