"""Typed configuration for every stage: YAML presets in configs/, ``key=value`` overrides on the command line.

An unknown key anywhere is an error that names the file, the dotted key and the nearest valid key.
"""

from __future__ import annotations

import dataclasses
import difflib
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from tfpose.errors import InputError
from tfpose.skeleton import SKELETONS


@dataclass
class SyntheticConfig:
    """The embedded default dataset: procedurally rendered figures in COCO format."""
    num_train_images: int = 600
    num_val_images: int = 100
    image_size: tuple[int, int] = (192, 192)   # (W, H) pixels
    max_people: int = 2
    seed: int = 0


@dataclass
class AugmentConfig:
    scale: float = 0.25          # scale factor drawn from [1 - s, 1 + s]
    rotation: float = 30.0       # degrees, drawn from [-r, r]
    rotation_prob: float = 0.6
    flip: bool = True
    colour: float = 0.2          # brightness/contrast jitter amplitude
    # std of the crop centre's shift, as a fraction of the crop's width and height (clipped at 2 std): the box error
    # of a real person detector, so that a student trained on ground-truth boxes meets detected ones (BENCHMARKS.md,
    # whole_image: NanoDet-m's boxes are off by about 0.05 of the crop per axis); 0 draws nothing
    shift: float = 0.0


@dataclass
class SourceConfig:
    """One more training dataset, in any registered format (``tfpose.data.formats``: coco, lsp, lspet, parse, detected)."""
    format: str = "coco"
    root: str = ""
    annotations: str = ""                      # coco: the keypoints JSON, relative to root
    images: str = ""                           # coco: the image folder, relative to root
    split: str = "all"                         # parse: train (first 100) | test (last 205) | all
    weight: float = 1.0                        # share of the training draws, relative to the other sources
    unlabelled: bool = True                    # with a teacher: also its person boxes without keypoints


@dataclass
class VideoConfig:
    """A video student's data (``distill.method: dkd``): rendered sequences (``tfpose.data.synthetic_video``), one
    person each, cropped per track at ``codec.input_size``."""
    sequences: int = 160                       # training tracks
    frames: int = 6                            # frames per training track (>= the discriminator's window of 3)
    dev_sequences: int = 16                    # held-out tracks of the same length: the loss after each epoch
    image_size: tuple[int, int] = (160, 160)   # (W, H) of the rendered frames
    val_sequences: int = 24                    # the validate stage's held-out tracks (tflite.video_validate) ...
    val_frames: int = 24                       # ... and their length
    seed: int = 0                              # training tracks from seed, dev tracks seed + 2, validation seed + 1


@dataclass
class DataConfig:
    source: Literal["synthetic", "coco"] = "synthetic"
    root: str = "runs/data/synthetic"          # dataset folder (synthetic: where it is generated)
    train_annotations: str = "annotations/person_keypoints_train.json"
    train_images: str = "images/train"
    val_annotations: str = "annotations/person_keypoints_val.json"
    val_images: str = "images/val"
    val_fraction: float = 0.0                  # > 0: split train by image into train/val with split_seed
    split_seed: int = 0
    min_keypoints: int = 1                     # annotations with fewer labelled joints are skipped in training
    padding: float = 1.25                      # box enlargement before cropping
    weight: float = 1.0                        # sampling weight of the main source's training split among `sources`
    # more training datasets; each draws `weight` / (sum of weights) of the training crops. No training image may
    # be one of a dev-val set's (the val split above, `val_sources`): the pipeline refuses such a config
    sources: tuple[SourceConfig, ...] = ()
    val_sources: tuple[SourceConfig, ...] = ()  # more dev-val sets, scored beside the val split (e.g. PARSE's test half)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    synthetic: SyntheticConfig = field(default_factory=SyntheticConfig)
    video: VideoConfig = field(default_factory=VideoConfig)


@dataclass
class CodecConfig:
    input_size: tuple[int, int] = (192, 256)   # (W, H)
    stride: int = 4
    sigma: float = 2.0
    refine: Literal["none", "quarter", "dark"] = "dark"
    # sigma (cells) of the peak search's matched filter (the targets' Gaussian), so int8 rounding on a flat map
    # cannot move the peak to a lone cell (BENCHMARKS.md, decoding); 0 = argmax of the raw map
    peak_blur: float = 2.0


