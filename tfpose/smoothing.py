"""Temporal smoothing of keypoint tracks: the One-Euro filter (Casiez, Roussel, Vogel, CHI 2012), numpy only.

A low-pass filter whose cutoff rises with speed: still joints are smoothed hard (jitter goes), fast ones lightly
(little lag). Shape legend: T frames, K joints; keypoints (K, 2) pixels per frame.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

Smoothing = Literal["none", "one-euro"]
SMOOTHINGS: tuple[Smoothing, ...] = ("none", "one-euro")


def _alpha(cutoff: np.ndarray | float, dt: float) -> np.ndarray:
    """Exponential smoothing factor of a first-order low-pass at ``cutoff`` Hz for a step of ``dt`` seconds."""
    tau = 1.0 / (2 * np.pi * np.asarray(cutoff, np.float64))
    return 1.0 / (1.0 + tau / dt)


class OneEuroFilter:
    """One filter per track; every call takes one frame's values (any shape, e.g. (K, 2)) and returns them filtered.

    min_cutoff (Hz): smoothing of slow motion (lower: smoother, more lag); beta: how fast the cutoff rises with
    speed (higher: less lag on fast motion); d_cutoff (Hz): the low-pass on the speed estimate itself.
    Speeds are in units per second, so for pixel keypoints ``beta`` scales with 1 / pixels.
    """

    def __init__(self, fps: float = 30.0, min_cutoff: float = 1.0, beta: float = 0.05, d_cutoff: float = 1.0):
        if fps <= 0 or min_cutoff <= 0 or d_cutoff <= 0 or beta < 0:
            raise ValueError("fps, min_cutoff and d_cutoff must be > 0 and beta >= 0")
        self.dt = 1.0 / fps
        self.min_cutoff, self.beta, self.d_cutoff = min_cutoff, beta, d_cutoff
        self.reset()

    def reset(self) -> None:
        self._x: np.ndarray | None = None
        self._dx: np.ndarray | None = None

    def __call__(self, x: np.ndarray, dt: float | None = None) -> np.ndarray:
        """x: this frame's values; dt: seconds since the previous frame (default 1 / fps)."""
        x = np.asarray(x, np.float64)
        dt = self.dt if dt is None else float(dt)
        if self._x is None:
            self._x, self._dx = x.copy(), np.zeros_like(x)
            return x.copy()
        dx = (x - self._x) / dt
        self._dx = self._dx + _alpha(self.d_cutoff, dt) * (dx - self._dx)
        cutoff = self.min_cutoff + self.beta * np.abs(self._dx)
        self._x = self._x + _alpha(cutoff, dt) * (x - self._x)
        return self._x.copy()


def smooth_track(keypoints: np.ndarray, fps: float = 30.0, min_cutoff: float = 1.0, beta: float = 0.05,
                 d_cutoff: float = 1.0) -> np.ndarray:
    """(T, ...) values of one track, frame by frame, through a fresh One-Euro filter; same shape back."""
    f = OneEuroFilter(fps, min_cutoff, beta, d_cutoff)
    return np.stack([f(frame) for frame in np.asarray(keypoints, np.float64)])


def mean_acceleration(keypoints: np.ndarray, visible: np.ndarray | None = None) -> float:
    """Temporal jitter: mean norm of the second difference x[t+1] - 2 x[t] + x[t-1] over joints and frames.

    keypoints: (T, K, 2) pixels of one track; visible: (T, K), a triple counts only where all three frames are.
    """
    kp = np.asarray(keypoints, np.float64)
    if len(kp) < 3:
        return float("nan")
    acc = np.linalg.norm(kp[2:] - 2 * kp[1:-1] + kp[:-2], axis=-1)    # (T - 2, K)
    if visible is not None:
        v = np.asarray(visible, bool)
        ok = v[2:] & v[1:-1] & v[:-2]
        return float(acc[ok].mean()) if ok.any() else float("nan")
    return float(acc.mean())
