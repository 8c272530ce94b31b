"""Short fine-tuning of a compressed student through the Distiller (pruning, QAT): the teacher keeps guiding, or
ground truth alone when there is none. Shared by ``tfpose.prune`` and ``tfpose.quantize``."""

from __future__ import annotations

import time

from tfpose._keras import keras, tf
from tfpose.distill.distiller import Distiller
from tfpose.train import input_errors


def copy_model(model: keras.Model) -> keras.Model:
    """A functional copy with the same weights: tfmot wraps layer objects in place, so it must get a copy."""
    copy = keras.models.clone_model(model)
    copy.set_weights(model.get_weights())
    return copy


class FinetuneProgress(keras.callbacks.Callback):
    """A line at every tenth of a fine-tuning run: steps done, loss, time left."""

    def __init__(self, steps: int):
        super().__init__()
        self.steps, self.every = steps, max(1, steps // 10)

    def on_train_begin(self, logs=None):
        self.start = time.monotonic()

    def on_train_batch_end(self, batch, logs=None):
        done = batch + 1
        if done % self.every and done != self.steps:
            return
        per_step = (time.monotonic() - self.start) / done
        print(f"    fine-tuning: {done}/{self.steps} steps, loss {float((logs or {}).get('loss', float('nan'))):.4f}, "
              f"{per_step:.2f} s/step, {per_step * (self.steps - done) / 60:.1f} min left", flush=True)


def finetune(student: keras.Model, data: tf.data.Dataset, steps: int, teacher=None, alpha: float = 0.5,
             learning_rate: float = 1e-4, callbacks=(), heatmap_loss: str = "mse", parent: keras.Model | None = None,
             parent_weight: float = 1.0, cosine: bool = False) -> keras.Model:
    """Train ``student`` for ``steps`` batches of ``data`` ((images, {"heatmaps", "weights", ...}) as
    ``tfpose.data.pipeline.build_dataset`` makes them; repeated as needed) with FPD's ``heatmap_loss``, ``parent``
    guiding with ``parent_weight`` when given; the learning rate decays to 0 over the steps with ``cosine``.
    Returns the student."""
    distiller = Distiller(student, teacher, alpha if teacher is not None else 0.0, heatmap_loss=heatmap_loss,
                          parent=parent, parent_weight=parent_weight)
    rate = keras.optimizers.schedules.CosineDecay(learning_rate, steps) if cosine else learning_rate
    distiller.compile(optimizer=keras.optimizers.Adam(rate))
    with input_errors():
        distiller.fit(data.repeat(), steps_per_epoch=steps, epochs=1,
                      callbacks=[FinetuneProgress(steps), *callbacks], verbose=0)
    return student
