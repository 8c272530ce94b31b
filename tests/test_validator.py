"""The on-device validator end to end: every mode with TensorFlow (and matplotlib) blocked, AP equal to
pycocotools, MPII PCKh, detected boxes, peers (MoveNet), and clear errors for bad input."""

import contextlib
import copy
import io
import json

import numpy as np
import pytest

from tflite import metadata as tfl_metadata
from tflite.adapters import MoveNetAdapter, load_adapter
from tflite.validate import main
from tfpose.data.coco import Person
from tfpose.data.mpii import load_mpii, mpii_box
from tfpose.evaluation import Predictions, detection_results, load_eval_set, predict_keypoints, score_pckh
from tfpose.metrics import mpii_pckh, oks_nms
from tfpose.skeleton import COCO17, MPII16
from tests.conftest import run_without_tensorflow, shared_path


@pytest.fixture(scope="module")
def fixtures():
    return {"coco": shared_path("data/mmpose-fixtures/coco"), "mpii": shared_path("data/mmpose-fixtures/mpii"),
            "lightning": shared_path("models/movenet-peers/movenet-lightning_fp32.tflite")}


@pytest.fixture(scope="module")
def blocked_runs(tiny_export, fixtures, tmp_path_factory):
    """The validator CLI in every mode, in a process tree where tensorflow and matplotlib cannot be imported."""
    tmp = tmp_path_factory.mktemp("blocked")
    coco, mpii, model, peer = fixtures["coco"], fixtures["mpii"], str(tiny_export["path"]), str(fixtures["lightning"])
    runs = {
        "gt": [model, peer, "--annotations", f"{coco}/test_coco.json", "--images", str(coco), "--threads", "1", "2",
               "--xnnpack", "on", "off", "--runs", "3", "--warmup", "1"],
        "det": [model, peer, "--annotations", f"{coco}/test_coco.json", "--images", str(coco), "--detections",
                f"{coco}/test_coco_det_AP_H_56.json", "--oks-nms", "0.9", "--threads", "1", "--runs", "2"],
        "mpii": [model, peer, "--annotations", f"{mpii}/test_mpii.json", "--images", str(mpii), "--threads", "1",
                 "--runs", "2"],
    }
    run = run_without_tensorflow(tmp, f"""
        from tflite.validate import main
        code = max(main(args + ['--out', out]) for out, args in {[(str(tmp / k), v) for k, v in runs.items()]!r})
    """, timeout=600)
    return {k: json.loads((tmp / k / "report.json").read_text()) for k in runs} | {"dir": tmp, "stdout": run.stdout}


def test_gt_boxes_accuracy_parity_speed_and_peer_without_tensorflow(blocked_runs):
    report = blocked_runs["gt"]
    assert report["runtime"].startswith("ai_edge_litert") and report["family"] == "tfpose-heatmap"
    assert report["accuracy"]["persons"] == 12 and 0 <= report["accuracy"]["AP"] <= 1
    assert report["parity"]["crops"] == 8 and report["parity"]["joints_within_1_cell"] > 0.8
    assert set(report["parity"]["joints_within_1_cell_per_joint"]) == set(COCO17.keypoints)
    settings = [(t["threads"], t["xnnpack"]) for t in report["latency"]]
    assert settings == [(1, True), (2, True), (1, False), (2, False)]
    assert all(0 < t["median_ms"] <= t["p90_ms"] <= t["p99_ms"] for t in report["latency"])
    assert report["latency"][0]["delegate"].startswith("XNNPACK (")
    assert report["latency"][2]["delegate"] == "builtin kernels (XNNPACK off)"
    assert all(t["isolated"] and 0 < t["model_rss_mb"] < 200 for t in report["latency"])
    movenet = report["peers"][0]
    assert movenet["family"] == "movenet" and movenet["input"]["dtype"] == "int32"
    assert movenet["accuracy"]["persons"] == 12 and movenet["accuracy"]["AP"] > 0.4      # a real model on real photos
    rows = {r["model"]: r for r in report["comparison"]}
    assert set(rows) == {"tiny_int8", "movenet-lightning_fp32"} and set(rows["tiny_int8"]["ms"]) == {"1", "2"}
    assert rows["movenet-lightning_fp32"]["size_mib"] > 50 * rows["tiny_int8"]["size_mib"]
    assert "| movenet-lightning_fp32 | int32 |" in blocked_runs["stdout"]   # the side-by-side table is printed
    out = blocked_runs["dir"] / "gt"
    assert (out / "best.png").stat().st_size > 0 and (out / "movenet-lightning_fp32_worst.png").stat().st_size > 0
    assert not (out / "accuracy_vs_latency.png").exists() and "matplotlib is not installed" in report["notes"][0]


