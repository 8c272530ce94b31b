"""The teacher -> student heatmap transform, and the frozen MoveNet SavedModel teacher."""

import numpy as np
import pytest

from tfpose.codec import HeatmapCodec
from tfpose.data.transforms import apply_matrix, box_to_crop, crop_matrix
from tfpose.distill.teachers import apply_grid_transform, grid_transform, teacher_matrix
from tests.conftest import shared_path


def _gaussian(h, w, cx, cy, sigma, peak=1.0):
    ys, xs = np.mgrid[0:h, 0:w]
    return (peak * np.exp(-((xs - cx) ** 2 + (ys - cy) ** 2) / (2 * sigma**2))).astype(np.float32)


def test_teacher_view_of_a_256x192_crop_is_the_square_32_pixels_wider_each_side():
    student = crop_matrix(box_to_crop([100, 50, 60, 120], (192, 256)), (192, 256))
    teacher = teacher_matrix(student, (192, 256), (256, 256))
    points = np.array([[10.0, 20.0], [300.0, 7.0]])
    np.testing.assert_allclose(apply_matrix(points, teacher), apply_matrix(points, student) + [32, 0], atol=1e-9)


def test_256x192_grid_transform_is_columns_8_to_56_when_sigmas_agree():
    my, mx = grid_transform(HeatmapCodec((192, 256), 4, 1.05), (256, 256), 4, 1.05)
    np.testing.assert_allclose(my, np.eye(64), atol=1e-7)
    np.testing.assert_allclose(mx, np.eye(64)[8:56], atol=1e-7)


def test_sigma_matching_blurs_to_the_student_sigma_and_keeps_the_peak_height():
    teacher_maps = _gaussian(64, 64, 30, 20, 1.05, 0.7)[None, :, :, None]
    out = apply_grid_transform(teacher_maps, *grid_transform(HeatmapCodec((192, 256), 4, 2.0), (256, 256)))[0, :, :, 0]
    assert out.shape == (64, 48)
    iy, ix = np.unravel_index(out.argmax(), out.shape)
    assert (iy, ix) == (20, 22)                              # column 30 - 8
    assert out.max() == pytest.approx(0.7, rel=0.03)
    row = out[20] / out.max()
    xs = np.arange(48)
    sigma = np.sqrt((row * (xs - 22) ** 2).sum() / row.sum())
    assert sigma == pytest.approx(2.0, rel=0.05)


def test_smaller_student_reads_the_teacher_by_the_crop_geometry():
    """96x128 student: the teacher's 256 px square spans 128 student px, so one student cell = 2 teacher cells."""
    codec = HeatmapCodec((96, 128), 4, 2.0, "dark")
    my, mx = grid_transform(codec, (256, 256))
    student = crop_matrix(box_to_crop([40, 30, 50, 90], (96, 128)), (96, 128))
    teacher = teacher_matrix(student, (96, 128), (256, 256))
    joint = np.array([[61.3, 77.9]])                         # image pixels
    tx, ty = (apply_matrix(joint, teacher)[0] - 1.5) / 4     # teacher cells
    maps = _gaussian(64, 64, tx, ty, 1.05, 0.8)[None, :, :, None]
    decoded, score = codec.decode(apply_grid_transform(maps, my, mx)[0])
    np.testing.assert_allclose(decoded[0], apply_matrix(joint, student)[0], atol=0.5)   # input pixels
    assert score[0] == pytest.approx(0.8, rel=0.1)


@pytest.fixture(scope="module")
def thunder():
    from tfpose.distill.teachers import SavedModelTeacher

    path = shared_path("models/movenet-thunder-teacher")
    return SavedModelTeacher(path, HeatmapCodec((96, 128), 4, 2.0), output_key="heatmaps_person")


