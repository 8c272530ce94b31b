"""Person boxes from a NanoDet-style detector, in numpy only: the letterbox, the decoding of distance bins and
NMS, once, for the validator, ``tfpose predict`` and the device (no TensorFlow).

The detector sees the photo letterboxed into an S x S square: the longer side resized to S, centred, the border
filled with the normalisation mean (zero after normalisation, NanoDet's own fill). For every cell of strides
8, 16 and 32 it gives class scores and, per side (left, top, right, bottom), logits over ``reg_max + 1``
distance bins: distance = softmax-expected bin x stride from the cell centre ((col + 0.5) s, (row + 0.5) s).
Shape legend: N cells (all strides, stride 8 first, each grid row-major), C classes, M boxes; boxes are
[x, y, w, h] in image pixels with pixel edges at integers (COCO's convention).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from tfpose.errors import InputError

STRIDES = (8, 16, 32)
REG_MAX = 7
MEAN_RGB = (123.675, 116.28, 103.53)
STD_RGB = (58.395, 57.12, 57.375)


@dataclass(frozen=True)
class DetectorCodec:
    """Everything that turns the detector's outputs into boxes; travels in the .tflite metadata."""

    input_size: int                          # S: the square's side in pixels
    strides: tuple[int, ...] = STRIDES
    reg_max: int = REG_MAX
    classes: tuple[str, ...] = ("person",)
    nms_iou: float = 0.6                     # NanoDet's own
    max_boxes: int = 100                     # per image, after NMS (COCO's maxDets)

    @property
    def cells(self) -> int:
        return sum((self.input_size // s) ** 2 for s in self.strides)

    def to_dict(self) -> dict:
        return {"input_size": self.input_size, "strides": list(self.strides), "reg_max": self.reg_max,
                "classes": list(self.classes), "nms_iou": self.nms_iou, "max_boxes": self.max_boxes,
                "letterbox_fill_rgb": [round(v) for v in MEAN_RGB]}

    @classmethod
    def from_dict(cls, d: dict) -> "DetectorCodec":
        return cls(int(d["input_size"]), tuple(int(s) for s in d["strides"]), int(d["reg_max"]),
                   tuple(str(c) for c in d["classes"]), float(d.get("nms_iou", 0.6)), int(d.get("max_boxes", 100)))


@dataclass(frozen=True)
class Letterbox:
    """Image pixels -> square pixels: ``square = image * scale + offset`` per axis."""

    scale: tuple[float, float]     # (sx, sy)
    offset: tuple[float, float]    # (ox, oy)

    def to_image(self, boxes: np.ndarray) -> np.ndarray:
        """(M, 4) [x, y, w, h] in the square -> the same boxes in image pixels."""
        s, o = np.asarray(self.scale), np.asarray(self.offset)
        out = np.asarray(boxes, np.float64).copy()
        out[:, :2] = (out[:, :2] - o) / s
        out[:, 2:] = out[:, 2:] / s
        return out


def letterbox(image: np.ndarray, side: int) -> tuple[np.ndarray, Letterbox]:
    """(H, W, 3) uint8 RGB -> the (S, S, 3) uint8 square the detector reads, and the way back."""
    h, w = image.shape[:2]
    if h < 1 or w < 1:
        raise InputError(f"an empty image ({w} x {h})")
    scale = side / max(h, w)
    new_w, new_h = max(1, round(w * scale)), max(1, round(h * scale))
    resized = cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    ox, oy = (side - new_w) // 2, (side - new_h) // 2
    square = np.empty((side, side, 3), np.uint8)
    square[:] = np.round(MEAN_RGB).astype(np.uint8)
    square[oy:oy + new_h, ox:ox + new_w] = resized
    return square, Letterbox((new_w / w, new_h / h), (float(ox), float(oy)))


def cell_centres(codec: DetectorCodec) -> tuple[np.ndarray, np.ndarray]:
    """(N, 2) cell centres (x, y) in square pixels and (N,) their strides, in the detector's output order."""
    centres, strides = [], []
    for s in codec.strides:
        n = codec.input_size // s
        rows, cols = np.mgrid[0:n, 0:n]
        centres.append(np.stack([(cols.ravel() + 0.5) * s, (rows.ravel() + 0.5) * s], -1))
        strides.append(np.full(n * n, s))
    return np.concatenate(centres).astype(np.float64), np.concatenate(strides).astype(np.float64)


def expected_distances(logits: np.ndarray, reg_max: int) -> np.ndarray:
    """(M, 4 * (reg_max + 1)) bin logits -> (M, 4) expected distances in bins (softmax over each side's bins)."""
    bins = logits.reshape(len(logits), 4, reg_max + 1).astype(np.float64)
    bins = np.exp(bins - bins.max(-1, keepdims=True))
    return (bins / bins.sum(-1, keepdims=True)) @ np.arange(reg_max + 1, dtype=np.float64)


@dataclass
class Detections:
    """The boxes found in one image: boxes (M, 4) [x, y, w, h] image pixels, scores (M,), labels (M,) class
    indices into ``DetectorCodec.classes``; sorted by score, best first."""

    boxes: np.ndarray = field(default_factory=lambda: np.zeros((0, 4)))
    scores: np.ndarray = field(default_factory=lambda: np.zeros(0))
    labels: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))

    def __len__(self) -> int:
        return len(self.scores)

    def select(self, keep) -> "Detections":
        return Detections(self.boxes[keep], self.scores[keep], self.labels[keep])


