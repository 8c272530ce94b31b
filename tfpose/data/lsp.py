"""Leeds Sports Pose (LSP), LSP Extended (LSPET) and Ramanan's PARSE as COCO-17 person records (numpy, OpenCV, scipy).

Each reader returns a ``CocoDataset`` whose ``raw`` is a valid COCO ``person_keypoints`` dict, so pycocotools, the
evaluation code and the TF-free validator read it unchanged (``tfpose.artifacts.write_json(path, dataset.raw)``, or
``python -m tfpose.data.lsp --format parse --split test --out parse_test.json``).

The files (all three use LSP's 14-joint order, ``LSP_JOINTS``):

=========  ==========================  ==================  ==============================================
format     annotations                 ``joints`` axes     flag
=========  ==========================  ==================  ==============================================
lsp        ``joints.mat:joints``       (3, 14, N) x, y, f  1 = occluded (7 % of joints); every joint labelled
lspet      ``joints.mat:joints``       (14, 3, N) x, y, f  1 = visible (88 %); a 0 may lie outside the image
parse      ``labels.mat:ptsAll``       (14, 2, N) x, y     none; images im0001..im0305.jpg beside labels.mat
=========  ==========================  ==================  ==============================================

Mapping: the 12 limb joints go to their COCO-17 slots (``LSP_TO_COCO``); nose, eyes and ears are unlabelled (v=0);
neck and head top have no COCO slot but still bound the person. Visibility: lsp occluded -> 1, else 2; lspet flag 1
-> 2, flag 0 -> 1 inside the image, else 0; parse -> 2. Any point outside the image is unlabelled (v=0, x=y=0).
In the files here every LSPET flag-0 joint is a placeholder outside the image (one coordinate 0, the other <= 0), so
LSPET's limb joints come out 88 % v=2 and 12 % v=0; LSP's 8 % v=1 (7 % of all 14 joints are flagged occluded).
Coordinates are kept as the files give them (the sets state no pixel origin; the half-pixel question is far below
their label noise).

Person box: the extent of the in-image joints of all 14, enlarged by ``BOX_MARGIN`` of its width (height) on each side
and clipped to the image. ``area`` is that box's w x h: COCO's ``area`` is the segment area (about 0.43-0.55 of the
box on coco-mini-train and pelota), which these sets do not have, so OKS here is a little more lenient than on COCO.

PARSE left/right, measured (``benchmarks/lsp_left_right.py``): MoveNet Thunder on a square crop around each
person (side 1.25 x max(w, h) of the box), mean pixel error of the 12 mapped joints against the labels read in LSP
order as-is, and with left and right swapped (% = persons where that reading is the closer one):

=========  =======  ===========================  ===========================
set        persons  LSP order as-is              left/right swapped
=========  =======  ===========================  ===========================
lsp        200      6.5 px (94 %)                28.2 px (6 %)
lspet      200      13.6 px (85 %)               36.3 px (15 %)
parse      305      11.7 px (81 %)               31.3 px (19 %)
=========  =======  ===========================  ===========================

(LSP/LSPET: a seeded sample of 200, ``--seed 0``.) PARSE agrees with the teacher in LSP's order about as clearly as the
two controls do, so its ``segmentTypes`` (``lank, lkne, ...``) name the joints from the viewer's side: its first joint
is the person's right ankle, as in LSP. ``PARSE_SWAP_LEFT_RIGHT = False`` is the default; ``swap_left_right=True`` reads
them the other way.
Shape legend: N persons; joints (N, 14, 2) image pixels; keypoints (17, 2) image pixels; visibility (17,) in {0, 1, 2}.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Literal

import numpy as np

from tfpose.data.coco import CocoDataset, Person
from tfpose.data.formats import read_dataset, register_format
from tfpose.data.images import image_size
from tfpose.data.matfile import load_mat
from tfpose.errors import InputError, TfposeError
from tfpose.skeleton import COCO17

LSP_JOINTS = (
    "right_ankle", "right_knee", "right_hip", "left_hip", "left_knee", "left_ankle", "right_wrist", "right_elbow",
    "right_shoulder", "left_shoulder", "left_elbow", "left_wrist", "neck", "head_top",
)
# LSP index -> COCO-17 index for the 12 limb joints (neck and head top have no COCO slot)
LSP_TO_COCO = np.array([COCO17.keypoints.index(n) for n in LSP_JOINTS[:12]], np.int64)
# the same 14 joints with left and right exchanged (neck and head top stay)
LSP_SWAP = np.array([5, 4, 3, 2, 1, 0, 11, 10, 9, 8, 7, 6, 12, 13], np.int64)
# Per side, as a fraction of the joints' extent. Measured medians of (COCO box edge - labelled-keypoint extent) /
# extent on persons with 15+ keypoints incl. both ankles: coco-mini-train 0.13/0.15/0.12/0.11 (left/right/top/bottom,
# 13 persons), pelota 0.10/0.11/0.09/0.11 (90). LSP's head top is above COCO's eyes, so its top needs less; 0.10 on
# every side is the round figure that keeps feet and hands inside without doubling the box.
BOX_MARGIN = 0.10
PARSE_SWAP_LEFT_RIGHT = False   # measured against MoveNet Thunder: see the module docstring
PARSE_TRAIN = 100               # Ramanan's README: the first 100 images trained, the last 205 tested
COCO_CATEGORY = {
    "id": 1, "name": "person", "supercategory": "person", "keypoints": list(COCO17.keypoints),
    "skeleton": [[a + 1, b + 1] for a, b in COCO17.edges],   # COCO's skeleton is 1-based
}

Kind = Literal["lsp", "lspet", "parse"]
Split = Literal["all", "train", "test"]


def read_joints(path: Path, kind: Kind) -> tuple[np.ndarray, np.ndarray | None]:
    """joints (N, 14, 2) and flags (N, 14) in {0, 1} (None for PARSE) from one of the three label files."""
    variable = "ptsAll" if kind == "parse" else "joints"
    value = load_mat(path, variable)
    if kind == "parse":
        expected, ok = "(14, 2, N)", value.ndim == 3 and value.shape[:2] == (14, 2)
        xyf = value.transpose(2, 0, 1) if ok else None
    elif value.ndim == 3 and value.shape[:2] == (3, 14):        # LSP's own order
        expected, ok, xyf = "", True, value.transpose(2, 1, 0)
    elif value.ndim == 3 and value.shape[:2] == (14, 3):        # LSPET's
        expected, ok, xyf = "", True, value.transpose(2, 0, 1)
    else:
        expected, ok = "(3, 14, N) or (14, 3, N)", False
    if not ok or xyf.shape[0] == 0:
        raise InputError(f"expected shape {expected or '(3, 14, N) or (14, 3, N)'} with N >= 1, got {value.shape}",
                         path=path, field=variable)
    bad = np.argwhere(~np.isfinite(xyf))
    if bad.size:
        n, j, c = bad[0]
        raise InputError(f"{len(bad)} non-finite numbers, the first at person {n + 1}, joint {LSP_JOINTS[j]}, "
                         f"{'xyf'[c]}", path=path, field=variable)
    if kind == "parse":
        return np.ascontiguousarray(xyf), None
    flags = xyf[..., 2]
    if not np.isin(flags, (0, 1)).all():
        n, j = np.argwhere(~np.isin(flags, (0, 1)))[0]
        raise InputError(f"flags must be 0 or 1, got {flags[n, j]:g} at person {n + 1}, joint {LSP_JOINTS[j]}",
                         path=path, field=variable)
    return np.ascontiguousarray(xyf[..., :2]), flags.astype(np.int64)


def lsp_visibility(kind: Kind, flags: np.ndarray | None, inside: np.ndarray) -> np.ndarray:
    """(N, 14) COCO v flags from the file's flags and whether each point lies in its image (``inside`` (N, 14))."""
    if kind == "lsp":
        v = np.where(flags == 1, 1, 2)
    elif kind == "lspet":
        v = np.where(flags == 1, 2, 1)
    else:
        v = np.full(inside.shape, 2)
    return np.where(inside, v, 0).astype(np.int64)


