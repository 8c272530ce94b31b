"""`tfpose export` end to end: variants with metadata inside, Android assets, the validator on an in-graph decoding
model, and errors that name the file."""

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest

from tests.conftest import ROOT

DATA = ["data.synthetic.num_train_images=24", "data.synthetic.num_val_images=8", "data.synthetic.image_size=[96,96]",
        "data.synthetic.max_people=2", "data.synthetic.seed=3", "codec.input_size=[64,64]",
        "export.calibration_samples=8", "export.reference_samples=4"]


def _export(tmp_path, root, model, *args):
    cmd = [sys.executable, "-m", "tfpose.cli", "export", "--config", str(ROOT / "configs/quickstart.yaml"),
           "--model", str(model), "--out", str(tmp_path / "run"), *args, f"data.root={root}", *DATA]
    return subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=600,
                          env={**__import__("os").environ, "PYTHONPATH": str(ROOT)})


@pytest.fixture(scope="module")
def student_file(tiny_export, tmp_path_factory):
    path = tmp_path_factory.mktemp("student") / "student.keras"
    tiny_export["model"].save(path)
    return path


@pytest.mark.slow
def test_export_keypoints_variant_writes_metadata_assets_and_validates(tiny_export, student_file, tmp_path):
    from tflite import metadata as tfl_metadata
    from tflite.convert import op_types
    from tflite.validate import validate

    run = _export(tmp_path, tiny_export["root"], student_file, "--quant", "int8", "--decode", "keypoints",
                  "--android-assets", str(tmp_path / "assets"))
    assert run.returncode == 0, run.stderr[-3000:]
    path = tmp_path / "run/student_int8_keypoints.tflite"
    meta = tfl_metadata.read(path)
    assert meta["format"] == "tfpose-keypoints" and meta["codec"]["refine"] == "quarter"
    assert meta["outputs"][0]["shape"] == [1, 17, 2] and meta["outputs"][1]["shape"] == [1, 17]
    assert meta["input"]["dtype"] == "uint8" and meta["quantization"] == "int8" and meta["tfpose_version"]
    body = [o for o in op_types(path.read_bytes()) if o["op"] in ("CONV_2D", "DEPTH_TO_SPACE")]
    assert body and all(o["outputs"] == ["int8"] for o in body)
    assets = tmp_path / "assets"
    assert (assets / "labels.txt").read_text().split() == meta["keypoints"]
    assert json.loads((assets / "metadata.json").read_text())["format"] == "tfpose-keypoints"
    assert "keypoints float32 [1, K, 2]" in (assets / "README.md").read_text()
    assert (assets / "model.tflite").read_bytes() == path.read_bytes()
    root = tiny_export["root"]
    report = validate(path, root / "annotations/person_keypoints_val.json", root / "images/val", runs=0)
    assert report["family"] == "tfpose-keypoints" and 0 <= report["accuracy"]["AP"] <= 1
    # the graph decodes the int8 heatmaps exactly as numpy decodes them; the Keras reference differs by int8 only
    assert report["parity"]["crops"] == 4 and report["parity"]["max_abs_diff"] is None
    assert report["parity"]["joints_within_1_cell"] > 0.5


@pytest.mark.parametrize("args, message", [
    (["--model", "no/such/student.keras"], "no/such/student.keras"),
    (["--android-readme", "missing_readme.md"], "missing_readme.md"),
])
def test_export_errors_name_the_file_and_exit_2(tiny_export, student_file, tmp_path, args, message):
    if args[0] == "--model":
        run = _export(tmp_path, tiny_export["root"], args[1])
    else:
        run = _export(tmp_path, tiny_export["root"], student_file, *args)
    assert run.returncode == 2, run.stderr[-3000:]
    assert message in run.stderr and "Traceback" not in run.stderr


def test_export_name_says_what_the_file_is():
    from tfpose.config import ExportConfig
    from tfpose.export import export_name

    assert export_name(ExportConfig()) == "student_int8.tflite"
    assert export_name(ExportConfig(quant="qat-int8", prune_sparsity=0.5, decode="keypoints")) == \
        "student_qat-int8_sparse50_keypoints.tflite"


def test_keypoint_adapter_rejects_crops_of_the_wrong_size(tiny_export, tmp_path):
    import dataclasses

    from tflite.adapters import KeypointAdapter, load_adapter
    from tfpose.config import ExportConfig
    from tfpose.errors import InputError
    from tfpose.export import export_tflite
    from tfpose.skeleton import COCO17

    crops = tiny_export["crops"]
    path = tmp_path / "k.tflite"
    export_tflite(tiny_export["model"], path, dataclasses.replace(tiny_export["codec"], refine="dark"), COCO17, 1.25,
                  ExportConfig(decode="keypoints"), crops[:8].astype(np.float32), crops[:2], np.ones((2, 17)))
    adapter = load_adapter(path)
    assert isinstance(adapter, KeypointAdapter) and adapter.codec.refine == "quarter"
    kp, scores = adapter.predict(crops[:2])
    assert kp.shape == (2, 17, 2) and scores.shape == (2, 17)
    with pytest.raises(InputError, match="do not fit"):
        adapter.predict(np.zeros((1, 32, 32, 3), np.uint8))


def test_assets_command_writes_the_folder_from_a_pipeline_tflite_and_keeps_the_detector(tiny_export, tmp_path):
    assets = tmp_path / "assets"
    assets.mkdir()
    (assets / "detector.tflite").write_bytes(b"detector")
    (tmp_path / "card.md").write_text("# the card\n")
    cmd = [sys.executable, "-m", "tfpose.cli", "assets", str(tiny_export["path"]), "--out", str(assets),
           "--readme", str(tmp_path / "card.md")]
    run = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=300,
                         env={**__import__("os").environ, "PYTHONPATH": str(ROOT)})
    assert run.returncode == 0, run.stderr[-3000:]
    assert (assets / "model.tflite").read_bytes() == tiny_export["path"].read_bytes()
    assert (assets / "README.md").read_text() == "# the card\n"
    assert (assets / "detector.tflite").read_bytes() == b"detector"
    assert json.loads((assets / "metadata.json").read_text())["keypoints"] == (assets / "labels.txt").read_text().split()
    missing = subprocess.run(cmd[:4] + ["no/such.tflite", "--out", str(tmp_path / "other")], cwd=tmp_path,
                             capture_output=True, text=True, timeout=300,
                             env={**__import__("os").environ, "PYTHONPATH": str(ROOT)})
    assert missing.returncode == 2 and "no/such.tflite" in missing.stderr and "Traceback" not in missing.stderr
    assert not (tmp_path / "other").exists()


def test_the_generated_card_names_the_reference_only_when_the_folder_holds_it(tiny_export, tmp_path):
    from tfpose.export import write_android_assets

    alone = tmp_path / "alone/model.tflite"
    alone.parent.mkdir()
    shutil.copyfile(tiny_export["path"], alone)
    write_android_assets(alone, tmp_path / "without")
    assert not (tmp_path / "without/model.reference.npz").exists()
    assert "model.reference.npz" not in (tmp_path / "without/README.md").read_text()

    reference = tiny_export["path"].with_suffix(".reference.npz")
    assert reference.is_file()
    write_android_assets(tiny_export["path"], tmp_path / "with")
    assert (tmp_path / "with/model.reference.npz").read_bytes() == reference.read_bytes()
    assert "model.reference.npz" in (tmp_path / "with/README.md").read_text()