def test_detection_file_mode_without_tensorflow(blocked_runs):
    a = blocked_runs["det"]["accuracy"]
    assert blocked_runs["det"]["dataset"]["boxes"] == "detections"
    assert a["detections"] == 118 and a["oks_nms"] == 0.9 and a["scored"] < a["detections"]
    assert blocked_runs["det"]["peers"][0]["accuracy"]["AP"] > 0.4


def test_mpii_pckh_mode_without_tensorflow(blocked_runs):
    for entry in (blocked_runs["mpii"], blocked_runs["mpii"]["peers"][0]):
        a = entry["accuracy"]
        assert a["persons"] == 5 and a["head_size"] == ["head segment"]
        # a COCO-17 model is scored on the 12 limb joints it shares with MPII
        assert len(a["joints_scored"]) == 12 and a["PCKh_per_joint"]["head_top"] is None
    assert blocked_runs["mpii"]["peers"][0]["accuracy"]["PCKh@0.5"] > 0.8


@pytest.mark.parametrize("mode", ["gt", "det"])
def test_reported_ap_equals_pycocotools_on_the_same_predictions(blocked_runs, fixtures, mode):
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    for entry in (blocked_runs[mode], *blocked_runs[mode]["peers"]):
        results = json.loads((blocked_runs["dir"] / mode / f"{entry['model']}.results.json").read_text())
        with contextlib.redirect_stdout(io.StringIO()):
            gt = COCO(str(fixtures["coco"] / "test_coco.json"))
            ev = COCOeval(gt, gt.loadRes(copy.deepcopy(results)), "keypoints")
            ev.evaluate()
            ev.accumulate()
            ev.summarize()
        ours = [entry["accuracy"][k] for k in ("AP", "AP50", "AP75", "APm", "APl", "AR", "AR50", "AR75", "ARm", "ARl")]
        np.testing.assert_allclose(ours, ev.stats, atol=1e-12)


def test_plot_is_drawn_where_matplotlib_exists(tiny_export, fixtures, tmp_path):
    mpii = fixtures["mpii"]
    args = [str(tiny_export["path"]), str(fixtures["lightning"]), "--annotations", str(mpii / "test_mpii.json"),
            "--images", str(mpii), "--threads", "1", "--runs", "2", "--warmup", "0", "--in-process",
            "--out", str(tmp_path)]
    assert main(args) == 0
    assert (tmp_path / "accuracy_vs_latency.png").stat().st_size > 5000
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["notes"] == [] and report["latency"][0]["isolated"] is False


# -- MPII --------------------------------------------------------------------------------------------------------
def test_mpii_reader_follows_mmpose_conventions(fixtures):
    data = load_mpii(fixtures["mpii"] / "test_mpii.json", fixtures["mpii"])
    raw = json.loads((fixtures["mpii"] / "test_mpii.json").read_text())[0]
    p = data.persons[0]
    side = raw["scale"] * 200
    x, y, w, h = p.box
    assert w == h == pytest.approx(side)
    assert (x + w / 2, y + h / 2) == pytest.approx((raw["center"][0] - 1, raw["center"][1] + 15 * raw["scale"] - 1))
    np.testing.assert_allclose(p.keypoints, np.array(raw["joints"]) - 1)
    head = np.linalg.norm(np.subtract(raw["joints"][9], raw["joints"][8]))
    assert data.head_sizes[0] == pytest.approx(head) and data.head_size_source[0] == "head segment"
    assert mpii_box(raw["center"], raw["scale"]) == p.box


