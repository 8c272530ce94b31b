"""LSP, LSPET and PARSE readers (real files from ../shared/data/lsp, and small synthetic .mat files) and the
dataset-format registry."""

import contextlib
import io
import json

import cv2
import numpy as np
import pytest

scipy_io = pytest.importorskip("scipy.io", reason="the LSP readers need scipy (the train extra)")

from tests.conftest import shared_path  # noqa: E402
from tfpose.data.coco import CocoDataset  # noqa: E402
from tfpose.data.formats import _REGISTRY, register_format  # noqa: E402
from tfpose.data.readers import list_formats, read_dataset  # noqa: E402
from tfpose.data.lsp import BOX_MARGIN, main, read_joints, read_lsp, read_lspet, read_parse  # noqa: E402
from tfpose.errors import InputError  # noqa: E402
from tfpose.evaluation import Predictions, load_eval_set, score_predictions  # noqa: E402
from tfpose.metrics import coco_keypoint_eval  # noqa: E402
from tfpose.skeleton import COCO17  # noqa: E402

# LSP index -> COCO-17 index, written out by hand from the two READMEs (not derived from the reader's table)
LSP_TO_COCO = {0: 16, 1: 14, 2: 12, 3: 11, 4: 13, 5: 15, 6: 10, 7: 8, 8: 6, 9: 5, 10: 7, 11: 9}
FACE = [0, 1, 2, 3, 4]
LIMBS = sorted(LSP_TO_COCO.values())


@pytest.fixture(scope="module")
def lsp_root():
    return shared_path("data/lsp/lsp_dataset")


@pytest.fixture(scope="module")
def lspet_root():
    return shared_path("data/lsp/lspet_dataset")


@pytest.fixture(scope="module")
def parse_root():
    return shared_path("data/lsp/parse")


@pytest.fixture(scope="module")
def lsp(lsp_root):
    return read_lsp(lsp_root)


@pytest.fixture(scope="module")
def lspet(lspet_root):
    return read_lspet(lspet_root)


@pytest.fixture(scope="module")
def parse_all(parse_root):
    return read_parse(parse_root)


def _mat(root, name):
    return scipy_io.loadmat(str(root / name))


def _vis(dataset: CocoDataset) -> np.ndarray:
    return np.stack([p.visibility for p in dataset.persons])


# --- the real files ---------------------------------------------------------------------------------------------

def test_counts(lsp, lspet, parse_all, parse_root):
    assert (len(lsp.images), len(lsp.persons)) == (1000, 1000)
    assert (len(lspet.images), len(lspet.persons)) == (7000, 7000)
    train, test = read_parse(parse_root, split="train"), read_parse(parse_root, split="test")
    assert (len(train.persons), len(test.persons), len(parse_all.persons)) == (100, 205, 305)
    assert sorted(train.images) == list(range(1, 101)) and sorted(test.images) == list(range(101, 306))
    assert test.raw["images"][0]["file_name"] == "im0101.jpg"


@pytest.mark.parametrize("lsp_index, coco_index", sorted(LSP_TO_COCO.items()))
def test_lsp_joints_land_in_their_coco_slot(lsp, lsp_root, lsp_index, coco_index):
    joints = _mat(lsp_root, "joints.mat")["joints"]          # (3, 14, N)
    person = lsp.persons[0]
    assert person.image_path.name == "im0001.jpg"
    np.testing.assert_allclose(person.keypoints[coco_index], joints[:2, lsp_index, 0], atol=0.01)


def test_right_ankle_is_coco_16_and_face_is_unlabelled(lsp, lspet, parse_all, lspet_root):
    assert COCO17.keypoints[16] == "right_ankle"
    joints = _mat(lspet_root, "joints.mat")["joints"]        # (14, 3, N): the other axis order
    visible = np.flatnonzero(joints[0, 2] == 1)[0]
    np.testing.assert_allclose(lspet.persons[visible].keypoints[16], joints[0, :2, visible], atol=0.01)
    for ds in (lsp, lspet, parse_all):
        assert (_vis(ds)[:, FACE] == 0).all()
        assert (np.stack([p.keypoints for p in ds.persons])[:, FACE] == 0).all()


