"""The whole job, stage by stage: data -> teacher -> distillation -> int8 export -> on-device validation.

Each stage is a function of what it reads (config sections, the data stage's ``RunData``, the run folder) that
returns what it makes, written atomically into the run folder with a record of what made it
(``<artifact>.digest.json``: a digest per config section and of the input data); a stage whose artifact is there
with the same record is skipped, so an interrupted run picks up where it stopped (training resumes from its last
epoch), and a changed config says which section changed and trains again. A video student (``distill.method: dkd``)
takes the same stages: its data adds rendered tracks, its export an encoder and a tracker, validated frame by frame.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml

from tfpose.artifacts import remove_stale_temporaries, student_record, teacher_record, write_json, write_text
from tfpose.codec import HeatmapCodec
from tfpose.config import DataConfig, PipelineConfig
from tfpose.data.coco import CocoDataset
from tfpose.data.sources import RunData, load_datasets
from tfpose.keras_io import load_keras
from tfpose.report import build_summary, print_metrics, summary_figures, summary_markdown
from tfpose.skeleton import Skeleton, get_skeleton
from tfpose.validation import validate_tflite, validate_video_export


def open_run(cfg: PipelineConfig, out: str | Path) -> tuple[Path, HeatmapCodec, Skeleton]:
    """The run folder (made; temporaries of killed runs swept), the codec and the skeleton of ``cfg``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if "TF_CONFIG" not in os.environ:     # a pid says nothing about the temporaries of another host's worker
        for path in remove_stale_temporaries(out):
            print(f"    removed {path}, left by a killed run")
    elif "multi_worker_mirrored" in (cfg.teacher.train.strategy, cfg.distill.train.strategy):
        from tfpose.train import make_strategy

        make_strategy("multi_worker_mirrored")   # before any teacher or model: it configures TensorFlow's start
    c = cfg.codec
    return out, HeatmapCodec(tuple(c.input_size), c.stride, c.sigma, c.refine, c.peak_blur), get_skeleton(cfg.skeleton)


def load_data(d: DataConfig, codec: HeatmapCodec = None, skeleton: Skeleton = None, video: bool = False) -> RunData:
    """The data stage: every training source and dev-val set of ``d`` (``load_datasets``); with ``video``, the
    rendered tracks a video student trains and is checked on (``RunData.tracks``).

    A script's ``Context`` (``make_context``) is loaded by ``load_data(ctx)`` too; no stage takes one."""
    if isinstance(d, Context):
        d.data = load_data(d.cfg.data, d.codec, d.skeleton, video)
        return d.data
    detect_missing_people(d)
    sources, val_sets = load_datasets(d, skeleton.num_keypoints)
    data = RunData(d, codec, skeleton, sources, val_sets)
    if video:
        from tfpose.data.synthetic_video import video_tracks

        data.tracks = video_tracks(d.video, codec, d.padding)
    return data


# a 'detected' source's boxes: below this score NanoDet-m's boxes are mostly duplicates and parts of people it found
# with more confidence (721 of the 1,283 har-photos boxes between 0.3 and 0.5 overlap a better one, IoU >= 0.4)
DETECTED_MIN_SCORE = 0.5


def detect_missing_people(d: DataConfig) -> None:
    """Run ``tfpose detect`` for every ``detected`` source of ``d`` whose detection file is not there yet, into the
    path its ``annotations`` names (from the working folder), as the synthetic source is made when absent."""
    from tfpose.data.detected import detection_file
    from tfpose.errors import InputError

    for i, s in enumerate(d.sources):
        if s.format != "detected" or not s.annotations:
            continue
        images = Path(s.root) / (s.images or ".")
        try:
            detection_file(Path(s.root), s.annotations, images)
        except InputError:
            from tfpose.detect import detect_people, summary_line

            print(f"    data.sources[{i}]: finding the people of {images} (tfpose detect)", flush=True)
            print("    " + summary_line(detect_people(images, s.annotations, min_score=DETECTED_MIN_SCORE)))


