"""Keras fit around the Distiller: optimiser and schedule, checkpoints that survive an interruption,
TensorBoard logs and progress bars."""

from __future__ import annotations

import sys
from pathlib import Path

from tfpose._keras import keras, tf
from tfpose.config import TrainConfig
from tfpose.distill.distiller import Distiller


def learning_rate(cfg: TrainConfig, steps_per_epoch: int):
    total = max(1, cfg.epochs * steps_per_epoch)
    if cfg.schedule == "cosine":
        return keras.optimizers.schedules.CosineDecay(cfg.learning_rate, total, alpha=0.01)
    if cfg.schedule == "step":  # x0.1 at 2/3 and 6/7 of training, FPD's 90 and 120 of 140 epochs
        bounds = [int(total * 90 / 140), int(total * 120 / 140)]
        return keras.optimizers.schedules.PiecewiseConstantDecay(
            bounds, [cfg.learning_rate, cfg.learning_rate * 0.1, cfg.learning_rate * 0.01])
    return cfg.learning_rate


def fit(distiller: Distiller, train_data: tf.data.Dataset, val_data: tf.data.Dataset | None, cfg: TrainConfig,
        run_dir: str | Path, steps_per_epoch: int) -> keras.callbacks.History:
    """Train ``distiller.student`` for ``cfg.epochs``; an interrupted run resumes from its last epoch."""
    run_dir = Path(run_dir)
    distiller.compile(optimizer=keras.optimizers.Adam(learning_rate(cfg, steps_per_epoch)))
    callbacks = [
        keras.callbacks.BackupAndRestore(str(run_dir / "backup"), save_freq="epoch", delete_checkpoint=True),
        keras.callbacks.TensorBoard(str(run_dir / "logs"), update_freq="epoch", profile_batch=0,
                                    write_graph=False),
        keras.callbacks.TerminateOnNaN(),
    ]
    if cfg.steps_per_epoch:
        train_data = train_data.repeat()
    return distiller.fit(train_data, validation_data=val_data, epochs=cfg.epochs,
                         steps_per_epoch=cfg.steps_per_epoch or None, callbacks=callbacks,
                         verbose=1 if sys.stdout.isatty() else 2)
