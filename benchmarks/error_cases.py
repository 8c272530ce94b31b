"""What limits the default int8 student against MoveNet Thunder: per joint and per kind of person, on the same
people, with paired bootstrap intervals, and the people where the student falls furthest behind drawn side by side.

    python benchmarks/error_cases.py --write          # under a minute at one thread

Both dev-val sets, never trained on: coco-mini-train's val split (0.3 of the photos by image, seed 0) and PARSE's
test half (its last 205 images). Ground-truth boxes, cropped as ``tflite.validate`` crops them (each model through
its adapter: the student from its metadata, 160x224 at padding 1.25; Thunder a 256x256 square with the same centre),
scored as the validator scores them (``tfpose.evaluation.score_predictions``), ai-edge-litert at one thread.

Per joint (people with that joint labelled): keypoint similarity, OKS's term for one joint,
exp(-d^2 / (2 area (2 sigma)^2)) with COCO's sigmas; PCK@0.2 (error over the box's w and h per axis, below 0.2); the
mean of that normalised error. The same per group (face, shoulders, elbows, ...), pooling the group's labelled
joints. A person's OKS is the mean similarity of their labelled joints, so the mean-OKS gap splits exactly into one
part per joint: the mean over all people of (student - Thunder) similarity / that person's labelled joints.

Cases, each person in any number of them (thresholds in ``CASES``):
- truncated: the body leaves the photo. An edge of the box lies within 1 % of the image's longer side of the
  image's edge *and* fewer than all 12 limb joints (shoulders to ankles) are labelled. COCO does not label a joint
  outside the photo; PARSE's reader unlabels any point outside it (``tfpose.data.lsp``), and clips its box, so a box
  at the edge alone is not enough there.
- occluded: at least a quarter of the labelled joints are marked occluded (COCO v=1). PARSE has no visibility flags
  (every labelled joint is v=2): the case is empty there.
- small: box height in the lower third of the set's (the pixel threshold is printed; PARSE's boxes are the joints'
  extent plus 10 %, COCO's the segment's, so the two thresholds differ).
- dark: mean luma (Rec. 601) of the box's pixels inside the photo below 64 of 255 (the box, not a model's crop: the
  crops pad with black where they leave the photo).
- clean: none of the above; not truncated; all: everyone.
Intervals: 95 % percentile bootstrap over the case's (or joint's) people, 1000 draws, both models on each draw. A
case of a few people gives an interval wider than most gaps: read those rows as direction, not size.

The figure per set (docs/error_cases_worst_*.png with --write): the 8 people whose OKS falls furthest below
Thunder's, each as a pair on the student's crop: the student's skeleton left, Thunder's right (mapped into the same
crop), the labelled ground truth as white rings on both; tags name the person's cases, and L/R a model's left/right
swap (its OKS would rise by 0.1 or more with its left and right joints exchanged; counted for everyone too).
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))   # run from a checkout without installing

from benchmarks._sections import publish  # noqa: E402
from benchmarks.cpu_ceiling import cpu_info  # noqa: E402
from benchmarks.peers import parse_test_json  # noqa: E402
from tflite.adapters import PoseAdapter, load_adapter  # noqa: E402
from tflite.validate import machine_info  # noqa: E402
from tfpose.artifacts import write_bytes, write_json  # noqa: E402
from tfpose.data.coco import ImageStore, Person  # noqa: E402
from tfpose.data.transforms import apply_matrix  # noqa: E402
from tfpose.errors import TfposeError  # noqa: E402
from tfpose.evaluation import EvalSet, Predictions, load_eval_set, predict_keypoints, score_predictions  # noqa: E402
from tfpose.metrics import bootstrap_ci  # noqa: E402
from tfpose.skeleton import COCO17  # noqa: E402
from tfpose.visualize import contact_sheet, draw_skeleton  # noqa: E402

SHARED = ROOT.parent / "shared"
THUNDER = "movenet-peers/movenet-thunder_fp32.tflite"
LIMBS = slice(5, 17)                  # shoulders to ankles: the joints every set labels
CASES = {"border": 0.01, "occluded_share": 0.25, "small_quantile": 1 / 3, "dark_luma": 64.0}
CASE_TAGS = {"truncated": "T", "occluded": "O", "small": "S", "dark": "D"}
SWAP_GAIN = 0.1                       # a prediction is left/right swapped when exchanging them gains this much OKS
PCK_THRESHOLD = 0.2
GROUPS = {"face": ("nose", "left_eye", "right_eye", "left_ear", "right_ear"),
          **{part + "s": (f"left_{part}", f"right_{part}")
             for part in ("shoulder", "elbow", "wrist", "hip", "knee", "ankle")}}
WORST = 8
FIGURE_BYTES = 300_000


@dataclass
class JointErrors:
    """One model's errors on a set's people. Shape legend: N people, K joints; NaN where a joint is unlabelled."""
    similarity: np.ndarray   # (N, K) OKS keypoint similarity
    error: np.ndarray        # (N, K) error over the box [w, h] per axis
    oks: np.ndarray          # (N,) the validator's per-person OKS
    pck_hits: np.ndarray     # (N,) labelled joints within PCK_THRESHOLD
    labelled: np.ndarray     # (N,) labelled joints
    swap_gain: np.ndarray    # (N,) OKS with the prediction's left and right exchanged, minus its OKS


def joint_errors(preds: Predictions, accuracy: dict) -> JointErrors:
    """Per-joint similarity and normalised error of ``preds``; checks that they make the validator's OKS."""
    truth = np.stack([p.keypoints for p in preds.persons]).astype(np.float64)
    labelled = np.stack([p.visibility > 0 for p in preds.persons])
    boxes = np.array([p.box[2:] for p in preds.persons], np.float64)
    areas = np.array([p.area for p in preds.persons], np.float64)
    variances = (2 * np.asarray(COCO17.oks_sigmas)) ** 2

    def similarity_of(keypoints: np.ndarray) -> np.ndarray:
        return np.exp(-((keypoints - truth) ** 2).sum(-1) / variances / (areas[:, None] + np.spacing(1)) / 2)

    similarity = similarity_of(preds.keypoints)
    swapped = np.nanmean(np.where(labelled, similarity_of(preds.keypoints[:, COCO17.flip_index]), np.nan), 1)
    error = np.linalg.norm((preds.keypoints - truth) / np.maximum(boxes[:, None, :], 1e-6), axis=-1)
    oks = np.array(accuracy["per_person_oks"])
    mine = np.nanmean(np.where(labelled, similarity, np.nan), 1)
    if not np.allclose(mine, oks, atol=1e-6):
        raise TfposeError(f"per-joint similarity does not average to the validator's OKS (max diff "
                          f"{np.abs(mine - oks).max():.2e})")
    return JointErrors(np.where(labelled, similarity, np.nan), np.where(labelled, error, np.nan), oks,
                       np.array(accuracy["per_person_pck_hits"]), labelled.sum(1), swapped - mine)


