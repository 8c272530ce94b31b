"""SimpleBaseline (Xiao, Wu, Wei 2018): a ResNet encoder and three 4x4 stride-2 transposed convs - a teacher."""

from __future__ import annotations

from typing import Sequence

from tfpose._keras import keras
from tfpose.models.blocks import StrideBudget, conv_bn, image_input, normalise_input
from tfpose.models.heads import attach_head
from tfpose.models.registry import register

layers = keras.layers

# depth -> (block kind, blocks per stage)
RESNETS = {18: ("basic", (2, 2, 2, 2)), 34: ("basic", (3, 4, 6, 3)), 50: ("bottleneck", (3, 4, 6, 3)),
           101: ("bottleneck", (3, 4, 23, 3)), 152: ("bottleneck", (3, 8, 36, 3))}


def _residual(x, y, strides: int, name: str):
    """Add the (projected, when the shape changes) skip x to the branch y, then ReLU."""
    if strides != 1 or x.shape[-1] != y.shape[-1]:
        x = conv_bn(x, y.shape[-1], 1, strides, act=None, name=f"{name}_skip")
    return layers.ReLU(name=f"{name}_out")(layers.Add(name=f"{name}_add")([x, y]))


def _basic(x, filters: int, strides: int, name: str):
    y = conv_bn(x, filters, 3, strides, name=f"{name}_a")
    y = conv_bn(y, filters, 3, act=None, name=f"{name}_b")
    return _residual(x, y, strides, name)


def _bottleneck(x, filters: int, strides: int, name: str):
    """ResNet v1.5 (torchvision): the stride sits on the 3x3 conv."""
    y = conv_bn(x, filters, 1, name=f"{name}_a")
    y = conv_bn(y, filters, 3, strides, name=f"{name}_b")
    y = conv_bn(y, 4 * filters, 1, act=None, name=f"{name}_c")
    return _residual(x, y, strides, name)


def resnet_encoder(x, depth: int = 50, width: int = 64, output_stride: int = 32):
    """(B, H, W, 3) -> (B, H/s, W/s, 8 * width), times 4 for the bottleneck depths (2048 for ResNet-50)."""
    if depth not in RESNETS:
        raise ValueError(f"ResNet depth must be one of {sorted(RESNETS)}, got {depth}")
    kind, stages = RESNETS[depth]
    block = _basic if kind == "basic" else _bottleneck
    budget = StrideBudget(output_stride)
    x = conv_bn(x, width, 7, budget(2), name="stem")
    x = layers.MaxPool2D(3, budget(2), padding="same", name="stem_pool")(x)
    for stage, n in enumerate(stages):
        for i in range(n):
            strides = budget(2) if i == 0 and stage > 0 else 1
            x = block(x, width * 2 ** stage, strides, f"stage{stage + 1}_block{i + 1}")
    return x


@register("simplebaseline", "teacher", (192, 256), "ResNet + three deconvolutions (SimpleBaseline, Xiao et al. 2018)",
          tiny=dict(depth=18, width=8, deconv_channels=(32, 32, 32)))
def simplebaseline(input_size=(192, 256), num_keypoints=17, depth: int = 50, width: int = 64,
                   deconv_channels: Sequence[int] = (256, 256, 256), intermediate: bool = False) -> keras.Model:
    """Raw pixels (B, H, W, 3) -> heatmaps (B, H/4, W/4, K). ``depth``: 18, 34, 50, 101 or 152; ``width``: the first
    stage's channels. One stage, so ``intermediate`` (asked of every teacher) returns the single output as a list."""
    inputs = image_input(input_size, 32, "simplebaseline")
    features = resnet_encoder(normalise_input(inputs), depth, width)
    heatmaps = attach_head(features, "deconv", num_keypoints, deconv_channels)
    return keras.Model(inputs, [heatmaps] if intermediate else heatmaps, name=f"simplebaseline_resnet{depth}")
