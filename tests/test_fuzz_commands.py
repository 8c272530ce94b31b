"""No traceback on bad input, anywhere (issue 25): every command ends in exit 0, or in an ``error:`` line and exit 2.

First the defects one by one: ground-truth fields the scorer read unchecked, model names and parameters in a config,
JSON that ``load_json`` let through, an artifact that cannot be written. Then seeded mutations of annotation files,
detection files, configs, images and model files run through ``tfpose-validate``, ``tfpose predict`` and
``tfpose export`` in this process (their ``main``); counts per command are printed (``pytest -s``) and recorded as the
junit property ``fuzz``.
"""

from __future__ import annotations

import contextlib
import copy
import errno
import io
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml

from tests.conftest import TINY_INPUT
from tests.test_fuzz_readers import ODD_VALUES, _mutate_once, _mutated_bytes, _mutated_json, _pick
from tfpose.errors import InputError, TfposeError


def _run(main, argv) -> tuple[int, str]:
    """``main(argv)``'s exit status and what it wrote to stderr; an exception escapes as it would from the command."""
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            rc = main([str(a) for a in argv])
        except SystemExit as e:    # argparse's usage errors
            rc = e.code
    return rc, err.getvalue()


def _validate_main():
    from tflite.validate import main

    return main


def _tfpose_main():
    from tfpose.cli import main

    return main


# -- shared small artifacts ----------------------------------------------------------------------------------------
def _config(root: Path) -> dict:
    """An export config on the synthetic set; a synthetic fallback stays small should a mutation select it."""
    return {"data": {"source": "coco", "root": str(root), "synthetic": {"num_train_images": 4, "num_val_images": 2,
                                                                         "image_size": [64, 64]}},
            "codec": {"input_size": list(TINY_INPUT)},
            "teacher": {"source": "none", "model": {"name": "hourglass", "params": {"stacks": 1, "channels": 16}}},
            "distill": {"student": {"name": "peleenet_duc", "params": {"growth": 16}}},
            "export": {"quant": "float32", "calibration_samples": 4, "reference_samples": 4}}


@pytest.fixture(scope="module")
def work(synthetic_root, tmp_path_factory):
    """A tiny student (.keras), its float32 export through ``tfpose export``, a 3-image COCO file and its images."""
    from tfpose._keras import keras

    folder = tmp_path_factory.mktemp("commands")
    keras.utils.set_random_seed(0)
    inputs = keras.Input((TINY_INPUT[1], TINY_INPUT[0], 3))
    model = keras.Model(inputs, keras.layers.Conv2D(17, 4, strides=4)(keras.layers.Rescaling(1 / 255)(inputs)))
    model.save(folder / "student.keras")
    config = folder / "export.yaml"
    config.write_text(yaml.safe_dump(_config(synthetic_root)))
    rc, err = _run(_tfpose_main(), ["export", "--config", config, "--model", folder / "student.keras",
                                    "--out", folder / "export"])
    assert rc == 0, err
    full = json.loads((synthetic_root / "annotations/person_keypoints_val.json").read_text())
    images = full["images"][:3]
    keep = {im["id"] for im in images}
    coco = {**full, "images": images, "annotations": [a for a in full["annotations"] if a["image_id"] in keep]}
    frames = folder / "frames"
    frames.mkdir()
    for im in images:
        shutil.copyfile(synthetic_root / "images/val" / im["file_name"], frames / im["file_name"])
    return {"folder": folder, "config": config, "keras": folder / "student.keras", "coco": coco, "frames": frames,
            "images": synthetic_root / "images/val", "tflite": folder / "export/student_float32.tflite"}


@pytest.fixture
def quick_ap_interval(monkeypatch):
    """The validator's AP interval from 5 image resamples instead of 200: the same code, a fortieth of the time."""
    import tfpose.evaluation as evaluation

    real = evaluation._bootstrap_ap
    monkeypatch.setattr(evaluation, "_bootstrap_ap",
                        lambda dataset, results, skeleton, seed, samples=200: real(dataset, results, skeleton, seed, 5))


