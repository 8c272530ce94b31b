import numpy as np
import pytest

from tfpose._keras import keras, tf
from tfpose.distill.distiller import Distiller
from tfpose.distill.losses import alpha_kd, keypoint_mse
from tfpose.models import build_model
from tests.conftest import TINY_INPUT, TINY_STUDENT


def test_keypoint_mse_on_hand_made_arrays():
    pred = np.zeros((1, 2, 2, 2), np.float32)
    target = np.zeros_like(pred)
    target[0, 0, 0, 0] = 2.0      # joint 0: squared error 4 in one of 4 cells -> mean 1 -> x0.5 = 0.5
    target[0, :, :, 1] = 1.0      # joint 1: mean squared error 1 -> 0.5
    assert float(keypoint_mse(pred, target)) == pytest.approx(0.5)
    assert float(keypoint_mse(pred, target, np.array([[1.0, 0.0]], np.float32))) == pytest.approx(0.25)


def test_alpha_mixes_ground_truth_and_teacher_terms():
    pred = np.zeros((1, 2, 2, 1), np.float32)
    truth = np.ones_like(pred)            # gt term 0.5
    teacher = np.full_like(pred, 2.0)     # kd term 0.5 * 4 = 2.0
    total, gt, kd = alpha_kd(pred, truth, np.ones((1, 1), np.float32), teacher, 0.8)
    assert float(gt) == pytest.approx(0.5) and float(kd) == pytest.approx(2.0)
    assert float(total) == pytest.approx(0.2 * 0.5 + 0.8 * 2.0)


