"""The person detector: NanoDet-m rebuilt in tf_keras equals its ONNX graph; the numpy letterbox, decoding and NMS;
box AP equal to pycocotools; int8 export through the pose models' export and metadata; whole-image prediction
and validation; bad detector files."""

import json

import cv2
import numpy as np
import pytest

from tests.conftest import run_without_tensorflow, shared_path
from tfpose.detection import DetectorCodec, Letterbox, box_iou, cell_centres, decode, letterbox, nms
from tfpose.errors import InputError

DETECTORS = ("models", "detectors")
COCO_MINI = ("data", "coco-mini-train")
ONNX_OUTPUTS = ["792", "814", "836", "795", "817", "839"]    # the 416 file's scores, then its bins, stride 8 first


def onnx_reference(onnx_path, square: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """NanoDet's own preprocessing and its ONNX graph, run by OpenCV's ONNX importer (no TensorFlow involved)."""
    net = cv2.dnn.readNetFromONNX(str(onnx_path))
    bgr = (square[:, :, ::-1].astype(np.float32) - [103.53, 116.28, 123.675]) / [57.375, 57.12, 58.395]
    net.setInput(bgr.transpose(2, 0, 1)[None].astype(np.float32))
    outs = net.forward(ONNX_OUTPUTS)
    return np.concatenate([o[0] for o in outs[:3]]), np.concatenate([o[0] for o in outs[3:]])


def test_nanodet_rebuilt_in_keras_computes_what_its_onnx_graph_computes():
    from tfpose.data.images import read_rgb
    from tfpose.models import build_model

    onnx_path = shared_path(*DETECTORS, "nanodet-m-416.onnx")
    photo = read_rgb(sorted(shared_path(*COCO_MINI, "train2017").iterdir())[1])
    square, _ = letterbox(photo, 416)
    model = build_model("nanodet_m", onnx=str(onnx_path), classes=list(range(80)))
    scores, distances = (t.numpy()[0] for t in model(square[None].astype(np.float32)))
    ref_scores, ref_distances = onnx_reference(onnx_path, square)
    assert scores.shape == (3549, 80) and distances.shape == (3549, 32)
    assert np.abs(scores - ref_scores).max() < 1e-4
    assert np.abs(distances - ref_distances).max() < 1e-3
    assert ref_scores[:, 0].max() > 0.5, "a photo of people: some cell is sure of a person"


def test_nanodet_import_refuses_an_onnx_file_of_another_network(tmp_path):
    from tfpose.models import build_model

    onnx_path = shared_path(*DETECTORS, "nanodet-m-416.onnx")
    with pytest.raises(InputError, match="nanodet-m-416.onnx.*not a NanoDet-m"):
        build_model("nanodet_m", onnx=str(onnx_path), width=64)
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"\x08\x07garbage")
    with pytest.raises(InputError, match="broken.onnx"):
        build_model("nanodet_m", onnx=str(broken))


def test_letterbox_centres_the_photo_and_maps_boxes_back():
    image = np.full((100, 200, 3), 255, np.uint8)
    square, box = letterbox(image, 64)
    assert square.shape == (64, 64, 3)
    assert (square[16:48] == 255).all() and (square[:16] == [124, 116, 104]).all()
    assert box.scale == (0.32, 0.32) and box.offset == (0.0, 16.0)
    back = box.to_image(np.array([[0.0, 16.0, 64.0, 32.0]]))
    np.testing.assert_allclose(back, [[0, 0, 200, 100]])


def test_decode_recovers_a_box_planted_in_the_outputs():
    codec = DetectorCodec(64)
    centres, strides = cell_centres(codec)
    assert len(centres) == codec.cells == 8 * 8 + 4 * 4 + 2 * 2
    scores = np.zeros((codec.cells, 1), np.float32)
    distances = np.full((codec.cells, 32), -20.0, np.float32)
    cell = 8 * 3 + 5                                    # stride 8, row 3, col 5: centre (44, 28)
    scores[cell] = 0.9
    for side, bins in enumerate((4, 3, 4, 4)):          # left, top, right, bottom in bins of 8 pixels
        distances[cell, side * 8 + bins] = 20.0
    scores[cell + 1] = 0.5                              # its neighbour: the same box 8 px on, IoU 0.78
    distances[cell + 1] = distances[cell]
    found = decode(scores, distances, codec, Letterbox((0.5, 0.5), (0.0, 0.0)), (256, 256), min_score=0.3)
    assert len(found) == 1, "NMS drops the shifted copy"
    np.testing.assert_allclose(found.boxes[0], [(44 - 32) * 2, (28 - 24) * 2, 64 * 2, 56 * 2], atol=1e-6)
    assert found.scores[0] == pytest.approx(0.9)
    assert len(decode(scores, distances, codec, Letterbox((0.5, 0.5), (0.0, 0.0)), (256, 256), 0.95)) == 0