def person_box(joints: np.ndarray, inside: np.ndarray, width: int, height: int) -> tuple[float, float, float, float]:
    """[x, y, w, h] around the in-image joints ((14, 2), (14,)) with ``BOX_MARGIN`` per side, clipped to the image;
    (0, 0, 0, 0) when no joint is inside."""
    if not inside.any():
        return 0.0, 0.0, 0.0, 0.0
    lo, hi = joints[inside].min(0), joints[inside].max(0)
    pad = BOX_MARGIN * (hi - lo)
    x0, y0 = np.maximum(lo - pad, 0.0)
    x1, y1 = np.minimum(hi + pad, (width, height))
    return float(x0), float(y0), float(x1 - x0), float(y1 - y0)


def load_lsp_family(root: str | Path, kind: Kind, split: Split = "all", annotations: str | None = None,
                    images: str | None = None, swap_left_right: bool | None = None) -> CocoDataset:
    """One of the three sets as COCO-17 person records; ``root`` is the folder holding the label file.

    split: PARSE "train" (first 100) / "test" (last 205) / "all"; LSP and LSPET are training data: "all" (or "train").
    swap_left_right: read the file's left joints as the person's right; None = PARSE_SWAP_LEFT_RIGHT for PARSE,
    False for LSP and LSPET.
    """
    root = Path(root)
    annotation_file = root / (annotations or ("labels.mat" if kind == "parse" else "joints.mat"))
    image_dir = root / (images if images is not None else ("." if kind == "parse" else "images"))
    splits = ("all", "train", "test") if kind == "parse" else ("all", "train")
    if split not in splits:
        raise InputError(f"unknown split '{split}' for {kind}; choose from {', '.join(splits)}", field="split")
    joints, flags = read_joints(annotation_file, kind)
    if not image_dir.is_dir():
        raise InputError("image folder not found", path=image_dir)
    if swap_left_right if swap_left_right is not None else (kind == "parse" and PARSE_SWAP_LEFT_RIGHT):
        joints = joints[:, LSP_SWAP]
        flags = None if flags is None else flags[:, LSP_SWAP]

    n = len(joints)
    index = np.arange(n)
    if kind == "parse" and split != "all":
        index = index[:PARSE_TRAIN] if split == "train" else index[PARSE_TRAIN:]
    digits = 5 if kind == "lspet" else 4
    names = [f"im{i + 1:0{digits}d}.jpg" for i in index]
    sizes = np.array([image_size(image_dir / name) for name in names], np.float64).reshape(-1, 2)   # (n, 2) w, h
    joints, flags = joints[index], None if flags is None else flags[index]
    inside = ((joints >= 0) & (joints < sizes[:, None, :])).all(-1)                                  # (n, 14)
    if kind == "lspet":
        # LSPET writes its unlabelled joints as a placeholder with one coordinate exactly 0 and the other <= 0
        # (all 11,779 flag-0 joints of the 7,000 here); (0, 0) would otherwise pass as a point in the image
        inside &= ~((flags == 0) & (joints == 0).any(-1))
    visibility = lsp_visibility(kind, flags, inside)

    raw_images, raw_annotations, records, persons = [], [], {}, []
    for row, (i, name, (w, h)) in enumerate(zip(index, names, sizes)):
        image_id = int(i) + 1
        record = {"id": image_id, "file_name": name, "width": int(w), "height": int(h)}
        raw_images.append(record)
        records[image_id] = record
        box = tuple(round(v, 2) for v in person_box(joints[row], inside[row], int(w), int(h)))
        if box[2] <= 1 or box[3] <= 1:
            continue   # no joint (or one point) in the image: nothing to crop, and load_coco drops such boxes too
        kp = np.zeros((COCO17.num_keypoints, 3), np.float64)
        kp[LSP_TO_COCO, :2] = np.round(joints[row, :12], 2)
        kp[LSP_TO_COCO, 2] = visibility[row, :12]
        kp[kp[:, 2] == 0, :2] = 0.0
        area = round(box[2] * box[3], 2)
        raw_annotations.append({
            "id": image_id, "image_id": image_id, "category_id": 1, "iscrowd": 0, "bbox": list(box), "area": area,
            "keypoints": [float(v) if c < 2 else int(v) for row_ in kp for c, v in enumerate(row_)],
            "num_keypoints": int((kp[:, 2] > 0).sum()),
        })
        persons.append(Person(image_id=image_id, ann_id=image_id, image_path=image_dir / name, box=box,
                              keypoints=kp[:, :2].astype(np.float32), visibility=kp[:, 2].astype(np.int64),
                              area=area))
    raw = {
        "info": {"description": f"{kind} ({split}) as COCO person keypoints, written by tfpose.data.lsp",
                 "source": str(annotation_file.name)},
        "images": raw_images, "annotations": raw_annotations, "categories": [dict(COCO_CATEGORY)],
    }
    return CocoDataset(annotation_file, image_dir, records, persons, raw)


