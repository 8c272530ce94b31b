"""Channel pruning: the narrower graph computes what the original computes with those channels zeroed, MACs fall
to the target, saliency sees a dead channel, and the result converts to full int8 and runs in ai-edge-litert."""

import numpy as np
import pytest

TINY = dict(width=0.35, head="fpn", head_channels=(16, 16, 16, 16))


@pytest.fixture(scope="module")
def tiny():
    """A tiny MobileNetV2 + pyramid (residual Adds, depthwise and separable convs, bilinear laterals) whose
    BatchNorms and biases are random, so a channel removed wrongly changes the output; its heatmap logits are
    scaled to about +-2."""
    from tfpose._keras import keras, tf
    from tfpose.models import build_model

    keras.utils.set_random_seed(0)
    model = build_model("mobilenetv2", 17, (64, 64), **TINY)
    rng = np.random.default_rng(0)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            c = layer.gamma.shape[0]
            layer.set_weights([rng.uniform(0.5, 1.5, c), rng.normal(0, 0.2, c), rng.normal(0, 0.2, c),
                               rng.uniform(0.5, 2.0, c)])
        elif getattr(layer, "use_bias", False):
            weights = layer.get_weights()
            layer.set_weights([*weights[:-1], rng.normal(0, 0.1, weights[-1].shape)])
    crops = rng.integers(0, 256, (16, 64, 64, 3)).astype(np.float32)
    # logits inside the bounded sigmoid's +-6, where the deployed (inference-mode) graph passes gradients
    head = model.get_layer("kpt_heatmap_out")
    kernel, bias = head.get_weights()
    head.set_weights([kernel / (2 * logits(model, crops).std()), bias])
    targets = {"heatmaps": rng.random((16, 16, 16, 17)).astype(np.float32), "weights": np.ones((16, 17), np.float32)}
    return model, crops, tf.data.Dataset.from_tensor_slices((crops, targets)).batch(8)


def logits(model, crops):
    """The heatmap logits (before the bounded sigmoid, which would hide differences where it saturates)."""
    from tfpose._keras import keras

    return keras.Model(model.input, model.get_layer("kpt_heatmap_out").output).predict(crops, verbose=0)


def masked_copy(model, removed: dict[str, list[int]]):
    """``model`` with the removed output channels of every layer zeroed: conv filters and biases, BatchNorm scale
    and offset, so each removed channel is exactly 0 wherever it flows."""
    from tfpose._keras import keras
    from tfpose.finetune import copy_model

    copy = copy_model(model)
    for name, idx in removed.items():
        layer = copy.get_layer(name)
        w = layer.get_weights()
        if not w:
            continue
        if isinstance(layer, keras.layers.BatchNormalization):
            w[0][idx] = 0
            w[1][idx] = 0
        elif isinstance(layer, (keras.layers.DepthwiseConv2D, keras.layers.Conv2DTranspose)):
            w[0][:, :, idx] = 0       # (kh, kw, C, 1) and (kh, kw, C_out, C_in)
            w[1:] = [b * np.isin(np.arange(b.size), idx, invert=True) for b in w[1:]]
        else:   # Conv2D, SeparableConv2D (pointwise is the last kernel): output channels on the last axis
            kernel = 1 if isinstance(layer, keras.layers.SeparableConv2D) else 0
            w[kernel][..., idx] = 0
            w[kernel + 1:] = [b * np.isin(np.arange(b.size), idx, invert=True) for b in w[kernel + 1:]]
        layer.set_weights(w)
    return copy


def test_channel_graph_ties_residual_stages_and_keeps_the_heatmap_channels(tiny):
    from tfpose.structured_prune import channel_graph

    model, _, _ = tiny
    graph = channel_graph(model)
    names = graph.group_names
    assert "block_3_project+block_4_project+block_5_project" in names        # one residual stage, tied by Adds
    assert "block_4_expand" in names and "fpn_conv2d+fpn_conv2d_1" in names
    assert graph.fixed[graph.channels["kpt_heatmap_out"]].all()
    assert graph.fixed[graph.channels["image"]].all()
    # the expansion's channels run through the depthwise conv and its BatchNorm into the projection
    assert np.array_equal(graph.channels["block_4_expand"], graph.channels["block_4_depthwise_relu"])
    assert graph.macs(np.ones(graph.size, bool)) == pytest.approx(count(model))


