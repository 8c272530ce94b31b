"""The teacher-view cache: built in chunks, resumed after an interruption to the same arrays, reused without the
teacher, and drawn from reproducibly by the sources' probabilities."""

from types import SimpleNamespace

import numpy as np
import pytest

from tfpose.codec import HeatmapCodec
from tfpose.distill import view_cache
from tfpose.distill.view_cache import build_view_cache, draw_batch, open_view_cache
from tfpose.skeleton import COCO17

CODEC = HeatmapCodec((16, 16), 4, 1.0)      # 4 x 4 cells
K = 17
FLIP = COCO17.flip_index


class _Sampler:
    """A TeacherViewSampler's interface without images: person i's crop is the constant 50 i, +25 on an augmented
    view (so a drawn crop tells its person and its view); the teacher's view says the same in its pixels."""
    codec, flip_index = CODEC, FLIP

    def __init__(self, persons: int):
        self.persons = persons

    def __len__(self):
        return self.persons

    def sample(self, i, seed=None):
        value = 50 * i + (0 if seed is None else 25)
        keypoints = np.stack([1.5 + 4 * (np.arange(K) % 4) + (seed or 0) % 3, np.full(K, 5.5)], -1).astype(np.float32)
        weights = np.ones(K, np.float32)
        weights[2] = 0 if i % 2 else 1
        sample = SimpleNamespace(crop=np.full((16, 16, 3), value, np.uint8), keypoints=keypoints, weights=weights)
        return sample, np.full((8, 8, 3), value + (seed or 0) % 7, np.float32)


class _Teacher:
    """Heatmaps from the views' pixels; counts the views of each call and fails on call ``fail_on`` (1-based)."""
    input_size = (8, 8)

    def __init__(self, fail_on: int | None = None):
        self.calls, self.fail_on = [], fail_on

    def precompute(self, views):
        self.calls.append(len(views))
        if len(self.calls) == self.fail_on:
            raise KeyboardInterrupt("the run was stopped")
        level = views.mean(axis=(1, 2, 3)) / 255
        return np.broadcast_to(level[:, None, None, None], (len(views), 4, 4, K)).copy()


def _arrays(cache) -> dict:
    return {name: np.array(cache[name]) for name in view_cache.ARRAYS}


@pytest.fixture
def small_chunks(monkeypatch):
    monkeypatch.setattr(view_cache, "CHUNK", 2)


def test_an_interrupted_build_resumes_to_the_arrays_of_an_uninterrupted_one(tmp_path, small_chunks):
    whole = build_view_cache(tmp_path / "whole", _Sampler(5), _Teacher(), views=2, seed=3)
    assert (len(whole), whole.persons) == (10, 5)
    stopped = _Teacher(fail_on=2)
    with pytest.raises(KeyboardInterrupt):
        build_view_cache(tmp_path / "resumed", _Sampler(5), stopped, views=2, seed=3)
    assert stopped.calls == [4, 4]                       # chunk 1 written, chunk 2 lost
    assert open_view_cache(tmp_path / "resumed") is None  # growing, not complete
    rest = _Teacher()
    resumed = build_view_cache(tmp_path / "resumed", _Sampler(5), rest, views=2, seed=3)
    assert rest.calls == [4, 2]                          # persons 2-3 and 4 only: person 0-1's views were kept
    expected, got = _arrays(whole), _arrays(resumed)
    for name in view_cache.ARRAYS:
        np.testing.assert_array_equal(got[name], expected[name], err_msg=name)
    assert got["teacher"].dtype == np.uint8 and got["teacher"].max() > 0
    # person-major rows, view 0 plain and view 1 augmented
    np.testing.assert_array_equal(got["crops"][:, 0, 0, 0], [0, 25, 50, 75, 100, 125, 150, 175, 200, 225])
    np.testing.assert_array_equal(got["visibility"][2][:4], [2, 2, 0, 2])     # person 1: joint 2 unlabelled


def test_a_finished_cache_is_reused_without_the_teacher(tmp_path, small_chunks):
    first = _arrays(build_view_cache(tmp_path / "c", _Sampler(3), _Teacher(), views=2, seed=0))
    never = _Teacher(fail_on=1)
    again = build_view_cache(tmp_path / "c", _Sampler(3), never, views=2, seed=0)
    assert never.calls == []
    for name, array in _arrays(again).items():
        np.testing.assert_array_equal(array, first[name])
    assert build_view_cache(tmp_path / "c", _Sampler(3), None, views=2, seed=0).persons == 3
    opened = open_view_cache(tmp_path / "c")
    assert opened is not None and (opened.views, len(opened)) == (2, 6) and opened.codec == CODEC


