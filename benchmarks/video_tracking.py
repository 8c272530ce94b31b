"""Whole-image video (issue 22): ms per frame and keypoint jitter of ``tfpose predict`` when the person detector
runs on every frame, against every N-th frame with crops following the keypoints in between, with and without
One-Euro smoothing.

Clips are real photos filmed by a known camera path: a window pans and zooms smoothly over a COCO photo (coco-mini
val split, the photos with 1 to 3 labelled people), written as mp4 and read back by the command itself. The people
stand still in the photo, so every joint's true position in photo coordinates is constant: jitter is the spread of
a track's joint, mapped back through the known camera path, over the clip (median over confident joints, as a
share of the person's ground-truth box height). Ground truth mapped into each frame gives the mean OKS too.

    python benchmarks/video_tracking.py --write
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks._sections import publish  # noqa: E402
from tfpose.data.coco import load_coco  # noqa: E402
from tfpose.data.images import read_rgb  # noqa: E402
from tfpose.metrics import oks_matrix  # noqa: E402
from tfpose.predict import predict  # noqa: E402
from tfpose.skeleton import COCO17  # noqa: E402

COCO_MINI = ROOT.parent / "shared" / "data" / "coco-mini-train"
FRAME = (640, 480)


def camera_path(frames: int, photo_size: tuple[int, int]) -> list[np.ndarray]:
    """(2, 3) photo -> frame affine per frame: a window 70-85 % of the photo panning and zooming smoothly."""
    w, h = photo_size
    out = []
    for t in np.linspace(0, 1, frames):
        zoom = 0.78 + 0.07 * np.sin(2 * np.pi * t)
        cx = w / 2 + 0.06 * w * np.sin(2 * np.pi * t)
        cy = h / 2 + 0.04 * h * np.cos(2 * np.pi * t)
        scale = min(FRAME[0] / (zoom * w), FRAME[1] / (zoom * h))
        out.append(np.array([[scale, 0, FRAME[0] / 2 - scale * cx], [0, scale, FRAME[1] / 2 - scale * cy]]))
    return out


def write_clip(photo: np.ndarray, path: Path, paths: list[np.ndarray], fps: float = 30.0) -> None:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, FRAME)
    for m in paths:
        writer.write(cv2.cvtColor(cv2.warpAffine(photo, m, FRAME, flags=cv2.INTER_LINEAR), cv2.COLOR_RGB2BGR))
    writer.release()


def clip_metrics(result: dict, paths: list[np.ndarray], truths: list[dict]) -> dict:
    """Jitter (share of box height) of each ground-truth person's track in photo coordinates, mean OKS per frame."""
    spreads, oks = [], []
    tracks: dict[int, list[np.ndarray]] = {}
    for frame, m in zip(result["frames"], paths):
        inverse = cv2.invertAffineTransform(m)
        found = []
        for p in frame["persons"]:
            kp = np.array(p["keypoints"], np.float64)
            in_photo = np.hstack([kp[:, :2] @ inverse[:, :2].T + inverse[:, 2], kp[:, 2:]])
            tracks.setdefault(p["track_id"], []).append(in_photo)
            found.append({"keypoints": in_photo.ravel()})
        oks += list(oks_matrix(found, truths, COCO17.oks_sigmas).max(0)) if found else [0.0] * len(truths)
    for truth in truths:
        g = np.array(truth["keypoints"], np.float64).reshape(-1, 3)
        best = None
        for seq in tracks.values():
            seq = np.stack(seq)
            if len(seq) < 0.5 * len(paths):
                continue
            d = np.nanmedian(np.linalg.norm(seq[:, :, :2] - g[None, :, :2], axis=-1)[:, g[:, 2] > 0])
            if best is None or d < best[0]:
                best = (d, seq)
        if best is None:
            continue
        seq = best[1]
        confident = (seq[:, :, 2] > 0.2).mean(0) > 0.8
        if confident.any():
            spread = np.linalg.norm(seq[:, confident, :2].std(0), axis=-1)
            spreads.append(float(np.median(spread) / max(truth["bbox"][3], 1.0)))
    return {"jitter": spreads, "oks": oks}


