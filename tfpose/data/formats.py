"""The dataset-format registry: a new format is a reader that yields the same person records and registers the way
models do (``tfpose.models.registry``). A reader module imports this one and registers itself; the lookups with
every built-in reader registered are imported from ``tfpose.data.readers``.

A reader has the signature ``reader(root: Path, annotations: str | None = None, images: str | None = None,
split: str = "all", num_keypoints: int = 17, **options) -> CocoDataset``:

- ``root``: the dataset's folder; ``annotations`` and ``images`` are paths relative to it (None = the format's own
  layout, e.g. ``joints.mat`` and ``images/`` for LSP);
- ``split``: one of the splits the format registers (every format has "all");
- it returns a ``CocoDataset`` whose ``persons`` are COCO-style records and whose ``raw`` is a COCO keypoints dict,
  so the pipeline, the evaluation code and pycocotools need not know where the data came from.

    from tfpose.data.readers import read_dataset
    read_dataset("parse", "../shared/data/lsp/parse", split="test")
    read_dataset("coco", "../shared/data/coco-mini-train", annotations="annotations/x.json", images="train2017")
"""

from __future__ import annotations

import difflib
import inspect
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from tfpose.data.coco import CocoDataset, load_coco
from tfpose.errors import InputError

Reader = Callable[..., CocoDataset]
UNIFORM = ("root", "annotations", "images", "split", "num_keypoints")


@dataclass(frozen=True)
class FormatSpec:
    name: str
    reader: Reader
    splits: tuple[str, ...]
    summary: str

    @property
    def options(self) -> tuple[str, ...]:
        """The reader's own keyword options beyond the uniform signature."""
        return tuple(p for p in inspect.signature(self.reader).parameters if p not in UNIFORM)


_REGISTRY: dict[str, FormatSpec] = {}


def register_format(name: str, splits: tuple[str, ...] = ("all",), summary: str = ""):
    """Decorator: register ``reader`` under ``name`` (registering a name again replaces it)."""
    def wrap(reader: Reader) -> Reader:
        missing = [p for p in UNIFORM if p not in inspect.signature(reader).parameters]
        if missing:
            raise TypeError(f"format reader '{name}' lacks the uniform parameters {missing}")
        if "all" not in splits:
            raise ValueError(f"format '{name}' must offer the split 'all'")
        _REGISTRY[name] = FormatSpec(name, reader, tuple(splits), summary)
        return reader
    return wrap


def get_format(name: str) -> FormatSpec:
    if name not in _REGISTRY:
        near = difflib.get_close_matches(name, list(_REGISTRY), n=1)
        hint = f"; did you mean '{near[0]}'?" if near else ""
        raise InputError(f"unknown dataset format '{name}'{hint} Registered: {', '.join(sorted(_REGISTRY))}",
                         field="format")
    return _REGISTRY[name]


def list_formats() -> list[FormatSpec]:
    return [_REGISTRY[k] for k in sorted(_REGISTRY)]


def read_dataset(format: str, root: str | Path, split: str = "all", annotations: str | None = None,
                 images: str | None = None, num_keypoints: int = 17, **options) -> CocoDataset:
    """Read ``root`` with the registered reader ``format``; an unknown format, split or option is an InputError that
    names the nearest valid one."""
    spec = get_format(format)
    if split not in spec.splits:
        near = difflib.get_close_matches(str(split), spec.splits, n=1)
        hint = f"did you mean '{near[0]}'? " if near else ""
        raise InputError(f"format '{format}' has no split '{split}'; {hint}choose from {', '.join(spec.splits)}",
                         field="split")
    for key in options:
        if key not in spec.options:
            near = difflib.get_close_matches(key, spec.options, n=1)
            hint = f"did you mean '{near[0]}'?" if near else f"accepted: {', '.join(spec.options) or 'none'}"
            raise InputError(f"format '{format}' has no option '{key}'; {hint}", field=key)
    return spec.reader(Path(root), annotations=annotations, images=images, split=split, num_keypoints=num_keypoints,
                       **options)


@register_format("coco", splits=("all", "train", "val"),
                 summary="COCO person_keypoints JSON; train/val = CocoDataset.split(0.3, seed 0), as evaluation uses")
def read_coco(root: Path, annotations: str | None = None, images: str | None = None, split: str = "all",
              num_keypoints: int = 17, val_fraction: float = 0.3, split_seed: int = 0) -> CocoDataset:
    if annotations is None or images is None:
        raise InputError("the coco format needs annotations= (the JSON) and images= (the folder), relative to root",
                         path=root, field="annotations" if annotations is None else "images")
    dataset = load_coco(Path(root) / annotations, Path(root) / images, num_keypoints)
    if split == "all":
        return dataset
    train, val = dataset.split(val_fraction, split_seed)
    return train if split == "train" else val
