"""Building blocks shared by the model families. Every block is plain functional Keras with layers that
tensorflow-model-optimization can prune and quantize, and that fold into int8 TFLite kernels.

Shape legend: B batch, h x w feature cells, C channels.
"""

from __future__ import annotations

from typing import Literal

from tfpose._keras import keras, tf

layers = keras.layers

Act = Literal["relu", "relu6", "hswish"] | None


def make_divisible(value: float, divisor: int = 8) -> int:
    """Round a scaled channel count to a multiple of ``divisor`` without losing more than 10 % (MobileNet rule)."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


def _named(name: str | None, suffix: str) -> str | None:
    """A layer name under ``name``, or None (Keras picks one) when the block is unnamed."""
    return name and f"{name}_{suffix}"


def hard_sigmoid(x, name: str | None = None):
    """relu6(x + 3) / 6, written so that the converter sees the pattern it fuses (see ``hard_swish``)."""
    x = layers.Rescaling(1.0, offset=3.0, name=_named(name, "plus3"))(x)
    x = layers.ReLU(6.0, name=_named(name, "relu6"))(x)
    return layers.Rescaling(1 / 6, name=_named(name, "div6"))(x)


def hard_swish(x, name: str | None = None):
    """x * relu6(x + 3) / 6: the TFLite converter fuses this form into one int8 HARD_SWISH kernel
    (Keras' own hard_sigmoid is 0.2 x + 0.5, a different function)."""
    return layers.Multiply(name=_named(name, "mul"))([x, hard_sigmoid(x, name)])


def activation(x, act: Act, name: str | None = None):
    if act is None:
        return x
    if act == "relu":
        return layers.ReLU(name=_named(name, "relu"))(x)
    if act == "relu6":
        return layers.ReLU(6.0, name=_named(name, "relu6"))(x)
    if act == "hswish":
        return hard_swish(x, _named(name, "hswish"))
    raise ValueError(f"unknown activation '{act}'")


# Moving statistics averaged over ~100 batches: with 0.9 (~10 batches of 8-16 crops) the inference-mode outputs of
# a PeleeNet student drifted from its batch-statistics outputs (max 2.5 vs 0.8 on the same crops), and the
# validation loss jumped 50x in single epochs.
BN = dict(momentum=0.99, epsilon=1e-3)


def conv_bn(x, filters: int, kernel: int = 3, strides: int = 1, act: Act = "relu", name: str | None = None):
    """Conv (no bias) + BatchNorm + activation: BN folds into the conv in TFLite."""
    x = layers.Conv2D(filters, kernel, strides, padding="same", use_bias=False, name=_named(name, "conv"))(x)
    x = layers.BatchNormalization(**BN, name=_named(name, "bn"))(x)
    return activation(x, act, name)


def conv_bn_relu(x, filters: int, kernel: int = 3, strides: int = 1, name: str | None = None, relu: bool = True):
    return conv_bn(x, filters, kernel, strides, "relu" if relu else None, name)


def depthwise_bn(x, kernel: int = 3, strides: int = 1, act: Act = "relu", name: str | None = None):
    """Depthwise conv (no bias) + BatchNorm + activation: (B, h, w, C) -> (B, h / s, w / s, C)."""
    x = layers.DepthwiseConv2D(kernel, strides, padding="same", use_bias=False, name=_named(name, "conv"))(x)
    x = layers.BatchNormalization(**BN, name=_named(name, "bn"))(x)
    return activation(x, act, name)


def squeeze_excite(x, squeeze: int, name: str):
    """Channel attention (MobileNetV3): global mean -> 1x1 ReLU -> 1x1 hard-sigmoid -> rescale (B, h, w, C)."""
    s = layers.GlobalAveragePooling2D(keepdims=True, name=f"{name}_pool")(x)
    s = layers.Conv2D(squeeze, 1, activation="relu", name=f"{name}_reduce")(s)
    s = layers.Conv2D(x.shape[-1], 1, name=f"{name}_expand")(s)
    return layers.Multiply(name=f"{name}_scale")([x, hard_sigmoid(s, f"{name}_gate")])


def inverted_residual(x, filters: int, expand: int, kernel: int = 3, strides: int = 1, act: Act = "relu6",
                      se: int = 0, name: str = "ir"):
    """MobileNetV2 block: 1x1 expand to ``expand`` channels, depthwise kxk (stride s), optional
    squeeze-excite with ``se`` channels, linear 1x1 projection; residual when shapes match.
    (B, h, w, C) -> (B, h / s, w / s, filters)."""
    y = conv_bn(x, expand, 1, act=act, name=f"{name}_expand") if expand != x.shape[-1] else x
    y = depthwise_bn(y, kernel, strides, act, f"{name}_dw")
    if se:
        y = squeeze_excite(y, se, f"{name}_se")
    y = conv_bn(y, filters, 1, act=None, name=f"{name}_project")
    if strides == 1 and x.shape[-1] == filters:
        y = layers.Add(name=f"{name}_add")([x, y])
    return y


def bottleneck(x, filters: int, name: str):
    """Residual bottleneck (1x1, 3x3, 1x1) with a projected skip when the width changes."""
    skip = x
    if x.shape[-1] != filters:
        skip = conv_bn_relu(x, filters, 1, name=f"{name}_skip", relu=False)
    y = conv_bn_relu(x, filters // 2, 1, name=f"{name}_a")
    y = conv_bn_relu(y, filters // 2, 3, name=f"{name}_b")
    y = conv_bn_relu(y, filters, 1, name=f"{name}_c", relu=False)
    return layers.ReLU(name=f"{name}_out")(layers.Add(name=f"{name}_add")([skip, y]))


def normalise_input(inputs):
    """Raw 0..255 RGB pixels -> [-1, 1], inside the graph so the exported .tflite takes raw pixels."""
    return layers.Rescaling(1 / 127.5, offset=-1.0, name="normalise")(inputs)


def image_input(input_size: tuple[int, int], stride: int, family: str):
    """The raw-pixel input (B, H, W, 3) for ``input_size`` = (W, H), which must divide by the encoder stride."""
    if input_size[0] % stride or input_size[1] % stride:
        raise ValueError(f"{family} needs an input size divisible by {stride} (stride of its encoder), "
                         f"got {input_size}")
    return keras.Input((input_size[1], input_size[0], 3), name="image")


class StrideBudget:
    """Turns the strides past ``output_stride`` into 1, so an encoder can stop at stride 16 for a two-stage head."""

    def __init__(self, output_stride: int = 32):
        if output_stride not in (8, 16, 32):
            raise ValueError(f"output_stride must be 8, 16 or 32, got {output_stride}")
        self.output_stride, self.stride = output_stride, 1

    def __call__(self, strides: int) -> int:
        if strides > 1 and self.stride * strides <= self.output_stride:
            self.stride *= strides
            return strides
        return 1


@keras.utils.register_keras_serializable(package="tfpose")
class PixelShuffle(layers.Layer):
    """Depth-to-space upsampling (DUC): (B, h, w, C * r * r) -> (B, h * r, w * r, C).

    A layer of its own rather than a Lambda, because tfmot's pruning and QAT can then be told how to treat it.
    """

    def __init__(self, factor: int = 2, **kwargs):
        super().__init__(**kwargs)
        self.factor = factor

    def call(self, inputs):
        return tf.nn.depth_to_space(inputs, self.factor)

    def compute_output_shape(self, input_shape):
        b, h, w, c = input_shape
        r = self.factor
        return (b, h and h * r, w and w * r, c // (r * r))

    def get_config(self):
        return {**super().get_config(), "factor": self.factor}

    def get_prunable_weights(self):
        """No weights to prune: tfmot's PrunableLayer protocol, duck-typed so that models need no tfmot import."""
        return []
