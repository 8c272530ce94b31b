"""Each distillation loss term on small hand-made arrays with known values."""

import math

import numpy as np
import pytest

from tfpose.distill.losses import (alpha_kd, binarize, dskd_terms, feature_hint, kd_weight, keypoint_mse, okdhp_ramp,
                                   spatial_kl, spatial_softmax_ce)


def _one_joint(values):
    """(1, 2, 2, 1) heatmap from four cell values in row order."""
    return np.asarray(values, np.float32).reshape(1, 2, 2, 1)


def test_binarize_zeroes_values_under_the_threshold_and_keeps_the_rest():
    out = np.asarray(binarize(np.array([0.05, 0.1, 0.2, 0.9], np.float32), 0.1))
    np.testing.assert_array_equal(out, np.array([0.0, 0.1, 0.2, 0.9], np.float32))


def test_spatial_ce_of_a_flat_prediction_is_log_of_the_number_of_cells():
    ce = spatial_softmax_ce(_one_joint([0, 0, 0, 0]), _one_joint([0, 1, 0.2, 0]), temperature=0.1)
    assert float(ce) == pytest.approx(math.log(4), rel=1e-6)


def test_spatial_ce_is_minus_log_softmax_at_the_target_peak():
    ce = spatial_softmax_ce(_one_joint([1, 0, 0, 0]), _one_joint([0.9, 0.3, 0, 0]), temperature=1.0)
    assert float(ce) == pytest.approx(-math.log(math.e / (math.e + 3)), rel=1e-6)


def test_spatial_ce_skips_empty_targets_and_zero_weight_joints():
    pred = np.zeros((1, 2, 2, 2), np.float32)
    target = np.zeros_like(pred)
    target[0, 1, 1, 0] = 1.0            # joint 0 has a peak; joint 1 is empty (binarized away)
    full = float(spatial_softmax_ce(pred, target, temperature=1.0))
    assert full == pytest.approx(math.log(4) / 2, rel=1e-6)   # averaged over both joints, the empty one counting 0
    assert float(spatial_softmax_ce(pred, target, np.array([[0.0, 1.0]], np.float32))) == 0.0


def test_spatial_kl_is_zero_for_equal_maps_and_known_otherwise():
    a = _one_joint([0.3, 0.1, 0.7, 0.2])
    assert float(spatial_kl(a, a)) == pytest.approx(0.0, abs=1e-7)
    target = _one_joint([math.log(2), 0, 0, 0])        # q = (2, 1, 1, 1) / 5
    expected = 0.4 * math.log(0.4 / 0.25) + 3 * 0.2 * math.log(0.2 / 0.25)
    assert float(spatial_kl(_one_joint([0, 0, 0, 0]), target)) == pytest.approx(expected, rel=1e-5)
    # the temperature divides both: T = 2 on doubled maps gives the same value
    assert float(spatial_kl(_one_joint([0, 0, 0, 0]), 2 * target, temperature=2.0)) == pytest.approx(expected,
                                                                                                     rel=1e-5)


def test_dskd_terms_mix_ground_truth_and_guides_with_alpha():
    pred = _one_joint([0, 0, 0, 0])
    truth = _one_joint([0, 0, 0, 1])                     # MSE 0.5 * 1/4 = 0.125; CE log 4
    guide = _one_joint([0, 0, 2, 0])                     # MSE 0.5 * 4/4 = 0.5; CE log 4
    total, gt, kd = dskd_terms(pred, truth, np.ones((1, 1), np.float32), [guide, guide], 0.8, 0.1, 0.1)
    assert float(gt) == pytest.approx(0.125 + 0.1 * math.log(4), rel=1e-6)
    assert float(kd) == pytest.approx(0.5 + 0.1 * math.log(4), rel=1e-6)      # the mean over guides
    assert float(total) == pytest.approx(0.2 * float(gt) + 0.8 * float(kd), rel=1e-6)
    total, gt, kd = dskd_terms(pred, truth, np.ones((1, 1), np.float32), [], 0.8, 0.1, 0.1)
    assert float(total) == float(gt) and float(kd) == 0.0


