"""Whole-image models on the device, no TensorFlow: a tfpose person detector (.tflite with its metadata) and
MoveNet MultiPose, the one-pass multi-person peer.

Both take a whole RGB image (H, W, 3) uint8. ``TFLiteDetector`` returns ``tfpose.detection.Detections`` (boxes in
image pixels), decoded by the numpy code every user shares; ``MultiPoseModel`` returns posed persons directly.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from tflite import metadata as tfl_metadata
from tflite.runtime import TFLiteModel
from tfpose.detection import Detections, DetectorCodec, decode, letterbox
from tfpose.errors import InputError
from tfpose.whole_image import PosedPerson

DETECTOR_FORMAT = "tfpose-detector"


class TFLiteDetector:
    """A tfpose person detector: an image in, its person boxes out (``min_score`` and NMS applied)."""

    family = DETECTOR_FORMAT

    def __init__(self, path: str | Path, num_threads: int = 1, xnnpack: bool = True, runtime: str | None = None,
                 min_score: float = 0.05):
        self.path = Path(path)
        meta = tfl_metadata.find(self.path)
        if meta is None or meta.get("format") != DETECTOR_FORMAT:
            found = "no tfpose metadata" if meta is None else f"format '{meta.get('format')}'"
            raise InputError(f"not a tfpose person detector ({found}; expected format '{DETECTOR_FORMAT}', "
                             "made by `tfpose export-detector`)", path=self.path, field="format")
        try:
            self.codec = DetectorCodec.from_dict(meta["detector"])
        except (KeyError, TypeError, ValueError) as e:
            raise InputError(f"metadata is incomplete ({e})", path=self.path, field="detector") from None
        self.meta, self.min_score = meta, min_score
        self.model = TFLiteModel(self.path, num_threads=num_threads, xnnpack=xnnpack, runtime=runtime)
        side, cells = self.codec.input_size, self.codec.cells
        if self.model.input.shape != (1, side, side, 3):
            raise InputError(f"input {list(self.model.input.shape)} is not the metadata's [1, {side}, {side}, 3]",
                             path=self.path, field="detector.input_size")
        shapes = [o.shape for o in self.model.outputs]
        want = {(1, cells, len(self.codec.classes)): "scores", (1, cells, 4 * (self.codec.reg_max + 1)): "distances"}
        self.order = {want[s]: i for i, s in enumerate(shapes) if s in want}
        if len(self.order) != 2:
            raise InputError(f"outputs {[list(s) for s in shapes]} are not the scores and distance bins of "
                             f"{cells} cells", path=self.path, field="outputs")
        if "person" not in self.codec.classes:
            raise InputError("the detector has no 'person' class", path=self.path, field="detector.classes")
        self.person = self.codec.classes.index("person")

    @property
    def name(self) -> str:
        return self.path.stem

    def raw(self, square: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """One letterboxed square (S, S, 3) uint8 -> scores (N, C), distance bin logits (N, 32)."""
        out = self.model.run_all(square)
        return out[self.order["scores"]], out[self.order["distances"]]

    def __call__(self, image: np.ndarray, min_score: float | None = None) -> Detections:
        """(H, W, 3) uint8 RGB -> the persons in it, best first."""
        square, box = letterbox(image, self.codec.input_size)
        scores, distances = self.raw(square)
        found = decode(scores, distances, self.codec, box, (image.shape[1], image.shape[0]),
                       self.min_score if min_score is None else min_score)
        return found.select(found.labels == self.person)


class MultiPoseModel:
    """Google's MoveNet MultiPose Lightning: int32 [1, S, S, 3] RGB 0..255 with the photo letterboxed into the
    top-left corner, out [1, 6, 56]: per person 17 x (y, x, score) normalised to the square, a box (ymin, xmin,
    ymax, xmax) and a person score."""

    family = "movenet-multipose"

    def __init__(self, path: str | Path, num_threads: int = 1, xnnpack: bool = True, runtime: str | None = None):
        self.path = Path(path)
        self.model = TFLiteModel(self.path, num_threads=num_threads, xnnpack=xnnpack, runtime=runtime)
        if not self.accepts(self.model):
            raise InputError(f"not MoveNet MultiPose: input {list(self.model.input.shape)}, output "
                             f"{list(self.model.output.shape)} (expected a square input and [1, 6, 56])",
                             path=self.path)

    @staticmethod
    def accepts(model: TFLiteModel) -> bool:
        h, w = model.input.shape[1:3]
        return h == w and len(model.output.shape) == 3 and model.output.shape[2] == 56

    @property
    def name(self) -> str:
        return self.path.stem

    def __call__(self, image: np.ndarray, min_score: float = 0.05) -> list[PosedPerson]:
        side = self.model.input.shape[1]
        h, w = image.shape[:2]
        scale = side / max(h, w)
        new_w, new_h = max(1, round(w * scale)), max(1, round(h * scale))
        square = np.zeros((side, side, 3), np.uint8)
        square[:new_h, :new_w] = cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_AREA)
        out = self.model.run(square)                                   # (6, 56)
        sx, sy = side * w / new_w, side * h / new_h                   # square fractions -> image pixels
        persons = []
        for row in out:
            if row[55] < min_score:
                continue
            joints = row[:51].reshape(17, 3)
            # normalised edge coordinates -> image pixels with pixel centres at integers
            keypoints = np.stack([joints[:, 1] * sx - 0.5, joints[:, 0] * sy - 0.5], -1)
            y0, x0, y1, x1 = row[51:55]
            box = np.array([x0 * sx, y0 * sy, (x1 - x0) * sx, (y1 - y0) * sy])
            persons.append(PosedPerson(box, float(row[55]), keypoints.astype(np.float32),
                                       joints[:, 2].astype(np.float32)))
        return persons
