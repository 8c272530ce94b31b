"""MnasNet-B1 encoder (Tan et al. 2019; torchvision's ``mnasnet1_0``, which Park et al.'s PyTorch comparison
most likely used: its size lands their 5.42 M, A1's does not) with a heatmap head."""

from __future__ import annotations

from typing import Sequence

from tfpose._keras import keras
from tfpose.models.blocks import StrideBudget, conv_bn, depthwise_bn, inverted_residual, make_divisible
from tfpose.models.heads import Head, encoder_with_head
from tfpose.models.registry import register

# (channels, kernel, stride, expansion, repeats) of each stack after the stem
STACKS = ((24, 3, 2, 3, 3), (40, 5, 2, 3, 3), (80, 5, 2, 6, 3), (96, 3, 1, 6, 2), (192, 5, 2, 6, 4),
          (320, 3, 1, 6, 1))


def mnasnet_encoder(x, output_stride: int = 32, width: float = 1.0):
    """(B, H, W, 3) -> (B, H/s, W/s, 1280 * width)."""
    budget = StrideBudget(output_stride)
    x = conv_bn(x, make_divisible(32 * width), 3, budget(2), name="stem")
    x = depthwise_bn(x, 3, 1, "relu", name="stem_dw")
    x = conv_bn(x, make_divisible(16 * width), 1, act=None, name="stem_pw")
    block = 0
    for c, k, s, t, n in STACKS:
        for i in range(n):
            block += 1
            x = inverted_residual(x, make_divisible(c * width), x.shape[-1] * t, k, budget(s if i == 0 else 1),
                                  "relu", name=f"block{block}")
    return conv_bn(x, make_divisible(1280 * width), 1, name="last")


@register("mnasnet", "student", (192, 256), "MnasNet-B1 encoder + DUC (Park et al. 2021)", tiny=dict(width=0.25))
def mnasnet(input_size=(192, 256), num_keypoints=17, width: float = 1.0, head: Head = "duc",
            head_channels: Sequence[int] | None = None) -> keras.Model:
    """Raw pixels (B, H, W, 3) -> heatmaps (B, H/4, W/4, K); ``width`` scales every layer; heads: see heads.py."""
    return encoder_with_head("mnasnet", input_size, num_keypoints,
                             lambda x, s: mnasnet_encoder(x, s, width), head, head_channels)