# -- the scorer reads no field the reader lets a file leave out ----------------------------------------------------
def _truth_and_results():
    kp = np.array([[30 + 2 * j, 20 + 3 * j, 2] for j in range(17)], float)
    truth = {"images": [{"id": 1}, {"id": 2}],
             "annotations": [{"id": 7, "image_id": 1, "bbox": [20, 10, 50, 80], "area": 4000.0,
                              "keypoints": kp.ravel().tolist(), "num_keypoints": 17},
                             {"id": 8, "image_id": 2, "bbox": [5, 5, 40, 60], "area": 2400.0,
                              "keypoints": [0] * 51, "num_keypoints": 0}]}
    noisy = kp.copy()
    noisy[:, :2] += np.random.default_rng(0).normal(0, 2, (17, 2))
    results = [{"image_id": 1, "keypoints": noisy.ravel().tolist(), "score": 0.9},
               {"image_id": 2, "keypoints": (noisy + [4, 4, 0]).ravel().tolist(), "score": 0.8}]
    return truth, results


@pytest.mark.parametrize("dropped", [("id",), ("area",), ("keypoints",), ("id", "area", "keypoints")])
def test_the_scorer_does_without_the_fields_a_reader_lets_a_file_leave_out(dropped):
    from tfpose.metrics import coco_keypoint_eval
    from tfpose.skeleton import COCO17

    truth, results = _truth_and_results()
    whole = coco_keypoint_eval(truth, results, COCO17.oks_sigmas)
    assert 0 < whole["AP"] < 1
    # area: the box's w x h, as pycocotools' loadRes takes it; keypoints: unlabelled; id: never read
    for ann in truth["annotations"]:
        ann["area"] = ann["bbox"][2] * ann["bbox"][3]
    thinned = copy.deepcopy(truth)
    for ann in thinned["annotations"]:
        for key in dropped:
            if key != "keypoints" or not ann["num_keypoints"]:
                del ann[key]
    assert coco_keypoint_eval(thinned, results, COCO17.oks_sigmas) == coco_keypoint_eval(truth, results,
                                                                                          COCO17.oks_sigmas)


def test_the_validator_scores_annotations_without_id_and_area(work, tmp_path, quick_ap_interval):
    coco = copy.deepcopy(work["coco"])
    full, thinned = tmp_path / "full.json", tmp_path / "thinned.json"
    for ann in coco["annotations"]:
        ann["area"] = ann["bbox"][2] * ann["bbox"][3]
    full.write_text(json.dumps(coco))
    for ann in coco["annotations"]:
        del ann["id"], ann["area"]
    thinned.write_text(json.dumps(coco))
    reports = []
    for path in (full, thinned):
        rc, err = _run(_validate_main(), [work["tflite"], "--annotations", path, "--images", work["images"],
                                          "--runs", "0", "--in-process", "--out", tmp_path / path.stem])
        assert rc == 0, err
        reports.append(json.loads((tmp_path / path.stem / "report.json").read_text())["accuracy"])
    assert reports[0] == reports[1]


# -- model names and parameters are config fields -------------------------------------------------------------------
@pytest.mark.parametrize("override, field, says", [
    ("distill.student.name=peleenet_dcu", "distill.student.name", "did you mean 'peleenet_duc'?"),
    ("distill.student.params={growht: 16}", "distill.student.params.growht", "did you mean 'growth'?"),
    ("teacher.model.params={stack: 2}", "teacher.model.params.stack", "It takes: stacks, channels"),
    ("teacher.model={name: peleenet_duc, params: {}}", "teacher.model.name", "models that do: hourglass"),
    ("teacher.model.params={intermediate: false}", "teacher.model.params.intermediate", "leave it out"),
])
def test_an_unknown_model_or_parameter_is_a_config_error_naming_the_field(override, field, says):
    from tfpose.config import load_config

    with pytest.raises(InputError) as e:
        load_config(None, ["teacher.source=train", "teacher.model.name=hourglass", override])
    assert e.value.field == field and says in str(e.value), str(e.value)
    if field.endswith(".name"):
        assert "Registered: " in str(e.value) or "models that do: " in str(e.value)


