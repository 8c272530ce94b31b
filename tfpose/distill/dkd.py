"""Dynamic Kernel Distillation for pose in videos (Nie, Li, Xiao, Yan, ICCV 2019), sized for a phone.

Only the first frame of a track needs the large model. After that, per frame:
- the **frame encoder** (small) turns the crop into features F_t and its own rough heatmaps;
- the **pose kernel distillator** turns the previous frame's features and heatmaps into one kernel per joint:
  F_{t-1} pooled under a spatial softmax of each joint's heatmap, then a shared Dense layer;
- the **matcher** correlates F_t with those kernels (a 1x1 convolution whose weights are the kernels, i.e. a
  batched matmul), and two 3x3 convs turn that, the encoder's own heatmaps and the previous heatmaps into a
  correction of the previous heatmaps: the heatmaps of frame t.
Training unrolls short sequences: the large model (the teacher, frozen) gives frame 1's heatmaps, each prediction
feeds the next frame's kernels, and the loss is the heatmap MSE beside a **temporally adversarial** term: a small
discriminator sees three consecutive heatmaps stacked on channels and learns to tell ground-truth sequences from
predicted ones, which pushes predictions toward coherent motion.

Deployment is two .tflite files with metadata inside: the encoder (crop -> features, heatmaps) for frame 1 and the
tracker (crop, previous features, previous heatmaps -> features, heatmaps) for every later frame; a phone keeps
the two state tensors between calls. ``tflite/video_validate.py`` runs them frame by frame without TensorFlow.
Shape legend: B sequences, T frames, H x W input pixels, h x w heatmap cells (stride 4), C feature channels,
K joints.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from tfpose._keras import keras, tf
from tfpose.distill.losses import keypoint_mse
from tfpose.models.blocks import conv_bn, image_input, normalise_input

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


def _bce(logits, label: float):
    return tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(tf.fill(tf.shape(logits), label), logits))


def _windows(maps: list, size: int):
    """Consecutive ``size``-frame windows of (B, h, w, K) maps, stacked on channels: (B * windows, h, w, size * K)."""
    return tf.concat([tf.concat(maps[i:i + size], -1) for i in range(len(maps) - size + 1)], 0)


class DKD(keras.Model):
    """Encoder, distillator and matcher trained on short sequences against a frozen teacher; a discriminator
    trained beside them. ``train_step`` takes (frames (B, T, H, W, 3), {"heatmaps": (B, T, h, w, K),
    "weights": (B, T, K)}) with T >= 3; what is exported is ``encoder`` and ``tracker``, never this model."""

    def __init__(self, encoder: keras.Model, distillator: keras.Model, matcher: keras.Model,
                 discriminator: keras.Model, teacher: keras.Model | None = None, adversarial_weight: float = 0.001,
                 discriminator_lr: float = 1e-3, own_weight: float = 0.5, **kwargs):
        super().__init__(**kwargs)
        self.encoder, self.distillator, self.matcher = encoder, distillator, matcher
        self.discriminator = discriminator
        self.window = discriminator.input_shape[-1] // encoder.output_shape[1][-1]
        self.teacher = teacher
        if teacher is not None:
            teacher.trainable = False
        self.adversarial_weight = float(adversarial_weight)
        self.own_weight = float(own_weight)
        self.d_optimizer = keras.optimizers.Adam(discriminator_lr)
        self.loss_meters = {n: keras.metrics.Mean(name=n) for n in ("loss", "mse", "adv", "disc")}

    @property
    def metrics(self):
        return list(self.loss_meters.values())

    @property
    def generator_variables(self):
        return (self.encoder.trainable_variables + self.distillator.trainable_variables
                + self.matcher.trainable_variables)

    def first_heatmaps(self, first_frames, own_first):
        """(B, h, w, K) heatmaps of frame 1: the teacher's (resized to this grid if its own differs), stop-gradient;
        the encoder's own without a teacher."""
        if self.teacher is None:
            return own_first
        th, tw = self.teacher.input_shape[1:3]
        images = first_frames if tuple(first_frames.shape[1:3]) == (th, tw) else \
            tf.image.resize(first_frames, (th, tw))
        maps = self.teacher(images, training=False)
        maps = tf.cast(maps[-1] if isinstance(maps, (list, tuple)) else maps, tf.float32)
        if tuple(maps.shape[1:3]) != tuple(own_first.shape[1:3]):
            maps = tf.image.resize(maps, own_first.shape[1:3])
        return tf.stop_gradient(maps)

    def unroll(self, frames, training: bool = False):
        """frames (B, T, H, W, 3) raw pixels -> (heatmaps per frame [T x (B, h, w, K)], own heatmaps
        [T x (B, h, w, K)]); frame 1's heatmaps are the teacher's."""
        frames = tf.cast(frames, tf.float32)
        t = frames.shape[1]
        flat = tf.reshape(frames, [-1, *frames.shape[2:]])
        features, own = self.encoder(flat, training=training)
        features = tf.reshape(features, [-1, t, *features.shape[1:]])
        own = tf.reshape(own, [-1, t, *own.shape[1:]])
        maps = [self.first_heatmaps(frames[:, 0], own[:, 0])]
        for i in range(1, t):
            kernels = self.distillator([features[:, i - 1], maps[-1]], training=training)
            maps.append(self.matcher([features[:, i], own[:, i], kernels, maps[-1]], training=training))
        return maps, [own[:, i] for i in range(t)]

    def call(self, frames, training=False):
        return tf.stack(self.unroll(frames, training)[0], 1)

    def _loss_terms(self, frames, targets, training: bool):
        truth, weights = targets["heatmaps"], targets["weights"]
        maps, own = self.unroll(frames, training)
        t = len(maps)
        mse = tf.add_n([keypoint_mse(maps[i], truth[:, i], weights[:, i]) for i in range(1, t)]) / (t - 1)
        mse += self.own_weight * tf.add_n([keypoint_mse(own[i], truth[:, i], weights[:, i]) for i in range(t)]) / t
        fake = _windows(maps, self.window)
        real = _windows([truth[:, i] for i in range(t)], self.window)
        adv = _bce(self.discriminator(fake, training=training), 1.0)
        return mse, adv, fake, real

    def train_step(self, data):
        frames, targets = data
        with tf.GradientTape() as tape:
            mse, adv, fake, real = self._loss_terms(frames, targets, training=True)
            loss = mse + self.adversarial_weight * adv
        variables = self.generator_variables
        self.optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
        with tf.GradientTape() as d_tape:
            disc = (_bce(self.discriminator(real, training=True), 1.0)
                    + _bce(self.discriminator(tf.stop_gradient(fake), training=True), 0.0))
        d_vars = self.discriminator.trainable_variables
        self.d_optimizer.apply_gradients(zip(d_tape.gradient(disc, d_vars), d_vars))
        return self._track(loss, mse, adv, disc)

    def test_step(self, data):
        frames, targets = data
        mse, adv, fake, real = self._loss_terms(frames, targets, training=False)
        disc = _bce(self.discriminator(real), 1.0) + _bce(self.discriminator(fake), 0.0)
        return self._track(mse + self.adversarial_weight * adv, mse, adv, disc)

    def _track(self, loss, mse, adv, disc):
        for name, value in (("loss", loss), ("mse", mse), ("adv", adv), ("disc", disc)):
            self.loss_meters[name].update_state(value)
        return {n: m.result() for n, m in self.loss_meters.items()}

    def tracker(self) -> keras.Model:
        return build_tracker(self.encoder, self.distillator, self.matcher)


