"""Frame-by-frame validation of a DKD export (tfpose.distill.dkd) on synthetic video - no TensorFlow.

Frame 1 of each track runs the encoder .tflite (and, when given, the key model: the large per-frame model whose
heatmaps start the track); every later frame runs the tracker .tflite on (crop, previous features, previous
heatmaps), exactly as a phone would. Reported per mode (DKD; the key model on every frame; each with and without
One-Euro smoothing): PCK@0.2 against the rendered truth, temporal jitter (mean frame-to-frame keypoint
acceleration, crop pixels) and median per-frame latency.

    python -m tflite.video_validate dkd_encoder.tflite dkd_tracker.tflite --key-model student_int8.tflite --out report/
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from tflite import metadata as tfl_metadata
from tflite.runtime import TFLiteModel, import_runtime
from tfpose.artifacts import write_json, write_text
from tfpose.codec import HeatmapCodec
from tfpose.errors import InputError, TfposeError, error_line
from tfpose.metrics import pck
from tfpose.smoothing import mean_acceleration, smooth_track


class StateModel:
    """A .tflite with several float inputs and outputs (quantized or not), told apart by shape.

    Inputs are given as arrays without the batch axis, in any order; outputs come back dequantized, keyed by their
    channel count (C features vs K heatmaps)."""

    def __init__(self, path: str | Path, num_threads: int = 1, runtime: str | None = None):
        self.path = Path(path)
        self.meta = tfl_metadata.read(self.path)
        if self.meta.get("format") != "tfpose-dkd":
            raise InputError(f"not a DKD export (format '{self.meta.get('format')}')", path=self.path)
        name, version, module = import_runtime(runtime)
        self.runtime_label = f"{name} {version}"
        try:
            self.interpreter = module.Interpreter(model_path=str(self.path), num_threads=num_threads)
            self.interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as e:
            raise InputError(f"not a loadable TFLite model ({e})", path=self.path) from None
        self.inputs = self.interpreter.get_input_details()
        self.outputs = self.interpreter.get_output_details()

    def __call__(self, *arrays: np.ndarray) -> dict[int, np.ndarray]:
        """arrays: (h, w, c) each -> {channels: (h, w, channels) float32} for every output."""
        for detail in self.inputs:
            shape = tuple(int(v) for v in detail["shape"][1:])
            match = [a for a in arrays if a.shape == shape]
            if len(match) != 1:
                raise InputError(f"no single input array of shape {shape} (got {[a.shape for a in arrays]})",
                                 path=self.path)
            self.interpreter.set_tensor(detail["index"], _quantize(match[0][None], detail))
        self.interpreter.invoke()
        return {int(d["shape"][-1]): _dequantize(self.interpreter.get_tensor(d["index"]), d)[0] for d in self.outputs}


def _quantize(x: np.ndarray, detail: dict) -> np.ndarray:
    scale, zero_point = detail["quantization"]
    dtype = np.dtype(detail["dtype"])
    if dtype in (np.int8, np.uint8) and scale > 0 and x.dtype != dtype:
        limits = np.iinfo(dtype)
        return np.clip(np.round(x.astype(np.float32) / scale + zero_point), limits.min, limits.max).astype(dtype)
    return x.astype(dtype)


def _dequantize(x: np.ndarray, detail: dict) -> np.ndarray:
    scale, zero_point = detail["quantization"]
    if np.dtype(detail["dtype"]) in (np.int8, np.uint8) and scale > 0:
        return (x.astype(np.float32) - zero_point) * scale
    return x.astype(np.float32)


class DkdRunner:
    """Encoder + tracker (+ optional key model) frame by frame; keeps the state between calls."""

    def __init__(self, encoder: str | Path, tracker: str | Path, key_model: str | Path | None = None,
                 num_threads: int = 1, runtime: str | None = None):
        self.encoder = StateModel(encoder, num_threads, runtime)
        self.tracker = StateModel(tracker, num_threads, runtime)
        meta = self.encoder.meta
        self.codec = HeatmapCodec.from_dict(meta["codec"])
        self.padding = float(meta.get("padding", 1.25))
        self.channels, self.joints = int(meta["feature_channels"]), int(meta["num_keypoints"])
        self.key = TFLiteModel(key_model, num_threads, runtime=runtime) if key_model else None
        if self.key is not None and self.key.input_size != self.codec.input_size:
            raise InputError(f"key model input {self.key.input_size} differs from the tracker's "
                             f"{self.codec.input_size}", path=key_model)
        self.state: tuple[np.ndarray, np.ndarray] | None = None

    def start(self, crop: np.ndarray) -> np.ndarray:
        """Frame 1: crop (H, W, 3) uint8 -> heatmaps (h, w, K); the key model's when there is one."""
        out = self.encoder(crop)
        heatmaps = out[self.joints]
        if self.key is not None:
            heatmaps = self.key.run(crop)
            if heatmaps.shape != out[self.joints].shape:
                raise InputError(f"key model heatmaps {heatmaps.shape} differ from the tracker's "
                                 f"{out[self.joints].shape}", path=self.key.path)
        self.state = (out[self.channels], heatmaps)
        return heatmaps

    def step(self, crop: np.ndarray) -> np.ndarray:
        """Every later frame: crop (H, W, 3) uint8 -> heatmaps (h, w, K) from the previous frame's state."""
        if self.state is None:
            raise RuntimeError("call start() on the first frame of a track")
        out = self.tracker(crop.astype(np.float32), *self.state)
        self.state = (out[self.channels], out[self.joints])
        return out[self.joints]

    def run(self, crops: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """A track's crops (T, H, W, 3) -> heatmaps (T, h, w, K) and milliseconds per frame (T,)."""
        maps, ms = [], []
        for t, crop in enumerate(crops):
            start = time.perf_counter()
            maps.append(self.start(crop) if t == 0 else self.step(crop))
            ms.append((time.perf_counter() - start) * 1e3)
        return np.stack(maps), np.array(ms)


def synthetic_crops(codec: HeatmapCodec, padding: float, sequences: int, frames: int, seed: int):
    """Held-out rendered tracks: crops (N, T, H, W, 3) uint8, keypoints (N, T, K, 2) crop pixels, visible (N, T, K)."""
    from tfpose.data.synthetic_video import render_sequences
    from tfpose.data.video import crop_track

    tracks = [crop_track(s.frames, s.keypoints, s.visibility, s.boxes, codec, padding)
              for s in render_sequences(sequences, seed, frames)]
    return (np.stack([t.crops for t in tracks]), np.stack([t.keypoints for t in tracks]),
            np.stack([t.weights > 0 for t in tracks]))


def score_tracks(keypoints: np.ndarray, truth: np.ndarray, visible: np.ndarray) -> dict:
    """keypoints, truth (N, T, K, 2) crop pixels; visible (N, T, K) -> PCK@0.2 (normalised by the extent of the
    labelled joints in each frame), PCK of frame 1 and of later frames, and jitter (mean acceleration)."""
    n, t = truth.shape[:2]
    flat = lambda a: a.reshape(n * t, *a.shape[2:])  # noqa: E731
    extent = np.stack([np.ptp(tr[v], 0) if v.sum() > 1 else np.ones(2) for tr, v in zip(flat(truth), flat(visible))])
    hits = np.linalg.norm((flat(keypoints) - flat(truth)) / np.maximum(extent[:, None], 1e-6), axis=-1) < 0.2
    hits = hits.reshape(n, t, -1) & visible
    first = float(hits[:, 0].sum() / max(visible[:, 0].sum(), 1))
    later = float(hits[:, 1:].sum() / max(visible[:, 1:].sum(), 1))
    overall, _ = pck(flat(keypoints), flat(truth), flat(visible), extent, 0.2)
    jitter = float(np.nanmean([mean_acceleration(k, v) for k, v in zip(keypoints, visible)]))
    return {"PCK@0.2": overall, "PCK@0.2_first_frame": first, "PCK@0.2_later_frames": later,
            "jitter_px": jitter}


def validate_video(encoder: str | Path, tracker: str | Path, key_model: str | Path | None = None,
                   sequences: int = 24, frames: int = 24, seed: int = 1, num_threads: int = 1,
                   runtime: str | None = None, min_cutoff: float = 1.0, beta: float = 0.05) -> dict:
    """Run DKD (and the key model on every frame, when given) over held-out synthetic tracks; the report dict."""
    runner = DkdRunner(encoder, tracker, key_model, num_threads, runtime)
    crops, truth, visible = synthetic_crops(runner.codec, runner.padding, sequences, frames, seed)
    runner.run(crops[0][:3])   # warm-up: first invocations allocate
    dkd_maps, dkd_ms = zip(*(runner.run(seq) for seq in crops))
    modes = {"dkd": (np.stack(dkd_maps), np.stack(dkd_ms))}
    if runner.key is not None:
        key_ms, key_maps = [], []
        for seq in crops:
            for crop in seq:
                start = time.perf_counter()
                key_maps.append(runner.key.run(crop))
                key_ms.append((time.perf_counter() - start) * 1e3)
        modes["per-frame"] = (np.stack(key_maps).reshape(*crops.shape[:2], *key_maps[0].shape),
                              np.array(key_ms).reshape(crops.shape[:2]))
    fps = 25.0
    results = {}
    for name, (maps, ms) in modes.items():
        keypoints = runner.codec.decode(maps.reshape(-1, *maps.shape[2:]))[0].reshape(truth.shape)
        smoothed = np.stack([smooth_track(k, fps, min_cutoff, beta) for k in keypoints])
        latency = {"first_frame_ms": float(np.median(ms[:, 0])), "later_frames_ms": float(np.median(ms[:, 1:])),
                   "mean_ms": float(ms.mean())}
        results[name] = {**score_tracks(keypoints, truth, visible), **latency}
        results[f"{name}+one-euro"] = {**score_tracks(smoothed, truth, visible), **latency}
    return {"encoder": str(encoder), "tracker": str(tracker),
            "key_model": None if key_model is None else str(key_model),
            "runtime": runner.encoder.runtime_label, "threads": num_threads,
            "data": {"sequences": sequences, "frames": frames, "seed": seed, "fps": fps,
                     "input_size": list(runner.codec.input_size)},
            "truth_jitter_px": float(np.nanmean([mean_acceleration(k, v) for k, v in zip(truth, visible)])),
            "one_euro": {"min_cutoff": min_cutoff, "beta": beta}, "modes": results}


def report_markdown(report: dict) -> str:
    d = report["data"]
    lines = [f"# DKD frame by frame: {d['sequences']} synthetic tracks x {d['frames']} frames, "
             f"{d['input_size'][0]}x{d['input_size'][1]} crops, {report['threads']} thread(s)", "",
             "| mode | PCK@0.2 | PCK@0.2 frame 1 | PCK@0.2 later | jitter px | frame 1 ms | later frames ms |",
             "|---|---|---|---|---|---|---|"]
    for name, r in report["modes"].items():
        lines.append(f"| {name} | {r['PCK@0.2']:.3f} | {r['PCK@0.2_first_frame']:.3f} | "
                     f"{r['PCK@0.2_later_frames']:.3f} | {r['jitter_px']:.2f} | {r['first_frame_ms']:.2f} | "
                     f"{r['later_frames_ms']:.2f} |")
    lines += ["", f"Jitter = mean |x[t+1] - 2 x[t] + x[t-1]| over joints and frames, crop pixels; the rendered "
              f"truth's own is {report['truth_jitter_px']:.2f}."]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tflite.video_validate", description=__doc__.split("\n\n")[0])
    parser.add_argument("encoder", help="dkd_encoder.tflite")
    parser.add_argument("tracker", help="dkd_tracker.tflite")
    parser.add_argument("--key-model", help="tfpose .tflite giving frame 1's heatmaps (and the per-frame baseline)")
    parser.add_argument("--sequences", type=int, default=24)
    parser.add_argument("--frames", type=int, default=24)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--runtime", choices=("ai_edge_litert", "tflite_runtime"))
    parser.add_argument("--out", help="folder for report.json and report.md")
    args = parser.parse_args(argv)
    try:
        report = validate_video(args.encoder, args.tracker, args.key_model, args.sequences, args.frames, args.seed,
                                args.threads, args.runtime)
        text = report_markdown(report)
        if args.out:
            write_json(Path(args.out) / "report.json", report)
            write_text(Path(args.out) / "report.md", text)
    except (TfposeError, ImportError, OSError) as e:   # OSError: a file it could not read or write
        print(error_line(e), file=sys.stderr)
        return 2
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
