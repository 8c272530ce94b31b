"""The on-device validator: accuracy, parity, speed, memory and size of a tfpose .tflite, beside peer models.

Runs with numpy, OpenCV and ai-edge-litert or tflite-runtime only - no TensorFlow - so the numbers are the ones
a phone or a Raspberry Pi produces. A tfpose model brings everything it needs (input size, codec, skeleton, crop
padding) in its metadata; peers (MoveNet) go through small adapters (tflite.adapters), on the same persons.

    tfpose-validate student.tflite movenet-lightning_fp32.tflite --annotations val.json --images val/ --out report/

Install on a Raspberry Pi (Raspberry Pi OS, Python 3.11) or any aarch64/x86_64 Linux, from a checkout of this
project: ``pip install ".[device]"`` (ai-edge-litert); on 32-bit Pi OS ``pip install ".[device32]"`` (tflite-runtime
2.14 and numpy < 2). Termux on Android: PyPI's manylinux wheels do not install against Android's C library, so take numpy,
OpenCV and a TFLite runtime from Termux packages first, then ``pip install --no-deps .`` (not tried here).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import zipfile
from pathlib import Path

import cv2
import numpy as np

from tflite.adapters import HeatmapAdapter, KeypointAdapter, PoseAdapter, load_adapter
from tflite.benchmark import benchmark, peak_rss_mb
from tflite.benchmark import to_markdown as latency_markdown
from tflite.runtime import TFLiteModel
from tflite.whole_images import (detector_markdown, detector_report, is_multipose, whole_image_markdown,
                                 whole_image_report)
from tfpose.artifacts import write_bytes, write_json, write_text
from tfpose.codec import HeatmapCodec
from tfpose.errors import InputError, TfposeError, error_line
from tfpose.evaluation import EvalSet, Predictions, gap_cells, load_eval_set
from tfpose.skeleton import Skeleton
from tfpose.visualize import contact_sheet, draw_skeleton, plot_accuracy_latency


def parity(model: TFLiteModel, reference_file: Path, codec: HeatmapCodec, skeleton: Skeleton | None = None,
           decoded=None) -> dict:
    """Agreement with the Keras model's heatmaps saved at export on the same crops.

    The reference .npz holds crops (M, H, W, 3) uint8, heatmaps (M, h, w, K), weights (M, K) (labelled joints)
    and model_sha256, the digest of the .tflite it was exported with: a reference of another model is refused.
    decoded: for an in-graph decoding model, its ``predict`` (crops -> keypoints, scores); joints are then compared
    with the codec's decoding of the reference heatmaps, and there are no heatmaps to diff.
    """
    if not reference_file.is_file():
        raise InputError("reference outputs not found", path=reference_file)
    try:
        ref = np.load(reference_file)
    except (OSError, ValueError, zipfile.BadZipFile) as e:
        raise InputError(f"not a readable .npz ({e})", path=reference_file) from None
    for key in ("crops", "heatmaps", "weights"):
        if key not in ref:
            raise InputError("missing array", path=reference_file, field=key)
    belongs = check_reference_digest(ref, model.path, reference_file)
    if decoded is not None:
        kp_ours, score_ours = decoded(ref["crops"])
        diff = None
    else:
        ours = model(ref["crops"])
        if ours.shape != ref["heatmaps"].shape:
            raise InputError(f"model output {ours.shape[1:]} does not match the reference "
                             f"{ref['heatmaps'].shape[1:]}", path=reference_file, field="heatmaps")
        diff = np.abs(ours - ref["heatmaps"])
        kp_ours, score_ours = codec.decode(ours)
    kp_ref, score_ref = codec.decode(ref["heatmaps"])
    cells = np.linalg.norm(kp_ours - kp_ref, axis=-1) / codec.stride      # (M, K) joint shift in heatmap cells
    visible = ref["weights"] > 0
    within = np.where(visible, cells <= 1.0, False)
    per_joint = np.where(visible.sum(0) > 0, within.sum(0) / np.maximum(visible.sum(0), 1), np.nan)
    names = skeleton.keypoints if skeleton else [str(j) for j in range(len(per_joint))]
    return {"crops": int(len(kp_ours)), "model_digest_checked": belongs,
            "max_abs_diff": None if diff is None else float(diff.max()),
            "mean_abs_diff": None if diff is None else float(diff.mean()),
            "max_score_diff": float(np.abs(score_ours - score_ref).max()),
            "joints_within_1_cell": float(within.sum() / visible.sum()) if visible.any() else float("nan"),
            "mean_joint_shift_cells": float(cells[visible].mean()) if visible.any() else float("nan"),
            "joints_within_1_cell_per_joint": {n: None if np.isnan(v) else float(v) for n, v in zip(names, per_joint)}}


def check_reference_digest(ref, model_path: Path, reference_file: Path) -> bool:
    """Refuse a reference whose model_sha256 is not that of ``model_path``'s bytes; False when it has none (an
    export from before the digest), which cannot be checked."""
    import hashlib

    if "model_sha256" not in ref:
        return False
    expected, actual = str(ref["model_sha256"]), hashlib.sha256(Path(model_path).read_bytes()).hexdigest()
    if expected != actual:
        raise InputError(f"belongs to another model: it was exported with a .tflite of sha256 {expected[:12]}..., "
                         f"but {model_path} has {actual[:12]}...; export them again together or pass the matching "
                         "--reference", path=reference_file, field="model_sha256")
    return True


def evaluate_model(adapter: PoseAdapter, eval_set: EvalSet | None, threads, xnnpack, warmup: int, runs: int,
                   isolate: bool = True) -> tuple[dict, Predictions | None]:
    """One model's report entry (size, I/O, accuracy on ``eval_set``, latency per setting) and its predictions."""
    model = adapter.model
    entry = {"model": adapter.name, "path": str(adapter.path), "family": adapter.family,
             "size_bytes": adapter.path.stat().st_size, "runtime": model.runtime_label,
             "input": {"dtype": model.input.dtype.name, "shape": list(model.input.shape)},
             "output": {"dtype": model.output.dtype.name, "shape": list(model.output.shape)},
             "skeleton": adapter.skeleton.name, "padding": adapter.padding}
    preds = None
    if eval_set is not None:
        accuracy, preds = eval_set.evaluate(adapter.predict, adapter.skeleton, adapter.input_size, adapter.padding)
        entry["accuracy"] = {**accuracy, "threads": model.num_threads, "delegate": model.delegate}
    crop = preds.crops[0] if preds is not None else None
    entry["latency"] = benchmark(adapter.path, crop, threads, xnnpack, warmup, runs, model.runtime, isolate) \
        if runs > 0 else []
    return entry, preds


