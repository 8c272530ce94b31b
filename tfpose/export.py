"""Export a Keras student to a deployable .tflite: optional pruning and QAT first, conversion, metadata inside the
file, reference outputs for parity checks, and the Android assets folder."""

from __future__ import annotations

import dataclasses
import hashlib
import shutil
from pathlib import Path

import numpy as np

from tflite import metadata as tfl_metadata
from tflite.convert import convert
from tfpose import __version__
from tfpose.artifacts import atomic_paths
from tfpose.codec import HeatmapCodec
from tfpose.config import DistillConfig, ExportConfig, PipelineConfig
from tfpose.errors import InputError
from tfpose.skeleton import Skeleton

NORMALISATION = "inside the model: raw RGB pixels 0..255 in, x / 127.5 - 1 applied by the graph"
FORMATS = {"heatmaps": "tfpose-heatmap", "keypoints": "tfpose-keypoints"}


def export_name(cfg: ExportConfig) -> str:
    """The file name of an export: ``student_int8.tflite``, ``student_qat-int8_sparse50_keypoints.tflite``, ..."""
    sparse = f"_sparse{round(100 * cfg.prune_sparsity)}" if cfg.prune_sparsity > 0 else ""
    floats = f"_float{cfg.float_layers}" if cfg.float_layers > 0 and cfg.quant.endswith("int8") else ""
    decode = "_keypoints" if cfg.decode == "keypoints" else ""
    channels = (f"_channels-{cfg.prune_target_gmacs:g}gmac" if cfg.prune_target_gmacs > 0 else
                f"_channels-r{cfg.prune_channel_ratio:g}" if cfg.prune_channel_ratio < 1 else "")
    return f"student_{cfg.quant}{channels}{sparse}{floats}{decode}.tflite"


def prunes_channels(cfg: ExportConfig) -> bool:
    """Whether the export removes whole channels (``tfpose.structured_prune``) first."""
    return cfg.prunes_channels


def graph_codec(codec: HeatmapCodec, cfg: ExportConfig) -> HeatmapCodec:
    """The codec the exported graph implies: in-graph decoding refines by quarter offsets (DARK's blur and log do
    not fit int8 builtin ops), so that is what its metadata must say."""
    if cfg.decode == "keypoints" and codec.refine == "dark":
        return dataclasses.replace(codec, refine="quarter")
    return codec


def _io(details: list[dict]) -> list[dict]:
    out = []
    for d in details:
        scale, zero_point = d["quantization"]
        out.append({"name": d["name"], "shape": [int(v) for v in d["shape"]], "dtype": np.dtype(d["dtype"]).name,
                    "scale": float(scale), "zero_point": int(zero_point)})
    return out


def build_metadata(model, codec: HeatmapCodec, skeleton: Skeleton, padding: float, cfg: ExportConfig,
                   model_bytes: bytes, extra: dict | None = None) -> dict:
    """Everything a device needs to run and read the model: format, keypoints, skeleton, codec (input size,
    stride, sigma, refinement), crop padding, normalisation, quantization and the I/O tensors' scales."""
    from tfpose._keras import tf

    interpreter = tf.lite.Interpreter(model_content=model_bytes)
    inputs, outputs = _io(interpreter.get_input_details()), _io(interpreter.get_output_details())
    if cfg.decode == "keypoints":
        outputs.sort(key=lambda o: -len(o["shape"]))   # keypoints (1, K, 2) first, then scores (1, K)
    meta = {
        "format": FORMATS[cfg.decode], "tfpose_version": __version__, "model": model.name, "quantization": cfg.quant,
        "skeleton": skeleton.name, "keypoints": list(skeleton.keypoints), "edges": [list(e) for e in skeleton.edges],
        "flip_index": skeleton.flip_index.tolist(), "codec": codec.to_dict(), "padding": padding,
        "normalisation": NORMALISATION, "input": inputs[0], "output": outputs[0], "outputs": outputs,
    }
    if cfg.decode == "keypoints":
        meta["decoding"] = ("in the graph: argmax per joint (of the codec's matched filter when peak_blur > 0), "
                            "then the codec's refinement; outputs keypoints [1, K, 2] (x, y) in input pixels "
                            "(pixel centres) and scores [1, K] (heatmap peaks)")
    return {**meta, **(extra or {})}


