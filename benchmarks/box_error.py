"""How a real person detector's boxes differ from ground-truth ones, as the pose model's crop sees it (issue 22):
the crop centre's shift as a share of the crop's width and height, and the log ratio of the crop sizes, for every
labelled person the shipped detector finds (IoU >= 0.5, score >= 0.3). Measured on training data only
(coco-mini-train's training split and pelota), never on a dev-val set: it sets ``data.augment.shift``.

    python benchmarks/box_error.py --write
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks._sections import publish  # noqa: E402
from tflite.detector import TFLiteDetector  # noqa: E402
from tfpose.data.coco import load_coco  # noqa: E402
from tfpose.data.images import read_rgb  # noqa: E402
from tfpose.data.transforms import box_to_crop  # noqa: E402
from tfpose.detection import box_iou  # noqa: E402

SHARED = ROOT.parent / "shared" / "data"
INPUT_SIZE = (192, 256)    # the default student's (W, H): its crop's aspect decides which box side counts


def errors(detector: TFLiteDetector, dataset, min_score: float = 0.3) -> np.ndarray:
    """(M, 3): crop centre shift x and y as shares of the crop, log(detected crop size / true crop size)."""
    rows = []
    for image_id in sorted(dataset.images):
        truths = [a["bbox"] for a in dataset.raw["annotations"] if a["image_id"] == image_id
                  and a.get("num_keypoints", 0) > 0 and not a.get("iscrowd", 0)]
        if not truths:
            continue
        found = detector(read_rgb(dataset.image_dir / dataset.images[image_id]["file_name"]), min_score)
        if not len(found):
            continue
        overlap = box_iou(np.array(truths), found.boxes)
        for t, truth in enumerate(truths):
            j = int(overlap[t].argmax())
            if overlap[t, j] < 0.5:
                continue
            true, seen = box_to_crop(truth, INPUT_SIZE, 1.0), box_to_crop(found.boxes[j], INPUT_SIZE, 1.0)
            rows.append([(seen.centre[0] - true.centre[0]) / true.size[0],
                         (seen.centre[1] - true.centre[1]) / true.size[1], np.log(seen.size[0] / true.size[0])])
    return np.array(rows, np.float64).reshape(-1, 3)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--detector", default=str(ROOT / "android_assets" / "detector.tflite"))
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args(argv)
    detector = TFLiteDetector(args.detector)
    coco = load_coco(SHARED / "coco-mini-train" / "annotations" / "person_keypoints_train2017.json",
                     SHARED / "coco-mini-train" / "train2017")
    sets = {"coco-mini-train, training split": coco.split(0.3, 0)[0],
            "pelota": load_coco(SHARED / "pelota" / "annotations" / "person_keypoints.json", SHARED / "pelota" / "images")}
    measured = {name: errors(detector, data) for name, data in sets.items()}
    measured["both"] = np.concatenate(list(measured.values()))
    lines = ["## A detector's box error, as the crop sees it (issue 22)", "",
             f"The shipped detector (`android_assets/detector.tflite`, boxes scoring >= 0.3) against ground-truth "
             "boxes of the labelled people it finds (IoU >= 0.5), on training data only. Shift: the crop centre's "
             "offset as a share of the crop's width (x) and height (y); size: log(detected / true crop side). "
             "`data.augment.shift` draws the first two; `data.augment.scale` (a normal of std scale / 2) already "
             "covers the third.", "",
             "| set | persons | shift x mean / std | shift y mean / std | log size mean / std |", "|---|---|---|---|---|"]
    for name, e in measured.items():
        lines.append(f"| {name} | {len(e)} | {e[:, 0].mean():+.3f} / {e[:, 0].std():.3f} | "
                     f"{e[:, 1].mean():+.3f} / {e[:, 1].std():.3f} | {e[:, 2].mean():+.3f} / {e[:, 2].std():.3f} |")
    publish("box_error", "\n".join(lines), args.write)
    return 0


if __name__ == "__main__":
    sys.exit(main())
