"""``tfpose predict`` on real frames and a real mp4 (PoseTrack18 fixture): JSON shape, keypoints inside the frames,
overlays written; boxes from a detection file; clear errors (exit 2) for bad input; the .tflite path without
TensorFlow."""

import json

import cv2
import numpy as np
import pytest

from tests.conftest import run_without_tensorflow, shared_path
from tfpose.cli import main
from tfpose.predict import Tracker, box_iou

FRAMES = 5
POSETRACK = ("data", "mmpose-fixtures", "posetrack18-video")


@pytest.fixture(scope="module")
def posetrack():
    folder = shared_path(*POSETRACK)
    return {"folder": folder, "video": folder / "000001_mpiinew_test.mp4"}


@pytest.fixture(scope="module")
def tiny_keras(tiny_export, tmp_path_factory):
    path = tmp_path_factory.mktemp("keras") / "tiny.keras"
    tiny_export["model"].save(path)
    return path


def check_keypoints_json(result: dict, frames: int, size: tuple[int, int]):
    """frames entries, each person a box and keypoints (17, 3) inside the (W, H) frame with scores."""
    assert len(result["frames"]) == frames
    assert [f["frame"] for f in result["frames"]] == list(range(frames))
    assert len(result["keypoint_names"]) == 17
    for f in result["frames"]:
        assert (f["width"], f["height"]) == size
        assert f["persons"], "every frame has at least one person box"
        for p in f["persons"]:
            kp = np.array(p["keypoints"])
            assert kp.shape == (17, 3)
            assert (kp[:, 0] >= 0).all() and (kp[:, 0] <= size[0] - 1).all()
            assert (kp[:, 1] >= 0).all() and (kp[:, 1] <= size[1] - 1).all()
            assert np.isfinite(kp[:, 2]).all()
            assert len(p["box"]) == 4


def test_predict_video_writes_overlay_mp4_and_keypoints_json(posetrack, tiny_export, tmp_path):
    out = tmp_path / "video"
    code = main(["predict", str(posetrack["video"]), "--model", str(tiny_export["path"]), "--out", str(out),
                 "--smooth", "one-euro", "--detector", "frame"])
    assert code == 0
    result = json.loads((out / "keypoints.json").read_text())
    check_keypoints_json(result, FRAMES, (1280, 720))
    assert result["kind"] == "video" and result["smoothing"] == "one-euro"
    # the same whole-frame box every frame is one track
    assert {p["track_id"] for f in result["frames"] for p in f["persons"]} == {0}
    video = cv2.VideoCapture(str(out / "000001_mpiinew_test_overlay.mp4"))
    assert video.get(cv2.CAP_PROP_FRAME_COUNT) == FRAMES
    assert (video.get(cv2.CAP_PROP_FRAME_WIDTH), video.get(cv2.CAP_PROP_FRAME_HEIGHT)) == (1280, 720)
    video.release()
    assert not [p for p in out.iterdir() if p.name.startswith(".")], "no temporary files left behind"


def test_predict_frame_folder_with_keras_model_writes_one_overlay_per_frame(posetrack, tiny_keras, tmp_path):
    out = tmp_path / "frames"
    assert main(["predict", str(posetrack["folder"]), "--model", str(tiny_keras), "--out", str(out),
                 "--detector", "frame"]) == 0
    result = json.loads((out / "keypoints.json").read_text())
    check_keypoints_json(result, FRAMES, (1280, 720))
    assert [f["name"] for f in result["frames"]] == [f"{i:06d}.jpg" for i in range(FRAMES)]
    overlays = sorted(p.name for p in (out / "overlays").iterdir())
    assert overlays == [f"{i:06d}.jpg" for i in range(FRAMES)]
    assert cv2.imread(str(out / "overlays" / "000000.jpg")).shape == (720, 1280, 3)


def test_predict_takes_person_boxes_from_a_detection_file(posetrack, tiny_export, tmp_path):
    boxes = {i: [[300.0 + 10 * i, 100.0, 200.0, 500.0], [800.0, 150.0, 180.0, 450.0]] for i in range(FRAMES)}
    dets = [{"image_id": i, "category_id": 1, "bbox": b, "score": 0.9} for i, bs in boxes.items() for b in bs]
    dets.append({"image_id": 0, "category_id": 1, "bbox": [0, 0, 50, 50], "score": 0.1})   # under --det-min-score
    det_file = tmp_path / "dets.json"
    det_file.write_text(json.dumps(dets))
    out = tmp_path / "det"
    assert main(["predict", str(posetrack["video"]), "--model", str(tiny_export["path"]), "--out", str(out),
                 "--detections", str(det_file), "--det-min-score", "0.5"]) == 0
    result = json.loads((out / "keypoints.json").read_text())
    assert result["detector"] == "file"
    for f in result["frames"]:
        assert [p["box"] for p in f["persons"]] == boxes[f["frame"]]
        for p in f["persons"]:
            x, y, w, h = p["box"]
            kp = np.array(p["keypoints"])
            # a padded crop reaches 12.5 % beyond the box on each side, then widens to the model's aspect
            assert (kp[:, 1] >= y - 0.2 * h).all() and (kp[:, 1] <= y + 1.2 * h).all()
    # two boxes moving a little: two stable tracks
    assert {p["track_id"] for f in result["frames"] for p in f["persons"]} == {0, 1}


