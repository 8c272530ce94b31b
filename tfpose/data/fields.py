"""Checked reads of parsed JSON fields for the readers: a wrong type, a non-finite or out-of-range number, or a
duplicate id is an InputError naming the file and the field, never a TypeError, ValueError or OverflowError from
deep inside numpy. Python's json module reads ``NaN``, ``Infinity`` and ``1e999`` as floats, so finiteness is
checked here, not assumed.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from tfpose.errors import InputError, load_json

ID_LIMIT = 2**63   # ids travel as int64 (numpy, pycocotools)
_NUMBER_TYPES = (int, float)


read_json = load_json   # the readers' name for it: every failure to read or decode is an InputError


def is_number(value) -> bool:
    return isinstance(value, _NUMBER_TYPES) and not isinstance(value, bool)


def shown(value, limit: int = 40) -> str:
    """``value`` for an error message, cut to ``limit`` characters."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def number(value, path: Path, field: str, minimum: float | None = None, above: bool = False) -> float:
    """A finite number; ``minimum``: the smallest allowed (``above``: the value must exceed it)."""
    if not is_number(value):
        raise InputError(f"expected a number, got {shown(value)}", path=path, field=field)
    try:
        x = float(value)
    except OverflowError:
        raise InputError(f"too large ({shown(value)})", path=path, field=field) from None
    if not math.isfinite(x):
        raise InputError(f"not finite ({x})", path=path, field=field)
    if minimum is not None and (x <= minimum if above else x < minimum):
        raise InputError(f"must be {'>' if above else '>='} {minimum:g}, got {x:g}", path=path, field=field)
    return x


def numbers(value, count: int, path: Path, field: str, dtype=np.float64, layout: str | None = None) -> np.ndarray:
    """(count,) ``dtype`` array of a JSON list of ``count`` numbers, each finite in ``dtype`` (1e39 is not a
    float32); ``layout`` names the list in errors, e.g. "[x, y, w, h]"."""
    if not isinstance(value, list) or len(value) != count:
        if layout:
            raise InputError(f"expected {layout}, got {shown(value)}", path=path, field=field)
        got = len(value) if isinstance(value, list) else shown(value)
        raise InputError(f"expected {count} numbers, got {got}", path=path, field=field)
    for j, v in enumerate(value):
        if not is_number(v):
            raise InputError(f"expected {layout or 'numbers'}, got {shown(v)} at position {j}", path=path,
                             field=field)
    try:
        wide = np.array(value, np.float64)
    except OverflowError:   # an integer beyond float64
        j = next((j for j, v in enumerate(value) if isinstance(v, int) and abs(v) > 1e308), 0)
        raise InputError(f"too large ({shown(value[j])} at position {j})", path=path, field=field) from None
    with np.errstate(over="ignore"):
        array = wide.astype(dtype)
    bad = np.flatnonzero(~np.isfinite(array))
    if bad.size:
        j = int(bad[0])
        what = "not finite" if not math.isfinite(wide[j]) else f"out of {np.dtype(dtype).name} range"
        raise InputError(f"{what} ({shown(value[j])} at position {j})", path=path, field=field)
    return array


def integer(value, path: Path, field: str, minimum: int = 0) -> int:
    """An integer (12, or 12.0) in [minimum, 2**63), e.g. an id or a count."""
    if isinstance(value, float) and value.is_integer():   # False for inf and NaN
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool):
        raise InputError(f"expected an integer, got {shown(value)}", path=path, field=field)
    if not minimum <= value < ID_LIMIT:
        raise InputError(f"must lie in [{minimum}, 2**63), got {shown(value)}", path=path, field=field)
    return value


def flag(value, path: Path, field: str) -> bool:
    """A yes/no field given as true/false or 0/1."""
    if value not in (0, 1) or not (isinstance(value, bool) or is_number(value)):
        raise InputError(f"expected 0 or 1, got {shown(value)}", path=path, field=field)
    return bool(value)


def text(value, path: Path, field: str) -> str:
    """A non-empty string."""
    if not isinstance(value, str) or not value:
        raise InputError(f"expected a non-empty string, got {shown(value)}", path=path, field=field)
    return value


class UniqueIds:
    """Ids already seen in one list, so a second record with the same id is an error naming both places."""

    def __init__(self, path: Path, kind: str):
        self.path, self.kind, self.seen = path, kind, {}

    def add(self, value: int, field: str) -> int:
        if value in self.seen:
            raise InputError(f"duplicate {self.kind} {value} (first at {self.seen[value]})", path=self.path,
                             field=field)
        self.seen[value] = field
        return value