def export_tflite(model, out_path: str | Path, codec: HeatmapCodec, skeleton: Skeleton, padding: float,
                  cfg: ExportConfig, calibration: np.ndarray, reference_crops: np.ndarray,
                  reference_weights: np.ndarray, metadata: dict | None = None) -> Path:
    """Write ``out_path`` (.tflite with metadata) and ``out_path.reference.npz`` (Keras outputs on reference crops,
    and the sha256 of the .tflite they belong to) together: both or neither replace the old pair.

    calibration: (N, H, W, 3) raw crops from the training pipeline; reference_crops: (M, H, W, 3) uint8;
    reference_weights: (M, K) labelled-joint weights of those crops; metadata: extra entries (e.g. pruning).
    ``model`` is already pruned / QAT-trained when the config asks for it (``compress_student``).
    """
    out_path = Path(out_path)
    check_model_fits(model, codec, skeleton)
    codec = graph_codec(codec, cfg)
    quant = "int8" if cfg.quant == "qat-int8" else cfg.quant
    extra = dict(metadata or {})
    float_nodes: list[str] = []
    if cfg.float_layers > 0 and quant == "int8":
        from tfpose.quantize import sensitivity_report

        worst = sensitivity_report(model, calibration)[: cfg.float_layers]
        float_nodes = [r["tensor"] for r in worst]
        extra["float_layers"] = [{"layer": r["layer"], "op": r["op"], "rmse_per_step": r["rmse_per_step"]}
                                 for r in worst]
    model_bytes = convert(model, quant, calibration, cfg.input_type, cfg.output_type, float_nodes,
                          codec if cfg.decode == "keypoints" else None)
    meta = build_metadata(model, codec, skeleton, padding, cfg, model_bytes, extra)
    reference = model.predict(reference_crops.astype(np.float32), batch_size=16, verbose=0)
    return write_with_reference(out_path, tfl_metadata.attach(model_bytes, meta),
                                crops=reference_crops.astype(np.uint8), heatmaps=reference.astype(np.float32),
                                weights=reference_weights.astype(np.float32))


def write_with_reference(out_path: Path, data: bytes, **reference) -> Path:
    """``out_path`` (the .tflite bytes ``data``) and ``out_path.reference.npz`` (the ``reference`` arrays and the
    sha256 of ``data``) as one set; the model goes last: a .tflite in place means its reference is too."""
    with atomic_paths(out_path.with_suffix(".reference.npz"), out_path) as (tmp_reference, tmp_model):
        with open(tmp_reference, "wb") as f:
            np.savez_compressed(f, **reference, model_sha256=np.array(hashlib.sha256(data).hexdigest()))
        tmp_model.write_bytes(data)
    return out_path


def check_model_fits(model, codec: HeatmapCodec, skeleton: Skeleton) -> None:
    """Refuse a model whose input is not the codec's (1, H, W, 3) or whose output is not (1, h, w, K) heatmaps
    of the codec and the skeleton: an InputError naming the config field it disagrees with."""
    w, h = codec.input_size
    hw, hh = codec.heatmap_size
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise InputError(f"a deployable model has one input and one output, {model.name} has "
                         f"{len(model.inputs)} and {len(model.outputs)}")
    got_in, got_out = tuple(model.input_shape[1:]), tuple(model.output_shape[1:])
    if got_in != (h, w, 3):
        raise InputError(f"model {model.name} takes (H, W, C) {got_in}, the codec's input_size [{w}, {h}] "
                         f"needs {(h, w, 3)}", field="codec.input_size")
    if got_out[-1] != skeleton.num_keypoints:
        raise InputError(f"model {model.name} outputs {got_out[-1]} heatmaps, the {skeleton.name} skeleton has "
                         f"{skeleton.num_keypoints} keypoints", field="skeleton")
    if got_out[:2] != (hh, hw):
        raise InputError(f"model {model.name} outputs (h, w) {got_out[:2]} heatmaps, codec.input_size / "
                         f"codec.stride {codec.stride} gives {(hh, hw)}", field="codec.stride")