def _check_keypoints(num_keypoints: int, kind: str) -> None:
    if num_keypoints != COCO17.num_keypoints:
        raise InputError(f"{kind} maps onto COCO-17: num_keypoints must be 17, got {num_keypoints}",
                         field="num_keypoints")


@register_format("lsp", splits=("all", "train"), summary="Leeds Sports Pose joints.mat (3, 14, N), flag = occluded")
def read_lsp(root: Path, annotations: str | None = None, images: str | None = None, split: str = "all",
             num_keypoints: int = 17, swap_left_right: bool = False) -> CocoDataset:
    _check_keypoints(num_keypoints, "lsp")
    return load_lsp_family(root, "lsp", split, annotations, images, swap_left_right)


@register_format("lspet", splits=("all", "train"), summary="LSP Extended joints.mat (14, 3, N), flag = visible")
def read_lspet(root: Path, annotations: str | None = None, images: str | None = None, split: str = "all",
               num_keypoints: int = 17, swap_left_right: bool = False) -> CocoDataset:
    _check_keypoints(num_keypoints, "lspet")
    return load_lsp_family(root, "lspet", split, annotations, images, swap_left_right)


@register_format("parse", splits=("all", "train", "test"),
                 summary="Ramanan's PARSE labels.mat ptsAll (14, 2, N); train = first 100, test = last 205")
