"""Is PARSE's left the person's left? Measured against MoveNet Thunder, with LSP and LSPET as controls.

Each person is read in LSP order as-is (``swap_left_right=False``); Thunder (../shared/models/movenet-thunder-teacher)
sees a 256 x 256 square crop around the reader's box (box centre, side 1.25 x max(w, h)), and its 12 limb joints are
compared, in image pixels, with the labels as-is and with left and right exchanged. The reading with the smaller
error is the one the teacher (trained on COCO, person-centric left/right) agrees with.

    python benchmarks/lsp_left_right.py                  # LSP and LSPET: 200 persons each (seeded), PARSE: all 305
    python benchmarks/lsp_left_right.py --sample 0       # every person of every set
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))   # run from a checkout without installing

from tfpose.data.coco import ImageStore  # noqa: E402
from tfpose.data.readers import read_dataset  # noqa: E402
from tfpose.data.lsp import LSP_TO_COCO, SHARED_FOLDERS  # noqa: E402
from tfpose.data.transforms import apply_matrix, box_to_crop, crop_matrix, invert_matrix, warp_image  # noqa: E402
from tfpose.skeleton import COCO17  # noqa: E402

SHARED = ROOT.parent / "shared"
INPUT = (256, 256)
PADDING = 1.25


def thunder_keypoints(fn, crops: np.ndarray, batch_size: int = 32) -> np.ndarray:
    """(N, 17, 2) x, y in crop pixels (pixel-centre convention of ``crop_matrix``) from Thunder's (y, x) in [0, 1]."""
    import tensorflow as tf

    out = []
    for i in range(0, len(crops), batch_size):
        kp = np.asarray(fn(images=tf.constant(crops[i:i + batch_size], tf.float32))["keypoints"])
        out.append(np.stack([kp[..., 1] * INPUT[0], kp[..., 0] * INPUT[1]], -1) - 0.5)
    return np.concatenate(out)


def measure(fn, fmt: str, root: Path, sample: int, seed: int) -> dict:
    persons = read_dataset(fmt, root, swap_left_right=False).labelled()
    if sample and len(persons) > sample:
        persons = [persons[i] for i in sorted(np.random.default_rng(seed).choice(len(persons), sample, replace=False))]
    images = ImageStore(cache=False)
    matrices = [crop_matrix(box_to_crop(p.box, INPUT, PADDING), INPUT) for p in persons]
    crops = np.stack([warp_image(images(p.image_path), m, INPUT) for p, m in zip(persons, matrices)])
    start = time.perf_counter()
    pred_crop = thunder_keypoints(fn, crops)
    seconds = time.perf_counter() - start
    pred = np.stack([apply_matrix(k, invert_matrix(m)) for k, m in zip(pred_crop, matrices)])     # (N, 17, 2) image
    truth = np.stack([p.keypoints for p in persons]).astype(np.float64)
    vis = np.stack([p.visibility for p in persons]) > 0
    joints = np.zeros(COCO17.num_keypoints, bool)
    joints[LSP_TO_COCO] = True
    flip = COCO17.flip_index

    def errors(gt: np.ndarray, valid: np.ndarray) -> tuple[float, np.ndarray]:
        d = np.linalg.norm(pred - gt, axis=-1)
        valid = valid & joints
        per_person = np.where(valid, d, 0).sum(1) / np.maximum(valid.sum(1), 1)
        return float(d[valid].mean()), per_person

    as_is, p_as_is = errors(truth, vis)
    swapped, p_swapped = errors(truth[:, flip], vis[:, flip])
    return {"set": fmt, "persons": len(persons), "as_is": as_is, "swapped": swapped,
            "as_is_wins": float((p_as_is < p_swapped).mean()), "ms_per_crop": 1000 * seconds / len(persons)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shared", type=Path, default=SHARED, help="the shared data and models folder")
    parser.add_argument("--sample", type=int, default=200, help="persons per set (0 = all); PARSE has 305")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--sets", nargs="+", default=["lsp", "lspet", "parse"], choices=sorted(SHARED_FOLDERS))
    args = parser.parse_args(argv)
    import tensorflow as tf

    fn = tf.saved_model.load(str(args.shared / "models/movenet-thunder-teacher")).signatures["serving_default"]
    rows = [measure(fn, s, args.shared / "data/lsp" / SHARED_FOLDERS[s], 0 if s == "parse" else args.sample,
                    args.seed) for s in args.sets]
    print("Mean pixel error of MoveNet Thunder's 12 limb joints against the labels, read in LSP order as-is or with")
    print("left and right swapped (% = persons where that reading is the closer one).\n")
    print("| set | persons | as-is | swapped | ms/crop |")
    print("|---|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['set']} | {r['persons']} | {r['as_is']:.1f} px ({100 * r['as_is_wins']:.0f} %) | "
              f"{r['swapped']:.1f} px ({100 * (1 - r['as_is_wins']):.0f} %) | {r['ms_per_crop']:.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
