"""Video: readers (JHMDB, PoseTrack18, Penn Action layouts -> COCO-17), frame sources, synthetic sequences
(deterministic, smooth), the One-Euro filter, and DKD: its train_step with a frozen teacher, and its int8 TFLite
export run frame by frame in the TensorFlow-free path."""

import json

import numpy as np
import pytest

from tests.conftest import TINY_INPUT, TINY_STUDENT, run_without_tensorflow, shared_path
from tfpose.codec import HeatmapCodec
from tfpose.data.synthetic_video import render_sequence, render_sequences
from tfpose.data.video import (POSETRACK18_JOINTS, crop_track, load_penn_action, load_video_coco, open_frames,
                               to_coco17)
from tfpose.errors import InputError
from tfpose.skeleton import COCO17
from tfpose.smoothing import OneEuroFilter, mean_acceleration, smooth_track

J = {n: i for i, n in enumerate(COCO17.keypoints)}


# -- One-Euro -----------------------------------------------------------------------------------------------------
def test_one_euro_passes_a_constant_and_the_first_frame_unchanged():
    f = OneEuroFilter(30.0)
    x = np.array([[10.0, 20.0], [30.0, 40.0]])
    assert np.array_equal(f(x), x)
    for _ in range(5):
        assert np.allclose(f(x), x)


def test_one_euro_removes_most_jitter_and_lags_a_ramp_by_little():
    rng = np.random.default_rng(0)
    t = np.arange(120) / 30.0
    truth = np.stack([100 + 40 * t, 50 + 0 * t], -1)[:, None]          # (T, 1, 2): steady motion, 40 px/s
    noisy = truth + rng.normal(0, 2.0, truth.shape)
    smoothed = smooth_track(noisy, 30.0, min_cutoff=1.0, beta=0.05)
    assert mean_acceleration(smoothed) < 0.35 * mean_acceleration(noisy)
    # after settling, the error is below the raw noise: smoothing helps more than its lag hurts
    err = lambda a: np.abs(a - truth)[30:].mean()  # noqa: E731
    assert err(smoothed) < err(noisy)


def test_one_euro_follows_fast_motion_more_closely_with_a_larger_beta():
    t = np.arange(60) / 30.0
    step = np.where(t < 1.0, 0.0, 200.0)[:, None, None] * np.ones((1, 1, 2))
    lag = lambda beta: np.abs(smooth_track(step, 30.0, 1.0, beta) - step)[30:36].mean()  # noqa: E731
    assert lag(0.1) < lag(0.0)
    with pytest.raises(ValueError):
        OneEuroFilter(fps=0)


def test_mean_acceleration_is_zero_for_constant_velocity_and_counts_visible_triples_only():
    kp = np.arange(10, dtype=float)[:, None, None] * np.array([2.0, -1.0])     # (T, 1, 2) linear
    assert mean_acceleration(kp) == 0.0
    kp[5, 0, 0] += 3.0
    visible = np.ones((10, 1), bool)
    assert mean_acceleration(kp, visible) == pytest.approx(3 * (1 + 2 + 1) / 8)
    visible[4:7] = False   # every triple through the bump has a hidden frame
    assert mean_acceleration(kp, visible) == 0.0


# -- readers ------------------------------------------------------------------------------------------------------
def test_jhmdb_fixture_reads_as_sequences_in_coco17():
    folder = shared_path("data", "mmpose-fixtures", "jhmdb")
    raw = json.loads((folder / "test_jhmdb_sub1.json").read_text())
    sequences = load_video_coco(folder / "test_jhmdb_sub1.json", folder)
    assert len(sequences) == 3 and all(len(s.frames) == 1 for s in sequences)
    first = sequences[0]
    assert first.source_layout[0] == "neck" and first.frames[0].image_path.is_file()
    person = first.frames[0].persons[0].person
    source = np.array(raw["annotations"][0]["keypoints"]).reshape(15, 3)
    names = raw["categories"][0]["keypoints"]
    for name in ("left_shoulder", "right_wrist", "left_ankle", "right_hip"):
        assert np.allclose(person.keypoints[J[name]], source[names.index(name), :2], atol=1e-4)
        assert person.visibility[J[name]] == 2
    # JHMDB's neck, belly and head are not COCO joints; COCO's face joints are not JHMDB's
    assert person.visibility[[J["nose"], J["left_eye"], J["right_ear"]]].tolist() == [0, 0, 0]
    assert person.num_labelled == 12


