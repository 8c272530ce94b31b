"""Distillation methods on real photos: ground truth only vs FPD/Park, DSKD and OKDHP, one student, one budget.

    python benchmarks/kd_real.py [--steps 400] [--views 4] [--input 96 128] [--methods gt,fpd,dskd,okdhp]

Data: the 80 real photos of ../shared/data/coco-mini-train, split by image with val_fraction 0.3, seed 0 (the split
the other benchmarks use). Teacher: MoveNet Thunder (../shared/models/movenet-thunder-teacher, ``heatmaps_person``)
on the 256 x 256 square view of each crop, mapped onto the student's 32 x 24 grid by
``tfpose.distill.teachers.grid_transform``. Augmentation is fixed: ``--views`` views per training person (view 0
plain, the rest seeded scale / rotation / flip), teacher heatmaps precomputed once for them (cached in --out).
The distillation runs also train on the person boxes that carry no keypoints (teacher targets, GT weight 0);
OKDHP runs online without the external teacher (its own ensemble teaches), as in the paper, and once with it.
Every run: the same student, seed, batch size and number of steps. Scores: OKS AP (pycocotools) with the bootstrap
95 % interval from tfpose.evaluation, PCK@0.2, on the val split's labelled ground-truth boxes.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from tfpose._keras import keras, tf
from tfpose.artifacts import atomic_path, write_text
from tfpose.codec import HeatmapCodec
from tfpose.config import AugmentConfig, DskdConfig, OkdhpConfig
from tfpose.data.coco import ImageStore, load_coco
from tfpose.data.samples import CropSampler
from tfpose.data.transforms import apply_matrix, invert_matrix, warp_image
from tfpose.distill.distiller import Distiller
from tfpose.distill.teachers import SavedModelTeacher, TeacherViewSampler, teacher_matrix
from tfpose.evaluation import Predictions, crop_person, evaluate_predictor, score_predictions
from tfpose.models import build_model
from tfpose.skeleton import COCO17

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
INPUT = (96, 128)           # (W, H) student input; heatmaps 24 x 32
STUDENT = dict(growth=16, duc_channels=(64, 32, 32))


def views(sampler: TeacherViewSampler, n_views: int):
    crops, heat, wts, tviews = [], [], [], []
    for i in range(len(sampler)):
        for v in range(n_views):
            s, view = sampler.sample(i, None if v == 0 else 1000 * i + v)
            crops.append(s.crop), heat.append(s.heatmaps), wts.append(s.weights), tviews.append(view)
    return np.stack(crops), np.stack(heat), np.stack(wts), np.stack(tviews)


def teacher_metrics(teacher: SavedModelTeacher, val, codec, padding):
    persons = val.labelled()
    images = ImageStore()
    crops, mats, tv = [], [], []
    for p in persons:
        crop, m = crop_person(p, images, codec, padding)
        crops.append(crop), mats.append(m)
        tv.append(warp_image(images(p.image_path), teacher_matrix(m, codec.input_size, teacher.input_size),
                             teacher.input_size))
    maps = teacher.precompute(np.stack(tv).astype(np.float32))
    kp, sc = codec.decode(maps)
    in_image = np.stack([apply_matrix(k, invert_matrix(m)) for k, m in zip(kp, mats)])
    preds = Predictions(persons, in_image.astype(np.float32), sc, np.stack(crops), np.stack(mats))
    return score_predictions(preds, val, COCO17)


def train(name, data, steps, batch, lr, teacher, **kw):
    keras.utils.set_random_seed(0)
    student = build_model("peleenet_duc", 17, INPUT, **STUDENT)
    distiller = Distiller(student, teacher, total_steps=steps, **kw)
    sched = keras.optimizers.schedules.CosineDecay(lr, steps, alpha=0.01)
    distiller.compile(optimizer=keras.optimizers.Adam(sched))
    images, targets = data
    ds = tf.data.Dataset.from_tensor_slices((images, targets)).shuffle(len(images), seed=0).repeat().batch(
        batch, drop_remainder=True).prefetch(2)
    t = time.perf_counter()
    hist = distiller.fit(ds, steps_per_epoch=steps, epochs=1, verbose=0)
    dt = time.perf_counter() - t
    print(f"    {name}: {steps} steps in {dt:.0f} s, final loss {hist.history['loss'][-1]:.4g}", flush=True)
    return student, dt


class _Precomputed:
    """Stands for the teacher inside the Distiller: its heatmaps arrive precomputed in targets."""
    def __call__(self, *a, **k):
        raise RuntimeError("teacher heatmaps are precomputed")


def main():
    global INPUT
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=400)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--views", type=int, default=4)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--alpha", type=float, default=0.5)
    ap.add_argument("--methods", default="gt,fpd,dskd,okdhp,okdhp+t")
    ap.add_argument("--out", default="runs/kd_real")
    ap.add_argument("--input", type=int, nargs=2, default=list(INPUT), metavar=("W", "H"))
    args = ap.parse_args()
    INPUT = tuple(args.input)
    out = ROOT / args.out
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()

    data_root = SHARED / "data/coco-mini-train"
    train_set, val = load_coco(data_root / "annotations/person_keypoints_train2017.json",
                               data_root / "train2017").split(0.3, seed=0)
    codec = HeatmapCodec(INPUT, 4, 2.0, "dark")
    teacher = SavedModelTeacher(SHARED / "models/movenet-thunder-teacher", codec, output_key="heatmaps_person")
    labelled, unlabelled = train_set.labelled(), train_set.unlabelled()
    print(f"train: {len(labelled)} labelled + {len(unlabelled)} unlabelled persons; val: {len(val.labelled())}")
    aug = AugmentConfig(colour=0.0)

    cache = out / f"cache_{args.views}_{INPUT[0]}x{INPUT[1]}.npz"
    if cache.is_file():
        c = dict(np.load(cache))
    else:
        t = time.perf_counter()
        c = {}
        for tag, persons in (("l", labelled), ("u", unlabelled)):
            sampler = TeacherViewSampler(CropSampler(persons, codec, COCO17.flip_index, 1.25, aug), (256, 256))
            crops, heat, wts, tv = views(sampler, args.views)
            c.update({f"{tag}_crops": crops, f"{tag}_heat": heat, f"{tag}_w": wts,
                      f"{tag}_teacher": teacher.precompute(tv.astype(np.float32))})
        with atomic_path(cache) as tmp:
            np.savez_compressed(tmp, **c)
        print(f"    teacher heatmaps for {len(c['l_crops']) + len(c['u_crops'])} views in "
              f"{time.perf_counter() - t:.0f} s")

    def dataset(with_unlabelled):
        keys = ("l", "u") if with_unlabelled else ("l",)
        cat = lambda k: np.concatenate([c[f"{t}_{k}"] for t in keys]).astype(np.float32)
        return cat("crops"), {"heatmaps": cat("heat"), "weights": cat("w"), "teacher_heatmaps": cat("teacher")}

    results = {"teacher (MoveNet Thunder, on the student grid)": teacher_metrics(teacher, val, codec, 1.25)}
    runs = {
        "gt": ("ground truth only", False, None, dict()),
        "fpd": ("FPD / Park (alpha-mixed MSE)", True, _Precomputed(), dict(method="fpd", alpha=args.alpha)),
        "dskd": ("DSKD (binarized teacher, MSE + spatial CE)", True, _Precomputed(),
                 dict(method="dskd", alpha=args.alpha, dskd=DskdConfig())),
        "okdhp": ("OKDHP (3 branches, online, no teacher)", False, None,
                  dict(method="okdhp", okdhp=OkdhpConfig(branches=3))),
        "okdhp+t": ("OKDHP + teacher (alpha-mixed supervision)", True, _Precomputed(),
                    dict(method="okdhp", alpha=args.alpha, okdhp=OkdhpConfig(branches=3))),
    }
    seconds = {}
    for key in args.methods.split(","):
        name, unl, tch, kw = runs[key]
        student, seconds[name] = train(name, dataset(unl), args.steps, args.batch, args.lr, tch, **kw)
        metrics, _ = evaluate_predictor(lambda x: student.predict_on_batch(x.astype(np.float32)), val, codec, COCO17)
        results[name] = metrics
        print(f"    {name}: AP {metrics['AP']:.3f} [{metrics['AP_ci95'][0]:.3f}, {metrics['AP_ci95'][1]:.3f}] "
              f"PCK@0.2 {metrics['PCK@0.2']:.3f}", flush=True)

    rows = ["| model | OKS AP | AP 95 % CI | PCK@0.2 | mean OKS | train s |", "|---|---|---|---|---|---|"]
    for name, m in results.items():
        rows.append(f"| {name} | {m['AP']:.3f} | {m['AP_ci95'][0]:.3f}-{m['AP_ci95'][1]:.3f} | {m['PCK@0.2']:.3f} "
                    f"| {m['mean_OKS']:.3f} | {seconds.get(name, 0):.0f} |")
    table = "\n".join(rows)
    total = time.perf_counter() - t0
    print("\n" + table + f"\n\ntotal {total:.0f} s")
    keep = ("AP", "AP_ci95", "PCK@0.2", "mean_OKS", "mean_OKS_ci95", "persons")
    write_text(out / "results.json", json.dumps(
        {"args": vars(args), "seconds": seconds, "total_s": total,
         "results": {n: {k: m[k] for k in keep} for n, m in results.items()}}, indent=1))
    write_text(out / "table.md", table + "\n")


if __name__ == "__main__":
    main()