def test_export_refuses_a_config_with_an_unknown_model_name(work, tmp_path):
    rc, err = _run(_tfpose_main(), ["export", "--config", work["config"], "--model", work["keras"],
                                    "--out", tmp_path / "out", "distill.student.name=mobilenet_v2"])
    assert rc == 2 and "field 'distill.student.name'" in err and "did you mean 'mobilenetv2'?" in err, err
    assert not (tmp_path / "out").exists()


# -- load_json: every decode failure is an InputError --------------------------------------------------------------
@pytest.mark.parametrize("text, says", [
    ("[" * 100_000 + "]" * 100_000, "RecursionError"),
    ("[" + "9" * 5000 + "]", "ValueError"),
    ('{"a": 1', "JSONDecodeError"),
    (b'{"a": "\xff"}', "UnicodeDecodeError"),
])
def test_load_json_turns_every_decode_failure_into_an_input_error(tmp_path, text, says):
    from tfpose.errors import load_json

    path = tmp_path / "x.json"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    with pytest.raises(InputError) as e:
        load_json(path)
    assert e.value.path == path and says in str(e.value)


# -- an artifact that cannot be written is an error line naming it, exit 2 ------------------------------------------
def test_an_atomic_writer_on_a_full_disk_names_the_file(tmp_path, monkeypatch):
    from tfpose.artifacts import write_json

    def full(self, data):
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(Path, "write_text", full)
    with pytest.raises(TfposeError) as e:
        write_json(tmp_path / "report.json", {})
    assert isinstance(e.value, OSError) and e.value.errno == errno.ENOSPC
    assert str(e.value) == f"{tmp_path / 'report.json'}: cannot be written (No space left on device)"
    assert list(tmp_path.iterdir()) == []


def test_validate_on_a_full_disk_says_which_file_and_exits_2(work, tmp_path, monkeypatch, quick_ap_interval):
    real = Path.write_bytes

    def full(self, data):
        if self.suffix == ".png":
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(self, data)
    monkeypatch.setattr(Path, "write_bytes", full)
    ann = tmp_path / "ann.json"
    ann.write_text(json.dumps(work["coco"]))
    rc, err = _run(_validate_main(), [work["tflite"], "--annotations", ann, "--images", work["images"], "--runs", "0",
                                      "--in-process", "--out", tmp_path / "out"])
    assert rc == 2 and err.startswith("error: ") and "No space left on device" in err, err
    assert "worst.png: cannot be written" in err or "best.png: cannot be written" in err, err


def _blocked(tmp_path) -> Path:
    """An output folder that cannot be made, as root too: its parent is a regular file."""
    (tmp_path / "file").write_text("not a folder")
    return tmp_path / "file" / "out"


def test_every_command_reports_an_output_folder_it_cannot_make_and_exits_2(work, tmp_path, monkeypatch,
                                                                          quick_ap_interval):
    import tflite.video_validate as video_validate

    out = _blocked(tmp_path)
    commands = {
        "tfpose-validate": (_validate_main(), [work["tflite"], "--runs", "0", "--in-process", "--out", out]),
        "tfpose export": (_tfpose_main(), ["export", "--config", work["config"], "--model", work["keras"],
                                           "--out", out]),
        "tfpose predict": (_tfpose_main(), ["predict", work["frames"], "--model", work["tflite"], "--out", out,
                                            "--detector", "frame"]),
        "video_validate": (video_validate.main, ["encoder.tflite", "tracker.tflite", "--out", out]),
    }
    # the video validator's models are DKD exports; what is checked here is only how its report is written
    monkeypatch.setattr(video_validate, "validate_video", lambda *args: {})
    monkeypatch.setattr(video_validate, "report_markdown", lambda report: "report\n")
    for name, (main, argv) in commands.items():
        rc, err = _run(main, argv)
        assert rc == 2 and err.startswith(f"error: {tmp_path / 'file'}") and "Traceback" not in err, (name, err)


# -- damaged model files -------------------------------------------------------------------------------------------
def test_a_tflite_with_a_damaged_metadata_archive_is_an_input_error(work, tmp_path):
    from tflite import metadata

    data = bytearray(work["tflite"].read_bytes())
    data[-200] ^= 0xFF    # inside the appended archive's compressed metadata
    path = tmp_path / "damaged.tflite"
    path.write_bytes(bytes(data))
    with pytest.raises(InputError) as e:
        metadata.find(path)
    assert e.value.path == path and "damaged" in str(e.value)


