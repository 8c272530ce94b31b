"""Seeded fuzzing of every dataset reader: each mutation of a small valid file either loads into finite, consistent
records or raises InputError naming the file; any other exception fails. No TensorFlow.

Counts per reader are printed (``pytest -s``) and recorded as the junit property ``fuzz``.
"""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path

import cv2
import numpy as np
import pytest

from tfpose.data.coco import CocoDataset, ImageStore, load_coco
from tfpose.data.detections import read_detections
from tfpose.data.readers import read_dataset
from tfpose.data.mpii import load_mpii
from tfpose.data.video import load_penn_action, load_video_coco
from tfpose.errors import InputError

MUTATIONS = 500          # per reader: several hundred, and the whole file stays within a few seconds
ODD_VALUES = [float("nan"), float("inf"), -float("inf"), 1e39, 1e308, -1e308, 10**30, 10**400, -(10**400), -1, -7.5,
              0, 0.5, 2, 3, "7", "", "x", None, True, False, [], {}, [1, 2], [[1, 2], [3]], [float("nan")] * 3,
              {"id": 1}]


# -- mutations ----------------------------------------------------------------------------------------------------
def _pick(rng, options):
    return options[rng.integers(len(options))]


def _paths(node, prefix=()):
    """Every path (tuple of keys and indices) below ``node``, the root excluded."""
    children = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, child in children:
        yield prefix + (key,)
        yield from _paths(child, prefix + (key,))


def _parent(doc, path):
    for key in path[:-1]:
        doc = doc[key]
    return doc


def _mutate_once(doc, rng) -> str:
    """Change ``doc`` in place in one random way; returns what it did."""
    paths = list(_paths(doc))
    if not paths:
        return "nothing to change"
    path = _pick(rng, paths)
    parent, key = _parent(doc, path), path[-1]
    value = parent[key]
    how = _pick(rng, ["odd", "odd_number", "delete", "duplicate", "same_id", "retype", "scale"])
    if how == "odd_number":          # a number leaf, so NaN and inf land in bboxes and keypoints, not only anywhere
        numeric = [p for p in paths if isinstance(_parent(doc, p)[p[-1]], (int, float))]
        if numeric:
            path = _pick(rng, numeric)
            parent, key = _parent(doc, path), path[-1]
        parent[key] = copy.deepcopy(_pick(rng, ODD_VALUES[:10]))
    elif how == "odd":
        parent[key] = copy.deepcopy(_pick(rng, ODD_VALUES))
    elif how == "delete":
        del parent[key]
    elif how == "duplicate":          # a copy of a record: duplicate ids
        lists = [node for node in map(lambda p: _parent(doc, p)[p[-1]], paths) if isinstance(node, list) and node]
        if lists:
            target = _pick(rng, lists)
            target.append(copy.deepcopy(_pick(rng, target)))
    elif how == "same_id":            # two records of one list share an id
        with_ids = [[r for r in node if isinstance(r, dict) and "id" in r]
                    for node in map(lambda p: _parent(doc, p)[p[-1]], paths) if isinstance(node, list)]
        with_ids = [records for records in with_ids if len(records) >= 2]
        if with_ids:
            records = _pick(rng, with_ids)
            a, b = rng.choice(len(records), 2, replace=False)
            records[b]["id"] = records[a]["id"]
    elif how == "retype":
        parent[key] = _pick(rng, [str(value), [value], {"v": value}, True])
    elif isinstance(value, (int, float)) and not isinstance(value, bool) and abs(value) < 1e300:    # scale
        parent[key] = value * _pick(rng, [-1.0, 1e6, 1e40, 0.0, 1e-9])
    else:
        parent[key] = -1
    return f"{how} at {'/'.join(map(str, path))}"


