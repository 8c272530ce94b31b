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
from tfpose.errors import InputError

Role = Literal["teacher", "student", "detector", "video"]
Kind = Literal["pose", "detector", "video"]
# the kind of model each role is: pose models map a crop to heatmaps, a detector a whole image to person boxes, and
# a video model a crop and the previous frame's state to heatmaps and the next state
KINDS: dict[str, str] = {"teacher": "pose", "student": "pose", "detector": "detector", "video": "video"}
KIND_NAMES = {"pose": "pose model", "detector": "person detector", "video": "video model"}


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


def get_spec(name: str, *, path: object = None, field: str | None = None) -> ModelSpec:
    """The registered model ``name``; an unknown one is an InputError naming ``field`` and the nearest name."""
    if name not in _REGISTRY:
        near = difflib.get_close_matches(str(name), list(_REGISTRY), n=1)
        hint = f"; did you mean '{near[0]}'?" if near else "."
        raise InputError(f"unknown model '{name}'{hint} Registered: {', '.join(sorted(_REGISTRY))}", path=path,
                         field=field)
    return _REGISTRY[name]


def check_model(name: str, params: dict, *, path: object = None, field: str | None = None,
                fixed: tuple[str, ...] = (), kind: Kind | None = "pose") -> ModelSpec:
    """The spec of model ``name`` after checking that it is a model of ``kind`` (None: any kind) and that its builder
    takes every key of ``params`` and of ``fixed`` (the parameters the caller passes itself, which ``params`` may not
    hold); an InputError naming ``field``.name or ``field``.params.KEY, the parameters it takes and the nearest one
    otherwise."""
    def where(sub: str) -> str | None:
        return f"{field}.{sub}" if field else None

    spec = get_spec(name, path=path, field=where("name"))
    if kind is not None and KINDS[spec.role] != kind:
        choices = ", ".join(s.name for s in list_models(kind))
        raise InputError(f"'{name}' is a {KIND_NAMES[KINDS[spec.role]]}, not a {kind} model; {kind} models: "
                         f"{choices}", path=path, field=where("name"))
    accepted = [p for p in inspect.signature(spec.builder).parameters if p not in ("input_size", "num_keypoints")]
    for key in fixed:
        if key not in accepted:
            takers = [s.name for s in _REGISTRY.values() if key in inspect.signature(s.builder).parameters]
            raise InputError(f"model '{name}' does not take '{key}', which its use here passes; models that do: "
                             f"{', '.join(sorted(takers))}", path=path, field=where("name"))
    for key in params:
        if key in fixed:
            raise InputError(f"'{key}' is passed by the model's use here: leave it out", path=path,
                             field=where(f"params.{key}"))
        if key not in accepted:
            near = difflib.get_close_matches(str(key), accepted, n=1)
            hint = f"; did you mean '{near[0]}'?" if near else "."
            raise InputError(f"model '{name}' has no parameter '{key}'{hint} It takes: {', '.join(accepted)}",
                             path=path, field=where(f"params.{key}"))
    return spec


def list_models(kind: Literal["pose", "detector", "video", "all"] = "pose") -> list[ModelSpec]:
    """The registered models of one kind: pose (teachers and students), detector, video, or all."""
    specs = [_REGISTRY[k] for k in sorted(_REGISTRY)]
    return specs if kind == "all" else [s for s in specs if KINDS[s.role] == kind]


def build_model(name: str, num_keypoints: int = 17, input_size: tuple[int, int] | None = None,
                **params) -> keras.Model:
    """Build a registered model; an unknown name or parameter is an InputError that names the nearest valid one."""
    spec = check_model(name, params, kind=None)
    if spec.role == "detector":
        return spec.builder(input_size=tuple(input_size or spec.input_size), **params)
    return spec.builder(input_size=tuple(input_size or spec.input_size), num_keypoints=num_keypoints, **params)


def deployable(model: keras.Model) -> keras.Model:
    """The single-output model to distil from or export: the last stack of a multi-output model."""
    if isinstance(model.output, (list, tuple)):
        return keras.Model(model.input, model.output[-1], name=model.name)
    return model