@dataclass
class Context:
    """A script's run (benchmarks, notebooks): its config, folder, codec and skeleton, and once ``load_data(ctx)``
    ran, the ``RunData``'s fields and methods (``ctx.val_sets``, ``ctx.sampler(...)``). No stage takes it."""
    cfg: PipelineConfig
    out: Path
    codec: HeatmapCodec
    skeleton: Skeleton
    data: RunData | None = None

    def __getattr__(self, name):
        if name == "data" or self.data is None:
            raise AttributeError(name)
        return getattr(self.data, name)

    def evaluate(self, model, name: str, dataset: CocoDataset | None = None, ap_resamples: int = 200) -> dict:
        return evaluate(model, name, self.data, dataset, ap_resamples)


def make_context(cfg: PipelineConfig, out: str | Path) -> Context:
    return Context(cfg, *open_run(cfg, out))


def evaluate(model, name: str, data: RunData, dataset: CocoDataset | None = None, ap_resamples: int = 200) -> dict:
    """``tfpose.distill.teachers.evaluate_model`` of a Keras model or a SavedModel teacher on ``dataset`` (default:
    the val split of ``data``), printed as ``name``; ``ap_resamples``: see ``score_predictions``."""
    from tfpose.distill.teachers import evaluate_model

    metrics = evaluate_model(model, data.val if dataset is None else dataset, data.codec, data.skeleton,
                             data.config.padding, data.images, ap_resamples)
    print_metrics(name, metrics)
    return metrics


def finetune_data(cfg: PipelineConfig, data: RunData, out: Path, teacher):
    """The fine-tuning batches of pruning and QAT (``tfpose.export.finetune_data``): every training source,
    with its unlabelled persons when a teacher guides and ``distill.unlabelled``."""
    from tfpose.export import finetune_data as batches

    unlabelled = teacher is not None and cfg.distill.unlabelled
    return batches(cfg, out, *data.training_sampler(unlabelled, augment=True), teacher)


class stage:
    """``with stage("teacher", timings):`` prints a line per stage and records its wall time in ``timings``."""

    def __init__(self, name: str, timings: dict):
        self.name, self.timings = name, timings

    def __enter__(self):
        print(f"==> [{self.name}] started", flush=True)
        self.t = time.perf_counter()

    def __exit__(self, exc_type, *_):
        dt = time.perf_counter() - self.t
        self.timings[self.name] = round(dt, 1)
        print(f"==> [{self.name}] {'failed' if exc_type else 'done'} in {dt:.1f} s", flush=True)


def _train_model(cfg: PipelineConfig, data: RunData, out: Path, student, teacher, alpha: float, train_cfg,
                 run_name: str, distill_cfg=None):
    """Fit ``student`` (a builder ``() -> keras.Model`` or a model) with the Distiller in ``out / run_name``;
    returns the student.

    ``distill_cfg`` (a DistillConfig) picks the method, its options, the KD schedule and unlabelled crops; a
    SavedModel teacher gets the square teacher view of each crop from the input pipeline."""
    from tfpose.distill.distiller import Distiller
    from tfpose.train import (detached, dev_val_scorer, fit, float32_head, is_chief, make_strategy, precision,
                              training_data)

    train_ds, val_ds, steps = training_data(cfg, data, out, teacher, train_cfg, distill_cfg)
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
                          dkd=distill_cfg.dkd, heatmap_loss=distill_cfg.heatmap_loss,
                          kd_schedule=distill_cfg.kd_schedule, kd_end=distill_cfg.kd_end,
                          confidence_weights=distill_cfg.confidence_weights,
                          feature_teacher=_feature_teacher(distill_cfg, data), feature_layer=distill_cfg.feature_layer,
                          feature_weight=distill_cfg.feature_weight,
                          total_steps=steps * train_cfg.epochs,
                          assistants=[load_keras(Path(a)) for a in distill_cfg.dskd.assistants]
                          if distill_cfg.method == "dskd" else [])
        distiller = Distiller(student, teacher, alpha, **kwargs)
    scorer, multi_worker = None, strategy.extended._in_multi_worker_mode()
    if distiller.method != "dkd":    # a video student is scored on its tracks by validation, not on still crops
        scorer = dev_val_scorer(lambda *a, **k: evaluate(*a[:2], data, *a[2:], **k), data.val_sets,
                                out / run_name, run_name, steps * max(1, train_cfg.eval_every_epochs), steps,
                                write=is_chief(strategy))
        if train_cfg.eval_every_epochs > 0 and not scorer.points:
            # where training starts from: a pretrained student scores already
            scorer(detached(distiller.student) if multi_worker else distiller.student, step=0)
    fit(distiller, train_ds, val_ds, train_cfg, out / run_name, steps, evaluate_ap=scorer)
    # a multi-worker model predicts only in step with every worker: what follows (evaluation, export) gets a copy
    return detached(distiller.student) if multi_worker else distiller.student