def test_visibility_matches_the_readme(lsp, lspet, parse_all, lsp_root, lspet_root):
    v = _vis(lsp)[:, LIMBS]
    assert 0.05 < (v == 1).mean() < 0.10 and (v == 0).mean() < 0.001   # ~7 % of joints occluded, all labelled
    flags = _mat(lsp_root, "joints.mat")["joints"][2]       # (14, N): occluded joints are exactly the v=1 ones
    assert ((flags[:12].T == 1) == (_vis(lsp)[:, [LSP_TO_COCO[j] for j in range(12)]] == 1)).all()
    v = _vis(lspet)[:, LIMBS]
    assert 0.85 < (v == 2).mean() < 0.91                    # ~88 % visible
    flags = _mat(lspet_root, "joints.mat")["joints"][:12, 2].T   # (N, 12)
    assert (_vis(lspet)[:, [LSP_TO_COCO[j] for j in range(12)]][flags == 0] < 2).all()
    assert (_vis(parse_all)[:, LIMBS] == 2).mean() > 0.99


def test_box_contains_every_in_image_joint_and_stays_in_the_image(lsp, lspet, parse_all, lsp_root, lspet_root,
                                                                  parse_root):
    for ds, (joints, flags) in ((lsp, read_joints(lsp_root / "joints.mat", "lsp")),
                                (lspet, read_joints(lspet_root / "joints.mat", "lspet")),
                                (parse_all, read_joints(parse_root / "labels.mat", "parse"))):
        for p in ds.persons:
            im = ds.images[p.image_id]
            x, y, w, h = p.box
            assert x >= 0 and y >= 0 and x + w <= im["width"] + 0.01 and y + h <= im["height"] + 0.01
            labelled = p.keypoints[p.visibility > 0]
            assert ((labelled >= (x, y)) & (labelled <= (x + w + 0.01, y + h + 0.01))).all()
            all14 = joints[p.image_id - 1]              # neck and head top bound the person too
            inside = ((all14 >= 0) & (all14 < (im["width"], im["height"]))).all(-1)
            if ds is lspet:                             # LSPET's unlabelled placeholders, e.g. (0, 0)
                inside &= ~((flags[p.image_id - 1] == 0) & (all14 == 0).any(-1))
            assert (all14[inside] >= (x - 0.01, y - 0.01)).all()
            assert (all14[inside] <= (x + w + 0.01, y + h + 0.01)).all()
        boxes = np.array([p.box for p in ds.persons])
        assert (boxes[:, 2] > 1).all() and (boxes[:, 3] > 1).all()


def test_raw_is_coco_for_pycocotools_and_perfect_predictions_score_ap_1(parse_root):
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    ds = read_parse(parse_root, split="test")
    raw = json.loads(json.dumps(ds.raw))                       # JSON-serialisable as written
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO()
        gt.dataset = raw
        gt.createIndex()
        perfect = [{"image_id": a["image_id"], "category_id": 1, "keypoints": a["keypoints"], "score": 1.0}
                   for a in raw["annotations"]]
        ev = COCOeval(gt, gt.loadRes(perfect), "keypoints")
        ev.evaluate(), ev.accumulate(), ev.summarize()
    assert len(gt.getAnnIds()) == 205 and gt.loadCats(1)[0]["keypoints"] == list(COCO17.keypoints)
    assert ev.stats[0] == pytest.approx(1.0)
    assert coco_keypoint_eval(raw, perfect, COCO17.oks_sigmas)["AP"] == pytest.approx(1.0)
    # a wrong reading (left and right exchanged) must score far lower: the metric looks at the mapping
    flip = COCO17.flip_index
    swapped = [{**r, "keypoints": np.asarray(r["keypoints"]).reshape(17, 3)[flip].ravel().tolist()} for r in perfect]
    assert coco_keypoint_eval(raw, swapped, COCO17.oks_sigmas)["AP"] < 0.5


def test_evaluation_scores_the_records_and_the_written_json(parse_root, tmp_path):
    from tfpose.artifacts import write_json

    ds = read_parse(parse_root, split="train")
    truth = np.stack([p.keypoints for p in ds.persons])
    preds = Predictions(ds.persons, truth, np.ones(truth.shape[:2]), np.zeros((len(truth), 1, 1, 3), np.uint8))
    scores = score_predictions(preds, ds, COCO17)
    assert scores["AP"] == pytest.approx(1.0) and scores["PCK@0.2"] == pytest.approx(1.0)
    assert scores["persons"] == 100
    path = write_json(tmp_path / "parse_train.json", ds.raw)
    eval_set = load_eval_set(path, ds.image_dir)                # the TF-free validator's reader
    assert len(eval_set.persons) == 100
    assert [p.box for p in eval_set.persons] == [p.box for p in ds.persons]