def validate(model_path: str | Path, annotations: str | Path | None = None, images: str | Path | None = None,
             out_dir: str | Path | None = None, reference: str | Path | None = None, threads=(1, 2),
             warmup: int = 5, runs: int = 50, overlays: int = 4, xnnpack=True, *, peers=(),
             detections: str | Path | None = None, det_min_score: float = 0.0, oks_nms: float | None = None,
             split: str = "all", val_fraction: float = 0.3, split_seed: int = 0, min_keypoints: int = 1,
             runtime: str | None = None, peer_padding: float | None = None, isolate: bool = True,
             extra_sets: tuple = (), detector: str | Path | None = None, det_box_score: float = 0.1) -> dict:
    """Run every check that has its inputs on ``model_path`` and each of ``peers``; return the report and, with
    ``out_dir``, write report.json, report.md, the overlays, the scored results and the accuracy-vs-latency plot.

    xnnpack: True, False, or a sequence of both for latency with XNNPACK on and off (accuracy runs with the first).
    runs: timed runs per latency setting; 0 skips latency.
    extra_sets: (name, annotations, images) of more COCO-format sets, every model scored on each too (accuracy
    only), in ``report["sets"]`` beside the main one; with peers, every set gets the paired gaps of the model
    against each peer (``tfpose.evaluation.paired_gaps``).
    detector: a person detector .tflite: also score keypoint AP on whole images by the COCO protocol (detector +
    each pose model, and each whole-image peer such as MoveNet MultiPose) in ``report["whole_image"]``, from boxes
    scoring at least ``det_box_score``. A detector as ``model_path`` is validated as a detector (box AP, recall).
    """
    threads = tuple(threads)
    xnnpack = (bool(xnnpack),) if isinstance(xnnpack, (bool, int)) else tuple(xnnpack)
    if _is_detector(model_path):
        return validate_detectors([model_path, *peers], annotations, images, out_dir, threads, warmup, runs, xnnpack,
                                  split, val_fraction, split_seed, runtime, isolate)
    multipose = [p for p in peers if is_multipose(p)]
    if multipose and detector is None:
        raise InputError("a whole-image peer (MoveNet MultiPose) is compared on whole images: pass --detector",
                         path=multipose[0])
    peers = [p for p in peers if p not in multipose]
    adapters = [load_adapter(p, max(threads), xnnpack[0], runtime, peer_padding) for p in [model_path, *peers]]
    eval_set = None
    if annotations is not None:
        if images is None:
            raise InputError("--images is required with --annotations")
        eval_set = load_eval_set(annotations, images, detections, split, val_fraction, split_seed, min_keypoints,
                                 det_min_score, oks_nms)
    elif detections is not None:
        raise InputError("--detections needs --annotations (the ground truth to score against)")

    primary = adapters[0]
    parity_report = None
    if isinstance(primary, HeatmapAdapter):
        ref = Path(reference) if reference else primary.path.with_suffix(".reference.npz")
        if reference or ref.is_file():
            decoded = primary.predict if isinstance(primary, KeypointAdapter) else None
            parity_report = parity(primary.model, ref, primary.codec, primary.skeleton, decoded)
    elif reference:
        raise InputError("parity needs a tfpose export (its reference outputs and codec)", path=primary.path)

    machine = machine_info()
    entries, all_preds = [], []
    for adapter in adapters:
        entry, preds = evaluate_model(adapter, eval_set, threads, xnnpack, warmup, runs, isolate)
        if any(e["model"] == entry["model"] for e in entries):   # same file name in two folders
            entry["model"] += f"-{len(entries) + 1}"
        entries.append(entry)
        all_preds.append(preds)
    report = {**entries[0], "metadata": primary.meta, "machine": machine, "notes": []}
    if eval_set is not None:
        report["dataset"] = {**eval_set.describe(), "split": split,
                             **({"val_fraction": val_fraction, "split_seed": split_seed} if split != "all" else {})}
    if parity_report is not None:
        report["parity"] = parity_report
        if not parity_report["model_digest_checked"]:
            report["notes"].append("the reference outputs carry no model digest (an older export): nothing shows "
                                   "that they belong to this model")
    report["peers"] = entries[1:]
    report["comparison"] = [comparison_row(e, eval_set) for e in entries]
    if eval_set is not None and (extra_sets or peers):
        report["sets"] = {"main": score_set(eval_set, adapters, entries, all_preds)}
        for name, set_annotations, set_images in extra_sets:
            extra = load_eval_set(set_annotations, set_images, min_keypoints=min_keypoints)
            set_entries, set_preds = [], []
            for adapter, entry in zip(adapters, entries):
                accuracy, preds = extra.evaluate(adapter.predict, adapter.skeleton, adapter.input_size, adapter.padding)
                set_entries.append({**entry, "accuracy": accuracy})
                set_preds.append(preds)
            report["sets"][name] = score_set(extra, adapters, set_entries, set_preds)
            if out_dir is not None:
                write_outputs(Path(out_dir) / name, {**set_entries[0], "peers": set_entries[1:], "notes": [],
                                                     "comparison": report["sets"][name]["comparison"],
                                                     "machine": machine, "dataset": extra.describe(), "split": "all"},
                              adapters, set_preds, extra, overlays, summary=False)
    if detector is not None:
        if eval_set is None or eval_set.kind != "coco":
            raise InputError("--detector needs COCO keypoint --annotations (the people to find)")
        report["whole_image"] = whole_image_report(detector, adapters, multipose, eval_set.dataset, min(threads),
                                                   runtime, det_box_score)
    report["peak_rss_mb"] = peak_rss_mb()
    if out_dir is not None:
        write_outputs(Path(out_dir), report, adapters, all_preds, eval_set, overlays)
    return report


