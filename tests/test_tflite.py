"""Conversion, metadata and the on-device validator - the validator with TensorFlow blocked."""

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from tflite import metadata as tfl_metadata
from tflite.convert import op_types
from tflite.runtime import TFLiteModel
from tfpose.errors import InputError
from tests.conftest import ROOT


def _flatbuffer(path):
    data = path.read_bytes()
    return data


def test_int8_export_has_only_int8_builtin_kernels(tiny_export):
    ops = op_types(_flatbuffer(tiny_export["path"]))
    assert ops, "no operators found"
    names = {o["op"] for o in ops}
    assert not any(n.startswith("Flex") or n == "CUSTOM" for n in names), names
    floats = [o for o in ops if "float32" in o["inputs"] + o["outputs"]]
    assert floats == [], f"float islands: {floats}"
    model = TFLiteModel(tiny_export["path"])
    assert model.input.dtype == np.uint8 and model.output.dtype == np.int8


def test_metadata_travels_inside_the_model(tiny_export):
    meta = tfl_metadata.read(tiny_export["path"])
    assert meta["codec"]["input_size"] == [64, 64] and meta["codec"]["heatmap_size"] == [16, 16]
    assert meta["keypoints"][0] == "nose" and len(meta["keypoints"]) == 17
    assert meta["input"]["dtype"] == "uint8" and meta["quantization"] == "int8"


def test_the_device_decodes_with_the_codec_the_metadata_carries(tiny_export, tmp_path):
    """peak_blur travels in the metadata: the adapter's keypoints are the exporting codec's, not the raw argmax's."""
    import dataclasses

    from tflite.adapters import load_adapter
    from tfpose.config import ExportConfig
    from tfpose.export import export_tflite
    from tfpose.skeleton import COCO17

    codec = dataclasses.replace(tiny_export["codec"], peak_blur=2.0)
    crops = tiny_export["crops"]
    path = tmp_path / "matched.tflite"
    export_tflite(tiny_export["model"], path, codec, COCO17, 1.25, ExportConfig(calibration_samples=16),
                  crops[:16].astype(np.float32), crops[:2], np.ones((2, 17)))
    adapter = load_adapter(path)
    assert adapter.codec == codec
    heatmaps = TFLiteModel(path)(crops[:8])
    keypoints, _ = adapter.predict(crops[:8])
    np.testing.assert_allclose(keypoints, codec.decode(heatmaps)[0])
    raw, _ = dataclasses.replace(codec, peak_blur=0.0).decode(heatmaps)
    assert (raw != keypoints).any(), "the filter must move some peak, or this test cannot see it"


def test_int8_agrees_with_keras(tiny_export):
    tfl = TFLiteModel(tiny_export["path"])
    crops = tiny_export["crops"][:8]
    keras_maps = tiny_export["model"].predict(crops.astype(np.float32), verbose=0)
    tfl_maps = tfl(crops)
    scale = np.abs(keras_maps).max()
    assert np.abs(tfl_maps - keras_maps).mean() < 0.05 * scale


def test_validator_runs_with_tensorflow_blocked(tiny_export, tmp_path):
    root = tiny_export["root"]
    script = textwrap.dedent(f"""
        import sys
        class Block:
            def find_spec(self, name, path=None, target=None):
                if name.split('.')[0] in ('tensorflow', 'tf_keras', 'keras', 'tensorflow_model_optimization'):
                    raise ImportError('blocked: ' + name)
        sys.meta_path.insert(0, Block())
        from tflite.validate import main
        code = main([{str(tiny_export['path'])!r}, '--annotations', {str(root / 'annotations/person_keypoints_val.json')!r},
                     '--images', {str(root / 'images/val')!r}, '--out', {str(tmp_path / 'report')!r},
                     '--threads', '1', '2', '--runs', '5', '--warmup', '1'])
        assert not any(m.startswith('tensorflow') for m in sys.modules), 'tensorflow was imported'
        sys.exit(code)
    """)
    run = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    report = json.loads((tmp_path / "report/report.json").read_text())
    assert 0 <= report["accuracy"]["AP"] <= 1 and report["accuracy"]["persons"] > 0
    assert report["parity"]["crops"] == 8 and report["parity"]["joints_within_1_cell"] > 0.8
    assert [t["threads"] for t in report["latency"]] == [1, 2] and report["latency"][0]["median_ms"] > 0
    assert report["runtime"].startswith("ai_edge_litert")
    assert (tmp_path / "report/report.md").read_text().startswith("# Validation")
    assert (tmp_path / "report/best.png").stat().st_size > 0


def test_validator_rejects_bad_model_files(tmp_path, tiny_export):
    from tflite.validate import main

    not_tflite = tmp_path / "notes.tflite"
    not_tflite.write_text("hello")
    truncated = tmp_path / "truncated.tflite"
    truncated.write_bytes(tiny_export["path"].read_bytes()[:2000])
    for path in (not_tflite, truncated, tmp_path / "missing.tflite"):
        assert main([str(path), "--runs", "1"]) == 2
    with pytest.raises(InputError, match="truncated.tflite"):
        TFLiteModel(truncated)


def test_crops_of_the_wrong_size_are_refused(tiny_export):
    model = TFLiteModel(tiny_export["path"])
    with pytest.raises(InputError, match="do not fit the model input"):
        model(np.zeros((1, 32, 32, 3), np.uint8))
