"""The validate stage: a run's .tflite files checked as on the device, without TensorFlow (``tflite.validate`` for a
pose model on every dev-val set, ``tflite.video_validate`` for a video student's encoder and tracker)."""

from __future__ import annotations

from pathlib import Path

from tfpose.artifacts import write_json, write_text
from tfpose.config import ValidateConfig, VideoConfig
from tfpose.data.coco import CocoDataset
from tfpose.report import set_slug


def validate_tflite(tflite_path: Path, out: Path, val_sets: dict[str, CocoDataset], v: ValidateConfig) -> dict:
    """The validate stage: ``tflite.validate`` (as on the device) of ``tflite_path`` on every dev-val set (``val``
    first; each written beside the run in ``out`` as COCO JSON, the exact split, so a device run scores the same
    persons), with ``v``'s threads, latency runs and overlays; the report lands in ``out/validation``."""
    from tflite.validate import validate

    val = val_sets["val"]
    val_ann = out / "val_annotations.json"
    write_json(val_ann, val.raw)
    extra_sets = []
    for name, dataset in list(val_sets.items())[1:]:
        path = out / f"val_{set_slug(name)}.json"
        write_json(path, dataset.raw)
        extra_sets.append((set_slug(name), path, dataset.image_dir))
    return validate(tflite_path, val_ann, val.image_dir, out / "validation", threads=v.threads, warmup=v.warmup_runs,
                    runs=v.latency_runs, overlays=v.overlays, extra_sets=tuple(extra_sets))


def validate_video_export(tracker_path: Path, out: Path, video: VideoConfig, v: ValidateConfig) -> dict:
    """The validate stage of a video student: ``tflite.video_validate`` (as on the device, no TensorFlow) of the
    encoder beside ``tracker_path`` and of the key model its metadata names, on ``video``'s held-out tracks;
    ``out/validation/report.json`` and ``.md``."""
    from tflite import metadata as tfl_metadata
    from tflite.video_validate import report_markdown, validate_video

    key = tfl_metadata.read(tracker_path).get("key_model")
    report = validate_video(tracker_path.with_name("dkd_encoder.tflite"), tracker_path,
                            tracker_path.with_name(key) if key else None, video.val_sequences, video.val_frames,
                            video.seed + 1, num_threads=v.threads[0])
    write_json(out / "validation" / "report.json", report)
    write_text(out / "validation" / "report.md", report_markdown(report))
    return report
