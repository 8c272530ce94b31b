"""Errors that name the file and the field a user has to fix."""

from __future__ import annotations


class TfposeError(Exception):
    """A user-facing error: the CLI prints it without a traceback and exits non-zero."""


class TrainingDiverged(TfposeError):
    """Training met a non-finite loss or left non-finite weights: nothing it made may be saved or used."""


class InputError(TfposeError):
    """Bad input: a missing or corrupt file, a malformed field, an unknown config key."""

    def __init__(self, message: str, *, path: object = None, field: str | None = None):
        where = []
        if path is not None:
            where.append(str(path))
        if field:
            where.append(f"field '{field}'")
        super().__init__(f"{': '.join(where)}: {message}" if where else message)
        self.path = path
        self.field = field


def load_json(path, missing: str = "file not found"):
    """The parsed contents of the JSON file ``path``; a missing file (``missing`` says what it is) or one that is
    not JSON is an InputError that names it."""
    import json
    from pathlib import Path

    path = Path(path)
    if not path.is_file():
        raise InputError(missing, path=path)
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise InputError(f"not valid JSON ({e})", path=path) from None
