"""One training or evaluation sample: a person crop and its heatmap targets (numpy + OpenCV only).

Shape legend: H x W input pixels, h x w heatmap cells, K joints.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from tfpose.codec import HeatmapCodec
from tfpose.config import AugmentConfig
from tfpose.data.coco import ImageStore, Person
from tfpose.data.transforms import (apply_matrix, box_to_crop, colour_jitter, crop_matrix, flip_keypoints,
                                    random_crop_params, warp_image)


@dataclass
class Sample:
    crop: np.ndarray        # (H, W, 3) uint8 RGB
    heatmaps: np.ndarray    # (h, w, K) float32 targets
    weights: np.ndarray     # (K,) float32 visibility weights
    keypoints: np.ndarray   # (K, 2) input pixels
    matrix: np.ndarray      # (2, 3) image -> input pixels


class CropSampler:
    """Turns a list of persons into crops with targets, with or without augmentation."""

    def __init__(self, persons: Sequence[Person], codec: HeatmapCodec, flip_index: np.ndarray,
                 padding: float = 1.25, augment: AugmentConfig | None = None, images: ImageStore | None = None):
        self.persons = list(persons)
        self.codec = codec
        self.flip_index = flip_index
        self.padding = padding
        self.augment = augment
        self.images = images or ImageStore()

    def __len__(self) -> int:
        return len(self.persons)

    def sample(self, index: int, seed: int | None = None) -> Sample:
        """Crop ``persons[index]``; with ``seed`` and an augment config, a random augmented view."""
        person = self.persons[index]
        image = self.images(person.image_path)
        crop_params = box_to_crop(person.box, self.codec.input_size, self.padding)
        rng = None
        if seed is not None and self.augment is not None:
            rng = np.random.default_rng(seed)
            a = self.augment
            crop_params = random_crop_params(crop_params, rng, a.scale, a.rotation, a.rotation_prob, a.flip, a.shift)
        matrix = crop_matrix(crop_params, self.codec.input_size)
        crop = warp_image(image, matrix, self.codec.input_size)
        keypoints = apply_matrix(person.keypoints, matrix).astype(np.float32)
        visible = person.visibility.copy()
        if crop_params.flip:
            keypoints, visible = flip_keypoints(keypoints, visible, self.flip_index)
        if rng is not None:
            crop = colour_jitter(crop, rng, self.augment.colour)
        heatmaps, weights = self.codec.encode(keypoints, visible)
        return Sample(crop, heatmaps, weights, keypoints, matrix)
