"""MobileNetV1 / V2 / V3 encoders (Howard et al. 2017; Sandler et al. 2018; Howard et al. 2019) with a heatmap
head - the encoders of Park et al.'s comparison (Sensors 2021) - and an EfficientPose-style slim-head student.

V1 and V2 are tf_keras.applications' own models (standard layer names, so ImageNet weights and the MoveNet file
load by name: ``tfpose.models.init``). V3 and the slim student's V2 blocks are built here, from ``blocks.py``:
those encoders map normalised pixels (B, H, W, 3) to features (B, H/s, W/s, C), s = ``output_stride``, and end
with the last 1x1 conv of torchvision's ``features`` (960 / 576 channels), scaled by ``width`` too.
"""

from __future__ import annotations

from typing import Literal, Sequence

from tfpose._keras import keras
from tfpose.models.blocks import BN, StrideBudget, conv_bn, inverted_residual, make_divisible
from tfpose.models.heads import Head, encoder_with_head
from tfpose.models.registry import register

# (expansion t, channels c, repeats n, stride s)
V2_STAGES = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2),
             (6, 320, 1, 1))
# (kernel, expanded channels, channels, squeeze-excite, activation, stride)
V3_LARGE = ((3, 16, 16, False, "relu", 1), (3, 64, 24, False, "relu", 2), (3, 72, 24, False, "relu", 1),
            (5, 72, 40, True, "relu", 2), (5, 120, 40, True, "relu", 1), (5, 120, 40, True, "relu", 1),
            (3, 240, 80, False, "hswish", 2), (3, 200, 80, False, "hswish", 1), (3, 184, 80, False, "hswish", 1),
            (3, 184, 80, False, "hswish", 1), (3, 480, 112, True, "hswish", 1), (3, 672, 112, True, "hswish", 1),
            (5, 672, 160, True, "hswish", 2), (5, 960, 160, True, "hswish", 1), (5, 960, 160, True, "hswish", 1))
V3_SMALL = ((3, 16, 16, True, "relu", 2), (3, 72, 24, False, "relu", 2), (3, 88, 24, False, "relu", 1),
            (5, 96, 40, True, "hswish", 2), (5, 240, 40, True, "hswish", 1), (5, 240, 40, True, "hswish", 1),
            (5, 120, 48, True, "hswish", 1), (5, 144, 48, True, "hswish", 1), (5, 288, 96, True, "hswish", 2),
            (5, 576, 96, True, "hswish", 1), (5, 576, 96, True, "hswish", 1))


def mobilenetv2_encoder(x, output_stride: int = 32, width: float = 1.0, last: bool = True):
    """(B, H, W, 3) -> (B, H/s, W/s, 1280 * width), or 320 * width without the ``last`` 1x1 conv."""
    budget = StrideBudget(output_stride)
    x = conv_bn(x, make_divisible(32 * width), 3, budget(2), "relu6", name="stem")
    block = 0
    for t, c, n, s in V2_STAGES:
        for i in range(n):
            block += 1
            x = inverted_residual(x, make_divisible(c * width), x.shape[-1] * t, 3, budget(s if i == 0 else 1),
                                  "relu6", name=f"block{block}")
    return conv_bn(x, make_divisible(1280 * width), 1, act="relu6", name="last") if last else x


