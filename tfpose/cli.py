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
    from tfpose.models import build_model, list_models

    print(f"{'model':24s} {'role':8s} {'input WxH':10s} {'params (M)':>10s}  summary")
    for spec in list_models():
        m = build_model(spec.name, 17, spec.input_size)
        print(f"{spec.name:24s} {spec.role:8s} {spec.input_size[0]}x{spec.input_size[1]:<6d} "
              f"{m.count_params() / 1e6:10.2f}  {spec.summary}")


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
    models = sub.add_parser("models", help="list registered models")
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
