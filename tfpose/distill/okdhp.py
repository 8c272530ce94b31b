"""OKDHP (Li et al., ICCV 2021): an online multi-branch student whose ensemble teaches each branch.

The student's own layers are branch 0 (so what gets exported is the plain student, untouched); the layers after
``branch_from`` are cloned into the other branches, which share everything before. A Feature Aggregation Unit
weighs the branches per joint; the weighted sum (the ensemble) teaches each branch through a per-joint spatial KL.
Shape legend: B crops, (h, w) cells, K joints, N branches.
"""

from __future__ import annotations

from tfpose._keras import keras, tf


def default_branch_point(student: keras.Model) -> str:
    """The last layer whose output is smaller than the heatmaps (the start of the last upsampling stage)."""
    out = student.output[-1] if isinstance(student.output, (list, tuple)) else student.output
    h = out.shape[1]
    best = None
    for layer in student.layers:
        shape = layer.output.shape if not isinstance(layer.output, (list, tuple)) else None
        if shape is not None and len(shape) == 4 and shape[1] is not None and shape[1] < h:
            best = layer.name
    if best is None:
        raise ValueError(f"{student.name}: no layer below heatmap size to branch from; set okdhp.branch_from")
    return best


def build_branches(student: keras.Model, branches: int, branch_from: str = "") -> keras.Model:
    """images -> [branch_0, ..., branch_{N-1}] heatmaps (B, h, w, K); branch_0 is ``student`` itself."""
    name = branch_from or default_branch_point(student)
    feature = student.get_layer(name).output
    out = student.output[-1] if isinstance(student.output, (list, tuple)) else student.output
    head = keras.Model(feature, out, name=f"{student.name}_head")
    outputs = [out]
    for b in range(1, branches):
        clone = keras.models.clone_model(head)
        clone._name = f"branch{b}"
        outputs.append(clone(feature))
    return keras.Model(student.input, outputs, name=f"{student.name}_okdhp")


class FeatureAggregationUnit(keras.layers.Layer):
    """Parallel 3x3, 5x5 and 7x7 convs over the concatenated branch heatmaps, summed, global-average-pooled,
    two small dense layers, a softmax over branches per joint; returns the ensemble (B, h, w, K) and the
    weights (B, N, K)."""

    def __init__(self, branches: int, num_keypoints: int, hidden: int = 32, **kwargs):
        super().__init__(**kwargs)
        self.n, self.k = branches, num_keypoints
        c = branches * num_keypoints
        self.convs = [keras.layers.Conv2D(hidden, s, padding="same", dtype="float32") for s in (3, 5, 7)]
        self.fc1 = keras.layers.Dense(hidden, activation="relu", dtype="float32")
        self.fc2 = keras.layers.Dense(c, dtype="float32")

    def call(self, maps):
        maps = [tf.cast(m, tf.float32) for m in maps]
        x = tf.concat(maps, axis=-1)
        x = tf.add_n([conv(x) for conv in self.convs])
        x = self.fc2(self.fc1(tf.reduce_mean(x, axis=[1, 2])))
        weights = tf.nn.softmax(tf.reshape(x, [-1, self.n, self.k]), axis=1)           # (B, N, K)
        stacked = tf.stack(maps, axis=1)                                                # (B, N, h, w, K)
        ensemble = tf.reduce_sum(stacked * weights[:, :, None, None, :], axis=1)
        return ensemble, weights
