"""Adapters: one small class per family of pose .tflite, so the validator scores ours and the peers' alike.

An adapter knows its family's input (crop size, padding) and output (how to turn it into keypoints in crop
pixels); the crop geometry and the way back to image pixels are shared by all (tfpose.evaluation, which uses
tfpose.data.transforms). Adding a family is one class here and one line in ``ADAPTERS``.
Shape legend: N crops, H x W input pixels, K joints.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import numpy as np

from tflite import metadata as tfl_metadata
from tflite.runtime import TFLiteModel
from tfpose.codec import HeatmapCodec
from tfpose.errors import InputError
from tfpose.skeleton import COCO17, Skeleton, get_skeleton


class PoseAdapter:
    """A .tflite pose model behind one call: crops in, keypoints in crop pixels and their scores out."""

    family: ClassVar[str]

    def __init__(self, model: TFLiteModel, skeleton: Skeleton, padding: float, meta: dict | None = None):
        self.model = model
        self.skeleton = skeleton
        self.padding = padding
        self.meta = meta

    @property
    def path(self) -> Path:
        return self.model.path

    @property
    def name(self) -> str:
        return self.model.path.stem

    @property
    def input_size(self) -> tuple[int, int]:
        """(W, H) input pixels."""
        return self.model.input_size

    def predict(self, crops: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(N, H, W, 3) uint8 -> keypoints (N, K, 2) in crop pixels (pixel-centre convention), scores (N, K)."""
        raise NotImplementedError

    @classmethod
    def accepts(cls, model: TFLiteModel, meta: dict | None) -> bool:
        raise NotImplementedError


class HeatmapAdapter(PoseAdapter):
    """tfpose's own exports: everything (codec, skeleton, padding) comes from the metadata inside the file."""

    family = "tfpose-heatmap"

    def __init__(self, model: TFLiteModel, skeleton: Skeleton, padding: float, meta: dict | None = None):
        super().__init__(model, skeleton, padding, meta)
        try:
            self.codec = HeatmapCodec.from_dict(meta["codec"])
        except (KeyError, TypeError, ValueError) as e:
            raise InputError(f"metadata is incomplete ({e})", path=model.path, field="codec") from None
        if model.input_size != self.codec.input_size:
            raise InputError(f"model input {model.input_size} differs from the metadata's {self.codec.input_size}",
                             path=model.path, field="codec.input_size")

    @classmethod
    def build(cls, model: TFLiteModel, meta: dict, padding: float | None = None) -> "HeatmapAdapter":
        """padding is ignored: a tfpose model is cropped as it was trained, with its metadata's padding."""
        try:
            skeleton = get_skeleton(meta["skeleton"])
        except (KeyError, TypeError) as e:
            raise InputError(f"metadata is incomplete ({e})", path=model.path, field="skeleton") from None
        return cls(model, skeleton, float(meta.get("padding", 1.25)), meta)

    @classmethod
    def accepts(cls, model: TFLiteModel, meta: dict | None) -> bool:
        return meta is not None and meta.get("format", "tfpose-heatmap") == cls.family

    def predict(self, crops: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return self.codec.decode(self.model(crops))


class KeypointAdapter(HeatmapAdapter):
    """tfpose's in-graph decoding exports: the graph ends in keypoints (1, K, 2) in input pixels and scores (1, K),
    float32, decoded as the metadata's codec says (argmax + quarter offset), so nothing is decoded here."""

    family = "tfpose-keypoints"

    def predict(self, crops: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if crops.shape[1:3] != self.model.input.shape[1:3]:
            raise InputError(f"crops of {crops.shape[1:3]} do not fit the model input {self.model.input.shape[1:3]}",
                             path=self.path)
        interpreter = self.model.interpreter
        k = self.skeleton.num_keypoints
        by_shape = {tuple(d["shape"]): d["index"] for d in interpreter.get_output_details()}
        if (1, k, 2) not in by_shape or (1, k) not in by_shape:
            raise InputError(f"expected outputs [1, {k}, 2] and [1, {k}], found {sorted(by_shape)}", path=self.path)
        keypoints, scores = [], []
        for crop in crops:
            interpreter.set_tensor(interpreter.get_input_details()[0]["index"], self.model.quantize_input(crop[None]))
            interpreter.invoke()
            keypoints.append(interpreter.get_tensor(by_shape[(1, k, 2)])[0])
            scores.append(interpreter.get_tensor(by_shape[(1, k)])[0])
        return np.stack(keypoints).astype(np.float32), np.stack(scores).astype(np.float32)


class MoveNetAdapter(PoseAdapter):
    """Google's MoveNet SinglePose (Lightning 192 px, Thunder 256 px): int32 0..255 RGB square crops in,
    [1, 1, 17, 3] (y, x, score) out, y and x normalised to the crop with its edges at 0 and 1."""

    family = "movenet"
    default_padding = 1.25

    @classmethod
    def build(cls, model: TFLiteModel, meta: dict | None, padding: float | None = None) -> "MoveNetAdapter":
        return cls(model, COCO17, float(padding or cls.default_padding), meta)

    @classmethod
    def accepts(cls, model: TFLiteModel, meta: dict | None) -> bool:
        h, w = model.input.shape[1:3]
        return meta is None and h == w and model.output.shape == (1, 1, COCO17.num_keypoints, 3)

    def predict(self, crops: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        out = self.model(crops)[:, 0]                                   # (N, 17, 3) as (y, x, score)
        w, h = self.input_size
        # normalised edge coordinates -> pixel centres: the first pixel spans [0, 1/W) and is centred at 0
        keypoints = np.stack([out[..., 1] * w - 0.5, out[..., 0] * h - 0.5], -1)
        return keypoints.astype(np.float32), out[..., 2]


ADAPTERS: tuple[type[PoseAdapter], ...] = (HeatmapAdapter, KeypointAdapter, MoveNetAdapter)


def load_adapter(path: str | Path, num_threads: int = 1, xnnpack: bool = True, runtime: str | None = None,
                 padding: float | None = None) -> PoseAdapter:
    """The adapter for the .tflite at ``path``, chosen by its metadata and I/O signature.

    padding: crop padding for a family without metadata (default: the family's own); tfpose models use theirs.
    """
    meta = tfl_metadata.find(path)
    model = TFLiteModel(path, num_threads=num_threads, xnnpack=xnnpack, runtime=runtime)
    for cls in ADAPTERS:
        if cls.accepts(model, meta):
            return cls.build(model, meta, padding)
    raise InputError(f"no adapter for a model with input {list(model.input.shape)} {model.input.dtype.name} and "
                     f"output {list(model.output.shape)}; known: {', '.join(c.family for c in ADAPTERS)} "
                     "(a tfpose export carries its metadata)", path=path)
