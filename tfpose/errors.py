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


class WriteError(TfposeError, OSError):
    """An artifact could not be written (a full disk, a read-only folder); it names the file. Still an OSError."""

    def __init__(self, path: object, cause: OSError):
        super().__init__(cause.errno, cause.strerror or str(cause), str(path))

    def __str__(self) -> str:
        return f"{self.filename}: cannot be written ({self.strerror})"


def error_line(e: BaseException) -> str:
    """The one line a command prints for an error the user can fix, a file it could not read or write included."""
    if isinstance(e, OSError) and not isinstance(e, TfposeError) and e.filename is not None:
        return f"error: {e.filename}: {e.strerror or e}"
    return f"error: {e}"


def load_json(path, missing: str = "file not found"):
    """The parsed contents of the JSON file ``path``; a missing file (``missing`` says what it is), an unreadable
    one or one that is not JSON is an InputError that names it."""
    import json
    from pathlib import Path

    path = Path(path)
    if not path.is_file():
        raise InputError(missing, path=path)
    try:
        return json.loads(path.read_text())
    # ValueError: bad syntax or encoding, an integer of more than 4300 digits; RecursionError: deep nesting
    except (ValueError, RecursionError) as e:
        raise InputError(f"not valid JSON ({type(e).__name__}: {str(e)[:80]})", path=path) from None
    except OSError as e:
        raise InputError(f"cannot be read ({e.strerror or e})", path=path) from None
