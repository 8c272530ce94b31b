"""Training at scale: a tf.distribute strategy, mixed precision with a float32 head, validation AP and early stopping."""

import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import TINY_INPUT, TINY_STUDENT

ROOT = Path(__file__).resolve().parents[1]


def test_mirrored_strategy_over_two_logical_cpus_trains_the_student(tmp_path):
    """Logical devices must exist before TensorFlow initialises, hence a fresh process."""
    script = textwrap.dedent(f"""
        import json, numpy as np
        from tfpose._keras import keras, tf
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
        from tfpose.config import TrainConfig
        from tfpose.distill.distiller import Distiller
        from tfpose.models import build_model
        from tfpose.train import fit, make_strategy
        strategy = make_strategy("mirrored")
        keras.utils.set_random_seed(0)
        with strategy.scope():
            teacher = build_model("peleenet_duc", 17, {TINY_INPUT}, **{TINY_STUDENT})
            student = build_model("peleenet_duc", 17, {TINY_INPUT}, **{TINY_STUDENT})
            distiller = Distiller(student, teacher, alpha=0.5)
        before = [w.copy() for w in teacher.get_weights()]
        rng = np.random.default_rng(0)
        x = rng.uniform(0, 255, (8, 64, 64, 3)).astype(np.float32)
        y = {{"heatmaps": rng.uniform(0, 1, (8, 16, 16, 17)).astype(np.float32), "weights": np.ones((8, 17), np.float32)}}
        ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(4, drop_remainder=True)
        h = fit(distiller, ds, None, TrainConfig(epochs=2, batch_size=4, schedule="constant"), r"{tmp_path}", 2)
        print(json.dumps({{"replicas": strategy.num_replicas_in_sync, "loss": h.history["loss"],
                          "teacher_same": all(np.array_equal(a, b) for a, b in zip(before, teacher.get_weights()))}}))
    """)
    out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["replicas"] == 2
    assert all(np.isfinite(result["loss"])) and result["teacher_same"]


def test_mixed_precision_keeps_the_last_heatmap_conv_in_float32():
    from tfpose._keras import keras
    from tfpose.models import build_model
    from tfpose.train import float32_head, precision

    with precision("mixed_bfloat16"):
        model = float32_head(build_model("peleenet_duc", 17, TINY_INPUT, **TINY_STUDENT))
    assert keras.mixed_precision.global_policy().name == "float32"      # restored
    assert model.layers[-1].compute_dtype == "float32"
    assert model.layers[-2].compute_dtype == "bfloat16"
    out = model(np.zeros((1, *TINY_INPUT[::-1], 3), np.float32))
    assert out.dtype.name == "float32"


@pytest.mark.parametrize("select_on, aps, oks, kept", [
    ("AP", [0.5, 0.3, 0.2, 0.1, 0.0, 0.0], [0.1, 0.9, 0.1, 0.1, 0.1, 0.1], 0),
    # AP stuck at 0, as for a student early in training: mean OKS still finds the best one
    ("mean_OKS", [0.0] * 6, [0.2, 0.4, 0.3, 0.1, 0.1, 0.1], 1),
])
def test_validation_callback_logs_ap_and_oks_and_early_stopping_restores_the_best(tmp_path, select_on, aps, oks,
                                                                                  kept):
    from tfpose._keras import keras, tf
    from tfpose.config import TrainConfig
    from tfpose.distill.distiller import Distiller
    from tfpose.models import build_model
    from tfpose.train import fit

    keras.utils.set_random_seed(0)
    student = build_model("peleenet_duc", 17, TINY_INPUT, **TINY_STUDENT)
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 255, (4, 64, 64, 3)).astype(np.float32)
    y = {"heatmaps": rng.uniform(0, 1, (4, 16, 16, 17)).astype(np.float32), "weights": np.ones((4, 17), np.float32)}
    ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(4)
    scores = iter(zip(aps, oks))
    snapshots = []

    def evaluate(model):
        snapshots.append([w.copy() for w in model.get_weights()])
        ap, mean_oks = next(scores)
        return {"AP": ap, "mean_OKS": mean_oks}

    cfg = TrainConfig(epochs=6, batch_size=4, schedule="constant", eval_every_epochs=1, early_stopping_patience=2,
                      select_on=select_on)
    history = fit(Distiller(student), ds, None, cfg, tmp_path, 1, evaluate_ap=evaluate)
    evaluations = kept + 3                                          # stopped after 2 evaluations without a new best
    assert history.history["val_AP"] == aps[:evaluations]
    assert history.history["val_mean_OKS"] == oks[:evaluations]
    for a, b in zip(snapshots[kept], student.get_weights()):
        np.testing.assert_array_equal(a, b)