def _mutated_bytes(data: bytes, rng) -> tuple[bytes, str]:
    data = bytearray(data)
    how = _pick(rng, ["truncate", "flip", "overwrite", "insert"])
    if how == "truncate":
        cut = int(rng.integers(0, len(data)))
        return bytes(data[:cut]), f"truncate to {cut} bytes"
    if how == "flip":
        for pos in rng.integers(0, len(data), rng.integers(1, 6)):
            data[pos] ^= 1 << int(rng.integers(8))
    elif how == "overwrite":
        for pos in rng.integers(0, len(data), rng.integers(1, 6)):
            data[pos] = int(rng.integers(256))
    else:
        pos = int(rng.integers(0, len(data)))
        data[pos:pos] = rng.integers(0, 256, int(rng.integers(1, 16)), dtype=np.uint8).tobytes()
    return bytes(data), how


def _mutated_json(doc, rng) -> tuple[bytes, str]:
    """A mutated copy of ``doc``, serialised: one to three structural changes, or byte damage to the text."""
    text = json.dumps(doc)
    roll = rng.random()
    if roll < 0.15:
        return _mutated_bytes(text.encode(), rng)
    if roll < 0.18:                   # what json itself refuses with ValueError or RecursionError
        at = text.index("[", 1) + 1 if "[" in text[1:] else 1
        junk = _pick(rng, ["9" * 5000 + ", ", "[" * 50_000 + "]" * 50_000 + ", "])
        return (text[:at] + junk + text[at:]).encode(), "an integer of 5000 digits or 50000 nested lists"
    doc = copy.deepcopy(doc)
    done = [_mutate_once(doc, rng) for _ in range(_pick(rng, [1, 1, 1, 2, 3]))]
    return json.dumps(doc).encode(), "; ".join(done)


class Tally:
    """Outcomes of one reader's fuzzing; anything but a load or an InputError that names a file fails at once."""

    def __init__(self, name: str):
        self.name, self.accepted, self.rejected = name, 0, 0

    def run(self, read, check, what: str):
        try:
            result = read()
        except InputError as e:
            assert e.path is not None, f"{self.name}: {what}: the error names no file: {e}"
            self.rejected += 1
            return
        except Exception as e:  # noqa: BLE001
            pytest.fail(f"{self.name}: {what}: {type(e).__name__} escaped instead of InputError: {e}")
        check(result)
        self.accepted += 1

    def report(self, record_property) -> None:
        total = self.accepted + self.rejected
        print(f"\nfuzz {self.name}: {total} mutations, {self.accepted} accepted, {self.rejected} rejected")
        record_property("fuzz", f"{self.name}: {total} mutations, {self.accepted} accepted, {self.rejected} rejected")
        assert total >= 300 and self.accepted > 0 and self.rejected > 0, (self.name, self.accepted, self.rejected)


# -- checks of what loaded ----------------------------------------------------------------------------------------
def _check_person(p, k: int, vis_values=(0, 1, 2)):
    assert p.keypoints.shape == (k, 2) and p.keypoints.dtype == np.float32 and np.isfinite(p.keypoints).all()
    assert p.visibility.shape == (k,) and np.isin(p.visibility, vis_values).all()
    assert len(p.box) == 4 and all(isinstance(v, float) and math.isfinite(v) for v in p.box)
    assert math.isfinite(p.area) and p.area >= 0
    assert isinstance(p.image_id, int) and isinstance(p.ann_id, int)


def _check_coco(ds: CocoDataset, k: int = 17):
    assert isinstance(ds, CocoDataset)
    assert all(isinstance(i, int) for i in ds.images)
    for p in ds.persons:
        _check_person(p, k)
        assert p.box[2] > 1 and p.box[3] > 1 and p.image_id in ds.images
        assert p.image_path.name == Path(ds.images[p.image_id]["file_name"]).name
    ids = [p.ann_id for p in ds.persons]
    assert len(ids) == len(set(ids))


# -- COCO ---------------------------------------------------------------------------------------------------------
def _coco_doc():
    kp = [30, 20, 2, 32, 18, 2, 0, 0, 0, 28, 19, 1, 0, 0, 0] + [40, 50, 2] * 12
    return {
        "images": [{"id": 1, "file_name": "a.jpg", "width": 64, "height": 96},
                   {"id": 2, "file_name": "b.jpg", "width": 64, "height": 96}],
        "annotations": [
            {"id": 10, "image_id": 1, "category_id": 1, "iscrowd": 0, "bbox": [10, 12, 40, 70], "area": 1800.5,
             "keypoints": kp, "num_keypoints": 15},
            {"id": 11, "image_id": 2, "category_id": 1, "iscrowd": 0, "bbox": [5, 6, 30, 50], "area": 900,
             "keypoints": [0] * 51, "num_keypoints": 0},
            {"id": 12, "image_id": 2, "category_id": 1, "iscrowd": 1, "bbox": [0, 0, 20, 20], "area": 300,
             "keypoints": [0] * 51, "num_keypoints": 0},
        ],
        "categories": [{"id": 1, "name": "person"}],
    }


