"""Quantization: every int8 variant holds only int8 builtin kernels (read from the file), QAT converts without
float islands, the sensitivity report names layers, selective int8 stays loadable, in-graph decoding equals numpy."""

import dataclasses

import numpy as np
import pytest


def float_ops(model_bytes):
    from tflite.convert import op_types

    names = {o["op"] for o in op_types(model_bytes)}
    assert not any(n.startswith("Flex") or n == "CUSTOM" for n in names), names
    return [o for o in op_types(model_bytes) if "float32" in o["inputs"] + o["outputs"]]


@pytest.fixture(scope="module")
def tiny(tiny_export):
    return tiny_export["model"], tiny_export["crops"].astype(np.float32), tiny_export["codec"]


def test_ptq_int8_with_int8_in_and_uint8_out_has_only_int8_kernels(tiny):
    from tflite.convert import convert

    model, crops, _ = tiny   # uint8 in, int8 out: tests/test_tflite.py
    assert float_ops(convert(model, "int8", crops[:8], "int8", "uint8")) == []


def test_float16_and_dynamic_are_builtin_and_shrink_the_weights(tiny):
    from tflite.convert import convert

    model, _, _ = tiny
    float_bytes = 4 * model.count_params()
    float16, dynamic = convert(model, "float16"), convert(model, "dynamic")
    float_ops(float16), float_ops(dynamic)
    # a tiny model's file is mostly graph; only the ordering is safe to assert
    assert len(dynamic) < len(float16) < float_bytes, (len(float16), len(dynamic), float_bytes)


def test_sensitivity_report_names_layers_and_selective_int8_loads(tiny, tmp_path):
    from tflite.convert import convert
    from tflite.runtime import TFLiteModel
    from tfpose.quantize import sensitivity_report

    model, crops, _ = tiny
    rows = sensitivity_report(model, crops[:8])
    layer_names = {layer.name for layer in model.layers}
    assert rows and all(r["layer"] in layer_names for r in rows), [r["layer"] for r in rows[:5]]
    assert rows[0]["rmse_per_step"] >= rows[-1]["rmse_per_step"] > 0
    selective = convert(model, "int8", crops[:8], float_nodes=[r["tensor"] for r in rows[:2]])
    assert sum(o["op"] == "CONV_2D" and "float32" in o["inputs"] for o in float_ops(selective)) == 2
    path = tmp_path / "selective.tflite"
    path.write_bytes(selective)
    out = TFLiteModel(path)(crops[:2].astype(np.uint8))
    assert out.shape == (2, 16, 16, 17) and np.isfinite(out).all()


@pytest.mark.parametrize("peak_blur", [0.0, 2.0])
def test_in_graph_decoding_equals_numpy_codec(tiny, tmp_path, peak_blur):
    from ai_edge_litert.interpreter import Interpreter

    from tflite.convert import convert
    from tflite.runtime import TFLiteModel

    model, crops, codec = tiny
    codec = dataclasses.replace(codec, refine="quarter", peak_blur=peak_blur)
    heatmaps_path, decoded_path = tmp_path / "heatmaps.tflite", tmp_path / "decoded.tflite"
    heatmaps_path.write_bytes(convert(model, "int8", crops[:8], output_type="float32"))
    decoded = convert(model, "int8", crops[:8], decode=codec)
    decoded_path.write_bytes(decoded)
    body = [o for o in float_ops(decoded) if o["op"] in ("CONV_2D", "DEPTH_TO_SPACE", "CONCATENATION")]
    assert body == [], "the network itself must stay int8"
    heatmaps = TFLiteModel(heatmaps_path)(crops[:8].astype(np.uint8))
    want_kp, want_scores = codec.decode(heatmaps)
    if peak_blur:
        raw_kp, _ = dataclasses.replace(codec, peak_blur=0.0).decode(heatmaps)
        assert (raw_kp != want_kp).any(), "the blur must move some peak, or this test cannot see it"
    interpreter = Interpreter(str(decoded_path))
    interpreter.allocate_tensors()
    outputs = {tuple(d["shape"]): d["index"] for d in interpreter.get_output_details()}
    for i, crop in enumerate(crops[:8].astype(np.uint8)):
        interpreter.set_tensor(interpreter.get_input_details()[0]["index"], crop[None])
        interpreter.invoke()
        np.testing.assert_allclose(interpreter.get_tensor(outputs[(1, 17, 2)])[0], want_kp[i], atol=1e-4)
        np.testing.assert_allclose(interpreter.get_tensor(outputs[(1, 17)])[0], want_scores[i], atol=1e-6)


