"""tfpose: distil a heavy pose model into a small, validated int8 TFLite model.

Importing the package loads no TensorFlow: the numpy-only modules (codec, skeleton, metrics,
data.transforms) are shared with the on-device validator.
"""

__version__ = "0.1.0"
