"""Start a student from pretrained weights (``student.init``): copy layers by name, shapes checked.

``init`` is one of:
- ``imagenet``: tf_keras.applications' ImageNet weights for the student's encoder (downloaded by Keras, so only
  for a user who is online; tests and the quickstart never use it);
- an ``.h5`` file: a whole tf_keras model (e.g. ``../shared/models/init/movenet-lightning-keras.h5``) or a
  weights-only file (e.g. ``mobilenet-v1-1.0-imagenet.weights.h5``). Every layer whose name (after ``RENAMES``)
  and weight shapes match the student's is copied; the rest of the student keeps its fresh initialisation.

Every layer is convolutional, so weights made at one input size fit any other.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tfpose._keras import keras
from tfpose.errors import InputError

# The MoveNet file's last encoder conv is named apart from MobileNetV2's standard ``Conv_1``.
RENAMES = {"Conv_1_od": "Conv_1", "Conv_1_od_bn": "Conv_1_bn"}


@dataclass
class InitReport:
    source: str
    copied: list[str] = field(default_factory=list)          # student layers that now hold the source's weights
    mismatched: list[str] = field(default_factory=list)      # same name, other shapes: left as they were
    fresh: list[str] = field(default_factory=list)           # student layers with weights the source lacks

    def line(self) -> str:
        return (f"init from {self.source}: {len(self.copied)} layers copied, {len(self.fresh)} fresh"
                + (f", {len(self.mismatched)} of other shapes ({', '.join(self.mismatched[:4])})"
                   if self.mismatched else ""))


def read_h5_layers(path: Path) -> dict[str, list[np.ndarray]] | None:
    """{layer name: its weight arrays in Keras order} from a tf_keras .h5 model or legacy weights file; None for
    a file in the name-less Keras 3 weights layout, which only the architecture it was saved from can read."""
    import h5py

    try:
        with h5py.File(path, "r") as f:
            root = f["model_weights"] if "model_weights" in f else f
            if "layer_names" not in root.attrs:
                return None
            layers = {}
            for name in (n.decode() if isinstance(n, bytes) else n for n in root.attrs["layer_names"]):
                group = root[name]
                names = [n.decode() if isinstance(n, bytes) else n for n in group.attrs.get("weight_names", [])]
                if names:
                    layers[name] = [np.asarray(group[n]) for n in names]
            return layers
    except (OSError, KeyError, ValueError) as e:
        raise InputError(f"cannot read as HDF5 weights ({e})", path=path, field="student.init") from None


def encoder_layers(model: keras.Model, width: float, weights: str) -> dict[str, list[np.ndarray]]:
    """The weights of ``model``'s tf_keras.applications encoder (its family is its name: mobilenetv1 /
    mobilenetv2) with ``weights``: "imagenet" or a weights file saved from that encoder."""
    from tfpose.models.mobilenet import applications_encoder

    families = ("mobilenetv1", "mobilenetv2")
    if model.name not in families:
        raise InputError(f"encoder weights fit the students {list(families)}, not '{model.name}'",
                         path=None if weights == "imagenet" else weights, field="student.init")
    h, w = model.input_shape[1:3]
    encoder = applications_encoder(model.name, keras.Input((h, w, 3)), width)
    try:
        if weights == "imagenet":
            reference = keras.applications.MobileNet if model.name == "mobilenetv1" else keras.applications.MobileNetV2
            encoder.set_weights(reference(input_shape=(h, w, 3), alpha=width, include_top=False,
                                          weights="imagenet").get_weights())
        else:
            encoder.load_weights(weights)
    except (OSError, ValueError, KeyError) as e:
        raise InputError(f"does not fit a {model.name} encoder of width {width} ({e})",
                         path=None if weights == "imagenet" else weights, field="student.init") from None
    return {layer.name: layer.get_weights() for layer in encoder.layers if layer.weights}


def source_layers(model: keras.Model, init: str, width: float) -> dict[str, list[np.ndarray]]:
    if init == "imagenet":
        return encoder_layers(model, width, "imagenet")
    path = Path(init)
    if not path.is_file():
        raise InputError("initial weights file not found", path=path, field="student.init")
    layers = read_h5_layers(path)
    return encoder_layers(model, width, str(path)) if layers is None else layers


def initialise(model: keras.Model, init: str, width: float = 1.0) -> InitReport:
    """Copy the weights ``init`` names into ``model`` in place (see the module docstring); returns what was copied."""
    source = source_layers(model, init, width)
    source = {RENAMES.get(name, name): arrays for name, arrays in source.items()}
    report = InitReport(init)
    for layer in model.layers:
        if not layer.weights:
            continue
        arrays = source.get(layer.name)
        if arrays is None:
            report.fresh.append(layer.name)
        elif [a.shape for a in arrays] != [tuple(v.shape) for v in layer.weights]:
            report.mismatched.append(layer.name)
        else:
            layer.set_weights(arrays)
            report.copied.append(layer.name)
    if not report.copied:
        raise InputError(f"no layer of '{model.name}' matches a layer of the file by name and shape",
                         path=init, field="student.init")
    return report


def freeze_batchnorm(model: keras.Model) -> int:
    """BatchNorm layers in inference mode for good (statistics and affine fixed); returns how many.

    Fine-tuning with batches of 16-32 crops would replace pretrained statistics with noisy batch ones, and the
    MoveNet file's BatchNorms are folded (mean 0, variance 1): batch statistics there would change the function."""
    frozen = 0
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.trainable = False
            frozen += 1
    return frozen