@dataclass
class ModelConfig:
    name: str = "peleenet_duc"
    params: dict = field(default_factory=dict)  # keyword arguments of the registered builder
    init: str = ""                              # "imagenet", or a tf_keras .h5 model / weights file copied by name
    freeze_batchnorm: bool = False              # BatchNorm kept in inference mode (pretrained statistics)


@dataclass
class TrainConfig:
    epochs: int = 10
    batch_size: int = 32
    learning_rate: float = 1e-3
    schedule: Literal["constant", "cosine", "step"] = "cosine"
    steps_per_epoch: int = 0                    # 0: one pass over the training set
    checkpoint_every_epochs: int = 1
    eval_every_epochs: int = 0                  # > 0: OKS AP on the val split every N epochs (logged as val_AP)
    early_stopping_patience: int = 0            # > 0 (needs eval_every_epochs): stop after N evaluations without a new best
    # the validation figure that stops early and then picks the kept student (without early stopping the last
    # epoch's student is kept: nothing is chosen on the val split): per-person mean OKS is continuous, so it still
    # ranks students on a few dozen persons while their AP is stuck at 0
    select_on: Literal["AP", "mean_OKS"] = "AP"
    strategy: Literal["default", "mirrored", "multi_worker_mirrored"] = "default"   # tf.distribute strategy
    precision: Literal["float32", "mixed_float16", "mixed_bfloat16"] = "float32"    # last heatmap conv stays float32


@dataclass
class TeacherConfig:
    source: Literal["train", "keras", "savedmodel", "none"] = "train"  # train one, load a Keras model or a TF SavedModel from `path`; none: no teacher
    path: str = ""
    signature: str = "serving_default"          # savedmodel: the signature to call ...
    input_key: str = "images"                   # ... its float32 [B, S, S, 3] 0..255 input ...
    output_key: str = "heatmaps"                # ... and its [B, S/stride, S/stride, K] heatmap output
    input_size: tuple[int, int] = (256, 256)    # savedmodel: its square (W, H) input
    stride: int = 4                             # savedmodel: input pixels per heatmap cell
    sigma: float = 1.05                         # savedmodel: its peak sigma in its own heatmap cells (MoveNet: ~1.05)
    # savedmodel, test-time augmentation: its heatmaps averaged over the mirrored view (left and right joints swapped
    # back) and over zooms of its square view (2: twice as close, 0.8: a wider view, the border black)
    tta_flip: bool = False
    tta_scales: tuple[float, ...] = (1.0,)
    model: ModelConfig = field(default_factory=lambda: ModelConfig("hourglass", {"stacks": 2, "channels": 128}))
    train: TrainConfig = field(default_factory=TrainConfig)


@dataclass
class DskdConfig:
    threshold: float = 0.1                       # teacher heatmap values under this become 0 before they guide
    ce_weight: float = 0.001                     # weight of the spatial softmax cross-entropy beside the MSE
    temperature: float = 0.1                     # heatmap / T are the softmax logits of the cross-entropy
    assistants: tuple[str, ...] = ()             # saved Keras teacher assistants (same input as the student), strongest first


@dataclass
class OkdhpConfig:
    branches: int = 3                            # student branches; branch 0 is the student that is exported
    branch_from: str = ""                        # layer the branches split after; "": the last one below heatmap size
    ensemble_weight: float = 6.0                 # x MSE(ensemble, ground truth)
    kl_weight: float = 5.0                       # x ramp(t) x sum_b KL(ensemble || branch_b)
    temperature: float = 1.0
    rampup_epochs: int = 0                       # T of exp(-5 (1 - t/T)^2); 0: the whole training


@dataclass
class DkdConfig:
    adversarial_weight: float = 0.001            # x the temporal discriminator's "real" loss on predicted sequences
    own_weight: float = 0.5                      # x MSE of the frame encoder's own heatmaps beside the tracked ones
    window: int = 3                              # consecutive heatmaps the discriminator sees at once


@dataclass
class ViewAugmentConfig:
    """What training does to a cached teacher view as it draws it (``tfpose.distill.view_cache.draw_batch``): the
    teacher's heatmaps move with the crop; occluders and truncation hide parts of the student's crop only (the
    teacher saw the whole body, so the student learns where a hidden joint is)."""
    shift: float = 0.0           # std of the crop centre's shift, a fraction of its size per axis (a detector's box error)
    scale: float = 0.0           # std of the log of the crop side's error
    occlusion: float = 0.0       # probability of a rectangle of another crop pasted over this one
    truncation: float = 0.0      # probability of a band along one side blacked out, as an image's frame cuts a body