def test_swap_left_right_reads_the_other_side(parse_root):
    pts = _mat(parse_root, "labels.mat")["ptsAll"]            # (14, 2, N)
    as_is, swapped = read_parse(parse_root, split="train"), read_parse(parse_root, split="train", swap_left_right=True)
    np.testing.assert_allclose(as_is.persons[0].keypoints[16], pts[0, :, 0], atol=0.01)     # default: LSP order
    np.testing.assert_allclose(swapped.persons[0].keypoints[16], pts[5, :, 0], atol=0.01)


def test_lspet_loads_quickly(lspet_root):
    import time

    start = time.perf_counter()
    read_lspet(lspet_root)
    assert time.perf_counter() - start < 20    # 0.6-1.3 s here (warm, cold cache): sizes come from the JPEG headers


def test_cli_writes_parse_test_json(parse_root, tmp_path, capsys):
    out = tmp_path / "parse_test.json"
    assert main(["--format", "parse", "--split", "test", "--root", str(parse_root), "--out", str(out)]) == 0
    raw = json.loads(out.read_text())
    assert len(raw["images"]) == 205 and (parse_root / raw["images"][0]["file_name"]).is_file()
    assert str(parse_root.resolve()) in capsys.readouterr().out
    assert main(["--format", "parse", "--split", "tset", "--root", str(parse_root), "--out", str(out)]) == 2
    assert "did you mean 'test'" in capsys.readouterr().err


# --- the registry ---------------------------------------------------------------------------------------------

def test_registry_round_trip(parse_root, monkeypatch):
    assert {"coco", "lsp", "lspet", "parse"} <= {f.name for f in list_formats()}
    via = read_dataset("parse", parse_root, split="test")
    direct = read_parse(parse_root, split="test")
    assert via.raw == direct.raw

    monkeypatch.setitem(_REGISTRY, "toy", None)   # so that monkeypatch removes the toy format after the test
    seen = {}

    @register_format("toy", splits=("all", "odd"))
    def read_toy(root, annotations=None, images=None, split="all", num_keypoints=17, flavour="plain"):
        seen.update(root=root, split=split, flavour=flavour)
        return direct

    assert read_dataset("toy", parse_root, split="odd", flavour="salt") is direct
    assert seen == {"root": parse_root, "split": "odd", "flavour": "salt"}
    with pytest.raises(InputError, match="no option 'flavor'; did you mean 'flavour'"):
        read_dataset("toy", parse_root, flavor="salt")
    with pytest.raises(InputError, match="no split 'even'; choose from all, odd"):
        read_dataset("toy", parse_root, split="even")


def test_registry_reads_coco():
    ann = shared_path("data/coco-mini-train/annotations/person_keypoints_train2017.json")
    root = ann.parent.parent
    ds = read_dataset("coco", root, annotations="annotations/person_keypoints_train2017.json", images="train2017")
    assert len(ds.labelled()) == 86
    train = read_dataset("coco", root, split="train", annotations="annotations/person_keypoints_train2017.json",
                         images="train2017")
    assert 0 < len(train.images) < len(ds.images)


@pytest.mark.parametrize("call, match", [
    (lambda r: read_dataset("lps", r), "unknown dataset format 'lps'; did you mean 'lsp'"),
    (lambda r: read_dataset("parse", r, split="val"), "no split 'val'"),
    (lambda r: read_dataset("lsp", r, split="test"), "no split 'test'"),
    (lambda r: read_dataset("parse", r, swap="yes"), "no option 'swap'"),
    (lambda r: read_dataset("coco", r), "needs annotations="),
    (lambda r: read_dataset("parse", r, num_keypoints=16), "num_keypoints must be 17"),
])
def test_registry_errors_name_the_nearest_choice(tmp_path, call, match):
    with pytest.raises(InputError, match=match):
        call(tmp_path)


def test_register_format_checks_the_signature():
    with pytest.raises(TypeError, match="uniform parameters"):
        register_format("bad")(lambda root: None)
    assert "bad" not in _REGISTRY


# --- small synthetic files: exact boxes and bad input -------------------------------------------------------------

def _write_set(root, joints, kind="lsp", sizes=None, variable=None, compress=False):
    """A tiny LSP-layout set: ``joints`` in the file's own axis order, one 64 x 48 (W x H) JPEG per person."""
    root.mkdir(parents=True, exist_ok=True)
    images = root if kind == "parse" else root / "images"
    images.mkdir(exist_ok=True)
    n = np.asarray(joints).shape[-1] if np.asarray(joints).ndim == 3 else 1
    digits = 5 if kind == "lspet" else 4
    for i in range(n):
        w, h = (sizes or {}).get(i, (64, 48))
        cv2.imwrite(str(images / f"im{i + 1:0{digits}d}.jpg"), np.full((h, w, 3), 128, np.uint8))
    name = "labels.mat" if kind == "parse" else "joints.mat"
    variable = variable or ("ptsAll" if kind == "parse" else "joints")
    scipy_io.savemat(str(root / name), {variable: joints}, do_compression=compress)
    return root / name


