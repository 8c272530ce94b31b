"""The Distiller: a thin keras.Model holding a trainable student and a frozen teacher.

``train_step`` runs the teacher in inference mode, the student in training mode (tfmot's pruning step only
advances then), and mixes the loss terms. With no teacher it is plain supervised training, which is also
how a teacher is trained: one train_step owns every heatmap loss in the project. Multi-stack students get
the loss on every stack (intermediate supervision; FPD distils into each stack). What gets saved or
exported is ``distiller.student``, never the distiller.
"""

from __future__ import annotations

from tfpose._keras import keras, tf
from tfpose.distill.losses import alpha_kd, keypoint_mse


class Distiller(keras.Model):
    def __init__(self, student: keras.Model, teacher: keras.Model | None = None, alpha: float = 0.5, **kwargs):
        super().__init__(**kwargs)
        self.student = student
        self.teacher = teacher
        if teacher is not None:
            teacher.trainable = False
        self.alpha = float(alpha) if teacher is not None else 0.0
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.gt_tracker = keras.metrics.Mean(name="gt_loss")
        self.kd_tracker = keras.metrics.Mean(name="kd_loss")

    @property
    def metrics(self):
        return [self.loss_tracker, self.gt_tracker, self.kd_tracker]

    def call(self, images, training=False):
        return self.student(images, training=training)

    def _loss(self, images, targets, training: bool):
        outputs = self.student(images, training=training)
        stacks = outputs if isinstance(outputs, (list, tuple)) else [outputs]
        truth, weights = targets["heatmaps"], targets["weights"]
        if self.teacher is None:
            gt = tf.add_n([keypoint_mse(s, truth, weights) for s in stacks])
            return gt, gt, tf.zeros_like(gt)
        teacher_maps = tf.stop_gradient(self.teacher(images, training=False))
        terms = [alpha_kd(s, truth, weights, teacher_maps, self.alpha) for s in stacks]
        return tuple(tf.add_n(list(t)) for t in zip(*terms))

    def train_step(self, data):
        images, targets = data
        with tf.GradientTape() as tape:
            loss, gt, kd = self._loss(images, targets, training=True)
        variables = self.student.trainable_variables
        self.optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
        return self._track(loss, gt, kd)

    def test_step(self, data):
        images, targets = data
        return self._track(*self._loss(images, targets, training=False))

    def _track(self, loss, gt, kd):
        self.loss_tracker.update_state(loss)
        self.gt_tracker.update_state(gt)
        self.kd_tracker.update_state(kd)
        return {m.name: m.result() for m in self.metrics}