def person_cases(persons: list[Person], images: ImageStore) -> tuple[dict[str, np.ndarray], dict, dict]:
    """({case: (N,) bool}, per-person features, the thresholds in pixels) for one set (see the module docstring)."""
    border, height, luma, occluded = [], [], [], []
    for p in persons:
        image = images(p.image_path)
        h, w = image.shape[:2]
        x, y, bw, bh = p.box
        border.append(min(x, y, w - (x + bw), h - (y + bh)) / max(w, h))
        height.append(bh)
        x0, y0, x1, y1 = int(max(0, x)), int(max(0, y)), int(np.ceil(min(w, x + bw))), int(np.ceil(min(h, y + bh)))
        region = image[y0:max(y1, y0 + 1), x0:max(x1, x0 + 1)].astype(np.float32)
        luma.append(float((region @ np.array([0.299, 0.587, 0.114], np.float32)).mean()))
        occluded.append((p.visibility == 1).sum() / max(p.num_labelled, 1))
    border, height, luma, occluded = map(np.array, (border, height, luma, occluded))
    limbs = np.array([(p.visibility[LIMBS] > 0).sum() for p in persons])
    small_px = float(np.quantile(height, CASES["small_quantile"]))
    cases = {"truncated": (border <= CASES["border"]) & (limbs < LIMBS.stop - LIMBS.start),
             "occluded": occluded >= CASES["occluded_share"], "small": height < small_px,
             "dark": luma < CASES["dark_luma"]}
    cases["clean"] = ~np.any(list(cases.values()), axis=0)
    cases["not truncated"] = ~cases["truncated"]       # truncation is most of coco-mini's gap: the rest, alone
    cases["all"] = np.ones(len(persons), bool)
    features = {"box_height_px": height.tolist(), "luma": luma.tolist(), "occluded_share": occluded.tolist(),
                "border_gap_share": border.tolist(), "limb_joints_labelled": limbs.tolist()}
    return cases, features, {"small_box_height_px": small_px}