def test_posetrack18_layout_orders_frames_keeps_tracks_and_drops_head_top(tmp_path):
    images = [{"id": 10 + i, "vid_id": "000001", "frame_id": 10 + i, "file_name": f"{i:06d}.jpg",
               "is_labeled": i != 2, "nframes": 3} for i in (2, 0, 1)]           # out of order on purpose
    anns = []
    for i in (0, 1):
        for track in (0, 1):
            kp = np.zeros((17, 3))
            kp[:, :2] = 100 * track + 10 * i + np.arange(17)[:, None]
            kp[:, 2] = 1
            anns.append({"image_id": 10 + i, "track_id": track, "bbox": [0, 0, 50, 80],
                         "keypoints": kp.ravel().tolist(), "category_id": 1})
    ann_file = tmp_path / "000001_mpii_test.json"
    ann_file.write_text(json.dumps({"images": images, "annotations": anns,
                                    "categories": [{"id": 1, "keypoints": list(POSETRACK18_JOINTS)}]}))
    (seq,) = load_video_coco(ann_file, tmp_path)
    assert [f.image_path.name for f in seq.frames] == ["000000.jpg", "000001.jpg", "000002.jpg"]
    assert [f.labelled for f in seq.frames] == [True, True, False]
    assert seq.track_ids == [0, 1]
    kp, vis = seq.track(1)
    assert kp.shape == (3, 17, 2) and vis[2].sum() == 0                  # unlabelled frame: no person
    assert kp[1, J["nose"], 0] == 110 and kp[1, J["left_shoulder"], 0] == 115
    # PoseTrack's head_bottom and head_top sit where COCO has eyes: those stay unlabelled
    assert vis[0, [J["left_eye"], J["right_eye"]]].tolist() == [0, 0] and vis[0].sum() == 15 * 2


def test_penn_action_layout_reads_mat_labels(tmp_path):
    scipy_io = pytest.importorskip("scipy.io")
    import cv2

    frames = tmp_path / "frames" / "0001"
    frames.mkdir(parents=True)
    for i in range(1, 4):
        cv2.imwrite(str(frames / f"{i:06d}.jpg"), np.zeros((40, 60, 3), np.uint8))
    (tmp_path / "labels").mkdir()
    x = np.tile(np.arange(13, dtype=float), (3, 1)) + np.arange(3)[:, None]
    scipy_io.savemat(tmp_path / "labels" / "0001.mat", {"x": x, "y": x + 5, "visibility": np.ones((3, 13)),
                                                         "bbox": np.tile([1.0, 2.0, 31.0, 42.0], (3, 1))})
    seq = load_penn_action(tmp_path, "0001")
    assert len(seq.frames) == 3 and seq.frames[2].image_path.name == "000003.jpg"
    p = seq.frames[2].persons[0].person
    assert p.box == (1.0, 2.0, 30.0, 40.0)
    assert p.keypoints[J["left_shoulder"]].tolist() == [3.0, 8.0]      # Penn joint 1 in frame 3
    assert p.visibility[J["nose"]] == 0 and p.num_labelled == 12
    with pytest.raises(InputError, match="0002.mat"):
        load_penn_action(tmp_path, "0002")


def _posetrack(tmp_path, edit):
    """A two-frame PoseTrack18-layout file, changed by ``edit(doc)`` first."""
    kp = np.tile([10.0, 20.0, 1.0], 17)
    doc = {"images": [{"id": 10 + i, "vid_id": "000001", "frame_id": 10 + i, "file_name": f"{i:06d}.jpg"}
                      for i in (0, 1)],
           "annotations": [{"id": 100 + i, "image_id": 10 + i, "track_id": 0, "bbox": [0, 0, 50, 80],
                            "keypoints": kp.tolist()} for i in (0, 1)],
           "categories": [{"id": 1, "keypoints": list(POSETRACK18_JOINTS)}]}
    edit(doc)
    path = tmp_path / "video.json"
    path.write_text(json.dumps(doc))
    return path


