"""The main command end to end on a tiny configuration, its resume, and its errors."""

import json
import subprocess
import sys

import pytest

from tests.conftest import ROOT

TINY = [
    "data.synthetic.num_train_images=16", "data.synthetic.num_val_images=6", "data.synthetic.image_size=[96,96]",
    "codec.input_size=[64,64]",
    "teacher.model.params={stacks: 1, channels: 32, depth: 2}",
    "teacher.train={epochs: 1, batch_size: 8}", "distill.train={epochs: 1, batch_size: 8}",
    "distill.student.params={growth: 16, stage_layers: [1, 1, 1, 1], duc_channels: [32, 16, 16]}",
    "export.calibration_samples=8", "export.reference_samples=4", "validate.threads=[1]", "validate.latency_runs=3",
]


def _tfpose(*args, cwd):
    return subprocess.run([sys.executable, "-m", "tfpose.cli", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=900, env={**__import__("os").environ, "PYTHONPATH": str(ROOT)})


@pytest.mark.slow
def test_pipeline_runs_end_to_end_and_resumes(tmp_path):
    args = ["pipeline", "--config", str(ROOT / "configs/quickstart.yaml"), "--out", str(tmp_path / "run"),
            f"data.root={tmp_path / 'data'}", *TINY]
    first = _tfpose(*args, cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-4000:]
    for stage in ("data", "teacher", "distill", "export", "validate"):
        assert f"==> [{stage}] done" in first.stdout
    summary = json.loads((tmp_path / "run/summary.json").read_text())
    assert set(summary) >= {"teacher", "student_float", "student_int8", "stage_seconds"}
    assert 0 <= summary["student_int8"]["AP"] <= 1 and summary["student_int8"]["size_kib"] > 0
    for name in ("teacher.keras", "student.keras", "student_int8.tflite", "student_int8.reference.npz",
                 "validation/report.json", "summary.md"):
        assert (tmp_path / "run" / name).exists(), name
    assert not list((tmp_path / "run").rglob(".*.tmp-*")), "temporary files left behind"
    again = _tfpose(*args, cwd=tmp_path)
    assert again.returncode == 0, again.stderr[-4000:]
    assert "reusing" in again.stdout and "teacher.keras" in again.stdout


@pytest.mark.parametrize("args, message", [
    (["distil.alpha=0.5"], "did you mean 'distill'"),
    (["teacher.source=keras", "teacher.path=no/such/teacher.keras"], "no/such/teacher.keras"),
    (["data.source=coco", "data.root=no/such/dataset"], "annotation file not found"),
])
def test_bad_input_exits_non_zero_with_a_clear_message(tmp_path, args, message):
    run = _tfpose("pipeline", "--config", str(ROOT / "configs/quickstart.yaml"), "--out", str(tmp_path / "run"),
                  f"data.root={tmp_path / 'data'}", *TINY, *args, cwd=tmp_path)
    assert run.returncode == 2, run.stderr[-3000:]
    assert message in run.stderr and "Traceback" not in run.stderr
    assert not (tmp_path / "run/summary.json").exists()


def test_teacher_views_key_changes_with_what_the_views_depend_on_and_only_then(tmp_path):
    import numpy as np

    from tfpose.codec import HeatmapCodec
    from tfpose.config import AugmentConfig, load_config
    from tfpose.data.coco import Person
    from tfpose.data.samples import CropSampler
    from tfpose.pipeline import teacher_views_key

    def person(x):
        return Person(1, 1, tmp_path / "a.jpg", (x, 10.0, 40.0, 80.0), np.zeros((17, 2)), np.zeros(17, int), 3200.0)

    def key(cfg=load_config(None), persons=(person(5.0),), padding=1.25, augment=AugmentConfig(), views=4,
            codec=HeatmapCodec((96, 128))):
        return teacher_views_key(cfg, CropSampler(list(persons), codec, np.arange(17), padding, augment), views)

    base = key()
    assert key() == base
    assert key(codec=HeatmapCodec((96, 128), refine="quarter", peak_blur=2.0)) == base   # decoding is not in the views
    changed = [key(persons=(person(6.0),)), key(persons=(person(5.0), person(5.0))), key(padding=1.3),
               key(augment=AugmentConfig(rotation=10)), key(views=8), key(codec=HeatmapCodec((64, 128))),
               key(cfg=load_config(None, ["seed=1"])), key(cfg=load_config(None, ["teacher.output_key=other"]))]
    assert base not in changed and len(set(changed)) == len(changed)