def measure(frames: int, every: int, limit: int) -> dict:
    dataset = load_coco(COCO_MINI / "annotations" / "person_keypoints_train2017.json", COCO_MINI / "train2017")
    _, val = dataset.split(0.3, 0)
    chosen = [i for i in sorted(val.images)
              if 1 <= sum(a.get("num_keypoints", 0) >= 8 for a in val.raw["annotations"] if a["image_id"] == i) <= 3]
    chosen = chosen[:limit]
    settings = {"detector every frame": (1, "none"), f"detector every {every}th, crops follow": (every, "none"),
                f"detector every {every}th + One-Euro": (every, "one-euro")}
    rows = {name: {"ms": [], "jitter": [], "oks": [], "detected": 0, "frames": 0} for name in settings}
    model = ROOT / "android_assets" / "model.tflite"
    with tempfile.TemporaryDirectory() as tmp:
        for image_id in chosen:
            info = val.images[image_id]
            photo = read_rgb(val.image_dir / info["file_name"])
            paths = camera_path(frames, (photo.shape[1], photo.shape[0]))
            clip = Path(tmp) / f"{image_id}.mp4"
            write_clip(photo, clip, paths)
            truths = [a for a in val.raw["annotations"] if a["image_id"] == image_id and a.get("num_keypoints", 0) >= 8]
            for name, (n, smooth) in settings.items():
                result = predict(clip, model, Path(tmp) / f"{image_id}_{n}_{smooth}", detect_every=n, smooth=smooth,
                                 overlays=False)
                metrics = clip_metrics(result, paths, truths)
                row = rows[name]
                row["ms"] += [f["ms"] for f in result["frames"][1:]]      # the first frame warms the interpreter
                row["jitter"] += metrics["jitter"]
                row["oks"] += metrics["oks"]
                row["detected"] += sum(f["detected"] for f in result["frames"])
                row["frames"] += len(result["frames"])
    return {"clips": len(chosen), "frames": frames, "rows": rows, "cpu": _cpu()}


def _cpu() -> str:
    from tflite.validate import machine_info

    m = machine_info()
    flags = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").is_file() else ""
    isa = ", ".join(f for f in ("avx512f", "avx512_vnni", "avx_vnni", "avx2", "asimddp") if f" {f}" in flags)
    return f"{m['cpu']} ({isa or 'ISA unknown'}), load average {m['load_average_1min']:.1f}"


def section(r: dict) -> str:
    lines = ["## Video: detector every frame against crops that follow the keypoints (issue 22)", "",
             f"{r['clips']} clips of {r['frames']} frames (640 x 480, 30 fps): coco-mini val photos with 1-3 labelled "
             "people, filmed by a smooth known pan and zoom (`benchmarks/video_tracking.py`). Detector and pose model: "
             f"`android_assets/`, int8, 1 thread, {r['cpu']}. Jitter: spread of a person's joint over the clip in "
             "photo coordinates (the people do not move there), median over confident joints, as a share of the box "
             "height; 95 % bootstrap intervals over persons.", "",
             "| setting | frames detected | ms per frame, median | jitter [95 % CI] | mean OKS |", "|---|---|---|---|---|"]
    rng = np.random.default_rng(0)
    for name, row in r["rows"].items():
        jitter = np.array(row["jitter"])
        draws = [np.median(jitter[rng.integers(0, len(jitter), len(jitter))]) for _ in range(1000)] if len(jitter) else []
        lo, hi = np.percentile(draws, [2.5, 97.5]) if draws else (np.nan, np.nan)
        lines.append(f"| {name} | {row['detected']} of {row['frames']} | {np.median(row['ms']):.1f} | "
                     f"{np.median(jitter):.4f} [{lo:.4f}, {hi:.4f}] | {np.mean(row['oks']):.3f} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=60)
    parser.add_argument("--every", type=int, default=5)
    parser.add_argument("--clips", type=int, default=8)
    parser.add_argument("--json", default="runs/video_tracking.json")
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args(argv)
    os.makedirs(Path(args.json).parent, exist_ok=True)
    result = measure(args.frames, args.every, args.clips)
    Path(args.json).write_text(json.dumps(result, indent=1))
    publish("video_tracking", section(result), args.write)
    return 0


if __name__ == "__main__":
    sys.exit(main())
