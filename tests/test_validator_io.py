"""The validator reads float32, int8 and uint8 model inputs and outputs alike: the interpreter shim quantizes
raw pixels and dequantizes outputs with each tensor's own scale and zero point."""

import json

import numpy as np
import pytest

from tflite.runtime import TFLiteModel
from tflite.validate import main

VARIANTS = {   # name: (quantization, input type, output type)
    "float32": ("float32", "float32", "float32"),
    "int8_in_uint8_out": ("int8", "int8", "uint8"),
}


@pytest.fixture(scope="module", params=list(VARIANTS))
def variant(request, tiny_export, tmp_path_factory):
    from tfpose.config import ExportConfig
    from tfpose.export import export_tflite
    from tfpose.skeleton import COCO17

    quant, input_type, output_type = VARIANTS[request.param]
    crops = tiny_export["crops"]
    path = tmp_path_factory.mktemp(request.param) / f"tiny_{request.param}.tflite"
    cfg = ExportConfig(quant=quant, input_type=input_type, output_type=output_type, calibration_samples=16,
                       reference_samples=8)
    export_tflite(tiny_export["model"], path, tiny_export["codec"], COCO17, 1.25, cfg, crops[:16].astype(np.float32),
                  crops[:8], np.ones((8, 17), np.float32))
    return request.param, path


def test_every_io_type_agrees_with_keras(variant, tiny_export):
    name, path = variant
    model = TFLiteModel(path)
    _, input_type, output_type = VARIANTS[name]
    assert (model.input.dtype.name, model.output.dtype.name) == (input_type, output_type)
    crops = tiny_export["crops"][:8]
    keras_maps = tiny_export["model"].predict(crops.astype(np.float32), verbose=0)
    diff = np.abs(model(crops) - keras_maps)
    if name == "float32":
        assert diff.max() < 1e-4
    else:
        assert diff.mean() < 0.05 * np.abs(keras_maps).max()


def test_validator_reports_every_io_type(variant, tiny_export, tmp_path):
    name, path = variant
    root = tiny_export["root"]
    assert main([str(path), "--annotations", str(root / "annotations/person_keypoints_val.json"), "--images",
                 str(root / "images/val"), "--threads", "1", "--runs", "2", "--warmup", "0", "--in-process",
                 "--out", str(tmp_path)]) == 0
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["input"]["dtype"] == VARIANTS[name][1] and report["output"]["dtype"] == VARIANTS[name][2]
    assert report["parity"]["joints_within_1_cell"] >= (1.0 if name == "float32" else 0.8)
    assert report["accuracy"]["persons"] > 0 and report["latency"][0]["median_ms"] > 0