def test_okdhp_ramp_rises_from_exp_minus_five_to_one():
    assert float(okdhp_ramp(0, 10)) == pytest.approx(math.exp(-5))
    assert float(okdhp_ramp(5, 10)) == pytest.approx(math.exp(-1.25))
    assert float(okdhp_ramp(10, 10)) == pytest.approx(1.0)
    assert float(okdhp_ramp(25, 10)) == pytest.approx(1.0)
    assert float(okdhp_ramp(3, 0)) == pytest.approx(1.0)


def test_kd_weight_schedules():
    assert float(kd_weight(7, 10, "constant")) == 1.0
    assert float(kd_weight(0, 10, "linear")) == pytest.approx(1.0)
    assert float(kd_weight(5, 10, "linear")) == pytest.approx(0.5)
    assert float(kd_weight(10, 10, "linear", end=0.2)) == pytest.approx(0.2)
    assert float(kd_weight(20, 10, "linear", end=0.2)) == pytest.approx(0.2)
    with pytest.raises(ValueError, match="unknown kd schedule"):
        kd_weight(0, 10, "cosine")


def test_feature_hint_is_the_mean_squared_difference():
    a = np.zeros((1, 2, 2, 2), np.float32)
    b = np.full_like(a, 3.0)
    assert float(feature_hint(a, b)) == pytest.approx(9.0)


def test_keypoint_mse_of_unlabelled_crops_is_zero():
    """An unlabelled person box has GT weights 0: its ground-truth term vanishes, the teacher alone teaches."""
    pred = np.random.default_rng(0).uniform(size=(2, 3, 3, 4)).astype(np.float32)
    assert float(keypoint_mse(pred, np.zeros_like(pred), np.zeros((2, 4), np.float32))) == 0.0


def test_alpha_kd_teaches_an_unlabelled_joint_by_the_teacher_alone_with_weight_one():
    pred = np.zeros((1, 2, 2, 2), np.float32)
    truth = np.ones_like(pred)                 # gt 0.5 a joint
    teacher = np.full_like(pred, 2.0)          # kd 0.5 x 4 = 2 a joint
    labelled = np.array([[1.0, 0.0]], np.float32)
    total, gt, kd = alpha_kd(pred, truth, labelled, teacher, 0.8)
    assert float(gt) == pytest.approx(0.25) and float(kd) == pytest.approx(2.0)   # means over both joints
    # joint 0: 0.2 x 0.5 + 0.8 x 2; joint 1 (unlabelled): 1 x 2, not 0.8 x 2; averaged over the 2 joints
    assert float(total) == pytest.approx((0.2 * 0.5 + 0.8 * 2.0 + 2.0) / 2)
    assert float(total) != pytest.approx(0.2 * float(gt) + 0.8 * float(kd))      # the old mix
    # a box without keypoints learns the teacher's maps whatever alpha is
    for alpha in (0.0, 0.5):
        total, _, kd = alpha_kd(pred, truth, np.zeros((1, 2), np.float32), teacher, alpha)
        assert float(total) == pytest.approx(float(kd)) == pytest.approx(2.0)


def test_keypoint_bce_keeps_its_gradient_where_the_sigmoid_saturates():
    """A cell whose logit sits at -12 with target 1: cross-entropy read from the logits still pushes it up with
    gradient ~ -1 per cell, where MSE on the sigmoid gives ~ -6e-6 (the student could never recover it)."""
    from tfpose._keras import keras, tf
    from tfpose.distill.losses import keypoint_bce

    logits = tf.Variable(np.full((1, 1, 1, 1), -12.0, np.float32))
    target = np.ones((1, 1, 1, 1), np.float32)

    def gradient(loss):
        with tf.GradientTape() as tape:
            value = loss(keras.activations.sigmoid(logits), target)
        return float(tape.gradient(value, logits).numpy().ravel()[0]), float(value)

    @tf.function
    def bce_graph():
        with tf.GradientTape() as tape:
            value = keypoint_bce(tf.sigmoid(logits), target)
        return tape.gradient(value, logits)

    grad, value = gradient(keypoint_bce)
    assert value == pytest.approx(12.0, rel=1e-3) and grad == pytest.approx(-1.0, rel=1e-3)
    assert float(bce_graph().numpy().ravel()[0]) == pytest.approx(-1.0, rel=1e-3)
    assert abs(gradient(keypoint_mse)[0]) < 1e-5


