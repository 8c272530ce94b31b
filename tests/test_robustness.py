"""Never a silent wrong result (issue 17): config ranges checked on load, overrides anywhere, stale artifacts
retrained, artifacts that belong together written together and checked, stale temporaries swept, the checkpoint
kept until the model is saved, and an input error met inside TensorFlow surfacing as itself."""

import dataclasses
import json
import os
import shutil
import subprocess
import sys
import typing
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import ROOT, TINY_INPUT
from tfpose.errors import InputError

# ---------------------------------------------------------------- config ranges


@pytest.mark.parametrize("override, field", [
    ("codec.stride=0", "codec.stride"),
    ("codec.input_size=[190, 256]", "codec.input_size"),
    ("skeleton=coco18", "skeleton"),
    ("teacher.train.epochs=0", "teacher.train.epochs"),
    ("distill.train.epochs=-1", "distill.train.epochs"),
    ("distill.train.batch_size=0", "distill.train.batch_size"),
    ("codec.sigma=-1", "codec.sigma"),
    ("codec.sigma=0", "codec.sigma"),
    ("data.padding=-1", "data.padding"),
    ("data.val_fraction=-0.5", "data.val_fraction"),
    ("data.val_fraction=1", "data.val_fraction"),
    ("distill.alpha=5", "distill.alpha"),
    ("distill.alpha=.nan", "distill.alpha"),
    ("validate.threads=[1, 0]", "validate.threads"),
    ("validate.threads=[]", "validate.threads"),
    ("distill.train.learning_rate=.inf", "distill.train.learning_rate"),
    ("teacher.train.learning_rate=0", "teacher.train.learning_rate"),
    ("export.prune_sparsity=1.0", "export.prune_sparsity"),
    ("data.augment.rotation_prob=1.5", "data.augment.rotation_prob"),
    ("data.sources=[{format: coco, weight: -1}]", "data.sources[0].weight"),
    ("seed=-1", "seed"),
    ("distill.train={epochs: 4, early_stopping_patience: 2}", "distill.train.early_stopping_patience"),
    ("distill.view_augment.occlusion=0.3", "distill.view_augment"),          # the quickstart caches no views
    ("distill.feature_teacher=no/such/thunder.h5", "distill.feature_teacher"),
    ("teacher.tta_scales=[1.0, 0]", "teacher.tta_scales"),
])
def test_an_out_of_range_value_is_an_error_naming_its_field(override, field):
    from tfpose.config import load_config

    with pytest.raises(InputError) as e:
        load_config(ROOT / "configs/quickstart.yaml", [override])
    assert e.value.field == field and f"field '{field}'" in str(e.value)


def test_every_numeric_field_has_a_range():
    from tfpose.config import RANGES, PipelineConfig

    def numeric(hint) -> bool:
        return hint in (int, float) or (typing.get_origin(hint) is tuple
                                        and all(a in (int, float, Ellipsis) for a in typing.get_args(hint)))

    missing, seen = [], set()

    def walk(cls):
        if cls in seen:
            return
        seen.add(cls)
        for name, hint in typing.get_type_hints(cls).items():
            args = typing.get_args(hint)
            if dataclasses.is_dataclass(hint):
                walk(hint)
            elif args and dataclasses.is_dataclass(args[0]):
                walk(args[0])
            elif numeric(hint) and name not in RANGES.get(cls, {}):
                missing.append(f"{cls.__name__}.{name}")
    walk(PipelineConfig)
    assert not missing and len(seen) == 17


def test_a_bad_config_fails_before_the_run_folder_is_made(tmp_path, capsys):
    from tfpose.cli import main

    assert main(["pipeline", "--out", str(tmp_path / "run"), "codec.stride=0"]) == 2
    assert "field 'codec.stride'" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


# ---------------------------------------------------------------- overrides anywhere