def test_nms_keeps_the_best_of_each_overlapping_group():
    boxes = np.array([[0, 0, 10, 10], [1, 0, 10, 10], [50, 50, 10, 10], [0, 0, 10, 10.5]], np.float64)
    keep = nms(boxes, np.array([0.5, 0.9, 0.4, 0.3]), 0.6)
    assert keep.tolist() == [1, 2]


def test_box_ap_equals_pycocotools_on_real_annotations():
    import contextlib
    import io

    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    from tfpose.metrics import coco_box_eval

    path = shared_path(*COCO_MINI, "annotations", "person_keypoints_train2017.json")
    truth = json.loads(path.read_text())
    rng = np.random.default_rng(0)
    results = []
    for ann in truth["annotations"]:
        for _ in range(2):   # a close box and a loose one, a missed person now and then
            if rng.random() < 0.15:
                continue
            x, y, w, h = ann["bbox"]
            jitter = rng.normal(0, 0.15, 4) * [w, h, w, h]
            results.append({"image_id": ann["image_id"], "category_id": 1, "score": float(rng.random()),
                            "bbox": [x + jitter[0], y + jitter[1], max(1.0, w + jitter[2]), max(1.0, h + jitter[3])]})
    ours = coco_box_eval(truth, results)
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO(str(path))
        evaluation = COCOeval(coco, coco.loadRes(results), "bbox")
        evaluation.params.catIds = [1]
        evaluation.evaluate()
        evaluation.accumulate()
        evaluation.summarize()
    expected = dict(zip(["AP", "AP50", "AP75", "APs", "APm", "APl"], evaluation.stats[:6]))
    expected.update(dict(zip(["ARs", "ARm", "ARl"], evaluation.stats[9:12])), AR=evaluation.stats[8])
    for key, value in expected.items():
        assert ours[key] == pytest.approx(value, abs=1e-9), key
    assert 0.1 < ours["AP"] < 0.9, "neither trivially perfect nor empty"


@pytest.fixture(scope="module")
def tiny_detector(tmp_path_factory):
    """A small random NanoDet exported to int8 and float32 by the pose models' conversion and metadata code."""
    from tfpose.export import export_detector
    from tfpose.models import build_model, get_spec

    folder = tmp_path_factory.mktemp("detector")
    model = build_model("nanodet_m", input_size=(64, 64), **get_spec("nanodet_m").tiny)
    rng = np.random.default_rng(0)
    squares = rng.integers(0, 256, (8, 64, 64, 3)).astype(np.uint8)
    codec = DetectorCodec(64)
    paths = {q: export_detector(model, folder / f"det_{q}.tflite", codec, q, squares, squares[:2], {"source": "test"})
             for q in ("int8", "float32")}
    return {"model": model, "paths": paths, "squares": squares}


def test_detector_export_carries_its_codec_and_runs_on_the_device_runtime(tiny_detector):
    from tflite import metadata as tfl_metadata
    from tflite.detector import TFLiteDetector

    for quant, path in tiny_detector["paths"].items():
        meta = tfl_metadata.read(path)
        assert meta["format"] == "tfpose-detector" and meta["quantization"] == quant
        assert DetectorCodec.from_dict(meta["detector"]) == DetectorCodec(64)
        detector = TFLiteDetector(path)
        scores, distances = detector.raw(tiny_detector["squares"][0])
        ref_scores, ref_distances = (t.numpy()[0] for t in tiny_detector["model"](
            tiny_detector["squares"][:1].astype(np.float32)))
        tolerance = 1e-4 if quant == "float32" else 0.1
        assert np.abs(scores - ref_scores).max() < tolerance, quant
        assert np.abs(distances - ref_distances).max() < tolerance * 10 * max(1, np.abs(ref_distances).max()), quant
        assert detector.person == 0
        reference = np.load(path.with_suffix(".reference.npz"))
        assert reference["squares"].shape == (2, 64, 64, 3) and reference["scores"].shape == (2, 84, 1)


