"""``tfpose <command> --config X key=value ...``: the pipeline and each of its stages."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tfpose.errors import TfposeError, error_line


def _config(args):
    from tfpose.config import load_config

    return load_config(args.config, args.overrides)


def cmd_pipeline(args) -> None:
    from tfpose.pipeline import run_pipeline

    run_pipeline(_config(args), args.out)


def _run(args):
    """(config, run folder, the data stage's RunData) of a stage command."""
    from tfpose import pipeline as p

    cfg = _config(args)
    out, codec, skeleton = p.open_run(cfg, args.out)
    return cfg, out, p.load_data(cfg.data, codec, skeleton, video=cfg.distill.method == "dkd")


def cmd_data(args) -> None:
    _run(args)


def cmd_train_teacher(args) -> None:
    from tfpose import pipeline as p

    cfg, out, data = _run(args)
    with p.stage("teacher", {}):
        teacher = p.train_teacher(cfg, data, out)
    if teacher is not None:   # teacher.source none: nothing to train or score
        p.evaluate(teacher, "teacher", data)


def cmd_distill(args) -> None:
    from tfpose import pipeline as p

    cfg, out, data = _run(args)
    teacher = p.train_teacher(cfg, data, out)
    with p.stage("distill", {}):
        student = p.distil_student(cfg, data, teacher, out)
    if data.tracks is None:   # a video student is scored on its tracks by the validate stage
        p.evaluate(student, "student", data)


def cmd_export(args) -> None:
    from tfpose import pipeline as p
    from tfpose.errors import InputError
    from tfpose.export import write_android_assets

    flags = {"quant": args.quant, "prune_sparsity": args.prune_sparsity, "decode": args.decode,
             "float_layers": args.float_layers, "finetune_steps": args.finetune_steps}
    args.overrides = [*args.overrides, *(f"export.{k}={v}" for k, v in flags.items() if v is not None)]
    readme = None
    if args.android_readme:
        if not Path(args.android_readme).is_file():
            raise InputError("README file not found", path=args.android_readme)
        readme = Path(args.android_readme).read_text()
    cfg, out, data = _run(args)
    student = p.load_keras(Path(args.model))
    path = p.export_student(cfg, data, student, out, _export_teacher(cfg, data, out, args.teacher))
    print(f"    wrote {path}")
    if args.android_assets:
        write_android_assets(path, args.android_assets, readme)
        print(f"    wrote {args.android_assets}")


def cmd_assets(args) -> None:
    from tfpose.errors import InputError
    from tfpose.export import write_android_assets

    for path, what in ((args.model, "model"), (args.readme, "README")):
        if path and not Path(path).is_file():
            raise InputError(f"{what} file not found", path=path)
    readme = Path(args.readme).read_text() if args.readme else None
    write_android_assets(args.model, args.out, readme)
    print(f"    wrote {args.out}")


def cmd_prune(args) -> None:
    from tfpose import pipeline as p
    from tfpose.export import compresses, prune_and_save

    flags = {"prune_target_gmacs": args.target_gmacs, "prune_channel_ratio": args.ratio,
             "prune_criterion": args.criterion, "prune_allocation": args.allocation,
             "prune_sparsity": args.sparsity, "prune_finetune_steps": args.finetune_steps,
             "prune_parent_weight": args.parent_weight}
    # positional notation: YAML reads "1e-06" as a string
    args.overrides = [*args.overrides, *(f"export.{k}={format(v, '.12f') if isinstance(v, float) else v}"
                                         for k, v in flags.items() if v is not None)]
    cfg, out, data = _run(args)
    student = p.load_keras(Path(args.model))
    teacher = _export_teacher(cfg, data, out, args.teacher)
    batches = p.finetune_data(cfg, data, out, teacher) if compresses(cfg.export, quantize=False) else None
    path = prune_and_save(student, batches, cfg.export, cfg.distill, out, teacher)
    print(f"    wrote {path}")


def _export_teacher(cfg, data, out: Path, path: str | None):
    """The teacher that guides pruning / QAT fine-tuning of the ``PipelineConfig`` ``cfg`` (the ``RunData``
    ``data``): ``path`` (``--teacher``), else the config's Keras or SavedModel teacher, else a trained teacher.keras
    in the run folder ``out`` (refused when another config made it); None (ground truth alone) otherwise."""
    from tfpose import pipeline as p
    from tfpose.artifacts import stale_reason, teacher_record
    from tfpose.errors import InputError
    from tfpose.export import prunes_channels

    e, t = cfg.export, cfg.teacher
    if e.prune_sparsity <= 0 and e.quant != "qat-int8" and not prunes_channels(e):
        return None
    if path:
        return p.load_keras(Path(path))
    if t.source in ("keras", "savedmodel"):
        return p.train_teacher(cfg, data, out)      # loads it; trains nothing for these sources
    trained = out / "teacher.keras"
    if t.source != "train" or not trained.is_file():
        return None
    reason = stale_reason(trained, teacher_record(cfg, data.state()))
    if reason is not None:
        raise InputError(f"{reason}: it cannot guide this export; pass --teacher or run `tfpose train-teacher` "
                         "with this config", path=trained)
    return p.load_keras(trained)


def cmd_models(args) -> None:
    """Every registered model with its size at its paper's input size (or ``--input-size``), the paper's beside it."""
    from tfpose.errors import InputError
    from tfpose.flops import count_macs
    from tfpose.models import build_model, list_models
    from tfpose.models.published import PUBLISHED

    override = None
    if args.input_size:
        parts = args.input_size.lower().split("x")
        if len(parts) != 2 or not all(p.isdigit() for p in parts):
            raise InputError(f"expected WxH, e.g. 192x256, got '{args.input_size}'", field="--input-size")
        override = (int(parts[0]), int(parts[1]))
    papers = {p.model: p for p in PUBLISHED if not p.config and not p.part}
    print("GFLOPs = 2 x multiply-adds (Park et al.'s convention); GMACs = multiply-adds; batch 1, K = 17")
    print(f"{'model':22s} {'role':8s} {'input WxH':>9s} {'params M':>9s} {'GMACs':>7s} {'GFLOPs':>7s}  "
          f"{'paper (M / GFLOPs)':18s}  summary")
    for spec in list_models("all"):
        size = override or spec.input_size
        try:
            model = build_model(spec.name, 17, size)
        except (ValueError, InputError) as e:
            print(f"{spec.name:22s} {spec.role:8s} {'':>9s} skipped: {e}")
            continue
        if spec.role == "video":     # a tracker holds its parts as models, and two matmuls counted by hand
            from tfpose.models.dkd import per_frame_macs

            macs = per_frame_macs(model)
        else:
            macs = count_macs(model)
        paper = papers.get(spec.name)
        cited = f"{paper.params_m:.2f} / {paper.gflops:.2f}" if paper and tuple(size) == paper.input_size else ""
        print(f"{spec.name:22s} {spec.role:8s} {f'{size[0]}x{size[1]}':>9s} {model.count_params() / 1e6:9.2f} "
              f"{macs / 1e9:7.2f} {2 * macs / 1e9:7.2f}  {cited:18s}  {spec.summary}")


def cmd_predict(args) -> None:
    from tfpose.predict import predict, summary_line

    result = predict(args.source, args.model, args.out, args.detections, args.detector, args.smooth,
                     args.det_min_score, args.padding, args.threshold, args.threads, not args.no_overlays,
                     args.detect_every, args.annotations, args.max_frames)
    print(summary_line(result, args.out))


def cmd_detect(args) -> None:
    from tfpose.detect import detect_people, summary_line

    print(summary_line(detect_people(args.images, args.out, args.detector, args.min_score, args.min_height,
                                     args.threads)))


def cmd_validate(args) -> int:
    from tflite.validate import main as validate_main

    return validate_main(args.rest)


def cmd_export_detector(args) -> None:
    """NanoDet-m from its ONNX file -> Keras (registry model ``nanodet_m``) -> .tflite files with metadata."""
    import hashlib

    import numpy as np

    from tfpose.data.video import list_images
    from tfpose.detection import DetectorCodec
    from tfpose.errors import InputError
    from tfpose.export import detector_card, detector_squares, export_detector, write_detector_assets
    from tfpose.models import build_model

    onnx = Path(args.onnx)
    model = build_model("nanodet_m", input_size=(args.input_size, args.input_size), onnx=str(onnx))
    photos = list_images(Path(args.calibration))
    if not photos:
        raise InputError("no images to calibrate with", path=args.calibration)
    rng = np.random.default_rng(args.seed)
    picked = [photos[i] for i in sorted(rng.choice(len(photos), min(args.calibration_count, len(photos)),
                                                   replace=False))]
    print(f"    calibration: {len(picked)} photos of {args.calibration}, letterboxed to {args.input_size} px")
    squares = detector_squares(picked, args.input_size)
    codec = DetectorCodec(args.input_size)
    source = {"upstream": "NanoDet-m (RangiLyu, github RangiLyu/nanodet), Apache-2.0",
              "weights": onnx.name, "weights_sha256": hashlib.sha256(onnx.read_bytes()).hexdigest(),
              "calibration": {"folder": Path(args.calibration).name, "photos": len(picked), "seed": args.seed}}
    out = Path(args.out)
    paths = {}
    for quant in args.quant:
        paths[quant] = export_detector(model, out / f"detector_{args.input_size}_{quant}.tflite", codec, quant,
                                       squares, squares[: args.reference_count], source)
        print(f"    wrote {paths[quant]}")
    if args.android_assets:
        shipped = paths.get("int8") or next(iter(paths.values()))
        report = Path(args.report) if args.report else None
        card = detector_card(shipped, report)
        notice = ("This folder's detector.tflite is made from NanoDet-m, Copyright 2020-2021 RangiLyu, licensed "
                  "under the Apache License 2.0 (LICENSE-detector): its ONNX export's weights, rebuilt as a "
                  "tf_keras model, converted to int8 TFLite and given tfpose metadata by `tfpose export-detector`.\n")
        licence = Path(args.licence) if args.licence else onnx.parent / "LICENSE"
        write_detector_assets(shipped, args.android_assets, card, licence, notice)
        print(f"    wrote {args.android_assets}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="tfpose", description="Distil, quantize and validate pose models.")
    sub = parser.add_subparsers(dest="command", required=True)

    def with_config(name, fn, help_text):
        p = sub.add_parser(name, help=help_text)
        p.add_argument("--config", help="YAML preset in configs/")
        p.add_argument("--out", default=f"runs/{name}", help="run folder")
        p.add_argument("overrides", nargs="*", help="key=value overrides, e.g. distill.alpha=0.8")
        p.set_defaults(fn=fn)
        return p

    with_config("pipeline", cmd_pipeline, "teacher -> distillation -> int8 TFLite -> validation")
    with_config("data", cmd_data, "prepare (or generate) the dataset and report its size")
    with_config("train-teacher", cmd_train_teacher, "train the teacher")
    with_config("distill", cmd_distill, "distil the student from the teacher")
    exp = with_config("export", cmd_export, "convert a Keras student to .tflite with metadata")
    exp.add_argument("--model", required=True, help="student .keras file")
    exp.add_argument("--quant", choices=("int8", "qat-int8", "float16", "dynamic", "float32"),
                     help="post-training int8 (default), quantization-aware int8, float16, dynamic-range, float32")
    exp.add_argument("--prune-sparsity", type=float, help="magnitude-prune to this sparsity first (fine-tuned)")
    exp.add_argument("--decode", choices=("heatmaps", "keypoints"),
                     help="keypoints: argmax + quarter-offset decoding inside the graph")
    exp.add_argument("--float-layers", type=int, help="int8: keep the N most quantization-sensitive layers float")
    exp.add_argument("--finetune-steps", type=int, help="pruning / QAT fine-tuning batches")
    exp.add_argument("--teacher", help="Keras teacher guiding pruning / QAT (default: the config's teacher)")
    exp.add_argument("--android-assets", help="also write this Android assets folder")
    exp.add_argument("--android-readme", help="README text for the assets folder (default: from the metadata)")
    prn = with_config("prune", cmd_prune, "remove whole channels (or weights) of a Keras student, then fine-tune it")
    prn.add_argument("--model", required=True, help="student .keras file")
    prn.add_argument("--target-gmacs", type=float, help="structured: remove channels down to this many GMACs")
    prn.add_argument("--ratio", type=float, help="structured: keep this fraction of every channel group")
    prn.add_argument("--criterion", choices=("fisher", "taylor", "magnitude", "bn", "random"),
                     help="channel saliency (default fisher: on real batches, per MAC saved)")
    prn.add_argument("--allocation", choices=("global", "uniform"), help="with --target-gmacs: across groups by "
                     "saliency per MAC (global, default) or one keep ratio for every group (uniform)")
    prn.add_argument("--sparsity", type=float, help="magnitude-prune weights to this sparsity (with or instead)")
    prn.add_argument("--finetune-steps", type=int, help="fine-tuning batches after pruning")
    prn.add_argument("--parent-weight", type=float, help="structured: the unpruned student guides the fine-tuning "
                     "with this weight, beside the teacher (default 0: the teacher alone)")
    prn.add_argument("--teacher", help="Keras teacher guiding saliency and fine-tuning (default: the config's)")
    ast = sub.add_parser("assets", help="write an Android assets folder from a tfpose .tflite (a pipeline's output)")
    ast.add_argument("model", help="the .tflite; its .reference.npz beside it goes too")
    ast.add_argument("--out", default="android_assets", help="the assets folder (its detector files stay)")
    ast.add_argument("--readme", help="the folder's README (model card); default: written from the metadata")
    ast.set_defaults(fn=cmd_assets)
    det = sub.add_parser("export-detector", help="import NanoDet-m from ONNX and convert it to .tflite person detectors")
    det.add_argument("--onnx", required=True, help="the upstream NanoDet-m ONNX export")
    det.add_argument("--input-size", type=int, default=416, help="the square input side (a multiple of 32)")
    det.add_argument("--calibration", required=True, help="folder of real photos for int8 calibration")
    det.add_argument("--calibration-count", type=int, default=100)
    det.add_argument("--reference-count", type=int, default=8, help="letterboxed photos kept with Keras outputs")
    det.add_argument("--seed", type=int, default=0, help="which calibration photos are drawn")
    det.add_argument("--quant", nargs="+", choices=("int8", "float32"), default=["int8", "float32"])
    det.add_argument("--out", default="runs/detector", help="folder for the .tflite files")
    det.add_argument("--android-assets", help="also write the int8 detector into this Android assets folder")
    det.add_argument("--report", help="the validator's report.json of this detector, quoted in its card")
    det.add_argument("--licence", help="the upstream LICENSE to ship (default: LICENSE beside the ONNX file)")
    det.set_defaults(fn=cmd_export_detector)
    models = sub.add_parser("models", help="list registered models with parameters and FLOPs")
    models.add_argument("--input-size", metavar="WxH", help="one input size for every model (default: each paper's)")
    models.set_defaults(fn=cmd_models)
    pred = sub.add_parser("predict", help="poses on an image, a folder of images or a video (writes overlays + JSON)")
    pred.add_argument("source", help="an image, a folder of images, a video file (.mp4, ...) or a camera index (0)")
    pred.add_argument("--model", required=True, help="a tfpose .tflite (runs without TensorFlow) or a Keras .keras")
    pred.add_argument("--out", default="runs/predict", help="folder for keypoints.json and the overlays")
    pred.add_argument("--detections", help="COCO detection results JSON giving the person boxes per frame")
    pred.add_argument("--detector", help="person detector .tflite (default: detector.tflite beside the model, else "
                      "android_assets/), or 'frame': the whole frame is one person")
    pred.add_argument("--det-min-score", type=float, default=0.3, help="drop person boxes below this score")
    pred.add_argument("--detect-every", type=int, default=5, help="video and camera: run the detector every N frames "
                      "(and when a track is lost); in between, crops follow the previous keypoints")
    pred.add_argument("--annotations", help="COCO annotations: results.json takes each image's id by file name")
    pred.add_argument("--max-frames", type=int, help="stop a camera stream after this many frames")
    pred.add_argument("--smooth", choices=("none", "one-euro"), default="none", help="temporal smoothing per track")
    pred.add_argument("--padding", type=float, help="box padding (default: the model's metadata, else 1.25)")
    pred.add_argument("--threshold", type=float, default=0.2, help="joints scoring under this are not drawn")
    pred.add_argument("--threads", type=int, default=1, help="TFLite interpreter threads")
    pred.add_argument("--no-overlays", action="store_true", help="write the JSON only")
    pred.set_defaults(fn=cmd_predict)
    dtc = sub.add_parser("detect", help="person boxes of a folder of photos as COCO detection results (for a "
                         "'detected' training source: the teacher labels their joints)")
    dtc.add_argument("images", help="a folder of images (or one image)")
    dtc.add_argument("--out", default="runs/detections.json", help="the detection results JSON to write")
    dtc.add_argument("--detector", help="person detector .tflite (default: android_assets/detector.tflite)")
    dtc.add_argument("--min-score", type=float, default=0.3, help="drop person boxes below this score")
    dtc.add_argument("--min-height", type=float, default=80.0, help="drop person boxes less tall than this (pixels)")
    dtc.add_argument("--threads", type=int, default=1, help="TFLite interpreter threads")
    dtc.set_defaults(fn=cmd_detect)
    val = sub.add_parser("validate", help="on-device validator (same as tfpose-validate)", add_help=False)
    val.add_argument("rest", nargs=argparse.REMAINDER)
    val.set_defaults(fn=cmd_validate)

    # overrides may come anywhere: argparse takes one run of positionals, so the runs after an option arrive here
    args, strays = parser.parse_known_args(argv)
    unknown = [a for a in strays if not (hasattr(args, "overrides") and "=" in a and not a.startswith("-"))]
    if unknown:
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    if strays:
        args.overrides = [*args.overrides, *strays]
    try:
        return int(args.fn(args) or 0)
    except (TfposeError, OSError) as e:   # OSError: a file it could not read or write (a full disk, ...)
        print(error_line(e), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: run the same command again to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
