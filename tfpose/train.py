"""Keras fit around the Distiller: optimiser and schedule, checkpoints that survive an interruption,
TensorBoard logs, validation AP with early stopping, a tf.distribute strategy and mixed precision."""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path
from typing import Callable

import numpy as np

from tfpose._keras import keras, tf
from tfpose.config import TrainConfig
from tfpose.distill.distiller import Distiller
from tfpose.errors import TrainingDiverged


def learning_rate(cfg: TrainConfig, steps_per_epoch: int):
    total = max(1, cfg.epochs * steps_per_epoch)
    if cfg.schedule == "cosine":
        return keras.optimizers.schedules.CosineDecay(cfg.learning_rate, total, alpha=0.01)
    if cfg.schedule == "step":  # x0.1 at 2/3 and 6/7 of training, FPD's 90 and 120 of 140 epochs
        bounds = [int(total * 90 / 140), int(total * 120 / 140)]
        return keras.optimizers.schedules.PiecewiseConstantDecay(
            bounds, [cfg.learning_rate, cfg.learning_rate * 0.1, cfg.learning_rate * 0.01])
    return cfg.learning_rate


def make_strategy(name: str) -> tf.distribute.Strategy:
    """'default': the current (no-op) strategy; 'mirrored': every local GPU (or the CPU devices if none);
    'multi_worker_mirrored': across the workers that TF_CONFIG names."""
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        gpus = tf.config.list_logical_devices("GPU")
        devices = [d.name for d in (gpus or tf.config.list_logical_devices("CPU"))]
        return tf.distribute.MirroredStrategy(devices)
    if name == "multi_worker_mirrored":
        return tf.distribute.MultiWorkerMirroredStrategy()
    raise ValueError(f"unknown strategy '{name}'")


@contextlib.contextmanager
def precision(policy: str):
    """Build models under a mixed-precision policy, then restore the global one."""
    before = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(policy)
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(before)


def float32_head(model: keras.Model) -> keras.Model:
    """A copy of a mixed-precision functional model whose last layer (the heatmap conv) computes in float32, with
    the same weights: small heatmap values and the loss keep float32's resolution."""
    last = model.layers[-1]

    def clone(layer):
        config = layer.get_config()
        if layer is last:
            config["dtype"] = "float32"
        return layer.__class__.from_config(config)

    copy = keras.models.clone_model(model, clone_function=clone)
    copy.set_weights(model.get_weights())
    return copy


class ValidationAP(keras.callbacks.Callback):
    """Every ``every`` epochs: ``evaluate(student)`` (e.g. tfpose.evaluation on the val split: a dict with "AP" and
    "mean_OKS"), logged as ``val_AP`` and ``val_mean_OKS`` (history, TensorBoard, EarlyStopping); ``best_weights``
    keeps the student that scored best on ``select_on``."""

    def __init__(self, evaluate: Callable[[keras.Model], dict], every: int = 1, select_on: str = "AP"):
        super().__init__()
        self.evaluate, self.every, self.select_on = evaluate, max(1, int(every)), select_on
        self.best, self.best_weights = -np.inf, None
        self.last = {"AP": float("nan"), "mean_OKS": float("nan")}

    def on_epoch_end(self, epoch, logs=None):
        if (epoch + 1) % self.every == 0:
            metrics = self.evaluate(self.model.student)
            self.last = {key: float(metrics.get(key, float("nan"))) for key in self.last}
            if self.last[self.select_on] > self.best:
                self.best, self.best_weights = self.last[self.select_on], self.model.student.get_weights()
        if logs is not None:
            logs.update({f"val_{key}": value for key, value in self.last.items()})


def fit(distiller: Distiller, train_data: tf.data.Dataset, val_data: tf.data.Dataset | None, cfg: TrainConfig,
        run_dir: str | Path, steps_per_epoch: int, evaluate_ap: Callable[[keras.Model], dict] | None = None
        ) -> keras.callbacks.History:
    """Train ``distiller.student`` for ``cfg.epochs``; an interrupted run resumes from its last epoch.

    Compile under ``distiller.distribute_strategy`` (build the distiller inside ``make_strategy(...).scope()``).
    ``evaluate_ap`` (student -> {"AP", "mean_OKS"}) with ``cfg.eval_every_epochs`` logs both;
    ``cfg.early_stopping_patience`` stops on ``cfg.select_on`` and restores the best student by it."""
    run_dir = Path(run_dir)
    with distiller.distribute_strategy.scope():
        optimizer = keras.optimizers.Adam(learning_rate(cfg, steps_per_epoch))
        if any(layer.dtype_policy.name == "mixed_float16" for layer in distiller.student.layers):
            optimizer = keras.mixed_precision.LossScaleOptimizer(optimizer)   # float16 gradients underflow
        distiller.compile(optimizer=optimizer)
    callbacks = [
        keras.callbacks.BackupAndRestore(str(run_dir / "backup"), save_freq="epoch", delete_checkpoint=True),
        keras.callbacks.TensorBoard(str(run_dir / "logs"), update_freq="epoch", profile_batch=0,
                                    write_graph=False),
        keras.callbacks.TerminateOnNaN(),
    ]
    ap = None
    if evaluate_ap is not None and cfg.eval_every_epochs > 0:
        ap = ValidationAP(evaluate_ap, cfg.eval_every_epochs, cfg.select_on)
        callbacks.insert(0, ap)   # before TensorBoard and EarlyStopping, which read val_AP
        if cfg.early_stopping_patience > 0:
            callbacks.append(keras.callbacks.EarlyStopping(
                f"val_{cfg.select_on}", mode="max", patience=cfg.early_stopping_patience * cfg.eval_every_epochs))
    endless = train_data.cardinality() == tf.data.INFINITE_CARDINALITY    # e.g. draws from the teacher-view cache
    if cfg.steps_per_epoch:
        train_data = train_data.repeat()
    history = distiller.fit(train_data, validation_data=val_data, epochs=cfg.epochs,
                            steps_per_epoch=(cfg.steps_per_epoch or steps_per_epoch) if endless or cfg.steps_per_epoch
                            else None, callbacks=callbacks,
                            verbose=1 if sys.stdout.isatty() else 2)
    check_finite(distiller, history, run_dir.name)
    if ap is not None and ap.best_weights is not None and cfg.early_stopping_patience > 0:
        distiller.student.set_weights(ap.best_weights)
    return history


def check_finite(distiller: Distiller, history: keras.callbacks.History, stage: str) -> None:
    """Raise TrainingDiverged, naming the stage and the step, when a loss or a student weight is not finite
    (TerminateOnNaN stops such a run, but fit returns normally and the student would be saved)."""
    losses = history.history.get("loss", [])
    bad_epoch = next((i for i, v in enumerate(losses) if not np.isfinite(v)), None)
    bad_weights = [w.name for w in distiller.student.weights if not np.isfinite(w.numpy()).all()]
    if bad_epoch is None and not bad_weights:
        return
    where = f"epoch {bad_epoch + 1}" if bad_epoch is not None else "the end"
    raise TrainingDiverged(f"{stage}: training diverged at {where} (step {int(distiller.step.numpy())}): "
                           + (f"loss {losses[bad_epoch]}" if bad_epoch is not None else
                              f"non-finite weights in {', '.join(bad_weights[:3])}")
                           + "; nothing was saved. Lower the learning rate or check the config's weights")
