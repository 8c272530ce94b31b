"""ShuffleNetV2 encoder (Ma et al. 2018) with a heatmap head: one of Park et al.'s encoders (Sensors 2021)."""

from __future__ import annotations

from typing import Sequence

from tfpose._keras import keras, tf
from tfpose.models.blocks import StrideBudget, conv_bn, depthwise_bn
from tfpose.models.heads import Head, encoder_with_head
from tfpose.models.registry import register

layers = keras.layers

# width multiplier -> channels of (stem, stage 2, stage 3, stage 4, last conv)
CHANNELS = {0.5: (24, 48, 96, 192, 1024), 1.0: (24, 116, 232, 464, 1024),
            1.5: (24, 176, 352, 704, 1024), 2.0: (24, 244, 488, 976, 2048)}
REPEATS = (4, 8, 4)


@keras.utils.register_keras_serializable(package="tfpose")
class ShuffleSplit(layers.Layer):
    """Channel shuffle (2 groups) then split in halves, at once: (B, h, w, 2C) -> two (B, h, w, C), the even and
    the odd channels; so a unit's concat needs no shuffle of its own (Megvii's reference does the same).

    A layer of its own rather than a Lambda, because tfmot's pruning and QAT can then be told how to treat it.
    Written as reshape-transpose-reshape-split: XNNPACK takes all four in int8, not the shorter UNPACK.
    """

    def call(self, inputs):
        _, h, w, c = inputs.shape
        pairs = tf.transpose(tf.reshape(inputs, [-1, h, w, c // 2, 2]), [0, 1, 2, 4, 3])
        return tf.split(tf.reshape(pairs, [-1, h, w, c]), 2, axis=-1)

    def compute_output_shape(self, input_shape):
        b, h, w, c = input_shape
        return [(b, h, w, c // 2)] * 2


def _unit(x, channels: int, strides: int, name: str):
    """(B, h, w, C) -> (B, h / s, w / s, channels): stride 1 keeps half the channels and refines the other half;
    stride 2 (the first unit of a stage) runs both halves' branches on the whole input."""
    if strides == 1 and x.shape[-1] == channels:
        keep, x = ShuffleSplit(name=f"{name}_split")(x)
    else:
        keep = depthwise_bn(x, 3, strides, None, name=f"{name}_left_dw")
        keep = conv_bn(keep, channels // 2, 1, name=f"{name}_left_pw")
    y = conv_bn(x, channels // 2, 1, name=f"{name}_pw1")
    y = depthwise_bn(y, 3, strides, None, name=f"{name}_dw")
    y = conv_bn(y, channels // 2, 1, name=f"{name}_pw2")
    return layers.Concatenate(name=f"{name}_concat")([keep, y])


def shufflenetv2_encoder(x, output_stride: int = 32, width: float = 1.0):
    """(B, H, W, 3) -> (B, H/s, W/s, 1024) (2048 at width 2.0)."""
    if width not in CHANNELS:
        raise ValueError(f"ShuffleNetV2 is defined for widths {sorted(CHANNELS)}, got {width}")
    stem, *stages, last = CHANNELS[width]
    budget = StrideBudget(output_stride)
    x = conv_bn(x, stem, 3, budget(2), name="stem")
    x = layers.MaxPool2D(3, budget(2), padding="same", name="stem_pool")(x)
    for stage, (channels, repeats) in enumerate(zip(stages, REPEATS)):
        for i in range(repeats):
            x = _unit(x, channels, budget(2) if i == 0 else 1, f"stage{stage + 2}_unit{i + 1}")
    return conv_bn(x, last, 1, name="last")


@register("shufflenetv2", "student", (192, 256), "ShuffleNetV2 encoder + DUC (Park et al. 2021)",
          tiny=dict(width=0.5, head_channels=(64, 32, 16)))
def shufflenetv2(input_size=(192, 256), num_keypoints=17, width: float = 1.0, head: Head = "duc",
                 head_channels: Sequence[int] | None = None) -> keras.Model:
    """Raw pixels (B, H, W, 3) -> heatmaps (B, H/4, W/4, K); ``width`` in 0.5, 1.0, 1.5, 2.0; heads: see heads.py."""
    return encoder_with_head("shufflenetv2", input_size, num_keypoints,
                             lambda x, s: shufflenetv2_encoder(x, s, width), head, head_channels)
