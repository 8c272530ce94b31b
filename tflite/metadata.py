"""Metadata inside the .tflite file: a zip archive appended to the flatbuffer.

The TFLite flatbuffer is addressed from its start, so interpreters ignore trailing bytes (the TFLite Support
metadata writer packs associated files the same way). Any tool reads it back with Python's zipfile; nothing
else is needed on the device.
"""

from __future__ import annotations

import io
import json
import zipfile
import zlib
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
    damaged = (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, ValueError, OSError)
    try:
        zf = zipfile.ZipFile(path)
    except zipfile.BadZipFile:   # no archive appended: a TFLite model without tfpose metadata
        return None
    except damaged as e:
        raise InputError(f"its appended metadata archive is damaged ({e})", path=path) from None
    with zf:
        if METADATA_NAME not in zf.namelist():
            return None
        try:
            raw = zf.read(METADATA_NAME)
        except damaged as e:
            raise InputError(f"its {METADATA_NAME} is damaged ({e})", path=path) from None
    try:
        meta = json.loads(raw)
    except (ValueError, RecursionError) as e:
        raise InputError(f"its {METADATA_NAME} is not valid JSON ({type(e).__name__}: {str(e)[:80]})",
                         path=path) from None
    if not isinstance(meta, dict):
        raise InputError(f"its {METADATA_NAME} is not a JSON object", path=path)
    return meta


def strip(data: bytes) -> bytes:
    """The flatbuffer alone: ``data`` without an appended metadata archive."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            return data[:min(i.header_offset for i in zf.infolist())]
    except (zipfile.BadZipFile, ValueError):
        return data
