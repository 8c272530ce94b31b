"""tf.data input pipelines: parallel crop + target generation, batching and prefetch.

Training reads an endless stream whose every element is decided by the seed and its position alone: epoch e is a
permutation of the persons (or weighted draws) seeded by (seed, e), each element with its own augmentation seed,
cut to whole global batches. So a resumed run goes on at the batch where it stopped, and the workers of a
multi-worker run each read their own part of every global batch (``Shard``), which together is the global batch
a single worker would have read.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tfpose._keras import tf
from tfpose.data.samples import CropSampler

SEED_RANGE = 2**31 - 1      # augmentation seeds are in [0, SEED_RANGE)


@dataclass(frozen=True)
class Shard:
    """The part of the training stream one input pipeline reads (``tfpose.train.fit`` makes one per worker):
    elements ``index``, ``index + count``, ... of the stream, from global batch ``first_batch`` on (where a
    resumed run stopped), in batches of ``batch`` (0: the pipeline's whole share of a global batch)."""
    index: int = 0
    count: int = 1
    first_batch: int = 0
    batch: int = 0

    def batch_size(self, global_batch: int) -> int:
        if global_batch % self.count:
            raise ValueError(f"a global batch of {global_batch} cannot be split evenly between {self.count} "
                             "workers: make the batch size a multiple of the number of replicas")
        return self.batch or global_batch // self.count


def _epoch_key(seed: int, epoch):
    return tf.random.experimental.stateless_fold_in(tf.constant([seed, 0], tf.int64), tf.cast(epoch, tf.int64))


def epoch_draws(n: int, length: int, seed, epoch, probabilities: np.ndarray | None = None):
    """(indices (length,) int64, sample seeds (length,) int64) of training epoch ``epoch``, decided by
    ``(seed, epoch)`` alone: a permutation of ``range(n)`` (repeated when ``length > n``), or ``length`` draws
    with replacement by ``probabilities`` (n,); each with its own augmentation seed."""
    key = _epoch_key(seed, epoch)
    order_key = tf.random.experimental.stateless_fold_in(key, 1)
    seeds = tf.random.stateless_uniform([length], key, minval=0, maxval=SEED_RANGE, dtype=tf.int64)
    if probabilities is None:
        permutation = tf.argsort(tf.random.stateless_uniform([n], order_key), stable=True)
        indices = tf.tile(tf.cast(permutation, tf.int64), [-(-length // n)])[:length]
    else:
        logits = tf.constant(np.log(np.maximum(probabilities, 1e-30))[None], tf.float32)
        indices = tf.random.stateless_categorical(logits, length, order_key)[0]
    return indices, seeds


def training_indices(n: int, training: bool, seed: int = 0, probabilities: np.ndarray | None = None,
                     epoch: int = 0):
    """(person index, sample seed) pairs for one epoch of ``n`` samples: in order with seed 0 for evaluation; for
    training epoch ``epoch`` shuffled, or drawn with replacement by ``probabilities`` (n,) when sources carry
    sampling weights (``epoch_draws``)."""
    if not training:
        seeds = tf.data.Dataset.from_tensors(tf.constant(0, tf.int64)).repeat()
        return tf.data.Dataset.zip((tf.data.Dataset.range(n), seeds))
    return tf.data.Dataset.from_tensor_slices(epoch_draws(n, n, seed, epoch, probabilities))


def training_stream(n: int, batch_size: int, seed: int = 0, probabilities: np.ndarray | None = None,
                    shard: Shard = Shard()) -> tf.data.Dataset:
    """Endless (person index, sample seed) pairs: epochs 0, 1, ... of ``epoch_draws``, each cut to
    ``max(1, n // batch_size)`` whole global batches, from global batch ``shard.first_batch`` on, every
    ``shard.count``-th element from ``shard.index``."""
    per_epoch = max(1, n // batch_size) * batch_size
    start = shard.first_batch * batch_size
    first_epoch = start // per_epoch
    stream = tf.data.Dataset.range(first_epoch, np.iinfo(np.int64).max).flat_map(
        lambda epoch: tf.data.Dataset.from_tensor_slices(epoch_draws(n, per_epoch, seed, epoch, probabilities)))
    # flat_map hides that the stream never ends; Keras' fit reads an epoch to its end unless it knows
    stream = stream.skip(start - first_epoch * per_epoch).apply(
        tf.data.experimental.assert_cardinality(tf.data.INFINITE_CARDINALITY))
    # sharded here, before the crops are made (tf.data's own sharding of a numpy_function pipeline would make
    # every crop on every worker and keep one in N)
    return sharded_here(stream.shard(shard.count, shard.index)) if shard.count > 1 else stream


def sharded_here(dataset: tf.data.Dataset) -> tf.data.Dataset:
    """``dataset``, marked as one worker's part already: tf.distribute must not shard it again."""
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.OFF
    return dataset.with_options(options)


def sample_dataset(n: int, load, batch_size: int, training: bool, seed: int = 0,
                   probabilities: np.ndarray | None = None, shard: Shard | None = None,
                   drop_remainder: bool | None = None) -> tf.data.Dataset:
    """``load(index, sample_seed)`` (tensors -> one sample's structure) mapped in parallel over the training
    stream (endless, ``training_stream``) or over one in-order pass for evaluation, batched and prefetched."""
    if training:
        shard = shard or Shard()
        ds = training_stream(n, batch_size, seed, probabilities, shard).map(load, num_parallel_calls=tf.data.AUTOTUNE)
        ds = ds.batch(shard.batch_size(batch_size), drop_remainder=True)
    else:
        ds = training_indices(n, False).map(load, num_parallel_calls=tf.data.AUTOTUNE)
        ds = ds.batch(batch_size, drop_remainder=bool(drop_remainder))
    return ds.prefetch(tf.data.AUTOTUNE)


def build_dataset(sampler: CropSampler, batch_size: int, training: bool, seed: int = 0,
                  drop_remainder: bool | None = None, probabilities: np.ndarray | None = None,
                  shard: Shard | None = None) -> tf.data.Dataset:
    """Batches of ``(images, {"heatmaps", "weights"})``.

    images: (B, H, W, 3) float32 raw pixels 0..255 (the model normalises them itself);
    heatmaps: (B, h, w, K) float32; weights: (B, K) float32. Training is an endless stream (``training_stream``)
    that shuffles and augments with per-sample seeds drawn from ``seed``, so a run is reproducible, and reads
    ``shard``'s part of it (B: its batch); evaluation is one pass, in order and plain.
    ``probabilities`` (N,): draw persons with replacement by these instead (``epoch_draws``).
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

    return sample_dataset(len(sampler), load_tf, batch_size, training, seed, probabilities, shard, drop_remainder)


def build_track_dataset(tracks: dict[str, np.ndarray], batch_size: int, training: bool, seed: int = 0
                        ) -> tf.data.Dataset:
    """Batches of (frames (B, T, H, W, 3) uint8, {"heatmaps": (B, T, h, w, K), "weights": (B, T, K)}) of
    ``tracks`` (``synthetic_tracks``' arrays): training shuffles and repeats without end; otherwise one pass."""
    dataset = tf.data.Dataset.from_tensor_slices(
        (tracks["frames"], {"heatmaps": tracks["heatmaps"], "weights": tracks["weights"]}))
    if training:
        dataset = dataset.shuffle(len(tracks["frames"]), seed=seed).repeat()
    return dataset.batch(batch_size, drop_remainder=training).prefetch(2)


def images_only(dataset: tf.data.Dataset) -> tf.data.Dataset:
    return dataset.map(lambda images, targets: images)
