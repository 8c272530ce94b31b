"""Teacher-labelled photos: the ``detected`` reader (boxes of a detection file -> unlabelled persons), a ``detected``
source in a data config feeding the training sampler, and ``tfpose detect`` on real photos."""

import json
import shutil

import cv2
import numpy as np
import pytest

from tests.conftest import ROOT, run_without_tensorflow, shared_path
from tfpose.data.detected import read_detected
from tfpose.data.readers import read_dataset
from tfpose.errors import InputError

HAR_PHOTOS = ("data", "har-photos", "images")


@pytest.fixture
def photos(tmp_path):
    """A dataset folder: photos/a.jpg (64 x 48), photos/b.png (40 x 80), and a detection file beside them."""
    root = tmp_path / "data"
    (root / "photos").mkdir(parents=True)
    cv2.imwrite(str(root / "photos" / "a.jpg"), np.full((48, 64, 3), 120, np.uint8))
    cv2.imwrite(str(root / "photos" / "b.png"), np.full((80, 40, 3), 60, np.uint8))
    entries = [
        {"file_name": "a.jpg", "bbox": [1, 2, 30, 40], "score": 0.9, "category_id": 1},
        {"file_name": "b.png", "bbox": [0, 0, 40, 80], "score": 0.5},
        {"file_name": "gone.jpg", "bbox": [0, 0, 10, 20], "score": 0.8},              # no such photo
        {"file_name": "a.jpg", "bbox": [5, 5, 20, 20], "score": 0.9, "category_id": 18},   # a dog
        {"file_name": "a.jpg", "bbox": [5, 5, 1, 20], "score": 0.9},                  # degenerate
        {"file_name": "a.jpg", "bbox": [20, 4, 40, 44], "score": 0.4, "category_id": 1},
    ]
    (root / "dets.json").write_text(json.dumps(entries))
    return root


def test_every_box_of_a_present_photo_is_an_unlabelled_person(photos):
    ds = read_dataset("detected", photos, annotations="dets.json", images="photos")
    assert ds.labelled() == [] and ds.unlabelled() == ds.persons
    assert [(p.image_path.name, p.box, p.ann_id) for p in ds.persons] == [
        ("a.jpg", (1.0, 2.0, 30.0, 40.0), 1), ("b.png", (0.0, 0.0, 40.0, 80.0), 2),
        ("a.jpg", (20.0, 4.0, 40.0, 44.0), 6)]
    assert [(im["file_name"], im["width"], im["height"]) for im in ds.images.values()] == [
        ("a.jpg", 64, 48), ("b.png", 40, 80)]
    p = ds.persons[0]
    assert p.keypoints.shape == (17, 2) and not p.visibility.any() and p.area == 30 * 40
    assert p.image_id == ds.persons[2].image_id != ds.persons[1].image_id
    assert len(ds.raw["annotations"]) == 3 and {a["num_keypoints"] for a in ds.raw["annotations"]} == {0}


def test_the_detection_file_is_found_under_root_else_from_the_working_folder(photos, tmp_path, monkeypatch):
    (tmp_path / "runs").mkdir()
    shutil.move(photos / "dets.json", tmp_path / "runs" / "people.json")
    monkeypatch.chdir(tmp_path)
    ds = read_detected(photos, annotations="runs/people.json", images="photos")
    assert len(ds.persons) == 3 and ds.annotation_file.name == "people.json"


def test_a_missing_detection_file_names_it_and_the_command_that_makes_it(photos):
    with pytest.raises(InputError) as e:
        read_detected(photos, annotations="runs/none.json", images="photos")
    assert e.value.field == "annotations" and "runs/none.json" in str(e.value)
    assert f"tfpose detect {photos / 'photos'} --out runs/none.json" in str(e.value)
    with pytest.raises(InputError, match="needs annotations=") as e:
        read_detected(photos, images="photos")
    assert e.value.field == "annotations"


@pytest.mark.parametrize("entries, field, message", [
    ([{"image_id": 1, "bbox": [1, 2, 30, 40]}], "[0].file_name", "missing"),
    ([{"file_name": "a.jpg", "bbox": [1, 2, 30]}], "[0].bbox", "expected [x, y, w, h]"),
    ({"file_name": "a.jpg"}, None, "expected a JSON list"),
    ([{"file_name": "elsewhere.jpg", "bbox": [1, 2, 30, 40]}], "file_name", "none of the 1 boxes' photos"),
])
def test_a_malformed_detection_file_is_an_error_naming_it_and_the_field(photos, entries, field, message):
    (photos / "bad.json").write_text(json.dumps(entries))
    with pytest.raises(InputError) as e:
        read_detected(photos, annotations="bad.json", images="photos")
    assert e.value.field == field and message in str(e.value) and "bad.json" in str(e.value)