def paired(a: np.ndarray, b: np.ndarray, per: np.ndarray | None = None) -> dict:
    """The mean of a and of b and a minus b with a 95 % bootstrap interval, both resampled on the same items.

    a, b: (M,) one number per item; per: (M,) a denominator each, for a pooled ratio instead of the mean
    (PCK: hits / labelled joints, summed over the people).
    """
    if not len(a):
        return {"student": None, "thunder": None, "gap": None, "ci95": [None, None]}
    items = np.stack([a, b, np.ones(len(a)) if per is None else per], 1).astype(np.float64)

    def ratio(s: np.ndarray, col: int) -> float:
        return s[:, col].sum() / max(s[:, 2].sum(), 1e-12)

    lo, hi = bootstrap_ci(items, statistic=lambda s: ratio(s, 0) - ratio(s, 1)) if len(a) > 1 else (None, None)
    return {"student": ratio(items, 0), "thunder": ratio(items, 1), "gap": ratio(items, 0) - ratio(items, 1),
            "ci95": [lo, hi]}


def per_joint(s: JointErrors, t: JointErrors) -> dict:
    """{joint or group: people, labelled instances, similarity, PCK, normalised error (each student, Thunder,
    gap [CI]) and its part of the mean-OKS gap}; a group pools its joints' labelled instances per person. Joints
    nobody in the set labels are left out."""
    share = (s.similarity - t.similarity) / s.labelled[:, None]     # (N, K): sums over joints to OKS_s - OKS_t
    names = list(COCO17.keypoints)
    out = {}
    for name, members in [(n, (n,)) for n in names] + list(GROUPS.items()):
        idx = [names.index(n) for n in members]
        on = np.isfinite(s.similarity[:, idx])                      # (N, J) labelled instances
        people = on.any(1)
        if not people.any():
            continue
        count = on.sum(1)[people]
        summed = {metric: [np.where(on, v[:, idx], 0).sum(1)[people] for v in values] for metric, values in (
            ("similarity", (s.similarity, t.similarity)), ("normalised_error", (s.error, t.error)),
            ("PCK@0.2", (s.error < PCK_THRESHOLD, t.error < PCK_THRESHOLD)))}   # NaN < x is False: unlabelled
        part = np.nan_to_num(share[:, idx]).sum(1)
        lo, hi = bootstrap_ci(part)
        out[name] = {"people": int(people.sum()), "labelled": int(count.sum()),
                     **{metric: paired(a, b, count) for metric, (a, b) in summed.items()},
                     "part_of_mean_OKS_gap": {"gap": float(part.mean()), "ci95": [lo, hi]}}
    return out


def per_case(cases: dict[str, np.ndarray], s: JointErrors, t: JointErrors) -> dict:
    """{case: people, mean OKS and pooled PCK@0.2 (student, Thunder, gap [CI]), and the case's part of the
    all-people mean-OKS gap (its summed gap over everyone)}."""
    out = {}
    for name, on in cases.items():
        entry = {"people": int(on.sum()), "mean_OKS": paired(s.oks[on], t.oks[on]),
                 "PCK@0.2": paired(s.pck_hits[on], t.pck_hits[on], s.labelled[on])}
        if on.any():
            entry["part_of_mean_OKS_gap"] = float((s.oks[on] - t.oks[on]).sum() / len(on))
        out[name] = entry
    return out