def test_overrides_may_come_before_between_and_after_the_options(tmp_path, monkeypatch):
    import tfpose.pipeline
    from tfpose.cli import main

    seen = {}
    monkeypatch.setattr(tfpose.pipeline, "run_pipeline", lambda cfg, out: seen.update(cfg=cfg, out=out))
    assert main(["pipeline", "distill.alpha=0.2", "--out", str(tmp_path / "run"), "seed=3",
                 "--config", str(ROOT / "configs/quickstart.yaml"), "seed=4", "validate.threads=[1]"]) == 0
    cfg = seen["cfg"]
    assert (cfg.distill.alpha, cfg.seed, cfg.validate.threads) == (0.2, 4, (1,))   # the last one wins
    assert seen["out"] == str(tmp_path / "run") and cfg.codec.input_size == (96, 128)   # the preset was read
    with pytest.raises(SystemExit):
        main(["pipeline", "--out", str(tmp_path / "run"), "seed=1", "--no-such-flag"])


# ---------------------------------------------------------------- stale reuse


def _cfg(root, *overrides):
    from tfpose.config import load_config

    # a strategy other than "default": the stage hands its model builder to the training, unbuilt
    return load_config(None, ["data.source=coco", f"data.root={root}", "codec.input_size=[64,64]",
                              "teacher.train.strategy=mirrored", "distill.train.strategy=mirrored", *overrides])


def _tiny_model(seed: int = 0, keypoints: int = 17):
    """(B, 64, 64, 3) -> (B, 16, 16, K): the smallest model of the tiny codec's shapes, quick to fit and save."""
    from tfpose._keras import keras

    keras.utils.set_random_seed(seed)
    inputs = keras.Input((TINY_INPUT[1], TINY_INPUT[0], 3))
    return keras.Model(inputs, keras.layers.Conv2D(keypoints, 4, strides=4)(keras.layers.Rescaling(1 / 255)(inputs)))


@pytest.fixture
def fake_training(monkeypatch):
    """Stages whose training returns a tiny untrained model (the stage logic is what is tested) and leaves a
    checkpoint as fit does; the list of the trainings that ran."""
    import tfpose.pipeline as p

    runs = []

    def train(cfg, data, out, model, teacher, alpha, train_cfg, run_name, distill_cfg=None):
        runs.append(run_name)
        (out / run_name / "backup" / "chief").mkdir(parents=True, exist_ok=True)
        (out / run_name / "backup" / "chief" / "checkpoint").write_text("epoch 1")
        return _tiny_model()
    monkeypatch.setattr(p, "_train_model", train)
    return runs


def _stages(root, out, *overrides):
    import tfpose.pipeline as p

    cfg = _cfg(root, *overrides)
    out, codec, skeleton = p.open_run(cfg, out)
    data = p.load_data(cfg.data, codec, skeleton)
    return data, p.distil_student(cfg, data, p.train_teacher(cfg, data, out), out)


def test_an_artifact_is_reused_only_when_its_record_matches_and_downstream_sees_upstream(
        synthetic_root, tmp_path, fake_training, capsys):
    root = tmp_path / "data"
    shutil.copytree(synthetic_root, root)
    out = tmp_path / "run"
    _stages(root, out)
    assert fake_training == ["teacher_run", "distill_run"]
    record = json.loads((out / "student.keras.digest.json").read_text())
    assert set(record["sections"]) >= {"distill", "teacher", "data", "codec"}
    assert not (out / "teacher_run/backup").exists()          # dropped once the model was saved
    capsys.readouterr()

    _stages(root, out)                                        # the same config and data: nothing trains
    assert fake_training == ["teacher_run", "distill_run"]
    assert capsys.readouterr().out.count("reusing") == 2

    _stages(root, out, "distill.alpha=0.8")                   # the student alone changed
    assert fake_training[2:] == ["distill_run"]
    assert "student.keras was made under another distill: training again" in capsys.readouterr().out

    _stages(root, out, "distill.alpha=0.8", "teacher.train.learning_rate=0.01")   # the teacher, so the student
    assert fake_training[3:] == ["teacher_run", "distill_run"]
    printed = capsys.readouterr().out
    assert "teacher.keras was made under another teacher: training again" in printed
    assert "student.keras was made under another teacher: training again" in printed

    image = next((root / "images/train").iterdir())          # a copy of the same data (a new mtime) is the same data
    os.utime(image, ns=(image.stat().st_atime_ns, image.stat().st_mtime_ns + 10**9))
    _stages(root, out, "distill.alpha=0.8", "teacher.train.learning_rate=0.01")
    assert fake_training[5:] == []
    capsys.readouterr()

    image.write_bytes(image.read_bytes() + b"\0")             # an input file changed, the config did not
    _stages(root, out, "distill.alpha=0.8", "teacher.train.learning_rate=0.01")
    assert fake_training[5:] == ["teacher_run", "distill_run"]
    assert "teacher.keras was made under another data" in capsys.readouterr().out


