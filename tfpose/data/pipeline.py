"""tf.data input pipelines: parallel crop + target generation, batching and prefetch."""

from __future__ import annotations

import numpy as np

from tfpose._keras import tf
from tfpose.data.samples import CropSampler


def training_indices(n: int, training: bool, seed: int = 0, probabilities: np.ndarray | None = None):
    """(person index, sample seed) pairs for one epoch of ``n`` samples: in order with seed 0 for evaluation; for
    training shuffled, or drawn with replacement by ``probabilities`` (n,) when sources carry sampling weights,
    each with its own augmentation seed from ``seed``."""
    if not training:
        seeds = tf.data.Dataset.from_tensors(tf.constant(0, tf.int64)).repeat()
        return tf.data.Dataset.zip((tf.data.Dataset.range(n), seeds))
    seeds = tf.data.Dataset.random(seed=seed).map(lambda s: s % (2**31))
    if probabilities is None:
        indices = tf.data.Dataset.range(n).shuffle(n, seed=seed, reshuffle_each_iteration=True)
        return tf.data.Dataset.zip((indices, seeds))
    logits = tf.constant(np.log(np.maximum(probabilities, 1e-30))[None], tf.float32)

    def draw(sample_seed):
        index = tf.random.stateless_categorical(logits, 1, seed=tf.stack([sample_seed, tf.constant(1, tf.int64)]))
        return index[0, 0], sample_seed

    return seeds.take(n).map(draw)


def build_dataset(sampler: CropSampler, batch_size: int, training: bool, seed: int = 0,
                  drop_remainder: bool | None = None, probabilities: np.ndarray | None = None) -> tf.data.Dataset:
    """Batches of ``(images, {"heatmaps", "weights"})``.

    images: (B, H, W, 3) float32 raw pixels 0..255 (the model normalises them itself);
    heatmaps: (B, h, w, K) float32; weights: (B, K) float32. Training shuffles and augments with
    per-sample seeds drawn from ``seed``, so a run is reproducible; evaluation is in order and plain.
    ``probabilities`` (N,): draw persons with replacement by these instead (``training_indices``).
    """
    if len(sampler) == 0:
        raise ValueError("cannot build a dataset from zero persons")
    w, h = sampler.codec.input_size
    hw, hh = sampler.codec.heatmap_size
    k = len(sampler.flip_index)

    def load(index, sample_seed):
        s = sampler.sample(int(index), int(sample_seed) if training else None)
        return s.crop.astype(np.float32), s.heatmaps, s.weights

    def load_tf(index, sample_seed):
        image, heatmaps, weights = tf.numpy_function(load, [index, sample_seed], [tf.float32] * 3)
        image.set_shape((h, w, 3))
        heatmaps.set_shape((hh, hw, k))
        weights.set_shape((k,))
        return image, {"heatmaps": heatmaps, "weights": weights}

    ds = training_indices(len(sampler), training, seed, probabilities).map(load_tf, num_parallel_calls=tf.data.AUTOTUNE)
    ds = ds.batch(batch_size, drop_remainder=training if drop_remainder is None else drop_remainder)
    return ds.prefetch(tf.data.AUTOTUNE)


def images_only(dataset: tf.data.Dataset) -> tf.data.Dataset:
    return dataset.map(lambda images, targets: images)
