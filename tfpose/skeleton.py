"""Keypoint layouts: names, left/right flip pairs, skeleton edges and OKS sigmas (numpy only)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Skeleton:
    name: str
    keypoints: tuple[str, ...]
    edges: tuple[tuple[int, int], ...]       # 0-based joint index pairs, for drawing
    oks_sigmas: tuple[float, ...]             # per-joint OKS constants (COCO's, or a sensible stand-in)

    @property
    def num_keypoints(self) -> int:
        return len(self.keypoints)

    @property
    def flip_index(self) -> np.ndarray:
        """(K,) index that maps each joint to its mirror: 'left_x' <-> 'right_x'; others to themselves."""
        index = {n: i for i, n in enumerate(self.keypoints)}

        def mirror(n: str) -> str:
            for a, b in (("left_", "right_"), ("right_", "left_"), ("l_", "r_"), ("r_", "l_")):
                if n.startswith(a):
                    return b + n[len(a):]
            return n

        return np.array([index.get(mirror(n), i) for i, n in enumerate(self.keypoints)], dtype=np.int64)


COCO17 = Skeleton(
    name="coco17",
    keypoints=(
        "nose", "left_eye", "right_eye", "left_ear", "right_ear",
        "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
        "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle",
    ),
    edges=(
        (15, 13), (13, 11), (16, 14), (14, 12), (11, 12), (5, 11), (6, 12), (5, 6), (5, 7), (6, 8),
        (7, 9), (8, 10), (1, 2), (0, 1), (0, 2), (1, 3), (2, 4), (3, 5), (4, 6),
    ),
    # pycocotools' COCOeval.kpt_oks_sigmas
    oks_sigmas=(
        0.026, 0.025, 0.025, 0.035, 0.035, 0.079, 0.079, 0.072, 0.072, 0.062, 0.062,
        0.107, 0.107, 0.087, 0.087, 0.089, 0.089,
    ),
)

MPII16 = Skeleton(
    name="mpii16",
    keypoints=(
        "right_ankle", "right_knee", "right_hip", "left_hip", "left_knee", "left_ankle", "pelvis", "thorax",
        "upper_neck", "head_top", "right_wrist", "right_elbow", "right_shoulder", "left_shoulder",
        "left_elbow", "left_wrist",
    ),
    edges=(
        (0, 1), (1, 2), (2, 6), (6, 3), (3, 4), (4, 5), (6, 7), (7, 8), (8, 9), (7, 12), (12, 11),
        (11, 10), (7, 13), (13, 14), (14, 15),
    ),
    # MPII has no OKS constants; COCO's values for the matching body parts stand in.
    oks_sigmas=(0.089, 0.087, 0.107, 0.107, 0.087, 0.089, 0.107, 0.079, 0.079, 0.035, 0.062, 0.072,
                0.079, 0.079, 0.072, 0.062),
)

SKELETONS = {s.name: s for s in (COCO17, MPII16)}


def get_skeleton(name: str) -> Skeleton:
    try:
        return SKELETONS[name]
    except KeyError:
        raise KeyError(f"unknown skeleton '{name}'; known: {sorted(SKELETONS)}") from None
