"""Keras model files: load one (with tfpose's custom layers registered) and save one atomically with its record.

Keras is imported inside the functions, so importing this module (as the pipeline and the CLI do) loads none."""

from __future__ import annotations

import json
import zipfile
import zlib
from pathlib import Path

from tfpose.artifacts import atomic_paths, record_path
from tfpose.errors import InputError


def load_keras(path: Path):
    """The model in the .keras file ``path``, uncompiled, tfpose's custom layers known; a missing or damaged file
    is an InputError naming it."""
    from tfpose._keras import keras
    import tfpose.models  # noqa: F401  (registers custom layers)

    if not path.exists():
        raise InputError("model not found", path=path)
    try:
        return keras.models.load_model(path, compile=False)
    # a damaged file fails in its archive, its HDF5 weights or its config, each in its own way
    except (OSError, ValueError, KeyError, TypeError, EOFError, zipfile.BadZipFile, zlib.error) as e:
        raise InputError(f"not a loadable Keras model ({type(e).__name__}: {str(e)[:200]})", path=path) from None


def save_keras(model, path: Path, record: dict | None = None) -> None:
    """Save ``model`` atomically; with ``record`` (what made it, ``make_record``) beside it, the two as one set."""
    with atomic_paths(path, *([record_path(path)] if record else [])) as tmps:
        model.save(tmps[0])
        if record:
            tmps[1].write_text(json.dumps(record, indent=2) + "\n")
