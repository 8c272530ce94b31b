"""The Distiller: a thin keras.Model holding a trainable student and a frozen teacher.

``train_step`` runs the teacher in inference mode, the student in training mode (tfmot's pruning step only
advances then), and mixes the loss terms of the chosen method. With no teacher it is plain supervised training,
which is also how a teacher is trained: one train_step owns every heatmap loss in the project. Multi-stack
students get the loss on every stack (intermediate supervision; FPD distils into each stack). What gets saved
or exported is ``distiller.student``, never the distiller.

Methods (``distill.method``), each a combination of the small functions in ``losses.py``:
- ``fpd``: (1 - a) MSE(gt) + a MSE(teacher) on every stack (FPD; Park et al.); ``heatmap_loss="bce"`` puts binary
  cross-entropy in place of MSE, for sigmoid heads (the MoveNet-initialised student); ``confidence_weights``
  weighs each joint's teacher term by the teacher's peak height there.
- ``dskd``: teacher (and assistant) heatmaps binarized under a threshold; MSE + spatial softmax cross-entropy;
  densely guided: every stronger model - teacher, each assistant, every deeper stack of the student - guides
  every weaker one directly (guides are stop-gradient).
- ``okdhp``: the student grows N branches (``okdhp.py``); a Feature Aggregation Unit's ensemble teaches each
  branch by a per-joint spatial KL with the ramp-up exp(-5 (1 - t/T)^2); with a teacher, every supervised term
  is FPD's alpha mix.
- ``dkd``: a video student (the tracker of ``tfpose.models.dkd``) unrolled over short sequences from the teacher's
  frame-1 heatmaps (``dkd.py``): heatmap MSE + ``adversarial_weight`` x a temporal discriminator's verdict. The
  discriminator is held here and learns in the same step, on its own loss (the one part trained beside the student).
The teacher weight a follows ``kd_schedule`` over ``total_steps`` (constant, or linear decay to ``kd_end`` x a).
A ``feature_teacher`` (fpd only; ``teachers.feature_teacher``: Thunder rebuilt as a Keras model, on the student's
own crop) adds DWPose's feature term: ``feature_weight`` x MSE between a trained 1x1 projection of the student's
``feature_layer`` output and the teacher's features on the same grid (the projection is not exported).
A ``parent`` (fpd only) adds ``parent_weight`` x the heatmap loss against a second frozen model on every joint: the
unpruned student guiding its channel-pruned copy, which can imitate it layer for layer, beside the teacher.
Targets may carry ``teacher_heatmaps`` (precomputed, on the student grid) or ``teacher_images`` (the square view a
SavedModel teacher needs); otherwise the teacher sees the student's images.
"""

from __future__ import annotations

from tfpose._keras import keras, tf
from tfpose.config import DkdConfig, DskdConfig, OkdhpConfig
from tfpose.distill.losses import (HEATMAP_LOSSES, alpha_kd, binarize, dskd_terms, kd_weight, keypoint_bce,
                                   keypoint_mse, feature_hint, okdhp_ramp, spatial_kl, teacher_confidence)

METHODS = ("fpd", "dskd", "okdhp", "dkd")


def ends_in_sigmoid(model: keras.Model) -> bool:
    """Whether every output of ``model`` is a sigmoid activation (probabilities that cross-entropy can read)."""
    names = model.output_names if isinstance(model.output, (list, tuple)) else [model.output_names[0]]
    layers = [model.get_layer(name) for name in names]
    # tfmot's QAT and pruning wrappers hold the layer they wrap (a fake-quantized sigmoid is still a probability)
    layers = [getattr(layer, "layer", layer) for layer in layers]
    return all(isinstance(layer, keras.layers.Activation) and layer.get_config()["activation"] == "sigmoid"
               for layer in layers)