def _random_batches():
    """Two batches of 4 random crops with random targets: enough for fit to take steps."""
    from tfpose._keras import tf

    rng = np.random.default_rng(0)
    x = rng.uniform(0, 255, (8, *TINY_INPUT[::-1], 3)).astype(np.float32)
    y = {"heatmaps": rng.uniform(0, 1, (8, TINY_INPUT[1] // 4, TINY_INPUT[0] // 4, 17)).astype(np.float32),
         "weights": np.ones((8, 17), np.float32)}
    return tf.data.Dataset.from_tensor_slices((x, y)).batch(4, drop_remainder=True)


@pytest.mark.slow
def test_an_interrupted_fit_resumes_at_its_last_completed_epoch(tmp_path):
    from tfpose._keras import keras
    from tfpose.config import TrainConfig
    from tfpose.distill.distiller import Distiller
    from tfpose.models import build_model
    from tfpose.train import fit

    ds = _random_batches()
    cfg = TrainConfig(epochs=3, batch_size=4, schedule="constant")

    class Crash(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            if epoch == 2:
                raise KeyboardInterrupt

    def distiller():
        keras.utils.set_random_seed(0)
        return Distiller(build_model("peleenet_duc", 17, TINY_INPUT, **TINY_STUDENT), None, alpha=0.0)

    first = distiller()
    original_fit = first.fit
    first.fit = lambda *a, callbacks=(), **k: original_fit(*a, callbacks=[*callbacks, Crash()], **k)
    with pytest.raises(KeyboardInterrupt):
        fit(first, ds, None, cfg, tmp_path, 2)
    after_two_epochs = [w.copy() for w in first.student.get_weights()]

    second = distiller()
    history = fit(second, ds, None, cfg, tmp_path, 2)
    assert len(history.history["loss"]) == 1                  # only the third epoch ran again
    assert int(second.optimizer.iterations.numpy()) == 6      # 2 steps x 3 epochs: the optimizer state came back
    assert not all(np.array_equal(a, b) for a, b in zip(after_two_epochs, second.student.get_weights()))
    # the checkpoint outlives training (the caller drops it once the model is saved: test_robustness)
    assert list((tmp_path / "backup").rglob("*ckpt*"))


def test_a_run_whose_loss_turns_nan_fails_naming_the_stage_and_step(tmp_path):
    from tfpose.config import TrainConfig
    from tfpose.distill.distiller import Distiller
    from tfpose.errors import TrainingDiverged
    from tfpose.models import build_model
    from tfpose.train import fit

    ds = _random_batches()
    student = build_model("peleenet_duc", 17, TINY_INPUT, **TINY_STUDENT)
    with pytest.raises(TrainingDiverged, match=r"distill_run: training diverged .*step \d+"):
        fit(Distiller(student, None, alpha=0.0), ds, None,
            TrainConfig(epochs=2, batch_size=4, learning_rate=float("inf"), schedule="constant"),
            tmp_path / "distill_run", 2)
    # a healthy run passes the same check
    fit(Distiller(build_model("peleenet_duc", 17, TINY_INPUT, **TINY_STUDENT), None, alpha=0.0), ds, None,
        TrainConfig(epochs=1, batch_size=4, schedule="constant"), tmp_path / "ok_run", 2)


class _NoiseSampler:
    """A CropSampler's interface without images: sample (index, seed) is noise decided by both, so the weights
    a run ends with depend on which samples it drew in which order."""

    def __init__(self, persons: int):
        from tfpose.codec import HeatmapCodec
        from tfpose.skeleton import COCO17

        self.persons, self.codec, self.flip_index = persons, HeatmapCodec(TINY_INPUT, 4, 2.0), COCO17.flip_index

    def __len__(self):
        return self.persons

    def sample(self, index, seed=None):
        from types import SimpleNamespace

        rng = np.random.default_rng([index, seed or 0])
        w, h = self.codec.heatmap_size
        return SimpleNamespace(crop=rng.uniform(0, 255, (*TINY_INPUT[::-1], 3)),
                               heatmaps=rng.uniform(0, 1, (h, w, 17)).astype(np.float32),
                               weights=np.ones(17, np.float32))


def _tiny_student():
    """Three convolutions with BatchNorm, 64 x 64 -> 16 x 16 x 17: quick to trace, and stateful enough (Adam,
    moving statistics) that a resumed run must restore everything to agree."""
    from tfpose._keras import keras

    x = inputs = keras.Input((*TINY_INPUT[::-1], 3))
    x = keras.layers.Rescaling(1 / 255)(x)
    for _ in range(2):
        x = keras.layers.Conv2D(8, 3, strides=2, padding="same", use_bias=False)(x)
        x = keras.layers.ReLU()(keras.layers.BatchNormalization()(x))
    return keras.Model(inputs, keras.layers.Conv2D(17, 1)(x))


def test_a_resumed_fit_continues_the_data_order_and_ends_with_the_uninterrupted_weights(tmp_path):
    """Issue 17: the resumed run reads the training stream from the batch where it stopped (epoch 3 of the
    stream, not epoch 1 again), so it ends with the weights of a run that never stopped."""
    import functools

    from tfpose._keras import keras
    from tfpose.config import TrainConfig
    from tfpose.data.pipeline import Shard, build_dataset
    from tfpose.distill.distiller import Distiller
    from tfpose.train import completed_epochs, fit

    data = functools.partial(build_dataset, _NoiseSampler(12), 4, True, 5)
    cfg = TrainConfig(epochs=3, batch_size=4, schedule="cosine")

    def distiller():
        keras.utils.set_random_seed(0)
        return Distiller(_tiny_student(), None, alpha=0.0)

    class Crash(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            if epoch == 2:
                raise KeyboardInterrupt

    whole = distiller()
    assert len(fit(whole, data, None, cfg, tmp_path / "whole", 3).history["loss"]) == 3
    stopped = distiller()
    original_fit = stopped.fit
    stopped.fit = lambda *a, callbacks=(), **k: original_fit(*a, callbacks=[*callbacks, Crash()], **k)
    with pytest.raises(KeyboardInterrupt):
        fit(stopped, data, None, cfg, tmp_path / "resumed", 3)
    assert completed_epochs(tmp_path / "resumed") == 2
    shutil.copytree(tmp_path / "resumed", tmp_path / "from_the_start")
    resumed = distiller()
    assert len(fit(resumed, data, None, cfg, tmp_path / "resumed", 3).history["loss"]) == 1
    assert int(resumed.optimizer.iterations.numpy()) == 9

    def gap(run) -> float:
        return max(float(np.abs(a - b).max()) for a, b in zip(whole.student.get_weights(), run.student.get_weights()))
    assert gap(resumed) <= 1e-6                  # measured: 0.0
    # the control: the same checkpoint resumed on the stream read from its first batch (as before) ends elsewhere
    control = distiller()
    fit(control, data(shard=Shard()), None, cfg, tmp_path / "from_the_start", 3)
    assert gap(control) > 1e-4                   # measured: 6e-4, in an epoch whose cosine learning rate is small


def test_mirrored_strategy_trains_on_the_stream_in_per_replica_batches(tmp_path):
    """fit hands each of two replicas half of every global batch of a (shard=...) stream; a fresh process, as
    logical devices must exist before TensorFlow initialises."""
    script = textwrap.dedent(f"""
        import functools, json
        from tfpose._keras import keras, tf
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
        from tests.test_train import _NoiseSampler, _tiny_student
        from tfpose.config import TrainConfig
        from tfpose.data.pipeline import build_dataset
        from tfpose.distill.distiller import Distiller
        from tfpose.train import fit, make_strategy
        strategy = make_strategy("mirrored")
        shards = []
        def data(shard):
            shards.append(shard)
            return build_dataset(_NoiseSampler(8), 4, True, 0, shard=shard)
        keras.utils.set_random_seed(0)
        with strategy.scope():
            distiller = Distiller(_tiny_student(), None, alpha=0.0)
        h = fit(distiller, data, None, TrainConfig(epochs=2, batch_size=4, schedule="constant"), r"{tmp_path}", 2)
        print(json.dumps({{"replicas": strategy.num_replicas_in_sync, "loss": h.history["loss"],
                          "iterations": int(distiller.optimizer.iterations.numpy()),
                          "shards": [[s.index, s.count, s.first_batch, s.batch] for s in shards]}}))
    """)
    out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["replicas"] == 2 and result["iterations"] == 4 and all(np.isfinite(result["loss"]))
    assert result["shards"] == [[0, 1, 0, 2]]      # one input pipeline, batches of 4 / 2 replicas
