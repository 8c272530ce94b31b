"""One interpreter shim over ai-edge-litert (preferred: its XNNPACK runs int8) and tflite-runtime 2.14.

Raw uint8 pixels go in and float32 comes out whatever the model's I/O types (float32, int8, uint8, int32): the
shim quantizes the input and dequantizes the output with the tensors' own scale and zero point.
Shape legend: N crops, H x W input pixels.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tfpose.errors import InputError

RUNTIMES = ("ai_edge_litert", "tflite_runtime")


def import_runtime(preferred: str | None = None):
    """(name, version, interpreter module) of ``preferred`` or of the first installed of ``RUNTIMES``."""
    if preferred is not None and preferred not in RUNTIMES:
        raise InputError(f"unknown TFLite runtime '{preferred}'; choose one of {', '.join(RUNTIMES)}")
    errors = []
    for name in ([preferred] if preferred else RUNTIMES):
        try:
            module = importlib.import_module(f"{name}.interpreter")
            version = getattr(importlib.import_module(name), "__version__", "?")
            return name, version, module
        except ImportError as e:
            errors.append(f"{name}: {e}")
    raise ImportError("no TFLite runtime found; install one with `pip install ai-edge-litert` "
                      "(or tflite-runtime==2.14.0 on 32-bit ARM). Tried: " + "; ".join(errors))


@dataclass
class TensorInfo:
    shape: tuple[int, ...]
    dtype: np.dtype
    scale: float
    zero_point: int

    @property
    def quantized(self) -> bool:
        return self.dtype in (np.int8, np.uint8) and self.scale > 0


class TFLiteModel:
    """A single-input image .tflite: raw uint8 crops (N, H, W, 3) in, its first output as float32 out."""

    def __init__(self, path: str | Path, num_threads: int = 1, xnnpack: bool = True, runtime: str | None = None):
        self.path = Path(path)
        if not self.path.is_file():
            raise InputError("model file not found", path=self.path)
        self.runtime, self.runtime_version, module = import_runtime(runtime)
        kwargs = {"model_path": str(self.path), "num_threads": num_threads}
        if not xnnpack:
            kwargs["experimental_op_resolver_type"] = module.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
        try:
            self.interpreter = module.Interpreter(**kwargs)
            self.interpreter.allocate_tensors()
            inputs, outputs = self.interpreter.get_input_details(), self.interpreter.get_output_details()
        except (ValueError, RuntimeError) as e:   # ValueError: a damaged tensor name too (UnicodeDecodeError)
            raise InputError(f"not a loadable TFLite model ({e})", path=self.path) from None
        self.num_threads = num_threads
        self.xnnpack = xnnpack
        if len(inputs) != 1 or not outputs:
            raise InputError(f"expected one input tensor and an output, found {len(inputs)} and {len(outputs)}",
                             path=self.path)
        self._in, self._out, self._outs = inputs[0], outputs[0], outputs
        self.input = _info(self._in)
        self.output = _info(self._out)
        self.outputs = [_info(o) for o in outputs]
        if len(self.input.shape) != 4 or self.input.shape[0] != 1 or self.input.shape[-1] != 3:
            raise InputError(f"input shape {list(self.input.shape)} is not an image batch of one, [1, H, W, 3]",
                             path=self.path)

    @property
    def input_size(self) -> tuple[int, int]:
        """(W, H) pixels."""
        return int(self.input.shape[2]), int(self.input.shape[1])

    @property
    def runtime_label(self) -> str:
        return f"{self.runtime} {self.runtime_version}"

    @property
    def delegate_partitions(self) -> int | None:
        """How many graph partitions a delegate took (0: none applied); None when the runtime cannot tell."""
        try:
            ops = self.interpreter._get_ops_details()  # noqa: SLF001 - the public API does not list nodes
        except AttributeError:
            return None
        return sum(op["op_name"] == "DELEGATE" for op in ops)

    @property
    def delegate(self) -> str:
        """What actually ran the graph: tflite-runtime 2.14, for one, builds XNNPACK but leaves int8 graphs to
        the builtin kernels, so the partitions are counted rather than assumed."""
        if not self.xnnpack:
            return "builtin kernels (XNNPACK off)"
        parts = self.delegate_partitions
        if parts is None:
            return "XNNPACK requested"
        return f"XNNPACK ({parts} partition{'s' * (parts != 1)})" if parts else "builtin kernels (XNNPACK not applied)"

    def run(self, crop: np.ndarray) -> np.ndarray:
        """One crop (H, W, 3) uint8 -> the raw output tensor, dequantized to float32."""
        self.interpreter.set_tensor(self._in["index"], self.quantize_input(crop[None]))
        self.interpreter.invoke()
        return self.dequantize_output(self.interpreter.get_tensor(self._out["index"]))[0]

    def run_all(self, image: np.ndarray) -> list[np.ndarray]:
        """One input (H, W, 3) -> every output tensor without its batch axis, dequantized to float32, in the
        model's output order (a detector's scores and box bins, say)."""
        self.interpreter.set_tensor(self._in["index"], self.quantize_input(image[None]))
        self.interpreter.invoke()
        return [_dequantize(self.interpreter.get_tensor(d["index"]), info)[0]
                for d, info in zip(self._outs, self.outputs)]

    def __call__(self, crops: np.ndarray) -> np.ndarray:
        """(N, H, W, 3) uint8 -> (N, ...) float32; the model's batch is 1, so crops run one by one."""
        if crops.shape[1:3] != self.input.shape[1:3]:
            raise InputError(f"crops of {crops.shape[1:3]} do not fit the model input {self.input.shape[1:3]}",
                             path=self.path)
        return np.stack([self.run(c) for c in crops])

    def quantize_input(self, pixels: np.ndarray) -> np.ndarray:
        info = self.input
        if info.quantized:
            q = np.round(pixels.astype(np.float32) / info.scale + info.zero_point)
            limits = np.iinfo(info.dtype)
            return np.clip(q, limits.min, limits.max).astype(info.dtype)
        return pixels.astype(info.dtype)

    def dequantize_output(self, raw: np.ndarray) -> np.ndarray:
        return _dequantize(raw, self.output)


def _dequantize(raw: np.ndarray, info: TensorInfo) -> np.ndarray:
    if info.quantized:
        return (raw.astype(np.float32) - info.zero_point) * info.scale
    return raw.astype(np.float32)


def _info(detail: dict) -> TensorInfo:
    scale, zero_point = detail.get("quantization", (0.0, 0))
    return TensorInfo(tuple(int(v) for v in detail["shape"]), np.dtype(detail["dtype"]), float(scale), int(zero_point))