def _feature_teacher(d, data: RunData):
    """The Keras teacher of ``distill.feature_teacher`` on the student's crop (``teachers.feature_teacher``), or None."""
    if not d.feature_teacher:
        return None
    from tfpose.distill.teachers import feature_teacher

    return feature_teacher(Path(d.feature_teacher), d.feature_layer, data.codec.input_size)


def train_teacher(cfg: PipelineConfig, data: RunData, out: Path):
    """Train the configured teacher into ``out/teacher.keras`` (or load a saved Keras or SavedModel one); returns
    the single-output model, or None for ``teacher.source: none``."""
    from tfpose._keras import keras
    from tfpose.models import build_model, deployable
    from tfpose.train import claim_run_dir, reuse, save_trained

    t = cfg.teacher
    path = out / "teacher.keras"
    if t.source == "keras":
        return load_keras(Path(t.path))
    if t.source == "none":
        return None
    if t.source == "savedmodel":
        from tfpose.distill.teachers import SavedModelTeacher

        return SavedModelTeacher(Path(t.path), data.codec, t.signature, t.input_key, t.output_key,
                                 tuple(t.input_size), t.stride, t.sigma,
                                 data.skeleton.flip_index if t.tta_flip else None, t.tta_scales)
    record = teacher_record(cfg, data.state())
    if reuse(path, record):
        return load_keras(path)
    claim_run_dir(out / "teacher_run", record, t.train.strategy)
    keras.utils.set_random_seed(cfg.seed)

    def build():
        return build_model(t.model.name, data.skeleton.num_keypoints, data.codec.input_size, intermediate=True,
                           **t.model.params)
    model = build() if t.train.strategy == "default" and t.train.precision == "float32" else build
    if hasattr(model, "count_params"):
        print(f"    {model.name}: {model.count_params() / 1e6:.2f} M parameters")
    model = deployable(_train_model(cfg, data, out, model, None, 0.0, t.train, "teacher_run"))
    save_trained(model, path, record, out / "teacher_run", t.train.strategy)
    return model


def distil_student(cfg: PipelineConfig, data: RunData, teacher, out: Path):
    """Distil the configured student from ``teacher`` into ``out/student.keras``; returns it."""
    from tfpose._keras import keras
    from tfpose.models import build_model
    from tfpose.train import claim_run_dir, reuse, save_trained

    d = cfg.distill
    path = out / "student.keras"
    record = student_record(cfg, data.state())
    if reuse(path, record):
        return load_keras(path)
    claim_run_dir(out / "distill_run", record, d.train.strategy)
    keras.utils.set_random_seed(cfg.seed + 1)

    def build():
        model = build_model(d.student.name, data.skeleton.num_keypoints, data.codec.input_size, **d.student.params)
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
    student = _train_model(cfg, data, out, student, teacher, d.alpha, d.train, "distill_run", d)
    if d.second_stage_steps:
        student = second_stage(cfg, data, out, student, teacher)
    save_trained(student, path, record, out / "distill_run", d.train.strategy)
    return student


def second_stage(cfg: PipelineConfig, data: RunData, out: Path, student, teacher):
    """DWPose's second stage: the distilled student's head (every layer after ``distill.feature_layer``) trained
    alone for ``distill.second_stage_steps`` on the training stream that follows distillation's, against ground
    truth and a frozen copy of the student itself (its own heatmaps on every joint); the rest stays as it is."""
    from tfpose.data.pipeline import Shard
    from tfpose.finetune import copy_model, finetune
    from tfpose.train import training_data

    d = cfg.distill
    names = [layer.name for layer in student.layers]
    if d.feature_layer not in names:
        raise ValueError(f"the student has no layer distill.feature_layer '{d.feature_layer}' to split its head at")
    parent = copy_model(student)
    parent.trainable = False
    trainable = {layer.name: layer.trainable for layer in student.layers}
    for layer in student.layers[:names.index(d.feature_layer) + 1]:
        layer.trainable = False
    stream, _, steps = training_data(cfg, data, out, teacher, d.train, d)
    distilled = (d.train.steps_per_epoch or steps) * d.train.epochs        # batches distillation read
    dataset = stream(shard=Shard(first_batch=distilled)) if callable(stream) else stream
    print(f"    second stage: the head ({len(names) - names.index(d.feature_layer) - 1} layers) learns from the "
          f"student itself for {d.second_stage_steps} steps")
    finetune(student, dataset, d.second_stage_steps, None, 0.0, d.train.learning_rate, heatmap_loss=d.heatmap_loss,
             parent=parent, parent_weight=1.0, cosine=True)
    for layer in student.layers:
        layer.trainable = trainable[layer.name]
    return student


