"""Heatmap heads: encoder features (B, H/s, W/s, C) -> heatmaps (B, H/4, W/4, K), each x2 stage one upsampling.

- ``duc``: Park et al.'s DUC decoder - PixelShuffle x2, then 3x3 conv + BN + ReLU, per stage; 1x1 to K.
- ``deconv``: SimpleBaseline's head - 4x4 stride-2 transposed convs with ReLU; 1x1 to K.
- ``pyramid_head``: MoveNet's CenterNet-style feature pyramid over stride-4 ... 32 taps (the MobileNet students'
  ``fpn`` head), then its heatmap head, ending in a bounded sigmoid.
- ``slim``: EfficientPose's head - two 4x4 stride-2 transposed convs (64, 32 channels), then spatial
  information correction: depthwise 3x3, ReLU, 1x1 to K. Needs stride-16 features.

Transposed convs carry a bias instead of a BatchNorm: BN after Conv2DTranspose leaves float islands in
int8 TFLite after QAT (TOOLCHAIN.md). The price, measured with ai-edge-litert 2.3: the converter then does not
fuse the ReLU into the int8 TRANSPOSE_CONV, and XNNPACK leaves a lone int8 RELU to the builtin kernel, one
graph split per transposed conv (BN + ReLU would fuse).
"""

from __future__ import annotations

from typing import Callable, Literal, Sequence

from tfpose._keras import keras, tf
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


# At inference the sigmoid reads logits clipped to +-LOGIT_BOUND: MoveNet's heatmap logits reach +-62, and int8 spread
# over that range leaves steps of 0.5 logit at the peak; bounded, the clip is a fused ReLU6 on the last conv and the
# steps are 0.05 logit. Outside the bound the sigmoid is within 0.0025 of 0 or 1. Training sees no clip: a clip's
# zero gradient would hold every logit pushed below -6 there for good (measured: one epoch took the MoveNet-initialised
# student from AP 0.32 to 0.00, every heatmap flat).
LOGIT_BOUND = 6.0


@keras.utils.register_keras_serializable(package="tfpose")
class InferenceReLU6(layers.Layer):
    """relu6 at inference (and so in the exported graph), the identity in training: (B, h, w, K) -> same shape."""

    def call(self, inputs, training=None):
        if training is None:
            training = keras.backend.learning_phase()
        if tf.is_tensor(training):
            return tf.cond(tf.cast(training, tf.bool), lambda: tf.identity(inputs), lambda: tf.nn.relu6(inputs))
        return inputs if training else tf.nn.relu6(inputs)

    def get_prunable_weights(self):
        """No weights to prune (tfmot's PrunableLayer protocol, duck-typed)."""
        return []


def bounded_sigmoid(logits, name: str = "heatmaps"):
    """sigmoid(clip(logits, -6, 6)) as relu6(logits / 2 + 3), rescaled: (B, h, w, K) -> (B, h, w, K) in [0, 1];
    plain sigmoid(logits) in training."""
    x = layers.Rescaling(0.5, offset=LOGIT_BOUND / 2, name=f"{name}_to_relu6")(logits)
    x = InferenceReLU6(name=f"{name}_clip")(x)
    x = layers.Rescaling(2.0, offset=-LOGIT_BOUND, name=f"{name}_logits")(x)
    return layers.Activation("sigmoid", name=name)(x)


def pyramid_head(taps, num_keypoints: int, channels: Sequence[int] = (64, 32, 24, 96)):
    """MoveNet's pyramid (Lightning v4) over encoder taps at strides 4, 8, 16, 32 -> heatmaps (B, H/4, W/4, K).

    From the stride-32 tap down: a 1x1 lateral, bilinear x2, add the next tap's 1x1 lateral, a separable 3x3 with
    ReLU (``channels[0:3]`` wide laterals: 64, 32, 24; output widths 32, 24, 24), then the heatmap head: a
    separable 3x3 (``channels[3]``, ReLU) and a 1x1 to K logits, through ``bounded_sigmoid``. The layer names
    are MoveNet's, so its weights copy in by name."""
    lateral, mid, low, head = channels
    s4, s8, s16, s32 = taps
    widths = ((lateral, mid), (mid, low), (low, low))        # (lateral width, output width) per x2 stage
    x = layers.Conv2D(widths[0][0], 1, name="fpn_conv2d")(s32)
    for i, (tap, (lat, out)) in enumerate(zip((s16, s8, s4), widths)):
        x = layers.UpSampling2D(2, interpolation="bilinear", name=f"fpn_up{i}")(x)
        x = layers.Add(name=f"fpn_add{i}")([x, layers.Conv2D(lat, 1, name=f"fpn_conv2d_{i + 1}")(tap)])
        x = layers.SeparableConv2D(out, 3, padding="same", activation="relu", name=f"fpn_sep{i}")(x)
    x = layers.SeparableConv2D(head, 3, padding="same", activation="relu", name="kpt_heatmap_sep")(x)
    return bounded_sigmoid(layers.Conv2D(num_keypoints, 1, name="kpt_heatmap_out")(x))


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
