"""Keras fit around the Distiller: optimiser and schedule, checkpoints that survive an interruption,
TensorBoard logs, validation AP with early stopping, a tf.distribute strategy and mixed precision.

On several workers (``multi_worker_mirrored``, ``TF_CONFIG``) every worker runs the same fit: each reads its own
part of every global batch (``tfpose.data.pipeline.Shard``), gradients are summed across all of them, and only the
chief writes (checkpoints, TensorBoard logs, and, in ``tfpose.pipeline``, learning curves and models); the
others write to ``workertemp_<i>`` folders that Keras removes. Every worker reads the chief's checkpoint to
resume, so the run folder must be on a file system that all of them see.
"""

from __future__ import annotations

import contextlib
import json
import re
import shutil
import sys
from pathlib import Path
from typing import Callable

import numpy as np

from tfpose._keras import keras, tf
from tfpose.artifacts import record_path, stale_reason, write_json
from tfpose.config import TrainConfig
from tfpose.data.pipeline import Shard
from tfpose.distill.distiller import Distiller
from tfpose.errors import InputError, TrainingDiverged
from tfpose.keras_io import save_keras


def learning_rate(cfg: TrainConfig, steps_per_epoch: int):
    total = max(1, cfg.epochs * steps_per_epoch)
    if cfg.schedule == "cosine":
        return keras.optimizers.schedules.CosineDecay(cfg.learning_rate, total, alpha=0.01)
    if cfg.schedule == "step":  # x0.1 at 2/3 and 6/7 of training, FPD's 90 and 120 of 140 epochs
        bounds = [int(total * 90 / 140), int(total * 120 / 140)]
        return keras.optimizers.schedules.PiecewiseConstantDecay(
            bounds, [cfg.learning_rate, cfg.learning_rate * 0.1, cfg.learning_rate * 0.01])
    return cfg.learning_rate


_MULTI_WORKER: list = []      # the process's one MultiWorkerMirroredStrategy


def make_strategy(name: str) -> tf.distribute.Strategy:
    """'default': the current (no-op) strategy; 'mirrored': every local GPU (or the CPU devices if none);
    'multi_worker_mirrored': across the workers that TF_CONFIG names, made once per process and before
    TensorFlow runs anything else (collective ops are configured when the runtime starts)."""
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        gpus = tf.config.list_logical_devices("GPU")
        devices = [d.name for d in (gpus or tf.config.list_logical_devices("CPU"))]
        return tf.distribute.MirroredStrategy(devices)
    if name == "multi_worker_mirrored":
        if not _MULTI_WORKER:
            _MULTI_WORKER.append(tf.distribute.MultiWorkerMirroredStrategy())
        return _MULTI_WORKER[0]
    raise ValueError(f"unknown strategy '{name}'")


def is_chief(strategy: str | tf.distribute.Strategy) -> bool:
    """Whether this process writes the run's files: always, but for the workers of a multi-worker run other than
    the chief (TF_CONFIG's task "chief", else worker 0)."""
    if isinstance(strategy, str):
        if strategy != "multi_worker_mirrored":
            return True
        strategy = make_strategy(strategy)
    return bool(strategy.extended.should_checkpoint)


def detached(model: keras.Model) -> keras.Model:
    """A copy of ``model`` with its weights, outside every strategy (call it outside ``strategy.scope()``): a
    multi-worker model predicts only in step with all the other workers, the copy on its own."""
    copy = keras.models.clone_model(model)
    copy.set_weights(model.get_weights())
    return copy


def completed_epochs(run_dir: str | Path) -> int:
    """The epochs that ``fit``'s checkpoint in ``run_dir`` holds (0: none), i.e. the epoch a resumed run starts at."""
    latest = tf.train.latest_checkpoint(str(Path(run_dir) / "backup" / "chief"))
    if latest is None:
        return 0
    return int(tf.train.load_checkpoint(latest).get_tensor("ckpt_saved_epoch/.ATTRIBUTES/VARIABLE_VALUE")) + 1


