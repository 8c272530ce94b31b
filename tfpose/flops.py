"""Multiply-accumulate (MAC) counts of functional Keras models, layer by layer.

Convention: one MAC = one multiply and one add; **FLOPs = 2 x MACs**, which is what Park et al. (and most pose
papers' "GFLOPs") report. Counted: Conv2D, DepthwiseConv2D, SeparableConv2D, Conv2DTranspose and Dense. Not
counted: BatchNorm (folded into the conv for inference), biases, activations, additions, pooling and
resampling - together a few per cent at most. A transposed conv counts what it computes, input cells x kernel
x channels; PyTorch counters that count it per output cell (thop, ptflops) give stride^2 = 4x more for a
4x4 stride-2 layer, which is how Park et al. arrive at 9.19 GFLOPs for their deconv(256, 256, 256) head.
"""

from __future__ import annotations

import math

from tfpose._keras import keras

layers = keras.layers


def _cells(shape) -> int:
    """Spatial positions of a (B, ..., C) shape."""
    return math.prod(int(d) for d in shape[1:-1])


def layer_macs(layer) -> int:
    """MACs of one call of ``layer`` at batch 1 (0 for layers that are not counted)."""
    if isinstance(layer, layers.Conv2DTranspose):
        k = math.prod(layer.kernel_size)
        return _cells(layer.input_shape) * k * layer.input_shape[-1] * layer.filters
    if isinstance(layer, layers.SeparableConv2D):
        k = math.prod(layer.kernel_size)
        c_in, depthwise = layer.input_shape[-1], layer.depth_multiplier
        return _cells(layer.output_shape) * (k * c_in * depthwise + c_in * depthwise * layer.filters)
    if isinstance(layer, layers.DepthwiseConv2D):
        k = math.prod(layer.kernel_size)
        return _cells(layer.output_shape) * k * layer.input_shape[-1] * layer.depth_multiplier
    if isinstance(layer, layers.Conv2D):
        k = math.prod(layer.kernel_size)
        return _cells(layer.output_shape) * k * layer.input_shape[-1] // layer.groups * layer.filters
    if isinstance(layer, layers.Dense):
        return math.prod(int(d) for d in layer.output_shape[1:-1]) * layer.input_shape[-1] * layer.units
    return 0


def macs_by_layer(model: keras.Model) -> dict[str, int]:
    """{layer name: MACs} over a flat functional model (each layer called once), batch 1."""
    return {layer.name: layer_macs(layer) for layer in model.layers}


def count_macs(model: keras.Model) -> int:
    """Total multiply-accumulates of one forward pass at batch 1."""
    return sum(macs_by_layer(model).values())


def gflops(model: keras.Model) -> float:
    """Papers' GFLOPs: 2 x MACs / 1e9."""
    return 2 * count_macs(model) / 1e9