@pytest.mark.parametrize("edit, field, message", [
    (lambda d: d["annotations"][1]["keypoints"].__setitem__(4, float("nan")), "annotations[1].keypoints",
     "not finite (nan at position 4)"),
    (lambda d: d["annotations"][0]["keypoints"].__setitem__(0, float("inf")), "annotations[0].keypoints",
     "not finite (inf at position 0)"),
    (lambda d: d["annotations"][0]["bbox"].__setitem__(2, float("nan")), "annotations[0].bbox",
     "not finite (nan at position 2)"),
    (lambda d: d["images"][1].__setitem__("id", 10), "images[1].id", "duplicate image id 10"),
    (lambda d: d["annotations"][1].__setitem__("id", 100), "annotations[1].id", "duplicate annotation id 100"),
    (lambda d: d["images"][1].__setitem__("frame_id", 10), "images[1].frame_id", "frame id 10 appears twice"),
    (lambda d: d["annotations"][1].__setitem__("image_id", 99), "annotations[1].image_id",
     "image id 99 is not in 'images'"),
    (lambda d: d["images"][1].__setitem__("frame_id", {"n": 1}), "images[1].frame_id", "expected an integer"),
])
def test_video_coco_rejects_non_finite_numbers_and_duplicate_ids(tmp_path, edit, field, message):
    path = _posetrack(tmp_path, edit)
    with pytest.raises(InputError) as e:
        load_video_coco(path, tmp_path)
    assert e.value.field == field and message in str(e.value) and str(path) in str(e.value)


def test_penn_action_rejects_non_finite_labels_and_boxes_for_other_frames(tmp_path):
    scipy_io = pytest.importorskip("scipy.io")
    import cv2

    frames = tmp_path / "frames" / "0001"
    frames.mkdir(parents=True)
    for i in range(1, 4):
        cv2.imwrite(str(frames / f"{i:06d}.jpg"), np.zeros((20, 30, 3), np.uint8))
    (tmp_path / "labels").mkdir()
    x = np.tile(np.arange(13, dtype=float), (3, 1))
    good = {"x": x, "y": x + 5, "visibility": np.ones((3, 13)), "bbox": np.tile([1.0, 2.0, 31.0, 42.0], (3, 1))}
    for change, field, message in (({"x": np.where(x == 4, np.nan, x)}, "x", "the first nan at frame 1, column 5"),
                                   ({"bbox": good["bbox"][:2]}, "bbox", "has shape (2, 4), expected (3 frames, 4)")):
        scipy_io.savemat(tmp_path / "labels" / "0001.mat", {**good, **change})
        with pytest.raises(InputError) as e:
            load_penn_action(tmp_path, "0001")
        assert e.value.field == field and message in str(e.value) and "0001.mat" in str(e.value)


def test_to_coco17_maps_by_name_and_aliases():
    kp, vis = to_coco17(np.array([[1.0, 2.0], [3.0, 4.0]]), np.array([2, 2]), ["l_wrist", "pelvis"])
    assert kp[J["left_wrist"]].tolist() == [1.0, 2.0] and vis.sum() == 2


def test_open_frames_reads_the_fixture_video_and_rejects_bad_input(tmp_path):
    folder = shared_path("data", "mmpose-fixtures", "posetrack18-video")
    source = open_frames(folder / "000001_mpiinew_test.mp4")
    frames = list(source)
    assert source.kind == "video" and source.fps == pytest.approx(30.0) and len(frames) == 5
    assert frames[0][2].shape == (720, 1280, 3) and frames[0][2].dtype == np.uint8
    assert open_frames(folder).kind == "folder" and len(open_frames(folder).files) == 5
    (tmp_path / "notes.txt").write_text("x")
    for path, message in ((tmp_path / "gone.mp4", "not found"), (tmp_path / "notes.txt", "not an image"),
                          (tmp_path, "no images")):
        with pytest.raises(InputError, match=message):
            open_frames(path)