@dataclass
class DistillConfig:
    alpha: float = 0.5                           # weight of the teacher term; 1 - alpha weighs ground truth
    method: Literal["fpd", "dskd", "okdhp", "dkd"] = "fpd"   # fpd: alpha-mixed MSE (FPD / Park et al.); dkd: video
    heatmap_loss: Literal["mse", "bce"] = "mse"  # fpd's per-cell term; bce for sigmoid heads (MoveNet's pyramid head)
    kd_schedule: Literal["constant", "linear"] = "constant"   # alpha over training: constant, or linear to kd_end x alpha
    kd_end: float = 0.0
    unlabelled: bool = False                     # with a teacher: also train on person boxes without keypoints (GT weight 0)
    confidence_weights: bool = False             # fpd: each joint's teacher term x the teacher's peak height there
    # fpd, DWPose's feature term: a tf_keras teacher file (e.g. ../shared/models/init/movenet-thunder-keras.h5) run on
    # the student's crop; a trained 1x1 projection of the student's feature_layer output learns its feature_layer output
    feature_teacher: str = ""
    feature_layer: str = "fpn_sep2"
    feature_weight: float = 1.0
    # DWPose's second stage: after distillation, this many steps train the head alone (every layer after
    # feature_layer) against ground truth and the distilled student itself, the rest frozen
    second_stage_steps: int = 0
    teacher_views: int = 0                       # > 0 (SavedModel teacher): precompute the teacher on this many augmented
                                                 # views per person once, then train from that cache (teacher cost paid once)
    teacher_cache: str = ""                      # folder for those views, named by what they depend on; "" = the run folder
    view_augment: ViewAugmentConfig = field(default_factory=ViewAugmentConfig)
    dskd: DskdConfig = field(default_factory=DskdConfig)
    okdhp: OkdhpConfig = field(default_factory=OkdhpConfig)
    dkd: DkdConfig = field(default_factory=DkdConfig)
    student: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)


@dataclass
class ExportConfig:
    quant: Literal["int8", "qat-int8", "float16", "dynamic", "float32"] = "int8"   # qat-int8: QAT, then int8
    input_type: Literal["uint8", "int8", "float32"] = "uint8"
    output_type: Literal["int8", "uint8", "float32"] = "int8"
    calibration_samples: int = 128
    reference_samples: int = 32
    decode: Literal["heatmaps", "keypoints"] = "heatmaps"   # keypoints: argmax + quarter offset inside the graph
    float_layers: int = 0                        # int8: keep the N layers the sensitivity report blames most in float
    prune_sparsity: float = 0.0                  # > 0: magnitude-prune to this sparsity (fine-tuned) before converting
    prune_stem_and_head: bool = False            # also prune the stem and the final heatmap conv
    prune_block: int = 1                         # > 1: 1x1 convs lose runs of this many input channels (zips smaller)
    # structured (channel) pruning, fine-tuned like the above: whole channels go, so the int8 file runs faster
    prune_target_gmacs: float = 0.0              # > 0: remove channels down to this many GMACs (batch 1)
    prune_channel_ratio: float = 1.0             # < 1: keep this fraction of every channel group instead
    prune_criterion: Literal["fisher", "taylor", "magnitude", "bn", "random"] = "fisher"   # channel saliency
    prune_allocation: Literal["global", "uniform"] = "global"   # with a target: least saliency per MAC, or one ratio
    prune_saliency_batches: int = 8              # fine-tuning batches the fisher / taylor saliency is measured on
    prune_divisor: int = 8                       # every channel group keeps a multiple of this many channels
    finetune_steps: int = 300                    # pruning / QAT fine-tuning batches (teacher-guided when there is one)
    prune_finetune_steps: int = 0                # > 0: pruning's own fine-tuning batches (a deep cut needs more than QAT)
    prune_parent_weight: float = 0.0             # > 0: the unpruned student guides channel pruning's fine-tuning too
    finetune_batch_size: int = 16
    finetune_learning_rate: float = 1e-4         # pruning; QAT uses a tenth of it

    @property
    def prunes_channels(self) -> bool:
        """Whether the export removes whole channels (``tfpose.structured_prune``) first."""
        return self.prune_target_gmacs > 0 or self.prune_channel_ratio < 1


@dataclass
class ValidateConfig:
    threads: tuple[int, ...] = (1, 2)
    warmup_runs: int = 5
    latency_runs: int = 50
    overlays: int = 4


