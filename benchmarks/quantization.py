"""Quantization and pruning of one student on real photos: float32, float16, dynamic-range, PTQ int8, QAT int8,
50 %-sparse (+ int8), selective int8 and the in-graph decoding variant, side by side.

    python benchmarks/quantization.py --student runs/default/student.keras --write

Data: the real photos of ../shared/data/coco-mini-train, ``load_coco(...).split(0.3, seed=0)``: calibration crops
(up to 128, one unaugmented crop per labelled person) and fine-tuning batches come from the training side, scores
from the val side's labelled ground-truth boxes (OKS AP with its image-bootstrap 95 % interval, PCK@0.2;
``tfpose.evaluation``). Agreement: the share of visible val joints (COCO v = 2) whose keypoint lies within one
heatmap cell of the float Keras student's, every model decoded by the same codec; beside it the same over every
labelled joint (v > 0). Pruning and QAT fine-tune through the Distiller; with the teacher's cached views (a
complete ``teacher_views_N_KEY`` folder of the pipeline, ``tfpose.distill.view_cache``, beside the student, or
``--teacher-views``; drawn evenly over its persons, mirrored by coin flip) the teacher guides (alpha 0.5), otherwise
ground truth alone. Size: the .tflite with its metadata; zip: its deflate size. Latency:
ai-edge-litert, XNNPACK, 1 thread, batch 1, in a fresh process.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))   # run from a checkout without installing

from benchmarks._sections import publish  # noqa: E402
from tfpose.artifacts import write_text  # noqa: E402
from tfpose.config import CodecConfig  # noqa: E402

SHARED = Path(os.environ.get("TFPOSE_SHARED", ROOT.parent / "shared"))


def teacher_view_cache(args, codec):
    """The complete cached teacher views to fine-tune on (``--teacher-views``, else the first complete
    ``teacher_views_*`` folder beside ``--student``) whose crops are the student's input size; None without one."""
    from tfpose.distill.view_cache import open_view_cache

    folders = [Path(args.teacher_views)] if args.teacher_views else \
        sorted(f for f in Path(args.student).parent.glob("teacher_views_*") if f.is_dir())
    for folder in folders:
        cache = open_view_cache(folder)
        if cache is not None and cache["crops"].shape[1:3] == (codec.input_size[1], codec.input_size[0]):
            return cache
    return None


def finetune_data(args, train, codec, batch: int):
    """(dataset, teacher stand-in or None): cached teacher views when given, else augmented GT crops."""
    from tfpose.config import AugmentConfig
    from tfpose.data.pipeline import build_dataset
    from tfpose.data.samples import CropSampler
    from tfpose.distill.view_cache import cached_view_dataset
    from tfpose.skeleton import COCO17

    cache = teacher_view_cache(args, codec)
    if cache is not None:
        # the ground truth encoded as the pipeline encoded it (its sigma), beside the teacher's maps cut for it
        target_codec = cache.codec or codec
        ds = cached_view_dataset(cache, target_codec, COCO17.flip_index, np.full(cache.persons, 1 / cache.persons),
                                 batch, colour=0.0, seed=0)
        print(f"fine-tuning on {len(cache)} cached teacher views ({cache.persons} persons) in {cache.folder}",
              flush=True)
        return ds, _Precomputed()
    sampler = CropSampler(train.labelled(), codec, COCO17.flip_index, 1.25, AugmentConfig(colour=0.0))
    print("fine-tuning on ground truth only", flush=True)
    return build_dataset(sampler, batch, training=True, seed=0), None