def test_mpii_head_box_gives_point_six_of_its_diagonal(fixtures, tmp_path):
    raw = json.loads((fixtures["mpii"] / "test_mpii.json").read_text())[:1]
    raw[0]["headbox"] = [100, 100, 130, 140]   # a 30 x 40 box: diagonal 50
    (tmp_path / "mpii.json").write_text(json.dumps(raw))
    data = load_mpii(tmp_path / "mpii.json", fixtures["mpii"])
    assert data.head_sizes[0] == pytest.approx(30.0) and data.head_size_source == ["head box"]


def test_mpii_pckh_on_hand_made_errors():
    truth = np.zeros((2, 16, 2))
    pred = truth.copy()
    pred[0, :, 0] = 5.0          # person 0: every joint off by exactly 0.5 head sizes (inclusive: correct)
    pred[1, :, 0] = 6.0          # person 1: off by 0.6 (wrong) ...
    pred[1, 9, 0] = 1.0          # ... but the head top, off by 0.1 (correct, also at PCKh@0.1)
    visible = np.ones((2, 16), bool)
    visible[1, 0] = False         # an unlabelled ankle is not counted
    res = mpii_pckh(pred, truth, visible, np.array([10.0, 10.0]))
    # pelvis (6) and thorax (7) are not scored: 14 joints for person 0, 13 for person 1
    assert res["PCKh"] == pytest.approx((14 + 1) / 27)
    assert res["PCKh@0.1"] == pytest.approx(1 / 27)
    assert res["per_joint"][9] == 1.0 and res["per_joint"][0] == 1.0 and res["per_joint"][1] == 0.5
    assert res["groups"]["head"] == 1.0 and res["groups"]["ankle"] == pytest.approx(0.75)
    assert list(res["hits"]) == [14, 1] and list(res["counts"]) == [14, 13]


def test_pckh_of_the_ground_truth_is_one_on_shared_joints(fixtures):
    data = load_mpii(fixtures["mpii"] / "test_mpii.json", fixtures["mpii"])
    truth = np.stack([p.keypoints for p in data.persons])
    perfect = Predictions(data.persons, truth, np.ones(truth.shape[:2]), np.zeros((5, 1, 1, 3), np.uint8))
    assert score_pckh(perfect, data, MPII16)["PCKh@0.5"] == 1.0
    as_coco = np.zeros((5, 17, 2))
    for j, name in enumerate(MPII16.keypoints):
        if name in COCO17.keypoints:
            as_coco[:, COCO17.keypoints.index(name)] = truth[:, j]
    result = score_pckh(Predictions(data.persons, as_coco, np.ones((5, 17)), perfect.crops), data, COCO17)
    assert result["PCKh@0.5"] == 1.0 and len(result["joints_scored"]) == 12


# -- detections, NMS, split ----------------------------------------------------------------------------------------
def test_oks_nms_drops_the_weaker_duplicate_only():
    pose = np.random.default_rng(0).uniform(0, 100, (17, 2))
    keypoints = np.stack([pose, pose + 0.5, pose + 60])
    keep = oks_nms(keypoints, np.array([0.5, 0.9, 0.4]), np.full(3, 100.0**2), COCO17.oks_sigmas, 0.9)
    assert sorted(keep) == [1, 2]


def test_detection_score_is_box_score_times_mean_keypoint_score():
    persons = [Person(1, -1, None, (0, 0, 10, 10), np.zeros((17, 2)), np.zeros(17, int), 100.0)]
    preds = Predictions(persons, np.zeros((1, 17, 2)), np.full((1, 17), 0.5), np.zeros((1, 1, 1, 3), np.uint8),
                        box_scores=np.array([0.8]))
    assert detection_results(preds, COCO17)[0]["score"] == pytest.approx(0.4)


