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


def keypoint_bce(pred, target, weights=None):
    """Binary cross-entropy of sigmoid heatmaps against soft targets in [0, 1], per joint the mean over cells, times
    the joint's weight, averaged over joints and crops: MoveNet's own kind of loss, for sigmoid heads
    (``distill.heatmap_loss: bce``). Where ``pred`` is a Sigmoid op's output, Keras reads its logits, so a cell far
    from its target keeps its full gradient (under MSE it vanishes as the sigmoid saturates)."""
    from tfpose._keras import keras

    per_joint = tf.reduce_mean(keras.backend.binary_crossentropy(target, pred), axis=[1, 2])   # (B, K)
    if weights is not None:
        per_joint = per_joint * weights
    return tf.reduce_mean(per_joint)


HEATMAP_LOSSES = {"mse": keypoint_mse, "bce": keypoint_bce}


def alpha_kd(pred, truth, truth_weights, teacher, alpha: float, loss=keypoint_mse, confidence=None):
    """FPD / Park et al. per joint: a labelled joint learns (1 - alpha) x MSE(pred, ground truth) + alpha x
    MSE(pred, teacher); an unlabelled one (weight 0: LSP's face joints, a box without keypoints) learns from the
    teacher alone, with weight 1, since the teacher's view of it is all there is to learn.

    ``loss``: the per-cell term, ``keypoint_mse`` or ``keypoint_bce``. ``confidence`` (B, K) in [0, 1]: each
    joint's teacher term is weighted by it as well (``teacher_confidence``), so an unsure teacher teaches less.
    Returns (total, gt, kd): gt over labelled joints, kd over every joint, as the loss averages them."""
    gt = loss(pred, truth, truth_weights)
    labelled = tf.cast(tf.convert_to_tensor(truth_weights) > 0, tf.float32)
    teacher_weights = alpha * labelled + (1.0 - labelled)
    if confidence is not None:
        teacher_weights = teacher_weights * confidence
    total = (1.0 - alpha) * gt + loss(pred, teacher, teacher_weights)
    return total, gt, loss(pred, teacher)


def teacher_confidence(teacher):
    """(B, h, w, K) teacher heatmaps -> (B, K) each joint's peak height, clipped to [0, 1]: a sigmoid heatmap's
    peak is the model's own confidence that the joint is there."""
    return tf.clip_by_value(tf.reduce_max(teacher, axis=[1, 2]), 0.0, 1.0)


def binarize(heatmaps, threshold: float):
    """DSKD: teacher values under ``threshold`` set to 0 (background noise removed), the rest kept as they are."""
    heatmaps = tf.convert_to_tensor(heatmaps)
    return tf.where(heatmaps < threshold, tf.zeros_like(heatmaps), heatmaps)


def _flat_joints(maps):
    """(B, h, w, K) -> (B, K, h*w)."""
    maps = tf.convert_to_tensor(maps)
    shape = tf.shape(maps)
    return tf.reshape(tf.transpose(maps, [0, 3, 1, 2]), [shape[0], shape[3], shape[1] * shape[2]])


def spatial_softmax_ce(pred, target, weights=None, temperature: float = 0.1):
    """DSKD's classification term: each joint's predicted heatmap, flattened and divided by ``temperature``, is a
    softmax distribution over the h*w locations; the loss is its cross-entropy against the target's peak cell
    (-log p[argmax target]). A joint whose target is all zero (nothing labelled, or binarized away) counts 0;
    like the MSE, the weighted sum is divided by B x K.

    pred, target: (B, h, w, K); weights: (B, K) or None. Returns a scalar.
    """
    logits = _flat_joints(pred) / temperature                                   # (B, K, hw)
    t = _flat_joints(target)
    peak = tf.argmax(t, axis=-1)                                                 # (B, K)
    ce = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=peak, logits=logits)   # (B, K)
    present = tf.cast(tf.reduce_max(t, axis=-1) > 0, ce.dtype)
    if weights is not None:
        present = present * tf.cast(weights, ce.dtype)
    return tf.reduce_mean(ce * present)


def spatial_kl(pred, target, temperature: float = 1.0, weights=None):
    """OKDHP's distillation term: KL(q || p) per joint, q = softmax(target / T) and p = softmax(pred / T) over the
    h*w locations (the target, e.g. the ensemble, teaches ``pred``), averaged over joints and crops.

    pred, target: (B, h, w, K); weights: (B, K) or None. Returns a scalar.
    """
    log_p = tf.nn.log_softmax(_flat_joints(pred) / temperature, axis=-1)
    log_q = tf.nn.log_softmax(_flat_joints(target) / temperature, axis=-1)
    kl = tf.reduce_sum(tf.exp(log_q) * (log_q - log_p), axis=-1)                 # (B, K)
    if weights is not None:
        kl = kl * tf.cast(weights, kl.dtype)
    return tf.reduce_mean(kl)


def dskd_terms(pred, truth, truth_weights, guides, alpha: float, ce_weight: float, temperature: float):
    """DSKD for one student output: (1 - alpha) x [MSE + ce_weight x CE](gt) + alpha x mean over guides of the same
    pair against each (already binarized, stop-gradient) guide heatmap. Returns (total, gt, kd)."""
    gt = keypoint_mse(pred, truth, truth_weights) + ce_weight * spatial_softmax_ce(pred, truth, truth_weights,
                                                                                   temperature)
    if not guides:
        return gt, gt, tf.zeros_like(gt)
    kd = tf.add_n([keypoint_mse(pred, g) + ce_weight * spatial_softmax_ce(pred, g, None, temperature)
                   for g in guides]) / float(len(guides))
    return (1.0 - alpha) * gt + alpha * kd, gt, kd


def feature_hint(student_features, teacher_features):
    """FitNets hint: mean squared error between the (adapted) student features and the teacher's, same shape."""
    return tf.reduce_mean(tf.square(tf.cast(student_features, tf.float32) - tf.cast(teacher_features, tf.float32)))


def okdhp_ramp(step, total_steps):
    """OKDHP's ramp-up exp(-5 (1 - t/T)^2), 1 from t >= T on (T = 0: always 1)."""
    t = tf.cast(step, tf.float32)
    total = tf.maximum(tf.cast(total_steps, tf.float32), 1.0)
    x = tf.minimum(t / total, 1.0)
    return tf.where(tf.cast(total_steps, tf.float32) > 0, tf.exp(-5.0 * tf.square(1.0 - x)), 1.0)


def kd_weight(step, total_steps, schedule: str = "constant", end: float = 0.0):
    """Multiplier of the distillation weight at ``step`` of ``total_steps``: 'constant' -> 1; 'linear' -> from 1
    down to ``end`` at the last step, ``end`` after it."""
    if schedule == "constant":
        return tf.constant(1.0)
    if schedule == "linear":
        x = tf.minimum(tf.cast(step, tf.float32) / tf.maximum(tf.cast(total_steps, tf.float32), 1.0), 1.0)
        return 1.0 - (1.0 - end) * x
    raise ValueError(f"unknown kd schedule '{schedule}'; expected 'constant' or 'linear'")