class _Precomputed:
    """Stands for the teacher in the Distiller: its heatmaps arrive precomputed in the targets."""

    def __call__(self, *a, **k):
        raise RuntimeError("teacher heatmaps are precomputed")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--student", default="runs/default/student.keras", help="float Keras student")
    parser.add_argument("--teacher-views", help="cached teacher heatmaps for fine-tuning, a pipeline's "
                        "teacher_views_* folder (default: the first complete one beside --student; ignored if absent, "
                        "incomplete or of another size)")
    parser.add_argument("--steps", type=int, default=200, help="fine-tuning batches for pruning and for QAT")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--sparsity", type=float, default=0.5)
    parser.add_argument("--block", type=int, default=16, help="block-pruning row: runs of input channels in 1x1 convs")
    parser.add_argument("--calibration", type=int, default=128, help="at most this many train persons' crops")
    parser.add_argument("--float-layers", type=int, default=3, help="selective int8: layers kept float")
    parser.add_argument("--peak-blur", type=float, default=CodecConfig.peak_blur,
                        help="the codec's peak_blur for every variant (default: the project's); 0 = raw argmax")
    parser.add_argument("--runs", type=int, default=50, help="timed latency runs")
    parser.add_argument("--out", type=Path, default=ROOT / "runs/quant")
    parser.add_argument("--write", action="store_true", help="rewrite the quant section of BENCHMARKS.md")
    parser.add_argument("--from-json", type=Path, help="only rewrite the section from a saved results.json")
    args = parser.parse_args(argv)
    if args.from_json:
        text = section(json.loads(args.from_json.read_text()))
        publish("quant", text, args.write)
        return 0

    from tflite.adapters import load_adapter
    from tflite.benchmark import benchmark
    from tfpose._keras import keras
    from tfpose.codec import HeatmapCodec
    from tfpose.config import ExportConfig
    from tfpose.data.coco import load_coco
    from tfpose.data.samples import CropSampler
    from tfpose.evaluation import predict_keypoints, predict_persons, score_predictions
    from tfpose.export import export_tflite
    from tfpose.pipeline import load_keras
    from tfpose.prune import choose_layers, compressed_size, prune
    from tfpose.quantize import quantization_aware_training, sensitivity_markdown, sensitivity_report
    from tfpose.skeleton import COCO17

    t0 = time.perf_counter()
    args.out.mkdir(parents=True, exist_ok=True)
    data = SHARED / "data/coco-mini-train"
    train, val = load_coco(data / "annotations/person_keypoints_train2017.json", data / "train2017").split(0.3, 0)
    student = load_keras(Path(args.student))
    h, w = student.input_shape[1:3]
    codec = HeatmapCodec((w, h), 4, 2.0, "dark", args.peak_blur)
    persons = val.labelled()
    visibility = np.stack([p.visibility for p in persons])
    visible, labelled = visibility == 2, visibility > 0
    sampler = CropSampler(train.labelled(), codec, COCO17.flip_index, 1.25)
    rng = np.random.default_rng(0)
    idx = rng.permutation(len(sampler))[: args.calibration]
    calibration = np.stack([sampler.sample(int(i)).crop for i in idx]).astype(np.float32)
    val_sampler = CropSampler(persons, codec, COCO17.flip_index, 1.25)
    ref = [val_sampler.sample(i) for i in range(len(val_sampler))]
    ref_crops, ref_weights = np.stack([s.crop for s in ref]), np.stack([s.weights for s in ref])
    print(f"student {Path(args.student)} ({student.count_params() / 1e6:.2f} M, {w}x{h}); calibration "
          f"{len(calibration)} train crops; val {len(persons)} persons", flush=True)

    float_preds = predict_persons(lambda c: student.predict_on_batch(c.astype(np.float32)), persons, codec)
    float_crops = float_preds.in_crops()
    rows, notes = [], {}

    def score(name, preds, path=None, extra=""):
        m = score_predictions(preds, val, COCO17)
        cells = np.linalg.norm(preds.in_crops() - float_crops, axis=-1) / codec.stride
        row = {"variant": name, "AP": m["AP"], "AP_ci95": m["AP_ci95"], "PCK@0.2": m["PCK@0.2"],
               "agreement": float((cells[visible] <= 1.0).mean()),
               "agreement_labelled": float((cells[labelled] <= 1.0).mean()), "note": extra}
        if path is not None:
            data_bytes = Path(path).read_bytes()
            lat = benchmark(path, preds.crops[0], threads=(1,), xnnpack=(True,), warmup=5, runs=args.runs)[0]
            row.update(size_kib=len(data_bytes) / 1024, zip_kib=compressed_size(data_bytes) / 1024,
                       latency_ms=lat["median_ms"], delegate=lat["delegate"])
        rows.append(row)
        print(f"  {name}: AP {row['AP']:.3f} PCK {row['PCK@0.2']:.3f} agree {row['agreement']:.3f} "
              f"size {row.get('size_kib', 0):.0f} KiB zip {row.get('zip_kib', 0):.0f} KiB "
              f"{row.get('latency_ms', 0):.2f} ms  ({time.perf_counter() - t0:.0f} s)", flush=True)
        return row

    def export(name, model, **cfg):
        path = args.out / f"{name}.tflite"
        export_tflite(model, path, codec, COCO17, 1.25, ExportConfig(**cfg), calibration, ref_crops, ref_weights)
        adapter = load_adapter(path)
        return path, predict_keypoints(adapter.predict, persons, adapter.input_size, adapter.padding)

    score("float32 Keras", float_preds)
    for name, cfg in (("float32", dict(quant="float32", input_type="float32", output_type="float32")),
                      ("float16", dict(quant="float16")), ("dynamic", dict(quant="dynamic")),
                      ("PTQ int8", dict(quant="int8")),
                      (f"PTQ int8, {args.float_layers} worst layers float", dict(quant="int8",
                                                                                  float_layers=args.float_layers)),
                      ("PTQ int8, in-graph decoding", dict(quant="int8", decode="keypoints"))):
        path, preds = export(name.replace(" ", "_").replace(",", ""), student, **cfg)
        extra = "quarter-offset refinement in the graph (others: DARK)" if "decoding" in name else ""
        score(name, preds, path, extra)

    sens = sensitivity_report(student, calibration[:32])
    notes["sensitivity"] = sensitivity_markdown(sens, 5)

    data_ds, teacher = finetune_data(args, train, codec, args.batch)
    keras.utils.set_random_seed(0)
    t = time.perf_counter()
    qat = quantization_aware_training(student, data_ds, args.steps, teacher, 0.5, 1e-5)
    notes["qat_s"] = time.perf_counter() - t
    path, preds = export("QAT_int8", qat, quant="qat-int8")
    score("QAT int8", preds, path, f"{args.steps} QAT steps, task loss (teacher + GT), lr 1e-5")
    # the float student as QAT's only teacher: the fake-quant model learns to reproduce the float heatmaps
    own_targets = data_ds.map(lambda x, t: (x, {k: v for k, v in t.items() if k != "teacher_heatmaps"}))
    keras.utils.set_random_seed(0)
    qat_self = quantization_aware_training(student, own_targets, args.steps, student, 1.0, 1e-4)
    path, preds = export("QAT_int8_self", qat_self, quant="qat-int8")
    score("QAT int8, distilled from the float student", preds, path, f"{args.steps} QAT steps, lr 1e-4")

    keras.utils.set_random_seed(0)
    t = time.perf_counter()
    pruned = prune(student, args.sparsity, data_ds, args.steps, teacher, 0.5, 1e-4)
    notes["prune_s"] = time.perf_counter() - t
    notes["prune_sparsity"] = pruned.sparsity
    pct = round(100 * args.sparsity)
    score(f"pruned {pct} % float (Keras)", predict_persons(
        lambda c: pruned.model.predict_on_batch(c.astype(np.float32)), persons, codec),
        extra=f"{pruned.sparsity:.3f} sparsity over {len(pruned.layers)} layers, {args.steps} steps")
    path, preds = export(f"pruned{pct}_PTQ_int8", pruned.model, quant="int8")
    score(f"pruned {pct} % + PTQ int8", preds, path)
    notes["weight_bits"] = {"dense": int8_weight_bits(args.out / "PTQ_int8.tflite"), "pruned": int8_weight_bits(path)}
    for edges in (False, True):
        keras.utils.set_random_seed(0)
        blocked = prune(student, args.sparsity, data_ds, args.steps, teacher, 0.5, 1e-4,
                        choose_layers(student, edges, edges), args.block)
        suffix = ", stem and head too" if edges else ""
        path, preds = export(f"pruned{pct}_block{args.block}{'_all' if edges else ''}_PTQ_int8", blocked.model,
                             quant="int8")
        score(f"pruned {pct} %, 1x1 convs in runs of {args.block}{suffix}, + PTQ int8", preds, path,
              f"{blocked.sparsity:.3f} sparsity over {len(blocked.layers)} layers, {args.steps} steps")
    keras.utils.set_random_seed(0)
    pqat = quantization_aware_training(pruned.model, data_ds, max(1, args.steps // 2), teacher, 0.5, 1e-5,
                                       preserve_sparsity=True)
    path, preds = export(f"pruned{pct}_QAT_int8", pqat, quant="qat-int8")
    score(f"pruned {pct} % + prune-preserving QAT int8", preds, path, f"{max(1, args.steps // 2)} QAT steps")

    total = time.perf_counter() - t0
    result = {"student": str(args.student), "args": {k: str(v) for k, v in vars(args).items()}, "rows": rows,
              "total_s": total, "notes": notes, "val_persons": len(persons), "visible_joints": int(visible.sum()),
              "labelled_joints": int(labelled.sum()), "calibration_crops": len(calibration)}
    write_text(args.out / "results.json", json.dumps(result, indent=1))
    text = section(result)
    publish("quant", text, args.write)
    return 0


def int8_weight_bits(path: Path) -> dict:
    """Zero share and entropy (bits per weight) of the int8 weight buffers of a .tflite: what bounds its zip."""
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.read_model_from_bytearray(bytearray(Path(path).read_bytes()))
    weights = np.concatenate([np.frombuffer(bytes(model.buffers[t.buffer].data), np.int8)
                              for t in model.subgraphs[0].tensors
                              if t.type == 9 and model.buffers[t.buffer].data is not None])   # 9: INT8
    p = np.bincount(weights.astype(np.int16) + 128, minlength=256) / weights.size
    return {"zeros": float((weights == 0).mean()), "bits": float(-(p[p > 0] * np.log2(p[p > 0])).sum()),
            "bytes": int(weights.size)}


def section(result: dict) -> str:
    """The BENCHMARKS.md section, from a run's result alone (its arguments are saved in it, as strings)."""
    rows = {r["variant"]: r for r in result["rows"]}
    steps, runs, sparsity = result["args"]["steps"], result["args"]["runs"], float(result["args"]["sparsity"])
    lines = ["## Quantization and pruning (issue 5)", "",
             f"    python benchmarks/quantization.py --student {result['student']}"
             + (f" --teacher-views {views}" if (views := result["args"]["teacher_views"]) != "None" else "")
             + f" --steps {steps} --write", "",
             f"Student: `{result['student']}`. Val: {result['val_persons']} labelled persons "
             f"({result['visible_joints']} visible and {result['labelled_joints']} labelled joints) of the "
             f"coco-mini-train split (0.3, seed 0); {result['calibration_crops']} calibration crops (the train "
             "side's labelled persons, unaugmented). "
             "Agreement: visible (v = 2) / labelled (v > 0) joints within one heatmap cell of the float Keras "
             "student, both decoded alike (peak search on "
             + (f"the matched filter of sigma {blur:g} cells" if (blur := float(result["args"].get("peak_blur", 0)))
                else "the raw map") + ", then DARK). Latency: ai-edge-litert + XNNPACK, 1 thread, median of "
             f"{runs} runs (2-core CPU shared with other jobs: compare within this table only).", "",
             "| variant | OKS AP | AP 95 % CI | PCK@0.2 | agreement visible / labelled | size KiB | zip KiB "
             "| 1-thread ms | note |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in result["rows"]:
        size = f"{r['size_kib']:.0f} | {r['zip_kib']:.0f} | {r['latency_ms']:.2f}" if "size_kib" in r else "- | - | -"
        lines.append(f"| {r['variant']} | {r['AP']:.3f} | {r['AP_ci95'][0]:.3f}-{r['AP_ci95'][1]:.3f} | "
                     f"{r['PCK@0.2']:.3f} | {100 * r['agreement']:.1f} / {100 * r['agreement_labelled']:.1f} % | "
                     f"{size} | {r['note']} |")
    base = rows["float32 Keras"]
    ptq = rows["PTQ int8"]
    pct = round(100 * sparsity)
    sparse = rows[f"pruned {pct} % + PTQ int8"]
    lines += ["", "Done-when checks:", ""]
    for name in ("PTQ int8", "QAT int8", "QAT int8, distilled from the float student"):
        r = rows[name]
        loss = 100 * (base["AP"] - r["AP"])
        ok = r["agreement"] >= 0.95 and loss <= 1.0
        lines.append(f"- {name}: agreement {100 * r['agreement']:.1f} % (target >= 95 %), AP loss {loss:.1f} points "
                     f"(target <= 1.0), PCK@0.2 {r['PCK@0.2'] - base['PCK@0.2']:+.3f}: {'met' if ok else 'not met'}")
    for r in [sparse] + [r for r in result["rows"] if "in runs of" in r["variant"]]:
        ratio = r["zip_kib"] / ptq["zip_kib"]
        loss = 100 * (base["AP"] - r["AP"])
        lines.append(f"- {r['variant']}: zip {ratio:.3f}x the dense int8's (target <= 0.65x), AP loss {loss:.1f} "
                     f"points (target <= 2), PCK@0.2 {r['PCK@0.2'] - base['PCK@0.2']:+.3f}: "
                     f"{'met' if ratio <= 0.65 and loss <= 2 else 'not met'}")
    n = result["notes"]
    lines += ["", f"Pruning reached {n['prune_sparsity']:.3f} sparsity over the pruned kernels (stem and final heatmap "
              f"conv dense) in {n['prune_s']:.0f} s of fine-tuning; QAT fine-tuning took {n['qat_s']:.0f} s. "
              f"Whole run {result['total_s'] / 60:.0f} min.", "",
              "int8 weight buffers (what bounds the zip): dense {zeros:.1%} zeros, {bits:.2f} bits of entropy per "
              "weight; pruned {pz:.1%} zeros, {pb:.2f} bits.".format(
                  **n["weight_bits"]["dense"], pz=n["weight_bits"]["pruned"]["zeros"],
                  pb=n["weight_bits"]["pruned"]["bits"]), "",
              "Layers that lose most under int8 (TFLite QuantizationDebugger, RMSE of the int8 output against float "
              "in int8 steps; ~0.29 is rounding alone):", "", n["sensitivity"]]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
