"""The whole job, stage by stage: data -> teacher -> distillation -> int8 export -> on-device validation.

Each stage prints one line when it starts and ends, writes its artifact atomically into the run folder with a
record of what made it (``<artifact>.digest.json``: a digest per config section and of the input data), and is
skipped when that artifact is there with the same record, so an interrupted run picks up where it stopped
(training itself resumes from its last epoch); a changed config says which section changed and trains again.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import yaml

from tfpose.artifacts import (data_state, remove_stale_temporaries, student_record, teacher_record, write_json,
                              write_text)
from tfpose.codec import HeatmapCodec
from tfpose.config import PipelineConfig, ValidateConfig
from tfpose.data.coco import CocoDataset, ImageStore
from tfpose.data.samples import CropSampler
from tfpose.data.sources import TrainingSource, load_datasets, training_persons
from tfpose.errors import InputError
from tfpose.keras_io import load_keras
from tfpose.report import build_summary, print_metrics, set_slug, summary_figures, summary_markdown
from tfpose.skeleton import Skeleton, get_skeleton


@dataclass
class Context:
    cfg: PipelineConfig
    out: Path
    codec: HeatmapCodec
    skeleton: Skeleton
    train: CocoDataset | None = None
    val: CocoDataset | None = None
    sources: list[TrainingSource] = field(default_factory=list)   # every training dataset, the main split first
    val_sets: dict[str, CocoDataset] = field(default_factory=dict)   # every dev-val set, "val" first
    images: ImageStore = field(default_factory=ImageStore)
    timings: dict = field(default_factory=dict)
    summary: dict = field(default_factory=dict)

    def sampler(self, dataset: CocoDataset, augment: bool) -> CropSampler:
        persons = dataset.labelled(self.cfg.data.min_keypoints)
        if not persons:
            raise InputError("no annotation with enough labelled keypoints (empty dataset)",
                             path=dataset.annotation_file, field="annotations[*].keypoints")
        return CropSampler(persons, self.codec, self.skeleton.flip_index, self.cfg.data.padding,
                           self.cfg.data.augment if augment else None, self.images)

    def training_sampler(self, with_unlabelled: bool, augment: bool) -> tuple[CropSampler, np.ndarray]:
        """Every training person of every source (``training_persons``) as one sampler, and the (N,) probability
        of drawing each."""
        persons, draw = training_persons(self.sources, self.cfg.data.min_keypoints, with_unlabelled)
        return CropSampler(persons, self.codec, self.skeleton.flip_index, self.cfg.data.padding,
                           self.cfg.data.augment if augment else None, self.images), draw

    def data_state(self) -> dict:
        """``tfpose.artifacts.data_state`` of every training source and dev-val set; the data must be loaded."""
        return data_state(self.cfg.data, [s.dataset for s in self.sources] + list(self.val_sets.values()))

    def evaluate(self, model, name: str, dataset: CocoDataset | None = None, ap_resamples: int = 200) -> dict:
        """``tfpose.distill.teachers.evaluate_model`` of a Keras model or a SavedModel teacher on ``dataset`` (the
        val split), printed as ``name``; ``ap_resamples``: see ``score_predictions``."""
        from tfpose.distill.teachers import evaluate_model

        metrics = evaluate_model(model, self.val if dataset is None else dataset, self.codec, self.skeleton,
                                 self.cfg.data.padding, self.images, ap_resamples)
        print_metrics(name, metrics)
        return metrics

    def finetune_data(self, teacher):
        """The fine-tuning batches of pruning and QAT (``tfpose.export.finetune_data``): every training source,
        with its unlabelled persons when a teacher guides and ``distill.unlabelled``."""
        from tfpose.export import finetune_data

        unlabelled = teacher is not None and self.cfg.distill.unlabelled
        return finetune_data(self.cfg, self.out, *self.training_sampler(unlabelled, augment=True), teacher)


def load_data(ctx: Context) -> None:
    """The data stage (``tfpose.data.sources.load_datasets``) into the run's Context."""
    ctx.sources, ctx.val_sets = load_datasets(ctx.cfg.data, ctx.skeleton.num_keypoints)
    ctx.train, ctx.val = ctx.sources[0].dataset, ctx.val_sets["val"]


