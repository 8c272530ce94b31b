"""Export a Keras student to a deployable .tflite: conversion, metadata inside the file, reference outputs
for parity checks, and the Android assets folder."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

from tflite import metadata as tfl_metadata
from tflite.convert import convert
from tfpose import __version__
from tfpose.artifacts import atomic_path, write_bytes, write_json, write_text
from tfpose.codec import HeatmapCodec
from tfpose.config import ExportConfig
from tfpose.skeleton import Skeleton

NORMALISATION = "inside the model: raw RGB pixels 0..255 in, x / 127.5 - 1 applied by the graph"


def build_metadata(model, codec: HeatmapCodec, skeleton: Skeleton, padding: float, cfg: ExportConfig,
                   model_bytes: bytes) -> dict:
    from tfpose._keras import tf

    interpreter = tf.lite.Interpreter(model_content=model_bytes)
    io = {}
    for kind, details in (("input", interpreter.get_input_details()), ("output", interpreter.get_output_details())):
        d = details[0]
        scale, zero_point = d["quantization"]
        io[kind] = {"shape": [int(v) for v in d["shape"]], "dtype": np.dtype(d["dtype"]).name,
                    "scale": float(scale), "zero_point": int(zero_point)}
    return {
        "format": "tfpose-heatmap", "tfpose_version": __version__, "model": model.name, "quantization": cfg.quant,
        "skeleton": skeleton.name, "keypoints": list(skeleton.keypoints), "edges": [list(e) for e in skeleton.edges],
        "flip_index": skeleton.flip_index.tolist(), "codec": codec.to_dict(), "padding": padding,
        "normalisation": NORMALISATION, **io,
    }


def export_tflite(model, out_path: str | Path, codec: HeatmapCodec, skeleton: Skeleton, padding: float,
                  cfg: ExportConfig, calibration: np.ndarray, reference_crops: np.ndarray,
                  reference_weights: np.ndarray) -> Path:
    """Write ``out_path`` (.tflite with metadata) and ``out_path.reference.npz`` (Keras outputs on reference crops).

    calibration: (N, H, W, 3) raw crops from the training pipeline; reference_crops: (M, H, W, 3) uint8;
    reference_weights: (M, K) labelled-joint weights of those crops.
    """
    out_path = Path(out_path)
    model_bytes = convert(model, cfg.quant, calibration, cfg.input_type, cfg.output_type)
    meta = build_metadata(model, codec, skeleton, padding, cfg, model_bytes)
    reference = model.predict(reference_crops.astype(np.float32), batch_size=16, verbose=0)
    with atomic_path(out_path.with_suffix(".reference.npz")) as tmp:
        with open(tmp, "wb") as f:
            np.savez_compressed(f, crops=reference_crops.astype(np.uint8), heatmaps=reference.astype(np.float32),
                                weights=reference_weights.astype(np.float32))
    write_bytes(out_path, tfl_metadata.attach(model_bytes, meta))
    return out_path


def write_android_assets(tflite_path: str | Path, out_dir: str | Path, readme: str) -> Path:
    """model.tflite, labels.txt, metadata.json and README.md for an app; written to a temporary folder first."""
    tflite_path = Path(tflite_path)
    meta = tfl_metadata.read(tflite_path)
    with atomic_path(out_dir) as tmp:
        tmp.mkdir(parents=True)
        shutil.copyfile(tflite_path, tmp / "model.tflite")
        reference = tflite_path.with_suffix(".reference.npz")
        if reference.is_file():
            shutil.copyfile(reference, tmp / "model.reference.npz")
        write_text(tmp / "labels.txt", "\n".join(meta["keypoints"]) + "\n")
        write_json(tmp / "metadata.json", meta)
        write_text(tmp / "README.md", readme)
    return Path(out_dir)