def test_fuzzed_coco_files_load_or_raise_input_error(tmp_path, record_property):
    (tmp_path / "images").mkdir()
    path = tmp_path / "ann.json"
    doc = _coco_doc()
    path.write_text(json.dumps(doc))
    _check_coco(load_coco(path, tmp_path / "images"))
    rng = np.random.default_rng(17)
    tally = Tally("coco")
    for n in range(MUTATIONS):
        data, what = _mutated_json(doc, rng)
        path.write_bytes(data)
        split = ("all", "train", "val")[n % 3]           # the registry's reader, and its split of what loaded
        tally.run(lambda: read_dataset("coco", tmp_path, split=split, annotations="ann.json", images="images"),
                  _check_coco, f"mutation {n} ({what})")
    tally.report(record_property)


# -- images (ImageStore, read_rgb) --------------------------------------------------------------------------------
def _image_bytes(kind: str) -> bytes:
    rng = np.random.default_rng(3)
    image = cv2.GaussianBlur(rng.integers(0, 256, (48, 40, 3), dtype=np.uint8), (5, 5), 0)
    ok, encoded = cv2.imencode(kind, image)
    assert ok
    return encoded.tobytes()


def test_fuzzed_images_decode_whole_or_raise_input_error(tmp_path, record_property):
    originals = {".jpg": _image_bytes(".jpg"), ".png": _image_bytes(".png")}
    rng = np.random.default_rng(5)
    tally = Tally("images")

    def check(image):
        assert image.shape == (48, 40, 3) and image.dtype == np.uint8

    for n in range(MUTATIONS):
        suffix = (".jpg", ".png")[n % 2]
        data, what = _mutated_bytes(originals[suffix], rng)
        path = tmp_path / f"m{n}{suffix}"
        path.write_bytes(data)
        before = tally.rejected
        tally.run(lambda: ImageStore(cache=False)(path), check, f"mutation {n} ({what}) of {suffix}")
        if what.startswith("truncate"):      # a file cut anywhere short of its end, even one byte short
            assert tally.rejected == before + 1, f"{suffix} cut to {len(data)} bytes was read without complaint"
        path.unlink()
    tally.report(record_property)


# -- detections ---------------------------------------------------------------------------------------------------
def test_fuzzed_detection_files_load_or_raise_input_error(tmp_path, record_property):
    doc = [{"image_id": 1, "bbox": [1.5, 2, 30, 40], "score": 0.9, "category_id": 1},
           {"image_id": 2, "bbox": [5, 6, 7, 8], "score": 0.2},
           {"file_name": "000007.jpg", "bbox": [0, 0, 10, 20]},
           {"image_id": 3, "bbox": [0, 0, 10, 20], "score": 0.7, "category_id": 3}]
    path = tmp_path / "dets.json"

    def check(dets):
        for d in dets:
            assert len(d.box) == 4 and all(isinstance(v, float) and math.isfinite(v) for v in d.box)
            assert math.isfinite(d.score) and d.score >= 0.1
            assert isinstance(d.image_id, int) or isinstance(d.file_name, str)

    rng = np.random.default_rng(23)
    tally = Tally("detections")
    for n in range(MUTATIONS):
        data, what = _mutated_json(doc, rng)
        path.write_bytes(data)
        tally.run(lambda: read_detections(path, min_score=0.1), check, f"mutation {n} ({what})")
    tally.report(record_property)


