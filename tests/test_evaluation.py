"""Paired comparisons of two models on the same persons: gaps with paired bootstrap intervals."""

import numpy as np
import pytest

from tfpose.data.coco import load_coco
from tfpose.evaluation import Predictions, paired_gaps, score_predictions
from tfpose.skeleton import COCO17


@pytest.fixture(scope="module")
def val(synthetic_root):
    return load_coco(synthetic_root / "annotations/person_keypoints_val.json", synthetic_root / "images/val")


def _scored(dataset, persons, shift: float, seed: int):
    """score_predictions and results of keypoints at the truth plus ``shift`` x the box size, plus 1 px of noise."""
    rng = np.random.default_rng(seed)
    truth = np.stack([p.keypoints for p in persons])
    sizes = np.array([p.box[2:] for p in persons])[:, None, :]
    keypoints = truth + shift * sizes + rng.normal(0, 1.0, truth.shape)
    preds = Predictions(persons, keypoints.astype(np.float32), np.ones(truth.shape[:2], np.float32),
                        np.zeros((len(persons), 1, 1, 3), np.uint8))
    return score_predictions(preds, dataset, COCO17), preds.coco_results()


def test_per_person_pck_hits_pool_to_the_reported_pck(val):
    metrics, _ = _scored(val, val.labelled(), 0.12, 0)
    hits, labelled = np.array(metrics["per_person_pck_hits"]), np.array(metrics["per_person_labelled"])
    assert len(hits) == len(val.labelled()) and (hits <= labelled).all()
    np.testing.assert_array_equal(labelled, [p.num_labelled for p in val.labelled()])
    assert 0 < metrics["PCK@0.2"] < 1
    assert hits.sum() / labelled.sum() == pytest.approx(metrics["PCK@0.2"])


def test_identical_models_differ_by_exactly_nothing(val):
    a, results = _scored(val, val.labelled(), 0.0, 0)
    gaps = paired_gaps(val, a, a, results, results, samples=100)
    assert set(gaps) == {"AP", "mean_OKS", "PCK@0.2"}
    for g in gaps.values():
        assert g == {"gap": 0.0, "ci95": [0.0, 0.0]}


def test_a_worse_model_has_a_negative_gap_whose_interval_excludes_zero(val):
    good, good_results = _scored(val, val.labelled(), 0.0, 0)
    worse, worse_results = _scored(val, val.labelled(), 0.3, 1)
    assert worse["mean_OKS"] < good["mean_OKS"]
    gaps = paired_gaps(val, worse, good, worse_results, good_results, samples=200)
    for name, g in gaps.items():
        assert g["gap"] == pytest.approx(worse[name] - good[name]), name
        assert g["ci95"][0] <= g["gap"] <= g["ci95"][1] < 0, name
    # and the other way round, the same gaps with the sign turned
    back = paired_gaps(val, good, worse, good_results, worse_results, samples=200)
    assert back["mean_OKS"]["gap"] == pytest.approx(-gaps["mean_OKS"]["gap"]) and back["mean_OKS"]["ci95"][0] > 0


def test_models_scored_on_other_persons_cannot_be_paired(val):
    persons = val.labelled()
    a, results_a = _scored(val, persons, 0.0, 0)
    b, results_b = _scored(val, persons[:-1], 0.0, 0)
    with pytest.raises(ValueError, match="same persons"):
        paired_gaps(val, a, b, results_a, results_b)
