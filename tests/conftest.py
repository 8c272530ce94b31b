"""Shared fixtures: small real artifacts built once per session (a synthetic dataset, a tiny exported model)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("TFPOSE_SHARED", ROOT.parent / "shared"))
TINY_INPUT = (64, 64)   # (W, H)
TINY_STUDENT = dict(growth=16, stage_layers=(1, 1, 1, 1), bottleneck_widths=(1, 1, 2, 2), duc_channels=(32, 16, 16))


# what a phone or a Raspberry Pi does not have: the device path and every process it starts must do without them
DEVICE_ABSENT = ("tensorflow", "tf_keras", "keras", "tensorflow_model_optimization", "matplotlib")
BLOCKER = f"""
import sys

class _Block:
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in {DEVICE_ABSENT!r}:
            raise ImportError('blocked: ' + name)

sys.meta_path.insert(0, _Block())
"""


def run_without_tensorflow(workdir: Path, call: str, timeout: int = 300) -> subprocess.CompletedProcess:
    """Run the Python source ``call``, which sets ``code`` (an exit status), in a fresh process where none of
    ``DEVICE_ABSENT`` can be imported; assert that it exits 0 and imported none of them."""
    site = workdir / "site"
    site.mkdir(parents=True, exist_ok=True)
    (site / "sitecustomize.py").write_text(BLOCKER)
    script = "import sys\n" + textwrap.dedent(call) + textwrap.dedent(f"""
        assert not any(m.split('.')[0] in {DEVICE_ABSENT!r} for m in sys.modules), 'imported'
        sys.exit(code)
    """)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(ROOT)])}
    run = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=timeout)
    assert run.returncode == 0, run.stderr[-3000:]
    return run


def shared_path(*parts: str) -> Path:
    """A file under ../shared, or a skip that says why (a fresh clone has no ../shared)."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} is absent: the real-data and model fixtures live in ../shared beside the project")
    return path


@pytest.fixture(scope="session")
def synthetic_root(tmp_path_factory) -> Path:
    from tfpose.data.synthetic import ensure_synthetic

    root = tmp_path_factory.mktemp("synthetic")
    return ensure_synthetic(root, num_train=24, num_val=8, image_size=(96, 96), max_people=2, seed=3)


@pytest.fixture(scope="session")
def tiny_export(synthetic_root, tmp_path_factory):
    """A tiny PeleeNet-DUC student, trained a few steps on synthetic crops and exported to int8 with metadata."""
    from tfpose._keras import keras
    from tfpose.codec import HeatmapCodec
    from tfpose.config import ExportConfig
    from tfpose.data.coco import load_coco
    from tfpose.data.samples import CropSampler
    from tfpose.export import export_tflite
    from tfpose.models import build_model
    from tfpose.skeleton import COCO17

    keras.utils.set_random_seed(0)
    codec = HeatmapCodec(TINY_INPUT, 4, 2.0)
    train = load_coco(synthetic_root / "annotations/person_keypoints_train.json", synthetic_root / "images/train")
    sampler = CropSampler(train.labelled(), codec, COCO17.flip_index)
    samples = [sampler.sample(i) for i in range(len(sampler))]
    crops = np.stack([s.crop for s in samples])
    model = build_model("peleenet_duc", 17, TINY_INPUT, **TINY_STUDENT)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="mse")
    model.fit(crops.astype(np.float32), np.stack([s.heatmaps for s in samples]), epochs=2, batch_size=8, verbose=0)
    out = tmp_path_factory.mktemp("export") / "tiny_int8.tflite"
    export_tflite(model, out, codec, COCO17, 1.25, ExportConfig(calibration_samples=16, reference_samples=8),
                  crops[:16].astype(np.float32), crops[:8], np.stack([s.weights for s in samples[:8]]))
    return {"path": out, "model": model, "codec": codec, "crops": crops, "root": synthetic_root}
