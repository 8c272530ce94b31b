"""Skeleton overlays (numpy + OpenCV only) and the accuracy-vs-latency plot (matplotlib, imported only there)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from tfpose.artifacts import atomic_path
from tfpose.skeleton import Skeleton

LEFT, RIGHT, CENTRE = (255, 128, 0), (0, 160, 255), (0, 220, 0)


def draw_skeleton(image: np.ndarray, keypoints: np.ndarray, scores: np.ndarray | None, skeleton: Skeleton,
                  threshold: float = 0.2, scale: int = 1) -> np.ndarray:
    """A copy of ``image`` (H, W, 3) RGB with joints (K, 2) and limbs drawn; joints under ``threshold`` skipped."""
    out = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_NEAREST) if scale != 1 else image.copy()
    kp = keypoints * scale
    ok = np.ones(len(kp), bool) if scores is None else scores >= threshold
    width = max(1, scale, round(min(out.shape[:2]) / 200))   # limbs stay visible on a full video frame
    colour = [LEFT if n.startswith("left") else RIGHT if n.startswith("right") else CENTRE for n in skeleton.keypoints]
    for a, b in skeleton.edges:
        if ok[a] and ok[b]:
            cv2.line(out, tuple(int(v) for v in kp[a]), tuple(int(v) for v in kp[b]), colour[b], width, cv2.LINE_AA)
    for j in np.flatnonzero(ok):
        cv2.circle(out, tuple(int(v) for v in kp[j]), 2 * width, colour[j], -1, cv2.LINE_AA)
    return out


def contact_sheet(tiles: list[np.ndarray], columns: int = 4) -> np.ndarray:
    """Tiles of one size in a grid, padded with black."""
    h, w = tiles[0].shape[:2]
    rows = -(-len(tiles) // columns)
    sheet = np.zeros((rows * h, columns * w, 3), np.uint8)
    for i, t in enumerate(tiles):
        r, c = divmod(i, columns)
        sheet[r * h:(r + 1) * h, c * w:(c + 1) * w] = t
    return sheet


def plot_accuracy_latency(points: list[dict], metric: str, path: str | Path) -> bool:
    """One labelled point per model: x = median latency (ms), y = ``metric`` with its 95 % interval as an error bar.

    points: [{"label", "latency_ms", "value", "ci95": [lo, hi] or None}]. Returns False, writing nothing, when
    matplotlib is not installed (a phone or a Pi need not have it).
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    fig, ax = plt.subplots(figsize=(6, 4), dpi=120)
    for p in points:
        lo, hi = p.get("ci95") or (np.nan, np.nan)
        yerr = None if not np.isfinite([lo, hi]).all() else [[p["value"] - lo], [hi - p["value"]]]
        ax.errorbar(p["latency_ms"], p["value"], yerr=yerr, fmt="o", capsize=3)
        ax.annotate(p["label"], (p["latency_ms"], p["value"]), textcoords="offset points", xytext=(5, 5), fontsize=8)
    ax.set_xscale("log")
    # plain numbers at 1-2-5 steps: matplotlib's log ticks print as overlapping powers of ten over one decade
    from matplotlib.ticker import FuncFormatter, NullFormatter

    latencies = [p["latency_ms"] for p in points]
    ax.set_xlim(min(latencies) / 1.3, max(latencies) * 2.5)     # room for the labels right of each point
    ticks = [t * 10.0 ** e for e in range(-2, 5) for t in (1, 2, 5)]
    ax.set_xticks([t for t in ticks if ax.get_xlim()[0] <= t <= ax.get_xlim()[1]])
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel("median latency per crop (ms, log scale)")
    ax.set_ylabel(metric)
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp)
    plt.close(fig)
    return True


def plot_learning_curve(curves: dict[str, list[tuple[float, float]]], metric: str, path: str | Path,
                        x_label: str = "training steps") -> bool:
    """One line per curve: x = training steps (or epochs), y = ``metric`` (e.g. dev-val mean OKS of each set or run).

    curves: {label: [(step, value), ...]}. Returns False, writing nothing, without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    fig, ax = plt.subplots(figsize=(6, 4), dpi=120)
    for label, points in curves.items():
        if points:
            steps, values = zip(*sorted(points))
            ax.plot(steps, values, marker="o", label=label)
    ax.set_xlabel(x_label)
    ax.set_ylabel(metric)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    with atomic_path(Path(path)) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
    return True