def test_a_detected_source_in_a_data_config_trains_through_the_teacher_alone(photos, synthetic_root):
    from tfpose.codec import HeatmapCodec
    from tfpose.config import load_config
    from tfpose.data.sources import RunData, load_datasets
    from tfpose.skeleton import COCO17

    source = f"{{format: detected, root: {photos}, images: photos, annotations: dets.json, weight: 3.0}}"
    cfg = load_config(None, ["data.source=coco", f"data.root={synthetic_root}", f"data.sources=[{source}]"])
    assert cfg.data.sources[0].format == "detected" and cfg.data.sources[0].unlabelled
    sources, val_sets = load_datasets(cfg.data, 17)
    data = RunData(cfg.data, HeatmapCodec((64, 64), 4, 2.0), COCO17, sources, val_sets)
    detected = sources[1].dataset.persons
    sampler, draw = data.training_sampler(with_unlabelled=True, augment=False)
    mine = [i for i, p in enumerate(sampler.persons) if p in detected]
    assert len(mine) == 3 and draw[mine].sum() == pytest.approx(0.75), "weight 3 of 4, over its three boxes"
    sample = sampler.sample(mine[0])
    assert sample.crop.shape == (64, 64, 3) and not sample.weights.any(), "no ground truth: the teacher alone"
    sampler, _ = data.training_sampler(with_unlabelled=False, augment=False)
    assert not any(p in detected for p in sampler.persons)

    missing = source.replace("dets.json", "none.json")
    with pytest.raises(InputError, match="tfpose detect") as e:
        load_datasets(load_config(None, ["data.source=coco", f"data.root={synthetic_root}",
                                         f"data.sources=[{missing}]"]).data, 17)
    assert e.value.field == "data.sources[0]" and "none.json" in str(e.value)


def test_detect_writes_what_the_detected_reader_reads_and_skips_a_corrupt_photo(tmp_path):
    """Three har-photos and a corrupt file, the repository's detector, no TensorFlow: every box is a person at least
    --min-height tall scoring at least --min-score, the same boxes the detector gives for that photo, and the file
    reads back as unlabelled persons."""
    from tflite.detector import TFLiteDetector
    from tfpose.data.images import read_rgb

    detector = ROOT / "android_assets" / "detector.tflite"
    if not detector.is_file():
        pytest.fail("android_assets/detector.tflite is missing: `tfpose export-detector ... --android-assets`")
    folder = tmp_path / "images"
    folder.mkdir()
    originals = sorted(shared_path(*HAR_PHOTOS).glob("Image_[1-3].jpg"))
    for photo in originals:
        (folder / photo.name).symlink_to(photo)
    (folder / "Image_0.jpg").write_bytes(b"\xff\xd8\xff\xe0 not a jpeg")
    out = tmp_path / "runs" / "people.json"
    run = run_without_tensorflow(tmp_path, f"""
        from tfpose.cli import main
        code = main(['detect', {str(folder)!r}, '--out', {str(out)!r}, '--min-score', '0.35', '--min-height', '90'])
    """)
    assert "warning: Image_0.jpg: skipped" in run.stderr
    assert "detect: 4/4 images" in run.stdout and "3 images (1 skipped)" in run.stdout

    found = json.loads(out.read_text())
    model = TFLiteDetector(detector)
    expected = []
    for photo in originals:
        boxes = model(read_rgb(photo), 0.35)
        expected += [(photo.name, [round(float(v), 2) for v in b], round(float(s), 4))
                     for b, s in zip(boxes.boxes, boxes.scores) if b[3] >= 90]
    assert [(d["file_name"], d["bbox"], d["score"]) for d in found] == expected and len(expected) >= 3
    assert all(d["category_id"] == 1 for d in found)

    ds = read_detected(tmp_path, annotations="runs/people.json", images="images")
    assert len(ds.unlabelled()) == len(found) and {p.image_path.name for p in ds.persons} <= {
        p.name for p in originals}


def test_the_data_stage_finds_the_people_of_a_detected_source_once(synthetic_root, tmp_path, monkeypatch):
    """A detected source whose detection file is not there yet: the pipeline's data stage runs the detector into it
    (scores >= DETECTED_MIN_SCORE), and a second run reads the file it wrote."""
    import tfpose.pipeline as p
    from tfpose.config import load_config

    folder = tmp_path / "images"
    folder.mkdir()
    for photo in sorted(shared_path(*HAR_PHOTOS).glob("Image_[1-2].jpg")):
        (folder / photo.name).symlink_to(photo)
    monkeypatch.chdir(tmp_path)
    source = f"{{format: detected, root: {tmp_path}, images: images, annotations: runs/found.json}}"
    cfg = load_config(None, ["data.source=coco", f"data.root={synthetic_root}", f"data.sources=[{source}]",
                             "codec.input_size=[64,64]"])
    out, codec, skeleton = p.open_run(cfg, tmp_path / "run")
    data = p.load_data(cfg.data, codec, skeleton)
    found = json.loads((tmp_path / "runs/found.json").read_text())
    assert found and all(d["score"] >= p.DETECTED_MIN_SCORE for d in found)
    assert len(data.sources[1].dataset.unlabelled()) == len(found)
    written = (tmp_path / "runs/found.json").stat().st_mtime_ns
    p.load_data(cfg.data, codec, skeleton)
    assert (tmp_path / "runs/found.json").stat().st_mtime_ns == written


def test_detect_fails_on_a_corrupt_single_photo_or_a_bad_option(tmp_path, capsys):
    from tfpose.cli import main

    corrupt = tmp_path / "broken.jpg"
    corrupt.write_bytes(b"\xff\xd8\xff\xe0 not a jpeg")
    for args, named in (([str(corrupt)], "broken.jpg"), ([str(tmp_path), "--min-height", "-1"], "--min-height"),
                        ([str(corrupt), "--detector", str(tmp_path / "none.tflite")], "none.tflite")):
        assert main(["detect", *args, "--out", str(tmp_path / "out.json")]) == 2, args
        err = capsys.readouterr().err
        assert err.startswith("error:") and named in err, err
    assert not (tmp_path / "out.json").exists()