def count(model):
    from tfpose.flops import count_macs

    return count_macs(model)


@pytest.mark.parametrize("criterion", ["magnitude", "fisher"])
def test_pruned_graph_computes_the_masked_original(tiny, criterion):
    from tfpose.structured_prune import structured_prune

    model, crops, data = tiny
    before = [w.copy() for w in model.get_weights()]
    result = structured_prune(model, ratio=0.5, criterion=criterion, data=data, batches=2)
    assert all(np.array_equal(a, b) for a, b in zip(before, model.get_weights())), "the input model was changed"
    assert result.model.count_params() < 0.6 * model.count_params()
    assert "block_4_expand" in result.removed and "block_4_depthwise_BN" in result.removed
    pruned, masked, original = logits(result.model, crops), logits(masked_copy(model, result.removed), crops), \
        logits(model, crops)
    scale = np.abs(original).max()
    assert np.abs(pruned - masked).max() < 1e-5 * scale
    assert np.abs(pruned - original).max() > 1e-2 * scale, "removing half the channels changed nothing"


def test_macs_fall_to_the_target_in_multiples_of_the_divisor(tiny):
    from tfpose.structured_prune import structured_prune

    model, _, data = tiny
    target = 0.6 * count(model)
    result = structured_prune(model, target_macs=target, criterion="fisher", data=data, batches=2, divisor=8)
    assert result.macs_before == count(model)
    assert 0.9 * target <= result.macs_after == count(result.model) <= target
    assert all(after % 8 == 0 or after == before for before, after in result.widths.values()), result.widths
    uniform = structured_prune(model, target_macs=target, criterion="magnitude", allocation="uniform")
    assert 0.8 * target <= uniform.macs_after <= target and 0 < uniform.ratio < 1


def test_fisher_saliency_finds_a_dead_channel(tiny):
    """The most salient expansion channel of a block, once the BatchNorm before its projection outputs 0,
    contributes nothing: its Fisher score drops to 0 and it goes first."""
    from tfpose.finetune import copy_model
    from tfpose.structured_prune import allocate, channel_graph, gate_gradients

    model, _, data = tiny
    graph = channel_graph(model)
    group = graph.groups[graph.group_names.index("block_4_expand")]
    per_crop = gate_gradients(model, graph, data, 2)
    assert per_crop.shape == (16, graph.size)
    fisher = 0.5 * np.mean(per_crop ** 2, axis=0)
    position = int(np.argmax(fisher[graph.channels["block_4_expand"]]))
    channel = graph.channels["block_4_expand"][position]
    assert fisher[channel] > 0

    dead = copy_model(model)
    norm = dead.get_layer("block_4_depthwise_BN")
    gamma, beta, mean, var = norm.get_weights()
    gamma[position], beta[position] = 0.0, 0.0
    norm.set_weights([gamma, beta, mean, var])
    fisher = 0.5 * np.mean(gate_gradients(dead, graph, data, 2) ** 2, axis=0)
    assert fisher[channel] == 0.0
    live = np.count_nonzero(fisher[group])
    keep, _ = allocate(graph, fisher, ratio=live / len(group), divisor=1)
    assert not keep[channel] and keep[group].sum() == live


def test_pruned_model_converts_to_full_int8_and_runs_in_litert(tiny, tmp_path):
    from tflite.convert import convert, op_types
    from tflite.macs import count_ops_macs
    from tflite.runtime import TFLiteModel
    from tfpose.structured_prune import structured_prune

    model, crops, _ = tiny
    result = structured_prune(model, ratio=0.5, criterion="magnitude")
    path = tmp_path / "pruned.tflite"
    path.write_bytes(convert(result.model, "int8", crops[:8]))
    assert not [o for o in op_types(path.read_bytes()) if "float32" in o["inputs"] + o["outputs"]]
    assert count_ops_macs(path)["macs"] == result.macs_after
    tfl = TFLiteModel(path)
    assert tfl.runtime == "ai_edge_litert"
    keras_maps = result.model.predict(crops[:8], verbose=0)
    assert np.abs(tfl(crops[:8].astype(np.uint8)) - keras_maps).mean() < 0.05 * np.abs(keras_maps).max()