def compresses(cfg: ExportConfig, quantize: bool = True) -> bool:
    """Whether ``compress_student`` has work to do (and so needs its fine-tuning data): channel or weight pruning,
    or QAT (only with ``quantize``)."""
    return cfg.prune_sparsity > 0 or (quantize and cfg.quant == "qat-int8") or prunes_channels(cfg)


def compress_student(student, data, export: ExportConfig, distill: DistillConfig, teacher=None,
                     quantize: bool = True):
    """Prune channels, prune weights and/or QAT-train ``student`` (QAT only with ``quantize``) as ``export`` asks,
    fine-tuning on ``data`` (the training batches, ``finetune_data``) through the Distiller with ``distill``'s alpha
    and heatmap loss (``teacher`` guiding when given). Returns (model to convert, metadata entries)."""
    e = export
    if not compresses(e, quantize):
        return student, {}
    alpha, notes = distill.alpha, {}
    if prunes_channels(e):
        student, notes["channel_pruning"] = prune_channels(student, data, e, distill, teacher)
    if e.prune_sparsity > 0:
        from tfpose.prune import choose_layers, prune

        layers = None if not e.prune_stem_and_head else choose_layers(student, True, True)
        result = prune(student, e.prune_sparsity, data, pruning_steps(e), teacher, alpha, e.finetune_learning_rate,
                       layers, e.prune_block, distill.heatmap_loss)
        student = result.model
        notes["pruning"] = {"target_sparsity": e.prune_sparsity, "sparsity": result.sparsity,
                            "dense_layers": result.dense_layers, "finetune_steps": pruning_steps(e),
                            "block": e.prune_block, "layers": result.layers}
        print(f"    pruned to {result.sparsity:.3f} sparsity over {len(result.layers)} layers")
    if quantize and e.quant == "qat-int8":
        from tfpose.quantize import quantization_aware_training

        student = quantization_aware_training(student, data, e.finetune_steps, teacher, alpha,
                                              e.finetune_learning_rate / 10, preserve_sparsity=e.prune_sparsity > 0,
                                              heatmap_loss=distill.heatmap_loss)
        notes["qat"] = {"finetune_steps": e.finetune_steps, "preserve_sparsity": e.prune_sparsity > 0}
        print(f"    quantization-aware training: {e.finetune_steps} steps")
    return student, notes


def pruning_steps(export: ExportConfig) -> int:
    """Fine-tuning batches after channel or weight pruning: ``prune_finetune_steps``, else QAT's ``finetune_steps``."""
    return export.prune_finetune_steps or export.finetune_steps


