"""Short synthetic video sequences with smooth motion, drawn with the still-image figure renderer (synthetic.py).

One person per sequence on a still background (a fixed camera): a few random key poses of the same body, eased
into each other with a cosine ramp (zero speed at each key pose, so no joint jumps), while the whole figure drifts
at constant velocity. Each frame gets its own sensor noise, so a per-frame model sees new pixels every frame even
where the figure stands still. Everything comes from the seed: the same seed gives the same frames.
Shape legend: T frames, K = 17 joints, H x W image pixels.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from tfpose.data.synthetic import draw_background, draw_figure, sample_pose


@dataclass
class SyntheticSequence:
    frames: np.ndarray        # (T, H, W, 3) uint8 RGB
    keypoints: np.ndarray     # (T, K, 2) image pixels
    visibility: np.ndarray    # (T, K): 2 inside the frame, 0 outside (as COCO)
    boxes: np.ndarray         # (T, 4) [x, y, w, h] of the silhouette

    @property
    def fps(self) -> float:
        return 25.0


def render_sequence(seed: int, num_frames: int = 8, image_size: tuple[int, int] = (160, 160),
                    keyframe_every: int = 8, drift: float = 0.01, noise: float = 3.0) -> SyntheticSequence:
    """One sequence of ``num_frames`` frames of ``image_size`` (W, H).

    keyframe_every: frames between key poses; drift: the figure's speed in image widths per frame.
    """
    width, height = image_size
    rng = np.random.default_rng([seed, 7])
    background = draw_background(rng, width, height)
    body = rng.uniform(0.6, 0.85) * height
    start = np.array([rng.uniform(0.35, 0.65) * width, rng.uniform(0.45, 0.55) * height])
    velocity = rng.normal(0, drift, 2) * np.array([width, 0.3 * height])
    keys = []
    for _ in range(int(np.ceil((num_frames - 1) / keyframe_every)) + 1):
        kp, sizes = sample_pose(rng, np.zeros(2), body)
        keys.append((kp, sizes))
    colour_seed = int(rng.integers(2**31))

    frames = np.zeros((num_frames, height, width, 3), np.uint8)
    keypoints = np.zeros((num_frames, 17, 2), np.float32)
    boxes = np.zeros((num_frames, 4), np.float32)
    for t in range(num_frames):
        i, s = divmod(t / keyframe_every, 1.0)
        i = int(i)
        ease = (1 - np.cos(np.pi * s)) / 2
        (kp_a, sz_a), (kp_b, sz_b) = keys[i], keys[min(i + 1, len(keys) - 1)]
        centre = start + velocity * t
        kp = (1 - ease) * kp_a + ease * kp_b + centre
        sizes = {**sz_a, "head": (1 - ease) * sz_a["head"] + ease * sz_b["head"] + centre,
                 "neck": (1 - ease) * sz_a["neck"] + ease * sz_b["neck"] + centre}
        image = background.copy()
        mask = np.zeros((height, width), np.uint8)
        # the same colour stream every frame: the person keeps their clothes
        draw_figure(image, mask, kp, sizes, np.random.default_rng(colour_seed))
        image += np.random.default_rng([seed, 11, t]).normal(0, noise, image.shape).astype(np.float32)
        frames[t] = cv2.GaussianBlur(np.clip(image, 0, 255).astype(np.uint8), (3, 3), 0)
        keypoints[t] = kp
        ys, xs = np.nonzero(mask)
        boxes[t] = (xs.min(), ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1) if len(xs) else 0
    inside = (keypoints[..., 0] >= 0) & (keypoints[..., 1] >= 0) & (keypoints[..., 0] <= width - 1) & \
             (keypoints[..., 1] <= height - 1)
    return SyntheticSequence(frames, keypoints, np.where(inside, 2, 0), boxes)


def render_sequences(count: int, seed: int, num_frames: int = 8, image_size: tuple[int, int] = (160, 160),
                     **kwargs) -> list[SyntheticSequence]:
    """``count`` sequences; sequence i comes from (seed, i), so a longer list starts with the shorter one."""
    return [render_sequence(seed * 100_003 + i, num_frames, image_size, **kwargs) for i in range(count)]


def synthetic_tracks(count: int, seed: int, num_frames: int, codec, padding: float = 1.25,
                     image_size: tuple[int, int] = (160, 160)) -> dict[str, np.ndarray]:
    """``count`` rendered sequences cropped per track by ``codec`` (``crop_track``): {"frames": (N, T, H, W, 3)
    uint8, "heatmaps": (N, T, h, w, K), "weights": (N, T, K), "keypoints": (N, T, K, 2) crop pixels,
    "visible": (N, T, K)}; the targets of a video student."""
    from tfpose.data.video import crop_track

    out = {k: [] for k in ("frames", "heatmaps", "weights", "keypoints", "visible")}
    for seq in render_sequences(count, seed, num_frames, image_size):
        crops = crop_track(seq.frames, seq.keypoints, seq.visibility, seq.boxes, codec, padding)
        for key, value in (("frames", crops.crops), ("heatmaps", crops.heatmaps), ("weights", crops.weights),
                           ("keypoints", crops.keypoints), ("visible", crops.weights > 0)):
            out[key].append(value)
    return {k: np.stack(v) for k, v in out.items()}


def video_tracks(v, codec, padding: float) -> dict[str, dict[str, np.ndarray]]:
    """A video student's tracks of the ``VideoConfig`` ``v``: "train" (``v.sequences`` tracks from ``v.seed``) and
    "val" (``v.dev_sequences`` from ``v.seed + 2``; the validate stage renders its own from ``v.seed + 1``)."""
    tracks = {"train": synthetic_tracks(v.sequences, v.seed, v.frames, codec, padding, tuple(v.image_size)),
              "val": synthetic_tracks(v.dev_sequences, v.seed + 2, v.frames, codec, padding, tuple(v.image_size))}
    print(f"    video: {v.sequences} training and {v.dev_sequences} dev tracks of {v.frames} frames")
    return tracks
