"""Frozen external teachers and the one transform that puts their heatmaps on the student's grid.

A teacher with its own square input (MoveNet Thunder: 256 x 256, 64 x 64 heatmaps, peak sigma ~1.05 cells) sees
the square crop with the student crop's centre and scale (``teacher_matrix``), so a 256 x 192 student's crop is
its middle 192 columns. Its heatmaps reach the student's (h, w) grid through ``grid_transform``:

1. resample: student cell j is centred on student input pixel ``stride * j + (stride - 1) / 2``; that pixel,
   mapped by the crop geometry into teacher pixels, falls at teacher cell ``(p_t - (stride_t - 1) / 2) / stride_t``,
   read by linear interpolation (exactly columns 8:56 for 256 x 192 in a 256 x 256 teacher crop);
2. match sigma: blur with a Gaussian of sigma ``sqrt(s_student^2 - s_teacher'^2)`` student cells, where
   ``s_teacher'`` is the teacher's sigma measured in student cells (nothing when the teacher is already wider);
3. rescale peaks: multiply by ``s_student^2 / s_teacher'^2`` so that a blurred peak keeps the teacher's height
   (its confidence), as 2-D Gaussian blurring divides it by that factor.

All three are linear and separable, so they are two matrices: ``student = My @ teacher @ Mx^T`` per joint.
Shape legend: B crops, K joints, (h, w) student cells, (ht, wt) teacher cells.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tfpose.codec import HeatmapCodec
from tfpose.errors import InputError


def teacher_matrix(student_matrix: np.ndarray, student_size: tuple[int, int], teacher_size: tuple[int, int]):
    """(2, 3) image -> teacher-input matrix: the square around the student crop, same centre and scale.

    The teacher input spans ``max(W, H)`` student pixels, resized to ``teacher_size`` (square)."""
    w, h = student_size
    tw, th = teacher_size
    r = tw / max(w, h)
    c_s = np.array([(w - 1) / 2, (h - 1) / 2])
    c_t = np.array([(tw - 1) / 2, (th - 1) / 2])
    lin = r * student_matrix[:, :2]
    t = r * (student_matrix[:, 2] - c_s) + c_t
    return np.hstack([lin, t[:, None]])


def _gaussian_matrix(n: int, sigma: float) -> np.ndarray:
    """(n, n) convolution with a normalised 1-D Gaussian, zero padding (as a matrix)."""
    if sigma <= 1e-6:
        return np.eye(n)
    i = np.arange(n)
    g = np.exp(-((i[:, None] - i[None, :]) ** 2) / (2 * sigma**2))
    radius = int(np.ceil(4 * sigma))
    g[np.abs(i[:, None] - i[None, :]) > radius] = 0
    k = np.exp(-(np.arange(-radius, radius + 1) ** 2) / (2 * sigma**2))
    return g / k.sum()


def _interp_matrix(positions: np.ndarray, n: int) -> np.ndarray:
    """(len(positions), n) linear interpolation at fractional cell positions; outside the grid reads 0."""
    m = np.zeros((len(positions), n))
    for row, p in enumerate(positions):
        lo = int(np.floor(p))
        f = p - lo
        for idx, wgt in ((lo, 1 - f), (lo + 1, f)):
            if 0 <= idx < n and wgt > 1e-9:
                m[row, idx] += wgt
    return m


def grid_transform(student: HeatmapCodec, teacher_size: tuple[int, int], teacher_stride: int = 4,
                   teacher_sigma: float = 1.05, zoom: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """(My (h, ht), Mx (w, wt)) float32: ``student_maps[b, :, :, k] = My @ teacher_maps[b, :, :, k] @ Mx.T``.

    The teacher ran on the square crop of ``teacher_matrix``, magnified ``zoom`` times about its centre
    (``zoom_views``); see the module docstring for the three steps."""
    w, h = student.input_size
    tw, th = teacher_size
    r = zoom * tw / max(w, h)                 # teacher pixels per student pixel
    mats = []
    for n_s, n_t, size_s, size_t in ((h // student.stride, th // teacher_stride, h, th),
                                    (w // student.stride, tw // teacher_stride, w, tw)):
        centres = student.stride * np.arange(n_s) + (student.stride - 1) / 2           # student pixels
        p_t = r * (centres - (size_s - 1) / 2) + (size_t - 1) / 2                    # teacher pixels
        mats.append(_interp_matrix((p_t - (teacher_stride - 1) / 2) / teacher_stride, n_t))
    sigma_t = teacher_sigma * teacher_stride / r / student.stride                      # in student cells
    blur = np.sqrt(max(student.sigma**2 - sigma_t**2, 0.0))
    gain = (student.sigma**2 / sigma_t**2) if blur > 0 else 1.0
    my = _gaussian_matrix(h // student.stride, blur) @ mats[0] * np.sqrt(gain)
    mx = _gaussian_matrix(w // student.stride, blur) @ mats[1] * np.sqrt(gain)
    return my.astype(np.float32), mx.astype(np.float32)


def apply_grid_transform(teacher_maps, my, mx):
    """(B, ht, wt, K) teacher heatmaps -> (B, h, w, K) on the student grid (numpy or tf)."""
    if isinstance(teacher_maps, np.ndarray):
        return np.einsum("yi,bijk,xj->byxk", my, teacher_maps, mx).astype(np.float32)
    from tfpose._keras import tf

    return tf.einsum("yi,bijk,xj->byxk", tf.constant(my), tf.cast(teacher_maps, tf.float32), tf.constant(mx))


def zoom_views(images, zoom: float):
    """(B, S, S, 3) square views magnified ``zoom`` times about their centre (pixel centre to pixel centre, as
    ``grid_transform`` maps them back); below 1 the view widens and what lies beyond it is black."""
    from tfpose._keras import tf

    if zoom == 1:
        return images
    half = 0.5 / zoom
    size = tf.shape(images)[1:3]
    boxes = tf.tile([[0.5 - half, 0.5 - half, 0.5 + half, 0.5 + half]], [tf.shape(images)[0], 1])
    return tf.image.crop_and_resize(images, boxes, tf.range(tf.shape(images)[0]), size)


def mirror_heatmaps(maps, flip_index):
    """(B, h, w, K) heatmaps of a mirrored view -> those of the view itself: columns reversed, left and right joints
    swapped (cell centres are symmetric about the grid's centre, so this is exact)."""
    from tfpose._keras import tf

    return tf.gather(maps[:, :, ::-1], flip_index, axis=-1)


class SavedModelTeacher:
    """A frozen TF SavedModel signature that returns heatmaps, e.g. ../shared/models/movenet-thunder-teacher.

    ``teacher(teacher_images)``: (B, S, S, 3) float32 0..255 square crops (``teacher_matrix``) -> (B, h, w, K)
    heatmaps on the student's grid, ``stop_gradient``ed. It has no variables to train, so nothing can change it;
    it runs inside the tf.function train step (or on numpy batches to precompute a cache).

    Test-time augmentation: with ``flip_index`` the heatmaps of the mirrored view, mirrored back, are averaged in;
    ``scales`` are zooms of the view (``zoom_views``), each mapped to the student's grid by its own transform, and
    averaged. The teacher then costs (1 + flip) x len(scales) calls.
    """

    def __init__(self, path: str | Path, student: HeatmapCodec, signature: str = "serving_default",
                 input_key: str = "images", output_key: str = "heatmaps", input_size=(256, 256), stride: int = 4,
                 sigma: float = 1.05, flip_index=None, scales=(1.0,)):
        from tfpose._keras import tf

        path = Path(path)
        if not (path / "saved_model.pb").is_file():
            raise InputError("not a TF SavedModel folder (no saved_model.pb)", path=path)
        self._loaded = tf.saved_model.load(str(path))
        if signature not in self._loaded.signatures:
            raise InputError(f"no signature '{signature}'; has {sorted(self._loaded.signatures)}", path=path)
        self._fn = self._loaded.signatures[signature]
        self.input_key, self.output_key = input_key, output_key
        self.input_size = tuple(int(v) for v in input_size)
        self.stride, self.sigma = int(stride), float(sigma)
        self.flip_index = None if flip_index is None else np.asarray(flip_index)
        self.scales = tuple(float(z) for z in scales)
        self.grids = [grid_transform(student, self.input_size, self.stride, self.sigma, z) for z in self.scales]
        self.trainable_variables: list = []

    def raw(self, teacher_images):
        """(B, S, S, 3) -> the signature's own (B, ht, wt, K) heatmaps."""
        from tfpose._keras import tf

        return tf.stop_gradient(self._fn(**{self.input_key: tf.cast(teacher_images, tf.float32)})[self.output_key])

    def __call__(self, teacher_images, training=False):
        from tfpose._keras import tf

        teacher_images = tf.cast(teacher_images, tf.float32)
        maps = []
        for zoom, (my, mx) in zip(self.scales, self.grids):
            view = zoom_views(teacher_images, zoom)
            raw = self.raw(view)
            if self.flip_index is not None:
                raw = 0.5 * (raw + mirror_heatmaps(self.raw(view[:, :, ::-1]), self.flip_index))
            maps.append(apply_grid_transform(raw, my, mx))
        return tf.stop_gradient(tf.add_n(maps) / len(maps))

    def precompute(self, teacher_images: np.ndarray, batch_size: int = 32) -> np.ndarray:
        """Student-grid heatmaps for a fixed set of teacher crops (a cache when augmentation is off)."""
        out = [np.asarray(self(teacher_images[i:i + batch_size].astype(np.float32)))
               for i in range(0, len(teacher_images), batch_size)]
        return np.concatenate(out)


def feature_teacher(path: str | Path, layer: str, input_size: tuple[int, int]):
    """A frozen tf_keras teacher (e.g. ../shared/models/init/movenet-thunder-keras.h5, MoveNet Thunder rebuilt as a
    differentiable model) rebuilt for the student's own crop: (B, H, W, 3) raw pixels 0..255 -> (B, h, w, C) its
    ``layer`` output, on the student's grid when the layer has the student's stride. Its input is RGB in [-1, 1],
    like MoveNet's; every layer is convolutional, so its weights fit the student's input size."""
    from tfpose._keras import keras
    from tfpose.keras_io import load_keras

    path = Path(path)
    model = load_keras(path)
    if layer not in [l.name for l in model.layers]:
        raise InputError(f"no layer '{layer}'", path=path, field="distill.feature_layer")
    w, h = input_size
    rebuilt = keras.models.clone_model(model, input_tensors=keras.Input((h, w, 3)))
    rebuilt.set_weights(model.get_weights())
    features = keras.Model(rebuilt.input, rebuilt.get_layer(layer).output)
    pixels = keras.Input((h, w, 3), name="pixels")
    teacher = keras.Model(pixels, features(keras.layers.Rescaling(1 / 127.5, -1.0)(pixels)),
                          name=f"{model.name}_features")
    teacher.trainable = False
    return teacher


class TeacherViewSampler:
    """Wraps a CropSampler: each sample also carries the teacher's square crop of the same (augmented) view."""

    def __init__(self, sampler, teacher_size: tuple[int, int]):
        self.sampler = sampler
        self.teacher_size = tuple(int(v) for v in teacher_size)
        self.codec, self.flip_index = sampler.codec, sampler.flip_index

    def __len__(self):
        return len(self.sampler)

    def sample(self, index: int, seed: int | None = None):
        from tfpose.data.transforms import warp_image

        s = self.sampler.sample(index, seed)
        person = self.sampler.persons[index]
        m = teacher_matrix(s.matrix, self.sampler.codec.input_size, self.teacher_size)
        # the same geometry (scale, rotation, flip) as the student's view; no colour jitter: the teacher sees it clean
        return s, warp_image(self.sampler.images(person.image_path), m, self.teacher_size)


def build_teacher_view_dataset(sampler: TeacherViewSampler, batch_size: int, training: bool, seed: int = 0,
                               probabilities: np.ndarray | None = None, shard=None):
    """Like ``tfpose.data.pipeline.build_dataset`` (training: an endless stream, ``shard``'s part of it), with
    ``targets["teacher_images"]`` (B, S, S, 3) float32 added."""
    from tfpose._keras import tf

    w, h = sampler.codec.input_size
    hw, hh = sampler.codec.heatmap_size
    tw, th = sampler.teacher_size
    k = len(sampler.flip_index)

    def load(index, sample_seed):
        s, view = sampler.sample(int(index), int(sample_seed) if training else None)
        return s.crop.astype(np.float32), s.heatmaps, s.weights, view.astype(np.float32)

    def load_tf(index, sample_seed):
        image, heatmaps, weights, view = tf.numpy_function(load, [index, sample_seed], [tf.float32] * 4)
        image.set_shape((h, w, 3))
        heatmaps.set_shape((hh, hw, k))
        weights.set_shape((k,))
        view.set_shape((th, tw, 3))
        return image, {"heatmaps": heatmaps, "weights": weights, "teacher_images": view}

    from tfpose.data.pipeline import sample_dataset

    return sample_dataset(len(sampler), load_tf, batch_size, training, seed, probabilities, shard)


def evaluate_model(model, dataset, codec: HeatmapCodec, skeleton, padding: float, images=None,
                   ap_resamples: int = 200) -> dict:
    """OKS AP etc. (``score_predictions``) of a Keras heatmap model, or of a SavedModel teacher
    (``evaluate_teacher``), on every labelled person of ``dataset`` (a ``CocoDataset``), cut as ``codec`` and
    ``padding`` crop it; ``images``: an ``ImageStore`` to share (the teacher path reads whole images)."""
    if isinstance(model, SavedModelTeacher):
        return evaluate_teacher(model, dataset, codec, skeleton, padding, images, ap_resamples)
    from tfpose.evaluation import evaluate_predictor

    def predict(crops):
        return model.predict_on_batch(crops.astype(np.float32))

    metrics, _ = evaluate_predictor(predict, dataset, codec, skeleton, padding, ap_resamples=ap_resamples)
    return metrics


def evaluate_teacher(teacher: SavedModelTeacher, dataset, codec: HeatmapCodec, skeleton, padding: float,
                     images=None, ap_resamples: int = 200) -> dict:
    """A SavedModel teacher scored as the student is (``predict_teacher``)."""
    from tfpose.evaluation import score_predictions

    return score_predictions(predict_teacher(teacher, dataset, codec, padding, images), dataset, skeleton,
                             ap_resamples=ap_resamples)


def predict_teacher(teacher: SavedModelTeacher, dataset, codec: HeatmapCodec, padding: float, images=None):
    """``Predictions`` of a SavedModel teacher on every labelled person of ``dataset``: each person's student crop
    (``codec``, ``padding``) seen through the teacher's square view of it (``teacher_matrix``), its heatmaps
    decoded by ``codec`` and mapped back to the image."""
    from tfpose.data.coco import ImageStore
    from tfpose.data.transforms import apply_matrix, invert_matrix, warp_image
    from tfpose.evaluation import Predictions, crop_person

    images = images if images is not None else ImageStore()
    persons = dataset.labelled()
    crops, mats, views = [], [], []
    for person in persons:
        crop, m = crop_person(person, images, codec, padding)
        crops.append(crop), mats.append(m)
        views.append(warp_image(images(person.image_path),
                                teacher_matrix(m, codec.input_size, teacher.input_size), teacher.input_size))
    keypoints, scores = codec.decode(teacher.precompute(np.stack(views).astype(np.float32)))
    in_image = np.stack([apply_matrix(k, invert_matrix(m)) for k, m in zip(keypoints, mats)]).astype(np.float32)
    return Predictions(persons, in_image, scores, np.stack(crops), np.stack(mats))