def test_movenet_teacher_maps_real_crops_onto_the_student_grid_and_never_changes(thunder):
    from tfpose._keras import keras, tf
    from tfpose.data.coco import load_coco
    from tfpose.data.samples import CropSampler
    from tfpose.distill.distiller import Distiller
    from tfpose.distill.teachers import TeacherViewSampler, build_teacher_view_dataset
    from tfpose.models import build_model
    from tfpose.skeleton import COCO17
    from tests.conftest import TINY_STUDENT

    ann = shared_path("data/coco-mini-train/annotations/person_keypoints_train2017.json")
    persons = [p for p in load_coco(ann, ann.parent.parent / "train2017").labelled() if p.num_labelled >= 12][:4]
    sampler = TeacherViewSampler(CropSampler(persons, thunder_codec := HeatmapCodec((96, 128), 4, 2.0),
                                             COCO17.flip_index), (256, 256))
    samples = [sampler.sample(i) for i in range(len(sampler))]
    views = np.stack([v for _, v in samples]).astype(np.float32)
    maps = thunder.precompute(views)
    assert maps.shape == (4, 32, 24, 17)
    assert thunder.trainable_variables == []
    # the teacher's peaks sit near the labelled joints (within 2 cells for most)
    decoded, _ = thunder_codec.decode(maps)
    err = [np.linalg.norm(decoded[i] - s.keypoints, axis=-1)[s.weights > 0] / 4 for i, (s, _) in enumerate(samples)]
    assert np.median(np.concatenate(err)) < 2.0
    # inside Model.fit, the teacher runs in the train step on the square views and still gives the same maps
    ds = build_teacher_view_dataset(sampler, 2, training=False)
    keras.utils.set_random_seed(0)
    student = build_model("peleenet_duc", 17, (96, 128), **TINY_STUDENT)
    distiller = Distiller(student, thunder, alpha=0.5)
    distiller.compile(optimizer=keras.optimizers.Adam(1e-3))
    history = distiller.fit(ds, epochs=1, verbose=0)
    assert history.history["kd_loss"][0] > 0
    np.testing.assert_array_equal(thunder.precompute(views), maps)


def test_config_selects_the_savedmodel_teacher_and_the_pipeline_scores_it_on_its_square_views(tmp_path):
    from tfpose import pipeline as p
    from tfpose.config import load_config
    from tfpose.distill.teachers import SavedModelTeacher

    data = shared_path("data/coco-mini-train")
    model = shared_path("models/movenet-thunder-teacher")
    cfg = load_config(p.Path(__file__).resolve().parents[1] /
                      "configs/distill_movenet-thunder_to_peleenet-duc_coco-mini-128x96.yaml",
                      [f"data.root={data}", f"teacher.path={model}"])
    assert (cfg.distill.method, cfg.distill.unlabelled, cfg.teacher.output_key) == ("dskd", True, "heatmaps_person")
    out, codec, skeleton = p.open_run(cfg, tmp_path)
    data = p.load_data(cfg.data, codec, skeleton)
    teacher = p.train_teacher(cfg, data, out)
    assert isinstance(teacher, SavedModelTeacher)
    metrics = p.evaluate(teacher, "teacher", data)
    assert metrics["AP"] > 0.2 and metrics["PCK@0.2"] > 0.6   # measured 0.304 and 0.732 (35 val persons)