def run_set(eval_set: EvalSet, adapters: list[PoseAdapter], images: ImageStore) -> tuple[dict, list[Predictions]]:
    """Both models on one set, as the validator runs them; the set's numbers and each model's predictions."""
    preds, errors, accuracy = [], [], []
    for adapter in adapters:
        p = predict_keypoints(adapter.predict, eval_set.persons, adapter.input_size, adapter.padding, 16, images)
        a = score_predictions(p, eval_set.dataset, COCO17, ap_resamples=0)   # AP's own interval is not used here
        preds.append(p)
        accuracy.append(a)
        errors.append(joint_errors(p, a))
    cases, features, thresholds = person_cases(eval_set.persons, images)
    s, t = errors
    gap = s.oks - t.oks
    worst = [int(i) for i in np.argsort(gap, kind="stable")[:WORST]]
    result = {"people": len(eval_set.persons), "thresholds": thresholds,
              "AP": {"student": accuracy[0]["AP"], "thunder": accuracy[1]["AP"]},
              "per_joint": per_joint(s, t), "per_case": per_case(cases, s, t),
              "swapped": {"all": paired(s.swap_gain >= SWAP_GAIN, t.swap_gain >= SWAP_GAIN),
                          "student": int((s.swap_gain >= SWAP_GAIN).sum()),
                          "thunder": int((t.swap_gain >= SWAP_GAIN).sum()),
                          "worst_student": int((s.swap_gain[worst] >= SWAP_GAIN).sum()),
                          "worst_thunder": int((t.swap_gain[worst] >= SWAP_GAIN).sum())},
              "worst": [{"image_id": eval_set.persons[i].image_id, "ann_id": eval_set.persons[i].ann_id,
                         "oks_student": float(s.oks[i]), "oks_thunder": float(t.oks[i]),
                         "swapped_student": bool(s.swap_gain[i] >= SWAP_GAIN),
                         "swapped_thunder": bool(t.swap_gain[i] >= SWAP_GAIN),
                         "cases": [c for c in CASE_TAGS if cases[c][i]]} for i in worst],
              "per_person": {"image_id": [p.image_id for p in eval_set.persons],
                             "ann_id": [p.ann_id for p in eval_set.persons],
                             "oks_student": s.oks.tolist(), "oks_thunder": t.oks.tolist(),
                             "swap_gain_student": s.swap_gain.tolist(), "swap_gain_thunder": t.swap_gain.tolist(),
                             "cases": {c: v.tolist() for c, v in cases.items()}, **features}}
    return result, preds


def worst_figure(result: dict, preds: list[Predictions], path: Path) -> int:
    """The worst people as (student | Thunder) pairs on the student's crop; returns the PNG's size in bytes."""
    student, thunder = preds
    index = {(p.image_id, p.ann_id): i for i, p in enumerate(student.persons)}
    pairs = []
    for w in result["worst"]:
        i = index[(w["image_id"], w["ann_id"])]
        m, crop, person = student.matrices[i], student.crops[i], student.persons[i]
        truth = apply_matrix(person.keypoints, m)[person.visibility > 0]
        tiles = []
        for label, kp, oks, swapped in (("student", student.keypoints[i], w["oks_student"], w["swapped_student"]),
                                        ("Thunder", thunder.keypoints[i], w["oks_thunder"], w["swapped_thunder"])):
            tile = draw_skeleton(crop, apply_matrix(kp, m), None, COCO17)
            for x, y in truth:
                cv2.circle(tile, (int(round(x)), int(round(y))), 4, (255, 255, 255), 1, cv2.LINE_AA)
            _text(tile, f"{label} {oks:.2f}" + " L/R" * swapped, 14)
            tiles.append(tile)
        _text(tiles[0], " ".join(CASE_TAGS[c] for c in w["cases"]), tiles[0].shape[0] - 6)
        gap = np.full((crop.shape[0], 3, 3), 255, np.uint8)
        pairs.append(np.hstack([tiles[0], tiles[1], gap]))
    sheet = contact_sheet(pairs, columns=min(4, len(pairs)))
    data = _png(sheet)
    write_bytes(path, data)
    return len(data)


def _text(tile: np.ndarray, text: str, y: int) -> None:
    for colour, width in (((0, 0, 0), 3), ((255, 255, 255), 1)):   # outlined: readable on any background
        cv2.putText(tile, text, (4, y), cv2.FONT_HERSHEY_SIMPLEX, 0.42, colour, width, cv2.LINE_AA)


def _png(rgb: np.ndarray) -> bytes:
    """PNG bytes; photos do not compress as PNG, so over FIGURE_BYTES the colours go to a 256-entry palette."""
    ok, buf = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_PNG_COMPRESSION, 9])
    if not ok:
        raise TfposeError("OpenCV could not encode the figure as PNG")
    if len(buf) <= FIGURE_BYTES:
        return buf.tobytes()
    import io

    from PIL import Image

    out = io.BytesIO()
    Image.fromarray(rgb).quantize(256, method=Image.Quantize.MEDIANCUT).save(out, format="PNG", optimize=True)
    return out.getvalue()