def prune_channels(student, data, export: ExportConfig, distill: DistillConfig, teacher=None):
    """Remove whole channels of ``student`` as ``export`` asks (saliency on ``data``, the fine-tuning batches), then
    fine-tune the narrower model through the Distiller. Returns (model, metadata entry)."""
    from tfpose.finetune import finetune
    from tfpose.structured_prune import structured_prune

    e, d = export, distill
    try:
        result = structured_prune(student, e.prune_target_gmacs * 1e9 if e.prune_target_gmacs > 0 else None,
                                  e.prune_channel_ratio if e.prune_channel_ratio < 1 else None, e.prune_criterion,
                                  e.prune_allocation, data, e.prune_saliency_batches, teacher, d.alpha,
                                  d.heatmap_loss, e.prune_divisor)
    except ValueError as err:
        field = "export.prune_target_gmacs" if e.prune_target_gmacs > 0 else "export.prune_channel_ratio"
        raise InputError(str(err), field=field) from None
    # a deep cut is a short training run: cosine decay lets it settle, where QAT's few steps keep a constant rate
    parent = student if e.prune_parent_weight > 0 else None
    model = finetune(result.model, data, pruning_steps(e), teacher, d.alpha, e.finetune_learning_rate,
                     heatmap_loss=d.heatmap_loss, parent=parent, parent_weight=e.prune_parent_weight, cosine=True)
    guided = f", the unpruned student guiding (weight {e.prune_parent_weight:g})" if parent is not None else ""
    print(f"    channels pruned ({result.criterion}, {result.allocation}): {result.macs_before / 1e9:.3f} -> "
          f"{result.macs_after / 1e9:.3f} GMAC, then {pruning_steps(e)} fine-tuning steps{guided}")
    return model, {**result.summary(), "finetune_steps": pruning_steps(e), "parent_weight": e.prune_parent_weight}


def prune_and_save(student, data, export: ExportConfig, distill: DistillConfig, out: Path, teacher=None) -> Path:
    """``tfpose prune``: remove channels and/or weights of ``student`` as ``export`` asks, fine-tuned on ``data``
    (``finetune_data``; None when there is nothing to prune, which is refused), and write ``out /
    student_pruned.keras`` with ``student_pruned.json`` (what was removed; MACs before and after) as a set."""
    import json

    e = export
    if not prunes_channels(e) and e.prune_sparsity <= 0:
        raise InputError("nothing to prune: give a MAC target, a channel ratio or a sparsity",
                         field="export.prune_target_gmacs")
    model, notes = compress_student(student, data, e, distill, teacher, quantize=False)
    path = Path(out) / "student_pruned.keras"
    with atomic_paths(path.with_suffix(".json"), path) as (tmp_notes, tmp_model):
        tmp_notes.write_text(json.dumps(notes, indent=2) + "\n")
        model.save(tmp_model)
    return path


def finetune_data(cfg: PipelineConfig, out: Path, sampler, draw: np.ndarray, teacher=None):
    """The fine-tuning batches of pruning and QAT (``cfg.export.finetune_batch_size``): the distillation stage's
    training crops from ``sampler`` (every source's persons; with unlabelled ones when a teacher guides and
    ``distill.unlabelled``), each drawn with probability ``draw`` (N,); a SavedModel teacher's cached views when the
    config caches them (the same folder under ``out`` or ``distill.teacher_cache`` that training filled), else the
    teacher runs online."""
    from tfpose.data.pipeline import build_dataset
    from tfpose.distill.teachers import SavedModelTeacher, TeacherViewSampler, build_teacher_view_dataset

    d, batch = cfg.distill, cfg.export.finetune_batch_size
    if isinstance(teacher, SavedModelTeacher) and d.teacher_views > 0:
        from tfpose.distill.view_cache import cached_teacher_views, cached_view_dataset
        from tfpose.train import is_chief

        cache = cached_teacher_views(cfg, out, teacher, sampler, d.teacher_views, chief=is_chief(d.train.strategy))
        return cached_view_dataset(cache, sampler.codec, sampler.flip_index, draw, batch, cfg.data.augment.colour,
                                   cfg.seed + 7)
    if isinstance(teacher, SavedModelTeacher):
        return build_teacher_view_dataset(TeacherViewSampler(sampler, teacher.input_size), batch, training=True,
                                          seed=cfg.seed, probabilities=draw)
    return build_dataset(sampler, batch, training=True, seed=cfg.seed, probabilities=draw)


def calibration_crops(sampler, draw: np.ndarray, count: int, seed: int) -> np.ndarray:
    """(n, H, W, 3) float32: ``count`` (at most every) distinct persons of ``sampler`` drawn with probability
    ``draw`` (N,), cropped as training crops them without augmentation, so the int8 ranges see every kind of photo."""
    rng = np.random.default_rng(seed)
    index = rng.choice(len(sampler), min(count, len(sampler)), replace=False, p=draw)
    return np.stack([sampler.sample(int(i)).crop for i in index]).astype(np.float32)