def test_bad_arguments_are_refused(tiny):
    from tfpose.structured_prune import structured_prune

    model, _, _ = tiny
    with pytest.raises(ValueError, match="loss criteria"):
        structured_prune(model, target_macs=1e6, criterion="magnitude", allocation="global")
    with pytest.raises(ValueError, match="out of reach"):
        structured_prune(model, target_macs=10, criterion="magnitude", allocation="uniform")
    with pytest.raises(ValueError, match="needs batches"):
        structured_prune(model, ratio=0.5, criterion="fisher")


@pytest.fixture(scope="module")
def tiny_student_file(tiny, tmp_path_factory):
    path = tmp_path_factory.mktemp("student") / "student.keras"
    tiny[0].save(path)
    return path


def _prune_cli(synthetic_root, student, out, *args):
    from tests.conftest import ROOT
    from tfpose.cli import main

    data = [f"data.root={synthetic_root}", "data.synthetic.num_train_images=24", "data.synthetic.num_val_images=8",
            "data.synthetic.image_size=[96,96]", "data.synthetic.max_people=2", "data.synthetic.seed=3",
            "codec.input_size=[64,64]", "export.finetune_batch_size=4", "export.prune_saliency_batches=2"]
    return main(["prune", "--config", str(ROOT / "configs/quickstart.yaml"), "--model", str(student),
                 "--out", str(out), *args, *data])


def test_prune_command_writes_a_narrower_fine_tuned_student(synthetic_root, tiny_student_file, tiny, tmp_path):
    import json

    from tfpose.pipeline import load_keras

    target = 0.6 * count(tiny[0]) / 1e9
    code = _prune_cli(synthetic_root, tiny_student_file, tmp_path / "run", "--target-gmacs", f"{target:.6f}",
                      "--finetune-steps", "2", "--parent-weight", "0.5")
    assert code == 0
    pruned = load_keras(tmp_path / "run/student_pruned.keras")
    notes = json.loads((tmp_path / "run/student_pruned.json").read_text())["channel_pruning"]
    assert count(pruned) == notes["macs_after"] <= target * 1e9
    assert notes["criterion"] == "fisher" and notes["allocation"] == "global" and notes["finetune_steps"] == 2
    assert notes["parent_weight"] == 0.5


@pytest.mark.parametrize("args, field, message", [
    (["--target-gmacs", "0.001", "--ratio", "0.5"], "export.prune_channel_ratio", "not both"),
    (["--target-gmacs", "0.001", "--criterion", "magnitude"], "export.prune_criterion", "global allocation"),
    (["--ratio", "1.5"], "export.prune_channel_ratio", "must be in (0, 1]"),
    ([], "export.prune_target_gmacs", "nothing to prune"),
    (["--target-gmacs", "1e-6"], "export.prune_target_gmacs", "out of reach"),   # below the narrowest model
    (["--sparsity", "0.5", "--parent-weight", "1"], "export.prune_parent_weight", "guides channel pruning"),
    (["--target-gmacs", "0.001", "--parent-weight", "-1"], "export.prune_parent_weight", "must be in [0, inf)"),
])
def test_prune_command_names_the_bad_field(synthetic_root, tiny_student_file, tmp_path, capsys, args, field,
                                           message):
    assert _prune_cli(synthetic_root, tiny_student_file, tmp_path / "run", *args) == 2
    err = capsys.readouterr().err
    assert f"field '{field}'" in err and message in err, err
    assert not (tmp_path / "run/student_pruned.keras").exists()


def test_export_name_says_how_the_channels_were_pruned():
    from tfpose.config import ExportConfig
    from tfpose.export import export_name, prunes_channels

    assert export_name(ExportConfig(prune_target_gmacs=0.203)) == "student_int8_channels-0.203gmac.tflite"
    assert export_name(ExportConfig(quant="qat-int8", prune_channel_ratio=0.75)) == \
        "student_qat-int8_channels-r0.75.tflite"
    assert not prunes_channels(ExportConfig()) and prunes_channels(ExportConfig(prune_channel_ratio=0.5))


def test_pruning_fine_tunes_for_its_own_steps_else_for_qats():
    from tfpose.config import ExportConfig
    from tfpose.export import pruning_steps

    assert pruning_steps(ExportConfig(finetune_steps=300)) == 300
    assert pruning_steps(ExportConfig(finetune_steps=300, prune_finetune_steps=1500)) == 1500