def test_a_damaged_keras_file_is_an_input_error(work, tmp_path):
    from tfpose.pipeline import load_keras

    data = bytearray(work["keras"].read_bytes())
    data[len(data) // 2] ^= 0xFF   # the weights' CRC no longer matches
    path = tmp_path / "damaged.keras"
    path.write_bytes(bytes(data))
    with pytest.raises(InputError) as e:
        load_keras(path)
    assert e.value.path == path


# -- seeded mutations through whole commands -----------------------------------------------------------------------
class Commands:
    """Outcomes of one command's fuzzing: exit 0, or exit 2 with an ``error:`` line; anything else fails at once."""

    def __init__(self, name: str, main):
        self.name, self.main, self.accepted, self.rejected = name, main, 0, 0

    def run(self, argv, what: str) -> None:
        try:
            rc, err = _run(self.main, argv)
        except Exception as e:  # noqa: BLE001
            pytest.fail(f"{self.name}: {what}: {type(e).__name__} escaped (a traceback): {e}")
        assert rc in (0, 2), f"{self.name}: {what}: exit {rc}: {err[-2000:]}"
        assert "Traceback" not in err, f"{self.name}: {what}: {err[-2000:]}"
        if rc == 2:
            assert "error: " in err, f"{self.name}: {what}: exit 2 without an error line: {err[-2000:]}"
        self.accepted += rc == 0
        self.rejected += rc == 2

    def report(self, record_property) -> None:
        line = (f"{self.name}: {self.accepted + self.rejected} mutations, {self.accepted} accepted, "
                f"{self.rejected} rejected")
        print("\nfuzz " + line)
        record_property("fuzz", line)
        assert self.accepted > 0 and self.rejected > 0, line


def _mutated_config(doc: dict, rng) -> tuple[str, str]:
    """A mutated export config as YAML: another valid value, a mistyped key, model name or parameter, or a random
    structural change."""
    doc = copy.deepcopy(doc)
    roll = rng.random()
    if roll < 0.25:
        key, value = _pick(rng, [("quant", "int8"), ("quant", "float16"), ("quant", "dynamic"), ("decode", "keypoints"),
                                 ("calibration_samples", 1), ("reference_samples", 50), ("output_type", "uint8")])
        doc["export"][key] = value
        what = f"export.{key}={value}"
    elif roll < 0.35:
        section = _pick(rng, ["data", "codec", "export", "distill", "teacher"])
        doc[section][_pick(rng, ["sourc", "input_siz", "quantt", "alpha_", "modle"])] = 1
        what = f"an unknown key in {section}"
    elif roll < 0.45:
        model = doc["distill"]["student"] if rng.random() < 0.5 else doc["teacher"]["model"]
        model["name"] = _pick(rng, ["peleenet_dcu", "mobilenet", "", "hourglass_", 7])
        what = f"model name {model['name']!r}"
    elif roll < 0.55:
        model = doc["distill"]["student"] if rng.random() < 0.5 else doc["teacher"]["model"]
        model["params"] = {**model["params"], _pick(rng, ["growht", "stack", "widht", "intermediate"]): 2}
        what = f"model params {model['params']}"
    else:
        what = "; ".join(_mutate_once(doc, rng) for _ in range(_pick(rng, [1, 1, 2])))
    return yaml.safe_dump(doc), what


def _mutated_coco(doc: dict, rng) -> tuple[bytes, str]:
    """Half the time one field of one record dropped or made odd (most of the readers' mutations land in keypoints,
    so this is how a missing id or area reaches the scorer), else the readers' mutations."""
    if rng.random() < 0.5:
        return _mutated_json(doc, rng)
    doc = copy.deepcopy(doc)
    kind = "annotations" if rng.random() < 0.8 else "images"
    i = int(rng.integers(len(doc[kind])))
    key = _pick(rng, sorted(doc[kind][i]))
    if rng.random() < 0.6:
        del doc[kind][i][key]
        return json.dumps(doc).encode(), f"{kind}[{i}]: no {key}"
    doc[kind][i][key] = copy.deepcopy(_pick(rng, ODD_VALUES))
    return json.dumps(doc).encode(), f"{kind}[{i}].{key} = {doc[kind][i][key]!r}"


def test_fuzzed_inputs_through_tfpose_validate(work, tmp_path, quick_ap_interval, record_property):
    tally = Commands("tfpose-validate", _validate_main())
    rng = np.random.default_rng(25)
    ann, dets, model = tmp_path / "ann.json", tmp_path / "dets.json", tmp_path / "model.tflite"
    images, out = work["images"], tmp_path / "out"
    detections = [{"image_id": a["image_id"], "bbox": a["bbox"], "score": 0.9, "category_id": 1}
                  for a in work["coco"]["annotations"]]
    for n in range(20):
        data, what = _mutated_coco(work["coco"], rng)
        ann.write_bytes(data)
        tally.run([work["tflite"], "--annotations", ann, "--images", images, "--runs", "0", "--in-process",
                   *(["--out", out, "--overlays", "1"] if n % 4 == 0 else [])], f"annotations: {what}")
    ann.write_text(json.dumps(work["coco"]))
    for n in range(8):
        data, what = _mutated_json(detections, rng)
        dets.write_bytes(data)
        tally.run([work["tflite"], "--annotations", ann, "--images", images, "--detections", dets, "--runs", "0",
                   "--in-process", "--oks-nms", "0.9"], f"detections: {what}")
    for n in range(8):
        data, what = _mutated_bytes(work["tflite"].read_bytes(), rng)
        model.write_bytes(data)
        tally.run([model, "--annotations", ann, "--images", images, "--runs", "0", "--in-process"], f"model: {what}")
    tally.report(record_property)


def test_fuzzed_inputs_through_tfpose_predict(work, tmp_path, record_property):
    tally = Commands("tfpose predict", _tfpose_main())
    rng = np.random.default_rng(26)
    frames, dets, model, out = tmp_path / "frames", tmp_path / "dets.json", tmp_path / "model.tflite", tmp_path / "out"
    shutil.copytree(work["frames"], frames)
    names = sorted(p.name for p in frames.iterdir())
    detections = [{"file_name": names[0], "bbox": [10, 8, 40, 70], "score": 0.9},
                  {"image_id": int(Path(names[1]).stem), "bbox": [30, 5, 50, 80], "score": 0.6}]
    for n in range(12):
        data, what = _mutated_json(detections, rng)
        dets.write_bytes(data)
        tally.run(["predict", frames, "--model", work["tflite"], "--out", out, "--detections", dets],
                  f"detections: {what}")
    for n in range(10):
        data, what = _mutated_bytes(work["tflite"].read_bytes(), rng)
        model.write_bytes(data)
        tally.run(["predict", frames, "--model", model, "--out", out, "--detector", "frame"], f"model: {what}")
    for n in range(8):
        victim = frames / names[n % len(names)]
        original = (work["frames"] / victim.name).read_bytes()
        data, what = _mutated_bytes(original, rng)
        victim.write_bytes(data)
        tally.run(["predict", frames, "--model", work["tflite"], "--out", out, "--detector", "frame",
                   *(["--no-overlays"] if n % 2 else [])], f"image {victim.name}: {what}")
        victim.write_bytes(original)
    tally.report(record_property)


def test_fuzzed_inputs_through_tfpose_export(work, synthetic_root, tmp_path, monkeypatch, record_property):
    monkeypatch.chdir(tmp_path)     # a mutation that drops data.root falls back to a relative folder
    tally = Commands("tfpose export", _tfpose_main())
    rng = np.random.default_rng(27)
    config, model, out = tmp_path / "config.yaml", tmp_path / "student.keras", tmp_path / "out"
    base = _config(synthetic_root)
    for n in range(20):
        text, what = _mutated_config(base, rng)
        config.write_text(text)
        tally.run(["export", "--config", config, "--model", work["keras"], "--out", out], f"config: {what}")
    config.write_text(yaml.safe_dump(base))
    for n in range(10):
        data, what = _mutated_bytes(work["keras"].read_bytes(), rng)
        model.write_bytes(data)
        tally.run(["export", "--config", config, "--model", model, "--out", out], f"model: {what}")
    tally.report(record_property)
