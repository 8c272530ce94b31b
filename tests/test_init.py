"""Pretrained students: the applications-built MobileNets, MoveNet's pyramid head, and weights copied by name."""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import shared_path
from tfpose._keras import keras
from tfpose.errors import InputError
from tfpose.models import build_model
from tfpose.models.init import freeze_batchnorm, initialise

MOVENET = ("models", "init", "movenet-lightning-keras.h5")
MOBILENET_V1 = ("models", "init", "mobilenet-v1-1.0-imagenet.weights.h5")


def _crops(size, n=2, seed=0):
    w, h = size
    return np.random.default_rng(seed).uniform(0, 255, (n, h, w, 3)).astype(np.float32)


def test_weights_copy_by_name_between_students_of_any_input_size(tmp_path):
    source = build_model("mobilenetv2", 17, (64, 64), width=0.35, head="fpn")
    for layer in source.layers:          # non-default values everywhere, so a copy cannot pass by chance
        layer.set_weights([np.random.default_rng(len(layer.name)).normal(size=w.shape) for w in layer.get_weights()])
    source.save(tmp_path / "source.h5")
    target = build_model("mobilenetv2", 17, (96, 128), width=0.35, head="fpn")
    report = initialise(target, str(tmp_path / "source.h5"), width=0.35)
    assert not report.fresh and not report.mismatched
    for layer in source.layers:
        for a, b in zip(layer.get_weights(), target.get_layer(layer.name).get_weights()):
            np.testing.assert_array_equal(a, b)


def test_a_file_of_another_family_or_no_file_is_an_error_naming_the_field(tmp_path):
    student = build_model("mobilenetv2", 17, (64, 64), width=0.35, head="fpn")
    with pytest.raises(InputError, match="student.init.*not found"):
        initialise(student, str(tmp_path / "missing.h5"))
    (tmp_path / "junk.h5").write_bytes(b"not hdf5")
    with pytest.raises(InputError, match="student.init"):
        initialise(student, str(tmp_path / "junk.h5"))
    other = build_model("peleenet_duc", 17, (64, 64), growth=8, duc_channels=(16, 16, 16))
    other.save(tmp_path / "pelee.h5")
    with pytest.raises(InputError, match="no layer .* matches"):
        initialise(student, str(tmp_path / "pelee.h5"))
    with pytest.raises(InputError, match="encoder weights fit"):
        initialise(other, "imagenet")


def test_movenet_file_gives_movenets_heatmaps_through_the_bounded_sigmoid():
    path = shared_path(*MOVENET)
    movenet = keras.models.load_model(path, compile=False)
    student = build_model("mobilenetv2", 17, (192, 192), head="fpn")
    report = initialise(student, str(path))
    assert not report.fresh and not report.mismatched and len(report.copied) == 113
    for layer in movenet.layers:
        name = {"Conv_1_od": "Conv_1", "Conv_1_od_bn": "Conv_1_bn"}.get(layer.name, layer.name)
        if layer.weights and name in report.copied:
            for a, b in zip(layer.get_weights(), student.get_layer(name).get_weights()):
                np.testing.assert_array_equal(a, b)
    crops = _crops((192, 192))
    logits = movenet.predict_on_batch(crops / 127.5 - 1)[1]           # kpt_heatmap_out
    expected = 1 / (1 + np.exp(-np.clip(logits, -6, 6)))
    np.testing.assert_allclose(student.predict_on_batch(crops), expected, atol=1e-4)
    # another input size takes every layer too
    assert not initialise(build_model("mobilenetv2", 17, (160, 224), head="fpn"), str(path)).fresh


def test_imagenet_mobilenet_v1_file_loads_into_the_applications_encoder():
    path = shared_path(*MOBILENET_V1)
    student = build_model("mobilenetv1", 17, (96, 128), head="fpn")
    report = initialise(student, str(path))
    assert len(report.copied) == 54 and all(n.startswith(("fpn", "kpt")) for n in report.fresh)
    reference = keras.applications.MobileNet(input_shape=(128, 96, 3), include_top=False, weights=None)
    reference.load_weights(path)
    crops = _crops((96, 128))
    features = keras.Model(student.input, student.get_layer("conv_pw_13_relu").output).predict_on_batch(crops)
    np.testing.assert_allclose(features, reference.predict_on_batch(crops / 127.5 - 1), atol=1e-4)


def test_frozen_batchnorm_trains_like_it_infers():
    student = build_model("mobilenetv2", 17, (64, 64), width=0.35, head="fpn")
    crops = _crops((64, 64), n=4)
    assert not np.allclose(student(crops, training=True), student(crops, training=False), atol=1e-5)
    assert freeze_batchnorm(student) > 0
    np.testing.assert_allclose(student(crops, training=True), student(crops, training=False), atol=1e-5)
    assert not any(layer.trainable_weights for layer in student.layers
                   if isinstance(layer, keras.layers.BatchNormalization))