# -- synthetic sequences ------------------------------------------------------------------------------------------
def test_synthetic_sequences_are_deterministic_from_the_seed():
    a, b, c = render_sequence(5, 6), render_sequence(5, 6), render_sequence(6, 6)
    assert np.array_equal(a.frames, b.frames) and np.array_equal(a.keypoints, b.keypoints)
    assert not np.array_equal(a.keypoints, c.keypoints)
    assert np.array_equal(render_sequences(2, 1, 4)[1].frames, render_sequences(3, 1, 4)[1].frames)


def test_synthetic_sequences_move_smoothly_and_stay_labelled():
    for seq in render_sequences(6, 0, 13):
        assert seq.frames.shape == (13, 160, 160, 3)
        kp, visible = seq.keypoints, seq.visibility > 0
        speed = np.linalg.norm(np.diff(kp, axis=0), axis=-1)                     # (T - 1, K) px per frame
        acceleration = np.linalg.norm(kp[2:] - 2 * kp[1:-1] + kp[:-2], axis=-1)
        assert speed.mean() > 0.3, "the figure moves"
        # eased key poses: no joint jumps (under an eighth of the frame per frame), and speed changes gradually
        # (cosine easing over 8 frames bounds the peak acceleration at pi / 8 of the peak speed, plus drift)
        assert speed.max() < 160 / 8
        assert acceleration.max() < 0.45 * speed.max()
        assert visible.mean() > 0.8
        assert (seq.boxes[:, 2:] > 10).all()


def test_crop_track_uses_one_crop_region_for_the_whole_track():
    seq = render_sequence(2, 5)
    codec = HeatmapCodec(TINY_INPUT)
    track = crop_track(seq.frames, seq.keypoints, seq.visibility, seq.boxes, codec)
    assert track.crops.shape == (5, 64, 64, 3) and track.heatmaps.shape == (5, 16, 16, 17)
    # the crop holds every frame's labelled joints, and targets peak where the keypoints are
    inside = track.keypoints[track.weights > 0]
    assert (inside >= -1).all() and (inside <= 64).all()
    decoded, _ = codec.decode(track.heatmaps)
    ok = track.weights > 0
    assert np.abs(decoded - track.keypoints)[ok].max() < 1.0


# -- DKD ----------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tiny_dkd():
    """A DKD tracker at 64x64 with a tiny PeleeNet teacher, trained two steps on synthetic tracks by the Distiller."""
    from tfpose._keras import keras
    from tfpose.data.pipeline import build_track_dataset
    from tfpose.data.synthetic_video import synthetic_tracks
    from tfpose.distill.distiller import Distiller
    from tfpose.models import build_model
    from tfpose.models.dkd import parts

    keras.utils.set_random_seed(0)
    codec = HeatmapCodec(TINY_INPUT)
    teacher = build_model("peleenet_duc", 17, TINY_INPUT, **TINY_STUDENT)
    data = synthetic_tracks(4, 0, 4, codec)
    tracker = build_model("dkd", 17, TINY_INPUT, channels=8)
    distiller = Distiller(tracker, teacher, method="dkd")
    encoder, _, matcher = parts(tracker)
    before = {"teacher": [w.numpy().copy() for w in teacher.weights],
              "encoder": [w.numpy().copy() for w in encoder.trainable_weights],
              "matcher": [w.numpy().copy() for w in matcher.trainable_weights],
              "discriminator": [w.numpy().copy() for w in distiller.discriminator.trainable_weights]}
    distiller.compile(optimizer=keras.optimizers.Adam(1e-3))
    history = distiller.fit(build_track_dataset(data, 2, training=True), steps_per_epoch=2, epochs=1, verbose=0)
    return {"tracker": tracker, "distiller": distiller, "teacher": teacher, "codec": codec, "data": data,
            "before": before, "losses": history.history["loss"], "parts": {"encoder": encoder, "matcher": matcher}}


