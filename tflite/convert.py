"""Keras -> TFLite conversion (needs TensorFlow): full-integer int8 with calibration data from the real input
pipeline, float16, dynamic-range or float32; batch fixed at 1 so XNNPACK can take the whole graph.

Two variants on top: selective int8, where named nodes stay float (``float_nodes``, e.g. the layers a
sensitivity report blames most), and in-graph decoding (``decode``), where the graph ends in argmax + the codec's
quarter-offset refinement and outputs keypoints (1, K, 2) in input pixels and scores (1, K) instead of heatmaps.
Shape legend: K joints, h x w heatmap cells, H x W input pixels.
"""

from __future__ import annotations

import csv
import io
from typing import Iterable, Literal, Sequence

import numpy as np

from tfpose.codec import HeatmapCodec, blur_kernel, inside_norms

Quant = Literal["int8", "float16", "dynamic", "float32"]
IOType = Literal["uint8", "int8", "float32"]
DECODE_SCOPE = "decode"     # name scope of the in-graph decoding ops: they stay float in an int8 model


def convert(model, quant: Quant = "int8", calibration: Iterable[np.ndarray] | None = None,
            input_type: IOType = "uint8", output_type: IOType = "int8", float_nodes: Sequence[str] = (),
            decode: HeatmapCodec | None = None) -> bytes:
    """Convert a single-output Keras model taking (1, H, W, 3) raw pixels; returns the .tflite bytes.

    calibration: crops (H, W, 3) or (1, H, W, 3), raw pixels, required for int8.
    float_nodes: (int8 only) tensor names, as ``quantization_errors`` reports them, whose ops stay float.
    decode: end the graph in keypoints (1, K, 2) and scores (1, K), float32, decoded as ``decode`` (its refine
    must be 'quarter' or 'none'); the int8 body keeps int8 kernels and only the decoding arithmetic is float.
    """
    converter = _converter(model, decode)
    if quant != "int8":
        if float_nodes:
            raise ValueError("float_nodes applies to int8 conversion only")
        if quant in ("float16", "dynamic"):
            converter.optimizations = [_tf().lite.Optimize.DEFAULT]
        if quant == "float16":
            converter.target_spec.supported_types = [_tf().float16]
        elif quant not in ("dynamic", "float32"):
            raise ValueError(f"unknown quantization '{quant}'")
        converter.target_spec.supported_ops = [_tf().lite.OpsSet.TFLITE_BUILTINS]
        return converter.convert()
    float_nodes = list(float_nodes)
    if decode is not None:
        output_type = "float32"
        float_nodes += _decode_nodes(model, decode)
    _calibrate(converter, model, calibration)
    if not float_nodes:
        converter.inference_input_type = _dtype(input_type)
        converter.inference_output_type = _dtype(output_type)
        return converter.convert()
    return _quantize_except(converter, float_nodes, input_type, output_type)


def _tf():
    from tfpose._keras import tf

    return tf


def _dtype(name: IOType):
    tf = _tf()
    return {"uint8": tf.uint8, "int8": tf.int8, "float32": tf.float32}[name]


def _converter(model, decode: HeatmapCodec | None = None):
    tf = _tf()
    height, width = model.input_shape[1:3]
    spec = tf.TensorSpec([1, height, width, 3], tf.float32, name="image")
    if decode is None:
        fn = tf.function(lambda x: model(x, training=False), input_signature=[spec], autograph=False)
    else:
        fn = tf.function(lambda x: decode_heatmaps(model(x, training=False), decode), input_signature=[spec],
                         autograph=False)
    return tf.lite.TFLiteConverter.from_concrete_functions([fn.get_concrete_function()], model)


def _calibrate(converter, model, calibration) -> None:
    """Set ``converter`` up for full-integer int8 with ``calibration`` as the representative dataset."""
    tf = _tf()
    if calibration is None:
        raise ValueError("int8 conversion needs calibration crops")
    crops = list(calibration)
    if not crops:
        raise ValueError("int8 conversion needs at least one calibration crop")
    height, width = model.input_shape[1:3]

    def representative():
        for crop in crops:
            yield [np.asarray(crop, np.float32).reshape(1, height, width, 3)]

    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]


def _quantize_except(converter, float_nodes: Sequence[str], input_type: IOType, output_type: IOType) -> bytes:
    """Calibrate, then quantize every op except those writing ``float_nodes`` (the converter's own two steps,
    with the denylist that only its quantizer takes)."""
    from tensorflow.lite.python import convert as tfl_convert   # mlir_quantize: the only door to a denylist

    converter._experimental_calibrate_only = True  # noqa: SLF001 - as tf.lite.experimental.QuantizationDebugger does
    calibrated = converter.convert()
    return tfl_convert.mlir_quantize(calibrated, input_data_type=_dtype(input_type),
                                     output_data_type=_dtype(output_type), denylisted_nodes=list(float_nodes))


def _decode_nodes(model, codec: HeatmapCodec) -> list[str]:
    """Output tensor names of the float-converted graph's decoding ops (they carry the ``decode`` scope)."""
    tf = _tf()
    interpreter = tf.lite.Interpreter(model_content=convert(model, "float32", decode=codec))
    tensors = {t["index"]: t["name"] for t in interpreter.get_tensor_details()}
    outputs = {d["index"] for d in interpreter.get_output_details()}
    # the converter names a graph output after the function, not after the op's scope
    return [tensors[i] for op in interpreter._get_ops_details()  # noqa: SLF001 - no public op listing
            for i in op["outputs"] if i in outputs or tensors.get(i, "").startswith(DECODE_SCOPE + "/")]


