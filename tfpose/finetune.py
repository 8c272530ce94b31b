"""Short fine-tuning of a compressed student through the Distiller (pruning, QAT): the teacher keeps guiding, or
ground truth alone when there is none. Shared by ``tfpose.prune`` and ``tfpose.quantize``."""

from __future__ import annotations

from tfpose._keras import keras, tf
from tfpose.distill.distiller import Distiller
from tfpose.train import input_errors


def copy_model(model: keras.Model) -> keras.Model:
    """A functional copy with the same weights: tfmot wraps layer objects in place, so it must get a copy."""
    copy = keras.models.clone_model(model)
    copy.set_weights(model.get_weights())
    return copy


def finetune(student: keras.Model, data: tf.data.Dataset, steps: int, teacher=None, alpha: float = 0.5,
             learning_rate: float = 1e-4, callbacks=(), heatmap_loss: str = "mse") -> keras.Model:
    """Train ``student`` for ``steps`` batches of ``data`` ((images, {"heatmaps", "weights", ...}) as
    ``tfpose.data.pipeline.build_dataset`` makes them; repeated as needed) with FPD's ``heatmap_loss``; returns
    the student."""
    distiller = Distiller(student, teacher, alpha if teacher is not None else 0.0, heatmap_loss=heatmap_loss)
    distiller.compile(optimizer=keras.optimizers.Adam(learning_rate))
    with input_errors():
        distiller.fit(data.repeat(), steps_per_epoch=steps, epochs=1, callbacks=list(callbacks), verbose=0)
    return student
