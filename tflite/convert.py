"""Keras -> TFLite conversion (needs TensorFlow): full-integer int8 with calibration data from the real input
pipeline, float16, dynamic-range or float32; batch fixed at 1 so XNNPACK can take the whole graph."""

from __future__ import annotations

from typing import Iterable, Literal

import numpy as np

Quant = Literal["int8", "float16", "dynamic", "float32"]
IOType = Literal["uint8", "int8", "float32"]


def convert(model, quant: Quant = "int8", calibration: Iterable[np.ndarray] | None = None,
            input_type: IOType = "uint8", output_type: IOType = "int8") -> bytes:
    """Convert a single-output Keras model taking (1, H, W, 3) raw pixels; returns the .tflite bytes.

    calibration: crops (H, W, 3) or (1, H, W, 3), raw pixels, required for int8.
    """
    from tfpose._keras import tf

    height, width = model.input_shape[1:3]
    spec = tf.TensorSpec([1, height, width, 3], tf.float32, name="image")
    fn = tf.function(lambda x: model(x, training=False), input_signature=[spec])
    converter = tf.lite.TFLiteConverter.from_concrete_functions([fn.get_concrete_function()], model)
    if quant == "int8":
        if calibration is None:
            raise ValueError("int8 conversion needs calibration crops")
        crops = list(calibration)
        if not crops:
            raise ValueError("int8 conversion needs at least one calibration crop")

        def representative():
            for crop in crops:
                yield [np.asarray(crop, np.float32).reshape(1, height, width, 3)]

        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = representative
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        dtypes = {"uint8": tf.uint8, "int8": tf.int8, "float32": tf.float32}
        converter.inference_input_type = dtypes[input_type]
        converter.inference_output_type = dtypes[output_type]
    elif quant == "float16":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    elif quant == "dynamic":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    elif quant != "float32":
        raise ValueError(f"unknown quantization '{quant}'")
    if quant != "int8":
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    return converter.convert()


def op_types(model_bytes: bytes) -> list[dict]:
    """Every operator of a .tflite with its input/output tensor types (from the file, via TF's analyzer)."""
    from tfpose._keras import tf

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