def _is_detector(path) -> bool:
    from tflite import metadata as tfl_metadata
    from tflite.detector import DETECTOR_FORMAT

    meta = tfl_metadata.find(path)
    return meta is not None and meta.get("format") == DETECTOR_FORMAT


def validate_detectors(paths: list, annotations, images, out_dir, threads, warmup: int, runs: int, xnnpack, split: str,
                       val_fraction: float, split_seed: int, runtime, isolate: bool) -> dict:
    """A person detector's report: its box accuracy and latency, and its peers' (e.g. its float version)."""
    if annotations is None or images is None:
        raise InputError("a person detector is validated on COCO --annotations and --images (the people to find)")
    eval_set = load_eval_set(annotations, images, split=split, val_fraction=val_fraction, split_seed=split_seed)
    if eval_set.kind != "coco":
        raise InputError("a person detector is validated on COCO annotations", path=annotations)
    detection = detector_report(paths, eval_set.dataset, threads, xnnpack, warmup, runs, runtime, isolate)
    first = detection["entries"][0]
    rows = [{"model": e["model"], **{k: e["detection"][k] for k in ("AP50", "AP", "recall", "precision")},
             "ms": {str(lat["threads"]): lat["median_ms"] for lat in e["latency"] if lat["xnnpack"]}}
            for e in detection["entries"]]
    report = {"model": first["model"], "path": first["path"], "family": first["family"], "runtime": first["runtime"],
              "size_bytes": first["size_bytes"], "machine": machine_info(), "detection": first["detection"],
              "detectors": detection, "comparison": rows, "peak_rss_mb": peak_rss_mb(),
              "dataset": {**eval_set.describe(), "split": split}}
    if out_dir is not None:
        write_json(Path(out_dir) / "report.json", report)
        write_text(Path(out_dir) / "report.md", to_markdown(report))
    return report