def export_student(cfg: PipelineConfig, data: RunData, student, out: Path, teacher=None) -> Path:
    """The export stage (``tfpose.export.export_student``) into ``out``: calibration crops from every training
    source as training draws them, reference crops from dev-val, fine-tuning batches when the config compresses.
    A video student: ``tfpose.export_video.export_video`` (encoder and tracker, calibrated on the training tracks, and
    the teacher's int8 file as the key model); returns the tracker's path."""
    from tfpose.export import calibration_crops, check_model_fits, compresses, export_student as export
    from tfpose.export_video import export_video

    e = cfg.export
    if data.tracks is not None:
        paths = export_video(student, out, data.codec, data.skeleton, data.config.padding, e,
                             data.tracks["train"]["frames"], teacher,
                             cfg.teacher.path if cfg.teacher.source == "keras" else "")
        return paths["tracker"]
    check_model_fits(student, data.codec, data.skeleton)   # before crops of a mistyped size are cut
    calib, draw = data.training_sampler(with_unlabelled=False, augment=False)
    calibration = calibration_crops(calib, draw, e.calibration_samples, cfg.seed)
    ref = data.sampler(data.val, augment=False)
    ref_samples = [ref.sample(i) for i in range(min(e.reference_samples, len(ref)))]
    batches = finetune_data(cfg, data, out, teacher) if compresses(e) else None
    return export(student, out, data.codec, data.skeleton, data.config.padding, e, calibration,
                  np.stack([s.crop for s in ref_samples]), np.stack([s.weights for s in ref_samples]), batches,
                  cfg.distill, teacher)


def run_pipeline(cfg: PipelineConfig, out: str | Path) -> dict:
    from tfpose.train import is_chief

    out, codec, skeleton = open_run(cfg, out)
    video, timings = cfg.distill.method == "dkd", {}
    chief = is_chief(cfg.teacher.train.strategy) and is_chief(cfg.distill.train.strategy)
    if chief:
        write_text(out / "config.yaml", yaml.safe_dump(cfg.to_dict(), sort_keys=False))
    t0 = time.perf_counter()
    with stage("data", timings):
        data = load_data(cfg.data, codec, skeleton, video)
    with stage("teacher", timings):
        teacher = train_teacher(cfg, data, out)
    with stage("evaluate teacher", timings):
        teacher_sets = {name: evaluate(teacher, f"teacher on {name}", data, dataset)
                        for name, dataset in data.val_sets.items()} if teacher is not None else {}
    with stage("distill", timings):
        student = distil_student(cfg, data, teacher, out)
    if not chief:       # a multi-worker run's other workers: training was their part
        print("==> this worker is done; the chief evaluates, exports, validates and summarises", flush=True)
        return {}
    with stage("evaluate student", timings):
        student_sets = {name: evaluate(student, f"float student on {name}", data, dataset)
                        for name, dataset in data.val_sets.items()} if not video else {}
    with stage("export", timings):
        tflite_path = export_student(cfg, data, student, out, teacher)
    with stage("validate", timings):
        report = (validate_video_export(tflite_path, out, cfg.data.video, cfg.validate) if video else
                  validate_tflite(tflite_path, out, data.val_sets, cfg.validate))
    timings["total"] = round(time.perf_counter() - t0, 1)
    if video:
        from tflite.video_validate import report_markdown

        summary, table = {**report, "timings": timings}, report_markdown(report)
    else:
        summary = build_summary(teacher_sets, teacher.count_params() if hasattr(teacher, "count_params") else 0,
                                student_sets, student.count_params(), report, timings, list(data.val_sets))
        summary["figures"] = summary_figures(out)
        table = summary_markdown(summary)
    write_json(out / "summary.json", summary)
    write_text(out / "summary.md", table)
    print("\n" + table)
    return summary
