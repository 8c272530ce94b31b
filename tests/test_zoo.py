"""The model zoo: published sizes, the FLOP counter, the heads, and full-int8 TFLite for every registered model."""

import inspect
from functools import lru_cache

import numpy as np
import pytest

from tflite.convert import convert, op_types
from tflite.runtime import TFLiteModel
from tfpose._keras import keras
from tfpose.flops import count_macs, macs_by_layer
from tfpose.models import build_model, deployable, get_spec, list_models
from tfpose.models.blocks import hard_swish, make_divisible
from tfpose.models.heads import HEADS
from tfpose.models.published import PUBLISHED
from tfpose.models.shufflenet import ShuffleSplit
from tests.conftest import TINY_INPUT

layers = keras.layers


@lru_cache(maxsize=2)
def _build(name, input_size, config=()):
    return build_model(name, 17, input_size, **dict(config))


def _size(model, prefixes=()):
    """(parameters, GFLOPs = 2 x MACs) of the whole model, or of the layers whose names start with a prefix."""
    macs = macs_by_layer(model)
    chosen = [layer for layer in model.layers if not prefixes or layer.name.startswith(prefixes)]
    return sum(layer.count_params() for layer in chosen), 2 * sum(macs[layer.name] for layer in chosen) / 1e9


def _heavy(paper):
    """The 8-stack hourglass and ResNet-101/152 take 300-800 layers to build: up to half a minute each here."""
    heavy = paper.config.get("stacks", 0) >= 8 or paper.config.get("depth", 0) >= 101
    return pytest.param(paper, marks=pytest.mark.slow) if heavy else paper


@pytest.mark.parametrize("paper", [_heavy(p) for p in PUBLISHED], ids=lambda p: p.label.replace(" ", "-"))
def test_parameters_match_the_published_figure(paper):
    params, _ = _size(_build(paper.model, paper.input_size, tuple(paper.config.items())), paper.part)
    tolerance = 0.15 if paper.model == "peleenet_duc" else 0.20      # the bounds
    assert abs(params / (paper.params_m * 1e6) - 1) < tolerance, f"{params / 1e6:.2f} M vs {paper.params_m} M"


def test_peleenet_duc_flops_match_park_et_al():
    model = _build("peleenet_duc", (192, 256))
    _, total = _size(model)
    _, decoder = _size(model, ("duc", "heatmaps"))
    assert abs(total / 1.49 - 1) < 0.15, total                       # paper: 1.49 GFLOPs
    assert abs(decoder / 0.47 - 1) < 0.15, decoder                   # paper: DUC decoder 0.47 GFLOPs


def test_transposed_convs_count_a_quarter_of_park_et_al_per_output_figure():
    _, decoder = _size(_build("peleenet_duc", (192, 256), (("head", "deconv"),)), ("deconv", "heatmaps"))
    assert abs(4 * decoder / 9.19 - 1) < 0.15, decoder                # paper: 9.19 GFLOPs, counted per output cell


def test_flop_counter_counts_multiply_adds_per_layer_kind():
    image = keras.Input((8, 6, 3), name="image")
    x = layers.Conv2D(16, 3, padding="same", name="conv")(image)
    x = layers.BatchNormalization(name="bn")(x)
    x = layers.DepthwiseConv2D(3, 2, padding="same", name="dw")(x)
    x = layers.Conv2D(16, 1, groups=4, name="grouped")(x)
    x = layers.Conv2DTranspose(8, 4, 2, padding="same", name="convt")(x)
    x = layers.Dense(5, name="dense")(x)
    macs = macs_by_layer(keras.Model(image, x))
    assert macs == {"image": 0, "conv": 8 * 6 * 9 * 3 * 16, "bn": 0, "dw": 4 * 3 * 9 * 16,
                    "grouped": 4 * 3 * 4 * 16, "convt": 4 * 3 * 16 * 16 * 8, "dense": 8 * 6 * 8 * 5}


def test_make_divisible_rounds_to_eight_without_losing_ten_percent():
    assert [make_divisible(v) for v in (32, 11.2, 16 * 0.75, 1280 * 0.25, 100)] == [32, 16, 16, 320, 104]


def test_hard_swish_is_x_relu6_x_plus_3_over_6_and_converts_to_one_int8_kernel():
    image = keras.Input((16, 16, 3))
    x = layers.Conv2D(8, 3, padding="same")(image)
    model = keras.Model(image, layers.Conv2D(4, 1)(hard_swish(x, "hs")))
    probe = keras.Model(image, hard_swish(image, "probe"))
    values = np.linspace(-5, 5, 16 * 16 * 3, dtype=np.float32).reshape(1, 16, 16, 3)
    np.testing.assert_allclose(probe(values), values * np.clip(values + 3, 0, 6) / 6, atol=1e-6)
    crops = [np.random.default_rng(i).uniform(0, 255, (16, 16, 3)) for i in range(3)]
    ops = op_types(convert(model, "int8", crops))
    assert [o["op"] for o in ops].count("HARD_SWISH") == 1
    assert not [o for o in ops if "float32" in o["inputs"] + o["outputs"]]


