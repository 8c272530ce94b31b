import hashlib
import json

import numpy as np

from tfpose.data.synthetic import generate_split


def _digest(folder):
    return hashlib.sha256(b"".join(p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file())).hexdigest()


def test_same_seed_same_files_other_seed_other_files(tmp_path):
    generate_split(tmp_path / "a", "train", 6, (96, 96), 2, seed=1)
    generate_split(tmp_path / "b", "train", 6, (96, 96), 2, seed=1)
    generate_split(tmp_path / "c", "train", 6, (96, 96), 2, seed=2)
    assert _digest(tmp_path / "a") == _digest(tmp_path / "b")
    assert _digest(tmp_path / "a") != _digest(tmp_path / "c")


def test_annotations_are_valid_coco_keypoints(synthetic_root):
    from pycocotools.coco import COCO

    path = synthetic_root / "annotations/person_keypoints_train.json"
    coco = COCO(str(path))
    anns = coco.loadAnns(coco.getAnnIds())
    assert len(anns) >= 24
    for a in anns:
        kp = np.array(a["keypoints"]).reshape(17, 3)
        labelled = kp[:, 2] > 0
        assert a["num_keypoints"] == labelled.sum() >= 3
        assert (kp[labelled, :2] >= 0).all() and (kp[labelled, :2] <= 95).all()
        x, y, w, h = a["bbox"]
        assert 0 < a["area"] <= w * h
    # the person's left is on the image's right for front-facing figures: left shoulders mostly right of right ones
    shoulders = np.array([np.array(a["keypoints"]).reshape(17, 3)[[5, 6], 0] for a in anns])
    assert (shoulders[:, 0] > shoulders[:, 1]).mean() > 0.9
    assert json.loads(path.read_text())["categories"][0]["keypoints"][0] == "nose"