def export_student(student, out: Path, codec: HeatmapCodec, skeleton: Skeleton, padding: float, cfg: ExportConfig,
                   calibration: np.ndarray, reference: np.ndarray, reference_weights: np.ndarray, data=None,
                   distill: DistillConfig | None = None, teacher=None) -> Path:
    """Prune / QAT-train ``student`` if ``cfg`` asks (``compress_student`` on ``data``, ``teacher`` guiding), convert
    it with ``calibration`` crops (N, H, W, 3) setting the int8 ranges, and write ``out / export_name(cfg)``, checked
    on the ``reference`` crops (M, H, W, 3) and their keypoint weights (M, K)."""
    path = Path(out) / export_name(cfg)
    student, notes = compress_student(student, data, cfg, distill, teacher)
    export_tflite(student, path, codec, skeleton, padding, cfg, calibration, reference, reference_weights, notes)
    print(f"    {path.name}: {path.stat().st_size / 1024:.0f} KiB ({len(calibration)} calibration crops)")
    return path


def write_android_assets(tflite_path: str | Path, out_dir: str | Path, readme: str | None = None) -> Path:
    """model.tflite, labels.txt, metadata.json and README.md for an app, written as one set into ``out_dir``; the
    person detector's files there (``write_detector_assets``) stay. readme: the README text; default:
    ``asset_readme`` of the model's metadata."""
    import json

    tflite_path, out_dir = Path(tflite_path), Path(out_dir)
    meta = tfl_metadata.read(tflite_path)
    reference = tflite_path.with_suffix(".reference.npz")
    texts = {"labels.txt": "\n".join(meta["keypoints"]) + "\n", "metadata.json": json.dumps(meta, indent=2) + "\n",
             "README.md": readme if readme is not None else asset_readme(meta, reference.is_file())}
    copies = {"model.reference.npz": reference} if reference.is_file() else {}
    copies["model.tflite"] = tflite_path
    out_dir.mkdir(parents=True, exist_ok=True)
    if not reference.is_file():
        (out_dir / "model.reference.npz").unlink(missing_ok=True)   # an old model's reference would mislead
    names = [*texts, *copies]
    with atomic_paths(*(out_dir / n for n in names)) as tmps:
        for tmp, name in zip(tmps, names):
            if name in copies:
                shutil.copyfile(copies[name], tmp)
            else:
                tmp.write_text(texts[name])
    return out_dir


def asset_readme(meta: dict, with_reference: bool = True) -> str:
    """A short README for the app developer, from the model's metadata; ``with_reference``: the folder holds
    ``model.reference.npz``."""
    i, codec = meta["input"], meta["codec"]
    w, h = codec["input_size"]
    lines = [f"# {meta['model']} ({meta['quantization']}, tfpose {meta['tfpose_version']})", "",
             "Top-down 2D pose for one person: crop the person's box (enlarged by "
             f"{meta['padding']}x, aspect {w}:{h}), resize to {w}x{h}, feed raw RGB pixels.", "",
             f"- input: `{i['dtype']}` {i['shape']} (NHWC, RGB 0..255; scale {i['scale']:g}, zero point "
             f"{i['zero_point']}); normalisation happens inside the model",
             "- keypoints: `labels.txt`, one name per line, in output order; skeleton edges in `metadata.json`"]
    if meta["format"] == "tfpose-keypoints":
        lines += ["- outputs: keypoints float32 [1, K, 2] = (x, y) in input pixels, and scores float32 [1, K]; "
                  "no post-processing is needed beyond mapping (x, y) back through your crop transform"]
    else:
        o = meta["output"]
        blur = codec.get("peak_blur", 0.0)
        peak = (f"the argmax cell of each map's matched filter (correlation with a Gaussian of sigma {blur:g} "
                "cells over the map, divided by the norm of its part inside the map; `tfpose.codec.matched_filter`)"
                ) if blur > 0 else "the argmax cell"
        lines += [f"- output: `{o['dtype']}` {o['shape']} heatmaps (dequantize: (q - zero point) x scale, zero point "
                  f"{o['zero_point']}, scale {o['scale']:g}); keypoint = {peak} x {codec['stride']} + "
                  f"{(codec['stride'] - 1) / 2} pixels, refined by '{codec['refine']}' on the unfiltered map; score "
                  "= the unfiltered map there (see `metadata.json` codec)"]
    lines += ["- pixel convention: pixel i is centred at coordinate i (OpenCV warpAffine)"]
    if with_reference:
        lines += ["- `model.reference.npz`: crops and the Keras model's outputs, for a parity check on the device"]
    return "\n".join([*lines, ""])


