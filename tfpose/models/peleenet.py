"""PeleeNet encoder (Wang et al. 2018) + DUC PixelShuffle decoder: the student of Park et al. (Sensors 2021)."""

from __future__ import annotations

from tfpose._keras import keras
from tfpose.models.blocks import PixelShuffle, conv_bn_relu, normalise_input
from tfpose.models.registry import register

layers = keras.layers


def _stem(x, channels: int = 32):
    x = conv_bn_relu(x, channels, 3, 2, name="stem1")
    a = conv_bn_relu(x, channels // 2, 1, name="stem2a")
    a = conv_bn_relu(a, channels, 3, 2, name="stem2b")
    b = layers.MaxPool2D(2, name="stem_pool")(x)
    x = layers.Concatenate(name="stem_concat")([a, b])
    return conv_bn_relu(x, channels, 1, name="stem3")


def _two_way_dense_layer(x, growth: int, bottleneck_width: int, name: str):
    half = growth // 2
    inner = max(8, int(half * bottleneck_width / 4) * 4)
    a = conv_bn_relu(x, inner, 1, name=f"{name}_a1")
    a = conv_bn_relu(a, half, 3, name=f"{name}_a2")
    b = conv_bn_relu(x, inner, 1, name=f"{name}_b1")
    b = conv_bn_relu(b, half, 3, name=f"{name}_b2")
    b = conv_bn_relu(b, half, 3, name=f"{name}_b3")
    return layers.Concatenate(name=f"{name}_concat")([x, a, b])


def peleenet_encoder(x, growth: int = 32, stage_layers=(3, 4, 8, 6), bottleneck_widths=(1, 2, 4, 4)):
    """(B, H, W, 3) normalised -> (B, H/32, W/32, C): C = 704 for the published configuration."""
    x = _stem(x)
    for stage, (n, bw) in enumerate(zip(stage_layers, bottleneck_widths)):
        for i in range(n):
            x = _two_way_dense_layer(x, growth, bw, f"stage{stage + 1}_dense{i + 1}")
        x = conv_bn_relu(x, x.shape[-1], 1, name=f"stage{stage + 1}_transition")
        if stage < len(stage_layers) - 1:
            x = layers.AveragePooling2D(2, name=f"stage{stage + 1}_pool")(x)
    return x


def duc_decoder(x, num_keypoints: int, channels=(352, 128, 64)):
    """Three x2 PixelShuffle stages, each followed by 3x3 conv + BN + ReLU, then a 1x1 conv to K heatmaps."""
    for i, c in enumerate(channels):
        x = PixelShuffle(2, name=f"duc{i + 1}_shuffle")(x)
        x = conv_bn_relu(x, c, 3, name=f"duc{i + 1}")
    return layers.Conv2D(num_keypoints, 1, name="heatmaps")(x)


@register("peleenet_duc", "student", (192, 256), "PeleeNet encoder + DUC decoder (Park et al. 2021)")
def peleenet_duc(input_size=(192, 256), num_keypoints=17, growth: int = 32, stage_layers=(3, 4, 8, 6),
                 bottleneck_widths=(1, 2, 4, 4), duc_channels=(352, 128, 64)) -> keras.Model:
    if input_size[0] % 32 or input_size[1] % 32:
        raise ValueError(f"peleenet_duc needs an input size divisible by 32 (stride of its encoder), got {input_size}")
    inputs = keras.Input((input_size[1], input_size[0], 3), name="image")
    x = peleenet_encoder(normalise_input(inputs), growth, tuple(stage_layers), tuple(bottleneck_widths))
    outputs = duc_decoder(x, num_keypoints, tuple(duc_channels))
    return keras.Model(inputs, outputs, name="peleenet_duc")
