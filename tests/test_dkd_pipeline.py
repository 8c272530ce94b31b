"""The video kind through the main stages: ``tfpose pipeline`` on the DKD config, on a few rendered tracks."""

import json

import pytest

from tests.conftest import ROOT

DKD_CONFIG = ROOT / "configs/dkd_synthetic-video-96x128.yaml"

TINY_VIDEO = [
    "data.synthetic.num_train_images=12", "data.synthetic.num_val_images=4", "data.synthetic.image_size=[96,96]",
    "codec.input_size=[32,32]",
    "teacher.model.params={depth: 18, width: 4, deconv_channels: [8, 8, 8]}",
    "teacher.train={epochs: 1, batch_size: 4, steps_per_epoch: 2}",
    "data.video={sequences: 4, frames: 3, dev_sequences: 2, image_size: [64, 64], val_sequences: 2, val_frames: 4}",
    "distill.student.params={channels: 4}", "distill.train={epochs: 1, steps_per_epoch: 2, batch_size: 2}",
    "export.calibration_samples=6", "validate.threads=[1]",
]


def test_the_dkd_config_runs_through_the_pipeline_into_the_video_validator(tmp_path, capsys):
    from tflite import metadata as tfl_metadata
    from tfpose.cli import main
    from tfpose.keras_io import load_keras
    from tfpose.models.dkd import parts

    out = tmp_path / "run"
    args = ["pipeline", "--config", str(DKD_CONFIG), "--out", str(out),
            f"data.root={tmp_path / 'data'}", *TINY_VIDEO]
    assert main(args) == 0
    printed = capsys.readouterr().out
    for stage in ("data", "teacher", "distill", "export", "validate"):
        assert f"==> [{stage}] done" in printed
    # the student is the registry's video model, trained by the Distiller; what is exported is its tracker
    tracker = load_keras(out / "student.keras")
    assert [m.name for m in parts(tracker)] == ["dkd_encoder", "dkd_distillator", "dkd_matcher"]
    meta = tfl_metadata.read(out / "dkd_tracker.tflite")
    assert (meta["format"], meta["role"], meta["key_model"]) == ("tfpose-dkd", "tracker", "key_int8.tflite")
    assert tfl_metadata.read(out / "dkd_encoder.tflite")["codec"]["input_size"] == [32, 32]
    report = json.loads((out / "validation/report.json").read_text())
    assert report["data"]["sequences"] == 2 and report["data"]["frames"] == 4 and report["data"]["seed"] == 1
    assert set(report["modes"]) == {"dkd", "dkd+one-euro", "per-frame", "per-frame+one-euro"}
    for mode in report["modes"].values():
        assert 0.0 <= mode["PCK@0.2"] <= 1.0 and mode["later_frames_ms"] > 0
    # frame 1 comes from the key model (the teacher's int8 file) in both modes
    assert report["modes"]["dkd"]["PCK@0.2_first_frame"] == report["modes"]["per-frame"]["PCK@0.2_first_frame"]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["modes"] == report["modes"] and summary["timings"]["total"] > 0
    # the student's record, by section, is what a resumed run compares (and then trains nothing)
    record = json.loads((out / "student.keras.digest.json").read_text())
    assert {"distill", "teacher", "data"} <= set(record["sections"])


@pytest.mark.parametrize("overrides, field, message", [
    (["distill.student={name: peleenet_duc}"], "distill.student.name", "not a video model"),
    (["distill.method=fpd"], "distill.student.name", "'dkd' is a video model, not a pose model"),
    (["distill.dkd.window=9"], "distill.dkd.window", "do not fit"),
    (["export.quant=float16"], "export.quant", "int8 only"),
    (["teacher.source=savedmodel", "teacher.path=x"], "teacher.source", "Keras teacher"),
])
def test_a_video_student_and_its_method_are_checked_together_when_the_config_loads(overrides, field, message):
    from tfpose.config import load_config
    from tfpose.errors import InputError

    with pytest.raises(InputError, match=message) as e:
        load_config(DKD_CONFIG, overrides)
    assert e.value.field == field
