"""MATLAB v5 files read safely (numpy, scipy): every failure, a corrupt file included, is an InputError naming the
file and the variable. Used by the LSP family (tfpose.data.lsp) and Penn Action (tfpose.data.video).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tfpose.errors import InputError, TfposeError


def load_mat(path: Path, variable: str) -> np.ndarray:
    """``variable`` from the MATLAB file ``path`` as a float64 array; every failure is an InputError naming both."""
    return read_mat(path, (variable,))[variable]


def read_mat(path: Path, required: tuple[str, ...], optional: tuple[str, ...] = ()) -> dict[str, np.ndarray]:
    """The numeric variables ``required`` (and those of ``optional`` the file holds) as float64 arrays."""
    try:
        import scipy.io
    except ImportError:
        raise TfposeError("reading .mat files needs scipy: pip install 'tfpose[train]'") from None
    path = Path(path)
    if not path.is_file():
        raise InputError("annotation file not found", path=path)
    try:
        names = check_mat5(path.read_bytes())
    except OSError as e:
        raise InputError(f"cannot be read ({e})", path=path) from None
    except ValueError as e:
        raise InputError(f"not a readable MATLAB v5 file ({e})", path=path) from None
    # scipy silently keeps one of two variables of the same name: which one was meant is anyone's guess
    for name in {n for n in names if names.count(n) > 1}:
        if name.decode("latin-1") in (*required, *optional):
            raise InputError("the file holds two variables of this name", path=path, field=name.decode("latin-1"))
    try:
        contents = scipy.io.loadmat(str(path), variable_names=[*required, *optional])
    # scipy reports a corrupt or truncated file as ValueError, TypeError, OSError, EOFError, IndexError, KeyError,
    # struct.error, UnicodeDecodeError, zlib.error or MemoryError depending on where the bytes stop making sense
    except Exception as e:  # noqa: BLE001
        raise InputError(f"not a readable MATLAB file ({type(e).__name__}: {e})", path=path) from None
    out = {}
    for variable in (*required, *optional):
        if variable not in contents:
            if variable in optional:
                continue
            names = [k for k in _variables(path) if not k.startswith("__")]
            raise InputError(f"missing; the file holds {names or 'no variables'}", path=path, field=variable)
        value = contents[variable]
        if not isinstance(value, np.ndarray) or value.dtype.kind not in "biuf":
            kind = value.dtype if isinstance(value, np.ndarray) else type(value).__name__
            raise InputError(f"expected a numeric array, got {kind}", path=path, field=variable)
        out[variable] = value.astype(np.float64)
    return out


# MAT v5 data types and their item sizes (0: containers); any other type code is corrupt
_MI_SIZES = {1: 1, 2: 1, 3: 2, 4: 2, 5: 4, 6: 4, 7: 4, 9: 8, 12: 8, 13: 8, 14: 0, 15: 0, 16: 1, 17: 2, 18: 4}
_MI_MATRIX, _MI_COMPRESSED = 14, 15
_NUMERIC_CLASSES = range(6, 16)     # mxDOUBLE .. mxUINT64


def check_mat5(data: bytes) -> list[bytes]:
    """The names of the variables of the MATLAB v5 file ``data``, in file order; ValueError unless every element has
    a known type and fits in its parent.

    scipy's C reader trusts the tags: a corrupt type code or byte count in an otherwise valid file can crash the
    interpreter (a segmentation fault, found by tests/test_lsp.py's fuzz test) instead of raising, so the tags are
    walked here first; what this check lets through, scipy reports as exceptions.
    """
    import struct
    import zlib

    if len(data) < 128:
        raise ValueError(f"{len(data)} bytes, shorter than the 128-byte MATLAB header")
    if data[:10] == b"MATLAB 7.3":
        raise ValueError("MATLAB v7.3 (HDF5) is not supported: save with -v7 or -v6")
    order = {b"IM": "<", b"MI": ">"}.get(data[126:128])
    if order is None:
        raise ValueError("no MATLAB v5 endian indicator at bytes 126-127")

    def elements(buf: bytes, start: int, end: int, top: bool):
        """Yield (type, payload start, payload end) of the tagged elements tiling buf[start:end]."""
        pos = start
        while pos < end:
            if end - pos < 8:
                raise ValueError(f"{end - pos} stray bytes at offset {pos}")
            word, nbytes = struct.unpack_from(order + "II", buf, pos)
            if word >> 16 and not top:                         # small data element: 4-byte payload in the tag
                mtype, nbytes, payload, step = word & 0xFFFF, word >> 16, pos + 4, 8
                if nbytes > 4:
                    raise ValueError(f"small element of {nbytes} bytes at offset {pos}")
            else:
                mtype, payload = word, pos + 8
                step = 8 + (nbytes if mtype == _MI_COMPRESSED else (nbytes + 7) // 8 * 8)
            if mtype not in _MI_SIZES:
                raise ValueError(f"unknown data type {mtype} at offset {pos}")
            if payload + nbytes > end:
                raise ValueError(f"element at offset {pos} claims {nbytes} bytes, {end - payload} remain")
            if _MI_SIZES[mtype] and nbytes % _MI_SIZES[mtype]:
                raise ValueError(f"element at offset {pos}: {nbytes} bytes is not a whole number of items")
            yield mtype, payload, payload + nbytes
            pos = min(pos + step, end) if top else pos + step

    def matrix(buf: bytes, start: int, end: int) -> bytes | None:
        """The array's name, after checking its elements."""
        subs = list(elements(buf, start, end, top=False))
        if not subs:
            return None                                        # an empty matrix
        if len(subs) < 3 or subs[0][2] - subs[0][1] < 8 or subs[1][0] not in (5, 6):
            raise ValueError(f"matrix at offset {start} lacks array flags, dimensions or name")
        mclass = struct.unpack_from(order + "I", buf, subs[0][1])[0] & 0xFF
        if not 1 <= mclass <= 17:
            raise ValueError(f"unknown array class {mclass} at offset {start}")
        if mclass in _NUMERIC_CLASSES:
            dt, d0, d1 = subs[1]
            dims = struct.unpack_from(f"{order}{(d1 - d0) // 4}i", buf, d0)
            if any(d < 0 for d in dims):
                raise ValueError(f"negative dimensions {dims} at offset {start}")
            count = 1
            for d in dims:
                count *= d
            for mtype, p0, p1 in subs[3:5]:
                if mtype == _MI_MATRIX or not _MI_SIZES[mtype] or (p1 - p0) // _MI_SIZES[mtype] != count:
                    raise ValueError(f"array at offset {start}: data does not hold the {dims} its dimensions say")
            if len(subs) < 4 and count:
                raise ValueError(f"array at offset {start} has dimensions {dims} but no data")
        for mtype, p0, p1 in subs[3:]:
            if mtype == _MI_MATRIX:
                matrix(buf, p0, p1)                            # cells and struct fields
        return buf[subs[2][1]:subs[2][2]]

    names = []
    for mtype, p0, p1 in elements(data, 128, len(data), top=True):
        if mtype == _MI_COMPRESSED:
            try:
                inner = zlib.decompress(data[p0:p1])
            except zlib.error as e:
                raise ValueError(f"compressed element at offset {p0 - 8}: {e}") from None
            for itype, i0, i1 in elements(inner, 0, len(inner), top=True):
                if itype == _MI_MATRIX:
                    names.append(matrix(inner, i0, i1))
        elif mtype == _MI_MATRIX:
            names.append(matrix(data, p0, p1))
    return [n for n in names if n is not None]


def _variables(path: Path) -> list[str]:
    import scipy.io
    try:
        return [name for name, _, _ in scipy.io.whosmat(str(path))]
    except Exception:  # noqa: BLE001  (the file already loaded once; this only improves the message)
        return []