# -- person detectors ----------------------------------------------------------------------------------------------
DETECTOR_NORMALISATION = ("inside the model: raw RGB pixels 0..255 of the letterboxed square in; the graph reorders "
                          "them to BGR and applies NanoDet's (x - mean) / std")


def detector_squares(images: list[Path], side: int) -> np.ndarray:
    """(N, S, S, 3) uint8: every photo letterboxed as the detector reads it (calibration and reference inputs)."""
    from tfpose.data.images import read_rgb
    from tfpose.detection import letterbox

    return np.stack([letterbox(read_rgb(p), side)[0] for p in images])


def export_detector(model, out_path: str | Path, codec, quant: str, calibration: np.ndarray,
                    reference: np.ndarray, metadata: dict | None = None) -> Path:
    """Write a person detector ``out_path`` (.tflite, metadata inside) and ``out_path.reference.npz`` (the Keras
    outputs on ``reference`` squares, with the .tflite's sha256) together, as ``export_tflite`` does for pose.

    codec: ``tfpose.detection.DetectorCodec``; calibration, reference: (N, S, S, 3) uint8 letterboxed photos.
    int8 is full integer (uint8 pixels in, int8 scores and bins out, each with its own scale).
    """
    from tflite.detector import DETECTOR_FORMAT
    from tfpose._keras import tf

    out_path = Path(out_path)
    side = codec.input_size
    if tuple(model.input_shape[1:]) != (side, side, 3) or len(model.outputs) != 2:
        raise InputError(f"model {model.name} is not a detector of {side} x {side} pixels with scores and distance "
                         f"bins ({model.input_shape} -> {len(model.outputs)} outputs)", field="detector.input_size")
    model_bytes = convert(model, quant, calibration if quant == "int8" else None, "uint8", "int8")
    interpreter = tf.lite.Interpreter(model_content=model_bytes)
    meta = {"format": DETECTOR_FORMAT, "tfpose_version": __version__, "model": model.name, "quantization": quant,
            "detector": codec.to_dict(), "normalisation": DETECTOR_NORMALISATION,
            "input": _io(interpreter.get_input_details())[0], "outputs": _io(interpreter.get_output_details()),
            **(metadata or {})}
    scores, distances = model.predict(reference.astype(np.float32), batch_size=4, verbose=0)
    return write_with_reference(out_path, tfl_metadata.attach(model_bytes, meta), squares=reference.astype(np.uint8),
                                scores=scores.astype(np.float32), distances=distances.astype(np.float32))


