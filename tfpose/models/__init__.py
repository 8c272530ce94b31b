"""Functional Keras pose models and person detectors behind one registry (``build_model``, ``list_models``)."""

from tfpose.models.registry import ModelSpec, build_model, deployable, get_spec, list_models  # noqa: F401
from tfpose.models import (  # noqa: F401,E402  (registers the families)
    dkd, hourglass, mnasnet, mobilenet, nanodet, peleenet, shufflenet, simplebaseline)
