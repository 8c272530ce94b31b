"""Errors that name the file and the field a user has to fix."""

from __future__ import annotations


class TfposeError(Exception):
    """A user-facing error: the CLI prints it without a traceback and exits non-zero."""


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
