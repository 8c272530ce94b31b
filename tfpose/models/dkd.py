"""Dynamic Kernel Distillation's models (Nie, Li, Xiao, Yan, ICCV 2019), sized for a phone: the video kind.

Only the first frame of a track needs the large model. After that, per frame:
- the **frame encoder** (small) turns the crop into features F_t and its own rough heatmaps;
- the **pose kernel distillator** turns the previous frame's features and heatmaps into one kernel per joint:
  F_{t-1} pooled under a spatial softmax of each joint's heatmap, then a shared Dense layer;
- the **matcher** correlates F_t with those kernels (a 1x1 convolution whose weights are the kernels, i.e. a
  batched matmul), and two 3x3 convs turn that, the encoder's own heatmaps and the previous heatmaps into a
  correction of the previous heatmaps: the heatmaps of frame t.
The registered model ``dkd`` is the **tracker**, the per-frame deployable that holds the three: [crop, previous
features, previous heatmaps] -> [features, heatmaps]; ``parts`` takes them out again. How it trains (the method,
beside a temporal discriminator) is ``tfpose.distill.dkd``; its export is two .tflite files, the encoder for frame 1
and the tracker for every later frame (``tfpose.export_video``).
Shape legend: B sequences, T frames, H x W input pixels, h x w heatmap cells (stride 4), C feature channels,
K joints.
"""

from __future__ import annotations

import numpy as np

from tfpose._keras import keras, tf
from tfpose.models.blocks import conv_bn, image_input, normalise_input
from tfpose.models.registry import register

layers = keras.layers

FEATURE_CHANNELS = 24


@keras.utils.register_keras_serializable(package="tfpose")
class PoseKernels(layers.Layer):
    """[features (B, h, w, C), heatmaps (B, h, w, K)] -> kernels (B, K, C): per joint, the features averaged
    under a spatial softmax of its heatmap.

    A softmax rather than heatmap / sum(heatmap): int8 TFLite has a SOFTMAX kernel but no int8 DIV, and a peak of
    about 1 times ``sharpness`` = 10 outweighs a few hundred background cells at 0.
    """

    def __init__(self, sharpness: float = 10.0, **kwargs):
        super().__init__(**kwargs)
        self.sharpness = sharpness

    def call(self, inputs):
        features, heatmaps = inputs
        h, w, c = features.shape[1:]
        k = heatmaps.shape[-1]
        flat_features = tf.reshape(features, [-1, h * w, c])
        attention = tf.nn.softmax(tf.transpose(tf.reshape(heatmaps, [-1, h * w, k]), [0, 2, 1]) * self.sharpness)
        return tf.matmul(attention, flat_features)

    def get_config(self):
        return {**super().get_config(), "sharpness": self.sharpness}


@keras.utils.register_keras_serializable(package="tfpose")
class KernelCorrelation(layers.Layer):
    """[features (B, h, w, C), kernels (B, K, C)] -> (B, h, w, K): a 1x1 conv with per-sample weights, / sqrt(C)."""

    def call(self, inputs):
        features, kernels = inputs
        h, w, c = features.shape[1:]
        k = kernels.shape[1]
        scores = tf.matmul(tf.reshape(features, [-1, h * w, c]), kernels, transpose_b=True) / float(np.sqrt(c))
        return tf.reshape(scores, [-1, h, w, k])


def build_frame_encoder(input_size: tuple[int, int], num_keypoints: int = 17, channels: int = FEATURE_CHANNELS,
                        name: str = "dkd_encoder") -> keras.Model:
    """Raw pixels (B, H, W, 3) -> [features (B, h, w, C), heatmaps (B, h, w, K)], both at stride 4.

    Two stride-2 convs reach the heatmap grid; a stride-8 branch widens the receptive field and comes back by
    nearest upsampling; one 1x1 conv reads heatmaps off the features (the same features the kernels pool).
    """
    inputs = image_input(input_size, 8, name)
    x = normalise_input(inputs)
    x = conv_bn(x, 16, 3, 2, name="dkd_stem1")
    s4 = conv_bn(x, channels, 3, 2, name="dkd_stem2")
    s4 = conv_bn(s4, channels, 3, name="dkd_s4")
    s8 = conv_bn(s4, 2 * channels, 3, 2, name="dkd_s8a")
    s8 = conv_bn(s8, 2 * channels, 3, name="dkd_s8b")
    up = layers.UpSampling2D(2, name="dkd_up")(conv_bn(s8, channels, 1, name="dkd_s8_proj"))
    features = conv_bn(layers.Add(name="dkd_merge")([s4, up]), channels, 3, name="dkd_features")
    heatmaps = layers.Conv2D(num_keypoints, 1, name="dkd_heatmaps")(features)
    return keras.Model(inputs, [features, heatmaps], name=name)


def build_distillator(grid: tuple[int, int], num_keypoints: int = 17, channels: int = FEATURE_CHANNELS) -> keras.Model:
    """[features (B, h, w, C), heatmaps (B, h, w, K)] of the previous frame -> pose kernels (B, K, C).
    grid: (w, h) heatmap cells."""
    w, h = grid
    features = keras.Input((h, w, channels), name="prev_features")
    heatmaps = keras.Input((h, w, num_keypoints), name="prev_heatmaps")
    pooled = PoseKernels(name="dkd_pool")([features, heatmaps])
    kernels = layers.Dense(channels, name="dkd_kernel_fc")(pooled)
    return keras.Model([features, heatmaps], kernels, name="dkd_distillator")


