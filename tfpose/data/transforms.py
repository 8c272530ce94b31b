"""Top-down crop geometry (numpy + OpenCV only; shared by training and the on-device validator).

A person box is enlarged by ``padding``, its aspect fixed to the input's, and warped into the input by
one affine matrix; predictions go back to the image through the inverse of the same matrix.
Shape legend: K joints; boxes are [x, y, w, h] in image pixels; crops are (H, W, 3) uint8.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class CropParams:
    centre: tuple[float, float]     # (x, y) image pixels
    size: tuple[float, float]       # (w, h) of the region in image pixels, aspect equal to the input's
    rotation: float = 0.0           # degrees, counter-clockwise
    flip: bool = False


def box_to_crop(box, input_size: tuple[int, int], padding: float = 1.25) -> CropParams:
    """[x, y, w, h] -> the enlarged region with the input's aspect ratio (W / H)."""
    x, y, w, h = (float(v) for v in box)
    aspect = input_size[0] / input_size[1]
    if w > aspect * h:
        h = w / aspect
    else:
        w = h * aspect
    return CropParams((x + 0.5 * float(box[2]), y + 0.5 * float(box[3])), (w * padding, h * padding))


def crop_matrix(crop: CropParams, input_size: tuple[int, int]) -> np.ndarray:
    """(2, 3) affine matrix from image pixels to input pixels (pixel-centre convention)."""
    out_w, out_h = input_size
    cx, cy = crop.centre
    sx = out_w / crop.size[0]
    sy = out_h / crop.size[1]
    a = np.deg2rad(crop.rotation)
    cos, sin = np.cos(a), np.sin(a)
    # rotate about the box centre, scale to the input, put the centre at the input's centre
    rot = np.array([[cos, sin], [-sin, cos]])
    lin = np.diag([sx, sy]) @ rot
    if crop.flip:
        lin = np.diag([-1.0, 1.0]) @ lin
    centre_out = np.array([(out_w - 1) / 2, (out_h - 1) / 2])
    t = centre_out - lin @ np.array([cx, cy])
    return np.hstack([lin, t[:, None]])


def invert_matrix(matrix: np.ndarray) -> np.ndarray:
    return cv2.invertAffineTransform(matrix)


def warp_image(image: np.ndarray, matrix: np.ndarray, input_size: tuple[int, int]) -> np.ndarray:
    return cv2.warpAffine(image, matrix, tuple(int(v) for v in input_size), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0))


def apply_matrix(points: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """(..., 2) points through a (2, 3) affine matrix."""
    points = np.asarray(points, np.float64)
    return points @ matrix[:, :2].T + matrix[:, 2]


def flip_keypoints(keypoints: np.ndarray, visible: np.ndarray, flip_index: np.ndarray):
    """Swap left/right joint labels after a mirrored warp (coordinates are already mirrored by the matrix)."""
    return keypoints[flip_index], visible[flip_index]


def random_crop_params(base: CropParams, rng: np.random.Generator, scale: float, rotation: float,
                       rotation_prob: float, flip: bool, shift: float = 0.0) -> CropParams:
    """Training augmentation: scale +-scale, rotation +-rotation degrees (with probability), horizontal flip, and
    a centre shift of std ``shift`` x the crop's size per axis (clipped at 2 std; none drawn when 0)."""
    s = float(np.clip(rng.normal(1.0, scale / 2), 1 - scale, 1 + scale)) if scale else 1.0
    r = float(np.clip(rng.normal(0.0, rotation / 2), -rotation, rotation)) if rng.random() < rotation_prob else 0.0
    f = bool(flip and rng.random() < 0.5)
    centre = base.centre
    if shift:
        dx, dy = np.clip(rng.normal(0.0, shift, 2), -2 * shift, 2 * shift) * base.size
        centre = (base.centre[0] + float(dx), base.centre[1] + float(dy))
    return CropParams(centre, (base.size[0] * s, base.size[1] * s), r, f)


def colour_jitter(crop: np.ndarray, rng: np.random.Generator, amount: float) -> np.ndarray:
    if amount <= 0:
        return crop
    contrast = 1 + rng.uniform(-amount, amount)
    brightness = 255 * rng.uniform(-amount, amount) / 2
    return np.clip(crop.astype(np.float32) * contrast + brightness, 0, 255).astype(np.uint8)


def jitter_matrix(rng: np.random.Generator, input_size: tuple[int, int], shift: float, scale: float) -> np.ndarray:
    """(2, 3) input pixels -> input pixels of a crop cut from a box with a detector's error: its centre moved by a
    normal of std ``shift`` x the crop's size per axis, its side by a factor exp(normal of std ``scale``) (each
    clipped at 2 std)."""
    size = np.asarray(input_size, np.float64)
    centre = (size - 1) / 2
    moved = np.clip(rng.normal(0.0, shift, 2), -2 * shift, 2 * shift) * size if shift else np.zeros(2)
    zoom = float(np.exp(-np.clip(rng.normal(0.0, scale), -2 * scale, 2 * scale))) if scale else 1.0
    return np.hstack([zoom * np.eye(2), (centre - zoom * (centre + moved))[:, None]])


def grid_matrix(matrix: np.ndarray, stride: int) -> np.ndarray:
    """An input-pixel affine ``matrix`` as it acts on heatmap cells (cell j centred on pixel stride j + (stride-1)/2)."""
    to_pixels = np.array([[stride, 0, (stride - 1) / 2], [0, stride, (stride - 1) / 2], [0, 0, 1]], np.float64)
    full = np.vstack([matrix, [0, 0, 1]])
    return (np.linalg.inv(to_pixels) @ full @ to_pixels)[:2]


def occlude(crop: np.ndarray, rng: np.random.Generator, donor: np.ndarray) -> np.ndarray:
    """(H, W, 3) crop with a rectangle (a fifth to a half of each side, anywhere) taken from ``donor``, another
    crop of the same size: another person's limb or background over the body, as in a crowd."""
    h, w = crop.shape[:2]
    rh, rw = (int(rng.uniform(0.2, 0.5) * n) for n in (h, w))
    y, x = int(rng.integers(0, h - rh + 1)), int(rng.integers(0, w - rw + 1))
    crop = crop.copy()
    crop[y:y + rh, x:x + rw] = donor[y:y + rh, x:x + rw]
    return crop


def truncate(crop: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(H, W, 3) crop of a body the image's frame cuts: a band along one side (bottom half the time, else top,
    left or right), 15-45 % of the crop deep, black as beyond an image's border. Returns the crop and the (H, W)
    mask of what is left."""
    h, w = crop.shape[:2]
    side = rng.choice(4, p=[0.5, 0.1, 0.2, 0.2])          # bottom, top, left, right
    depth = rng.uniform(0.15, 0.45)
    keep = np.ones((h, w), bool)
    if side == 0:
        keep[h - int(depth * h):] = False
    elif side == 1:
        keep[:int(depth * h)] = False
    elif side == 2:
        keep[:, :int(depth * w)] = False
    else:
        keep[:, w - int(depth * w):] = False
    return np.where(keep[..., None], crop, 0).astype(crop.dtype), keep
