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
from tfpose.artifacts import atomic_path, atomic_paths, write_json, write_text
from tfpose.codec import HeatmapCodec
from tfpose.config import ExportConfig
from tfpose.errors import InputError
from tfpose.skeleton import Skeleton

NORMALISATION = "inside the model: raw RGB pixels 0..255 in, x / 127.5 - 1 applied by the graph"
FORMATS = {"heatmaps": "tfpose-heatmap", "keypoints": "tfpose-keypoints"}


def export_name(cfg: ExportConfig) -> str:
    """The file name of an export: ``student_int8.tflite``, ``student_qat-int8_sparse50_keypoints.tflite``, ..."""
    sparse = f"_sparse{round(100 * cfg.prune_sparsity)}" if cfg.prune_sparsity > 0 else ""
    floats = f"_float{cfg.float_layers}" if cfg.float_layers > 0 and cfg.quant.endswith("int8") else ""
    decode = "_keypoints" if cfg.decode == "keypoints" else ""
    return f"student_{cfg.quant}{sparse}{floats}{decode}.tflite"


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
    data = tfl_metadata.attach(model_bytes, meta)
    # the model goes last: a .tflite in place means its reference is too
    with atomic_paths(out_path.with_suffix(".reference.npz"), out_path) as (tmp_reference, tmp_model):
        with open(tmp_reference, "wb") as f:
            np.savez_compressed(f, crops=reference_crops.astype(np.uint8), heatmaps=reference.astype(np.float32),
                                weights=reference_weights.astype(np.float32),
                                model_sha256=np.array(hashlib.sha256(data).hexdigest()))
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


def compress_student(ctx, student, teacher=None):
    """Prune and/or QAT-train ``student`` as ``ctx.cfg.export`` asks, fine-tuning on the training crops through the
    Distiller (``teacher`` guiding when given). Returns (model to convert, metadata entries)."""
    e = ctx.cfg.export
    if e.prune_sparsity <= 0 and e.quant != "qat-int8":
        return student, {}
    data = _finetune_data(ctx, teacher, e.finetune_batch_size)
    alpha, notes = ctx.cfg.distill.alpha, {}
    if e.prune_sparsity > 0:
        from tfpose.prune import choose_layers, prune

        layers = None if not e.prune_stem_and_head else choose_layers(student, True, True)
        result = prune(student, e.prune_sparsity, data, e.finetune_steps, teacher, alpha, e.finetune_learning_rate,
                       layers, e.prune_block, ctx.cfg.distill.heatmap_loss)
        student = result.model
        notes["pruning"] = {"target_sparsity": e.prune_sparsity, "sparsity": result.sparsity,
                            "dense_layers": result.dense_layers, "finetune_steps": e.finetune_steps,
                            "block": e.prune_block, "layers": result.layers}
        print(f"    pruned to {result.sparsity:.3f} sparsity over {len(result.layers)} layers")
    if e.quant == "qat-int8":
        from tfpose.quantize import quantization_aware_training

        student = quantization_aware_training(student, data, e.finetune_steps, teacher, alpha,
                                              e.finetune_learning_rate / 10, preserve_sparsity=e.prune_sparsity > 0,
                                              heatmap_loss=ctx.cfg.distill.heatmap_loss)
        notes["qat"] = {"finetune_steps": e.finetune_steps, "preserve_sparsity": e.prune_sparsity > 0}
        print(f"    quantization-aware training: {e.finetune_steps} steps")
    return student, notes


def _finetune_data(ctx, teacher, batch: int):
    """The training data of the distillation stage: every source, drawn by its weight; a SavedModel teacher's
    cached views when the config caches them (the same folder training filled), else the teacher runs online."""
    from tfpose.data.pipeline import build_dataset
    from tfpose.distill.teachers import SavedModelTeacher, TeacherViewSampler, build_teacher_view_dataset

    d = ctx.cfg.distill
    sampler, draw = ctx.training_sampler(with_unlabelled=teacher is not None and d.unlabelled, augment=True)
    if isinstance(teacher, SavedModelTeacher) and d.teacher_views > 0:
        from tfpose.distill.view_cache import cached_view_dataset
        from tfpose.pipeline import cached_teacher_views

        cache = cached_teacher_views(ctx, teacher, sampler, d.teacher_views)
        return cached_view_dataset(cache, ctx.codec, ctx.skeleton.flip_index, draw, batch,
                                   ctx.cfg.data.augment.colour, ctx.cfg.seed + 7)
    if isinstance(teacher, SavedModelTeacher):
        return build_teacher_view_dataset(TeacherViewSampler(sampler, teacher.input_size), batch, training=True,
                                          seed=ctx.cfg.seed, probabilities=draw)
    return build_dataset(sampler, batch, training=True, seed=ctx.cfg.seed, probabilities=draw)


def write_android_assets(tflite_path: str | Path, out_dir: str | Path, readme: str | None = None) -> Path:
    """model.tflite, labels.txt, metadata.json and README.md for an app; written to a temporary folder first.
    readme: the README text; default: ``asset_readme`` of the model's metadata."""
    tflite_path = Path(tflite_path)
    meta = tfl_metadata.read(tflite_path)
    with atomic_path(out_dir) as tmp:
        tmp.mkdir(parents=True)
        shutil.copyfile(tflite_path, tmp / "model.tflite")
        reference = tflite_path.with_suffix(".reference.npz")
        if reference.is_file():
            shutil.copyfile(reference, tmp / "model.reference.npz")
        write_text(tmp / "labels.txt", "\n".join(meta["keypoints"]) + "\n")
        write_json(tmp / "metadata.json", meta)
        write_text(tmp / "README.md", readme if readme is not None else asset_readme(meta))
    return Path(out_dir)


def asset_readme(meta: dict) -> str:
    """A short README for the app developer, from the model's metadata."""
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
    lines += ["- pixel convention: pixel i is centred at coordinate i (OpenCV warpAffine)",
              "- `model.reference.npz`: crops and the Keras model's outputs, for a parity check on the device", ""]
    return "\n".join(lines)