def test_an_artifact_without_a_record_and_another_configs_checkpoint_are_not_reused(
        synthetic_root, tmp_path, fake_training, capsys, monkeypatch):
    import tfpose.pipeline as p
    from tfpose.artifacts import record_path

    out = tmp_path / "run"
    _stages(synthetic_root, out)
    record_path(out / "student.keras").unlink()               # e.g. killed between the two renames
    (out / "distill_run/backup/chief").mkdir(parents=True)   # and a checkpoint another config left
    (out / "distill_run/backup/chief/checkpoint").write_text("other")
    (out / "distill_run.digest.json").write_text(json.dumps({"digest": "other", "sections": {}}))
    capsys.readouterr()
    seen = []
    original = p._train_model

    def train(cfg, data, out, *args, **kwargs):
        seen.append((out / "distill_run/backup/chief/checkpoint").exists())
        return original(cfg, data, out, *args, **kwargs)
    monkeypatch.setattr(p, "_train_model", train)
    _stages(synthetic_root, out)
    printed = capsys.readouterr().out
    assert "student.keras has no record of what made it: training again" in printed
    assert "its checkpoint and learning curve are removed" in printed and seen == [False]


def test_a_stale_teacher_is_refused_as_an_export_guide(synthetic_root, tmp_path, fake_training):
    import tfpose.pipeline as p
    from tfpose.cli import _export_teacher

    _stages(synthetic_root, tmp_path)
    cfg = _cfg(synthetic_root, "teacher.train.epochs=3", "export.prune_sparsity=0.5")
    data = p.load_data(cfg.data, *p.open_run(cfg, tmp_path)[1:])
    with pytest.raises(InputError, match="teacher.keras was made under another teacher"):
        _export_teacher(cfg, data, tmp_path, None)


def test_a_batch_larger_than_the_training_set_names_the_field(synthetic_root, tmp_path):
    import tfpose.pipeline as p

    cfg = _cfg(synthetic_root, "teacher.train.batch_size=1000")
    data = p.load_data(cfg.data, *p.open_run(cfg, tmp_path)[1:])
    with pytest.raises(InputError, match="larger than the .* training persons") as e:
        p._train_model(cfg, data, tmp_path, lambda: None, None, 0.0, cfg.teacher.train, "teacher_run")
    assert e.value.field == "teacher.train.batch_size"


# ---------------------------------------------------------------- the checkpoint outlives training until the save