def discard_checkpoint(run_dir: str | Path) -> None:
    """Remove ``fit``'s checkpoint in ``run_dir``, which ``fit`` keeps: call it once the trained model is saved,
    so that a run killed while saving resumes from the checkpoint instead of starting over."""
    shutil.rmtree(Path(run_dir) / "backup", ignore_errors=True)


@contextlib.contextmanager
def input_errors():
    """Re-raise the InputError that an input pipeline's Python code raised (a corrupt image, say), which
    TensorFlow hands on as an OpError carrying its text, as that InputError."""
    try:
        yield
    except tf.errors.OpError as e:
        found = re.search(r"\bInputError: (.*?)(?:\n\s*Traceback|\n\s*\[\[|$)", e.message or "", re.S)
        if found is None:
            raise
        raise InputError(found[1].strip()) from None


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
    keeps the student that scored best on ``select_on``. ``local``: a ``detached`` copy of the student that is
    scored instead, with the student's weights (each worker of a multi-worker run scores its own copy: the same
    weights on the same val split, so that all of them stop early alike)."""

    def __init__(self, evaluate: Callable[[keras.Model], dict], every: int = 1, select_on: str = "AP",
                 local: keras.Model | None = None):
        super().__init__()
        self.evaluate, self.every, self.select_on, self.local = evaluate, max(1, int(every)), select_on, local
        self.best, self.best_weights = -np.inf, None
        self.last = {"AP": float("nan"), "mean_OKS": float("nan")}

    def on_epoch_end(self, epoch, logs=None):
        if (epoch + 1) % self.every == 0:
            student = self.model.student
            if self.local is not None:
                self.local.set_weights(student.get_weights())
                student = self.local
            metrics = self.evaluate(student)
            self.last = {key: float(metrics.get(key, float("nan"))) for key in self.last}
            if self.last[self.select_on] > self.best:
                self.best, self.best_weights = self.last[self.select_on], self.model.student.get_weights()
        if logs is not None:
            logs.update({f"val_{key}": value for key, value in self.last.items()})


def fit(distiller: Distiller, train_data: tf.data.Dataset | Callable[[Shard], tf.data.Dataset],
        val_data: tf.data.Dataset | None, cfg: TrainConfig, run_dir: str | Path, steps_per_epoch: int,
        evaluate_ap: Callable[[keras.Model], dict] | None = None) -> keras.callbacks.History:
    """Train ``distiller.student`` for ``cfg.epochs``; an interrupted run resumes from its last epoch.

    ``train_data``: a function ``(shard=Shard) -> endless tf.data stream`` (``build_dataset`` and its kin with
    every argument but ``shard`` bound): each worker's input pipeline then reads its part of every global batch, and a
    resumed run reads the stream from the batch where it stopped, so it ends where an uninterrupted run would.
    Or a ``tf.data.Dataset``, which tf.distribute shards by itself, and which a resumed run reads from its start.
    Compile under ``distiller.distribute_strategy`` (build the distiller inside ``make_strategy(...).scope()``).
    ``evaluate_ap`` (student -> {"AP", "mean_OKS"}) with ``cfg.eval_every_epochs`` logs both;
    ``cfg.early_stopping_patience`` stops on ``cfg.select_on`` and restores the best student by it."""
    run_dir = Path(run_dir)
    strategy = distiller.distribute_strategy
    with strategy.scope():
        optimizer = keras.optimizers.Adam(learning_rate(cfg, steps_per_epoch))
        if any(layer.dtype_policy.name == "mixed_float16" for layer in distiller.student.layers):
            optimizer = keras.mixed_precision.LossScaleOptimizer(optimizer)   # float16 gradients underflow
        distiller.compile(optimizer=optimizer)
    callbacks = [
        # kept after training: the caller discards it (discard_checkpoint) once the trained model is saved
        keras.callbacks.BackupAndRestore(str(run_dir / "backup"), save_freq="epoch", delete_checkpoint=False),
        keras.callbacks.TensorBoard(str(run_dir / "logs"), update_freq="epoch", profile_batch=0,
                                    write_graph=False),
        keras.callbacks.TerminateOnNaN(),
    ]
    ap = None
    if evaluate_ap is not None and cfg.eval_every_epochs > 0:
        # made outside the strategy's scope: a multi-worker student is scored through a plain copy
        local = detached(distiller.student) if strategy.extended._in_multi_worker_mode() else None
        ap = ValidationAP(evaluate_ap, cfg.eval_every_epochs, cfg.select_on, local)
        callbacks.insert(0, ap)   # before TensorBoard and EarlyStopping, which read val_AP
        if cfg.early_stopping_patience > 0:
            callbacks.append(keras.callbacks.EarlyStopping(
                f"val_{cfg.select_on}", mode="max", patience=cfg.early_stopping_patience * cfg.eval_every_epochs))
    steps = cfg.steps_per_epoch or steps_per_epoch
    if callable(train_data):
        first_batch = completed_epochs(run_dir) * steps

        def pipeline(context: tf.distribute.InputContext) -> tf.data.Dataset:
            return train_data(shard=Shard(context.input_pipeline_id, context.num_input_pipelines, first_batch,
                                          context.get_per_replica_batch_size(cfg.batch_size)))
        train_data, endless = strategy.distribute_datasets_from_function(pipeline), True
    else:
        endless = train_data.cardinality() == tf.data.INFINITE_CARDINALITY   # e.g. draws from the teacher-view cache
        if cfg.steps_per_epoch:
            train_data = train_data.repeat()
    with input_errors():
        history = distiller.fit(train_data, validation_data=val_data, epochs=cfg.epochs,
                                steps_per_epoch=steps if endless or cfg.steps_per_epoch else None,
                                callbacks=callbacks, verbose=1 if sys.stdout.isatty() else 2)
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


# ---------------------------------------------------------------- a training stage's run folder and its result


def reuse(path: Path, record: dict) -> bool:
    """Whether the stage may return the artifact at ``path`` as it is; says why, either way."""
    reason = stale_reason(path, record)
    if reason is None:
        print(f"    reusing {path} (made by the same config and data)")
    elif path.exists():
        print(f"    {reason}: training again")
    return reason is None


def claim_run_dir(run_dir: Path, record: dict, strategy: str) -> None:
    """Keep ``run_dir``'s checkpoint and learning curve only when ``record`` made them: a resumed run continues
    the same training, never another config's (which is removed). The chief alone writes."""
    if not is_chief(strategy):
        return
    reason = stale_reason(run_dir, record)
    if reason is not None and run_dir.exists():
        print(f"    {reason}: its checkpoint and learning curve are removed")
        shutil.rmtree(run_dir)
    write_json(record_path(run_dir), record)