def _lsp_joints(n=2, seed=0):
    """(3, 14, n): x in [10, 50], y in [8, 40] of a 64 x 48 image; flags 0 except joint 7 (right elbow) of person 1."""
    rng = np.random.default_rng(seed)
    j = np.zeros((3, 14, n))
    j[0] = rng.uniform(10, 50, (14, n))
    j[1] = rng.uniform(8, 40, (14, n))
    j[2, 7, 0] = 1
    return j


def test_synthetic_lsp_box_visibility_and_image_size(tmp_path):
    j = _lsp_joints()
    j[:2, 13, 1] = (70.0, 5.0)            # person 2's head top lies right of its 64-px-wide image
    _write_set(tmp_path / "s", j)
    ds = read_lsp(tmp_path / "s")
    p1, p2 = ds.persons
    assert ds.images[1]["width"] == 64 and ds.images[1]["height"] == 48
    assert p1.visibility[8] == 1 and p1.visibility[6] == 2                   # right elbow occluded, shoulder not
    xy = j[:2, :, 0].T
    lo, hi = xy.min(0), xy.max(0)
    pad = BOX_MARGIN * (hi - lo)
    x0, y0 = np.maximum(lo - pad, 0)
    x1, y1 = np.minimum(hi + pad, (64, 48))
    np.testing.assert_allclose(p1.box, (x0, y0, x1 - x0, y1 - y0), atol=0.01)
    assert p1.area == pytest.approx(p1.box[2] * p1.box[3], abs=0.01)
    inside = j[:2, :13, 1].T                                                    # without the head top
    assert p2.box[0] + p2.box[2] < 64 and p2.box[0] + p2.box[2] == pytest.approx(
        min(64, inside[:, 0].max() + BOX_MARGIN * np.ptp(inside[:, 0])), abs=0.01)


def test_synthetic_lspet_placeholders_and_outside_points_are_unlabelled(tmp_path):
    j = _lsp_joints().transpose(1, 0, 2).copy()      # (14, 3, n): LSPET's order
    j[:, 2] = 1
    j[0, :, 0] = (0.0, 0.0, 0)                       # right ankle: LSPET's "not labelled" placeholder (0, 0)
    j[1, :, 0] = (30.0, 20.0, 0)                     # right knee: hidden but inside the image -> v=1
    j[2, :, 0] = (90.0, 20.0, 1)                     # right hip: flagged visible but outside -> v=0
    _write_set(tmp_path / "e", j, kind="lspet")
    p = read_lspet(tmp_path / "e").persons[0]
    assert (p.visibility[16], p.visibility[14], p.visibility[12], p.visibility[11]) == (0, 1, 0, 2)
    assert (p.keypoints[[16, 12]] == 0).all()
    assert p.box[0] > 0                              # the placeholder at x=0 did not stretch the box


def test_synthetic_parse_split_and_axis_order(tmp_path):
    pts = np.random.default_rng(1).uniform(10, 40, (14, 2, 3))
    _write_set(tmp_path / "p", pts, kind="parse")
    ds = read_parse(tmp_path / "p")
    assert len(ds.persons) == 3
    np.testing.assert_allclose(ds.persons[2].keypoints[9], pts[11, :, 2], atol=0.01)   # left wrist
    assert len(read_parse(tmp_path / "p", split="test").persons) == 0                 # fewer than 100: all train


def _message(excinfo) -> str:
    return str(excinfo.value)


@pytest.mark.parametrize("make, field, match", [
    (lambda r: _write_set(r, _lsp_joints()[:, :13]), "joints", r"expected shape \(3, 14, N\) or \(14, 3, N\)"),
    (lambda r: _write_set(r, np.zeros((2, 14, 3))), "joints", r"got \(2, 14, 3\)"),
    (lambda r: _write_set(r, _lsp_joints(), variable="points"), "joints", r"missing; the file holds \['points'\]"),
    (lambda r: _write_set(r, np.where(np.arange(14)[None, :, None] == 4, np.nan, _lsp_joints())), "joints",
     "non-finite numbers, the first at person 1, joint left_knee"),
    (lambda r: _write_set(r, np.where(np.arange(3)[:, None, None] == 2, 2.0, _lsp_joints())), "joints",
     "flags must be 0 or 1, got 2"),
    (lambda r: _write_set(r, np.array(["a string"], dtype=object)), "joints", "expected a numeric array"),
    (lambda r: _write_set(r, np.zeros((3, 14, 0))), "joints", "N >= 1"),
])
def test_bad_mat_is_an_input_error_naming_file_and_field(tmp_path, make, field, match):
    path = make(tmp_path / "s")
    with pytest.raises(InputError, match=match) as e:
        read_lsp(tmp_path / "s")
    assert e.value.field == field and str(path) in _message(e)