def test_a_pose_model_is_refused_as_a_detector(tiny_export):
    from tflite.detector import TFLiteDetector

    with pytest.raises(InputError, match="not a tfpose person detector"):
        TFLiteDetector(tiny_export["path"])


def test_predict_bad_detector_or_camera_is_an_error_with_exit_2(tiny_export, tmp_path, capsys):
    from tfpose.cli import main

    image = tmp_path / "photo.jpg"
    cv2.imwrite(str(image), np.zeros((48, 64, 3), np.uint8))
    model = str(tiny_export["path"])
    for args, named in (([str(image), "--detector", model], tiny_export["path"].name),
                        (["97", "--detector", "frame", "--max-frames", "2"], "97"),
                        ([str(image), "--detector", str(tmp_path / "none.tflite")], "none.tflite")):
        assert main(["predict", *args, "--model", model, "--out", str(tmp_path / "out")]) == 2, args
        err = capsys.readouterr().err
        assert err.startswith("error:") and named in err, err
    assert not (tmp_path / "out" / "keypoints.json").exists()


def test_a_photo_with_nobody_gives_an_empty_result(tiny_detector, tiny_export, tmp_path):
    from tfpose.cli import main

    image = tmp_path / "empty.jpg"
    cv2.imwrite(str(image), np.full((48, 64, 3), 90, np.uint8))
    out = tmp_path / "out"
    assert main(["predict", str(image), "--model", str(tiny_export["path"]), "--detector",
                 str(tiny_detector["paths"]["int8"]), "--det-min-score", "1.01", "--out", str(out)]) == 0
    assert json.loads((out / "keypoints.json").read_text())["frames"][0]["persons"] == []
    assert json.loads((out / "results.json").read_text()) == []


def test_crop_region_follows_the_hips_and_gives_up_without_a_torso():
    from tfpose.predict import crop_region
    from tfpose.skeleton import COCO17

    keypoints = np.zeros((17, 2))
    names = list(COCO17.keypoints)
    for name, xy in {"left_shoulder": (110, 100), "right_shoulder": (90, 100), "left_hip": (108, 160),
                     "right_hip": (92, 160), "left_ankle": (108, 260), "nose": (100, 80)}.items():
        keypoints[names.index(name)] = xy
    scores = np.zeros(17)
    scores[[names.index(n) for n in ("left_shoulder", "right_shoulder", "left_hip", "right_hip", "left_ankle",
                                     "nose")]] = 0.9
    x, y, w, h = crop_region(keypoints, scores, (640, 480))
    assert (x + w / 2, y + h / 2) == (100, 160) and w == h == pytest.approx(2 * max(1.9 * 60, 1.2 * 100))
    scores[[names.index("left_hip"), names.index("right_hip")]] = 0.0
    assert crop_region(keypoints, scores, (640, 480)) is None


@pytest.fixture(scope="module")
def shipped():
    from pathlib import Path

    assets = Path(__file__).resolve().parents[1] / "android_assets"
    if not (assets / "detector.tflite").is_file():
        pytest.fail("android_assets/detector.tflite is missing: `tfpose export-detector ... --android-assets`")
    return assets