def test_a_cache_that_lost_an_array_is_rebuilt_not_resumed(tmp_path, small_chunks):
    with pytest.raises(KeyboardInterrupt):
        build_view_cache(tmp_path / "c", _Sampler(5), _Teacher(fail_on=2), views=1, seed=0)
    (tmp_path / "c/teacher.npy").unlink()
    again = _Teacher()
    cache = build_view_cache(tmp_path / "c", _Sampler(5), again, views=1, seed=0)
    assert again.calls == [2, 2, 1]
    np.testing.assert_array_equal(_arrays(cache)["teacher"],
                                  _arrays(build_view_cache(tmp_path / "d", _Sampler(5), _Teacher(), 1, 0))["teacher"])


def test_no_teacher_and_no_complete_cache_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="no teacher"):
        build_view_cache(tmp_path / "c", _Sampler(2), None, views=1, seed=0)


@pytest.fixture(scope="module")
def four_persons(tmp_path_factory):
    return build_view_cache(tmp_path_factory.mktemp("views") / "c", _Sampler(4), _Teacher(), views=2, seed=1)


def _drawn(crops):
    """(person, view) of each drawn crop (constant crops, so mirroring keeps them)."""
    value = crops[:, 0, 0, 0].astype(int)
    return value // 50, (value % 50) // 25


def test_draw_batch_is_decided_by_its_seed(four_persons):
    p = np.full(4, 0.25)
    a = draw_batch(four_persons, CODEC, FLIP, p, 8, colour=0.2, seed=5)
    b = draw_batch(four_persons, CODEC, FLIP, p, 8, colour=0.2, seed=5)
    c = draw_batch(four_persons, CODEC, FLIP, p, 8, colour=0.2, seed=6)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    assert not np.array_equal(a[0], c[0])
    crops, heatmaps, weights, teacher = a
    assert crops.shape == (8, 16, 16, 3) and heatmaps.shape == teacher.shape == (8, 4, 4, K)
    assert weights.shape == (8, K) and crops.dtype == heatmaps.dtype == teacher.dtype == np.float32
    assert teacher.max() <= 1.0


def test_draw_batch_draws_persons_by_their_probabilities_and_every_view(four_persons):
    p = np.array([0.7, 0.0, 0.3, 0.0])
    drawn = [_drawn(draw_batch(four_persons, CODEC, FLIP, p, 8, colour=0.0, seed=s)[0]) for s in range(100)]
    persons = np.concatenate([d[0] for d in drawn])
    views = np.concatenate([d[1] for d in drawn])
    assert set(persons) == {0, 2}                        # probability 0: never drawn
    assert abs((persons == 0).mean() - 0.7) < 0.06      # 800 draws: 3 standard errors is 0.05
    assert set(views) == {0, 1}


def test_the_quantization_benchmark_fine_tunes_on_a_complete_cache_beside_the_student(tmp_path, small_chunks):
    from benchmarks.quantization import _Precomputed, finetune_data, teacher_view_cache

    args = SimpleNamespace(teacher_views=None, student=str(tmp_path / "student.keras"))
    with pytest.raises(KeyboardInterrupt):
        build_view_cache(tmp_path / "teacher_views_1_aaaa", _Sampler(5), _Teacher(fail_on=2), views=1, seed=0)
    assert teacher_view_cache(args, CODEC) is None                       # growing: not used
    cache = build_view_cache(tmp_path / "teacher_views_2_bbbb", _Sampler(3), _Teacher(), views=2, seed=0)
    assert teacher_view_cache(args, HeatmapCodec((32, 16), 4, 1.0)) is None   # another input size
    assert teacher_view_cache(args, CODEC).folder == cache.folder
    ds, teacher = finetune_data(args, None, CODEC, batch=4)
    assert isinstance(teacher, _Precomputed)
    crops, targets = next(iter(ds))
    assert crops.shape == (4, 16, 16, 3) and set(targets) == {"heatmaps", "weights", "teacher_heatmaps"}
    assert set(np.unique(crops.numpy())) <= {0, 25, 50, 75, 100, 125}      # the cached crops, no colour jitter
    drawn = targets["teacher_heatmaps"].numpy() * 255                       # back to the cached uint8 steps
    np.testing.assert_allclose(drawn, np.round(drawn), atol=1e-3)
    assert set(np.round(drawn).astype(int).ravel()) <= set(np.array(cache["teacher"]).ravel().tolist())
    named = SimpleNamespace(teacher_views=str(cache.folder), student=str(tmp_path / "elsewhere/student.keras"))
    assert teacher_view_cache(named, CODEC).folder == cache.folder