def score_set(eval_set: EvalSet, adapters, entries: list[dict], all_preds: list) -> dict:
    """One set's side-by-side rows and the paired gaps of the first model against each other one."""
    from tfpose.evaluation import paired_gaps

    out = {"dataset": eval_set.describe(), "comparison": [comparison_row(e, eval_set) for e in entries], "gaps": {}}
    if eval_set.kind == "coco":
        first = entries[0]["accuracy"]
        for entry, preds in zip(entries[1:], all_preds[1:]):
            out["gaps"][entry["model"]] = paired_gaps(eval_set.dataset, first, entry["accuracy"],
                                                      eval_set.results(all_preds[0]), eval_set.results(preds))
    return out


def machine_info() -> dict:
    """Where the numbers come from; the load average says whether others shared the CPU at the time."""
    cpu = platform.processor()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith(("model name", "Model"))), cpu)
    except OSError:
        pass
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    return {"arch": platform.machine(), "system": platform.system(), "cpu": cpu, "cpus": os.cpu_count(),
            "load_average_1min": load, "python": platform.python_version()}


def comparison_row(entry: dict, eval_set: EvalSet | None) -> dict:
    """One line of the side-by-side table: headline accuracy, size, latency per thread count, memory."""
    row = {"model": entry["model"], "family": entry["family"], "input": entry["input"]["dtype"],
           "size_mib": entry["size_bytes"] / 2**20}
    if eval_set is not None:
        a, metric = entry["accuracy"], eval_set.headline
        row.update({metric: a[metric], "ci95": a[f"{metric}_ci95"]})
        for extra in ("AP50", "mean_OKS", "PCK@0.2", "PCKh@0.1"):
            if extra in a:
                row[extra] = a[extra]
    for lat in entry["latency"]:
        key = "ms" if lat["xnnpack"] else "ms_no_xnnpack"
        row.setdefault(key, {})[str(lat["threads"])] = lat["median_ms"]
        if lat["xnnpack"] and lat["threads"] == 1:
            row.update(model_rss_mb=lat.get("model_rss_mb"), runtime=lat["runtime"], delegate=lat["delegate"])
    return row


def comparison_markdown(rows: list[dict], metric: str | None) -> str:
    threads = sorted({t for r in rows for t in r.get("ms", {})}, key=int)
    off = sorted({t for r in rows for t in r.get("ms_no_xnnpack", {})}, key=int)
    extras = [k for k in ("AP50", "mean_OKS", "PCK@0.2", "PCKh@0.1") if any(k in r for r in rows)]
    head = ["model", "input", "size MiB"] + ([f"{metric} [95 % CI]"] if metric else []) + extras
    memory = any(r.get("model_rss_mb") is not None for r in rows)
    head += [f"{t}-thread ms" for t in threads] + [f"{t}-thread ms, no XNNPACK" for t in off]
    head += ["model memory MB"] if memory else []
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [r["model"], r["input"], f"{r['size_mib']:.2f}"]
        if metric:
            lo, hi = r["ci95"]
            cells.append(f"{r[metric]:.3f} [{lo:.3f}, {hi:.3f}]")
        cells += [f"{r[k]:.3f}" if k in r else "" for k in extras]
        cells += [_ms(r.get("ms", {}).get(t)) for t in threads] + [_ms(r.get("ms_no_xnnpack", {}).get(t)) for t in off]
        if memory:
            cells.append("" if r.get("model_rss_mb") is None else f"{r['model_rss_mb']:.0f}")
        lines.append("| " + " | ".join(cells) + " |")
    ran = "; ".join(f"{r['model']}: {r['runtime']}, {r['delegate']}" for r in rows if "delegate" in r)
    return "\n".join(lines) + ("\n\n1-thread runs: " + ran if ran else "") + "\n"


