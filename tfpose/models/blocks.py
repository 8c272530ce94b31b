"""Building blocks shared by the model families. Every block is plain functional Keras with layers that
tensorflow-model-optimization can prune and quantize, and that fold into int8 TFLite kernels."""

from __future__ import annotations

from tfpose._keras import keras, tf

layers = keras.layers


def conv_bn_relu(x, filters: int, kernel: int = 3, strides: int = 1, name: str | None = None, relu: bool = True):
    x = layers.Conv2D(filters, kernel, strides, padding="same", use_bias=False, name=name and f"{name}_conv")(x)
    x = layers.BatchNormalization(momentum=0.9, epsilon=1e-5, name=name and f"{name}_bn")(x)
    return layers.ReLU(name=name and f"{name}_relu")(x) if relu else x


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