def decode(scores: np.ndarray, distances: np.ndarray, codec: DetectorCodec, box: Letterbox,
           image_size: tuple[int, int], min_score: float = 0.05) -> Detections:
    """The detector's outputs for one image -> boxes in that image, per-class NMS applied.

    scores: (N, C) probabilities; distances: (N, 4 * (reg_max + 1)) bin logits; image_size: (W, H).
    """
    if scores.shape != (codec.cells, len(codec.classes)) or distances.shape != (codec.cells, 4 * (codec.reg_max + 1)):
        raise InputError(f"detector outputs {scores.shape} and {distances.shape} do not fit {codec.cells} cells "
                         f"x {len(codec.classes)} classes and {4 * (codec.reg_max + 1)} bins")
    centres, strides = cell_centres(codec)
    cell, label = np.nonzero(scores >= min_score)
    if not len(cell):
        return Detections()
    sides = expected_distances(distances[cell], codec.reg_max) * strides[cell, None]       # (M, 4) l, t, r, b
    x0y0 = centres[cell] - sides[:, :2]
    x1y1 = centres[cell] + sides[:, 2:]
    boxes = box.to_image(np.concatenate([x0y0, x1y1 - x0y0], -1))
    width, height = image_size
    corners = np.concatenate([boxes[:, :2], boxes[:, :2] + boxes[:, 2:]], -1)
    corners = np.clip(corners, 0, [width, height, width, height])
    boxes = np.concatenate([corners[:, :2], corners[:, 2:] - corners[:, :2]], -1)
    found = Detections(boxes, scores[cell, label].astype(np.float64), label.astype(np.int64))
    keep = np.concatenate([np.flatnonzero(found.labels == c)[nms(found.boxes[found.labels == c],
                                                                 found.scores[found.labels == c], codec.nms_iou)]
                           for c in np.unique(found.labels)])
    keep = keep[np.argsort(-found.scores[keep], kind="stable")][: codec.max_boxes]
    return found.select(keep)


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(A, 4) and (B, 4) [x, y, w, h] -> (A, B) intersection over union."""
    a, b = np.asarray(a, np.float64).reshape(-1, 4), np.asarray(b, np.float64).reshape(-1, 4)
    lo = np.maximum(a[:, None, :2], b[None, :, :2])
    hi = np.minimum(a[:, None, :2] + a[:, None, 2:], b[None, :, :2] + b[None, :, 2:])
    inter = np.prod(np.clip(hi - lo, 0, None), -1)
    union = np.prod(a[:, 2:], -1)[:, None] + np.prod(b[:, 2:], -1)[None] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


def nms(boxes: np.ndarray, scores: np.ndarray, iou: float) -> np.ndarray:
    """Greedy non-maximum suppression: indices of the kept boxes, best score first."""
    order = np.argsort(-np.asarray(scores), kind="stable")
    keep = []
    while len(order):
        best, order = order[0], order[1:]
        keep.append(best)
        if len(order):
            order = order[box_iou(boxes[best], boxes[order])[0] <= iou]
    return np.array(keep, np.int64)
