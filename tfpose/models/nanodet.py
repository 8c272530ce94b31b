"""NanoDet-m (RangiLyu 2020, Apache-2.0), the person detector: ShuffleNetV2 1.0x with LeakyReLU, a PAN and a GFL
head, rebuilt in tf_keras; ``import_onnx_weights`` copies the upstream weights in from its ONNX export, where
BatchNorm is already folded into the convs (so every conv here has a bias and no BatchNorm).

The graph takes the letterboxed square as raw RGB pixels (1, S, S, 3), 0..255, and does NanoDet's own
preprocessing itself (BGR order: folded into the stem's kernel; mean and std: a Rescaling), so an app feeds
pixels. Two outputs, the cells of strides 8, 16 and 32 concatenated in that order, each grid row-major:
    scores     (1, N, C)   sigmoid probabilities of the kept classes (default: COCO class 0, person, alone)
    distances  (1, N, 32)  logits of the 8 distance bins of each side (left, top, right, bottom)
with N = sum over strides of (S / s)^2. Decoding (bins, letterbox, NMS) is numpy, in ``tfpose.detection``.
Shape legend: S input side in pixels, h x w cells of one stride, C channels.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from tfpose._keras import keras, tf
from tfpose.detection import MEAN_RGB, REG_MAX, STD_RGB, STRIDES
from tfpose.errors import InputError
from tfpose.models.registry import register

layers = keras.layers

STAGE_CHANNELS = (116, 232, 464)     # ShuffleNetV2 1.0x, stages 2-4
STAGE_REPEATS = (4, 8, 4)
STEM_CHANNELS = 24
LEAKY = 0.1
COCO_CLASSES = 80


@keras.utils.register_keras_serializable(package="tfpose")
class ChannelShuffle(layers.Layer):
    """torchvision's channel shuffle, 2 groups, in NHWC: (B, h, w, 2C) -> (B, h, w, 2C) with the channels of the
    two halves interleaved (a0, b0, a1, b1, ...); the order NanoDet's weights were trained with."""

    def call(self, inputs):
        _, h, w, c = inputs.shape
        halves = tf.reshape(inputs, [-1, h, w, 2, c // 2])
        return tf.reshape(tf.transpose(halves, [0, 1, 2, 4, 3]), [-1, h, w, c])


@keras.utils.register_keras_serializable(package="tfpose")
class SplitHalves(layers.Layer):
    """(B, h, w, 2C) -> the first and the second C channels."""

    def call(self, inputs):
        return tf.split(inputs, 2, axis=-1)

    def compute_output_shape(self, input_shape):
        b, h, w, c = input_shape
        return [(b, h, w, c // 2)] * 2


@keras.utils.register_keras_serializable(package="tfpose")
class EdgePad(layers.Layer):
    """Pad by one cell on every side with a copy of the edge: before a 3x3 max pool this is exact PyTorch
    ``padding=1`` (its -inf padding never wins, and neither does a copy of a cell that is in the window already),
    without a constant that int8 calibration would see."""

    def call(self, inputs):
        return tf.pad(inputs, [[0, 0], [1, 1], [1, 1], [0, 0]], mode="SYMMETRIC")

    def compute_output_shape(self, input_shape):
        b, h, w, c = input_shape
        return (b, h + 2, w + 2, c)


class _Builder:
    """Builds the graph and records every conv in the order of the upstream ONNX graph, for the weight import."""

    def __init__(self):
        self.convs: list[layers.Layer] = []

    def conv(self, x, filters: int, kernel: int, strides: int = 1, act: bool = True, name: str = ""):
        if strides > 1:   # PyTorch pads kernel // 2 on both sides; Keras' "same" pads only after at stride 2
            x = layers.ZeroPadding2D(kernel // 2, name=f"{name}_pad")(x)
        conv = layers.Conv2D(filters, kernel, strides, "valid" if strides > 1 else "same", name=name)
        self.convs.append(conv)
        x = conv(x)
        return layers.LeakyReLU(LEAKY, name=f"{name}_act")(x) if act else x

    def depthwise(self, x, strides: int = 1, act: bool = False, name: str = ""):
        if strides > 1:
            x = layers.ZeroPadding2D(1, name=f"{name}_pad")(x)
        conv = layers.DepthwiseConv2D(3, strides, "valid" if strides > 1 else "same", name=name)
        self.convs.append(conv)
        x = conv(x)
        return layers.LeakyReLU(LEAKY, name=f"{name}_act")(x) if act else x

    def unit(self, x, channels: int, strides: int, name: str):
        """ShuffleNetV2 unit: (B, h, w, C) -> (B, h / s, w / s, channels), shuffled."""
        half = channels // 2
        if strides == 1:
            keep, x = SplitHalves(name=f"{name}_split")(x)
        else:
            keep = self.depthwise(x, strides, name=f"{name}_left_dw")
            keep = self.conv(keep, half, 1, name=f"{name}_left_pw")
        y = self.conv(x, half, 1, name=f"{name}_pw1")
        y = self.depthwise(y, strides, name=f"{name}_dw")
        y = self.conv(y, half, 1, name=f"{name}_pw2")
        return ChannelShuffle(name=f"{name}_shuffle")(layers.Concatenate(name=f"{name}_concat")([keep, y]))


def build_nanodet(input_size: tuple[int, int] = (416, 416), classes: Sequence[int] = (0,), width: int = 96,
                  stage_channels: Sequence[int] = STAGE_CHANNELS, repeats: Sequence[int] = STAGE_REPEATS):
    """(the Keras model, its convs in the upstream ONNX order). ``classes``: COCO class indices kept."""
    side = int(input_size[0])
    if input_size[0] != input_size[1] or side % 32:
        raise InputError(f"NanoDet takes a square input whose side is a multiple of 32, got {list(input_size)}",
                         field="input_size")
    b = _Builder()
    inputs = layers.Input((side, side, 3), name="image")
    x = layers.Rescaling(list(1 / np.asarray(STD_RGB)), offset=list(-np.asarray(MEAN_RGB) / STD_RGB),
                         name="normalise")(inputs)
    x = b.conv(x, STEM_CHANNELS, 3, 2, name="stem")
    x = layers.MaxPool2D(3, 2, name="stem_pool")(EdgePad(name="stem_pool_pad")(x))
    stages = []
    for stage, (channels, count) in enumerate(zip(stage_channels, repeats)):
        for i in range(count):
            x = b.unit(x, channels, 2 if i == 0 else 1, f"stage{stage + 2}_unit{i + 1}")
        stages.append(x)
    # PAN: 1x1 laterals, a top-down pass (bilinear x2, half-pixel) and a bottom-up one (bilinear x0.5 = 2x2 mean)
    lateral = [b.conv(f, width, 1, act=False, name=f"lateral{i}") for i, f in enumerate(stages)]
    top_down = [None, None, lateral[2]]
    for i in (1, 0):
        up = layers.UpSampling2D(2, interpolation="bilinear", name=f"top_down{i}_up")(top_down[i + 1])
        top_down[i] = layers.Add(name=f"top_down{i}")([lateral[i], up])
    levels = [top_down[0]]
    for i in (1, 2):
        down = layers.AveragePooling2D(2, name=f"bottom_up{i}_down")(levels[i - 1])
        levels.append(layers.Add(name=f"bottom_up{i}")([top_down[i], down]))
    scores, distances = [], []
    for i, (level, stride) in enumerate(zip(levels, STRIDES)):
        y = level
        for j in range(2):
            y = b.depthwise(y, act=True, name=f"head{i}_dw{j}")
            y = b.conv(y, width, 1, name=f"head{i}_pw{j}")
        cls = layers.Conv2D(len(classes), 1, name=f"head{i}_cls")
        box = layers.Conv2D(4 * (REG_MAX + 1), 1, name=f"head{i}_box")
        b.convs.append((cls, box))
        cells = (side // stride) ** 2
        scores.append(layers.Reshape((cells, len(classes)), name=f"head{i}_scores")(
            layers.Activation("sigmoid", name=f"head{i}_sigmoid")(cls(y))))
        distances.append(layers.Reshape((cells, 4 * (REG_MAX + 1)), name=f"head{i}_distances")(box(y)))
    outputs = [layers.Concatenate(axis=1, name="scores")(scores),
               layers.Concatenate(axis=1, name="distances")(distances)]
    return keras.Model(inputs, outputs, name=f"nanodet_m_{side}"), b.convs


@register("nanodet_m", "detector", (416, 416), "NanoDet-m person detector (ShuffleNetV2 + PAN + GFL; RangiLyu, "
          "Apache-2.0), weights from its ONNX export", tiny=dict(width=16, stage_channels=(16, 32, 64),
                                                                 repeats=(1, 2, 1)))
def nanodet_m(input_size=(416, 416), onnx: str = "", classes: Sequence[int] = (0,), width: int = 96,
              stage_channels: Sequence[int] = STAGE_CHANNELS, repeats: Sequence[int] = STAGE_REPEATS):
    """Raw RGB letterboxed pixels (1, S, S, 3) -> scores (1, N, len(classes)), distances (1, N, 32).
    ``onnx``: the upstream NanoDet-m ONNX file to copy the weights from (random weights without it)."""
    model, convs = build_nanodet(input_size, classes, width, stage_channels, repeats)
    if onnx:
        import_onnx_weights(convs, onnx, classes)
    return model


def onnx_convs(path: str | Path) -> list[dict]:
    """Every Conv node of an ONNX file in graph order: weight (O, I / groups, kh, kw), bias (O,), group, strides."""
    try:
        import onnx
        from onnx import numpy_helper
    except ImportError:
        raise InputError("reading ONNX weights needs the onnx package (pip install onnx)", path=path) from None
    path = Path(path)
    if not path.is_file():
        raise InputError("ONNX file not found", path=path)
    try:
        graph = onnx.load(str(path)).graph
    except Exception as e:   # onnx raises DecodeError, ValueError, google.protobuf errors ...
        raise InputError(f"not a readable ONNX model ({type(e).__name__}: {e})", path=path) from None
    tensors = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    convs = []
    for node in graph.node:
        if node.op_type != "Conv":
            continue
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        if node.input[1] not in tensors or len(node.input) < 3 or node.input[2] not in tensors:
            raise InputError(f"conv {node.name or node.output[0]} has no constant weight and bias "
                             "(BatchNorm must be folded)", path=path)
        convs.append({"name": node.output[0], "weight": tensors[node.input[1]], "bias": tensors[node.input[2]],
                      "group": int(attrs.get("group", 1)), "strides": tuple(attrs.get("strides", (1, 1)))})
    return convs


def import_onnx_weights(convs: list, path: str | Path, classes: Sequence[int] = (0,)) -> None:
    """Copy the ONNX convs' weights into ``convs`` (from ``build_nanodet``), one by one in graph order, checking
    every shape; the last conv of each head level is split into the kept classes' scores and the distance bins."""
    source = onnx_convs(path)
    if len(source) != len(convs):
        raise InputError(f"the ONNX graph has {len(source)} convs, NanoDet-m at this width has {len(convs)}: "
                         "not a NanoDet-m export", path=path)
    for target, src in zip(convs, source):
        weight, bias = src["weight"], src["bias"]
        if isinstance(target, tuple):                         # the head's shared class + box conv
            cls, box = target
            kernel = weight.transpose(2, 3, 1, 0)             # (O, I, 1, 1) -> (1, 1, I, O)
            if kernel.shape[-1] != COCO_CLASSES + 4 * (REG_MAX + 1):
                raise InputError(f"conv {src['name']} has {kernel.shape[-1]} outputs, expected "
                                 f"{COCO_CLASSES} classes + {4 * (REG_MAX + 1)} bins", path=path)
            keep = list(classes)
            _assign(cls, kernel[..., keep], bias[keep], src, path)
            _assign(box, kernel[..., COCO_CLASSES:], bias[COCO_CLASSES:], src, path)
        elif isinstance(target, layers.DepthwiseConv2D):
            _assign(target, weight.transpose(2, 3, 0, 1), bias, src, path)      # (C, 1, 3, 3) -> (3, 3, C, 1)
        else:
            kernel = weight.transpose(2, 3, 1, 0)
            if target.name == "stem":
                kernel = kernel[:, :, ::-1]                   # NanoDet reads BGR; this graph is fed RGB
            _assign(target, kernel, bias, src, path)


def _assign(layer, kernel: np.ndarray, bias: np.ndarray, src: dict, path) -> None:
    want = [tuple(w.shape) for w in layer.get_weights()]
    if want != [kernel.shape, bias.shape] or tuple(layer.strides) != src["strides"]:
        raise InputError(f"conv {src['name']} holds {kernel.shape}, {bias.shape} at strides {src['strides']}; "
                         f"layer {layer.name} needs {want} at strides {tuple(layer.strides)}: not a NanoDet-m "
                         "export of this width", path=path)
    layer.set_weights([np.ascontiguousarray(kernel, np.float32), bias.astype(np.float32)])