@dataclass
class PipelineConfig:
    seed: int = 0
    skeleton: str = "coco17"
    data: DataConfig = field(default_factory=DataConfig)
    codec: CodecConfig = field(default_factory=CodecConfig)
    teacher: TeacherConfig = field(default_factory=TeacherConfig)
    distill: DistillConfig = field(default_factory=DistillConfig)
    export: ExportConfig = field(default_factory=ExportConfig)
    validate: ValidateConfig = field(default_factory=ValidateConfig)

    def to_dict(self) -> dict:
        return _to_plain(dataclasses.asdict(self))


def load_config(path: str | Path | None = None, overrides: typing.Sequence[str] = ()) -> PipelineConfig:
    """Read a YAML preset (or the defaults) and apply ``dotted.key=value`` overrides."""
    raw: dict = {}
    source = "<defaults>"
    if path is not None:
        source = str(path)
        try:
            raw = yaml.safe_load(Path(path).read_text()) or {}
        except FileNotFoundError:
            raise InputError("config file not found", path=path) from None
        except yaml.YAMLError as e:
            raise InputError(f"not valid YAML: {e}", path=path) from None
        if not isinstance(raw, dict):
            raise InputError("a config must be a mapping of keys to values", path=path)
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise InputError(f"override '{item}' is not of the form key=value", path="<command line>")
        _set_dotted(raw, key.strip(), yaml.safe_load(value))
    if overrides:
        source += " + command-line overrides"
    cfg = _build(PipelineConfig, raw, source, prefix="")
    check_config(cfg, source)
    return cfg


# the range of every numeric field of every section (each item, for a tuple), as an interval: a value outside it,
# NaN or an infinity is an error naming the field when the config loads, before anything runs or is written
RANGES: dict[type, dict[str, str]] = {
    SyntheticConfig: {"num_train_images": "[1, inf)", "num_val_images": "[1, inf)", "image_size": "[1, inf)",
                      "max_people": "[1, inf)", "seed": "[0, 2147483647]"},
    AugmentConfig: {"scale": "[0, 1)", "rotation": "[0, 180]", "rotation_prob": "[0, 1]", "colour": "[0, 1]",
                    "shift": "[0, 0.5]"},
    SourceConfig: {"weight": "[0, inf)"},
    VideoConfig: {"sequences": "[1, inf)", "frames": "[2, inf)", "dev_sequences": "[1, inf)", "image_size": "[16, inf)",
                  "val_sequences": "[1, inf)", "val_frames": "[2, inf)", "seed": "[0, 2147483647]"},
    DataConfig: {"val_fraction": "[0, 1)", "split_seed": "[0, 2147483647]", "min_keypoints": "[0, inf)",
                 "padding": "(0, inf)", "weight": "[0, inf)"},
    CodecConfig: {"input_size": "[1, inf)", "stride": "[1, inf)", "sigma": "(0, inf)", "peak_blur": "[0, inf)"},
    TrainConfig: {"epochs": "[1, inf)", "batch_size": "[1, inf)", "learning_rate": "(0, inf)",
                  "steps_per_epoch": "[0, inf)", "checkpoint_every_epochs": "[1, inf)", "eval_every_epochs": "[0, inf)",
                  "early_stopping_patience": "[0, inf)"},
    TeacherConfig: {"input_size": "[1, inf)", "stride": "[1, inf)", "sigma": "(0, inf)", "tta_scales": "(0, inf)"},
    DskdConfig: {"threshold": "[0, 1]", "ce_weight": "[0, inf)", "temperature": "(0, inf)"},
    OkdhpConfig: {"branches": "[1, inf)", "ensemble_weight": "[0, inf)", "kl_weight": "[0, inf)",
                  "temperature": "(0, inf)", "rampup_epochs": "[0, inf)"},
    DkdConfig: {"adversarial_weight": "[0, inf)", "own_weight": "[0, inf)", "window": "[2, inf)"},
    ViewAugmentConfig: {"shift": "[0, 0.5]", "scale": "[0, 1]", "occlusion": "[0, 1]", "truncation": "[0, 1]"},
    DistillConfig: {"alpha": "[0, 1]", "kd_end": "[0, inf)", "teacher_views": "[0, inf)", "feature_weight": "[0, inf)",
                    "second_stage_steps": "[0, inf)"},
    ExportConfig: {"calibration_samples": "[1, inf)", "reference_samples": "[1, inf)", "float_layers": "[0, inf)",
                   "prune_sparsity": "[0, 1)", "prune_block": "[1, inf)", "finetune_steps": "[1, inf)",
                   "prune_finetune_steps": "[0, inf)", "prune_parent_weight": "[0, inf)",
                   "prune_target_gmacs": "[0, inf)", "prune_channel_ratio": "(0, 1]",
                   "prune_saliency_batches": "[1, inf)", "prune_divisor": "[1, inf)",
                   "finetune_batch_size": "[1, inf)", "finetune_learning_rate": "(0, inf)"},
    ValidateConfig: {"threads": "[1, inf)", "warmup_runs": "[0, inf)", "latency_runs": "[0, inf)",
                     "overlays": "[0, inf)"},
    PipelineConfig: {"seed": "[0, 2147483647]"},
}