def _ms(v: float | None) -> str:
    return "" if v is None else f"{v:.2f}"


def write_outputs(out_dir: Path, report: dict, adapters: list[PoseAdapter], all_preds: list, eval_set: EvalSet | None,
                  overlays: int, summary: bool = True) -> None:
    """report.json/.md; per model the scored results and best/worst overlays; the accuracy-vs-latency plot."""
    out_dir.mkdir(parents=True, exist_ok=True)
    if eval_set is not None:
        for i, (adapter, preds, entry) in enumerate(zip(adapters, all_preds, [report, *report["peers"]])):
            write_json(out_dir / f"{entry['model']}.results.json", eval_set.results(preds))
            if overlays:
                quality = np.array(entry["accuracy"][eval_set.per_person_key], np.float64)
                prefix = "" if i == 0 else f"{entry['model']}_"
                write_overlays(preds, quality, eval_set.per_person_key.split("_")[-1], adapter.skeleton, out_dir,
                               overlays, prefix)
        points = [{"label": r["model"], "latency_ms": r["ms"]["1"], "value": r[eval_set.headline], "ci95": r["ci95"]}
                  for r in report["comparison"] if "1" in r.get("ms", {})]
        if points and not plot_accuracy_latency(points, eval_set.headline, out_dir / "accuracy_vs_latency.png"):
            report["notes"].append("matplotlib is not installed: accuracy_vs_latency.png was skipped")
    if summary:
        write_json(out_dir / "report.json", report)
        write_text(out_dir / "report.md", to_markdown(report))


def write_overlays(preds: Predictions, quality: np.ndarray, label: str, skeleton: Skeleton, out_dir: Path, count: int,
                   prefix: str = "") -> None:
    """{prefix}best.png / {prefix}worst.png: skeletons on the crops ranked by ``quality`` (N,), NaN last."""
    order = np.argsort(np.where(np.isnan(quality), np.inf, quality))
    valid = order[: int(np.isfinite(quality).sum())]
    keypoints = preds.in_crops()
    scale = max(1, round(192 / preds.crops.shape[1]))   # small crops are upscaled to stay readable
    for name, picks in (("worst", valid[:count]), ("best", valid[::-1][:count])):
        if not len(picks):
            continue
        tiles = []
        for i in picks:
            tile = draw_skeleton(preds.crops[i], keypoints[i], preds.scores[i], skeleton, scale=scale)
            cv2.putText(tile, f"{label} {quality[i]:.2f}", (4, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (255, 255, 255), 1,
                        cv2.LINE_AA)
            tiles.append(tile)
        sheet = contact_sheet(tiles, columns=min(4, len(tiles)))
        ok, buf = cv2.imencode(".png", cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR))
        if not ok:
            raise TfposeError(f"OpenCV could not encode the {name} overlays as PNG")
        write_bytes(out_dir / f"{prefix}{name}.png", buf.tobytes())