def test_predict_without_tensorflow_finds_the_labelled_people_of_real_photos(shipped, tmp_path):
    """The shipped detector and pose model on 20 COCO photos, given no boxes: at least 80 % of the people with
    labelled joints get a box (IoU >= 0.5; 0.89 measured on 32 photos), and most boxes a skeleton (some are
    dogs or tiny far-away people)."""
    annotations = shared_path(*COCO_MINI, "annotations", "person_keypoints_train2017.json")
    photos = tmp_path / "photos"
    photos.mkdir()
    for photo in sorted(shared_path(*COCO_MINI, "train2017").iterdir())[:20]:
        (photos / photo.name).symlink_to(photo)
    run_without_tensorflow(tmp_path, f"""
        from tfpose.cli import main
        code = main(['predict', {str(photos)!r}, '--model', {str(shipped / 'model.tflite')!r},
                     '--out', {str(tmp_path / 'out')!r}, '--annotations', {str(annotations)!r}])
    """)
    truth = json.loads(annotations.read_text())
    result = json.loads((tmp_path / "out" / "keypoints.json").read_text())
    assert result["detector"] == "detector detector.tflite"
    ids = {im["file_name"]: im["id"] for im in truth["images"]}
    found = total = posed = 0
    for frame in result["frames"]:
        people = [a["bbox"] for a in truth["annotations"]
                  if a["image_id"] == ids[frame["name"]] and a.get("num_keypoints", 0) > 0 and not a["iscrowd"]]
        boxes = [p["box"] for p in frame["persons"]]
        total += len(people)
        if people and boxes:
            found += int((box_iou(np.array(people), np.array(boxes)).max(1) >= 0.5).sum())
        posed += sum((np.array(p["keypoints"])[:, 2] > 0.2).sum() >= 3 for p in frame["persons"])
    assert total >= 15 and found / total >= 0.8, (found, total)
    drawn = sum(len(f["persons"]) for f in result["frames"])
    assert posed >= 0.35 * drawn, f"{posed} of {drawn} boxes have 3 or more joints over 0.2 (0.43 measured)"

    results = json.loads((tmp_path / "out" / "results.json").read_text())
    assert {r["image_id"] for r in results} <= set(ids.values()) and len(results) == sum(
        len(f["persons"]) for f in result["frames"])
    assert len(list((tmp_path / "out" / "overlays").iterdir())) == 20


def test_video_detects_every_n_frames_and_follows_keypoints_between(shipped, tmp_path):
    from tfpose.cli import main

    video = shared_path("data", "mmpose-fixtures", "posetrack18-video", "000001_mpiinew_test.mp4")
    out = tmp_path / "video"
    assert main(["predict", str(video), "--model", str(shipped / "model.tflite"), "--out", str(out),
                 "--detect-every", "3", "--smooth", "one-euro", "--no-overlays"]) == 0
    result = json.loads((out / "keypoints.json").read_text())
    detected = [f["detected"] for f in result["frames"]]
    assert detected[0] and len(detected) == 5
    followed = [f for f in result["frames"] if not f["detected"]]
    assert followed, f"no frame followed the previous keypoints: {detected}"
    for f in followed:   # a followed frame keeps the ids of the frame before it
        before = result["frames"][f["frame"] - 1]
        assert {p["track_id"] for p in f["persons"]} <= {p["track_id"] for p in before["persons"]}


def test_validator_scores_whole_images_beside_multipose_and_validates_the_detector(shipped, tmp_path):
    from tflite.validate import main

    fixture = shared_path("data", "mmpose-fixtures", "coco")
    multipose = shared_path("models", "movenet-peers", "movenet-multipose-lightning_fp32.tflite")
    out = tmp_path / "report"
    assert main([str(shipped / "model.tflite"), "--peer", str(multipose), "--detector",
                 str(shipped / "detector.tflite"), "--annotations", str(fixture / "test_coco.json"),
                 "--images", str(fixture), "--runs", "0", "--overlays", "0", "--out", str(out)]) == 0
    report = json.loads((out / "report.json").read_text())
    whole = report["whole_image"]["models"]
    assert list(whole) == ["detector + model", "movenet-multipose-lightning_fp32"]
    for entry in whole.values():
        assert 0 <= entry["AP"] <= 1 and entry["ms_per_image"] > 0
    assert whole["detector + model"]["AP"] > 0.3, "the shipped pair finds and poses the fixture's people"
    assert "Whole images" in (out / "report.md").read_text()
    assert main([str(shipped / "detector.tflite"), "--annotations", str(fixture / "test_coco.json"),
                 "--images", str(fixture), "--runs", "0", "--out", str(tmp_path / "det")]) == 0
    detection = json.loads((tmp_path / "det" / "report.json").read_text())["detection"]
    assert detection["AP50"] > 0.5 and detection["recall"] > 0.5


def test_a_detector_is_refused_where_a_pose_model_belongs():
    from tfpose.config import load_config

    with pytest.raises(InputError, match="distill.student.name.*person detector"):
        load_config(None, ["distill.student.name=nanodet_m"])