def _tiny_fit(run_dir, dataset=None):
    from tfpose._keras import tf
    from tfpose.config import TrainConfig
    from tfpose.distill.distiller import Distiller
    from tfpose.train import fit

    if dataset is None:
        rng = np.random.default_rng(0)
        x = rng.uniform(0, 255, (4, *TINY_INPUT[::-1], 3)).astype(np.float32)
        y = {"heatmaps": rng.uniform(0, 1, (4, TINY_INPUT[1] // 4, TINY_INPUT[0] // 4, 17)).astype(np.float32),
             "weights": np.ones((4, 17), np.float32)}
        dataset = tf.data.Dataset.from_tensor_slices((x, y)).batch(2, drop_remainder=True)
    distiller = Distiller(_tiny_model(), None, alpha=0.0)
    return distiller, fit(distiller, dataset, None, TrainConfig(epochs=1, batch_size=2, schedule="constant"),
                          run_dir, 2)


def test_the_checkpoint_is_kept_until_the_trained_model_is_saved(tmp_path, monkeypatch):
    import tfpose.train as p

    def checkpointed():
        return any((run_dir / "backup").rglob("*ckpt*"))

    run_dir = tmp_path / "distill_run"
    distiller, _ = _tiny_fit(run_dir)
    assert checkpointed()                                     # training ended, the checkpoint is still there
    from tfpose.artifacts import make_record
    trained = [w.copy() for w in distiller.student.get_weights()]

    def killed(*args, **kwargs):
        raise KeyboardInterrupt                               # as a kill -9 while saving: nothing after it runs
    monkeypatch.setattr(p, "save_keras", killed)
    with pytest.raises(KeyboardInterrupt):
        p.save_trained(distiller.student, tmp_path / "student.keras", make_record({}), run_dir, "default")
    assert checkpointed() and not (tmp_path / "student.keras").exists()
    again, history = _tiny_fit(run_dir)                       # the rerun resumes from it: no epoch to train
    assert history.history.get("loss", []) == []
    for a, b in zip(trained, again.student.get_weights()):
        np.testing.assert_array_equal(a, b)
    monkeypatch.undo()
    p.save_trained(again.student, tmp_path / "student.keras", make_record({}), run_dir, "default")
    assert (tmp_path / "student.keras").is_file() and not checkpointed()


# ---------------------------------------------------------------- an input error inside tf.data


def test_a_corrupt_image_met_in_training_is_the_readers_input_error(tmp_path):
    from tfpose.codec import HeatmapCodec
    from tfpose.data.coco import Person
    from tfpose.data.pipeline import build_dataset
    from tfpose.data.samples import CropSampler
    from tfpose.skeleton import COCO17

    bad = tmp_path / "truncated.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 half a jpeg")
    person = Person(1, 1, bad, (0.0, 0.0, 40.0, 40.0), np.full((17, 2), 20.0), np.full(17, 2), 1600.0)
    sampler = CropSampler([person] * 2, HeatmapCodec(TINY_INPUT), COCO17.flip_index)
    with pytest.raises(InputError, match="truncated.jpg") as e:
        _tiny_fit(tmp_path / "run", build_dataset(sampler, 2, training=True))
    assert "Traceback" not in str(e.value) and "{{function_node" not in str(e.value)


# ---------------------------------------------------------------- temporaries of killed runs


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_temporaries_of_killed_runs_are_swept_and_live_ones_kept(tmp_path):
    from tfpose.config import load_config
    from tfpose.pipeline import make_context

    dead = _dead_pid()
    stale = [tmp_path / f".student.tmp-{dead}.keras", tmp_path / "validation" / f".best.tmp-{dead}.png",
             tmp_path / f".student_int8.reference.tmp-{dead}.npz"]
    live = tmp_path / f".summary.tmp-{os.getpid()}.json"
    kept = [live, tmp_path / "notes.tmp-1.txt", tmp_path / "student.keras"]
    for path in stale + kept:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("x")
    (tmp_path / f".assets.tmp-{dead}").mkdir()
    (tmp_path / f".assets.tmp-{dead}" / "model.tflite").write_text("x")
    make_context(load_config(None), tmp_path)
    assert not any(p.exists() for p in stale) and not (tmp_path / f".assets.tmp-{dead}").exists()
    assert all(p.exists() for p in kept)


# ---------------------------------------------------------------- atomic writes of pictures


def _full_disk(monkeypatch, method_owner, name):
    """``method_owner.name`` writes half its file, then fails as on a full disk."""
    def write_half(self, target, *args, **kwargs):
        Path(target).write_bytes(b"\x89PNG half")
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(method_owner, name, write_half)


def test_overlays_on_a_full_disk_leave_the_old_sheets_and_no_half_written_one(tmp_path, monkeypatch):
    from tfpose.evaluation import Predictions
    from tfpose.skeleton import COCO17
    from tflite.validate import write_overlays

    crops = np.zeros((2, 32, 32, 3), np.uint8)
    preds = Predictions([], np.zeros((2, 17, 2)), np.ones((2, 17)), crops, np.tile(np.eye(2, 3), (2, 1, 1)))
    (tmp_path / "best.png").write_bytes(b"old best")
    real = Path.write_bytes

    def write_half(self, data):
        real(self, data[: len(data) // 2])
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(Path, "write_bytes", write_half)
    with pytest.raises(OSError):
        write_overlays(preds, np.array([0.5, 0.9]), "OKS", COCO17, tmp_path, 2)
    monkeypatch.undo()
    assert (tmp_path / "best.png").read_bytes() == b"old best" and not (tmp_path / "worst.png").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best.png"]


def test_a_plot_on_a_full_disk_leaves_no_half_written_file(tmp_path, monkeypatch):
    pytest.importorskip("matplotlib")
    import matplotlib.figure

    from tfpose.visualize import plot_accuracy_latency

    _full_disk(monkeypatch, matplotlib.figure.Figure, "savefig")
    with pytest.raises(OSError):
        plot_accuracy_latency([{"label": "a", "latency_ms": 2.0, "value": 0.5, "ci95": None}], "AP",
                              tmp_path / "accuracy_vs_latency.png")
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------- the .tflite and its reference


CROPS = np.random.default_rng(0).integers(0, 256, (4, TINY_INPUT[1], TINY_INPUT[0], 3), dtype=np.uint8)


def _export(model, path):
    from tfpose.codec import HeatmapCodec
    from tfpose.config import ExportConfig
    from tfpose.export import export_tflite
    from tfpose.skeleton import COCO17

    return export_tflite(model, path, HeatmapCodec(TINY_INPUT), COCO17, 1.25, ExportConfig(quant="float32"),
                         CROPS.astype(np.float32), CROPS, np.ones((len(CROPS), 17), np.float32))


@pytest.fixture(scope="module")
def two_exports(tmp_path_factory):
    """Two float32 exports of tiny models with other weights, each with its reference."""
    folder = tmp_path_factory.mktemp("exports")
    return [_export(_tiny_model(seed), folder / f"model{seed}.tflite") for seed in (0, 1)]


def test_the_reference_carries_the_models_digest_and_the_validator_refuses_another_models(two_exports, capsys):
    import hashlib

    from tflite.validate import main, validate

    for model in two_exports:
        stored = str(np.load(model.with_suffix(".reference.npz"))["model_sha256"])
        assert stored == hashlib.sha256(model.read_bytes()).hexdigest()
        assert validate(model, runs=0)["parity"]["model_digest_checked"] is True
    capsys.readouterr()
    first, second = two_exports
    assert main([str(first), "--reference", str(second.with_suffix(".reference.npz")), "--runs", "0"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "belongs to another model" in err and "model_sha256" in err


def test_a_reexport_that_fails_midway_leaves_the_old_pair_whole(two_exports, tmp_path, monkeypatch):
    path = tmp_path / "student.tflite"
    shutil.copyfile(two_exports[0], path)
    shutil.copyfile(two_exports[0].with_suffix(".reference.npz"), path.with_suffix(".reference.npz"))
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    real = Path.write_bytes

    def full_disk(self, data):
        if self.suffix == ".tflite":
            real(self, data[:100])
            raise OSError(28, "No space left on device")
        return real(self, data)
    monkeypatch.setattr(Path, "write_bytes", full_disk)
    with pytest.raises(OSError):
        _export(_tiny_model(1), path)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before


@pytest.mark.parametrize("keypoints, codec, field", [
    (5, dict(input_size=TINY_INPUT), "skeleton"),                       # 5 heatmaps under a 17-keypoint config
    (17, dict(input_size=(64, 96)), "codec.input_size"),
    (17, dict(input_size=TINY_INPUT, stride=8), "codec.stride"),         # 16 x 16 heatmaps where 8 x 8 are due
])
def test_export_refuses_a_model_whose_shape_disagrees_with_the_config(tmp_path, keypoints, codec, field):
    from tfpose.codec import HeatmapCodec
    from tfpose.config import ExportConfig
    from tfpose.export import export_tflite
    from tfpose.skeleton import COCO17

    model = _tiny_model(keypoints=keypoints)
    crops = CROPS[:2]
    with pytest.raises(InputError) as e:
        export_tflite(model, tmp_path / "m.tflite", HeatmapCodec(**codec), COCO17, 1.25, ExportConfig(),
                      crops.astype(np.float32), crops, np.ones((2, 17)))
    assert e.value.field == field and not list(tmp_path.iterdir())
