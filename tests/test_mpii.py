"""The MPII reader's checks: every malformed or non-finite field is an InputError naming the file and the field."""

import json

import pytest

from tfpose.data.mpii import load_mpii
from tfpose.errors import InputError


def _annotation(**overrides):
    ann = {"image": "000001.jpg", "center": [50.0, 60.0], "scale": 0.8, "joints_vis": [1] * 16,
           "joints": [[20.0 + j, 40.0 + j] for j in range(16)]}
    ann.update(overrides)
    return ann


def _load(tmp_path, ann):
    path = tmp_path / "mpii.json"
    path.write_text(json.dumps([ann]))
    return path, lambda: load_mpii(path, tmp_path)


def test_a_valid_annotation_loads_with_its_head_segment(tmp_path):
    _, load = _load(tmp_path, _annotation())
    data = load()
    assert data.persons[0].image_id == 1 and data.head_size_source == ["head segment"]
    assert data.head_sizes[0] == pytest.approx(2 ** 0.5)      # joints 8 and 9 lie one pixel apart on each axis


@pytest.mark.parametrize("overrides, field, message", [
    ({"joints": [[float("nan"), 40.0]] + [[20.0, 40.0]] * 15}, "[0].joints", "not finite (nan at position 0)"),
    ({"joints": [[20.0, 40.0]] * 15 + [[1e39, 40.0]]}, "[0].joints", "out of float32 range"),
    ({"joints": [[20.0, 40.0, 1.0]] * 16}, "[0].joints", "expected 16 joints [x, y]"),
    ({"joints_vis": [1] * 15 + [float("nan")]}, "[0].joints_vis", "not finite (nan at position 15)"),
    ({"center": [float("inf"), 60.0]}, "[0].center", "not finite (inf at position 0)"),
    ({"scale": float("inf")}, "[0].scale", "not finite (inf)"),
    ({"scale": float("nan")}, "[0].scale", "not finite (nan)"),
    ({"scale": 1e307}, "[0].scale", "the person box"),
    ({"scale": 0}, "[0].scale", "must be > 0"),
    ({"headbox": [10, 10, float("nan"), 30]}, "[0].headbox", "not finite (nan at position 2)"),
    ({"headbox": [10, 10, 10, 10]}, "[0].headbox", "PCKh needs a positive, finite one"),
    ({"image": 7}, "[0].image", "expected a non-empty string"),
])
def test_non_finite_and_malformed_fields_are_rejected(tmp_path, overrides, field, message):
    path, load = _load(tmp_path, _annotation(**overrides))
    with pytest.raises(InputError) as e:
        load()
    assert e.value.field == field and message in str(e.value) and str(path) in str(e.value)
