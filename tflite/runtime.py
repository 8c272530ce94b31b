"""One interpreter shim over ai-edge-litert (preferred: its XNNPACK runs int8) and tflite-runtime 2.14.

Shape legend: N crops, H x W input pixels, h x w heatmap cells, K joints.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tfpose.errors import InputError

RUNTIMES = ("ai_edge_litert", "tflite_runtime")


def _import_runtime(preferred: str | None = None):
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
    """A .tflite heatmap model: raw uint8 crops in, float heatmaps out, whatever its I/O types."""

    def __init__(self, path: str | Path, num_threads: int = 1, xnnpack: bool = True, runtime: str | None = None):
        self.path = Path(path)
        if not self.path.is_file():
            raise InputError("model file not found", path=self.path)
        self.runtime, self.runtime_version, module = _import_runtime(runtime)
        kwargs = {"model_path": str(self.path), "num_threads": num_threads}
        if not xnnpack:
            kwargs["experimental_op_resolver_type"] = module.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
        try:
            self.interpreter = module.Interpreter(**kwargs)
            self.interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as e:
            raise InputError(f"not a loadable TFLite model ({e})", path=self.path) from None
        self.num_threads = num_threads
        self.xnnpack = xnnpack
        inputs, outputs = self.interpreter.get_input_details(), self.interpreter.get_output_details()
        if len(inputs) != 1:
            raise InputError(f"expected one input tensor, found {len(inputs)}", path=self.path)
        self._in, self._out = inputs[0], outputs[0]
        self.input = _info(self._in)
        self.output = _info(self._out)
        if len(self.input.shape) != 4 or self.input.shape[-1] != 3:
            raise InputError(f"input shape {self.input.shape} is not [1, H, W, 3]", path=self.path)

    @property
    def input_size(self) -> tuple[int, int]:
        """(W, H) pixels."""
        return int(self.input.shape[2]), int(self.input.shape[1])

    @property
    def delegate(self) -> str:
        return "XNNPACK" if self.xnnpack else "builtin kernels"

    def run(self, crop: np.ndarray) -> np.ndarray:
        """One crop (H, W, 3) uint8 -> the raw output tensor, dequantized to float32."""
        self.interpreter.set_tensor(self._in["index"], self.quantize_input(crop[None]))
        self.interpreter.invoke()
        return self.dequantize_output(self.interpreter.get_tensor(self._out["index"]))[0]

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
        info = self.output
        if info.quantized:
            return (raw.astype(np.float32) - info.zero_point) * info.scale
        return raw.astype(np.float32)


def _info(detail: dict) -> TensorInfo:
    scale, zero_point = detail.get("quantization", (0.0, 0))
    return TensorInfo(tuple(int(v) for v in detail["shape"]), np.dtype(detail["dtype"]), float(scale), int(zero_point))