def make_context(cfg: PipelineConfig, out: str | Path) -> Context:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if "TF_CONFIG" not in os.environ:     # a pid says nothing about the temporaries of another host's worker
        for path in remove_stale_temporaries(out):
            print(f"    removed {path}, left by a killed run")
    elif "multi_worker_mirrored" in (cfg.teacher.train.strategy, cfg.distill.train.strategy):
        from tfpose.train import make_strategy

        make_strategy("multi_worker_mirrored")   # before any teacher or model: it configures TensorFlow's start
    c = cfg.codec
    return Context(cfg, out, HeatmapCodec(tuple(c.input_size), c.stride, c.sigma, c.refine, c.peak_blur),
                   get_skeleton(cfg.skeleton))


class stage:
    """``with stage(ctx, "teacher"):`` prints a line per stage and records its wall time."""

    def __init__(self, ctx: Context, name: str):
        self.ctx, self.name = ctx, name

    def __enter__(self):
        print(f"==> [{self.name}] started", flush=True)
        self.t = time.perf_counter()

    def __exit__(self, exc_type, *_):
        dt = time.perf_counter() - self.t
        self.ctx.timings[self.name] = round(dt, 1)
        print(f"==> [{self.name}] {'failed' if exc_type else 'done'} in {dt:.1f} s", flush=True)


