"""Stacked hourglass (Newell et al. 2016): the heavy teacher, and FPD's lightweight 4-stack student."""

from __future__ import annotations

from tfpose._keras import keras
from tfpose.models.blocks import bottleneck, conv_bn_relu, normalise_input
from tfpose.models.registry import register

layers = keras.layers


def _hourglass(x, depth: int, channels: int, name: str):
    up = bottleneck(x, channels, f"{name}_up")
    low = layers.MaxPool2D(2, name=f"{name}_pool")(x)
    low = bottleneck(low, channels, f"{name}_low1")
    low = _hourglass(low, depth - 1, channels, f"{name}_d{depth - 1}") if depth > 1 else \
        bottleneck(low, channels, f"{name}_low2")
    low = bottleneck(low, channels, f"{name}_low3")
    low = layers.UpSampling2D(2, interpolation="nearest", name=f"{name}_upsample")(low)
    return layers.Add(name=f"{name}_merge")([up, low])


def _max_depth(input_size: tuple[int, int], stride: int = 4) -> int:
    """How many times the heatmap grid halves exactly."""
    w, h = input_size[0] // stride, input_size[1] // stride
    depth = 0
    while w % 2 == 0 and h % 2 == 0 and w > 2 and h > 2:
        w, h, depth = w // 2, h // 2, depth + 1
    return depth


@register("hourglass", "teacher", (256, 256), "Stacked hourglass, intermediate supervision (Newell et al. 2016)",
          tiny=dict(stacks=2, channels=32, depth=2))
def stacked_hourglass(input_size=(256, 256), num_keypoints=17, stacks: int = 2, channels: int = 256,
                      depth: int = 4, intermediate: bool = False) -> keras.Model:
    """Raw pixels (B, H, W, 3) -> heatmaps (B, H/4, W/4, K), or one per stack with ``intermediate``.
    ``stacks`` hourglasses of width ``channels``; ``depth`` is capped by how often the grid halves.
    8 stacks x 256 channels is the classic teacher (FPD's, and Park et al.'s 8-stage one)."""
    depth = max(1, min(depth, _max_depth(input_size)))
    inputs = keras.Input((input_size[1], input_size[0], 3), name="image")
    x = normalise_input(inputs)
    x = conv_bn_relu(x, min(64, channels), 7, 2, name="stem1")
    x = bottleneck(x, min(128, channels), "stem2")
    x = layers.MaxPool2D(2, name="stem_pool")(x)
    x = bottleneck(x, min(128, channels), "stem3")
    x = bottleneck(x, channels, "stem4")
    outputs = []
    for s in range(stacks):
        y = _hourglass(x, depth, channels, f"hg{s}")
        y = bottleneck(y, channels, f"hg{s}_res")
        y = conv_bn_relu(y, channels, 1, name=f"hg{s}_feat")
        heatmaps = layers.Conv2D(num_keypoints, 1, name=f"hg{s}_heatmaps")(y)
        outputs.append(heatmaps)
        if s < stacks - 1:
            x = layers.Add(name=f"hg{s}_remap")([
                x, layers.Conv2D(channels, 1, name=f"hg{s}_feat_remap")(y),
                layers.Conv2D(channels, 1, name=f"hg{s}_heatmap_remap")(heatmaps)])
    return keras.Model(inputs, outputs if intermediate else outputs[-1], name=f"hourglass{stacks}x{channels}")


@register("hourglass_fpd_student", "student", (256, 256), "FPD's lightweight student: 4-stack, 128-channel "
          "hourglass (Zhang et al. 2019)", tiny=dict(stacks=2, channels=32, depth=2))
def hourglass_fpd_student(input_size=(256, 256), num_keypoints=17, stacks: int = 4, channels: int = 128,
                          depth: int = 4, intermediate: bool = False) -> keras.Model:
    """The hourglass with FPD's student defaults; FPD supervises every stack, hence ``intermediate``."""
    return stacked_hourglass(input_size, num_keypoints, stacks, channels, depth, intermediate)