def test_dkd_train_step_updates_tracker_and_discriminator_but_not_the_teacher(tiny_dkd):
    before, distiller = tiny_dkd["before"], tiny_dkd["distiller"]
    assert np.isfinite(tiny_dkd["losses"]).all()
    assert all(np.array_equal(a, b.numpy()) for a, b in zip(before["teacher"], tiny_dkd["teacher"].weights))
    for part, model in (*tiny_dkd["parts"].items(), ("discriminator", distiller.discriminator)):
        assert any(not np.array_equal(a, b.numpy()) for a, b in zip(before[part], model.trainable_weights)), part
    assert not tiny_dkd["teacher"].trainable
    assert {"gt_loss", "kd_loss", "critic_loss"} <= {m.name for m in distiller.metrics}


def test_dkd_first_frame_is_the_teachers_and_kernels_are_heatmap_pooled_features(tiny_dkd):
    from tfpose._keras import tf
    from tfpose.distill.dkd import unroll
    from tfpose.models.dkd import PoseKernels

    frames = tiny_dkd["data"]["frames"][:2]
    maps = np.stack([m.numpy() for m in unroll(tiny_dkd["tracker"], frames, tiny_dkd["teacher"])[0]], 1)
    assert maps.shape == (2, 4, 16, 16, 17)
    teacher = tiny_dkd["teacher"](frames[:, 0].astype(np.float32), training=False).numpy()
    assert np.allclose(maps[:, 0], teacher, atol=1e-5)
    # a one-hot heatmap pools exactly the feature vector under it
    features = np.random.default_rng(0).normal(size=(1, 4, 4, 3)).astype(np.float32)
    heatmaps = np.zeros((1, 4, 4, 2), np.float32)
    heatmaps[0, 1, 2, 0] = heatmaps[0, 3, 0, 1] = 5.0
    kernels = PoseKernels(sharpness=10.0)([tf.constant(features), tf.constant(heatmaps)]).numpy()
    assert np.allclose(kernels[0, 0], features[0, 1, 2], atol=1e-6)
    assert np.allclose(kernels[0, 1], features[0, 3, 0], atol=1e-6)


def test_dkd_tflite_export_runs_frame_by_frame_without_tensorflow(tiny_dkd, tiny_export, tmp_path):
    from tflite import metadata as tfl_metadata
    from tfpose.export_video import export_dkd
    from tfpose.models.dkd import per_frame_macs

    paths = export_dkd(tiny_dkd["tracker"], tmp_path, tiny_dkd["codec"], COCO17, 1.25, tiny_dkd["data"]["frames"],
                       tiny_dkd["teacher"], tiny_export["path"].name)
    meta = tfl_metadata.read(paths["tracker"])
    assert meta["role"] == "tracker" and meta["codec"]["input_size"] == list(TINY_INPUT)
    assert per_frame_macs(tiny_dkd["tracker"], "encoder") < per_frame_macs(tiny_dkd["tracker"], "tracker")
    run_without_tensorflow(tmp_path, f"""
        from tflite.video_validate import main
        code = main([{str(paths['encoder'])!r}, {str(paths['tracker'])!r}, '--key-model',
                     {str(tiny_export['path'])!r}, '--sequences', '2', '--frames', '5', '--out', {str(tmp_path)!r}])
    """)
    report = json.loads((tmp_path / "report.json").read_text())
    assert set(report["modes"]) == {"dkd", "dkd+one-euro", "per-frame", "per-frame+one-euro"}
    for mode in report["modes"].values():
        assert 0.0 <= mode["PCK@0.2"] <= 1.0 and mode["later_frames_ms"] > 0 and np.isfinite(mode["jitter_px"])
    # frame 1 comes from the key model in both modes
    assert report["modes"]["dkd"]["PCK@0.2_first_frame"] == report["modes"]["per-frame"]["PCK@0.2_first_frame"]
    assert report["truth_jitter_px"] < 1.0