def _train_model(ctx: Context, student, teacher, alpha: float, train_cfg, run_name: str, distill_cfg=None):
    """Fit ``student`` (a builder ``() -> keras.Model`` or a model) with the Distiller; returns the student.

    ``distill_cfg`` (a DistillConfig) picks the method, its options, the KD schedule and unlabelled crops; a
    SavedModel teacher gets the square teacher view of each crop from the input pipeline."""
    from functools import partial

    from tfpose.data.pipeline import build_dataset
    from tfpose.distill.distiller import Distiller
    from tfpose.distill.teachers import SavedModelTeacher, TeacherViewSampler, build_teacher_view_dataset
    from tfpose.train import detached, dev_val_scorer, fit, float32_head, is_chief, make_strategy, precision

    # boxes without keypoints: every GT weight is 0, the teacher alone teaches
    with_unlabelled = teacher is not None and distill_cfg is not None and distill_cfg.unlabelled
    train_sampler, draw = ctx.training_sampler(with_unlabelled, augment=True)
    if not len(train_sampler):
        raise InputError("no training person with labelled keypoints in any source (empty dataset)",
                         path=ctx.train.annotation_file)
    if train_cfg.batch_size > len(train_sampler):
        raise InputError(f"a batch of {train_cfg.batch_size} is larger than the {len(train_sampler)} training "
                         f"persons", field=f"{'teacher' if distill_cfg is None else 'distill'}.train.batch_size")
    val_sampler = ctx.sampler(ctx.val, augment=False)
    print(f"    {len(train_sampler)} training persons from {len(ctx.sources)} source(s)")
    batch = train_cfg.batch_size
    if isinstance(teacher, SavedModelTeacher) and distill_cfg is not None and distill_cfg.teacher_views > 0:
        from tfpose.distill.view_cache import cached_teacher_views, cached_view_dataset

        cache = cached_teacher_views(ctx.cfg, ctx.out, teacher, train_sampler, distill_cfg.teacher_views,
                                     chief=is_chief(ctx.cfg.distill.train.strategy))
        # training data: (shard=...) -> stream, so that fit hands each worker its part and a resumed run its place
        train_ds = partial(cached_view_dataset, cache, ctx.codec, ctx.skeleton.flip_index, draw, batch,
                           ctx.cfg.data.augment.colour, ctx.cfg.seed)
        val_ds = build_teacher_view_dataset(TeacherViewSampler(val_sampler, teacher.input_size), batch,
                                            training=False)
        steps = train_cfg.steps_per_epoch or max(1, len(cache) // batch)
    elif isinstance(teacher, SavedModelTeacher):
        train_ds = partial(build_teacher_view_dataset, TeacherViewSampler(train_sampler, teacher.input_size), batch,
                           training=True, seed=ctx.cfg.seed, probabilities=draw)
        val_ds = build_teacher_view_dataset(TeacherViewSampler(val_sampler, teacher.input_size), batch,
                                            training=False)
    else:
        train_ds = partial(build_dataset, train_sampler, batch, training=True, seed=ctx.cfg.seed, probabilities=draw)
        val_ds = build_dataset(val_sampler, batch, training=False)
    if not (isinstance(teacher, SavedModelTeacher) and distill_cfg is not None and distill_cfg.teacher_views > 0):
        steps = train_cfg.steps_per_epoch or max(1, len(train_sampler) // batch)
    strategy = make_strategy(train_cfg.strategy)
    with strategy.scope():
        if callable(student) and not hasattr(student, "layers"):
            if train_cfg.precision != "float32":
                with precision(train_cfg.precision):
                    student = float32_head(student())
            else:
                student = student()
        kwargs = {}
        if distill_cfg is not None:
            kwargs = dict(method=distill_cfg.method, dskd=distill_cfg.dskd, okdhp=distill_cfg.okdhp,
                          heatmap_loss=distill_cfg.heatmap_loss,
                          kd_schedule=distill_cfg.kd_schedule, kd_end=distill_cfg.kd_end,
                          total_steps=steps * train_cfg.epochs,
                          assistants=[load_keras(Path(a)) for a in distill_cfg.dskd.assistants]
                          if distill_cfg.method == "dskd" else [])
        distiller = Distiller(student, teacher, alpha, **kwargs)
    scorer = dev_val_scorer(ctx.evaluate, ctx.val_sets, ctx.out / run_name, run_name,
                            steps * max(1, train_cfg.eval_every_epochs), steps, write=is_chief(strategy))
    multi_worker = strategy.extended._in_multi_worker_mode()
    if train_cfg.eval_every_epochs > 0 and not scorer.points:
        # where training starts from: a pretrained student scores already
        scorer(detached(distiller.student) if multi_worker else distiller.student, step=0)
    fit(distiller, train_ds, val_ds, train_cfg, ctx.out / run_name, steps, evaluate_ap=scorer)
    # a multi-worker model predicts only in step with every worker: what follows (evaluation, export) gets a copy
    return detached(distiller.student) if multi_worker else distiller.student


def train_teacher(ctx: Context):
    """Train the configured teacher (or load a saved Keras one); returns the single-output model."""
    from tfpose._keras import keras
    from tfpose.models import build_model, deployable
    from tfpose.train import claim_run_dir, reuse, save_trained

    t = ctx.cfg.teacher
    path = ctx.out / "teacher.keras"
    if t.source == "keras":
        return load_keras(Path(t.path))
    if t.source == "none":
        return None
    if t.source == "savedmodel":
        from tfpose.distill.teachers import SavedModelTeacher

        return SavedModelTeacher(Path(t.path), ctx.codec, t.signature, t.input_key, t.output_key,
                                 tuple(t.input_size), t.stride, t.sigma)
    record = teacher_record(ctx.cfg, ctx.data_state())
    if reuse(path, record):
        return load_keras(path)
    claim_run_dir(ctx.out / "teacher_run", record, t.train.strategy)
    keras.utils.set_random_seed(ctx.cfg.seed)

    def build():
        return build_model(t.model.name, ctx.skeleton.num_keypoints, ctx.codec.input_size, intermediate=True,
                           **t.model.params)
    model = build() if t.train.strategy == "default" and t.train.precision == "float32" else build
    if hasattr(model, "count_params"):
        print(f"    {model.name}: {model.count_params() / 1e6:.2f} M parameters")
    model = deployable(_train_model(ctx, model, None, 0.0, t.train, "teacher_run"))
    save_trained(model, path, record, ctx.out / "teacher_run", t.train.strategy)
    return model


def distil_student(ctx: Context, teacher):
    from tfpose._keras import keras
    from tfpose.models import build_model
    from tfpose.train import claim_run_dir, reuse, save_trained

    d = ctx.cfg.distill
    path = ctx.out / "student.keras"
    record = student_record(ctx.cfg, ctx.data_state())
    if reuse(path, record):
        return load_keras(path)
    claim_run_dir(ctx.out / "distill_run", record, d.train.strategy)
    keras.utils.set_random_seed(ctx.cfg.seed + 1)

    def build():
        model = build_model(d.student.name, ctx.skeleton.num_keypoints, ctx.codec.input_size, **d.student.params)
        if d.student.init:
            from tfpose.models.init import initialise

            print("    " + initialise(model, d.student.init, d.student.params.get("width", 1.0)).line())
        if d.student.freeze_batchnorm:
            from tfpose.models.init import freeze_batchnorm

            print(f"    {freeze_batchnorm(model)} BatchNorm layers frozen (pretrained statistics)")
        return model
    student = build() if d.train.strategy == "default" and d.train.precision == "float32" else build
    if hasattr(student, "count_params"):
        print(f"    {student.name}: {student.count_params() / 1e6:.2f} M parameters, method {d.method}, alpha {d.alpha}")
    student = _train_model(ctx, student, teacher, d.alpha, d.train, "distill_run", d)
    save_trained(student, path, record, ctx.out / "distill_run", d.train.strategy)
    return student


def export_student(ctx: Context, student, teacher=None) -> Path:
    """The export stage (``tfpose.export.export_student``) on this run's data: calibration crops from every training
    source as training draws them, reference crops from dev-val, fine-tuning batches when the config compresses."""
    from tfpose.export import calibration_crops, check_model_fits, compresses, export_student as export

    check_model_fits(student, ctx.codec, ctx.skeleton)   # before crops of a mistyped size are cut
    e = ctx.cfg.export
    calib, draw = ctx.training_sampler(with_unlabelled=False, augment=False)
    calibration = calibration_crops(calib, draw, e.calibration_samples, ctx.cfg.seed)
    ref = ctx.sampler(ctx.val, augment=False)
    ref_samples = [ref.sample(i) for i in range(min(e.reference_samples, len(ref)))]
    data = ctx.finetune_data(teacher) if compresses(e) else None
    return export(student, ctx.out, ctx.codec, ctx.skeleton, ctx.cfg.data.padding, e, calibration,
                  np.stack([s.crop for s in ref_samples]), np.stack([s.weights for s in ref_samples]), data,
                  ctx.cfg.distill, teacher)


def validate_tflite(tflite_path: Path, out: Path, val_sets: dict[str, CocoDataset], v: ValidateConfig) -> dict:
    """The validate stage: ``tflite.validate`` (as on the device) of ``tflite_path`` on every dev-val set (``val``
    first; each written beside the run in ``out`` as COCO JSON, the exact split, so a device run scores the same
    persons), with ``v``'s threads, latency runs and overlays; the report lands in ``out/validation``."""
    from tflite.validate import validate

    val = val_sets["val"]
    val_ann = out / "val_annotations.json"
    write_json(val_ann, val.raw)
    extra_sets = []
    for name, dataset in list(val_sets.items())[1:]:
        path = out / f"val_{set_slug(name)}.json"
        write_json(path, dataset.raw)
        extra_sets.append((set_slug(name), path, dataset.image_dir))
    return validate(tflite_path, val_ann, val.image_dir, out / "validation", threads=v.threads, warmup=v.warmup_runs,
                    runs=v.latency_runs, overlays=v.overlays, extra_sets=tuple(extra_sets))


def run_pipeline(cfg: PipelineConfig, out: str | Path) -> dict:
    from tfpose.train import is_chief

    ctx = make_context(cfg, out)
    chief = is_chief(cfg.teacher.train.strategy) and is_chief(cfg.distill.train.strategy)
    if chief:
        write_text(ctx.out / "config.yaml", yaml.safe_dump(cfg.to_dict(), sort_keys=False))
    t0 = time.perf_counter()
    with stage(ctx, "data"):
        load_data(ctx)
    with stage(ctx, "teacher"):
        teacher = train_teacher(ctx)
    with stage(ctx, "evaluate teacher"):
        teacher_sets = {name: ctx.evaluate(teacher, f"teacher on {name}", dataset)
                        for name, dataset in ctx.val_sets.items()} if teacher is not None else {}
    with stage(ctx, "distill"):
        student = distil_student(ctx, teacher)
    if not chief:       # a multi-worker run's other workers: training was their part
        print("==> this worker is done; the chief evaluates, exports, validates and summarises", flush=True)
        return {}
    with stage(ctx, "evaluate student"):
        student_sets = {name: ctx.evaluate(student, f"float student on {name}", dataset)
                        for name, dataset in ctx.val_sets.items()}
    with stage(ctx, "export"):
        tflite_path = export_student(ctx, student, teacher)
    with stage(ctx, "validate"):
        report = validate_tflite(tflite_path, ctx.out, ctx.val_sets, ctx.cfg.validate)
    ctx.timings["total"] = round(time.perf_counter() - t0, 1)
    summary = build_summary(teacher_sets, teacher.count_params() if hasattr(teacher, "count_params") else 0,
                            student_sets, student.count_params(), report, ctx.timings, list(ctx.val_sets))
    summary["figures"] = summary_figures(ctx.out)
    write_json(ctx.out / "summary.json", summary)
    table = summary_markdown(summary)
    write_text(ctx.out / "summary.md", table)
    print("\n" + table)
    return summary
