"""On the real photos of ../shared/data/coco-mini-train: targets land on the joints, and training runs."""

import numpy as np

from tfpose.codec import HeatmapCodec
from tfpose.data.coco import load_coco
from tfpose.data.samples import CropSampler
from tfpose.skeleton import COCO17
from tests.conftest import shared_path


def _dataset():
    ann = shared_path("data/coco-mini-train/annotations/person_keypoints_train2017.json")
    return load_coco(ann, ann.parent.parent / "train2017")


def test_decoded_targets_land_within_half_a_cell_of_the_annotated_joints():
    codec = HeatmapCodec((192, 256), 4, 2.0, "dark")
    sampler = CropSampler(_dataset().labelled(), codec, COCO17.flip_index)
    worst = 0.0
    checked = 0
    for i in range(len(sampler)):
        s = sampler.sample(i)
        decoded, _ = codec.decode(s.heatmaps)
        inside = (s.weights > 0) & (s.keypoints[:, 0] > 4) & (s.keypoints[:, 0] < 188) & \
                 (s.keypoints[:, 1] > 4) & (s.keypoints[:, 1] < 252)
        err = np.linalg.norm(decoded[inside] - s.keypoints[inside], axis=-1) / codec.stride
        worst = max(worst, err.max(initial=0))
        checked += inside.sum()
    assert checked > 700  # most of the 86 persons' visible joints lie inside the crop
    assert worst < 0.5


def test_augmented_crops_keep_targets_on_the_joints():
    codec = HeatmapCodec((192, 256), 4, 2.0, "dark")
    from tfpose.config import AugmentConfig

    sampler = CropSampler(_dataset().labelled(), codec, COCO17.flip_index, augment=AugmentConfig())
    s = sampler.sample(3, seed=11)
    decoded, _ = codec.decode(s.heatmaps)
    inside = (s.weights > 0) & (s.keypoints.min(1) > 4) & (s.keypoints[:, 0] < 188) & (s.keypoints[:, 1] < 252)
    assert inside.sum() > 3
    assert np.linalg.norm(decoded[inside] - s.keypoints[inside], axis=-1).max() < 2.0


def test_one_training_step_runs_on_real_crops():
    from tfpose._keras import keras
    from tfpose.data.pipeline import build_dataset
    from tfpose.distill.distiller import Distiller
    from tfpose.models import build_model

    codec = HeatmapCodec((64, 64), 4, 2.0)
    from tfpose.config import AugmentConfig

    sampler = CropSampler(_dataset().labelled(), codec, COCO17.flip_index, augment=AugmentConfig())
    ds = build_dataset(sampler, 8, training=True, seed=0).take(1)
    keras.utils.set_random_seed(0)
    model = build_model("peleenet_duc", 17, (64, 64), growth=16, stage_layers=(1, 1, 1, 1), duc_channels=(32, 16, 16))
    distiller = Distiller(model)
    distiller.compile(optimizer=keras.optimizers.Adam(1e-3))
    history = distiller.fit(ds, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0]) and history.history["loss"][0] > 0


def test_the_default_students_sources_hold_no_dev_val_image_and_draw_by_their_weights(tmp_path):
    """configs/default_student.yaml: five training sources and two dev-val sets that share no image, and each
    source's share of the draws is its weight over the sum, whatever its size."""
    from pathlib import Path

    from tfpose.config import load_config
    from tfpose.data.sources import training_persons
    from tfpose.pipeline import load_data, make_context

    shared_path("data/lsp/lspet_dataset/joints.mat")
    root = Path(__file__).resolve().parents[1]
    cfg = load_config(root / "configs/default_student.yaml")
    ctx = make_context(cfg, tmp_path)
    load_data(ctx)                         # check_held_out raises if a dev-val image were in a training source
    assert [len(s.dataset.labelled()) for s in ctx.sources] == [51, 1000, 7000, 100, 166]
    assert {name: len(v.labelled()) for name, v in ctx.val_sets.items()} == {"val": 35, "parse:test": 205}
    train_images = {p.image_path.resolve() for s in ctx.sources for p in s.dataset.persons}
    assert not train_images & {p.image_path.resolve() for v in ctx.val_sets.values() for p in v.persons}
    persons, draw = training_persons(ctx.sources, ctx.cfg.data.min_keypoints, with_unlabelled=True)
    assert len(persons) == 8317 + 46 and np.isclose(draw.sum(), 1.0)     # 46 coco boxes without keypoints
    weights = np.array([s.weight for s in ctx.sources])
    sizes = [len(s.dataset.labelled()) + (len(s.dataset.unlabelled()) if s.unlabelled else 0) for s in ctx.sources]
    shares = [draw[sum(sizes[:i]):sum(sizes[:i + 1])].sum() for i in range(len(sizes))]
    np.testing.assert_allclose(shares, weights / weights.sum())