def test_cached_teacher_views_are_computed_once_and_train_the_student(tmp_path, thunder):
    from tfpose import pipeline as p
    from tfpose._keras import keras
    from tfpose.config import load_config
    from tfpose.distill.distiller import Distiller
    from tfpose.distill.view_cache import ViewCache, cached_teacher_views, cached_view_dataset
    from tfpose.models import build_model
    from tests.conftest import TINY_STUDENT

    data = shared_path("data/coco-mini-train")
    cfg = load_config(p.Path(__file__).resolve().parents[1] / "configs/default_student.yaml",
                      [f"data.root={data}", "data.sources=[]", "data.val_sources=[]", "codec.input_size=[96,128]",
                       "codec.sigma=2.0", "distill.teacher_views=2", "distill.train.epochs=1",
                       "distill.train.steps_per_epoch=2", "distill.train.batch_size=4",
                       "distill.train.eval_every_epochs=0", f"distill.teacher_cache={tmp_path / 'cache'}"])
    out, codec, skeleton = p.open_run(cfg, tmp_path)
    data = p.load_data(cfg.data, codec, skeleton)
    sampler = data.sampler(data.train, augment=True)
    sampler.persons = sampler.persons[:3]
    cache = cached_teacher_views(cfg, tmp_path, thunder, sampler, 2)
    assert isinstance(cache, ViewCache) and (len(cache), cache.persons) == (6, 3)
    assert cache["crops"].shape == (6, 128, 96, 3) and cache["teacher"].shape == (6, 32, 24, 17)
    assert cache["keypoints"].shape == (6, 17, 2) and cache["visibility"].shape == (6, 17)
    assert cache["crops"].dtype == np.uint8 and cache["teacher"].dtype == np.uint8
    assert cache["teacher"].max() > 100           # x 255: the teacher's peaks, not its [0, 1] values truncated
    # view 0 is the plain crop, view 1 an augmented one: different pixels, different teacher maps
    assert not np.array_equal(cache["crops"][0], cache["crops"][1])
    assert not np.array_equal(cache["teacher"][0], cache["teacher"][1])
    # the plain view's labelled joints are the sampler's own
    plain = sampler.sample(0)
    np.testing.assert_allclose(cache["keypoints"][0], plain.keypoints)
    np.testing.assert_array_equal(cache["visibility"][0] > 0, plain.weights > 0)
    folders = sorted((tmp_path / "cache").glob("teacher_views_2_*"))
    assert len(folders) == 1 and folders[0].is_dir()
    # another run folder sharing the cache folder: no teacher needed the second time
    again = cached_teacher_views(cfg, tmp_path / "other_run", None, sampler, 2)
    np.testing.assert_array_equal(again["teacher"], cache["teacher"])
    # the cached views train a student through the Distiller, the teacher's maps arriving precomputed
    probabilities = np.full(3, 1 / 3)
    ds = cached_view_dataset(cache, codec, skeleton.flip_index, probabilities, 4, 0.2, seed=0)
    keras.utils.set_random_seed(0)
    student = build_model("peleenet_duc", 17, (96, 128), **TINY_STUDENT)
    distiller = Distiller(student, thunder, alpha=0.5)
    distiller.compile(optimizer=keras.optimizers.Adam(1e-3))
    history = distiller.fit(ds, epochs=1, steps_per_epoch=2, verbose=0)
    assert history.history["kd_loss"][0] > 0 and np.isfinite(history.history["loss"][0])
    sampler.persons = sampler.persons[:2]         # other persons, other views: computed afresh, kept beside
    assert len(cached_teacher_views(cfg, tmp_path, thunder, sampler, 2)) == 4
    assert len(list((tmp_path / "cache").glob("teacher_views_2_*"))) == 2


class _Views:
    """A ViewCache's interface over arrays in memory."""

    def __init__(self, views: int, **arrays):
        self.views, self.arrays = views, arrays

    def __getitem__(self, name):
        return self.arrays[name]


def test_cached_views_are_redrawn_mirrored_with_left_and_right_swapped_or_as_they_are():
    from tfpose.distill.view_cache import draw_batch

    codec = HeatmapCodec((12, 16), 4, 1.0)        # 3 x 4 cells; cell j is centred on pixel 4 j + 1.5
    k, w = 3, 3
    flip_index = np.array([0, 2, 1])             # joint 0 central, 1 and 2 a left/right pair
    crop = np.arange(16 * 12 * 3, dtype=np.uint8).reshape(1, 16, 12, 3)
    teacher = np.zeros((1, 4, 3, k), np.uint8)
    teacher[0, 1, 0, 1] = 102                     # joint 1 in the left column, 0.4 x 255
    keypoints = np.array([[[5.5, 9.5], [1.5, 5.5], [9.5, 5.5]]], np.float32)
    visibility = np.array([[2, 2, 0]], np.uint8)  # joint 2 unlabelled
    cache = _Views(1, crops=crop, teacher=teacher, keypoints=keypoints, visibility=visibility)
    plain_maps, _ = codec.encode(keypoints[0], visibility[0])
    kinds = set()
    for seed in range(40):
        x, hm, wt, tm = (a[0] for a in draw_batch(cache, codec, flip_index, np.ones(1), 1, colour=0.0, seed=seed))
        if np.array_equal(x, crop[0]):
            kinds.add("as is")
            np.testing.assert_allclose(hm, plain_maps, atol=1e-6)
            np.testing.assert_array_equal(wt, [1, 1, 0])
            np.testing.assert_allclose(tm, teacher[0] / 255)
        else:
            kinds.add("mirrored")
            np.testing.assert_array_equal(x, crop[0, :, ::-1])
            # the ground truth mirrored exactly, on the other side's channel: joint 1's peak now joint 2's
            np.testing.assert_allclose(hm, plain_maps[:, ::-1][..., flip_index], atol=1e-6)
            assert hm[1, w - 1, 2] == pytest.approx(1.0) and hm[..., 1].max() == 0
            assert tm[1, w - 1, 2] == pytest.approx(0.4) and tm.sum() == pytest.approx(0.4)
            np.testing.assert_array_equal(wt, [1, 0, 1])
    assert kinds == {"as is", "mirrored"}