# -- the section ---------------------------------------------------------------------------------------------------
SET_NAMES = {"coco_mini_val": "coco-mini val", "parse_test": "PARSE test"}


def _gap(g: dict) -> str:
    if g["gap"] is None:
        return "-"
    lo, hi = g["ci95"]
    return f"{g['gap']:+.3f}" + ("" if lo is None else f" [{lo:+.3f}, {hi:+.3f}]")


def _pair(g: dict) -> str:
    return "-" if g["student"] is None else f"{g['student']:.3f} / {g['thunder']:.3f}"


def joint_table(joints: dict, first: str = "joint") -> list[str]:
    lines = [f"| {first} | labelled | similarity S / T | gap [95 %] | part of mean-OKS gap [95 %] | PCK@0.2 S / T | "
             "gap [95 %] | mean norm. error S / T | gap [95 %] |", "|" + "---|" * 9]
    for name, j in joints.items():
        lines.append(f"| {name} | {j['labelled']} | {_pair(j['similarity'])} | {_gap(j['similarity'])} | "
                     f"{_gap(j['part_of_mean_OKS_gap'])} | {_pair(j['PCK@0.2'])} | {_gap(j['PCK@0.2'])} | "
                     f"{_pair(j['normalised_error'])} | {_gap(j['normalised_error'])} |")
    return lines


def case_table(cases: dict) -> list[str]:
    lines = ["| case | people | mean OKS S / T | gap [95 %] | part of the all-people gap | PCK@0.2 S / T | "
             "gap [95 %] |", "|" + "---|" * 7]
    for name, c in cases.items():
        part = c.get("part_of_mean_OKS_gap")
        lines.append(f"| {name} | {c['people']} | {_pair(c['mean_OKS'])} | {_gap(c['mean_OKS'])} | "
                     f"{'-' if part is None else f'{part:+.3f}'} | {_pair(c['PCK@0.2'])} | {_gap(c['PCK@0.2'])} |")
    return lines


def swap_line(swapped: dict) -> str:
    g = swapped["all"]
    return (f"Left/right swaps (exchanging the prediction's left and right joints raises its OKS by {SWAP_GAIN} or "
            f"more): student {swapped['student']}, Thunder {swapped['thunder']} people (gap in their share, student "
            f"minus Thunder, {_gap(g)}); among "
            f"the {WORST} worst below, student {swapped['worst_student']}, Thunder {swapped['worst_thunder']} "
            "(marked L/R).")


def findings(result: dict) -> str:
    """One line naming the joint groups and cases with the most negative parts of the mean-OKS gap."""
    groups = [(n, j) for n, j in result["per_joint"].items() if n in GROUPS]
    groups = sorted(groups, key=lambda kv: kv[1]["part_of_mean_OKS_gap"]["gap"])[:3]
    cases = [(n, c) for n, c in result["per_case"].items() if n in CASE_TAGS and c["people"]]
    cases = sorted(cases, key=lambda kv: kv[1]["part_of_mean_OKS_gap"])[:2]
    total = result["per_case"]["all"]["mean_OKS"]
    g_text = ", ".join(f"{n} {_gap(j['part_of_mean_OKS_gap'])}" for n, j in groups)
    c_text = "; ".join(f"{n} ({c['people']} people) {c['part_of_mean_OKS_gap']:+.3f}, its own gap "
                       f"{_gap(c['mean_OKS'])}" for n, c in cases)
    return (f"mean-OKS gap {_gap(total)}. Most negative parts of it by joint group: {g_text}; by case: {c_text}.")