def test_keypoint_bce_weighs_joints_like_keypoint_mse():
    from tfpose.distill.losses import keypoint_bce

    pred = np.full((1, 2, 2, 2), 0.5, np.float32)
    target = np.zeros_like(pred)
    both = float(keypoint_bce(pred, target))
    assert both == pytest.approx(math.log(2), rel=1e-4)
    assert float(keypoint_bce(pred, target, np.array([[1.0, 0.0]], np.float32))) == pytest.approx(both / 2, rel=1e-4)


def test_cross_entropy_is_refused_for_methods_defined_on_mse():
    from tests.conftest import TINY_INPUT, TINY_STUDENT
    from tfpose.distill.distiller import Distiller
    from tfpose.models import build_model, get_spec

    student = build_model("peleenet_duc", 17, TINY_INPUT, **TINY_STUDENT)
    with pytest.raises(ValueError, match="heatmap_loss 'bce' is for method fpd"):
        Distiller(student, None, method="okdhp", heatmap_loss="bce")
    # a linear head has no probabilities for cross-entropy to read (measured: it took a student to mean OKS 0.007)
    with pytest.raises(ValueError, match="needs a student whose heatmaps are sigmoid outputs"):
        Distiller(student, None, heatmap_loss="bce")
    sigmoid_student = build_model("mobilenetv2", 17, TINY_INPUT, **{**get_spec("mobilenetv2").tiny})
    assert Distiller(sigmoid_student, None, heatmap_loss="bce").pointwise.__name__ == "keypoint_bce"


def test_cross_entropy_takes_a_quantization_aware_sigmoid_student():
    """The default student's QAT export fine-tunes with cross-entropy: tfmot's wrapper around the final sigmoid
    still outputs probabilities (the export failed on this with a ValueError)."""
    from tests.conftest import TINY_INPUT
    from tfpose.distill.distiller import Distiller, ends_in_sigmoid
    from tfpose.models import build_model, get_spec
    from tfpose.quantize import fold_batchnorm, quantize_aware

    student = build_model("mobilenetv2", 17, TINY_INPUT, **get_spec("mobilenetv2").tiny)
    qat = quantize_aware(fold_batchnorm(student))
    assert qat.layers[-1].name.startswith("quant_") and ends_in_sigmoid(qat)
    assert Distiller(qat, None, heatmap_loss="bce").pointwise.__name__ == "keypoint_bce"


def test_teacher_confidence_weighs_each_joints_teacher_term_by_its_peak():
    from tfpose.distill.losses import teacher_confidence

    rng = np.random.default_rng(0)
    pred = rng.uniform(0, 1, (2, 4, 4, 3)).astype(np.float32)
    teacher = rng.uniform(0, 0.2, (2, 4, 4, 3)).astype(np.float32)
    teacher[0, 1, 1, 0], teacher[1, 2, 2, 2] = 0.9, 1.4          # peaks; above 1 counts as 1
    confidence = np.asarray(teacher_confidence(teacher))
    assert confidence[0, 0] == pytest.approx(0.9) and confidence[1, 2] == 1.0
    truth, weights = np.zeros_like(pred), np.zeros((2, 3), np.float32)          # teacher-only joints
    per_joint = 0.5 * np.mean((pred - teacher) ** 2, axis=(1, 2))
    total, _, _ = alpha_kd(pred, truth, weights, teacher, 0.5, confidence=confidence)
    assert float(total) == pytest.approx(np.mean(per_joint * confidence), rel=1e-5)
    plain, _, _ = alpha_kd(pred, truth, weights, teacher, 0.5)
    assert float(plain) == pytest.approx(np.mean(per_joint), rel=1e-5) and float(total) < float(plain)