def check_config(cfg: PipelineConfig, source: str = "<config>") -> None:
    """Every field in its range (``RANGES``) and the fields that constrain each other consistent; an InputError
    naming the field otherwise."""

    def fail(key: str, message: str):
        raise InputError(message, path=source, field=key)

    _check_ranges(cfg, "", fail)
    if cfg.skeleton not in SKELETONS:
        near = difflib.get_close_matches(cfg.skeleton, list(SKELETONS), n=1)
        fail("skeleton", f"unknown skeleton '{cfg.skeleton}'"
             + (f"; did you mean '{near[0]}'?" if near else f"; known: {', '.join(sorted(SKELETONS))}"))
    c, t = cfg.codec, cfg.teacher
    if any(size % c.stride for size in c.input_size):
        fail("codec.input_size", f"{list(c.input_size)} (W, H) is not divisible by codec.stride {c.stride}")
    if t.source == "savedmodel" and any(size % t.stride for size in t.input_size):
        fail("teacher.input_size", f"{list(t.input_size)} (W, H) is not divisible by teacher.stride {t.stride}")
    if cfg.data.min_keypoints > SKELETONS[cfg.skeleton].num_keypoints:
        fail("data.min_keypoints", f"{cfg.data.min_keypoints} is more than the {cfg.skeleton} skeleton's "
             f"{SKELETONS[cfg.skeleton].num_keypoints} keypoints")
    for name, train in (("teacher.train", t.train), ("distill.train", cfg.distill.train)):
        if train.early_stopping_patience > 0 and train.eval_every_epochs <= 0:
            fail(f"{name}.early_stopping_patience", f"early stopping needs {name}.eval_every_epochs > 0")
    d = cfg.distill
    if d.kd_schedule == "linear" and d.alpha * d.kd_end > 1:
        fail("distill.kd_end", f"alpha x kd_end = {d.alpha * d.kd_end:g} is a weight above 1")
    if d.feature_teacher and d.method != "fpd":
        fail("distill.feature_teacher", f"the feature term is fpd's; method is {d.method}")
    if d.feature_teacher and not Path(d.feature_teacher).is_file():
        fail("distill.feature_teacher", f"file not found: {d.feature_teacher}")
    v = d.view_augment
    if (v.shift or v.scale or v.occlusion or v.truncation) and d.teacher_views <= 0:
        fail("distill.view_augment", "augments the cached teacher views: set distill.teacher_views > 0")
    if cfg.export.prune_sparsity > 0 and cfg.export.finetune_steps < 2:
        fail("export.finetune_steps", "pruning needs at least 2 fine-tuning steps")
    e = cfg.export
    if e.prune_target_gmacs > 0 and e.prune_channel_ratio < 1:
        fail("export.prune_channel_ratio", "give export.prune_target_gmacs or export.prune_channel_ratio, not both")
    if e.prune_parent_weight > 0 and not e.prunes_channels:
        fail("export.prune_parent_weight", "the unpruned student guides channel pruning: set export.prune_target_gmacs "
             "or export.prune_channel_ratio")
    if e.prune_target_gmacs > 0 and e.prune_allocation == "global" and e.prune_criterion not in ("fisher", "taylor"):
        fail("export.prune_criterion", f"'{e.prune_criterion}' ranks channels within a layer only: global allocation "
             "needs fisher or taylor, or set export.prune_allocation=uniform")
    if not cfg.validate.threads:
        fail("validate.threads", "needs at least one thread count")
    from tfpose.models.registry import check_model   # imports Keras: only the stages that build models load configs

    video = d.method == "dkd"
    if video and d.dkd.window > cfg.data.video.frames:
        fail("distill.dkd.window", f"{d.dkd.window} frames do not fit in a track of data.video.frames "
             f"{cfg.data.video.frames}")
    if video and t.source == "savedmodel":
        fail("teacher.source", "dkd's first frame comes from a Keras teacher (train, keras) or none")
    if video and (e.quant != "int8" or e.prune_sparsity > 0 or e.prune_target_gmacs > 0 or e.prune_channel_ratio < 1):
        fail("export.quant", "a video student (dkd) exports to post-training int8 only, without pruning")
    check_model(d.student.name, d.student.params, path=source, field="distill.student",
                kind="video" if video else "pose")
    # a trained teacher is built with intermediate outputs (one per stack), for intermediate supervision
    check_model(t.model.name, t.model.params, path=source, field="teacher.model",
                fixed=("intermediate",) if t.source == "train" else ())