class Distiller(keras.Model):
    def __init__(self, student: keras.Model, teacher=None, alpha: float = 0.5, method: str = "fpd",
                 dskd: DskdConfig | None = None, okdhp: OkdhpConfig | None = None, assistants=(),
                 dkd: DkdConfig | None = None,
                 kd_schedule: str = "constant", kd_end: float = 0.0, total_steps: int = 0, heatmap_loss: str = "mse",
                 parent: keras.Model | None = None, parent_weight: float = 1.0, confidence_weights: bool = False,
                 feature_teacher: keras.Model | None = None, feature_layer: str = "fpn_sep2",
                 feature_weight: float = 1.0, **kwargs):
        super().__init__(**kwargs)
        if method not in METHODS:
            raise ValueError(f"unknown distillation method '{method}'; expected one of {METHODS}")
        if heatmap_loss != "mse" and method != "fpd":
            raise ValueError(f"heatmap_loss '{heatmap_loss}' is for method fpd (and ground truth alone); "
                             f"{method} is defined on MSE")
        if heatmap_loss == "bce" and not ends_in_sigmoid(student):
            raise ValueError(f"heatmap_loss 'bce' needs a student whose heatmaps are sigmoid outputs; "
                             f"'{student.name}' ends in '{student.layers[-1].name}': use 'mse'")
        for option, given in (("a parent model", parent is not None),
                              ("teacher confidence weights", confidence_weights),
                              ("a feature teacher", feature_teacher is not None)):
            if given and method != "fpd":
                raise ValueError(f"{option} is for method fpd only, not {method}")
        self.pointwise = HEATMAP_LOSSES[heatmap_loss]
        self.confidence_weights = bool(confidence_weights)
        self.feature_teacher, self.feature_weight = feature_teacher, float(feature_weight)
        self.feature_student = self.projection = None
        if feature_teacher is not None:
            if feature_layer not in [layer.name for layer in student.layers]:
                raise ValueError(f"the student '{student.name}' has no layer '{feature_layer}' to distil features into")
            taught = student.get_layer(feature_layer).output
            self.feature_student = keras.Model(student.input, [taught, student.output])
            if tuple(taught.shape[1:3]) != tuple(feature_teacher.output_shape[1:3]):
                raise ValueError(f"the student's '{feature_layer}' grid {tuple(taught.shape[1:3])} is not the feature "
                                 f"teacher's {tuple(feature_teacher.output_shape[1:3])}")
            self.projection = keras.layers.Conv2D(feature_teacher.output_shape[-1], 1, name="feature_projection")
        self.parent, self.parent_weight = parent, float(parent_weight)
        self.student = student
        self.teacher = teacher
        self.assistants = list(assistants)
        for frozen in [teacher, feature_teacher, *self.assistants]:
            if isinstance(frozen, keras.Model):
                frozen.trainable = False
        self.alpha = float(alpha) if teacher is not None else 0.0
        self.method = method
        self.dskd = dskd or DskdConfig()
        self.okdhp = okdhp or OkdhpConfig()
        self.kd_schedule, self.kd_end, self.total_steps = kd_schedule, float(kd_end), int(total_steps)
        self.dkd = dkd or DkdConfig()
        self.branches = self.fau = self.discriminator = None
        if method == "dkd":
            from tfpose.models.dkd import build_discriminator

            h, w, k = student.output_shape[1][1:]
            self.discriminator = build_discriminator((w, h), k, self.dkd.window)
        if method == "okdhp":
            from tfpose.distill.okdhp import FeatureAggregationUnit, build_branches

            self.branches = build_branches(student, self.okdhp.branches, self.okdhp.branch_from)
            k = self.branches.output[0].shape[-1]
            self.fau = FeatureAggregationUnit(self.okdhp.branches, k, name="fau")
        self.step = tf.Variable(0, trainable=False, dtype=tf.int64, name="distill_step")
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.gt_tracker = keras.metrics.Mean(name="gt_loss")
        self.kd_tracker = keras.metrics.Mean(name="kd_loss")
        self.critic_tracker = keras.metrics.Mean(name="critic_loss")

    @property
    def metrics(self):
        return [self.loss_tracker, self.gt_tracker, self.kd_tracker] + (
            [self.critic_tracker] if self.discriminator is not None else [])

    def call(self, images, training=False):
        return self.student(images, training=training)

    @property
    def trained_variables(self):
        """What the optimiser updates: the student (its branches under OKDHP) and the FAU; never a teacher."""
        if self.branches is not None:
            return self.branches.trainable_variables + self.fau.trainable_variables
        if self.projection is not None:
            return self.student.trainable_variables + self.projection.trainable_variables
        return self.student.trainable_variables

    def teacher_maps(self, images, targets):
        """(B, h, w, K) teacher heatmaps on the student's grid, stop-gradient; None without a teacher."""
        if self.teacher is None:
            return None
        if "teacher_heatmaps" in targets:
            maps = targets["teacher_heatmaps"]
        elif "teacher_images" in targets:
            maps = self.teacher(targets["teacher_images"], training=False)
        else:
            maps = self.teacher(images, training=False)
        return tf.stop_gradient(tf.cast(maps, tf.float32))

    def _alpha(self):
        return self.alpha * kd_weight(self.step, self.total_steps, self.kd_schedule, self.kd_end)

    def _loss(self, images, targets, training: bool):
        truth, weights = targets["heatmaps"], targets["weights"]
        if self.method == "dkd":
            return self._dkd_loss(images, truth, weights, training)
        if self.method == "okdhp":
            return self._okdhp_loss(images, targets, training)
        if self.feature_student is not None:
            features, outputs = self.feature_student(images, training=training)
        else:
            outputs = self.student(images, training=training)
        stacks = [tf.cast(s, tf.float32) for s in (outputs if isinstance(outputs, (list, tuple)) else [outputs])]
        teacher_maps = self.teacher_maps(images, targets)
        if self.method == "dskd":
            return self._dskd_loss(images, stacks, truth, weights, teacher_maps)
        if teacher_maps is None:
            gt = tf.add_n([self.pointwise(s, truth, weights) for s in stacks])
            total, kd = gt, tf.zeros_like(gt)
        else:
            alpha = self._alpha()
            if self.pointwise is keypoint_bce:   # a linear teacher overshoots [0, 1], where cross-entropy has no minimum
                teacher_maps = tf.clip_by_value(teacher_maps, 0.0, 1.0)
            confidence = teacher_confidence(teacher_maps) if self.confidence_weights else None
            terms = [alpha_kd(s, truth, weights, teacher_maps, alpha, self.pointwise, confidence) for s in stacks]
            total, gt, kd = (tf.add_n(list(t)) for t in zip(*terms))
        if self.feature_teacher is not None:
            taught = tf.stop_gradient(tf.cast(self.feature_teacher(images, training=False), tf.float32))
            hint = self.feature_weight * feature_hint(self.projection(tf.cast(features, tf.float32)), taught)
            total, kd = total + hint, kd + hint
        if self.parent is not None:
            parent_maps = tf.stop_gradient(tf.cast(self.parent(images, training=False), tf.float32))
            guided = self.parent_weight * tf.add_n([self.pointwise(s, parent_maps) for s in stacks])
            total, kd = total + guided, kd + guided
        return total, gt, kd

    def _dskd_loss(self, images, stacks, truth, weights, teacher_maps):
        d = self.dskd
        guides = [] if teacher_maps is None else [binarize(teacher_maps, d.threshold)]
        guides += [binarize(tf.stop_gradient(tf.cast(a(images, training=False), tf.float32)), d.threshold)
                   for a in self.assistants]
        alpha = self._alpha() if guides else 0.0
        terms = []
        for i, s in enumerate(stacks):
            deeper = [tf.stop_gradient(stacks[j]) for j in range(len(stacks) - 1, i, -1)]   # the student's stronger stages
            own = guides + deeper
            a = alpha if guides else (self.alpha_self if deeper else 0.0)
            terms.append(dskd_terms(s, truth, weights, own, a, d.ce_weight, d.temperature))
        return tuple(tf.add_n(list(t)) for t in zip(*terms))

    @property
    def alpha_self(self) -> float:
        """Weight of self-guidance (deeper stacks guiding shallower ones) when there is no external teacher."""
        return 0.5

    def _okdhp_loss(self, images, targets, training):
        o = self.okdhp
        truth, weights = targets["heatmaps"], targets["weights"]
        branches = [tf.cast(b, tf.float32) for b in self.branches(images, training=training)]
        ensemble, _ = self.fau(branches)
        teacher_maps = self.teacher_maps(images, targets)
        alpha = self._alpha() if teacher_maps is not None else 0.0

        def supervised(pred):
            if teacher_maps is None:
                return keypoint_mse(pred, truth, weights)
            return alpha_kd(pred, truth, weights, teacher_maps, alpha)[0]

        gt = tf.add_n([supervised(b) for b in branches]) + o.ensemble_weight * supervised(ensemble)
        ramp = okdhp_ramp(self.step, self.total_steps if o.rampup_epochs <= 0 else o.rampup_epochs)
        target = tf.stop_gradient(ensemble)
        kd = tf.add_n([spatial_kl(b, target, o.temperature) for b in branches])
        return gt + o.kl_weight * ramp * kd, gt, kd

    def _dkd_loss(self, frames, truth, weights, training):
        from tfpose.distill.dkd import dkd_terms, unroll

        maps, own = unroll(self.student, frames, self.teacher, training)
        mse, adv, critic = dkd_terms(maps, own, truth, weights, self.discriminator, self.dkd.own_weight, training)
        self._critic = critic
        return mse + self.dkd.adversarial_weight * adv, mse, adv

    def train_step(self, data):
        images, targets = data
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        scaling = isinstance(self.optimizer, keras.mixed_precision.LossScaleOptimizer)
        with tf.GradientTape(persistent=self.discriminator is not None) as tape:
            loss, gt, kd = self._loss(images, targets, training=True)
            # each loss with the variables it trains: the student's, and DKD's discriminator on its own loss
            pairs = [(loss, self.trained_variables)]
            if self.discriminator is not None:
                pairs.append((self._critic, self.discriminator.trainable_variables))
            # gradients are summed over replicas
            scaled = [self.optimizer.get_scaled_loss(t / replicas) if scaling else t / replicas for t, _ in pairs]
        grads, variables = [], []
        for term, (_, trained) in zip(scaled, pairs):
            grads += tape.gradient(term, trained)
            variables += trained
        del tape
        if scaling:
            grads = self.optimizer.get_unscaled_gradients(grads)
        self.optimizer.apply_gradients(zip(grads, variables))
        self.step.assign_add(1)
        return self._track(loss, gt, kd)

    def test_step(self, data):
        images, targets = data
        return self._track(*self._loss(images, targets, training=False))

    def _track(self, loss, gt, kd):
        self.loss_tracker.update_state(loss)
        self.gt_tracker.update_state(gt)
        self.kd_tracker.update_state(kd)
        if self.discriminator is not None:
            self.critic_tracker.update_state(self._critic)
        return {m.name: m.result() for m in self.metrics}
