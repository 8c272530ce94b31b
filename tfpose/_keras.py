"""The one place that chooses Keras.

tensorflow-model-optimization accepts only tf_keras (Keras 2) models, and mixing Keras 3 and tf_keras
objects fails in confusing ways, so every module does ``from tfpose._keras import keras, tf``.
"""

import os

# Must be set before TensorFlow is imported anywhere in the process.
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf  # noqa: E402
import tf_keras as keras  # noqa: E402

__all__ = ["keras", "tf"]
