"""Rebuilding a functional Keras model from an edited config: how BatchNorm folding (``tfpose.quantize``) and
block pruning of 1x1 convs (``tfpose.prune``) change a graph's layers without touching the model they start from.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from tfpose._keras import keras
from tfpose.models.blocks import PixelShuffle


def rebuild(config: dict, weights: Callable[[str], list[np.ndarray]]) -> keras.Model:
    """A new functional model from ``config`` (``Model.get_config()`` output, edited), each layer's weights set to
    ``weights(layer name)``."""
    model = keras.Model.from_config(config, custom_objects={"PixelShuffle": PixelShuffle})
    for layer in model.layers:
        layer.set_weights(weights(layer.name))
    return model