def test_predict_bad_input_is_a_clear_error_with_exit_2(tiny_export, tmp_path, capsys):
    corrupt = tmp_path / "corrupt"
    corrupt.mkdir()
    (corrupt / "000000.jpg").write_bytes(b"not a jpeg")
    bad_video = tmp_path / "broken.mp4"
    bad_video.write_bytes(b"\x00" * 64)
    wrong_model = tmp_path / "model.txt"
    wrong_model.write_text("hello")
    not_tflite = tmp_path / "fake.tflite"
    not_tflite.write_bytes(b"0123456789")
    model = str(tiny_export["path"])
    cases = [(["missing.mp4", "--model", model], "missing.mp4"),
             ([str(corrupt), "--model", model], "000000.jpg"),
             ([str(bad_video), "--model", model], "broken.mp4"),
             ([str(corrupt / "000000.jpg"), "--model", str(wrong_model)], "model.txt"),
             ([str(corrupt / "000000.jpg"), "--model", str(not_tflite)], "fake.tflite"),
             ([str(corrupt / "000000.jpg"), "--model", str(tmp_path / "none.keras")], "none.keras")]
    for args, named in cases:
        assert main(["predict", *args, "--out", str(tmp_path / "out"), "--detector", "frame"]) == 2, args
        err = capsys.readouterr().err
        assert named in err and err.strip().splitlines()[-1].startswith("error:"), err
    assert not (tmp_path / "out" / "keypoints.json").exists()


def test_predict_with_tflite_runs_without_tensorflow(posetrack, tiny_export, tmp_path):
    run_without_tensorflow(tmp_path, f"""
        from tfpose.cli import main
        code = main(['predict', {str(posetrack['folder'])!r}, '--model', {str(tiny_export['path'])!r},
                     '--out', {str(tmp_path / 'out')!r}, '--smooth', 'one-euro', '--no-overlays'])
    """)
    check_keypoints_json(json.loads((tmp_path / "out/keypoints.json").read_text()), FRAMES, (1280, 720))


def test_tracker_links_overlapping_boxes_and_starts_new_tracks():
    tracker = Tracker("none", 30.0)
    assert tracker.assign([[0, 0, 10, 10], [50, 50, 10, 10]]) == [0, 1]
    assert tracker.assign([[51, 50, 10, 10], [1, 0, 10, 10], [200, 200, 5, 5]]) == [1, 0, 2]
    assert box_iou([0, 0, 10, 10], [5, 0, 10, 10]) == pytest.approx(50 / 150)


def test_box_source_choice_file_beats_detector_and_frame_is_the_whole_frame(tmp_path, tiny_export):
    import tfpose.predict as predict_module
    from tfpose.errors import InputError

    source, name = predict_module.make_box_source(None, "frame", tiny_export["path"], 0.0)
    assert name == "frame" and source(0, "a.jpg", np.zeros((30, 40, 3), np.uint8)) == [([0.0, 0.0, 40.0, 30.0], 1.0)]
    det_file = tmp_path / "d.json"
    det_file.write_text(json.dumps([{"file_name": "a.jpg", "bbox": [1, 2, 3, 4], "score": 0.5}]))
    source, name = predict_module.make_box_source(det_file, "frame", tiny_export["path"], 0.0)
    assert name == "file" and source(7, "a.jpg", None) == [([1.0, 2.0, 3.0, 4.0], 0.5)]
    lonely = tmp_path / "lonely" / "model.tflite"
    lonely.parent.mkdir()
    lonely.write_bytes(tiny_export["path"].read_bytes())
    assert predict_module.default_detector(lonely) == predict_module.REPOSITORY_ASSETS / "detector.tflite"
    original = predict_module.REPOSITORY_ASSETS
    try:
        predict_module.REPOSITORY_ASSETS = tmp_path / "nowhere"
        with pytest.raises(InputError, match="--detector FILE"):
            predict_module.default_detector(lonely)
    finally:
        predict_module.REPOSITORY_ASSETS = original


def test_a_corrupt_video_frame_is_skipped_with_a_warning_that_names_it(tiny_export, tmp_path, capsys):
    writer = cv2.VideoWriter(str(tmp_path / "clip.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 10, (64, 48))
    for i in range(6):
        writer.write(np.full((48, 64, 3), 40 * i, np.uint8))
    writer.release()
    data = bytearray((tmp_path / "clip.avi").read_bytes())
    starts = [i for i in range(len(data) - 1) if data[i] == 0xFF and data[i + 1] == 0xD8]   # one JPEG per frame
    data[starts[2]:starts[2] + 200] = bytes(200)
    (tmp_path / "bad.avi").write_bytes(bytes(data))
    out = tmp_path / "out"
    assert main(["predict", str(tmp_path / "bad.avi"), "--model", str(tiny_export["path"]), "--out", str(out),
                 "--detector", "frame", "--no-overlays"]) == 0
    assert "warning: bad.avi#2" in capsys.readouterr().err
    result = json.loads((out / "keypoints.json").read_text())
    assert [f["frame"] for f in result["frames"]] == [0, 1, 3, 4, 5]
    assert result["skipped_frames"] == ["bad.avi#2"]
