"""PeleeNet encoder (Wang et al. 2018) + DUC PixelShuffle decoder: the student of Park et al. (Sensors 2021)."""

from __future__ import annotations

from tfpose._keras import keras
from tfpose.models.blocks import Act, StrideBudget, conv_bn
from tfpose.models.heads import Head, duc_decoder, encoder_with_head  # noqa: F401  (duc_decoder: its old home)
from tfpose.models.registry import register

layers = keras.layers


def _stem(x, act: Act, channels: int = 32):
    x = conv_bn(x, channels, 3, 2, act, name="stem1")
    a = conv_bn(x, channels // 2, 1, act=act, name="stem2a")
    a = conv_bn(a, channels, 3, 2, act, name="stem2b")
    b = layers.MaxPool2D(2, name="stem_pool")(x)
    x = layers.Concatenate(name="stem_concat")([a, b])
    return conv_bn(x, channels, 1, act=act, name="stem3")


def _two_way_dense_layer(x, growth: int, bottleneck_width: int, act: Act, name: str):
    half = growth // 2
    inner = max(8, int(half * bottleneck_width / 4) * 4)
    a = conv_bn(x, inner, 1, act=act, name=f"{name}_a1")
    a = conv_bn(a, half, 3, act=act, name=f"{name}_a2")
    b = conv_bn(x, inner, 1, act=act, name=f"{name}_b1")
    b = conv_bn(b, half, 3, act=act, name=f"{name}_b2")
    b = conv_bn(b, half, 3, act=act, name=f"{name}_b3")
    return layers.Concatenate(name=f"{name}_concat")([x, a, b])


def peleenet_encoder(x, growth: int = 32, stage_layers=(3, 4, 8, 6), bottleneck_widths=(1, 2, 4, 4),
                     output_stride: int = 32, act: Act = "relu"):
    """(B, H, W, 3) normalised -> (B, H/s, W/s, C): C = 704 for the published configuration."""
    budget = StrideBudget(output_stride)
    budget(4)                                          # the stem
    x = _stem(x, act)
    for stage, (n, bw) in enumerate(zip(stage_layers, bottleneck_widths)):
        for i in range(n):
            x = _two_way_dense_layer(x, growth, bw, act, f"stage{stage + 1}_dense{i + 1}")
        x = conv_bn(x, x.shape[-1], 1, act=act, name=f"stage{stage + 1}_transition")
        if stage < len(stage_layers) - 1 and budget(2) == 2:
            x = layers.AveragePooling2D(2, name=f"stage{stage + 1}_pool")(x)
    return x


@register("peleenet_duc", "student", (192, 256), "PeleeNet encoder + DUC decoder (Park et al. 2021)",
          tiny=dict(growth=16, stage_layers=(1, 1, 1, 1), bottleneck_widths=(1, 1, 2, 2), duc_channels=(32, 16, 16)))
def peleenet_duc(input_size=(192, 256), num_keypoints=17, growth: int = 32, stage_layers=(3, 4, 8, 6),
                 bottleneck_widths=(1, 2, 4, 4), duc_channels=(352, 128, 64), head: Head = "duc",
                 act: Act = "relu") -> keras.Model:
    """Raw pixels (B, H, W, 3) -> heatmaps (B, H/4, W/4, K). ``duc_channels``: the DUC head's widths; ``head``
    swaps in another head at its published widths (Park et al. compare 'deconv'; see heads.py). ``act``: the
    paper's 'relu', or 'relu6', whose bounded activations keep int8 calibration ranges tight (BENCHMARKS.md)."""
    def encoder(x, output_stride):
        return peleenet_encoder(x, growth, tuple(stage_layers), tuple(bottleneck_widths), output_stride, act)

    return encoder_with_head("peleenet_duc", input_size, num_keypoints, encoder, head,
                             tuple(duc_channels) if head == "duc" else None, act)