def write_detector_assets(tflite_path: str | Path, out_dir: str | Path, card: str,
                          licence: str | Path | None = None, notice: str | None = None) -> Path:
    """detector.tflite, detector_labels.txt, detector_metadata.json and DETECTOR.md (the card) into ``out_dir``
    beside the pose model, with the upstream LICENSE (as LICENSE-detector) and a NOTICE; written as one set."""
    tflite_path, out_dir = Path(tflite_path), Path(out_dir)
    meta = tfl_metadata.read(tflite_path)
    files = {"detector_labels.txt": "\n".join(meta["detector"]["classes"]) + "\n", "DETECTOR.md": card}
    if notice is not None:
        files["NOTICE"] = notice
    if licence is not None:
        if not Path(licence).is_file():
            raise InputError("licence file not found", path=licence)
        files["LICENSE-detector"] = Path(licence).read_text()
    import json

    files["detector_metadata.json"] = json.dumps(meta, indent=2) + "\n"
    out_dir.mkdir(parents=True, exist_ok=True)
    names = [*files, "detector.tflite"]
    with atomic_paths(*(out_dir / n for n in names)) as tmps:
        for tmp, name in zip(tmps, names):
            if name == "detector.tflite":
                shutil.copyfile(tflite_path, tmp)
            else:
                tmp.write_text(files[name])
    return out_dir


def detector_card(tflite_path: str | Path, report: str | Path | None = None) -> str:
    """DETECTOR.md: what the shipped detector is, how to feed it and decode it, how it was made, and - from a
    validator ``report`` (report.json of ``tfpose-validate DETECTOR --annotations ...``) - what it scores."""
    import json

    meta = tfl_metadata.read(tflite_path)
    d, i = meta["detector"], meta["input"]
    side = d["input_size"]
    lines = [f"# Person detector: {meta['model']} ({meta['quantization']}, tfpose {meta['tfpose_version']})", "",
             f"{meta['upstream']}: ShuffleNetV2 1.0x + PAN + GFL head, rebuilt as a tf_keras model with the upstream "
             f"weights ({meta['weights']}, sha256 {meta['weights_sha256'][:12]}...), kept to the person class, and "
             f"converted by `tfpose export-detector` with {meta['calibration']['photos']} real photos as int8 "
             "calibration. Licence: Apache-2.0, `LICENSE-detector`; `NOTICE`.", "",
             "## Input", "",
             f"- `{i['dtype']}` {i['shape']}: the photo letterboxed into a {side} x {side} square (longer side "
             f"resized to {side}, centred, border filled with RGB {d['letterbox_fill_rgb']}), raw RGB 0..255; "
             "normalisation happens inside the model", "",
             "## Outputs and decoding (`tfpose.detection`, numpy)", ""]
    for o in meta["outputs"]:
        kind = "scores: sigmoid person probability per cell" if o["shape"][-1] == len(d["classes"]) else \
            f"distance bins: 4 sides (left, top, right, bottom) x {d['reg_max'] + 1} bin logits per cell"
        lines.append(f"- `{o['dtype']}` {o['shape']} (scale {o['scale']:g}, zero point {o['zero_point']}): {kind}")
    lines += [f"- cells: strides {d['strides']} in that order, each grid row-major; cell centre ((col + 0.5) s, "
              "(row + 0.5) s)",
              "- a side's distance = softmax over its bins, expected bin index, times the stride; box = centre -/+ "
              "(left, top, right, bottom); undo the letterbox; NMS at IoU "
              f"{d['nms_iou']}, at most {d['max_boxes']} boxes", ""]
    if report is not None:
        r = json.loads(Path(report).read_text())
        a = r["detection"]
        lines += ["## Measured (`tfpose-validate`)", "",
                  f"On {r['dataset']['annotations']} ({a['images']} photos, {a['persons']} person boxes, "
                  f"{r['machine']['cpu']}, {r['runtime']}):", "",
                  "| model | person AP50 | AP | recall / precision at score >= "
                  f"{a['operating_score']:g} | 1-thread ms |", "|---|---|---|---|---|"]
        for row in r["comparison"]:
            lines.append(f"| {row['model']} | {row['AP50']:.3f} | {row['AP']:.3f} | {row['recall']:.3f} / "
                         f"{row['precision']:.3f} | {row.get('ms', {}).get('1', float('nan')):.1f} |")
        lines.append("")
    return "\n".join(lines) + "\n"
