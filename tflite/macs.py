"""Multiply-accumulates of a .tflite graph, counted from its ops and tensor shapes (no TensorFlow).

The same convention as ``tfpose.flops`` (one MAC = one multiply and one add, FLOPs = 2 x MACs): CONV_2D,
DEPTHWISE_CONV_2D, FULLY_CONNECTED and TRANSPOSE_CONV are counted, everything else (adds, activations,
resampling, the decoding arithmetic) is not. A transposed conv counts what it computes, input cells x kernel x
channels. So a Keras model and its converted file count the same, and a third-party file (MoveNet) is counted on
the same scale as our students.

    python -m tflite.macs model.tflite [more.tflite ...]
"""

from __future__ import annotations

import argparse
import math
import sys
from collections import Counter
from pathlib import Path

from tflite.runtime import import_runtime
from tfpose.errors import InputError

COUNTED = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "TRANSPOSE_CONV")


def op_macs(op: str, inputs: list, output) -> int:
    """MACs of one op; ``inputs`` the shapes of its input tensors in TFLite order, ``output`` its first output's.

    CONV_2D filter (C_out, kh, kw, C_in); DEPTHWISE_CONV_2D filter (1, kh, kw, C_out); FULLY_CONNECTED filter
    (units, C_in); TRANSPOSE_CONV inputs (output shape, filter (C_out, kh, kw, C_in), input (1, h, w, C_in))."""
    if op == "CONV_2D":
        c_out, kh, kw, c_in = inputs[1]
        return math.prod(output[:-1]) * c_out * kh * kw * c_in
    if op == "DEPTHWISE_CONV_2D":
        _, kh, kw, c_out = inputs[1]
        return math.prod(output[:-1]) * kh * kw * c_out
    if op == "FULLY_CONNECTED":
        units, c_in = inputs[1]
        return math.prod(output[:-1]) * units * c_in
    if op == "TRANSPOSE_CONV":
        c_out, kh, kw, c_in = inputs[1]
        return math.prod(inputs[2][:-1]) * kh * kw * c_in * c_out
    return 0


def count_ops_macs(model_path: str | Path, runtime: str | None = None) -> dict:
    """{"macs": total, "by_op": {op name: MACs}, "ops": {op name: count}} of the file's main graph at batch 1
    (a file converted with batch 1, as ``tflite.convert`` converts)."""
    path = Path(model_path)
    if not path.is_file():
        raise InputError("model file not found", path=path)
    _, _, module = import_runtime(runtime)
    try:
        interpreter = module.Interpreter(model_path=str(path))
    except (ValueError, RuntimeError) as e:
        raise InputError(f"not a loadable .tflite ({e})", path=path) from None
    shapes = {t["index"]: [int(d) for d in t["shape"]] for t in interpreter.get_tensor_details()}
    by_op, ops = Counter(), Counter()
    for op in interpreter._get_ops_details():  # noqa: SLF001 - the runtimes' only listing of ops
        ops[op["op_name"]] += 1
        if op["op_name"] in COUNTED:
            inputs = [shapes.get(int(i)) for i in op["inputs"]]
            by_op[op["op_name"]] += op_macs(op["op_name"], inputs, shapes[int(op["outputs"][0])])
    return {"macs": sum(by_op.values()), "by_op": dict(by_op), "ops": dict(ops)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Count the multiply-accumulates of .tflite files.")
    parser.add_argument("models", nargs="+")
    args = parser.parse_args(argv)
    try:
        for path in args.models:
            c = count_ops_macs(path)
            parts = ", ".join(f"{op} {m / 1e9:.4f}" for op, m in sorted(c["by_op"].items()))
            print(f"{path}: {c['macs'] / 1e9:.4f} GMAC ({parts})")
    except InputError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
