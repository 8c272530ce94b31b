import contextlib
import copy
import io
import json

import numpy as np
import pytest

from tfpose.metrics import coco_keypoint_eval, pck, pckh
from tfpose.skeleton import COCO17
from tests.conftest import shared_path


def _noisy_results(gt: dict, seed: int) -> list[dict]:
    rng = np.random.default_rng(seed)
    results = []
    for a in gt["annotations"]:
        if a.get("num_keypoints", 0) == 0 and rng.random() < 0.5:
            continue
        kp = np.array(a["keypoints"], float).reshape(-1, 3)
        x, y, w, h = a["bbox"]
        guess = np.where(kp[:, 2:] > 0, kp[:, :2], [x + w / 2, y + h / 2])
        guess = guess + rng.normal(0, 0.05 * max(w, h) * rng.uniform(0.2, 2), guess.shape)
        results.append({"image_id": a["image_id"], "category_id": 1, "score": float(rng.random()),
                        "keypoints": np.hstack([guess, np.ones((len(kp), 1))]).ravel().tolist()})
    for im in gt["images"][:3]:  # false positives
        results.append({"image_id": im["id"], "category_id": 1, "score": 0.9,
                        "keypoints": rng.uniform(0, 300, (17, 3)).ravel().tolist()})
    return results


@pytest.mark.parametrize("relative", ["data/mmpose-fixtures/coco/test_coco.json",
                                      "data/coco-mini-train/annotations/person_keypoints_train2017.json"])
@pytest.mark.parametrize("seed", [0, 1])
def test_oks_ap_equals_pycocotools(relative, seed):
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    path = shared_path(relative)
    gt = json.loads(path.read_text())
    results = _noisy_results(gt, seed)
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO(str(path))
        ev = COCOeval(coco, coco.loadRes(copy.deepcopy(results)), "keypoints")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    ours = coco_keypoint_eval(gt, results, COCO17.oks_sigmas)
    np.testing.assert_allclose(list(ours.values()), ev.stats, atol=1e-12)
    assert 0.05 < ours["AP"] < 0.95   # a non-trivial case


def test_perfect_predictions_score_one(synthetic_root):
    gt = json.loads((synthetic_root / "annotations/person_keypoints_val.json").read_text())
    results = [{"image_id": a["image_id"], "keypoints": a["keypoints"], "score": 1.0} for a in gt["annotations"]]
    assert coco_keypoint_eval(gt, results, COCO17.oks_sigmas)["AP"] == pytest.approx(1.0)


def test_pck_and_pckh_on_hand_made_points():
    truth = np.zeros((1, 3, 2))
    pred = np.array([[[1.0, 0.0], [0.0, 3.0], [9.0, 9.0]]])
    visible = np.array([[True, True, False]])
    overall, per_joint = pck(pred, truth, visible, np.array([[10.0, 10.0]]), 0.2)
    assert overall == 0.5 and per_joint[0] == 1 and per_joint[1] == 0 and np.isnan(per_joint[2])
    overall, _ = pckh(pred, truth, visible, np.array([4.0]), 0.5)
    assert overall == 0.5