def mobilenetv3_encoder(x, output_stride: int = 32, width: float = 1.0, blocks=V3_LARGE):
    """(B, H, W, 3) -> (B, H/s, W/s, 6 * last block width): 960 (Large) or 576 (Small) at width 1."""
    budget = StrideBudget(output_stride)
    x = conv_bn(x, make_divisible(16 * width), 3, budget(2), "hswish", name="stem")
    for i, (k, e, c, se, act, s) in enumerate(blocks):
        expand = make_divisible(e * width)
        x = inverted_residual(x, make_divisible(c * width), expand, k, budget(s), act,
                              se=make_divisible(expand // 4) if se else 0, name=f"block{i + 1}")
    return conv_bn(x, make_divisible(6 * blocks[-1][2] * width), 1, act="hswish", name="last")


# The stride-4, 8, 16 and 32 features of the tf_keras.applications encoders, by layer name: what a pyramid head
# taps (MoveNet's laterals for V2).
PYRAMID_TAPS = {
    "mobilenetv1": ("conv_pw_3_relu", "conv_pw_5_relu", "conv_pw_11_relu", "conv_pw_13_relu"),
    "mobilenetv2": ("block_2_add", "block_5_add", "block_9_add", "out_relu"),
}
ApplicationHead = Literal["fpn", "duc", "deconv", "slim"]


def applications_encoder(family: str, inputs, width: float):
    """The tf_keras.applications encoder of ``family`` built on ``inputs`` (B, H, W, 3) in [-1, 1], flat in the
    caller's graph, so its layers keep the standard names that ImageNet weights and the MoveNet file use.
    Returns the encoder model; ``PYRAMID_TAPS[family]`` names its stride 4 ... 32 outputs."""
    import warnings

    build = {"mobilenetv1": keras.applications.MobileNet, "mobilenetv2": keras.applications.MobileNetV2}[family]
    with warnings.catch_warnings():   # "input size not in [96, ..., 224]": the weights come later, by name
        warnings.simplefilter("ignore")
        encoder = build(input_tensor=inputs, alpha=width, include_top=False, weights=None)
    # The applications' BatchNorm momentum, 0.999, leaves a quarter of the initial moving statistics in place
    # after a thousand steps: a student trained from scratch for minutes would infer with the wrong ones.
    for layer in encoder.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.momentum = BN["momentum"]
    return encoder


def _mobilenet_student(family: str, input_size, num_keypoints: int, width: float, head: ApplicationHead,
                       head_channels) -> keras.Model:
    from tfpose.models.blocks import image_input, normalise_input
    from tfpose.models.heads import attach_head, pyramid_head

    if head not in ("fpn", "duc", "deconv", "slim"):
        raise ValueError(f"the {family} student takes head 'fpn', 'duc', 'deconv' or 'slim', got '{head}'")
    inputs = image_input(input_size, 32, family)
    encoder = applications_encoder(family, normalise_input(inputs), width)
    taps = [encoder.get_layer(name).output for name in PYRAMID_TAPS[family]]
    if head == "fpn":
        heatmaps = pyramid_head(taps, num_keypoints, tuple(head_channels or (64, 32, 24, 96)))
    else:   # the slim head takes the stride-16 tap; the model then holds no layer past it
        heatmaps = attach_head(taps[2] if head == "slim" else taps[3], head, num_keypoints, head_channels)
    return keras.Model(inputs, heatmaps, name=family)


@register("mobilenetv1", "student", (192, 256), "MobileNetV1 (tf_keras.applications) + DUC or a feature pyramid",
          tiny=dict(width=0.25, head="fpn", head_channels=(16, 16, 16, 16)))
def mobilenetv1(input_size=(192, 256), num_keypoints=17, width: float = 1.0, head: ApplicationHead = "duc",
                head_channels: Sequence[int] | None = None) -> keras.Model:
    """Raw pixels (B, H, W, 3) -> heatmaps (B, H/4, W/4, K). ``width`` is the applications' alpha; the layers keep
    the applications' names, so ImageNet weights (``student.init: imagenet`` or a weights file) load by name.
    Heads: ``duc`` / ``deconv`` (heads.py) on the stride-32 features, ``slim`` on the stride-16 ones, ``fpn``
    (``heads.pyramid_head``) on all four."""
    return _mobilenet_student("mobilenetv1", input_size, num_keypoints, width, head, head_channels)


@register("mobilenetv2", "student", (192, 256), "MobileNetV2 (tf_keras.applications) + DUC or MoveNet's feature "
          "pyramid and heatmap head", tiny=dict(width=0.35, head="fpn", head_channels=(16, 16, 16, 16)))
def mobilenetv2(input_size=(192, 256), num_keypoints=17, width: float = 1.0, head: ApplicationHead = "duc",
                head_channels: Sequence[int] | None = None) -> keras.Model:
    """Raw pixels (B, H, W, 3) -> heatmaps (B, H/4, W/4, K). With ``head: fpn`` at width 1 this is MoveNet
    Lightning's backbone, pyramid and heatmap head, layer for layer and name for name, so
    ``student.init: ../shared/models/init/movenet-lightning-keras.h5`` starts it pose-pretrained at any input size."""
    return _mobilenet_student("mobilenetv2", input_size, num_keypoints, width, head, head_channels)


@register("mobilenetv3_large", "student", (192, 256), "MobileNetV3-Large encoder + DUC (Park et al. 2021)",
          tiny=dict(width=0.25))
def mobilenetv3_large(input_size=(192, 256), num_keypoints=17, width: float = 1.0, head: Head = "duc",
                      head_channels: Sequence[int] | None = None) -> keras.Model:
    """Raw pixels (B, H, W, 3) -> heatmaps (B, H/4, W/4, K); ``width`` scales every layer; heads: see heads.py."""
    return encoder_with_head("mobilenetv3_large", input_size, num_keypoints,
                             lambda x, s: mobilenetv3_encoder(x, s, width, V3_LARGE), head, head_channels)


@register("mobilenetv3_small", "student", (192, 256), "MobileNetV3-Small encoder + DUC", tiny=dict(width=0.25))
def mobilenetv3_small(input_size=(192, 256), num_keypoints=17, width: float = 1.0, head: Head = "duc",
                      head_channels: Sequence[int] | None = None) -> keras.Model:
    """Raw pixels (B, H, W, 3) -> heatmaps (B, H/4, W/4, K); ``width`` scales every layer; heads: see heads.py."""
    return encoder_with_head("mobilenetv3_small", input_size, num_keypoints,
                             lambda x, s: mobilenetv3_encoder(x, s, width, V3_SMALL), head, head_channels)


@register("efficientpose_slim", "student", (256, 256),
          "EfficientPose-style slim head (Zhang et al. 2021) on MobileNetV2 blocks at stride 16",
          tiny=dict(width=0.25, head_channels=(16, 16)))
def efficientpose_slim(input_size=(256, 256), num_keypoints=17, width: float = 1.0,
                       head_channels: Sequence[int] = (64, 32)) -> keras.Model:
    """Raw pixels (B, H, W, 3) -> heatmaps (B, H/4, W/4, K). EfficientPose's backbone is NAS-searched; MobileNetV2's
    blocks (its search space's block type) stand in, without the 1280-wide last conv: the head takes the thin
    320-channel features, as a slim head should (from 1280 its first transposed conv alone costs 0.25 GMAC)."""
    return encoder_with_head("efficientpose_slim", input_size, num_keypoints,
                             lambda x, s: mobilenetv2_encoder(x, s, width, last=False), "slim", head_channels)