@pytest.mark.parametrize("peak_blur", [0.0, 2.0])
def test_float_in_graph_decoding_equals_numpy_on_keras_heatmaps(tiny, peak_blur):
    from tfpose._keras import tf
    from tflite.convert import convert

    model, crops, codec = tiny
    codec = dataclasses.replace(codec, refine="quarter", peak_blur=peak_blur)
    interpreter = tf.lite.Interpreter(model_content=convert(model, "float32", decode=codec))
    interpreter.allocate_tensors()
    outputs = {tuple(d["shape"]): d["index"] for d in interpreter.get_output_details()}
    want_kp, want_scores = codec.decode(model.predict(crops[:4], verbose=0))
    for i in range(4):
        interpreter.set_tensor(interpreter.get_input_details()[0]["index"], crops[i:i + 1])
        interpreter.invoke()
        np.testing.assert_allclose(interpreter.get_tensor(outputs[(1, 17, 2)])[0], want_kp[i], atol=1e-4)
        np.testing.assert_allclose(interpreter.get_tensor(outputs[(1, 17)])[0], want_scores[i], atol=1e-5)


@pytest.mark.slow
def test_qat_model_converts_to_int8_without_float_islands(tiny):
    from tfpose._keras import tf
    from tflite.convert import convert
    from tfpose.quantize import quantization_aware_training

    model, crops, _ = tiny
    targets = {"heatmaps": np.zeros((8, 16, 16, 17), np.float32), "weights": np.ones((8, 17), np.float32)}
    data = tf.data.Dataset.from_tensor_slices((crops[:8], targets)).batch(4)
    qat = quantization_aware_training(model, data, 2)
    assert any(type(layer).__name__ == "QuantizeWrapperV2" for layer in qat.layers)
    assert float_ops(convert(qat, "int8", crops[:8])) == []
    with pytest.raises(ValueError, match="at least one"):
        quantization_aware_training(model, data, 0)



@pytest.mark.parametrize("name", ["peleenet_duc", "simplebaseline", "mobilenetv2", "hourglass"])
def test_fold_batchnorm_removes_every_norm_after_a_conv_and_keeps_the_outputs(name):
    """Random BatchNorm statistics, so that folding is far from the identity; ConvTranspose (simplebaseline),
    depthwise (mobilenetv2) and residual branches (hourglass) all fold."""
    from tfpose._keras import keras
    from tfpose.models.registry import build_model, deployable, get_spec
    from tfpose.quantize import fold_batchnorm

    rng = np.random.default_rng(0)
    model = deployable(build_model(name, 17, (64, 64), **(get_spec(name).tiny or {})))
    norms = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    for norm in norms:
        n = norm.moving_mean.shape[0]
        norm.set_weights([rng.uniform(0.5, 1.5, n), rng.normal(0, 0.2, n), rng.normal(0, 0.2, n),
                          rng.uniform(0.3, 3.0, n)])
    crops = rng.uniform(0, 255, (2, 64, 64, 3)).astype(np.float32)
    want = model(crops, training=False).numpy()
    folded = fold_batchnorm(model)
    assert norms and not any(isinstance(layer, keras.layers.BatchNormalization) for layer in folded.layers)
    np.testing.assert_allclose(folded(crops).numpy(), want, atol=1e-5 * max(1.0, np.abs(want).max()))
    np.testing.assert_array_equal(model(crops, training=False).numpy(), want)   # the original is untouched


def test_calibrated_qat_simulates_the_int8_model_tflite_builds(tiny, tmp_path):
    """Before any fine-tuning, the QAT Keras model (BatchNorm folded, ranges calibrated) must be about as far from
    the float student as the PTQ int8 TFLite model is: it simulates the same int8 network."""
    from tflite.convert import convert
    from tflite.runtime import TFLiteModel
    from tfpose.quantize import calibrate_ranges, quantize_aware

    model, crops, _ = tiny
    float_out = model.predict(crops, verbose=0)
    qat = quantize_aware(model)
    assert not any("batch_normalization" in type(getattr(layer, "layer", layer)).__name__.lower()
                   for layer in qat.layers)
    before = np.abs(qat(crops, training=False).numpy() - float_out).mean()   # tfmot's initial [-6, 6] ranges
    calibrate_ranges(qat, crops)
    after = np.abs(qat(crops, training=False).numpy() - float_out).mean()
    ranges = {v.name: float(v.numpy()) for v in qat.variables if v.name.startswith("quant_heatmaps/post_activation")}
    assert ranges["quant_heatmaps/post_activation_max:0"] == pytest.approx(float(float_out.max()), rel=0.05)
    assert ranges["quant_heatmaps/post_activation_min:0"] == pytest.approx(min(0.0, float(float_out.min())), abs=0.05)
    assert after < before / 3, (before, after)
    path = tmp_path / "ptq.tflite"
    path.write_bytes(convert(model, "int8", crops, output_type="float32"))
    ptq = np.abs(TFLiteModel(path)(crops.astype(np.uint8)) - float_out).mean()
    assert after < 2 * ptq, (after, ptq)