"""Training on several workers: each reads its own part of every global batch, all end with the same weights, only
the chief writes, and a killed worker rejoins at the last completed epoch.

The slow tests start real worker processes on localhost (``tf.distribute.MultiWorkerMirroredStrategy``, each
with its own ``TF_CONFIG`` and free ports) that run ``tfpose distill``; ``worker_main`` below is what each runs,
with hooks that record the samples it crops, the files it writes and its final weights."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import ROOT, TINY_INPUT

BATCH, STEPS = 4, 3                 # global batch, steps per epoch


def _tiny_student(input_size, num_keypoints=17):
    """Three convolutions with BatchNorm, (H, W) -> (H/4, W/4, K): a student that traces in a second."""
    from tfpose._keras import keras

    x = inputs = keras.Input((input_size[1], input_size[0], 3))
    x = keras.layers.Rescaling(1 / 255)(x)
    for _ in range(2):
        x = keras.layers.Conv2D(8, 3, strides=2, padding="same", use_bias=False)(x)
        x = keras.layers.ReLU()(keras.layers.BatchNormalization()(x))
    return keras.Model(inputs, keras.layers.Conv2D(num_keypoints, 1)(x), name="tiny_conv")


# ---------------------------------------------------------------------------------------------------------------
# the stream's shards, in one process


def test_the_shards_of_the_training_stream_are_disjoint_and_make_up_every_global_batch():
    from tfpose.data.pipeline import Shard, training_stream

    def read(shard, count):
        return [(int(i), int(s)) for i, s in training_stream(10, 4, 7, shard=shard).take(count)]

    single = read(Shard(), 24)               # 3 epochs of 2 global batches (2 of the 10 persons left out of each)
    assert len({i for i, _ in single[:8]}) == 8                  # an epoch is a permutation: no person twice
    assert single[:8] != single[8:16]                            # each epoch its own order
    parts = [read(Shard(w, 2), 12) for w in range(2)]
    for step in range(6):                                        # worker w reads elements w, w + 2, ... of each batch
        batch = single[step * 4:(step + 1) * 4]
        mine = [parts[w][step * 2:(step + 1) * 2] for w in range(2)]
        assert not set(mine[0]) & set(mine[1])
        assert sorted(mine[0] + mine[1]) == sorted(batch)
    # a resumed run (from global batch 3) reads on where the first one stopped, its shards too
    assert read(Shard(0, 1, 3), 12) == single[12:]
    assert read(Shard(1, 2, 3), 6) == single[13::2]


def test_each_worker_crops_only_its_part_and_a_replica_batch_splits_it(synthetic_root):
    """build_dataset with a Shard: the pipeline's batches are the per-replica size, and the crops are made from
    the worker's part of the stream only (the other parts' samples are never loaded)."""
    from tfpose.codec import HeatmapCodec
    from tfpose.data.coco import load_coco
    from tfpose.data.pipeline import Shard, build_dataset, training_stream
    from tfpose.data.samples import CropSampler
    from tfpose.skeleton import COCO17

    train = load_coco(synthetic_root / "annotations/person_keypoints_train.json", synthetic_root / "images/train")
    sampler = CropSampler(train.labelled(), HeatmapCodec(TINY_INPUT, 4, 2.0), COCO17.flip_index)
    loaded = []
    original = sampler.sample
    sampler.sample = lambda index, seed=None: loaded.append((index, seed)) or original(index, seed)
    ds = build_dataset(sampler, 8, training=True, seed=1, shard=Shard(1, 2, 0, batch=2))
    batches = [images for images, _ in ds.take(4)]              # 2 global batches: 2 replicas x 2 steps
    assert [tuple(b.shape) for b in batches] == [(2, TINY_INPUT[1], TINY_INPUT[0], 3)] * 4
    stream = [(int(i), int(s)) for i, s in training_stream(len(sampler), 8, 1).take(16)]
    assert set(stream[1:16:2]) <= set(loaded)                    # odd positions of both global batches ...
    assert not set(stream[0:16:2]) & set(loaded)                 # ... and none of the other worker's


def test_the_parts_of_a_cached_view_batch_make_up_the_whole_batch(tmp_path):
    from tests.test_view_cache import CODEC, FLIP, _Sampler, _Teacher
    from tfpose.distill import view_cache

    cache = view_cache.build_view_cache(tmp_path / "views", _Sampler(4), _Teacher(), views=2, seed=1)
    p = np.full(4, 1 / 4)
    whole = view_cache.draw_batch(cache, CODEC, FLIP, p, 8, 0.2, seed=11)
    parts = [view_cache.draw_batch(cache, CODEC, FLIP, p, 8, 0.2, seed=11, part=(i, 4)) for i in range(4)]
    for a, b in zip(whole, (np.concatenate(arrays) for arrays in zip(*parts))):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="equal parts"):
        view_cache.draw_batch(cache, CODEC, FLIP, p, 8, 0.2, seed=11, part=(0, 3))
    # the stream: two workers with two replicas each, in batches of 2, read global batch 1 of the whole stream
    from tfpose.data.pipeline import Shard

    def stream(shard, count):
        return [images.numpy() for images, _ in view_cache.cached_view_dataset(
            cache, CODEC, FLIP, p, 8, 0.2, seed=3, shard=shard).take(count)]
    single = stream(Shard(0, 1, 1), 1)[0]
    quarters = [q for w in range(2) for q in stream(Shard(w, 2, 1, batch=2), 2)]
    assert [q.shape[0] for q in quarters] == [2] * 4
    np.testing.assert_array_equal(np.concatenate(quarters), single)


# ---------------------------------------------------------------------------------------------------------------
# real workers


def worker_main() -> None:
    """One worker: ``tfpose distill`` with the arguments in $TFPOSE_ARGS (JSON), and hooks that record under
    $TRACE_DIR/worker<i>.*: the (index, seed) of every augmented crop it makes, every file it moves into place
    (the atomic writer's os.replace), its fit's epochs and final weights; $CRASH_AT_EPOCH kills it (SIGKILL) as
    that epoch begins."""
    task = json.loads(os.environ["TF_CONFIG"])["task"]["index"]
    trace = Path(os.environ["TRACE_DIR"]) / f"worker{task}"
    crash_at = int(os.environ.get("CRASH_AT_EPOCH", "-1"))
    import threading

    from tfpose._keras import keras
    from tfpose.data import samples
    from tfpose.distill.distiller import Distiller
    from tfpose.models.registry import register

    register("tiny_conv", "student", TINY_INPUT, "three convolutions (tests)")(_tiny_student)
    lock = threading.Lock()
    crops = open(f"{trace}.crops", "a", buffering=1)
    original_sample = samples.CropSampler.sample

    def sample(self, index, seed=None):
        if seed is not None:
            with lock:
                crops.write(f"{index} {seed}\n")
        return original_sample(self, index, seed)
    samples.CropSampler.sample = sample

    moved = open(f"{trace}.moved", "a", buffering=1)
    original_replace = os.replace

    def replace(src, dst, *args, **kwargs):
        moved.write(f"{dst}\n")
        return original_replace(src, dst, *args, **kwargs)
    os.replace = replace

    class Crash(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            if epoch == crash_at:
                os.kill(os.getpid(), signal.SIGKILL)

    original_fit = Distiller.fit

    def fit(self, *args, callbacks=(), **kwargs):
        history = original_fit(self, *args, callbacks=[*callbacks, Crash()], **kwargs)
        np.savez(f"{trace}.weights.npz", *self.student.get_weights())
        Path(f"{trace}.fit.json").write_text(json.dumps({
            "epochs_run": len(history.history["loss"]), "iterations": int(self.optimizer.iterations.numpy()),
            "kd_loss": history.history["kd_loss"], "replicas": self.distribute_strategy.num_replicas_in_sync}))
        return history
    Distiller.fit = fit

    from tfpose.cli import main

    sys.exit(main(["distill", *json.loads(os.environ["TFPOSE_ARGS"])]))


def _free_ports(n: int) -> list[int]:
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("localhost", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def _start(args: list[str], trace: Path, crash: dict[int, int] | None = None) -> list[subprocess.Popen]:
    ports = _free_ports(2)
    cluster = {"worker": [f"localhost:{p}" for p in ports]}
    procs = []
    for i in range(2):
        env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": "",
               "TF_NUM_INTRAOP_THREADS": "1", "TF_NUM_INTEROP_THREADS": "2",
               "TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": "worker", "index": i}}),
               "TFPOSE_ARGS": json.dumps(args), "TRACE_DIR": str(trace)}
        if crash and i in crash:
            env["CRASH_AT_EPOCH"] = str(crash[i])
        log = open(trace / f"worker{i}.log", "a")
        procs.append(subprocess.Popen([sys.executable, "-c", "import tests.test_multiworker as t; t.worker_main()"],
                                      cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                                      start_new_session=True))
    return procs


def _kill(procs: list[subprocess.Popen]) -> None:
    for p in procs:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()


def _wait(procs: list[subprocess.Popen], trace: Path, timeout: float = 400) -> list[int]:
    deadline = time.monotonic() + timeout
    try:
        return [p.wait(max(1.0, deadline - time.monotonic())) for p in procs]
    except subprocess.TimeoutExpired:
        raise AssertionError(f"the workers did not finish:\n{_log(trace, 0)}\n{_log(trace, 1)}") from None
    finally:
        _kill(procs)


def _log(trace: Path, i: int) -> str:
    return (trace / f"worker{i}.log").read_text()[-4000:]


def _args(root: Path, out: Path, *overrides: str) -> list[str]:
    return ["--out", str(out), "data.source=coco", f"data.root={root}", "data.val_fraction=0",
            "data.train_annotations=annotations/person_keypoints_train.json", "data.train_images=images/train",
            "data.val_annotations=annotations/person_keypoints_val.json", "data.val_images=images/val",
            f"codec.input_size=[{TINY_INPUT[0]},{TINY_INPUT[1]}]", "codec.sigma=2.0", "teacher.source=none",
            "distill.student.name=tiny_conv", "distill.student.params={}",
            f"distill.train={{epochs: 3, batch_size: {BATCH}, steps_per_epoch: {STEPS}, learning_rate: 0.01, "
            "schedule: cosine, eval_every_epochs: 1, strategy: multi_worker_mirrored}", *overrides]


def _weights(trace: Path, i: int) -> list[np.ndarray]:
    with np.load(trace / f"worker{i}.weights.npz") as z:
        return [z[f"arr_{k}"] for k in range(len(z.files))]


def _crops(path: Path) -> list[tuple[int, int]]:
    return [tuple(map(int, line.split())) for line in path.read_text().split("\n") if line]


@pytest.mark.slow
def test_two_workers_share_each_batch_agree_write_once_and_resume_after_a_kill(synthetic_root, tmp_path, monkeypatch):
    from tfpose import pipeline as p
    from tfpose.config import load_config
    from tfpose.data.pipeline import training_stream
    from tfpose.models import registry
    from tfpose.train import completed_epochs

    # registered for this test alone: the model zoo's listing test must not meet it
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    registry.register("tiny_conv", "student", TINY_INPUT, "three convolutions (tests)")(_tiny_student)
    out, trace = tmp_path / "run", tmp_path / "trace"
    trace.mkdir()
    args = _args(synthetic_root, out)
    run_dir = out / "distill_run"

    # 1. worker 1 is killed as epoch 3 begins; the chief, stuck in the next all-reduce, is killed once its
    #    checkpoint of epoch 2 is written
    procs = _start(args, trace, crash={1: 2})
    try:
        assert procs[1].wait(400) == -signal.SIGKILL, _log(trace, 1)
        deadline = time.monotonic() + 120
        while completed_epochs(run_dir) < 2 and time.monotonic() < deadline:
            time.sleep(0.5)
    finally:
        _kill(procs)
    assert completed_epochs(run_dir) == 2, _log(trace, 0)
    first = {i: _crops((trace / f"worker{i}.crops").rename(trace / f"worker{i}.crops.first")) for i in range(2)}

    # 2. both restarted: they rejoin at epoch 3, train it alone, and end alike
    assert _wait(_start(args, trace), trace) == [0, 0], _log(trace, 0) + _log(trace, 1)
    fits = [json.loads((trace / f"worker{i}.fit.json").read_text()) for i in range(2)]
    assert [f["epochs_run"] for f in fits] == [1, 1]
    assert [f["iterations"] for f in fits] == [3 * STEPS] * 2 and fits[0]["replicas"] == 2
    for a, b in zip(_weights(trace, 0), _weights(trace, 1)):
        np.testing.assert_array_equal(a, b)

    # the samples: every global batch is the one a single worker would read, split between the two
    cfg = load_config(None, args[2:])
    ctx = p.make_context(cfg, tmp_path / "reference")
    p.load_data(ctx)
    sampler, draw = ctx.training_sampler(with_unlabelled=False, augment=True)
    stream = [(int(i), int(s)) for i, s in training_stream(len(sampler), BATCH, cfg.seed, draw).take(3 * STEPS * BATCH)]
    position = {pair: k for k, pair in enumerate(stream)}
    assert len(position) == len(stream)                              # each position its own augmentation seed
    assert not set(first[0]) & set(first[1])
    for k, pair in enumerate(stream[:2 * STEPS * BATCH]):              # epochs 1-2, before the kill
        assert pair in first[k % 2], f"global batch {k // BATCH}: sample {k} was not read by worker {k % 2}"
    for i in range(2):                                                # the restarted run read on from batch 6
        resumed = {position.get(pair) for pair in _crops(trace / f"worker{i}.crops")} - {None}
        assert min(resumed) == 2 * STEPS * BATCH + i
        assert set(range(2 * STEPS * BATCH + i, 3 * STEPS * BATCH, 2)) <= resumed
        assert not {k for k in resumed if k % 2 != i}
    # the files: the chief's alone, no worker's temporary folder left
    moved = {i: [Path(x) for x in (trace / f"worker{i}.moved").read_text().split("\n") if x] for i in range(2)}
    assert not [m for m in moved[1] if out in m.parents]               # worker 1 moved nothing into the run
    assert out / "student.keras" in moved[0] and run_dir / "learning_curve.json" in moved[0]
    assert (out / "student.keras").exists() and not (run_dir / "backup").exists()
    assert not [q for q in out.rglob("*") if "workertemp" in q.name]
    assert len(json.loads((run_dir / "learning_curve.json").read_text())) == 4     # start + 3 epochs, once each


def _savedmodel_teacher(path: Path, size: int = 32) -> Path:
    """A frozen SavedModel teacher as tfpose reads one: ``serving_default(images (B, S, S, 3) 0..255)`` ->
    ``{"heatmaps": (B, S/4, S/4, 17)}``."""
    from tfpose._keras import keras, tf

    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((size, size, 3)), keras.layers.AveragePooling2D(4),
                              keras.layers.Conv2D(17, 1, activation="sigmoid")])

    @tf.function(input_signature=[tf.TensorSpec([None, size, size, 3], tf.float32)])
    def serve(images):
        return {"heatmaps": model(images / 255.0)}
    tf.saved_model.save(model, str(path), signatures={"serving_default": serve})
    return path


@pytest.mark.slow
@pytest.mark.parametrize("views", [0, 1], ids=["online", "cached"])
def test_two_workers_distil_from_a_savedmodel_teacher_online_or_from_its_cached_views(synthetic_root, tmp_path,
                                                                                     views):
    """The teacher runs inside every worker's train step (views 0, the GPU recipe), or once, by the chief, into
    the view cache that both then read (views 1)."""
    out, trace = tmp_path / "run", tmp_path / "trace"
    trace.mkdir()
    teacher = _savedmodel_teacher(tmp_path / "teacher")
    args = _args(synthetic_root, out, "teacher.source=savedmodel", f"teacher.path={teacher}",
                 "teacher.output_key=heatmaps", "teacher.input_size=[32,32]", "teacher.sigma=1.0",
                 f"distill.teacher_views={views}", "distill.train.epochs=1", "distill.train.eval_every_epochs=0")
    assert _wait(_start(args, trace), trace) == [0, 0], _log(trace, 0) + _log(trace, 1)
    fits = [json.loads((trace / f"worker{i}.fit.json").read_text()) for i in range(2)]
    assert all(f["kd_loss"][0] > 0 and f["iterations"] == STEPS for f in fits)
    for a, b in zip(_weights(trace, 0), _weights(trace, 1)):
        np.testing.assert_array_equal(a, b)
    moved = [Path(x) for x in (trace / "worker1.moved").read_text().split("\n") if x]
    assert not [m for m in moved if out in m.parents]                   # the cache too is the chief's alone
    caches = sorted(out.glob("teacher_views_*"))
    assert len(caches) == views
    if views:
        from tfpose.distill.view_cache import open_view_cache

        assert open_view_cache(caches[0]) is not None
