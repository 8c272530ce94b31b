"""Pruning: the sparsity reached, the layers left dense, stripping keeps predictions, the file compresses."""

import numpy as np
import pytest

from tests.conftest import TINY_STUDENT


@pytest.fixture(scope="module")
def tiny_data():
    from tfpose._keras import keras, tf
    from tfpose.models import build_model

    keras.utils.set_random_seed(0)
    model = build_model("peleenet_duc", 17, (64, 64), **TINY_STUDENT)
    rng = np.random.default_rng(0)
    crops = rng.integers(0, 256, (16, 64, 64, 3)).astype(np.float32)
    targets = {"heatmaps": rng.random((16, 16, 16, 17)).astype(np.float32), "weights": np.ones((16, 17), np.float32)}
    return model, crops, tf.data.Dataset.from_tensor_slices((crops, targets)).batch(4)


@pytest.fixture(scope="module")
def pruned(tiny_data):
    from tfpose.prune import prune

    model, _, data = tiny_data
    before = [w.copy() for w in model.get_weights()]
    result = prune(model, 0.5, data, 6)
    assert all(np.array_equal(a, b) for a, b in zip(before, model.get_weights())), "the input model was changed"
    return result


def test_prune_reaches_target_sparsity_and_leaves_stem_and_head_dense(pruned):
    assert pruned.sparsity == pytest.approx(0.5, abs=0.01)
    assert all(s == pytest.approx(0.5, abs=0.02) for s in pruned.layers.values()), pruned.layers
    assert {"stem1_conv", "heatmaps"} <= set(pruned.dense_layers)
    assert pruned.model.get_layer("stem1_conv").kernel.numpy().all()
    assert not any(type(layer).__name__ == "PruneLowMagnitude" for layer in pruned.model.layers)


def test_pruned_int8_file_compresses_better_and_keeps_int8_kernels(pruned, tiny_data):
    from tflite.convert import convert, op_types
    from tfpose.prune import compressed_size

    model, crops, _ = tiny_data
    dense, sparse = convert(model, "int8", crops[:8]), convert(pruned.model, "int8", crops[:8])
    assert compressed_size(sparse) < 0.85 * compressed_size(dense)
    assert pruned.compressed_bytes["after"] < 0.8 * pruned.compressed_bytes["before"]
    assert not [o for o in op_types(sparse) if "float32" in o["inputs"] + o["outputs"]]


def test_block_pruning_zeroes_whole_runs_of_input_channels_in_1x1_convs(tiny_data):
    """block 8: every 1x1 conv's zeros come in runs of 8 input channels of one output channel (contiguous in the
    TFLite kernel), the convs stay convs, and the int8 file deflates smaller than with scattered zeros."""
    from tfpose._keras import keras
    from tfpose.prune import compressed_size, prune
    from tflite.convert import convert

    model, crops, data = tiny_data
    result = prune(model, 0.5, data, 6, block=8)
    assert result.sparsity == pytest.approx(0.5, abs=0.03)
    assert [type(layer) for layer in result.model.layers] == [type(layer) for layer in model.layers]
    pointwise = [layer for layer in result.model.layers if layer.name in result.layers
                 and isinstance(layer, keras.layers.Conv2D) and layer.kernel.shape[:2] == (1, 1)
                 and layer.kernel.shape[2] % 8 == 0]
    assert pointwise
    for layer in pointwise:
        runs = layer.kernel.numpy()[0, 0].reshape(-1, 8, layer.kernel.shape[3])   # (C_in / 8, 8, C_out)
        assert ((runs == 0).any(axis=1) == (runs == 0).all(axis=1)).all(), f"{layer.name}: a run is partly zero"
        assert (runs == 0).all(axis=1).mean() == pytest.approx(0.5, abs=0.1), layer.name
    scattered = prune(model, 0.5, data, 6)
    assert (compressed_size(convert(result.model, "int8", crops[:8]))
            < compressed_size(convert(scattered.model, "int8", crops[:8])))
    with pytest.raises(ValueError, match="block"):
        prune(model, 0.5, data, 6, block=0)


def test_pixel_shuffle_is_prunable_with_no_weights():
    import tensorflow_model_optimization as tfmot

    from tfpose.models.blocks import PixelShuffle

    wrapped = tfmot.sparsity.keras.prune_low_magnitude(PixelShuffle(2))
    assert PixelShuffle(2).get_prunable_weights() == [] and wrapped is not None


def test_choose_layers_is_explicit_about_stem_and_head(tiny_data):
    from tfpose.prune import choose_layers

    model = tiny_data[0]
    default, everything = choose_layers(model), choose_layers(model, prune_stem=True, prune_head=True)
    assert "heatmaps" not in default and not any(n.startswith("stem") for n in default)
    assert {"heatmaps", "stem1_conv"} <= set(everything) and len(everything) == len(default) + 5
