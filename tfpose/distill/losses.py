"""Loss terms: small pure functions on heatmap tensors.

Shape legend: B crops, h x w heatmap cells, K joints. Heatmaps are (B, h, w, K); joint weights (B, K).
"""

from __future__ import annotations

from tfpose._keras import tf


def keypoint_mse(pred, target, weights=None):
    """JointsMSELoss: 0.5 x per-joint mean squared error, times the joint's weight, averaged over joints and crops."""
    per_joint = 0.5 * tf.reduce_mean(tf.square(pred - target), axis=[1, 2])   # (B, K)
    if weights is not None:
        per_joint = per_joint * weights
    return tf.reduce_mean(per_joint)


def alpha_kd(pred, truth, truth_weights, teacher, alpha: float):
    """FPD / Park et al.: (1 - alpha) x MSE(pred, ground truth) + alpha x MSE(pred, teacher).

    The ground-truth term counts labelled joints only; the teacher term counts every joint, since the
    teacher's view of occluded and unlabelled joints is part of what it teaches.
    """
    gt = keypoint_mse(pred, truth, truth_weights)
    kd = keypoint_mse(pred, teacher)
    return (1.0 - alpha) * gt + alpha * kd, gt, kd