def build_matcher(grid: tuple[int, int], num_keypoints: int = 17, channels: int = FEATURE_CHANNELS) -> keras.Model:
    """[features (B, h, w, C), own heatmaps (B, h, w, K), kernels (B, K, C), previous heatmaps (B, h, w, K)]
    -> heatmaps (B, h, w, K).

    The output is the previous heatmaps plus a learned correction (zero at initialisation): joints move a fraction
    of a cell per frame, so where a joint was is the strongest prior of where it is, and the correlation with its
    kernel says where it went. Starting as "the pose stays" keeps short training runs from collapsing to zero maps.
    """
    w, h = grid
    features = keras.Input((h, w, channels), name="features")
    own = keras.Input((h, w, num_keypoints), name="own_heatmaps")
    kernels = keras.Input((num_keypoints, channels), name="kernels")
    previous = keras.Input((h, w, num_keypoints), name="prev_heatmaps")
    matched = KernelCorrelation(name="dkd_correlate")([features, kernels])
    fused = layers.Concatenate(name="dkd_fuse_in")([matched, own, previous])
    x = conv_bn(fused, num_keypoints, 3, name="dkd_fuse1")
    correction = layers.Conv2D(num_keypoints, 3, padding="same", kernel_initializer="zeros", name="dkd_fuse2")(x)
    heatmaps = layers.Add(name="dkd_heatmaps_t")([previous, correction])
    return keras.Model([features, own, kernels, previous], heatmaps, name="dkd_matcher")


def build_discriminator(grid: tuple[int, int], num_keypoints: int = 17, window: int = 3) -> keras.Model:
    """``window`` consecutive heatmaps stacked on channels (B, h, w, window * K) -> one logit (B, 1): real motion?"""
    w, h = grid
    inputs = keras.Input((h, w, window * num_keypoints), name="heatmap_window")
    x = layers.Conv2D(32, 3, 2, padding="same", name="disc1")(inputs)
    x = layers.LeakyReLU(0.2)(x)
    x = layers.Conv2D(64, 3, 2, padding="same", name="disc2")(x)
    x = layers.LeakyReLU(0.2)(x)
    x = layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, layers.Dense(1, name="disc_logit")(x), name="dkd_discriminator")


def build_tracker(encoder: keras.Model, distillator: keras.Model, matcher: keras.Model) -> keras.Model:
    """The per-frame deployable: [crop (1, H, W, 3) raw pixels, previous features, previous heatmaps] ->
    [features, heatmaps] of this frame (the next call's state)."""
    h, w = encoder.input_shape[1:3]
    c, k = encoder.output_shape[0][-1], encoder.output_shape[1][-1]
    image = keras.Input((h, w, 3), name="image")
    prev_features = keras.Input((h // 4, w // 4, c), name="prev_features")
    prev_heatmaps = keras.Input((h // 4, w // 4, k), name="prev_heatmaps")
    features, own = encoder(image)
    heatmaps = matcher([features, own, distillator([prev_features, prev_heatmaps]), prev_heatmaps])
    return keras.Model([image, prev_features, prev_heatmaps], [features, heatmaps], name="dkd_tracker")


@register("dkd", "video", (96, 128), "DKD tracker: frame encoder + pose kernel distillator + matcher (video)",
          tiny={"channels": 8})
def dkd(input_size: tuple[int, int] = (96, 128), num_keypoints: int = 17, channels: int = FEATURE_CHANNELS
        ) -> keras.Model:
    """A fresh DKD tracker for crops of ``input_size`` (W, H) (``build_tracker`` of new parts)."""
    grid = (input_size[0] // 4, input_size[1] // 4)
    return build_tracker(build_frame_encoder(input_size, num_keypoints, channels),
                         build_distillator(grid, num_keypoints, channels), build_matcher(grid, num_keypoints, channels))


def parts(tracker: keras.Model) -> tuple[keras.Model, keras.Model, keras.Model]:
    """(encoder, distillator, matcher) of a tracker: the models it holds, sharing their weights."""
    return tracker.get_layer("dkd_encoder"), tracker.get_layer("dkd_distillator"), tracker.get_layer("dkd_matcher")


def per_frame_macs(tracker: keras.Model, kind: str = "tracker") -> int:
    """Multiply-accumulates of one frame at batch 1: ``encoder`` (frame 1) or ``tracker`` (every later frame:
    encoder + kernel pooling + correlation + fusion). The two matmuls are counted by hand (flops.py counts layers)."""
    from tfpose.flops import count_macs

    encoder, distillator, matcher = parts(tracker)
    macs = count_macs(encoder)
    if kind == "encoder":
        return macs
    h, w, c = encoder.output_shape[0][1:]
    k = encoder.output_shape[1][-1]
    pooling = correlation = h * w * k * c
    return macs + count_macs(distillator) + count_macs(matcher) + pooling + correlation