def to_markdown(report: dict) -> str:
    if "detectors" in report:
        m = report["machine"]
        return "\n".join([f"# Validation of the person detector `{report['model']}`", "",
                          f"- runtime: {report['runtime']} on {m['cpu']} ({m['arch']}, {m['cpus']} CPUs)",
                          f"- data: {report['dataset']['annotations']}", "",
                          *detector_markdown(report["detectors"])]) + "\n"
    m = report["machine"]
    load = "" if m["load_average_1min"] is None else f", load average {m['load_average_1min']:.1f}"
    lines = [f"# Validation of `{report['model']}`", "",
             f"- runtime: {report['runtime']} on {m['cpu']} ({m['arch']}, {m['cpus']} CPUs{load}), "
             f"Python {m['python']}",
             f"- size: {report['size_bytes'] / 1024:.1f} KiB; input {report['input']['dtype']} "
             f"{report['input']['shape']}, output {report['output']['dtype']} {report['output']['shape']}"]
    if "dataset" in report:
        d = report["dataset"]
        split = "" if d["split"] == "all" else \
            f", {d['split']} split ({d['val_fraction']} by image, seed {d['split_seed']})"
        lines.append(f"- data: {d['annotations']} ({d['kind']}, {d['boxes']} boxes, {d['crops']} crops{split})")
    lines.append("")
    if "accuracy" in report:
        lines += _accuracy_markdown(report["accuracy"], report["dataset"]["kind"])
    if "parity" in report:
        p = report["parity"]
        worst = min((v, n) for n, v in p["joints_within_1_cell_per_joint"].items() if v is not None)
        lines += ["## Parity with the Keras model", "",
                  f"- joints within one heatmap cell: {100 * p['joints_within_1_cell']:.1f} % of {p['crops']} crops "
                  f"(worst joint: {worst[1]}, {100 * worst[0]:.0f} %); "
                  f"mean shift {p['mean_joint_shift_cells']:.2f} cells"]
        if p["max_abs_diff"] is not None:
            lines.append(f"- heatmap |diff|: max {p['max_abs_diff']:.4f}, mean {p['mean_abs_diff']:.4f}")
        lines.append("")
    if report["latency"]:
        lines += ["## Latency (median of timed runs after warm-up; one crop per run)", "",
                  latency_markdown(report["latency"])]
    if report["peers"]:
        metric = report["dataset"]["headline"] if "dataset" in report else None
        lines += ["## Side by side", "", comparison_markdown(report["comparison"], metric)]
    for name, s in report.get("sets", {}).items():
        if name != "main":
            d = s["dataset"]
            lines += [f"## Side by side on {name}", "", f"- data: {d['annotations']} ({d['crops']} crops)", "",
                      comparison_markdown(s["comparison"], d["headline"])]
        if s["gaps"]:
            lines += [f"Paired gaps on {'the main set' if name == 'main' else name}, {report['model']} minus each "
                      "model (95 % paired bootstrap: persons for mean OKS and PCK@0.2, images for AP):", "",
                      "| against | AP | mean OKS | PCK@0.2 |", "|---|---|---|---|"]
            for peer, g in s["gaps"].items():
                lines.append(f"| {peer} | " + " | ".join(gap_cells(g)) + " |")
            lines.append("")
    if "whole_image" in report:
        lines += whole_image_markdown(report["whole_image"])
    lines += [f"- {n}" for n in report["notes"]]
    return "\n".join(lines) + "\n"