def test_split_scores_the_persons_of_coco_dataset_split():
    from tfpose.data.coco import load_coco

    root = shared_path("data/coco-mini-train")
    ann, images = root / "annotations/person_keypoints_train2017.json", root / "train2017"
    eval_set = load_eval_set(ann, images, split="val", val_fraction=0.3, split_seed=0)
    _, val = load_coco(ann, images).split(0.3, 0)
    assert [p.ann_id for p in eval_set.persons] == [p.ann_id for p in val.labelled()]
    assert len(val.images) == 24


class _FakeMoveNet:
    """MoveNet's I/O without its weights: every crop gets the crop centre (joint 0) and the top-left edge (joint 1)."""
    input_size = (192, 192)

    def __call__(self, crops):
        out = np.zeros((len(crops), 1, 17, 3), np.float32)
        out[:, 0, 0, :2] = 0.5
        return out


def test_movenet_keypoints_map_back_to_image_pixels(fixtures):
    assert isinstance(load_adapter(fixtures["lightning"]), MoveNetAdapter)
    adapter = MoveNetAdapter(_FakeMoveNet(), COCO17, 1.25)
    person = Person(1, 1, fixtures["coco"] / "000000000785.jpg", (100.0, 50.0, 80.0, 160.0), np.zeros((17, 2)),
                    np.zeros(17, int), 1.0)
    preds = predict_keypoints(adapter.predict, [person], adapter.input_size, adapter.padding)
    half = 160 * 1.25 / 2   # the square crop around a tall box takes its padded height
    np.testing.assert_allclose(preds.keypoints[0, 0], (140.0, 130.0), atol=1e-3)                # the box centre
    np.testing.assert_allclose(preds.keypoints[0, 1], (140.0 - half, 130.0 - half), atol=1e-3)  # the crop's corner


