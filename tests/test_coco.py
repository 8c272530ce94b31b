import json

import numpy as np
import pytest

from tfpose.data.coco import load_coco, read_rgb
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
