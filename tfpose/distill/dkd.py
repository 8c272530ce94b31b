"""Dynamic Kernel Distillation (Nie, Li, Xiao, Yan, ICCV 2019) as a distillation method: the loss terms of a
video student (``tfpose.models.dkd``: the tracker holding frame encoder, pose kernel distillator and matcher).

Training unrolls short sequences: the large model (the teacher, frozen) gives frame 1's heatmaps, each prediction
feeds the next frame's kernels, and the loss is the heatmap MSE beside a **temporally adversarial** term: a small
discriminator sees ``window`` consecutive heatmaps stacked on channels and learns to tell ground-truth sequences
from predicted ones, which pushes predictions toward coherent motion. The Distiller (``method="dkd"``) holds the
discriminator and trains it in the same step, on ``discriminator_loss``.
Shape legend: B sequences, T frames, H x W input pixels, h x w heatmap cells, K joints.
"""

from __future__ import annotations

from tfpose._keras import keras, tf
from tfpose.distill.losses import keypoint_mse
from tfpose.models.dkd import parts


def _bce(logits, label: float):
    return tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(tf.fill(tf.shape(logits), label), logits))


def windows(maps: list, size: int):
    """Consecutive ``size``-frame windows of (B, h, w, K) maps, stacked on channels: (B * windows, h, w, size * K)."""
    return tf.concat([tf.concat(maps[i:i + size], -1) for i in range(len(maps) - size + 1)], 0)


def first_heatmaps(teacher, first_frames, own_first):
    """(B, h, w, K) heatmaps of frame 1: the teacher's (resized to this grid if its own differs), stop-gradient;
    the encoder's own without a teacher."""
    if teacher is None:
        return own_first
    th, tw = teacher.input_shape[1:3]
    images = first_frames if tuple(first_frames.shape[1:3]) == (th, tw) else tf.image.resize(first_frames, (th, tw))
    maps = teacher(images, training=False)
    maps = tf.cast(maps[-1] if isinstance(maps, (list, tuple)) else maps, tf.float32)
    if tuple(maps.shape[1:3]) != tuple(own_first.shape[1:3]):
        maps = tf.image.resize(maps, own_first.shape[1:3])
    return tf.stop_gradient(maps)


def unroll(tracker: keras.Model, frames, teacher=None, training: bool = False):
    """frames (B, T, H, W, 3) raw pixels -> (heatmaps per frame [T x (B, h, w, K)], the encoder's own heatmaps
    [T x (B, h, w, K)]); frame 1's heatmaps are the teacher's."""
    encoder, distillator, matcher = parts(tracker)
    frames = tf.cast(frames, tf.float32)
    t = frames.shape[1]
    features, own = encoder(tf.reshape(frames, [-1, *frames.shape[2:]]), training=training)
    features = tf.reshape(features, [-1, t, *features.shape[1:]])
    own = tf.reshape(own, [-1, t, *own.shape[1:]])
    maps = [first_heatmaps(teacher, frames[:, 0], own[:, 0])]
    for i in range(1, t):
        kernels = distillator([features[:, i - 1], maps[-1]], training=training)
        maps.append(matcher([features[:, i], own[:, i], kernels, maps[-1]], training=training))
    return maps, [own[:, i] for i in range(t)]


def dkd_terms(maps: list, own: list, truth, weights, discriminator: keras.Model, own_weight: float,
              training: bool):
    """(heatmap MSE, adversarial term, discriminator loss) of one unrolled batch: the MSE of frames 2..T plus
    ``own_weight`` x the encoder's own MSE on every frame, the discriminator's "real" loss on predicted windows,
    and its loss telling true windows (1) from predicted ones (0, stop-gradient).
    truth (B, T, h, w, K), weights (B, T, K)."""
    t = len(maps)
    mse = tf.add_n([keypoint_mse(maps[i], truth[:, i], weights[:, i]) for i in range(1, t)]) / (t - 1)
    mse += own_weight * tf.add_n([keypoint_mse(own[i], truth[:, i], weights[:, i]) for i in range(t)]) / t
    size = discriminator.input_shape[-1] // maps[0].shape[-1]
    fake = windows(maps, size)
    real = windows([truth[:, i] for i in range(t)], size)
    adv = _bce(discriminator(fake, training=training), 1.0)
    critic = (_bce(discriminator(real, training=training), 1.0)
              + _bce(discriminator(tf.stop_gradient(fake), training=training), 0.0))
    return mse, adv, critic
