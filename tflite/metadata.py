"""Metadata inside the .tflite file: a zip archive appended to the flatbuffer.

The TFLite flatbuffer is addressed from its start, so interpreters ignore trailing bytes (the TFLite Support
metadata writer packs associated files the same way). Any tool reads it back with Python's zipfile; nothing
else is needed on the device.
"""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

from tfpose.errors import InputError

METADATA_NAME = "tfpose_metadata.json"
TFLITE_MAGIC = b"TFL3"


def attach(model: bytes, metadata: dict) -> bytes:
    """Return ``model`` with ``metadata`` appended as a one-file zip archive."""
    if model[4:8] != TFLITE_MAGIC:
        raise ValueError("not a TFLite flatbuffer (missing TFL3 identifier)")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(METADATA_NAME, json.dumps(metadata, indent=2))
    return model + buf.getvalue()


def read(path: str | Path) -> dict:
    """The metadata of a tfpose .tflite; a clear error for a file that is not one."""
    meta = find(path)
    if meta is None:
        raise InputError(f"has no tfpose metadata ({METADATA_NAME}); export it with `tfpose export`", path=path)
    return meta


def find(path: str | Path) -> dict | None:
    """The tfpose metadata of a .tflite, or None for a TFLite model without it (e.g. a peer's model)."""
    path = Path(path)
    if not path.is_file():
        raise InputError("model file not found", path=path)
    with open(path, "rb") as f:
        head = f.read(8)
    if len(head) < 8 or head[4:8] != TFLITE_MAGIC:
        raise InputError("not a TFLite model (no TFL3 identifier)", path=path)
    try:
        with zipfile.ZipFile(path) as zf:
            return json.loads(zf.read(METADATA_NAME))
    except (zipfile.BadZipFile, KeyError):
        return None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise InputError(f"its {METADATA_NAME} is not valid JSON ({e})", path=path) from None


def strip(data: bytes) -> bytes:
    """The flatbuffer alone: ``data`` without an appended metadata archive."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            return data[:min(i.header_offset for i in zf.infolist())]
    except (zipfile.BadZipFile, ValueError):
        return data