def build_dkd(input_size: tuple[int, int], num_keypoints: int = 17, teacher: keras.Model | None = None,
              channels: int = FEATURE_CHANNELS, adversarial_weight: float = 0.001) -> DKD:
    """A fresh DKD for crops of ``input_size`` (W, H)."""
    grid = (input_size[0] // 4, input_size[1] // 4)
    return DKD(build_frame_encoder(input_size, num_keypoints, channels),
               build_distillator(grid, num_keypoints, channels), build_matcher(grid, num_keypoints, channels),
               build_discriminator(grid, num_keypoints), teacher, adversarial_weight)


def per_frame_macs(dkd_or_encoder, kind: str = "tracker") -> int:
    """Multiply-accumulates of one frame at batch 1: ``encoder`` (frame 1) or ``tracker`` (every later frame:
    encoder + kernel pooling + correlation + fusion). The two matmuls are counted by hand (flops.py counts layers)."""
    from tfpose.flops import count_macs

    encoder = dkd_or_encoder.encoder if isinstance(dkd_or_encoder, DKD) else dkd_or_encoder
    macs = count_macs(encoder)
    if kind == "encoder":
        return macs
    h, w, c = encoder.output_shape[0][1:]
    k = encoder.output_shape[1][-1]
    grid = (w, h)
    distillator = dkd_or_encoder.distillator if isinstance(dkd_or_encoder, DKD) else build_distillator(grid, k, c)
    matcher = dkd_or_encoder.matcher if isinstance(dkd_or_encoder, DKD) else build_matcher(grid, k, c)
    pooling = correlation = h * w * k * c
    return macs + count_macs(distillator) + count_macs(matcher) + pooling + correlation


# -- data ---------------------------------------------------------------------------------------------------------
def synthetic_tracks(count: int, seed: int, num_frames: int, codec, padding: float = 1.25,
                     image_size: tuple[int, int] = (160, 160)) -> dict[str, np.ndarray]:
    """Rendered sequences cropped per track: {"frames": (N, T, H, W, 3) uint8, "heatmaps": (N, T, h, w, K),
    "weights": (N, T, K), "keypoints": (N, T, K, 2) crop pixels, "visible": (N, T, K)}."""
    from tfpose.data.synthetic_video import render_sequences
    from tfpose.data.video import crop_track

    out = {k: [] for k in ("frames", "heatmaps", "weights", "keypoints", "visible")}
    for seq in render_sequences(count, seed, num_frames, image_size):
        crops = crop_track(seq.frames, seq.keypoints, seq.visibility, seq.boxes, codec, padding)
        for key, value in (("frames", crops.crops), ("heatmaps", crops.heatmaps), ("weights", crops.weights),
                           ("keypoints", crops.keypoints), ("visible", crops.weights > 0)):
            out[key].append(value)
    return {k: np.stack(v) for k, v in out.items()}


# -- export -------------------------------------------------------------------------------------------------------
def _convert_tracker(tracker: keras.Model, calibration: list[tuple[np.ndarray, np.ndarray, np.ndarray]]) -> bytes:
    """Full-integer int8 tracker with float32 I/O. A model of three inputs, which ``tflite.convert.convert`` (one
    image input) does not take; its other settings are the same: batch fixed at 1, builtin int8 ops only."""
    specs = [tf.TensorSpec([1, *i.shape[1:]], tf.float32, name=n)
             for i, n in zip(tracker.inputs, ("image", "prev_features", "prev_heatmaps"))]
    fn = tf.function(lambda a, b, c: tracker([a, b, c], training=False), input_signature=specs)
    converter = tf.lite.TFLiteConverter.from_concrete_functions([fn.get_concrete_function()], tracker)

    def representative():
        # by name: the converter orders the inputs its own way (prev_heatmaps first, as it happens)
        for image, features, heatmaps in calibration:
            yield {"image": image[None].astype(np.float32), "prev_features": features[None].astype(np.float32),
                   "prev_heatmaps": heatmaps[None].astype(np.float32)}

    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    return converter.convert()


def export_dkd(dkd: DKD, out_dir: str | Path, codec, skeleton, padding: float, calibration_frames: np.ndarray,
               key_model: str | None = None) -> dict[str, Path]:
    """Write ``dkd_encoder.tflite`` and ``dkd_tracker.tflite`` (int8, metadata inside) into ``out_dir``.

    calibration_frames: (N, T, H, W, 3) uint8 crop sequences; the float model runs over them to produce the
    states (features, heatmaps) the tracker is calibrated on. key_model: the .tflite meant to give frame 1's
    heatmaps on the device, recorded in the metadata.
    """
    from tflite import metadata as tfl_metadata
    from tflite.convert import convert
    from tfpose import __version__
    from tfpose.artifacts import write_bytes

    out_dir = Path(out_dir)
    first = calibration_frames[:, 0].astype(np.float32)
    encoder_bytes = convert(dkd.encoder, "int8", list(first), "uint8", "int8")
    states = []
    for seq in calibration_frames[: max(1, 64 // calibration_frames.shape[1])]:
        features = dkd.encoder(seq.astype(np.float32), training=False)[0]
        maps = [m.numpy()[0] for m in dkd.unroll(seq[None], training=False)[0]]
        states += [(seq[t], features.numpy()[t - 1], maps[t - 1]) for t in range(1, len(seq))]
    tracker_bytes = _convert_tracker(dkd.tracker(), states)
    c, k = dkd.encoder.output_shape[0][-1], dkd.encoder.output_shape[1][-1]
    common = {"format": "tfpose-dkd", "tfpose_version": __version__, "skeleton": skeleton.name,
              "keypoints": list(skeleton.keypoints), "edges": [list(e) for e in skeleton.edges],
              "codec": codec.to_dict(), "padding": padding, "feature_channels": int(c), "num_keypoints": int(k),
              "quantization": "int8", "key_model": key_model,
              "normalisation": "inside the model: raw RGB pixels 0..255 in",
              "state": "features (1, h, w, C) and heatmaps (1, h, w, K); tensors are told apart by shape"}
    paths = {}
    for role, data, io in (("encoder", encoder_bytes, "image -> features, heatmaps"),
                           ("tracker", tracker_bytes, "image, prev_features, prev_heatmaps -> features, heatmaps")):
        meta = {**common, "role": role, "io": io}
        paths[role] = write_bytes(out_dir / f"dkd_{role}.tflite", tfl_metadata.attach(data, meta))
    return paths


# -- one command: train, export, validate ---------------------------------------------------------------------
@dataclass
class DkdRunConfig:
    teacher: str                                  # .keras heatmap model: frame 1 in training; the key model
    input_size: tuple[int, int] = (96, 128)       # (W, H) crop pixels
    sequences: int = 160
    frames: int = 6
    steps: int = 400
    batch_size: int = 8
    learning_rate: float = 2e-3
    adversarial_weight: float = 0.001
    padding: float = 1.25
    seed: int = 0
    val_sequences: int = 24
    val_frames: int = 24


def train_dkd(dkd: DKD, data: dict[str, np.ndarray], steps: int, batch_size: int, learning_rate: float,
              seed: int = 0) -> list[float]:
    """``steps`` train_steps on shuffled batches of ``data`` (synthetic_tracks' dict); the loss per 50 steps."""
    dataset = tf.data.Dataset.from_tensor_slices(
        (data["frames"], {"heatmaps": data["heatmaps"], "weights": data["weights"]}))
    dataset = dataset.shuffle(len(data["frames"]), seed=seed).repeat().batch(batch_size, drop_remainder=True)
    schedule = keras.optimizers.schedules.CosineDecay(learning_rate, max(1, steps))
    dkd.compile(optimizer=keras.optimizers.Adam(schedule))
    history = dkd.fit(dataset.prefetch(2), epochs=max(1, steps // 50), steps_per_epoch=min(50, steps), verbose=0)
    return [float(v) for v in history.history["loss"]]


def train_and_export(cfg: DkdRunConfig, out_dir: str | Path) -> dict:
    """Train DKD on synthetic sequences against ``cfg.teacher``, export both .tflite files (and the teacher as the
    key model if it is not one yet), validate frame by frame on held-out sequences; write report.json/.md."""
    from tflite.video_validate import report_markdown, validate_video
    from tfpose.artifacts import write_json, write_text
    from tfpose.codec import HeatmapCodec
    from tfpose.keras_io import load_keras, save_keras
    from tfpose.skeleton import COCO17

    out_dir = Path(out_dir)
    keras.utils.set_random_seed(cfg.seed)
    teacher = load_keras(Path(cfg.teacher))
    codec = HeatmapCodec(tuple(cfg.input_size))
    started = time.perf_counter()
    data = synthetic_tracks(cfg.sequences, cfg.seed, cfg.frames, codec, cfg.padding)
    dkd = build_dkd(codec.input_size, 17, teacher, adversarial_weight=cfg.adversarial_weight)
    losses = train_dkd(dkd, data, cfg.steps, cfg.batch_size, cfg.learning_rate, cfg.seed)
    train_s = time.perf_counter() - started
    save_keras(dkd.encoder, out_dir / "dkd_encoder.keras")
    save_keras(dkd.tracker(), out_dir / "dkd_tracker.keras")
    key = _key_model(teacher, Path(cfg.teacher), out_dir, codec, data["frames"][:, 0], cfg.padding)
    paths = export_dkd(dkd, out_dir, codec, COCO17, cfg.padding, data["frames"][:16], key.name)
    report = validate_video(paths["encoder"], paths["tracker"], key, sequences=cfg.val_sequences,
                            frames=cfg.val_frames, seed=cfg.seed + 1)
    report["training"] = {**asdict(cfg), "losses_per_50_steps": losses, "seconds": train_s}
    report["summary"] = report_markdown(report)
    write_json(out_dir / "report.json", report)
    write_text(out_dir / "report.md", report["summary"])
    return report


def _key_model(teacher: keras.Model, teacher_path: Path, out_dir: Path, codec, calibration: np.ndarray,
               padding: float) -> Path:
    """The .tflite that gives frame 1's heatmaps on the device: ``teacher_path``'s int8 export beside it when it
    exists (e.g. a pipeline run's student_int8.tflite), else the teacher converted here."""
    beside = teacher_path.with_name(teacher_path.stem + "_int8.tflite")
    if beside.is_file():
        return beside
    from tfpose.config import ExportConfig
    from tfpose.export import export_tflite
    from tfpose.skeleton import COCO17

    crops = calibration[:16]
    path = out_dir / "key_int8.tflite"
    export_tflite(teacher, path, codec, COCO17, padding, ExportConfig(calibration_samples=len(crops)),
                  crops.astype(np.float32), crops[:8], np.ones((min(8, len(crops)), 17), np.float32))
    return path