# -- MPII ---------------------------------------------------------------------------------------------------------
def test_fuzzed_mpii_files_load_or_raise_input_error(tmp_path, record_property):
    joints = [[float(20 + 3 * j), float(40 + 2 * j)] for j in range(16)]
    doc = [{"image": "000001.jpg", "center": [50.0, 60.0], "scale": 0.8, "joints": joints, "joints_vis": [1] * 16},
           {"image": "a.jpg", "center": [70, 80], "scale": 1.2, "joints": joints, "joints_vis": [1, 0] * 8,
            "headbox": [30, 30, 60, 70]}]
    path = tmp_path / "mpii.json"

    def check(data):
        assert len(data.persons) == len(data.head_sizes) == len(data.head_size_source)
        for p, head, source in zip(data.persons, data.head_sizes, data.head_size_source):
            _check_person(p, 16, (0, 2))
            assert p.box[2] > 0 and p.box[2] == p.box[3]
            assert (source == "none") == np.isnan(head) and (np.isnan(head) or 0 < head < np.inf)

    rng = np.random.default_rng(29)
    tally = Tally("mpii")
    for n in range(MUTATIONS):
        data, what = _mutated_json(doc, rng)
        path.write_bytes(data)
        tally.run(lambda: load_mpii(path, tmp_path), check, f"mutation {n} ({what})")
    tally.report(record_property)


# -- video: PoseTrack / JHMDB-style JSON, and Penn Action -----------------------------------------------------------
def _check_sequences(sequences):
    image_ids = []
    for seq in sequences:
        assert [f.index for f in seq.frames] == list(range(len(seq.frames)))
        for frame in seq.frames:
            for tracked in frame.persons:
                _check_person(tracked.person, 17, (0, 2))
                assert tracked.person.box[2] >= 0 and tracked.person.box[3] >= 0
                assert isinstance(tracked.track_id, int)
            image_ids += {t.person.image_id for t in frame.persons}
        seq.track(0)
    assert len(image_ids) == len(set(image_ids))


def test_fuzzed_video_coco_files_load_or_raise_input_error(tmp_path, record_property):
    names = ["neck", "nose", "left_wrist", "r_wrist", "right_ankle"]     # a small layout, mapped by name
    images = [{"id": 100 + i, "vid_id": "v1" if i < 2 else "v2", "frame_id": 100 + i, "file_name": f"{i:06d}.jpg",
               "is_labeled": True} for i in range(3)]
    anns = [{"id": 1, "image_id": 100, "track_id": 0, "bbox": [1, 2, 30, 40], "category_id": 1,
             "keypoints": [10, 12, 2, 11, 13, 2, 20, 21, 2, 0, 0, 0, 30, 31, 2]},
            {"id": 2, "image_id": 101, "track_id": 0, "category_id": 1,
             "keypoints": [10, 12, 1, 11, 13, 1, 20, 21, 0, 5, 5, 1, 30, 31, 1]}]
    doc = {"images": images, "annotations": anns, "categories": [{"id": 1, "keypoints": names}]}
    path = tmp_path / "video.json"
    rng = np.random.default_rng(31)
    tally = Tally("video (PoseTrack/JHMDB JSON)")
    for n in range(MUTATIONS):
        data, what = _mutated_json(doc, rng)
        path.write_bytes(data)
        tally.run(lambda: load_video_coco(path, tmp_path), _check_sequences, f"mutation {n} ({what})")
    tally.report(record_property)


def _mutated_arrays(arrays: dict, rng) -> tuple[dict, str]:
    arrays = {k: v.copy() for k, v in arrays.items()}
    key = _pick(rng, list(arrays))
    value = arrays[key]
    how = _pick(rng, ["odd", "odd", "shape", "delete", "type"])
    if how == "odd":
        idx = tuple(rng.integers(0, s) for s in value.shape)
        value[idx] = _pick(rng, [np.nan, np.inf, -np.inf, 1e39, 1e300, -1e6, -1.0, 2.0, 0.0])
    elif how == "shape":
        arrays[key] = _pick(rng, [value[:-1], value[:, :-1], value.T, value.ravel(), value[None], value[:0]])
    elif how == "delete":
        del arrays[key]
    else:
        arrays[key] = np.array(["text"], dtype=object)
    return arrays, f"{how} {key}"


