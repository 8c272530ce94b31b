"""The one reader of detection files: what it keeps, and a clear error for every malformed entry."""

import json

import pytest

from tfpose.data.detections import read_detections
from tfpose.errors import InputError


def _write(tmp_path, entries):
    path = tmp_path / "dets.json"
    path.write_text(json.dumps(entries))
    return path


def test_keeps_person_boxes_over_the_score_threshold(tmp_path):
    path = _write(tmp_path, [
        {"image_id": 3, "bbox": [1, 2, 30, 40], "score": 0.9, "category_id": 1},
        {"image_id": 3, "bbox": [1, 2, 30, 40], "score": 0.9, "category_id": 2},   # not a person
        {"image_id": 4, "bbox": [5, 6, 7, 8], "score": 0.2},                       # under the threshold
        {"file_name": "000007.jpg", "bbox": [0, 0, 10, 20]},                      # score defaults to 1
    ])
    dets = read_detections(path, min_score=0.5)
    assert [(d.entry, d.image_id, d.file_name, d.box, d.score) for d in dets] == [
        (0, 3, None, (1.0, 2.0, 30.0, 40.0), 0.9), (3, None, "000007.jpg", (0.0, 0.0, 10.0, 20.0), 1.0)]


@pytest.mark.parametrize("entries, require, field, message", [
    ([{"image_id": 1, "bbox": [1, 2, 3]}], (), "[0].bbox", "expected [x, y, w, h]"),
    ([{"image_id": 1, "bbox": [1, 2, 3, "4"]}], (), "[0].bbox", "expected [x, y, w, h]"),
    ([{"image_id": 1, "bbox": [1, 2, 3, 4], "score": "high"}], (), "[0].score", "expected a number"),
    ([{"image_id": 1.5, "bbox": [1, 2, 3, 4]}], (), "[0].image_id", "expected an integer"),
    ([{"bbox": [1, 2, 3, 4]}], (), "[0]", "needs 'image_id' or 'file_name'"),
    ([{"image_id": 1}], (), "[0].bbox", "missing"),
    ([{"image_id": 1, "bbox": [1, 2, 3, 4]}], ("image_id", "score"), "[0].score", "missing"),
    ([7], (), "[0]", "expected an object"),
    ([{"image_id": 1, "bbox": [1, 2, float("nan"), 4]}], (), "[0].bbox", "not finite (nan at position 2)"),
    ([{"image_id": 1, "bbox": [-float("inf"), 2, 3, 4]}], (), "[0].bbox", "not finite (-inf at position 0)"),
    ([{"image_id": 1, "bbox": [1, 2, 3, 4], "score": float("nan")}], (), "[0].score", "not finite (nan)"),
    ([{"image_id": 1, "bbox": [1, 2, 3, 4], "score": float("inf")}], (), "[0].score", "not finite (inf)"),
    ([{"image_id": float("inf"), "bbox": [1, 2, 3, 4]}], (), "[0].image_id", "expected an integer"),
    ([{"image_id": 10**400, "bbox": [1, 2, 3, 4]}], (), "[0].image_id", "must lie in [0, 2**63)"),
    ([{"file_name": 7, "bbox": [1, 2, 3, 4]}], (), "[0].file_name", "expected a non-empty string"),
])
def test_a_malformed_entry_names_the_file_and_the_field(tmp_path, entries, require, field, message):
    with pytest.raises(InputError) as err:
        read_detections(_write(tmp_path, entries), require=require)
    assert err.value.field == field and message in str(err.value) and "dets.json" in str(err.value)


def test_a_file_that_is_not_a_list_or_missing_is_a_clear_error(tmp_path):
    with pytest.raises(InputError, match="JSON list"):
        read_detections(_write(tmp_path, {"bbox": [1, 2, 3, 4]}))
    with pytest.raises(InputError, match="not found"):
        read_detections(tmp_path / "absent.json")