def decode_heatmaps(heatmaps, codec: HeatmapCodec):
    """The codec's decode as TFLite builtin ops: (1, h, w, K) heatmaps -> keypoints (1, K, 2) input pixels,
    scores (1, K) peak values. Argmax takes the first maximum, as numpy's does, of the codec's matched filter when
    it has a ``peak_blur`` (two depthwise passes and a constant scale); refinement 'quarter' or 'none'."""
    tf = _tf()
    if codec.refine not in ("quarter", "none"):
        raise ValueError(f"in-graph decoding refines by 'quarter' or 'none', not '{codec.refine}'")
    _, h, w, k = heatmaps.shape
    with tf.name_scope(DECODE_SCOPE):
        def flatten(maps):
            return tf.reshape(tf.transpose(maps, [0, 3, 1, 2]), [1, k, h * w])

        flat = flatten(heatmaps)
        searched = flat if codec.peak_blur <= 0 else flatten(_matched_filter(heatmaps, codec.peak_blur))
        index = tf.argmax(searched, axis=-1, output_type=tf.int32)                    # (1, K)
        scores = tf.gather(flat, index, batch_dims=2)
        x, y = index % w, index // w
        # positions in quarter cells, integers to the end so that int8 cannot round them
        qx, qy = 4 * x, 4 * y
        if codec.refine == "quarter":
            def at(yy, xx):
                return tf.gather(flat, yy * w + xx, batch_dims=2)

            def step(higher, lower, inner):
                sign = tf.cast(higher > lower, tf.int32) - tf.cast(higher < lower, tf.int32)
                return tf.where(inner, sign, tf.zeros_like(sign))

            xc, yc = tf.clip_by_value(x, 1, w - 2), tf.clip_by_value(y, 1, h - 2)
            qx += step(at(y, xc + 1), at(y, xc - 1), (x > 0) & (x < w - 1))
            qy += step(at(yc + 1, x), at(yc - 1, x), (y > 0) & (y < h - 1))
        quarters = tf.cast(tf.stack([qx, qy], -1), tf.float32)                        # (1, K, 2)
        keypoints = quarters * (codec.stride / 4) + (codec.stride - 1) / 2
    return keypoints, scores


def _matched_filter(heatmaps, sigma: float):
    """``tfpose.codec.matched_filter`` in builtin ops: (1, h, w, K) -> (1, h, w, K)."""
    tf = _tf()
    _, h, w, k = heatmaps.shape
    kernel = blur_kernel(sigma, min(h, w) - 1)
    per_joint = np.tile(kernel[:, None, None], (1, k, 1))                            # (2r + 1, K, 1)
    rows = tf.nn.depthwise_conv2d(heatmaps, per_joint[:, None], [1, 1, 1, 1], "SAME")
    blurred = tf.nn.depthwise_conv2d(rows, per_joint[None], [1, 1, 1, 1], "SAME")
    return blurred * inside_norms(kernel, h, w)[None, :, :, None]


def quantization_errors(model, calibration: Iterable[np.ndarray]) -> list[dict]:
    """Per-op int8 error on the calibration crops, from ``tf.lite.experimental.QuantizationDebugger``: each row
    has the op, its output tensor name (what ``convert(float_nodes=...)`` takes), the RMSE between the float and
    the int8 output, and that RMSE in units of the int8 step (``rmse_per_step``; about 0.29 is pure rounding)."""
    tf = _tf()
    converter = _converter(model)
    _calibrate(converter, model, calibration)
    samples = list(converter.representative_dataset())
    debugger = tf.lite.experimental.QuantizationDebugger(converter=converter, debug_dataset=lambda: iter(samples))
    debugger.run()
    buf = io.StringIO()
    debugger.layer_statistics_dump(buf)
    rows = []
    for r in csv.DictReader(io.StringIO(buf.getvalue())):
        rmse = float(np.sqrt(float(r["mean_squared_error"])))
        scale = float(r["scale"])
        rows.append({"op": r["op_name"], "tensor": r["tensor_name"], "rmse": rmse,
                     "rmse_per_step": rmse / scale if scale > 0 else float("nan"),
                     "max_abs_error": float(r["max_abs_error"])})
    return rows


def op_types(model_bytes: bytes) -> list[dict]:
    """Every operator of a .tflite with its input/output tensor types (from the file, via TF's analyzer)."""
    tf = _tf()
    interpreter = tf.lite.Interpreter(model_content=model_bytes)
    tensors = {t["index"]: t for t in interpreter.get_tensor_details()}
    ops = []
    for op in interpreter._get_ops_details():  # noqa: SLF001 - the public API has no op listing
        ops.append({
            "op": op["op_name"],
            "inputs": [tensors[i]["dtype"].__name__ for i in op["inputs"] if i >= 0 and i in tensors],
            "outputs": [tensors[i]["dtype"].__name__ for i in op["outputs"] if i in tensors],
        })
    return ops