def _batch(n=4):
    rng = np.random.default_rng(0)
    h, w = TINY_INPUT[1], TINY_INPUT[0]
    images = rng.uniform(0, 255, (n, h, w, 3)).astype(np.float32)
    targets = {"heatmaps": rng.uniform(0, 1, (n, h // 4, w // 4, 17)).astype(np.float32),
               "weights": np.ones((n, 17), np.float32)}
    return tf.data.Dataset.from_tensors((images, targets)).repeat(3)


def test_teacher_is_bit_identical_after_fit_and_student_learns(tmp_path):
    keras.utils.set_random_seed(0)
    teacher = build_model("hourglass", 17, TINY_INPUT, stacks=1, channels=32, depth=2)
    student = build_model("peleenet_duc", 17, TINY_INPUT, **TINY_STUDENT)
    before_teacher = [w.copy() for w in teacher.get_weights()]
    before_student = [w.copy() for w in student.get_weights()]
    distiller = Distiller(student, teacher, alpha=0.5)
    distiller.compile(optimizer=keras.optimizers.Adam(1e-2))
    history = distiller.fit(_batch(), epochs=2, verbose=0)
    for a, b in zip(before_teacher, teacher.get_weights()):
        assert a.tobytes() == b.tobytes()
    assert any(not np.array_equal(a, b) for a, b in zip(before_student, student.get_weights()))
    assert history.history["kd_loss"][-1] > 0
    # what is saved is the student alone
    distiller.student.save(tmp_path / "student.keras")
    loaded = keras.models.load_model(tmp_path / "student.keras", compile=False)
    assert loaded.count_params() == student.count_params() != teacher.count_params() + student.count_params()


def test_without_teacher_it_trains_every_stack_on_ground_truth():
    keras.utils.set_random_seed(0)
    model = build_model("hourglass", 17, TINY_INPUT, stacks=2, channels=32, depth=2, intermediate=True)
    distiller = Distiller(model)
    distiller.compile(optimizer=keras.optimizers.Adam(1e-2))
    history = distiller.fit(_batch(), epochs=3, verbose=0)
    assert history.history["kd_loss"] == [0.0, 0.0, 0.0]
    assert history.history["loss"][-1] < history.history["loss"][0]


@pytest.mark.parametrize("method", ["dskd", "okdhp"])
def test_every_method_trains_the_student_and_leaves_the_teacher_bit_identical(method):
    keras.utils.set_random_seed(0)
    teacher = build_model("hourglass", 17, TINY_INPUT, stacks=1, channels=32, depth=2)
    student = build_model("peleenet_duc", 17, TINY_INPUT, **TINY_STUDENT)
    before_teacher = [w.copy() for w in teacher.get_weights()]
    before_student = [w.copy() for w in student.get_weights()]
    distiller = Distiller(student, teacher, alpha=0.5, method=method, total_steps=6)
    distiller.compile(optimizer=keras.optimizers.Adam(1e-2))
    history = distiller.fit(_batch(), epochs=2, verbose=0)
    for a, b in zip(before_teacher, teacher.get_weights()):
        assert a.tobytes() == b.tobytes()
    assert any(not np.array_equal(a, b) for a, b in zip(before_student, student.get_weights()))
    assert np.isfinite(history.history["loss"][-1]) and history.history["kd_loss"][-1] > 0
    assert int(distiller.step.numpy()) == 6


def test_okdhp_branch_zero_is_the_exported_student_and_the_branches_share_the_encoder():
    from tfpose.distill.okdhp import build_branches, default_branch_point

    keras.utils.set_random_seed(0)
    student = build_model("peleenet_duc", 17, TINY_INPUT, **TINY_STUDENT)
    assert default_branch_point(student) == "duc2_relu"
    branches = build_branches(student, 3)
    x = np.random.default_rng(1).uniform(0, 255, (2, *TINY_INPUT[::-1], 3)).astype(np.float32)
    outs = branches(x)
    assert len(outs) == 3
    np.testing.assert_allclose(outs[0], student(x), atol=1e-6)
    shared = {id(v) for v in student.trainable_variables}
    extra = [v for v in branches.trainable_variables if id(v) not in shared]
    head = sum(int(np.prod(v.shape)) for v in student.trainable_variables
               if v.name.startswith(("duc3", "heatmaps")))
    assert sum(int(np.prod(v.shape)) for v in extra) == 2 * head   # two cloned heads, nothing else


def test_dskd_densely_guides_shallower_stacks_by_deeper_ones_without_a_teacher():
    keras.utils.set_random_seed(0)
    model = build_model("hourglass", 17, TINY_INPUT, stacks=2, channels=32, depth=2, intermediate=True)
    distiller = Distiller(model, method="dskd")
    distiller.compile(optimizer=keras.optimizers.Adam(1e-2))
    history = distiller.fit(_batch(), epochs=1, verbose=0)
    assert history.history["kd_loss"][0] > 0      # the deeper stack guided the first one


def test_linear_kd_schedule_decays_alpha_over_the_steps():
    teacher = build_model("peleenet_duc", 17, TINY_INPUT, **TINY_STUDENT)
    student = build_model("peleenet_duc", 17, TINY_INPUT, **TINY_STUDENT)
    distiller = Distiller(student, teacher, alpha=0.8, kd_schedule="linear", kd_end=0.25, total_steps=4)
    assert float(distiller._alpha()) == pytest.approx(0.8)
    distiller.step.assign(2)
    assert float(distiller._alpha()) == pytest.approx(0.8 * (1 - 0.75 * 0.5))
    distiller.step.assign(4)
    assert float(distiller._alpha()) == pytest.approx(0.2)


def test_precomputed_teacher_heatmaps_in_the_targets_are_used_as_they_are():
    student = build_model("peleenet_duc", 17, TINY_INPUT, **TINY_STUDENT)
    distiller = Distiller(student, teacher=lambda *a, **k: 1 / 0, alpha=1.0)
    images = np.zeros((1, *TINY_INPUT[::-1], 3), np.float32)
    maps = np.full((1, 16, 16, 17), 0.25, np.float32)
    got = distiller.teacher_maps(images, {"teacher_heatmaps": maps})
    np.testing.assert_array_equal(got, maps)


def test_a_parent_adds_its_weighted_heatmap_loss_on_every_joint_and_stays_frozen():
    keras.utils.set_random_seed(0)
    student = build_model("peleenet_duc", 17, TINY_INPUT, **TINY_STUDENT)
    parent = build_model("peleenet_duc", 17, TINY_INPUT, **TINY_STUDENT)
    images, targets = next(iter(_batch()))
    targets["weights"] = tf.zeros_like(targets["weights"])       # the parent's term ignores the labels' weights
    plain = Distiller(student)._loss(images, targets, training=False)
    guided = Distiller(student, parent=parent, parent_weight=0.7)._loss(images, targets, training=False)
    expected = 0.7 * keypoint_mse(student(images, training=False), parent(images, training=False))
    assert float(expected) > 0
    assert float(guided[0]) == pytest.approx(float(plain[0]) + float(expected), rel=1e-5)
    assert float(guided[2]) == pytest.approx(float(expected), rel=1e-5)

    before = [w.copy() for w in parent.get_weights()]
    distiller = Distiller(student, parent=parent)
    distiller.compile(optimizer=keras.optimizers.Adam(1e-2))
    history = distiller.fit(_batch(), epochs=2, verbose=0)
    assert history.history["kd_loss"][-1] < history.history["kd_loss"][0]
    assert all(a.tobytes() == b.tobytes() for a, b in zip(before, parent.get_weights()))
    with pytest.raises(ValueError, match="parent"):
        Distiller(student, parent=parent, method="dskd")


def _tiny_movenet():
    """A tiny MoveNet-shaped model (MobileNetV2 + feature pyramid): its ``fpn_sep2`` is on the heatmap grid."""
    return build_model("mobilenetv2", 17, TINY_INPUT, width=0.35, head="fpn", head_channels=(16, 16, 16, 16))


def test_feature_distillation_trains_a_projection_toward_the_frozen_teachers_features(tmp_path):
    from tfpose.distill.losses import feature_hint
    from tfpose.distill.teachers import feature_teacher

    keras.utils.set_random_seed(0)
    _tiny_movenet().save(tmp_path / "thunder.h5")                 # stands in for movenet-thunder-keras.h5
    teacher = feature_teacher(tmp_path / "thunder.h5", "fpn_sep2", TINY_INPUT)
    student = _tiny_movenet()
    images, targets = next(iter(_batch()))
    plain = Distiller(student)._loss(images, targets, training=False)
    distiller = Distiller(student, feature_teacher=teacher, feature_weight=0.5)
    guided = distiller._loss(images, targets, training=False)
    features = keras.Model(student.input, student.get_layer("fpn_sep2").output)(images)
    hint = 0.5 * feature_hint(distiller.projection(features), teacher(images))
    assert float(hint) > 0
    assert float(guided[0]) == pytest.approx(float(plain[0]) + float(hint), rel=1e-5)

    before = [w.copy() for w in teacher.get_weights()]
    distiller.compile(optimizer=keras.optimizers.Adam(1e-2))
    projection = [w.copy() for w in distiller.projection.get_weights()]
    distiller.fit(_batch(), epochs=3, verbose=0)
    assert all(a.tobytes() == b.tobytes() for a, b in zip(before, teacher.get_weights()))
    assert not np.array_equal(projection[0], distiller.projection.get_weights()[0])
    assert "feature_projection" not in [layer.name for layer in distiller.student.layers]   # not exported
    with pytest.raises(ValueError, match="no layer"):
        Distiller(build_model("peleenet_duc", 17, TINY_INPUT, **TINY_STUDENT), feature_teacher=teacher)
    with pytest.raises(ValueError, match="a feature teacher is for method fpd only, not dskd"):
        Distiller(student, feature_teacher=teacher, method="dskd")
    with pytest.raises(ValueError, match="teacher confidence weights is for method fpd only, not okdhp"):
        Distiller(student, confidence_weights=True, method="okdhp")


def test_the_second_stage_trains_the_head_alone_against_the_student_itself(synthetic_root, tmp_path):
    import tfpose.pipeline as p
    from tfpose.config import load_config

    cfg = load_config(None, ["data.source=coco", f"data.root={synthetic_root}", "codec.input_size=[64,64]",
                             "teacher.source=none", "distill.second_stage_steps=3", "distill.train.batch_size=4"])
    out, codec, skeleton = p.open_run(cfg, tmp_path)
    data = p.load_data(cfg.data, codec, skeleton)
    keras.utils.set_random_seed(0)
    student = _tiny_movenet()
    student.get_layer("block_1_expand").trainable = False          # a flag of its own, which it keeps
    before = {layer.name: [w.copy() for w in layer.get_weights()] for layer in student.layers}
    flags = {layer.name: layer.trainable for layer in student.layers}
    p.second_stage(cfg, data, out, student, None)
    names = [layer.name for layer in student.layers]
    split = names.index("fpn_sep2")
    changed = {layer.name for layer in student.layers
               if any(not np.array_equal(a, b) for a, b in zip(before[layer.name], layer.get_weights()))}
    assert changed and all(names.index(name) > split for name in changed)          # the head alone
    assert "kpt_heatmap_out" in changed
    assert {layer.name: layer.trainable for layer in student.layers} == flags
