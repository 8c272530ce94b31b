"""``tfpose <command> --config X key=value ...``: the pipeline and each of its stages."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tfpose.errors import TfposeError


def _config(args):
    from tfpose.config import load_config

    return load_config(args.config, args.overrides)


def cmd_pipeline(args) -> None:
    from tfpose.pipeline import run_pipeline

    run_pipeline(_config(args), args.out)


def cmd_data(args) -> None:
    from tfpose.pipeline import Context, load_data, make_context

    ctx: Context = make_context(_config(args), args.out)
    load_data(ctx)


def cmd_train_teacher(args) -> None:
    from tfpose import pipeline as p

    ctx = p.make_context(_config(args), args.out)
    p.load_data(ctx)
    with p.stage(ctx, "teacher"):
        teacher = p.train_teacher(ctx)
    if teacher is not None:   # teacher.source none: nothing to train or score
        p.evaluate_keras(ctx, teacher, "teacher")


def cmd_distill(args) -> None:
    from tfpose import pipeline as p

    ctx = p.make_context(_config(args), args.out)
    p.load_data(ctx)
    teacher = p.train_teacher(ctx)
    with p.stage(ctx, "distill"):
        student = p.distil_student(ctx, teacher)
    p.evaluate_keras(ctx, student, "student")


def cmd_export(args) -> None:
    from tfpose import pipeline as p
    from tfpose.export import write_android_assets

    ctx = p.make_context(_config(args), args.out)
    p.load_data(ctx)
    student = p.load_keras(Path(args.model))
    path = p.export_student(ctx, student)
    if args.android_assets:
        readme = Path(args.android_readme).read_text() if args.android_readme else _default_asset_readme(path)
        write_android_assets(path, args.android_assets, readme)
        print(f"    wrote {args.android_assets}")


def _default_asset_readme(path: Path) -> str:
    return (f"# {path.name}\n\nExported by `tfpose export`. Input: raw RGB pixels of a person crop (see metadata.json "
            "for size and type); output: one heatmap per keypoint in labels.txt order.\n")


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
    for spec in list_models():
        size = override or spec.input_size
        try:
            model = build_model(spec.name, 17, size)
        except ValueError as e:
            print(f"{spec.name:22s} {spec.role:8s} {'':>9s} skipped: {e}")
            continue
        macs, paper = count_macs(model), papers.get(spec.name)
        cited = f"{paper.params_m:.2f} / {paper.gflops:.2f}" if paper and tuple(size) == paper.input_size else ""
        print(f"{spec.name:22s} {spec.role:8s} {f'{size[0]}x{size[1]}':>9s} {model.count_params() / 1e6:9.2f} "
              f"{macs / 1e9:7.2f} {2 * macs / 1e9:7.2f}  {cited:18s}  {spec.summary}")


def cmd_validate(args) -> int:
    from tflite.validate import main as validate_main

    return validate_main(args.rest)


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
    exp.add_argument("--android-assets", help="also write this Android assets folder")
    exp.add_argument("--android-readme", help="README text for the assets folder")
    models = sub.add_parser("models", help="list registered models with parameters and FLOPs")
    models.add_argument("--input-size", metavar="WxH", help="one input size for every model (default: each paper's)")
    models.set_defaults(fn=cmd_models)
    val = sub.add_parser("validate", help="on-device validator (same as tfpose-validate)", add_help=False)
    val.add_argument("rest", nargs=argparse.REMAINDER)
    val.set_defaults(fn=cmd_validate)

    args = parser.parse_args(argv)
    try:
        return int(args.fn(args) or 0)
    except TfposeError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: run the same command again to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
