"""Whole images (issue 22): the person detector's own accuracy (int8 beside float, 416 and 320 input) and keypoint
AP on detected people by the COCO protocol, detector + each pose model beside MoveNet MultiPose, from the
validator's own reports.

    A=../shared/data/coco-mini-train P=../shared/models/movenet-peers
    tfpose export-detector --onnx ../shared/models/detectors/nanodet-m-416.onnx \\
        --calibration ../shared/data/har-photos/images --out runs/detector            # and -320.onnx --input-size 320
    tfpose-validate runs/detector/detector_416_int8.tflite runs/detector/detector_416_float32.tflite \\
        runs/detector/detector_320_int8.tflite runs/detector/detector_320_float32.tflite \\
        --annotations $A/annotations/person_keypoints_train2017.json --images $A/train2017 --threads 1 --runs 20 \\
        --out runs/val_detector
    tfpose-validate android_assets/model.tflite $P/movenet-lightning_fp32.tflite $P/movenet-thunder_fp32.tflite \\
        $P/movenet-multipose-lightning_fp32.tflite --detector android_assets/detector.tflite \\
        --annotations $A/annotations/person_keypoints_train2017.json --images $A/train2017 --split val \\
        --threads 1 --runs 0 --out runs/val_whole
    tfpose-validate android_assets/model.tflite $P/movenet-lightning_fp32.tflite $P/movenet-thunder_fp32.tflite \
        $P/movenet-multipose-lightning_fp32.tflite --detector android_assets/detector.tflite \
        --annotations ../shared/data/pelota/annotations/person_keypoints.json --images ../shared/data/pelota/images \
        --threads 1 --runs 0 --overlays 0 --out runs/val_whole_pelota
    python benchmarks/whole_image.py runs/val_detector/report.json runs/val_whole/report.json \
        --pelota runs/val_whole_pelota/report.json --write
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._sections import publish  # noqa: E402
from tflite.whole_images import detector_markdown, whole_image_markdown  # noqa: E402


def section(detector_report: dict, whole_report: dict, pelota: dict | None = None) -> str:
    m = whole_report["machine"]
    flags = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").is_file() else ""
    isa = ", ".join(f for f in ("avx512f", "avx512_vnni", "avx_vnni", "avx2") if f" {f}" in flags) or "unknown"
    lines = ["## Whole images: a person detector, then the pose model (issue 22)", "",
             f"CPU: {m['cpu']} ({m['arch']}, instruction set: {isa}; no VNNI unless named), "
             f"{whole_report['runtime']}. Load average {m['load_average_1min']:.1f} at the time (other jobs shared the "
             "2 cores: compare rows, not sessions). Commands: `benchmarks/whole_image.py`'s docstring.", "",
             "### The detector (NanoDet-m, rebuilt in tf_keras from its ONNX weights)", "",
             "All 80 coco-mini-train photos, every person box (small ones included, which is why AP50 is below the "
             "0.80 that `../shared/models/detectors/README.md` reports for boxes of area >= 32^2):", "",
             *detector_markdown(detector_report["detectors"])[2:],
             "The Keras rebuild equals the ONNX graph run by OpenCV's importer to 6e-7 on the scores "
             "(`tests/test_detector.py`). Rebuilding rather than converting with onnx2tf: no converter to pin (its "
             "last Python 3.11 release downloads a calibration file at run time), the model is a registry model "
             "that tfpose's own export, metadata and int8 path take, and the BGR order and normalisation live in "
             "the graph.", "",
             "### coco-mini-train's val split (a dev-val set: no model here trained on it)", "",
             *whole_image_markdown(whole_report["whole_image"])[2:]]
    if pelota is not None:
        lines += ["### pelota (all 71 photos; a training source of the default student, not of the peers: its row "
                  "is a training-set figure)", "", *whole_image_markdown(pelota["whole_image"])[2:]]
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("detector_report", help="report.json of tfpose-validate on the detectors")
    parser.add_argument("whole_report", help="report.json of tfpose-validate --detector")
    parser.add_argument("--pelota", help="report.json of tfpose-validate --detector on pelota")
    parser.add_argument("--write", action="store_true", help="write the section into BENCHMARKS.md")
    args = parser.parse_args(argv)
    reports = [json.loads(Path(p).read_text()) if p else None
               for p in (args.detector_report, args.whole_report, args.pelota)]
    publish("whole_image", section(*reports), args.write)
    return 0


if __name__ == "__main__":
    sys.exit(main())
