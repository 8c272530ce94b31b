"""The model registry: every teacher and student family registers a builder with its paper's input size.

A builder takes ``(input_size=(W, H), num_keypoints=K, **params)`` and returns a functional Keras model
mapping raw pixels (B, H, W, 3) to heatmaps (B, H/4, W/4, K) - or, with ``intermediate=True`` where the
family supports it, to a list of heatmaps, one per stack, for intermediate supervision.

Each spec also carries ``tiny``: the builder parameters of a small but complete configuration of the
family (a few thousand to a few hundred thousand weights), so registry-wide tests and smoke runs cover
every family without knowing about it.
"""

from __future__ import annotations

import difflib
import inspect
from dataclasses import dataclass, field
from typing import Callable, Literal

from tfpose._keras import keras

Role = Literal["teacher", "student"]


@dataclass(frozen=True)
class ModelSpec:
    name: str
    role: Role
    builder: Callable[..., keras.Model]
    input_size: tuple[int, int]      # the paper's (W, H)
    summary: str
    tiny: dict = field(default_factory=dict)


_REGISTRY: dict[str, ModelSpec] = {}


def register(name: str, role: Role, input_size: tuple[int, int], summary: str, tiny: dict | None = None):
    def wrap(builder):
        _REGISTRY[name] = ModelSpec(name, role, builder, input_size, summary, dict(tiny or {}))
        return builder
    return wrap


def get_spec(name: str) -> ModelSpec:
    if name not in _REGISTRY:
        near = difflib.get_close_matches(name, list(_REGISTRY), n=1)
        hint = f"; did you mean '{near[0]}'?" if near else ""
        raise KeyError(f"unknown model '{name}'{hint} Registered: {', '.join(sorted(_REGISTRY))}")
    return _REGISTRY[name]


def list_models() -> list[ModelSpec]:
    return [_REGISTRY[k] for k in sorted(_REGISTRY)]


def build_model(name: str, num_keypoints: int = 17, input_size: tuple[int, int] | None = None,
                **params) -> keras.Model:
    """Build a registered model; an unknown parameter is an error that names the nearest valid one."""
    spec = get_spec(name)
    accepted = [p for p in inspect.signature(spec.builder).parameters if p not in ("input_size", "num_keypoints")]
    for key in params:
        if key not in accepted:
            near = difflib.get_close_matches(key, accepted, n=1)
            hint = f"; did you mean '{near[0]}'?" if near else f"; accepted: {', '.join(accepted)}"
            raise TypeError(f"model '{name}' has no parameter '{key}'{hint}")
    return spec.builder(input_size=tuple(input_size or spec.input_size), num_keypoints=num_keypoints, **params)


def deployable(model: keras.Model) -> keras.Model:
    """The single-output model to distil from or export: the last stack of a multi-output model."""
    if isinstance(model.output, (list, tuple)):
        return keras.Model(model.input, model.output[-1], name=model.name)
    return model