def test_a_box_error_moves_crop_teacher_and_joints_together():
    from tfpose.config import ViewAugmentConfig
    from tfpose.distill.view_cache import augment_view

    codec = HeatmapCodec((32, 48), 4, 1.0)
    keypoints = np.tile([[13.5, 21.5]], (K, 1)).astype(np.float64)
    keypoints[1] = [100.0, 100.0]                              # far outside: stays unlabelled
    crop = np.zeros((48, 32, 3), np.uint8)
    crop[20:24, 12:16] = 255
    teacher = np.stack([codec.encode(keypoints[:1], np.ones(1))[0][..., 0]] * K, -1)
    aug = ViewAugmentConfig(shift=0.1, scale=0.1)
    for seed in range(5):
        c, t, kp, vis = augment_view(crop, teacher, keypoints, np.full(K, 2), codec, np.random.default_rng(seed),
                                     aug, crop)
        ys, xs = np.nonzero(c[..., 0] > 100)
        np.testing.assert_allclose(kp[0], [xs.mean(), ys.mean()], atol=1.0)           # joint follows the pixels
        decoded, _ = codec.decode(t[None])
        np.testing.assert_allclose(decoded[0, 0], kp[0], atol=1.0)                       # teacher follows too
        assert vis[1] == 0 and vis[0] == 2


def test_truncation_unlabels_the_joints_it_blacks_out_and_occlusion_keeps_the_targets():
    from tfpose.config import ViewAugmentConfig
    from tfpose.distill.view_cache import augment_view

    codec = HeatmapCodec((32, 48), 4, 1.0)
    rng = np.random.default_rng(0)
    keypoints = np.stack([rng.uniform(0, 31, K), rng.uniform(0, 47, K)], -1)
    crop = np.full((48, 32, 3), 200, np.uint8)
    teacher = rng.uniform(0, 1, (12, 8, K)).astype(np.float32)
    for seed in range(10):
        c, t, kp, vis = augment_view(crop, teacher, keypoints, np.full(K, 2), codec, np.random.default_rng(seed),
                                     ViewAugmentConfig(truncation=1.0), crop)
        black = c[..., 0] == 0
        assert 0.1 < black.mean() < 0.5
        x, y = np.round(kp).astype(int).T
        np.testing.assert_array_equal(vis == 0, black[y, x])
        np.testing.assert_array_equal(t, teacher)
    donor = np.zeros_like(crop)
    c, t, kp, vis = augment_view(crop, teacher, keypoints, np.full(K, 2), codec, rng,
                                 ViewAugmentConfig(occlusion=1.0), donor)
    assert 0.03 < (c[..., 0] == 0).mean() < 0.3 and (vis == 2).all()
    np.testing.assert_array_equal(t, teacher)


class _Persons(_Sampler):
    """``_Sampler`` with person records, which the cache's key hashes."""
    padding, augment = 1.25, None

    def __init__(self, persons: int):
        self.persons = [SimpleNamespace(image_path=f"p{i}.jpg", box=[i, 0, 10, 10], keypoints=np.zeros((K, 2)),
                                        visibility=np.zeros(K)) for i in range(persons)]

    def __len__(self):
        return len(self.persons)


def test_a_source_added_at_the_end_reuses_the_views_of_the_persons_before_it(tmp_path):
    from tfpose.config import PipelineConfig

    cfg = PipelineConfig()
    cfg.teacher.path = str(tmp_path / "no teacher files")
    small, large = _Persons(3), _Persons(5)
    key = view_cache.teacher_views_key(cfg, small, 1)
    build_view_cache(tmp_path / f"teacher_views_1_{key}", small, _Teacher(), views=1, seed=0)
    folder = tmp_path / f"teacher_views_1_{view_cache.teacher_views_key(cfg, large, 1)}"
    assert view_cache.start_from_prefix(folder, cfg, large, 1) == 3
    teacher = _Teacher()
    grown = build_view_cache(folder, large, teacher, views=1, seed=0)
    assert teacher.calls == [2]                                   # the two new persons only
    fresh = build_view_cache(tmp_path / "fresh", large, _Teacher(), views=1, seed=0)
    for name in view_cache.ARRAYS:
        np.testing.assert_array_equal(grown[name], fresh[name])
    reordered = _Persons(4)
    reordered.persons.reverse()                                   # the same persons, in other places: nothing fits
    assert view_cache.start_from_prefix(tmp_path / "teacher_views_1_other", cfg, reordered, 1) == 0