def _check_ranges(section: Any, prefix: str, fail) -> None:
    ranges = RANGES.get(type(section), {})
    for f in dataclasses.fields(section):
        key, value = f"{prefix}{f.name}", getattr(section, f.name)
        if dataclasses.is_dataclass(value):
            _check_ranges(value, key + ".", fail)
        elif isinstance(value, tuple) and value and dataclasses.is_dataclass(value[0]):
            for i, item in enumerate(value):
                _check_ranges(item, f"{key}[{i}].", fail)
        elif f.name in ranges:
            for item in value if isinstance(value, tuple) else (value,):
                if not _inside(item, ranges[f.name]):
                    fail(key, f"must be in {ranges[f.name]}, got {item!r}")


def _inside(value: float, interval: str) -> bool:
    """Whether ``value`` lies in ``interval``, written "[0, 1)", "(0, inf)", ...; NaN lies in none."""
    low, high = (float(v) for v in interval[1:-1].split(","))
    above = value >= low if interval[0] == "[" else value > low
    below = value <= high if interval[-1] == "]" else value < high
    return bool(above and below)


def _set_dotted(raw: dict, key: str, value: Any) -> None:
    node = raw
    parts = key.split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise InputError(f"'{part}' is not a section", path="<command line>", field=key)
    node[parts[-1]] = value


def _build(cls: type, raw: Any, source: str, prefix: str):
    if not isinstance(raw, dict):
        raise InputError(f"expected a mapping, got {type(raw).__name__}", path=source, field=prefix.rstrip("."))
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    for key in raw:
        if key not in names:
            near = difflib.get_close_matches(str(key), names, n=1, cutoff=0.5)
            hint = f"; did you mean '{prefix}{near[0]}'?" if near else f"; valid keys: {', '.join(names)}"
            raise InputError(f"unknown config key{hint}", path=source, field=f"{prefix}{key}")
    kwargs = {}
    for name in names:
        if name in raw:
            kwargs[name] = _coerce(hints[name], raw[name], source, f"{prefix}{name}")
    return cls(**kwargs)


def _coerce(hint: Any, value: Any, source: str, key: str):
    origin = typing.get_origin(hint)
    if dataclasses.is_dataclass(hint):
        return _build(hint, value, source, key + ".")
    if origin is Literal:
        choices = typing.get_args(hint)
        if value not in choices:
            near = difflib.get_close_matches(str(value), [str(c) for c in choices], n=1)
            hint_text = f"; did you mean '{near[0]}'?" if near else ""
            raise InputError(f"'{value}' is not one of {list(choices)}{hint_text}", path=source, field=key)
        return value
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise InputError(f"expected a list, got {value!r}", path=source, field=key)
        args = typing.get_args(hint)
        item_type = args[0]
        if args[-1] is not Ellipsis and len(args) != len(value):
            raise InputError(f"expected {len(args)} values, got {len(value)}", path=source, field=key)
        return tuple(_coerce(item_type, v, source, key) for v in value)
    if hint is dict or origin is dict:
        if not isinstance(value, dict):
            raise InputError(f"expected a mapping, got {value!r}", path=source, field=key)
        return dict(value)
    if hint is bool:
        if not isinstance(value, bool):
            raise InputError(f"expected true or false, got {value!r}", path=source, field=key)
        return value
    if hint in (int, float):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or (hint is int and value != int(value)):
            raise InputError(f"expected {hint.__name__}, got {value!r}", path=source, field=key)
        return hint(value)
    if hint is str:
        if not isinstance(value, str):
            raise InputError(f"expected a string, got {value!r}", path=source, field=key)
        return value
    return value


def _to_plain(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _to_plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_to_plain(v) for v in obj]
    return obj