def _accuracy_markdown(a: dict, kind: str) -> list[str]:
    if kind == "mpii":
        lo, hi = a["PCKh@0.5_ci95"]
        groups = ", ".join(f"{k} {v:.3f}" for k, v in a["PCKh_groups"].items() if v is not None)
        return ["## Accuracy (MPII PCKh, ground-truth boxes)", "",
                f"- PCKh@0.5 {a['PCKh@0.5']:.3f} (95 % CI {lo:.3f}-{hi:.3f}), PCKh@0.1 {a['PCKh@0.1']:.3f}, "
                f"{a['persons']} persons; head size from the {' / '.join(a['head_size'])}",
                f"- by part: {groups}", f"- joints scored: {', '.join(a['joints_scored'])}", ""]
    lo, hi = a["AP_ci95"]
    boxes = "detected boxes" if kind == "coco-detections" else "ground-truth boxes"
    keys = [k for k in ("AP", "AP50", "AP75", "AR", "PCK@0.2", "mean_OKS") if k in a]
    lines = [f"## Accuracy (COCO OKS, {boxes})", "", "| metric | value |", "|---|---|"]
    lines += [f"| {k} | {a[k]:.3f} |" for k in keys]
    lines += [f"| AP 95 % CI (bootstrap over images) | {lo:.3f} - {hi:.3f} |", f"| persons | {a['persons']} |"]
    if kind == "coco-detections":
        nms = "off" if a["oks_nms"] is None else f"OKS > {a['oks_nms']}"
        lines.append(f"| detections scored (OKS NMS {nms}) | {a['scored']} of {a['detections']} |")
    return lines + [""]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="tfpose-validate", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="\n\n".join(__doc__.split("\n\n")[1:]))
    parser.add_argument("model", help="the .tflite to validate (a tfpose export: its metadata says the rest)")
    parser.add_argument("peers", nargs="*", help="other .tflite files to run on the same persons (e.g. MoveNet), or "
                        "on the same whole images (MoveNet MultiPose, with --detector); for a detector, other detectors")
    parser.add_argument("--peer", action="append", default=[], help="one more peer (repeatable), as the positionals")
    data = parser.add_argument_group("accuracy")
    data.add_argument("--annotations", help="COCO person_keypoints JSON, or an MPII JSON list (PCKh)")
    data.add_argument("--images", help="folder of the images the annotations name")
    data.add_argument("--extra-set", nargs=3, action="append", default=[], metavar=("NAME", "ANNOTATIONS", "IMAGES"),
                      help="one more COCO-format set to score every model on (repeatable), e.g. PARSE's test half "
                           "from `python -m tfpose.data.lsp --format parse --split test --out parse_test.json`")
    data.add_argument("--detections", help="COCO detection results: score detected boxes instead of ground-truth ones")
    data.add_argument("--detector", help="person detector .tflite: also score keypoint AP on whole images (COCO "
                      "protocol) for detector + each pose model and for whole-image peers (MoveNet MultiPose)")
    data.add_argument("--det-box-score", type=float, default=0.1,
                      help="with --detector: the person boxes scoring at least this are posed")
    data.add_argument("--det-min-score", type=float, default=0.0, help="drop detections below this box score")
    data.add_argument("--oks-nms", type=float, metavar="THR", help="OKS NMS of detected poses (e.g. 0.9); default off")
    data.add_argument("--split", choices=("all", "train", "val"), default="all",
                      help="score one side of the by-image split tfpose trains with (COCO only)")
    data.add_argument("--val-fraction", type=float, default=0.3)
    data.add_argument("--split-seed", type=int, default=0)
    data.add_argument("--min-keypoints", type=int, default=1, help="ground-truth persons with fewer labelled joints "
                      "are not cropped (they still count in AP)")
    data.add_argument("--peer-padding", type=float, help="box padding for peers without metadata (default 1.25)")
    data.add_argument("--reference", help="reference outputs saved at export (default: MODEL.reference.npz)")
    speed = parser.add_argument_group("speed")
    speed.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    speed.add_argument("--xnnpack", choices=("on", "off"), nargs="+", default=["on"],
                       help="latency with XNNPACK on and/or off, e.g. --xnnpack on off (accuracy runs with the first)")
    speed.add_argument("--no-xnnpack", action="store_true", help="same as --xnnpack off")
    speed.add_argument("--runs", type=int, default=50, help="timed runs per setting; 0 skips latency")
    speed.add_argument("--warmup", type=int, default=5)
    speed.add_argument("--runtime", choices=("ai_edge_litert", "tflite_runtime"),
                       help="default: ai_edge_litert when installed")
    speed.add_argument("--in-process", action="store_true",
                       help="time in this process instead of one fresh process per setting (memory is then shared)")
    parser.add_argument("--out", help="folder for report.json, report.md, results, overlays and the plot")
    parser.add_argument("--overlays", type=int, default=4, help="crops per best/worst sheet; 0 for none")
    args = parser.parse_intermixed_args(argv)
    xnnpack = [False] if args.no_xnnpack else [x == "on" for x in args.xnnpack]
    try:
        report = validate(args.model, args.annotations, args.images, args.out, args.reference, tuple(args.threads),
                          args.warmup, args.runs, args.overlays, xnnpack, peers=[*args.peers, *args.peer],
                          detections=args.detections,
                          det_min_score=args.det_min_score, oks_nms=args.oks_nms, split=args.split,
                          val_fraction=args.val_fraction, split_seed=args.split_seed, min_keypoints=args.min_keypoints,
                          runtime=args.runtime, peer_padding=args.peer_padding, isolate=not args.in_process,
                          extra_sets=tuple(tuple(s) for s in args.extra_set), detector=args.detector,
                          det_box_score=args.det_box_score)
    except (TfposeError, ImportError, OSError) as e:   # OSError: a file it could not read or write
        print(error_line(e), file=sys.stderr)
        return 2
    print(to_markdown(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