def test_mirrored_heatmaps_come_back_exactly_with_left_and_right_swapped():
    from tfpose.distill.teachers import mirror_heatmaps
    from tfpose.skeleton import COCO17

    maps = np.zeros((1, 8, 6, 17), np.float32)
    maps[0, 3, 1, COCO17.keypoints.index("left_wrist")] = 1.0
    back = np.asarray(mirror_heatmaps(maps, COCO17.flip_index))
    assert back[0, 3, 4, COCO17.keypoints.index("right_wrist")] == 1.0 and back.sum() == 1.0
    np.testing.assert_array_equal(np.asarray(mirror_heatmaps(back, COCO17.flip_index)), maps)


def test_a_zoomed_teacher_view_maps_back_to_the_same_student_cells():
    """A peak seen in a view magnified 1.25x about its centre lands, through the zoom's own transform, where the
    plain view's peak lands."""
    from tfpose.distill.teachers import zoom_views

    codec = HeatmapCodec((96, 128), 4, 2.0, "dark")
    view = np.zeros((1, 256, 256, 3), np.float32)
    view[0, 170:174, 90:94] = 255.0                         # a bright dot: what the "teacher" reports as its joint
    zoomed = np.asarray(zoom_views(view, 1.25))
    decoded = []
    for v, zoom in ((view, 1.0), (zoomed, 1.25)):
        ys, xs = np.nonzero(v[0, :, :, 0] > 100)
        tx, ty = (xs.mean() - 1.5) / 4, (ys.mean() - 1.5) / 4        # teacher cells
        maps = _gaussian(64, 64, tx, ty, 1.05)[None, :, :, None]
        decoded.append(codec.decode(apply_grid_transform(maps, *grid_transform(codec, (256, 256), zoom=zoom)))[0][0])
    np.testing.assert_allclose(decoded[1], decoded[0], atol=0.6)   # input pixels


def test_teacher_tta_averages_the_mirrored_view_in(thunder, tmp_path):
    """Flip TTA on a mirror-symmetric view equals the plain teacher with its heatmaps averaged with their mirror."""
    from tfpose.distill.teachers import SavedModelTeacher, mirror_heatmaps
    from tfpose.skeleton import COCO17

    path = shared_path("models/movenet-thunder-teacher")
    flipped = SavedModelTeacher(path, HeatmapCodec((96, 128), 4, 2.0), output_key="heatmaps_person",
                                flip_index=COCO17.flip_index)
    view = np.random.default_rng(0).uniform(0, 255, (2, 256, 256, 3)).astype(np.float32)
    plain, mirrored = thunder.precompute(view), thunder.precompute(view[:, :, ::-1].copy())
    # the student grid's columns are symmetric about the crop's centre, so mirroring commutes with the transform
    expected = 0.5 * (plain + np.asarray(mirror_heatmaps(mirrored, COCO17.flip_index)))
    np.testing.assert_allclose(flipped.precompute(view), expected, atol=1e-5)
