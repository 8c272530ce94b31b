"""The heatmap codec: the single source of input size, heatmap size, sigma and decoding (numpy only).

Coordinates. Input pixels use the pixel-centre convention of OpenCV's warpAffine (pixel ``i`` is centred at
``i``). Heatmap cell ``j`` is centred on input pixel ``stride * j + (stride - 1) / 2``, i.e. cells tile the
input exactly; this is also MoveNet's alignment, so teacher heatmaps need no shift. Training targets, the
Keras predictor, export metadata and the TFLite validator all use this module.

Shape legend: N crops, K joints, h x w heatmap cells, H x W input pixels.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal

import numpy as np

Refine = Literal["none", "quarter", "dark"]


@dataclass(frozen=True)
class HeatmapCodec:
    input_size: tuple[int, int]     # (W, H) input pixels
    stride: int = 4
    sigma: float = 2.0              # Gaussian sigma in heatmap cells
    refine: Refine = "dark"
    peak_blur: float = 0.0          # sigma in cells of the peak search's matched filter; 0 = the raw map

    def __post_init__(self):
        w, h = self.input_size
        if w % self.stride or h % self.stride:
            raise ValueError(f"input_size {self.input_size} is not divisible by stride {self.stride}")

    @property
    def heatmap_size(self) -> tuple[int, int]:
        """(w, h) heatmap cells."""
        return self.input_size[0] // self.stride, self.input_size[1] // self.stride

    def to_dict(self) -> dict:
        return {**asdict(self), "input_size": list(self.input_size), "heatmap_size": list(self.heatmap_size)}

    @classmethod
    def from_dict(cls, d: dict) -> "HeatmapCodec":
        return cls(tuple(d["input_size"]), int(d["stride"]), float(d["sigma"]), d.get("refine", "dark"),
                   float(d.get("peak_blur", 0.0)))

    # -- coordinates -------------------------------------------------------------------------------------
    def pixels_to_cells(self, xy: np.ndarray) -> np.ndarray:
        return (np.asarray(xy, np.float64) - (self.stride - 1) / 2) / self.stride

    def cells_to_pixels(self, xy: np.ndarray) -> np.ndarray:
        return np.asarray(xy, np.float64) * self.stride + (self.stride - 1) / 2

    # -- encode --------------------------------------------------------------------------------------------
    def encode(self, keypoints: np.ndarray, visible: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Gaussian targets for one crop.

        keypoints: (K, 2) input pixels; visible: (K,) > 0 where labelled.
        Returns heatmaps (h, w, K) float32 with peak 1, and weights (K,) float32: 1 for a labelled joint
        whose Gaussian reaches the heatmap, else 0.
        """
        w, h = self.heatmap_size
        k = len(keypoints)
        cells = self.pixels_to_cells(keypoints)
        xs = np.arange(w, dtype=np.float32)
        ys = np.arange(h, dtype=np.float32)
        heatmaps = np.zeros((h, w, k), np.float32)
        weights = np.zeros(k, np.float32)
        reach = 3 * self.sigma
        for j in range(k):
            cx, cy = cells[j]
            if visible[j] <= 0 or not (-reach <= cx <= w - 1 + reach and -reach <= cy <= h - 1 + reach):
                continue
            gx = np.exp(-((xs - cx) ** 2) / (2 * self.sigma**2))
            gy = np.exp(-((ys - cy) ** 2) / (2 * self.sigma**2))
            heatmaps[:, :, j] = np.outer(gy, gx)
            weights[j] = 1.0
        return heatmaps, weights

    # -- decode --------------------------------------------------------------------------------------------
    def decode(self, heatmaps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Keypoints from heatmaps.

        heatmaps: (N, h, w, K) or (h, w, K), float.
        Returns keypoints (N, K, 2) in input pixels and scores (N, K) (the map's value at the peak); no batch
        axis in, none out. With ``peak_blur`` the peak is the maximum of ``matched_filter(heatmaps, peak_blur)``:
        correlating with the targets' Gaussian outvotes lone noisy cells (int8 rounding on a flat map).
        """
        heatmaps = np.asarray(heatmaps, np.float32)
        single = heatmaps.ndim == 3
        if single:
            heatmaps = heatmaps[None]
        n, h, w, k = heatmaps.shape
        flat = heatmaps.transpose(0, 3, 1, 2).reshape(n, k, h * w)
        searched = flat if self.peak_blur <= 0 else \
            matched_filter(heatmaps, self.peak_blur).transpose(0, 3, 1, 2).reshape(n, k, h * w)
        index = searched.argmax(-1)
        scores = np.take_along_axis(flat, index[..., None], -1)[..., 0]
        cells = np.stack([index % w, index // w], -1).astype(np.float64)  # (N, K, 2) as (x, y)
        if self.refine == "quarter":
            cells = _refine_quarter(heatmaps, cells)
        elif self.refine == "dark":
            cells = _refine_dark(heatmaps, cells, self.sigma)
        keypoints = self.cells_to_pixels(cells).astype(np.float32)
        return (keypoints[0], scores[0]) if single else (keypoints, scores)


def blur_kernel(sigma: float, max_radius: int) -> np.ndarray:
    """(2r + 1,) normalised 1-D Gaussian, r = round(3 sigma) capped at ``max_radius``: the separable kernel of
    ``matched_filter`` and of the in-graph decoder."""
    radius = min(max(int(round(3 * sigma)), 1), max_radius)
    x = np.arange(-radius, radius + 1, dtype=np.float64)
    kernel = np.exp(-x**2 / (2 * sigma**2))
    return (kernel / kernel.sum()).astype(np.float32)


def inside_norms(kernel: np.ndarray, h: int, w: int) -> np.ndarray:
    """(h, w): 1 / the norm of the part of the 2-D kernel centred on each cell that lies inside the map."""
    r = len(kernel) // 2
    squared = kernel.astype(np.float64) ** 2

    def inside(n):
        ones = np.pad(np.ones(n), r)
        return np.array([squared @ ones[c:c + 2 * r + 1] for c in range(n)])

    return (1 / np.sqrt(np.outer(inside(h), inside(w)))).astype(np.float32)


def matched_filter(heatmaps: np.ndarray, sigma: float) -> np.ndarray:
    """(N, h, w, K) -> (N, h, w, K): per joint, the correlation of the map with a Gaussian of ``sigma`` cells
    centred on each cell, over the map only, divided by the norm of that Gaussian's part inside the map.

    Inside the map this is a Gaussian blur; at the border the division undoes the missing part, so a map that
    is one Gaussian of this sigma peaks at its nearest cell wherever it lies (Cauchy-Schwarz), where a zero or
    mirrored border would shift it by up to one or two cells.
    """
    h, w = heatmaps.shape[1:3]
    kernel = blur_kernel(sigma, min(h, w) - 1)
    r = len(kernel) // 2
    padded = np.pad(heatmaps.astype(np.float32), ((0, 0), (r, r), (r, r), (0, 0)))
    rows = sum(kernel[i] * padded[:, i:i + h] for i in range(len(kernel)))
    blurred = sum(kernel[i] * rows[:, :, i:i + w] for i in range(len(kernel)))
    return blurred * inside_norms(kernel, h, w)[None, :, :, None]


def _refine_quarter(heatmaps: np.ndarray, cells: np.ndarray) -> np.ndarray:
    """Shift a quarter cell toward the higher neighbour (Newell et al.)."""
    n, h, w, k = heatmaps.shape
    out = cells.copy()
    ni, ki = np.meshgrid(np.arange(n), np.arange(k), indexing="ij")
    x = cells[..., 0].astype(int)
    y = cells[..., 1].astype(int)
    inner_x = (x > 0) & (x < w - 1)
    inner_y = (y > 0) & (y < h - 1)
    xc, yc = np.clip(x, 1, w - 2), np.clip(y, 1, h - 2)
    dx = heatmaps[ni, y, xc + 1, ki] - heatmaps[ni, y, xc - 1, ki]
    dy = heatmaps[ni, yc + 1, x, ki] - heatmaps[ni, yc - 1, x, ki]
    out[..., 0] += np.where(inner_x, 0.25 * np.sign(dx), 0)
    out[..., 1] += np.where(inner_y, 0.25 * np.sign(dy), 0)
    return out


def _refine_dark(heatmaps: np.ndarray, cells: np.ndarray, sigma: float) -> np.ndarray:
    """DARK (Zhang et al. 2020): a Newton step on the log of the Gaussian-smoothed heatmap at the peak."""
    import cv2

    n, h, w, k = heatmaps.shape
    ksize = int(2 * round(3 * sigma) + 1) if sigma > 0 else 3
    out = cells.copy()
    for i in range(n):
        for j in range(k):
            x, y = int(cells[i, j, 0]), int(cells[i, j, 1])
            if not (1 <= x < w - 1 and 1 <= y < h - 1):
                continue
            hm = heatmaps[i, :, :, j]
            peak = hm[y, x]
            if peak <= 0:
                continue
            if min(x, y, w - 1 - x, h - 1 - y) >= ksize // 2:
                smooth = cv2.GaussianBlur(np.ascontiguousarray(hm), (ksize, ksize), 0)
                # rescale so the smoothed peak keeps the original height, as in the paper
                smooth = smooth * (peak / max(float(smooth.max()), 1e-10))
            else:
                # Any blur border (zero, mirror) drags a peak this close to the edge in or out by up to a
                # cell; the raw map's log is still a quadratic around an undisturbed peak.
                smooth = hm
            smooth = np.log(np.maximum(smooth, 1e-10))
            p = smooth[y - 1 : y + 2, x - 1 : x + 2].astype(np.float64)
            dx = 0.5 * (p[1, 2] - p[1, 0])
            dy = 0.5 * (p[2, 1] - p[0, 1])
            dxx = p[1, 2] - 2 * p[1, 1] + p[1, 0]
            dyy = p[2, 1] - 2 * p[1, 1] + p[0, 1]
            dxy = 0.25 * (p[2, 2] - p[2, 0] - p[0, 2] + p[0, 0])
            det = dxx * dyy - dxy**2
            if det <= 1e-12 or dxx >= 0:
                continue
            ox = -(dyy * dx - dxy * dy) / det
            oy = -(dxx * dy - dxy * dx) / det
            if abs(ox) < 1 and abs(oy) < 1:
                out[i, j] += (ox, oy)
    return out
