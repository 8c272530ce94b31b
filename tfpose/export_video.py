"""The export stage of a video student (``tfpose.models.dkd``): two int8 .tflite files with metadata inside, the
encoder (crop -> features, heatmaps) for frame 1 and the tracker (crop, previous features, previous heatmaps ->
features, heatmaps) for every later frame; a phone keeps the two state tensors between calls. Beside them, the key
model: the teacher's int8 file that gives frame 1's heatmaps on the device. ``tflite/video_validate.py`` runs all
three frame by frame without TensorFlow.
Shape legend: N tracks, T frames, H x W crop pixels, h x w heatmap cells, C feature channels, K joints.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tfpose._keras import keras, tf
from tfpose.codec import HeatmapCodec
from tfpose.config import ExportConfig
from tfpose.models.dkd import parts
from tfpose.skeleton import Skeleton


def convert_tracker(tracker: keras.Model, calibration: list[tuple[np.ndarray, np.ndarray, np.ndarray]]) -> bytes:
    """Full-integer int8 tracker with float32 I/O. A model of three inputs, which ``tflite.convert.convert`` (one
    image input) does not take; its other settings are the same: batch fixed at 1, builtin int8 ops only."""
    specs = [tf.TensorSpec([1, *i.shape[1:]], tf.float32, name=n)
             for i, n in zip(tracker.inputs, ("image", "prev_features", "prev_heatmaps"))]
    fn = tf.function(lambda a, b, c: tracker([a, b, c], training=False), input_signature=specs)
    converter = tf.lite.TFLiteConverter.from_concrete_functions([fn.get_concrete_function()], tracker)

    def representative():
        # by name: the converter orders the inputs its own way (prev_heatmaps first, as it happens)
        for image, features, heatmaps in calibration:
            yield {"image": image[None].astype(np.float32), "prev_features": features[None].astype(np.float32),
                   "prev_heatmaps": heatmaps[None].astype(np.float32)}

    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    return converter.convert()


def export_dkd(tracker: keras.Model, out_dir: str | Path, codec: HeatmapCodec, skeleton: Skeleton, padding: float,
               calibration_frames: np.ndarray, teacher=None, key_model: str | None = None) -> dict[str, Path]:
    """Write ``dkd_encoder.tflite`` and ``dkd_tracker.tflite`` (int8, metadata inside) into ``out_dir``.

    calibration_frames: (N, T, H, W, 3) uint8 crop sequences; the float model runs over them (frame 1 from
    ``teacher``) to produce the states (features, heatmaps) the tracker is calibrated on. key_model: the file name of
    the .tflite meant to give frame 1's heatmaps on the device, recorded in the metadata.
    """
    from tflite import metadata as tfl_metadata
    from tflite.convert import convert
    from tfpose import __version__
    from tfpose.artifacts import write_bytes
    from tfpose.distill.dkd import unroll

    out_dir = Path(out_dir)
    encoder = parts(tracker)[0]
    encoder_bytes = convert(encoder, "int8", list(calibration_frames[:, 0].astype(np.float32)), "uint8", "int8")
    states = []
    for seq in calibration_frames[: max(1, 64 // calibration_frames.shape[1])]:
        features = encoder(seq.astype(np.float32), training=False)[0].numpy()
        maps = [m.numpy()[0] for m in unroll(tracker, seq[None], teacher)[0]]
        states += [(seq[t], features[t - 1], maps[t - 1]) for t in range(1, len(seq))]
    tracker_bytes = convert_tracker(tracker, states)
    c, k = encoder.output_shape[0][-1], encoder.output_shape[1][-1]
    common = {"format": "tfpose-dkd", "tfpose_version": __version__, "skeleton": skeleton.name,
              "keypoints": list(skeleton.keypoints), "edges": [list(e) for e in skeleton.edges],
              "codec": codec.to_dict(), "padding": padding, "feature_channels": int(c), "num_keypoints": int(k),
              "quantization": "int8", "key_model": key_model,
              "normalisation": "inside the model: raw RGB pixels 0..255 in",
              "state": "features (1, h, w, C) and heatmaps (1, h, w, K); tensors are told apart by shape"}
    paths = {}
    for role, data, io in (("encoder", encoder_bytes, "image -> features, heatmaps"),
                           ("tracker", tracker_bytes, "image, prev_features, prev_heatmaps -> features, heatmaps")):
        meta = {**common, "role": role, "io": io}
        paths[role] = write_bytes(out_dir / f"dkd_{role}.tflite", tfl_metadata.attach(data, meta))
    return paths


def export_key_model(teacher: keras.Model, teacher_path: str, out_dir: Path, codec: HeatmapCodec,
                     skeleton: Skeleton, padding: float, calibration: np.ndarray, cfg: ExportConfig) -> Path:
    """``out_dir/key_int8.tflite``, the .tflite that gives frame 1's heatmaps on the device: a copy of the int8
    export beside a Keras teacher's file when there is one (e.g. a pipeline run's student_int8.tflite), else
    ``teacher`` converted. calibration: (N, H, W, 3) uint8 first-frame crops."""
    from tfpose.artifacts import write_bytes
    from tfpose.export import export_tflite

    beside = Path(teacher_path).with_name(Path(teacher_path).stem + "_int8.tflite") if teacher_path else None
    if beside is not None and beside.is_file():
        return write_bytes(out_dir / "key_int8.tflite", beside.read_bytes())

    crops = calibration[:cfg.calibration_samples]
    reference = crops[:min(8, len(crops))]
    return export_tflite(teacher, out_dir / "key_int8.tflite", codec, skeleton, padding,
                         ExportConfig(calibration_samples=len(crops)), crops.astype(np.float32), reference,
                         np.ones((len(reference), skeleton.num_keypoints), np.float32))


def export_video(tracker: keras.Model, out: Path, codec: HeatmapCodec, skeleton: Skeleton, padding: float,
                 cfg: ExportConfig, frames: np.ndarray, teacher=None, teacher_path: str = "") -> dict[str, Path]:
    """The export stage of a video student into ``out``: the key model (``export_key_model``; none without a
    teacher), then encoder and tracker (``export_dkd``) calibrated on ``frames`` (N, T, H, W, 3) uint8 training
    tracks. {"key": path or None, "encoder": path, "tracker": path}."""
    key = None if teacher is None else export_key_model(teacher, teacher_path, out, codec, skeleton, padding,
                                                         frames[:, 0], cfg)
    calibration = frames[: max(1, min(len(frames), cfg.calibration_samples // frames.shape[1]))]
    paths = export_dkd(tracker, out, codec, skeleton, padding, calibration, teacher,
                       None if key is None else key.name)
    return {"key": key, **paths}