def save_trained(model, path: Path, record: dict, run_dir: Path, strategy: str) -> None:
    """Save a trained model with its record, then drop its run's checkpoint: until the model is in place the
    checkpoint still resumes the run, so a kill while saving loses nothing. The chief alone writes."""
    if is_chief(strategy):
        save_keras(model, path, record)
        discard_checkpoint(run_dir)


def dev_val_scorer(evaluate: Callable, val_sets: dict, run_dir: Path, run_name: str, steps_between: int,
                   steps_per_epoch: int, write: bool = True):
    """``student -> metrics on the val split`` (``val_sets["val"]``), which also scores every other dev-val set of
    ``val_sets`` (``evaluate(model, name, dataset, ap_resamples=...) -> metrics``) and appends all of them
    to ``run_dir/learning_curve.json`` (one point per call, ``steps_between`` training steps after the last one,
    or at ``step``) and ``learning_curve.png`` (mean OKS against steps); ``write=False`` (a multi-worker run's
    other workers) keeps the points in memory only. A resumed run keeps the points it had.
    The points skip AP's bootstrap interval, which would cost ten times the rest."""
    from tfpose.visualize import plot_learning_curve

    path = run_dir / "learning_curve.json"
    points = json.loads(path.read_text()) if path.is_file() else []

    def score(model, step: int | None = None) -> dict:
        metrics = {name: evaluate(model, f"{run_name} {name}", dataset, ap_resamples=0)
                   for name, dataset in val_sets.items()}
        if step is None:
            step = (points[-1]["step"] if points else 0) + steps_between
        points.append({"step": step, "epoch": round(step / max(1, steps_per_epoch), 3),
                       **{name: {k: m[k] for k in ("AP", "mean_OKS", "PCK@0.2")} for name, m in metrics.items()}})
        if write:
            write_json(path, points)
            plot_learning_curve({name: [(p["step"], p[name]["mean_OKS"]) for p in points] for name in val_sets},
                                "dev-val mean OKS", run_dir / "learning_curve.png")
        return metrics["val"]
    score.points = points
    return score


