import json

import cv2
import numpy as np
import pytest

from tfpose.data.coco import ImageStore, load_coco, read_rgb
from tfpose.errors import InputError
from tests.conftest import shared_path


def _write(tmp_path, coco: dict):
    (tmp_path / "images").mkdir(exist_ok=True)
    path = tmp_path / "ann.json"
    path.write_text(json.dumps(coco))
    return path


def _minimal(**ann_overrides):
    ann = {"id": 1, "image_id": 1, "category_id": 1, "iscrowd": 0, "bbox": [10, 10, 50, 80], "area": 3000,
           "keypoints": [20, 30, 2] * 17, "num_keypoints": 17}
    ann.update(ann_overrides)
    return {"images": [{"id": 1, "file_name": "a.jpg"}], "annotations": [ann]}


def test_reads_real_coco_annotations():
    ann = shared_path("data/coco-mini-train/annotations/person_keypoints_train2017.json")
    ds = load_coco(ann, ann.parent.parent / "train2017")
    assert len(ds.persons) == 172 - sum(a["iscrowd"] for a in json.loads(ann.read_text())["annotations"])
    assert len(ds.labelled()) == 86
    p = ds.labelled()[0]
    assert p.keypoints.shape == (17, 2) and read_rgb(p.image_path).ndim == 3


@pytest.mark.parametrize("coco, field", [
    ({"images": []}, "annotations"),
    (_minimal(keypoints=[1, 2, 2] * 16), "annotations[0].keypoints"),
    (_minimal(bbox=[1, 2, 3]), "annotations[0].bbox"),
    (_minimal(image_id=7), "annotations[0].image_id"),
    (_minimal(keypoints=[1, 2, 5] * 17), "annotations[0].keypoints"),
])
def test_malformed_annotations_name_the_file_and_field(tmp_path, coco, field):
    path = _write(tmp_path, coco)
    with pytest.raises(InputError) as e:
        load_coco(path, tmp_path / "images")
    assert str(path) in str(e.value) and f"field '{field}'" in str(e.value)


def test_invalid_json_and_missing_files(tmp_path):
    (tmp_path / "images").mkdir()
    bad = tmp_path / "broken.json"
    bad.write_text('{"images": [')
    with pytest.raises(InputError, match="broken.json.*not valid JSON"):
        load_coco(bad, tmp_path / "images")
    with pytest.raises(InputError, match="nope.json.*not found"):
        load_coco(tmp_path / "nope.json", tmp_path / "images")


def test_missing_and_corrupt_images_are_named(tmp_path):
    with pytest.raises(InputError, match="gone.jpg.*not found"):
        read_rgb(tmp_path / "gone.jpg")
    corrupt = tmp_path / "corrupt.jpg"
    corrupt.write_bytes(b"\xff\xd8\xff\xe0 this is not a jpeg")
    with pytest.raises(InputError, match="corrupt.jpg.*cannot be decoded"):
        read_rgb(corrupt)


def test_split_is_by_image_and_reproducible(synthetic_root):
    ds = load_coco(synthetic_root / "annotations/person_keypoints_train.json", synthetic_root / "images/train")
    train, val = ds.split(0.25, seed=5)
    assert not set(train.images) & set(val.images)
    assert set(train.images) | set(val.images) == set(ds.images)
    assert {p.image_id for p in val.persons} <= set(val.images)
    again, _ = ds.split(0.25, seed=5)
    assert sorted(again.images) == sorted(train.images)
    assert len(val.raw["annotations"]) == len(val.persons)
    np.testing.assert_array_equal(train.persons[0].keypoints, again.persons[0].keypoints)


# -- non-finite numbers, duplicate ids, truncated images (issue 17) ------------------------------------------------
@pytest.mark.parametrize("field, value, message", [
    ("bbox", [10, 10, float("nan"), 80], "not finite (nan at position 2)"),
    ("bbox", [float("inf"), 10, 50, 80], "not finite (inf at position 0)"),
    ("keypoints", [20, 30, 2] * 16 + [float("nan"), 30, 2], "not finite (nan at position 48)"),
    ("keypoints", [20, 30, 2] * 16 + [20, -float("inf"), 2], "not finite (-inf at position 49)"),
    ("keypoints", [20, 30, 2] * 16 + [1e39, 30, 2], "out of float32 range (1e+39 at position 48)"),
    ("keypoints", [20, 30, 2] * 16 + [20, 30, 1.5], "visibility flags must be 0, 1 or 2"),
    ("area", float("nan"), "not finite (nan)"),
    ("area", float("inf"), "not finite (inf)"),
    ("area", -5, "must be >= 0, got -5"),
    ("image_id", float("inf"), "expected an integer, got inf"),
    ("iscrowd", [1], "expected 0 or 1, got [1]"),
])
def test_non_finite_and_malformed_numbers_are_rejected_naming_the_field(tmp_path, field, value, message):
    path = _write(tmp_path, _minimal(**{field: value}))      # json writes NaN and Infinity, and reads them back
    with pytest.raises(InputError) as e:
        load_coco(path, tmp_path / "images")
    assert e.value.field == f"annotations[0].{field}" and message in str(e.value) and str(path) in str(e.value)


def test_a_duplicate_image_id_is_rejected_not_resolved_to_the_later_record(tmp_path):
    coco = _minimal()
    coco["images"].append({"id": 1, "file_name": "b.jpg"})
    path = _write(tmp_path, coco)
    with pytest.raises(InputError, match=r"duplicate image id 1 \(first at images\[0\]\.id\)") as e:
        load_coco(path, tmp_path / "images")
    assert e.value.field == "images[1].id" and e.value.path == path


def test_a_duplicate_annotation_id_is_rejected(tmp_path):
    coco = _minimal()
    coco["annotations"].append(dict(coco["annotations"][0], bbox=[0, 0, 20, 30]))
    with pytest.raises(InputError, match=r"duplicate annotation id 1 \(first at annotations\[0\]\.id\)") as e:
        load_coco(_write(tmp_path, coco), tmp_path / "images")
    assert e.value.field == "annotations[1].id"


def _encoded(suffix: str) -> bytes:
    image = cv2.GaussianBlur(np.random.default_rng(0).integers(0, 256, (64, 48, 3), dtype=np.uint8), (5, 5), 0)
    return cv2.imencode(suffix, image)[1].tobytes()


@pytest.mark.parametrize("suffix", [".jpg", ".png"])
def test_a_truncated_image_is_rejected_not_decoded_half_grey(tmp_path, suffix):
    whole = _encoded(suffix)
    path = tmp_path / f"cut{suffix}"
    for cut in (len(whole) // 2, len(whole) - 2):
        path.write_bytes(whole[:cut])
        with pytest.raises(InputError, match=f"cut{suffix}: image cannot be decoded: truncated") as e:
            ImageStore()(path)
        assert e.value.path == path


def test_bytes_after_the_end_of_an_image_are_harmless(tmp_path):
    path = tmp_path / "tail.jpg"
    path.write_bytes(_encoded(".jpg") + b"\n")     # 15 of LSP's JPEGs end so
    assert read_rgb(path).shape == (64, 48, 3)


def test_split_rejects_a_fraction_outside_0_1(synthetic_root):
    ds = load_coco(synthetic_root / "annotations/person_keypoints_train.json", synthetic_root / "images/train")
    for fraction in (float("nan"), -0.5, 1.5):
        with pytest.raises(InputError, match="must lie in"):
            ds.split(fraction, seed=0)