# -- bad input ---------------------------------------------------------------------------------------------------
def _fails(args, capsys, *messages) -> None:
    assert main([str(a) for a in args] + ["--runs", "0"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and all(m in err for m in messages), err


def test_bad_models_fail_clearly(tiny_export, fixtures, tmp_path, capsys):
    not_tflite = tmp_path / "notes.tflite"
    not_tflite.write_text("hello")
    _fails([not_tflite], capsys, "notes.tflite", "not a TFLite model")
    truncated = tmp_path / "truncated.tflite"
    truncated.write_bytes(tiny_export["path"].read_bytes()[:3000])
    _fails([truncated], capsys, "truncated.tflite")
    data = tiny_export["path"].read_bytes()
    meta = tfl_metadata.read(tiny_export["path"])
    meta["codec"] = {**meta["codec"], "input_size": [32, 32], "heatmap_size": [8, 8]}
    misfit = tmp_path / "misfit.tflite"
    misfit.write_bytes(tfl_metadata.attach(tfl_metadata.strip(data), meta))
    _fails([misfit], capsys, "misfit.tflite", "model input (64, 64) differs from the metadata's (32, 32)")
    anonymous = tmp_path / "anonymous.tflite"
    anonymous.write_bytes(tfl_metadata.strip(data))   # a heatmap model without metadata: no adapter knows it
    _fails([anonymous], capsys, "no adapter", "[1, 16, 16, 17]")
    _fails([tiny_export["path"], tmp_path / "missing.tflite"], capsys, "missing.tflite", "not found")
    (tmp_path / "bad.npz").write_bytes(b"PK\x03\x04 not really a zip")
    _fails([tiny_export["path"], "--reference", tmp_path / "bad.npz"], capsys, "bad.npz", "not a readable .npz")


def test_empty_or_mismatched_data_fails_clearly(tiny_export, fixtures, tmp_path, capsys):
    coco = fixtures["coco"]
    gt = json.loads((coco / "test_coco.json").read_text())
    gt["annotations"] = [{**a, "keypoints": [0] * 51, "num_keypoints": 0} for a in gt["annotations"]]
    (tmp_path / "unlabelled.json").write_text(json.dumps(gt))
    (tmp_path / "empty_mpii.json").write_text("[]")
    (tmp_path / "no_dets.json").write_text("[]")
    (tmp_path / "stray_dets.json").write_text(json.dumps([{"image_id": 7, "bbox": [0, 0, 9, 9], "score": 1}]))
    model = tiny_export["path"]
    _fails([model, "--annotations", tmp_path / "unlabelled.json", "--images", coco], capsys, "empty dataset")
    _fails([model, "--annotations", tmp_path / "empty_mpii.json", "--images", coco], capsys, "empty dataset")
    _fails([model, "--annotations", coco / "test_coco.json", "--images", coco, "--detections",
            tmp_path / "no_dets.json"], capsys, "no_dets.json", "empty dataset")
    _fails([model, "--annotations", coco / "test_coco.json", "--images", coco, "--detections",
            tmp_path / "stray_dets.json"], capsys, "stray_dets.json", "field '[0].image_id'", "image id 7")
    # a box under the score threshold on an unknown image still says the file is for other images
    _fails([model, "--annotations", coco / "test_coco.json", "--images", coco, "--detections",
            tmp_path / "stray_dets.json", "--det-min-score", "2"], capsys, "field '[0].image_id'", "image id 7")
    _fails([model, "--annotations", coco / "test_coco.json"], capsys, "--images is required")


def test_an_extra_set_scores_every_model_with_paired_gaps_and_its_own_results(tiny_export, fixtures, tmp_path):
    import shutil

    model = tiny_export["path"]
    peer = shutil.copy(model, tmp_path / "same_model.tflite")      # the same weights under another name
    root = tiny_export["root"]
    out = tmp_path / "out"
    code = main([str(model), str(peer), "--annotations", str(fixtures["coco"] / "test_coco.json"),
                 "--images", str(fixtures["coco"]), "--extra-set", "synthetic",
                 str(root / "annotations/person_keypoints_val.json"), str(root / "images/val"),
                 "--threads", "1", "--runs", "0", "--overlays", "1", "--out", str(out)])
    assert code == 0
    report = json.loads((out / "report.json").read_text())
    assert set(report["sets"]) == {"main", "synthetic"}
    extra = report["sets"]["synthetic"]
    persons = len(load_eval_set(root / "annotations/person_keypoints_val.json", root / "images/val").persons)
    assert extra["dataset"]["crops"] == persons and persons != report["accuracy"]["persons"]
    rows = extra["comparison"]
    assert [r["model"] for r in rows] == [model.stem, "same_model"]
    assert rows[0]["AP"] == rows[1]["AP"] and 0 <= rows[0]["AP"] <= 1 and "mean_OKS" in rows[0]
    for set_name in ("main", "synthetic"):
        gaps = report["sets"][set_name]["gaps"]["same_model"]
        for name in ("AP", "mean_OKS", "PCK@0.2"):
            assert gaps[name] == {"gap": 0.0, "ci95": [0.0, 0.0]}, (set_name, name)
    # the main set's rows are the report's own; the extra set's its own scores
    assert report["sets"]["main"]["comparison"] == report["comparison"]
    results = [json.loads((out / "synthetic" / f"{m}.results.json").read_text()) for m in (model.stem, "same_model")]
    assert len(results[0]) == persons and results[0] == results[1]
    assert {r["image_id"] for r in results[0]} <= {p.image_id for p in load_eval_set(
        root / "annotations/person_keypoints_val.json", root / "images/val").persons}
    assert not (out / "synthetic/report.json").exists()             # one report, at the top
    markdown = (out / "report.md").read_text()
    assert "## Side by side on synthetic" in markdown and "Paired gaps on synthetic" in markdown
    assert "| same_model | +0.000 [+0.000, +0.000] |" in markdown
