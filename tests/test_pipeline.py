"""The main command end to end on a tiny configuration, its resume, and its errors."""

import json
import subprocess
import sys

import pytest

from tests.conftest import ROOT

TINY = [
    "data.synthetic.num_train_images=16", "data.synthetic.num_val_images=6", "data.synthetic.image_size=[96,96]",
    "codec.input_size=[64,64]",
    "teacher.model.params={depth: 18, width: 8, deconv_channels: [16, 16, 16]}",
    "teacher.train={epochs: 1, batch_size: 8}", "distill.train={epochs: 1, batch_size: 8}",
    "distill.student.params={depth: 18, width: 4, deconv_channels: [16, 16, 16]}",
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
    from tfpose.distill.view_cache import teacher_views_key

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


def _persons(image_ids, labelled=True, first_ann=1):
    from pathlib import Path

    import numpy as np

    from tfpose.data.coco import Person

    return [Person(i, first_ann + n, Path(f"/photos/{i}.jpg"), (0.0, 0.0, 10.0, 20.0), np.zeros((17, 2)),
                   np.full(17, 2 if labelled else 0), 200.0) for n, i in enumerate(image_ids)]


def test_each_source_draws_its_weight_of_the_crops_spread_evenly_over_its_persons(tmp_path):
    import numpy as np

    from tfpose.config import load_config
    from tfpose.data.coco import CocoDataset
    from tfpose.data.sources import TrainingSource, training_persons

    def source(name, weight, persons, unlabelled=True):
        return TrainingSource(name, CocoDataset(tmp_path / f"{name}.json", tmp_path, {}, persons, {}), weight,
                              unlabelled)

    min_keypoints = load_config(None).data.min_keypoints
    a = _persons([1, 2, 3]) + _persons([4], labelled=False, first_ann=10)
    b = _persons([5, 6], first_ann=20) + _persons([7], labelled=False, first_ann=30)
    sources = [source("a", 1.0, a), source("b", 3.0, b, unlabelled=False),
               source("empty", 2.0, []), source("off", 0.0, _persons([8], first_ann=40))]
    persons, p = training_persons(sources, min_keypoints, with_unlabelled=False)
    assert [q.ann_id for q in persons] == [1, 2, 3, 20, 21]     # no empty source, no weight-0 source
    np.testing.assert_allclose(p, [1 / 4 / 3] * 3 + [3 / 4 / 2] * 2)
    persons, p = training_persons(sources, min_keypoints, with_unlabelled=True)
    assert [q.ann_id for q in persons] == [1, 2, 3, 10, 20, 21]  # b keeps its boxes without keypoints out
    np.testing.assert_allclose(p, [1 / 4 / 4] * 4 + [3 / 4 / 2] * 2)
    assert p.sum() == pytest.approx(1.0)
    persons, p = training_persons([source("empty", 1.0, [])], min_keypoints, with_unlabelled=True)
    assert persons == [] and len(p) == 0


def test_weighted_training_indices_draw_by_probability_with_replacement():
    import numpy as np

    from tfpose.data.pipeline import training_indices

    def draws(seed, probabilities=None, training=True, n=400):
        return np.array([(int(i), int(s)) for i, s in training_indices(n, training, seed, probabilities)])

    p = np.array([0.5, 0.0, 0.5, 0.0] + [0.0] * 396)
    weighted = draws(0, p)
    assert len(weighted) == 400 and set(weighted[:, 0]) == {0, 2}   # an epoch is n draws; probability 0 never
    assert abs((weighted[:, 0] == 0).mean() - 0.5) < 0.08
    np.testing.assert_array_equal(draws(0, p), weighted)            # fixed by the seed
    assert not np.array_equal(draws(1, p)[:, 0], weighted[:, 0])
    assert len(set(weighted[:, 1])) > 390                           # each draw its own augmentation seed
    shuffled = draws(0)
    assert sorted(shuffled[:, 0]) == list(range(400)) and list(shuffled[:, 0]) != list(range(400))
    in_order = draws(0, training=False, n=5)
    np.testing.assert_array_equal(in_order, [[i, 0] for i in range(5)])


def _load(cfg, out):
    """The data stage of ``cfg`` as a run in ``out`` does it."""
    from tfpose.pipeline import load_data, open_run

    return load_data(cfg.data, *open_run(cfg, out)[1:])


def _data_cfg(root, *overrides):
    from tfpose.config import load_config

    return load_config(None, ["data.source=coco", f"data.root={root}", *overrides])


def _coco_source(root, split="val", **extra):
    """One ``data.sources`` entry as a YAML flow mapping, for a key=value override."""
    fields = {"format": "coco", "root": str(root), "annotations": f"annotations/person_keypoints_{split}.json",
              "images": f"images/{split}", **extra}
    return "{" + ", ".join(f"{k}: {v}" for k, v in fields.items()) + "}"


def test_sources_and_dev_val_sets_are_read_and_weighted(synthetic_root, tmp_path):
    import numpy as np

    from tfpose.data.sources import training_persons

    data = _load(_data_cfg(synthetic_root, "data.weight=1.0",
                           f"data.sources=[{_coco_source(synthetic_root, 'train', weight=3.0)}]",
                           f"data.val_sources=[{_coco_source(synthetic_root, 'val')}]"), tmp_path)
    assert [s.weight for s in data.sources] == [1.0, 3.0] and list(data.val_sets) == ["val", "coco:all"]
    assert len(data.val_sets["coco:all"].images) == 8 and len(data.sources[1].dataset.images) == 24
    persons, p = training_persons(data.sources, data.config.min_keypoints, with_unlabelled=False)
    main = len(data.train.labelled())
    assert len(persons) == main + len(data.sources[1].dataset.labelled())
    assert p[:main].sum() == pytest.approx(0.25) and p[main:].sum() == pytest.approx(0.75)


def test_a_training_source_holding_a_dev_val_image_is_refused(synthetic_root, tmp_path):
    from tfpose.errors import InputError

    # another annotation file, elsewhere, naming one of the val images: the same photo, so still held out
    raw = json.loads((synthetic_root / "annotations/person_keypoints_val.json").read_text())
    first = raw["images"][0]["id"]
    raw = {**raw, "images": raw["images"][:1], "annotations": [a for a in raw["annotations"] if a["image_id"] == first]}
    (tmp_path / "other.json").write_text(json.dumps(raw))
    other = _coco_source(tmp_path, annotations="other.json", images=synthetic_root / "images/val")
    with pytest.raises(InputError, match="dev-val set 'val'") as e:
        _load(_data_cfg(synthetic_root, f"data.sources=[{_coco_source(synthetic_root, 'train')}, {other}]"),
              tmp_path / "run")
    assert e.value.field == "data.sources[1]" and raw["images"][0]["file_name"] in str(e.value)
    # the train split trains while the val split of the same file scores: the default, allowed
    _load(_data_cfg(synthetic_root, "data.val_fraction=0.25"), tmp_path / "split")
    # the whole train file beside its own val split: refused, named as the main data
    with pytest.raises(InputError, match="dev-val set 'val'") as e:
        _load(_data_cfg(synthetic_root, "data.val_fraction=0.25",
                        f"data.sources=[{_coco_source(synthetic_root, 'train')}]"), tmp_path / "twice")
    assert e.value.field == "data.sources[0]"


@pytest.mark.parametrize("key, source, message", [
    ("sources", "{format: coco, root: ROOT/nowhere, annotations: a.json, images: im}", "a.json"),
    ("sources", "{format: coco, root: ROOT, split: tran, annotations: a.json, images: im}", "did you mean 'train'"),
    ("val_sources", "{format: cocoo, root: ROOT}", "did you mean 'coco'"),
])
def test_a_source_that_cannot_be_read_names_its_config_entry(synthetic_root, tmp_path, key, source, message):
    from tfpose.errors import InputError

    with pytest.raises(InputError, match=message) as e:
        _load(_data_cfg(synthetic_root, f"data.{key}=[{source.replace('ROOT', str(tmp_path))}]"), tmp_path)
    assert e.value.field == f"data.{key}[0]" and f"field 'data.{key}[0]'" in str(e.value)


def test_a_scripts_context_is_loaded_by_the_data_stage_and_reads_like_its_result(synthetic_root, tmp_path):
    from tfpose.pipeline import load_data, make_context

    ctx = make_context(_data_cfg(synthetic_root), tmp_path)     # benchmarks and notebooks: load_data(ctx)
    data = load_data(ctx)
    assert ctx.data is data and ctx.val_sets is data.val_sets and ctx.codec is data.codec
    assert len(ctx.training_sampler(with_unlabelled=False, augment=False)[0]) == len(data.train.labelled())