# ---------------------------------------------------------------- what a training stage reads


def training_data(cfg, data, out: Path, teacher, train_cfg: TrainConfig, distill_cfg=None):
    """(training stream, validation batches, steps per epoch) of a training stage of the ``PipelineConfig`` ``cfg``
    on ``data`` (a ``RunData``): crops of every source, the SavedModel teacher's square views (cached in ``out`` or
    ``distill.teacher_cache`` when ``distill.teacher_views``), or a video student's tracks."""
    from functools import partial

    from tfpose.data.pipeline import build_dataset, build_track_dataset
    from tfpose.distill.teachers import SavedModelTeacher, TeacherViewSampler, build_teacher_view_dataset

    batch, field_name = train_cfg.batch_size, f"{'teacher' if distill_cfg is None else 'distill'}.train.batch_size"
    if distill_cfg is not None and distill_cfg.method == "dkd":
        tracks = data.tracks["train"]
        if batch > len(tracks["frames"]):
            raise InputError(f"a batch of {batch} is larger than the {len(tracks['frames'])} training tracks",
                             field=field_name)
        return (build_track_dataset(tracks, batch, training=True, seed=cfg.seed),
                build_track_dataset(data.tracks["val"], batch, training=False),
                train_cfg.steps_per_epoch or max(1, len(tracks["frames"]) // batch))
    # boxes without keypoints: every GT weight is 0, the teacher alone teaches
    with_unlabelled = teacher is not None and distill_cfg is not None and distill_cfg.unlabelled
    train_sampler, draw = data.training_sampler(with_unlabelled, augment=True)
    if not len(train_sampler):
        raise InputError("no training person with labelled keypoints in any source (empty dataset)",
                         path=data.train.annotation_file)
    if batch > len(train_sampler):
        raise InputError(f"a batch of {batch} is larger than the {len(train_sampler)} training persons",
                         field=field_name)
    val_sampler = data.sampler(data.val, augment=False)
    print(f"    {len(train_sampler)} training persons from {len(data.sources)} source(s)")
    steps = train_cfg.steps_per_epoch or max(1, len(train_sampler) // batch)
    if not isinstance(teacher, SavedModelTeacher):
        return (partial(build_dataset, train_sampler, batch, training=True, seed=cfg.seed, probabilities=draw),
                build_dataset(val_sampler, batch, training=False), steps)
    val_ds = build_teacher_view_dataset(TeacherViewSampler(val_sampler, teacher.input_size), batch, training=False)
    if distill_cfg is None or distill_cfg.teacher_views <= 0:
        return (partial(build_teacher_view_dataset, TeacherViewSampler(train_sampler, teacher.input_size), batch,
                        training=True, seed=cfg.seed, probabilities=draw), val_ds, steps)
    from tfpose.distill.view_cache import cached_teacher_views, cached_view_dataset

    cache = cached_teacher_views(cfg, out, teacher, train_sampler, distill_cfg.teacher_views,
                                 chief=is_chief(cfg.distill.train.strategy))
    # training data: (shard=...) -> stream, so that fit hands each worker its part and a resumed run its place
    return (partial(cached_view_dataset, cache, data.codec, data.skeleton.flip_index, draw, batch,
                    data.config.augment.colour, cfg.seed, augment=distill_cfg.view_augment), val_ds,
            train_cfg.steps_per_epoch or max(1, len(cache) // batch))