def test_fuzzed_penn_action_labels_load_or_raise_input_error(tmp_path, record_property):
    scipy_io = pytest.importorskip("scipy.io", reason="Penn Action labels are .mat files (the train extra)")
    frames = tmp_path / "frames" / "0001"
    frames.mkdir(parents=True)
    for i in range(1, 4):
        cv2.imwrite(str(frames / f"{i:06d}.jpg"), np.zeros((16, 20, 3), np.uint8))
    (tmp_path / "labels").mkdir()
    x = np.tile(np.arange(13, dtype=float), (3, 1)) + np.arange(3)[:, None]
    arrays = {"x": x, "y": x + 5, "visibility": np.ones((3, 13)), "bbox": np.tile([1.0, 2.0, 31.0, 42.0], (3, 1))}
    path = tmp_path / "labels" / "0001.mat"
    scipy_io.savemat(path, arrays)
    original = path.read_bytes()
    rng = np.random.default_rng(37)
    tally = Tally("video (Penn Action .mat)")
    for n in range(MUTATIONS):
        if n % 3 == 0:
            data, what = _mutated_bytes(original, rng)
            path.write_bytes(data)
        else:
            mutated, what = _mutated_arrays(arrays, rng)
            scipy_io.savemat(path, mutated)
        tally.run(lambda: [load_penn_action(tmp_path, "0001")], _check_sequences, f"mutation {n} ({what})")
    tally.report(record_property)


# -- the LSP family (the registry's lsp, lspet and parse) -----------------------------------------------------------
def test_fuzzed_lsp_family_loads_or_raises_input_error(tmp_path, record_property):
    scipy_io = pytest.importorskip("scipy.io", reason="the LSP readers need scipy (the train extra)")
    rng = np.random.default_rng(41)
    base = {}
    for kind in ("lsp", "lspet", "parse"):
        root = tmp_path / kind
        images = root if kind == "parse" else root / "images"
        images.mkdir(parents=True)
        xy = np.stack([rng.uniform(5, 35, (14, 2)), rng.uniform(5, 25, (14, 2))])       # (2, 14, N=2)
        if kind == "lsp":
            joints, variable = np.concatenate([xy, np.zeros((1, 14, 2))]), "joints"      # (3, 14, N)
        elif kind == "lspet":
            joints, variable = np.concatenate([xy, np.ones((1, 14, 2))]).transpose(1, 0, 2), "joints"  # (14, 3, N)
        else:
            joints, variable = xy.transpose(1, 0, 2), "ptsAll"                          # (14, 2, N)
        digits = 5 if kind == "lspet" else 4
        files = [images / f"im{i + 1:0{digits}d}.jpg" for i in range(2)]
        for f in files:
            cv2.imwrite(str(f), np.full((32, 40, 3), 90, np.uint8))
        mat = root / ("labels.mat" if kind == "parse" else "joints.mat")
        scipy_io.savemat(mat, {variable: joints})
        base[kind] = (mat, mat.read_bytes(), variable, joints, files, files[0].read_bytes())
        _check_coco(read_dataset(kind, root))

    tally = Tally("lsp/lspet/parse")
    for n in range(MUTATIONS):
        kind = ("lsp", "lspet", "parse")[n % 3]
        mat, mat_bytes, variable, joints, files, image_bytes = base[kind]
        how = rng.integers(3)
        if how == 0:
            mutated, what = _mutated_arrays({variable: joints}, rng)
            scipy_io.savemat(mat, mutated)
        elif how == 1:
            data, what = _mutated_bytes(mat_bytes, rng)
            mat.write_bytes(data)
        else:
            data, what = _mutated_bytes(image_bytes, rng)
            files[0].write_bytes(data)
            what = f"image {what}"
        before = tally.rejected
        tally.run(lambda: read_dataset(kind, mat.parent), _check_coco, f"mutation {n} of {kind} ({what})")
        if what.startswith("image truncate"):
            assert tally.rejected == before + 1, f"{kind}: an image cut to {len(data)} bytes was read"
        mat.write_bytes(mat_bytes)
        files[0].write_bytes(image_bytes)
    tally.report(record_property)
