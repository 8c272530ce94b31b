"""The whole job, stage by stage: data -> teacher -> distillation -> int8 export -> on-device validation.

Each stage prints one line when it starts and ends, writes its artifact atomically into the run folder, and is
skipped when that artifact is already there, so an interrupted run picks up where it stopped (training
itself resumes from its last epoch).
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import yaml

from tfpose.artifacts import write_json, write_text
from tfpose.codec import HeatmapCodec
from tfpose.config import PipelineConfig
from tfpose.data.coco import CocoDataset, ImageStore, load_coco
from tfpose.data.samples import CropSampler
from tfpose.data.synthetic import ensure_synthetic
from tfpose.errors import InputError
from tfpose.skeleton import Skeleton, get_skeleton


@dataclass
class Context:
    cfg: PipelineConfig
    out: Path
    codec: HeatmapCodec
    skeleton: Skeleton
    train: CocoDataset | None = None
    val: CocoDataset | None = None
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


def make_context(cfg: PipelineConfig, out: str | Path) -> Context:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
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


def load_data(ctx: Context) -> None:
    d = ctx.cfg.data
    k = ctx.skeleton.num_keypoints
    root = Path(d.root)
    if d.source == "synthetic":
        s = d.synthetic
        ensure_synthetic(root, s.num_train_images, s.num_val_images, tuple(s.image_size), s.max_people, s.seed)
    ctx.train = load_coco(root / d.train_annotations, root / d.train_images, k)
    if d.val_fraction > 0:
        ctx.train, ctx.val = ctx.train.split(d.val_fraction, d.split_seed)
    else:
        ctx.val = load_coco(root / d.val_annotations, root / d.val_images, k)
    n_train, n_val = len(ctx.train.labelled(d.min_keypoints)), len(ctx.val.labelled())
    print(f"    train: {n_train} labelled persons in {len(ctx.train.images)} images; "
          f"val: {n_val} persons in {len(ctx.val.images)} images")
    if n_train == 0:
        raise InputError("no annotation with labelled keypoints (empty dataset)", path=ctx.train.annotation_file)


def _train_model(ctx: Context, student, teacher, alpha: float, train_cfg, run_name: str, distill_cfg=None):
    """Fit ``student`` (a builder ``() -> keras.Model`` or a model) with the Distiller; returns the student.

    ``distill_cfg`` (a DistillConfig) picks the method, its options, the KD schedule and unlabelled crops; a
    SavedModel teacher gets the square teacher view of each crop from the input pipeline."""
    from tfpose.data.pipeline import build_dataset
    from tfpose.data.samples import CropSampler
    from tfpose.distill.distiller import Distiller
    from tfpose.distill.teachers import SavedModelTeacher, TeacherViewSampler, build_teacher_view_dataset
    from tfpose.train import fit, float32_head, make_strategy, precision

    train_sampler = ctx.sampler(ctx.train, augment=True)
    val_sampler = ctx.sampler(ctx.val, augment=False)
    if teacher is not None and distill_cfg is not None and distill_cfg.unlabelled:
        extra = ctx.train.unlabelled()   # no keypoints: every GT weight is 0, the teacher alone teaches
        train_sampler = CropSampler(train_sampler.persons + extra, ctx.codec, ctx.skeleton.flip_index,
                                    ctx.cfg.data.padding, ctx.cfg.data.augment, ctx.images)
        print(f"    + {len(extra)} unlabelled person boxes (teacher targets only)")
    batch = train_cfg.batch_size
    if isinstance(teacher, SavedModelTeacher) and distill_cfg is not None and distill_cfg.teacher_views > 0:
        cache = cached_teacher_views(ctx, teacher, train_sampler, distill_cfg.teacher_views)
        train_ds = _cached_dataset(cache, batch, ctx.cfg.seed, ctx.skeleton.flip_index,
                                    ctx.cfg.data.augment.colour)
        val_ds = build_teacher_view_dataset(TeacherViewSampler(val_sampler, teacher.input_size), batch,
                                            training=False)
        steps = train_cfg.steps_per_epoch or max(1, len(cache["crops"]) // batch)
    elif isinstance(teacher, SavedModelTeacher):
        train_ds = build_teacher_view_dataset(TeacherViewSampler(train_sampler, teacher.input_size), batch,
                                              training=True, seed=ctx.cfg.seed)
        val_ds = build_teacher_view_dataset(TeacherViewSampler(val_sampler, teacher.input_size), batch,
                                            training=False)
    else:
        train_ds = build_dataset(train_sampler, batch, training=True, seed=ctx.cfg.seed)
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
                          kd_schedule=distill_cfg.kd_schedule, kd_end=distill_cfg.kd_end,
                          total_steps=steps * train_cfg.epochs,
                          assistants=[load_keras(Path(a)) for a in distill_cfg.dskd.assistants]
                          if distill_cfg.method == "dskd" else [])
        distiller = Distiller(student, teacher, alpha, **kwargs)
    fit(distiller, train_ds, val_ds, train_cfg, ctx.out / run_name, steps,
        evaluate_ap=lambda model: evaluate_keras(ctx, model, f"{run_name} val"))
    return distiller.student


def teacher_views_key(cfg: PipelineConfig, sampler, views: int) -> str:
    """A digest of everything the cached teacher views depend on: the teacher (its config and files), every
    person (image, box, keypoints), the crop geometry and augmentation, the number of views and the seed."""
    import hashlib

    digest = hashlib.sha256()
    # a SavedModel teacher is its files, not a training recipe
    teacher = {k: v for k, v in asdict(cfg.teacher).items() if k not in ("train", "model")}
    root = Path(cfg.teacher.path)
    files = sorted((str(f.relative_to(root)), f.stat().st_size, f.stat().st_mtime_ns)
                   for f in root.rglob("*") if f.is_file()) if root.is_dir() else []
    codec = sampler.codec
    digest.update(json.dumps({
        "format": 1, "teacher": teacher, "files": files, "views": views, "seed": cfg.seed,
        "codec": [list(codec.input_size), codec.stride, codec.sigma], "padding": sampler.padding,
        "augment": asdict(sampler.augment) if sampler.augment else None}, sort_keys=True,
        default=str).encode())
    for person in sampler.persons:
        digest.update(str(person.image_path).encode())
        digest.update(np.asarray(person.box, np.float64).tobytes())
        digest.update(np.asarray(person.keypoints, np.float64).tobytes())
        digest.update(np.asarray(person.visibility, np.int64).tobytes())
    return digest.hexdigest()[:16]


def cached_teacher_views(ctx: Context, teacher, sampler, views: int) -> dict[str, np.ndarray]:
    """Teacher heatmaps for ``views`` augmented views of every training person, computed once.

    View 0 is the plain crop, the others seeded draws of the training augmentation. Returns crops (N, H, W, 3)
    uint8, heatmaps (N, h, w, K), weights (N, K) and teacher_heatmaps (N, h, w, K) float16. The file is named by
    ``teacher_views_key`` and kept in ``distill.teacher_cache`` (default: the run folder), so a resumed run, or
    any run whose views would be the same, does not pay for the teacher again, and a changed config never reads
    stale views.
    """
    from tfpose.artifacts import atomic_path
    from tfpose.distill.teachers import TeacherViewSampler

    folder = Path(ctx.cfg.distill.teacher_cache) if ctx.cfg.distill.teacher_cache else ctx.out
    path = folder / f"teacher_views_{views}_{teacher_views_key(ctx.cfg, sampler, views)}.npz"
    if path.is_file():
        print(f"    reusing {path}")
        return dict(np.load(path))
    folder.mkdir(parents=True, exist_ok=True)
    view_sampler = TeacherViewSampler(sampler, teacher.input_size)
    crops, heatmaps, weights, teacher_maps = [], [], [], []
    started = time.perf_counter()
    for i in range(len(view_sampler)):
        samples = [view_sampler.sample(i, None if v == 0 else ctx.cfg.seed * 100_003 + 1000 * i + v)
                   for v in range(views)]
        crops += [s.crop.astype(np.uint8) for s, _ in samples]
        heatmaps += [s.heatmaps.astype(np.float16) for s, _ in samples]
        weights += [s.weights for s, _ in samples]
        teacher_maps.append(teacher.precompute(np.stack([v for _, v in samples]).astype(np.float32)).astype(np.float16))
        if (i + 1) % 10 == 0 or i + 1 == len(view_sampler):
            print(f"\r    teacher views: {i + 1}/{len(view_sampler)} persons x {views} "
                  f"({time.perf_counter() - started:.0f} s)", end="", flush=True)
    print()
    cache = {"crops": np.stack(crops), "heatmaps": np.stack(heatmaps), "weights": np.stack(weights),
             "teacher_heatmaps": np.concatenate(teacher_maps)}
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, **cache)
    return cache


def _cached_dataset(cache: dict[str, np.ndarray], batch: int, seed: int, flip_index: np.ndarray, colour: float):
    """The cached views, shuffled, each drawn again with a coin-flip mirror and a colour jitter (as
    ``colour_jitter``): the fixed views are few, and both are free to apply to crop, targets and teacher maps alike."""
    from tfpose._keras import tf

    targets = {"heatmaps": cache["heatmaps"], "weights": cache["weights"],
               "teacher_heatmaps": cache["teacher_heatmaps"]}
    ds = tf.data.Dataset.from_tensor_slices((cache["crops"], targets))
    ds = ds.shuffle(len(cache["crops"]), seed=seed, reshuffle_each_iteration=True)
    flip_index = tf.constant(flip_index, tf.int32)

    def redraw(crop, target):
        crop = tf.cast(crop, tf.float32)
        target = {k: tf.cast(v, tf.float32) for k, v in target.items()}
        # mirroring the crop mirrors every heatmap cell exactly (cell centres are symmetric about the crop's centre);
        # left and right joints swap channels
        if tf.random.uniform(()) < 0.5:
            crop = tf.reverse(crop, [1])
            target = {"heatmaps": tf.gather(tf.reverse(target["heatmaps"], [1]), flip_index, axis=-1),
                      "weights": tf.gather(target["weights"], flip_index),
                      "teacher_heatmaps": tf.gather(tf.reverse(target["teacher_heatmaps"], [1]), flip_index, axis=-1)}
        if colour > 0:
            contrast = 1 + tf.random.uniform((), -colour, colour)
            brightness = 255 * tf.random.uniform((), -colour, colour) / 2
            crop = tf.clip_by_value(crop * contrast + brightness, 0, 255)
        return crop, target

    ds = ds.map(redraw, num_parallel_calls=tf.data.AUTOTUNE)
    return ds.batch(batch, drop_remainder=True).prefetch(2)


def train_teacher(ctx: Context):
    """Train the configured teacher (or load a saved Keras one); returns the single-output model."""
    from tfpose._keras import keras
    from tfpose.models import build_model, deployable

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
    if path.is_file():
        print(f"    reusing {path}")
        return load_keras(path)
    keras.utils.set_random_seed(ctx.cfg.seed)

    def build():
        return build_model(t.model.name, ctx.skeleton.num_keypoints, ctx.codec.input_size, intermediate=True,
                           **t.model.params)
    model = build() if t.train.strategy == "default" and t.train.precision == "float32" else build
    if hasattr(model, "count_params"):
        print(f"    {model.name}: {model.count_params() / 1e6:.2f} M parameters")
    model = deployable(_train_model(ctx, model, None, 0.0, t.train, "teacher_run"))
    save_keras(model, path)
    return model


def distil_student(ctx: Context, teacher):
    from tfpose._keras import keras
    from tfpose.models import build_model

    d = ctx.cfg.distill
    path = ctx.out / "student.keras"
    if path.is_file():
        print(f"    reusing {path}")
        return load_keras(path)
    keras.utils.set_random_seed(ctx.cfg.seed + 1)

    def build():
        return build_model(d.student.name, ctx.skeleton.num_keypoints, ctx.codec.input_size, **d.student.params)
    student = build() if d.train.strategy == "default" and d.train.precision == "float32" else build
    if hasattr(student, "count_params"):
        print(f"    {student.name}: {student.count_params() / 1e6:.2f} M parameters, method {d.method}, alpha {d.alpha}")
    student = _train_model(ctx, student, teacher, d.alpha, d.train, "distill_run", d)
    save_keras(student, path)
    return student


def evaluate_keras(ctx: Context, model, name: str) -> dict:
    """OKS AP etc. of a Keras model (or a SavedModel teacher, on its square views) on the val split."""
    from tfpose.distill.teachers import SavedModelTeacher
    from tfpose.evaluation import evaluate_predictor

    if isinstance(model, SavedModelTeacher):
        return _evaluate_savedmodel_teacher(ctx, model, name)

    def predict(crops):
        return model.predict_on_batch(crops.astype(np.float32))

    metrics, _ = evaluate_predictor(predict, ctx.val, ctx.codec, ctx.skeleton, ctx.cfg.data.padding)
    print(f"    {name}: AP {metrics['AP']:.3f} (95 % CI {metrics['AP_ci95'][0]:.3f}-{metrics['AP_ci95'][1]:.3f}), "
          f"PCK@0.2 {metrics['PCK@0.2']:.3f}")
    return metrics


def _evaluate_savedmodel_teacher(ctx: Context, teacher, name: str) -> dict:
    from tfpose.data.transforms import apply_matrix, invert_matrix, warp_image
    from tfpose.distill.teachers import teacher_matrix
    from tfpose.evaluation import Predictions, crop_person, score_predictions

    persons = ctx.val.labelled()
    crops, mats, views = [], [], []
    for person in persons:
        crop, m = crop_person(person, ctx.images, ctx.codec, ctx.cfg.data.padding)
        crops.append(crop), mats.append(m)
        views.append(warp_image(ctx.images(person.image_path),
                                teacher_matrix(m, ctx.codec.input_size, teacher.input_size), teacher.input_size))
    keypoints, scores = ctx.codec.decode(teacher.precompute(np.stack(views).astype(np.float32)))
    in_image = np.stack([apply_matrix(k, invert_matrix(m)) for k, m in zip(keypoints, mats)]).astype(np.float32)
    metrics = score_predictions(Predictions(persons, in_image, scores, np.stack(crops), np.stack(mats)),
                                ctx.val, ctx.skeleton)
    print(f"    {name}: AP {metrics['AP']:.3f} (95 % CI {metrics['AP_ci95'][0]:.3f}-{metrics['AP_ci95'][1]:.3f}), "
          f"PCK@0.2 {metrics['PCK@0.2']:.3f}")
    return metrics


def export_student(ctx: Context, student, teacher=None) -> Path:
    """Prune / QAT-train the student if the export config asks (``teacher`` guiding), convert it, write the file."""
    from tfpose.export import compress_student, export_name, export_tflite

    e = ctx.cfg.export
    path = ctx.out / export_name(e)
    calib = ctx.sampler(ctx.train, augment=False)
    rng = np.random.default_rng(ctx.cfg.seed)
    calib_idx = rng.permutation(len(calib))[: e.calibration_samples]
    calibration = np.stack([calib.sample(int(i)).crop for i in calib_idx]).astype(np.float32)
    ref = ctx.sampler(ctx.val, augment=False)
    ref_samples = [ref.sample(i) for i in range(min(e.reference_samples, len(ref)))]
    student, notes = compress_student(ctx, student, teacher)
    export_tflite(student, path, ctx.codec, ctx.skeleton, ctx.cfg.data.padding, e, calibration,
                  np.stack([s.crop for s in ref_samples]), np.stack([s.weights for s in ref_samples]), notes)
    print(f"    {path.name}: {path.stat().st_size / 1024:.0f} KiB ({len(calibration)} calibration crops)")
    return path


def validate_tflite(ctx: Context, tflite_path: Path) -> dict:
    from tflite.validate import validate

    v = ctx.cfg.validate
    val_dir = ctx.out / "validation"
    val_ann = ctx.out / "val_annotations.json"
    write_json(val_ann, ctx.val.raw)  # the exact split, so the device run scores the same persons
    report = validate(tflite_path, val_ann, ctx.val.image_dir, val_dir, threads=v.threads, warmup=v.warmup_runs,
                      runs=v.latency_runs, overlays=v.overlays)
    return report


def load_keras(path: Path):
    from tfpose._keras import keras
    import tfpose.models  # noqa: F401  (registers custom layers)

    if not path.exists():
        raise InputError("model not found", path=path)
    try:
        return keras.models.load_model(path, compile=False)
    except (OSError, ValueError) as e:
        raise InputError(f"not a loadable Keras model ({e})", path=path) from None


def save_keras(model, path: Path) -> None:
    from tfpose.artifacts import atomic_path

    with atomic_path(path) as tmp:
        model.save(tmp)


def run_pipeline(cfg: PipelineConfig, out: str | Path) -> dict:
    ctx = make_context(cfg, out)
    write_text(ctx.out / "config.yaml", yaml.safe_dump(cfg.to_dict(), sort_keys=False))
    t0 = time.perf_counter()
    with stage(ctx, "data"):
        load_data(ctx)
    with stage(ctx, "teacher"):
        teacher = train_teacher(ctx)
    with stage(ctx, "evaluate teacher"):
        teacher_metrics = evaluate_keras(ctx, teacher, "teacher") if teacher is not None else \
            {"AP": float("nan"), "AP_ci95": [float("nan")] * 2, "PCK@0.2": float("nan")}
    with stage(ctx, "distill"):
        student = distil_student(ctx, teacher)
    with stage(ctx, "evaluate student"):
        student_metrics = evaluate_keras(ctx, student, "float student")
    with stage(ctx, "export"):
        tflite_path = export_student(ctx, student)
    with stage(ctx, "validate"):
        report = validate_tflite(ctx, tflite_path)
    ctx.timings["total"] = round(time.perf_counter() - t0, 1)
    summary = {
        "teacher": _row(teacher_metrics, teacher.count_params() if hasattr(teacher, "count_params") else 0),
        "student_float": _row(student_metrics, student.count_params()),
        "student_int8": {**_row(report["accuracy"], student.count_params()),
                         "size_kib": round(report["size_bytes"] / 1024, 1),
                         "latency_ms": {str(t["threads"]): round(t["median_ms"], 2) for t in report["latency"]},
                         "joints_within_1_cell": report["parity"]["joints_within_1_cell"]},
        "stage_seconds": ctx.timings,
    }
    write_json(ctx.out / "summary.json", summary)
    table = summary_markdown(summary)
    write_text(ctx.out / "summary.md", table)
    print("\n" + table)
    return summary


def _row(metrics: dict, params: int) -> dict:
    return {"AP": round(metrics["AP"], 4), "AP_ci95": [round(v, 4) for v in metrics["AP_ci95"]],
            "PCK@0.2": round(metrics["PCK@0.2"], 4), "params_M": round(params / 1e6, 3)}


def summary_markdown(s: dict) -> str:
    lines = ["| model | params (M) | OKS AP | AP 95 % CI | PCK@0.2 | size | 1-thread ms |", "|---|---|---|---|---|---|---|"]
    for name, key in (("teacher", "teacher"), ("student (Keras float)", "student_float"),
                      ("student (int8 TFLite)", "student_int8")):
        r = s[key]
        size = f"{r['size_kib']:.0f} KiB" if "size_kib" in r else ""
        ms = f"{r['latency_ms'].get('1', float('nan')):.2f}" if "latency_ms" in r else ""
        params = f"{r['params_M']:.2f}" if r["params_M"] else "-"      # a SavedModel teacher does not say
        lines.append(f"| {name} | {params} | {r['AP']:.3f} | {r['AP_ci95'][0]:.3f}-{r['AP_ci95'][1]:.3f} "
                     f"| {r['PCK@0.2']:.3f} | {size} | {ms} |")
    lines += ["", "Stage times (s): " + ", ".join(f"{k} {v}" for k, v in s["stage_seconds"].items())]
    return "\n".join(lines) + "\n"


def load_summary(out: str | Path) -> dict:
    return json.loads((Path(out) / "summary.json").read_text())