def read_parse(root: Path, annotations: str | None = None, images: str | None = None, split: str = "all",
               num_keypoints: int = 17, swap_left_right: bool | None = None) -> CocoDataset:
    _check_keypoints(num_keypoints, "parse")
    return load_lsp_family(root, "parse", split, annotations, images, swap_left_right)


SHARED_FOLDERS = {"lsp": "lsp_dataset", "lspet": "lspet_dataset", "parse": "parse"}


def main(argv=None) -> int:
    """Write one of the sets as a COCO keypoints JSON, e.g. PARSE's test half for the device validator."""
    from tfpose.artifacts import write_json

    shared = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "lsp"
    parser = argparse.ArgumentParser(prog="python -m tfpose.data.lsp", description=main.__doc__)
    parser.add_argument("--format", choices=sorted(SHARED_FOLDERS), default="parse")
    parser.add_argument("--split", default="all", help="parse: all, train (first 100) or test (last 205)")
    parser.add_argument("--root", type=Path, help="the folder holding the .mat file (default: ../shared/data/lsp/...)")
    parser.add_argument("--out", type=Path, required=True, help="the COCO JSON to write")
    args = parser.parse_args(argv)
    root = args.root or shared / SHARED_FOLDERS[args.format]
    try:
        dataset = read_dataset(args.format, root, split=args.split)
    except TfposeError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    write_json(args.out, dataset.raw)
    print(f"wrote {args.out}: {len(dataset.raw['images'])} images, {len(dataset.raw['annotations'])} persons")
    print(f"images: {dataset.image_dir.resolve()} (file_name is relative to it)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