def test_shuffle_split_returns_even_then_odd_channels():
    x = np.arange(8, dtype=np.float32).reshape(1, 1, 1, 8)
    even, odd = ShuffleSplit()(x)
    assert even.numpy().ravel().tolist() == [0, 2, 4, 6] and odd.numpy().ravel().tolist() == [1, 3, 5, 7]


HEADED = [s.name for s in list_models() if "head" in inspect.signature(s.builder).parameters]


# The slim head is the one that changes the encoder (stride 16), so it runs on every encoder; the others on one.
@pytest.mark.parametrize("name,head", [(n, "slim") for n in HEADED] + [("mobilenetv3_small", h) for h in HEADS
                                                                       if h != "slim"])
def test_every_head_reaches_stride_4(name, head):
    tiny = {k: v for k, v in get_spec(name).tiny.items() if k not in ("head", "head_channels", "duc_channels")}
    model = build_model(name, 5, TINY_INPUT, head=head, **tiny)
    assert model.output_shape == (None, TINY_INPUT[1] // 4, TINY_INPUT[0] // 4, 5)
    assert any(layer.name == {"duc": "duc1_shuffle", "deconv": "deconv1_convt", "slim": "sic_dw"}[head]
               for layer in model.layers)


def test_head_with_the_wrong_number_of_stages_is_refused():
    with pytest.raises(ValueError, match="2 x2 stages"):
        build_model("mobilenetv2", 17, TINY_INPUT, width=0.25, head="slim", head_channels=(64, 32, 16))


def _settle_batchnorm(model, images):
    """Give every BatchNorm the statistics of ``images``, as training would: a freshly initialised deep net
    otherwise shrinks its signal layer by layer until int8 rounds it away, and agreement means nothing."""
    norms = [layer for layer in model.layers if isinstance(layer, layers.BatchNormalization)]
    momenta = [layer.momentum for layer in norms]
    for layer in norms:
        layer.momentum = 0.0
    model(images, training=True)
    for layer, momentum in zip(norms, momenta):
        layer.momentum = momentum


@pytest.mark.slow
@pytest.mark.parametrize("name", [s.name for s in list_models()])
def test_every_registered_model_converts_to_full_int8_builtins_and_runs(name, tmp_path):
    model = deployable(build_model(name, 17, TINY_INPUT, **get_spec(name).tiny))
    rng = np.random.default_rng(0)
    crops = rng.integers(0, 256, (5, TINY_INPUT[1], TINY_INPUT[0], 3), dtype=np.uint8)
    _settle_batchnorm(model, crops.astype(np.float32))
    data = convert(model, "int8", crops[:4].astype(np.float32))
    ops = op_types(data)
    assert not [o["op"] for o in ops if o["op"].startswith("Flex") or o["op"] == "CUSTOM"]
    assert not [o for o in ops if "float32" in o["inputs"] + o["outputs"]], "float islands"
    path = tmp_path / f"{name}.tflite"
    path.write_bytes(data)
    runtime = TFLiteModel(path)
    assert runtime.runtime == "ai_edge_litert" and runtime.input.dtype == np.uint8
    heatmaps = runtime(crops[3:])
    assert heatmaps.shape == (2, TINY_INPUT[1] // 4, TINY_INPUT[0] // 4, 17) and np.isfinite(heatmaps).all()
    reference = model(crops[3:].astype(np.float32)).numpy()
    # Random weights agree loosely with their int8 version (0.5-0.9 measured, 1.0 for float32 TFLite); a collapsed
    # or scrambled output scores about 0.
    assert np.corrcoef(heatmaps.ravel(), reference.ravel())[0, 1] > 0.3, "int8 disagrees with the Keras model"


@pytest.mark.slow
def test_models_command_lists_every_model_with_params_and_flops(capsys):
    from tfpose.cli import main

    assert main(["models", "--input-size", "64x64"]) == 0
    rows = {line.split()[0]: line.split() for line in capsys.readouterr().out.splitlines()[2:]}
    assert set(rows) == {s.name for s in list_models("all")}, "pose models and person detectors alike"
    for name, row in rows.items():
        params, gmacs, gflops = (float(v) for v in row[3:6])
        assert params > 0 and gflops == pytest.approx(2 * gmacs, abs=0.011), name
    assert count_macs(build_model("peleenet_duc", 17, (64, 64))) < count_macs(build_model("peleenet_duc"))


@pytest.mark.parametrize("act, bound", [("relu", None), ("relu6", 6.0)])
def test_peleenet_duc_activation_bounds_every_hidden_activation(act, bound):
    """relu6 caps every hidden activation, so one odd calibration crop cannot stretch an int8 range."""
    model = build_model("peleenet_duc", 17, TINY_INPUT, act=act, **get_spec("peleenet_duc").tiny)
    relus = [layer for layer in model.layers if isinstance(layer, layers.ReLU)]
    assert len(relus) > 10
    assert {None if layer.max_value is None else float(layer.max_value) for layer in relus} == {bound}
    probe = keras.Model(model.input, [layer.output for layer in relus])
    extreme = np.random.default_rng(0).choice([0.0, 255.0], (2, *TINY_INPUT[::-1], 3)).astype(np.float32)
    peak = max(float(np.max(x)) for x in probe.predict(extreme, verbose=0))
    assert peak <= (bound or np.inf) and peak > 0
