"""Heatmap heads: encoder features (B, H/s, W/s, C) -> heatmaps (B, H/4, W/4, K), each x2 stage one upsampling.

- ``duc``: Park et al.'s DUC decoder - PixelShuffle x2, then 3x3 conv + BN + ReLU, per stage; 1x1 to K.
- ``deconv``: SimpleBaseline's head - 4x4 stride-2 transposed convs with ReLU; 1x1 to K.
- ``slim``: EfficientPose's head - two 4x4 stride-2 transposed convs (64, 32 channels), then spatial
  information correction: depthwise 3x3, ReLU, 1x1 to K. Needs stride-16 features.

Transposed convs carry a bias instead of a BatchNorm: BN after Conv2DTranspose leaves float islands in
int8 TFLite after QAT (TOOLCHAIN.md). The price, measured with ai-edge-litert 2.3: the converter then does not
fuse the ReLU into the int8 TRANSPOSE_CONV, and XNNPACK leaves a lone int8 RELU to the builtin kernel, one
graph split per transposed conv (BN + ReLU would fuse).
"""

from __future__ import annotations

from typing import Callable, Literal, Sequence

from tfpose._keras import keras
from tfpose.models.blocks import Act, PixelShuffle, conv_bn, image_input, normalise_input

layers = keras.layers

Head = Literal["duc", "deconv", "slim"]
HEADS: tuple[Head, ...] = ("duc", "deconv", "slim")


def duc_decoder(x, num_keypoints: int, channels: Sequence[int] = (352, 128, 64), act: Act = "relu"):
    """Three x2 PixelShuffle stages, each followed by 3x3 conv + BN + ``act``, then a 1x1 conv to K heatmaps."""
    for i, c in enumerate(channels):
        x = PixelShuffle(2, name=f"duc{i + 1}_shuffle")(x)
        x = conv_bn(x, c, 3, act=act, name=f"duc{i + 1}")
    return layers.Conv2D(num_keypoints, 1, name="heatmaps")(x)


def _upsample(x, channels: Sequence[int], prefix: str):
    for i, c in enumerate(channels):
        x = layers.Conv2DTranspose(c, 4, 2, padding="same", name=f"{prefix}{i + 1}_convt")(x)
        x = layers.ReLU(name=f"{prefix}{i + 1}_relu")(x)
    return x


def deconv_head(x, num_keypoints: int, channels: Sequence[int] = (256, 256, 256)):
    """SimpleBaseline (Xiao et al. 2018): transposed convs 4x4 stride 2, then a 1x1 conv to K heatmaps."""
    return layers.Conv2D(num_keypoints, 1, name="heatmaps")(_upsample(x, channels, "deconv"))


def slim_head(x, num_keypoints: int, channels: Sequence[int] = (64, 32)):
    """EfficientPose (Zhang et al. 2021): transposed convs, then depthwise 3x3 + ReLU + 1x1 to K heatmaps."""
    x = _upsample(x, channels, "slim")
    x = layers.DepthwiseConv2D(3, padding="same", name="sic_dw")(x)
    x = layers.ReLU(name="sic_relu")(x)
    return layers.Conv2D(num_keypoints, 1, name="heatmaps")(x)


def default_channels(head: Head, encoder_channels: int) -> tuple[int, ...]:
    """Each head's published widths. DUC: Park et al.'s PeleeNet decoder is (352, 128, 64) on 704 channels; the
    first stage is half the encoder width for the other encoders too, which lands their published sizes."""
    if head == "duc":
        return (max(64, encoder_channels // 16 * 8), 128, 64)
    return {"deconv": (256, 256, 256), "slim": (64, 32)}[head]


def head_stride(head: Head) -> int:
    """The encoder stride each head expects: 32 for the three-stage heads, 16 for the two-stage slim head."""
    if head not in HEADS:
        raise ValueError(f"unknown head '{head}'; choose one of {', '.join(HEADS)}")
    return 16 if head == "slim" else 32


def attach_head(x, head: Head, num_keypoints: int, channels: Sequence[int] | None = None, act: Act = "relu"):
    """Features (B, H/s, W/s, C) -> heatmaps (B, H/4, W/4, K); ``channels`` defaults to ``default_channels``;
    ``act`` is the DUC stages' activation (the other heads keep their papers' ReLU)."""
    stages = head_stride(head).bit_length() - 3          # log2(stride / 4)
    channels = tuple(channels or default_channels(head, x.shape[-1]))
    if len(channels) != stages:
        raise ValueError(f"the {head} head has {stages} x2 stages, so it needs {stages} channel counts, got {channels}")
    if head == "duc":
        return duc_decoder(x, num_keypoints, channels, act)
    return {"deconv": deconv_head, "slim": slim_head}[head](x, num_keypoints, channels)


def encoder_with_head(name: str, input_size: tuple[int, int], num_keypoints: int,
                      encoder: Callable[..., object], head: Head, head_channels: Sequence[int] | None = None,
                      act: Act = "relu"):
    """Raw pixels (B, H, W, 3) -> heatmaps (B, H/4, W/4, K) through ``encoder(normalised, output_stride)``,
    an inline functional encoder, and the chosen head, in one flat functional model."""
    stride = head_stride(head)
    inputs = image_input(input_size, stride, name)
    features = encoder(normalise_input(inputs), stride)
    return keras.Model(inputs, attach_head(features, head, num_keypoints, head_channels, act), name=name)