def section(report: dict) -> str:
    m, cpu = report["machine"], report["cpu"]
    vnni = [f for f in ("avx512_vnni", "avx_vnni") if cpu.get(f)]
    lines = ["### What limits the student against MoveNet Thunder, per joint and per case", "",
             "    " + report["command"], "",
             f"CPU: {cpu['cpu']}, {'VNNI (' + ', '.join(vnni) + ')' if vnni else 'no VNNI'}; {report['runtime']}, "
             f"XNNPACK, 1 thread; load average {m['load_average_1min']:.1f} at the start; {report['seconds']:.0f} s "
             f"in all. The student is `{report['student']}` (int8, 160x224), Thunder "
             f"`{report['thunder']}` (fp32, 256x256); ground-truth boxes, each model cropping them its own way, as "
             "`tflite.validate` does, so the all-people rows equal the validator's (BENCHMARKS.md, every_cpu). "
             "Definitions of the cases and figures: `benchmarks/error_cases.py`'s docstring. S / T: student / Thunder; "
             "gaps are student minus Thunder (for the normalised error, negative is the student better) with 95 % "
             "paired bootstrap intervals over the people; \"part of the gap\" splits the all-people mean-OKS gap "
             "exactly over joints (each person's OKS is the mean of their labelled joints' similarities) and gives "
             "each case its summed gap over everyone (cases overlap, so those parts do not add up).", ""]
    for key, r in report["sets"].items():
        t = r["thresholds"]
        lines += [f"#### {SET_NAMES[key]} ({r['people']} people; AP {r['AP']['student']:.3f} / "
                  f"{r['AP']['thunder']:.3f})", "", "In short: " + findings(r), "",
                  "Per joint, then per group of joints (labelled: joint instances scored):", "",
                  *joint_table({n: j for n, j in r["per_joint"].items() if n not in GROUPS}), "",
                  *joint_table({n: j for n, j in r["per_joint"].items() if n in GROUPS}, "group"), "",
                  f"Per case (small: box under {t['small_box_height_px']:.0f} px high; the counts are the people in "
                  "each case, and a case of a few people has an interval as wide as its gap):", "",
                  *case_table(r["per_case"]), "", swap_line(r["swapped"]), ""]
        if r.get("figure"):
            lines += [f"![the {WORST} people where the student falls furthest below Thunder on {SET_NAMES[key]}: "
                      f"student left, Thunder right, ground truth as white rings; tags T truncated, O occluded, "
                      f"S small, D dark; L/R a left/right swap]({r['figure']})", ""]
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--student", type=Path, default=ROOT / "android_assets/model.tflite")
    parser.add_argument("--shared", type=Path, default=SHARED, help="the shared data and models folder")
    parser.add_argument("--out", type=Path, default=ROOT / "runs/error_cases/error_cases.json",
                        help="the JSON of every number (PARSE's test JSON and, without --write, the figures beside it)")
    parser.add_argument("--write", action="store_true",
                        help="write the section into BENCHMARKS.md and the figures under docs/")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    machine = machine_info()
    data = args.shared / "data/coco-mini-train"
    try:
        adapters = [load_adapter(p, num_threads=1) for p in (args.student, args.shared / "models" / THUNDER)]
        sets = {"coco_mini_val": load_eval_set(data / "annotations/person_keypoints_train2017.json",
                                               data / "train2017", split="val", val_fraction=0.3, split_seed=0),
                "parse_test": load_eval_set(parse_test_json(args.shared, args.out.parent),
                                            args.shared / "data/lsp/parse")}
        images = ImageStore()
        results, all_preds = {}, {}
        for key, eval_set in sets.items():
            results[key], all_preds[key] = run_set(eval_set, adapters, images)
    except (TfposeError, ImportError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    figures = ROOT / "docs" if args.write else args.out.parent
    for key, r in results.items():
        path = figures / f"error_cases_worst_{key}.png"
        r["figure_bytes"] = worst_figure(r, all_preds[key], path)
        r["figure"] = _relative(path)
    report = {"command": "python benchmarks/error_cases.py " + " ".join(shlex.quote(a) for a in
                                                                        (sys.argv[1:] if argv is None else argv)),
              "student": _relative(args.student), "thunder": _relative(args.shared / "models" / THUNDER),
              "runtime": adapters[0].model.runtime_label, "machine": machine, "cpu": cpu_info(), "cases": CASES,
              "seconds": time.perf_counter() - start, "sets": results}
    write_json(args.out, report)
    publish("error_cases", section(report), args.write)
    print(f"numbers: {args.out}")
    return 0


def _relative(path: Path) -> str:
    """``path`` from the repository root: no machine's own folders in the report or BENCHMARKS.md."""
    return os.path.relpath(Path(path).resolve(), ROOT)


if __name__ == "__main__":
    sys.exit(main())