def test_missing_and_truncated_files(tmp_path):
    with pytest.raises(InputError, match="annotation file not found") as e:
        read_lsp(tmp_path / "nowhere")
    assert str(tmp_path / "nowhere" / "joints.mat") in _message(e)

    path = _write_set(tmp_path / "t", _lsp_joints())
    data = path.read_bytes()
    for cut in (10, 150, len(data) - 7):
        path.write_bytes(data[:cut])
        with pytest.raises(InputError, match="not a readable MATLAB file|missing|expected") as e:
            read_lsp(tmp_path / "t")
        assert str(path) in _message(e)

    path = _write_set(tmp_path / "v", _lsp_joints())
    data = bytearray(path.read_bytes())
    data[124:126] = b"\x00\x07"            # well-formed tags, but a version scipy refuses with a ValueError
    path.write_bytes(bytes(data))
    with pytest.raises(InputError, match="not a readable MATLAB file .ValueError: Unknown mat file type") as e:
        read_lsp(tmp_path / "v")
    assert str(path) in _message(e)

    path = _write_set(tmp_path / "m", _lsp_joints(n=3))
    (tmp_path / "m" / "images" / "im0002.jpg").unlink()
    with pytest.raises(InputError, match="image not found") as e:
        read_lsp(tmp_path / "m")
    assert "im0002.jpg" in _message(e)

    _write_set(tmp_path / "c", _lsp_joints(n=1))
    (tmp_path / "c" / "images" / "im0001.jpg").write_bytes(b"not an image")
    with pytest.raises(InputError, match="cannot be decoded"):
        read_lsp(tmp_path / "c")


def test_a_truncated_image_is_rejected_at_load(tmp_path):
    _write_set(tmp_path / "s", _lsp_joints(n=2))
    image = tmp_path / "s" / "images" / "im0002.jpg"
    whole = image.read_bytes()
    image.write_bytes(whole[:len(whole) // 2])         # the header, and so the size, is still readable
    with pytest.raises(InputError, match="truncated") as e:
        read_lsp(tmp_path / "s")
    assert e.value.path == image


def test_a_variable_written_twice_is_rejected(tmp_path):
    path = _write_set(tmp_path / "s", _lsp_joints(n=2))
    first = path.read_bytes()
    _write_set(tmp_path / "s", _lsp_joints(n=2, seed=1))
    path.write_bytes(first + path.read_bytes()[128:])  # two 'joints' in one file: scipy would keep the second
    with pytest.raises(InputError, match="two variables of this name") as e:
        read_lsp(tmp_path / "s")
    assert e.value.path == path and e.value.field == "joints"


@pytest.mark.parametrize("compress", [False, True])
def test_fuzzed_mat_files_raise_only_input_errors(tmp_path, compress):
    path = _write_set(tmp_path / "f", _lsp_joints(n=3), compress=compress)
    original = path.read_bytes()
    rng = np.random.default_rng(2024 + compress)
    outcomes = {"read": 0, "InputError": 0}
    for _ in range(300):
        data = bytearray(original)
        how = rng.integers(4)
        if how == 0:       # overwrite a few bytes
            for pos in rng.integers(0, len(data), rng.integers(1, 8)):
                data[pos] = int(rng.integers(256))
        elif how == 1:     # truncate
            data = data[:rng.integers(0, len(data))]
        elif how == 2:     # insert junk
            pos = int(rng.integers(0, len(data)))
            data[pos:pos] = rng.integers(0, 256, int(rng.integers(1, 32)), dtype=np.uint8).tobytes()
        else:              # flip bits in the header and tag area, where sizes and types live
            for pos in rng.integers(116, min(len(data), 200), 3):
                data[pos] ^= 1 << int(rng.integers(8))
        path.write_bytes(bytes(data))
        try:
            ds = read_lsp(tmp_path / "f")
        except InputError:
            outcomes["InputError"] += 1
        else:
            assert isinstance(ds, CocoDataset)
            outcomes["read"] += 1
    assert outcomes["InputError"] > 100 and outcomes["read"] > 0, outcomes
