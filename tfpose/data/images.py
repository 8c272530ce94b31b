"""Reading image files (numpy + OpenCV only): a missing, truncated or undecodable file is an InputError naming it.

OpenCV decodes a JPEG cut short without complaint (the missing rows come out grey), so JPEG and PNG files are first
checked for their end: JPEG's end-of-image marker after the first scan, PNG's IEND chunk.
Shape legend: H x W image pixels.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from tfpose.errors import InputError

JPEG_START, PNG_SIGNATURE = b"\xff\xd8", b"\x89PNG\r\n\x1a\n"
# start-of-frame markers: every SOFn except DHT (C4), JPG (C8) and DAC (CC)
_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}
_SOS, _EOI = 0xDA, 0xD9


def read_rgb(path: str | Path) -> np.ndarray:
    """(H, W, 3) uint8 RGB."""
    path = Path(path)
    image = decode(read_bytes(path), path, cv2.IMREAD_COLOR)
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def image_size(path: str | Path) -> tuple[int, int]:
    """(width, height) of an image that is whole: from the JPEG header when it has one, else decoded."""
    path = Path(path)
    data = read_bytes(path)
    size = _jpeg_size(data)
    if size is None:
        image = decode(data, path, cv2.IMREAD_UNCHANGED)
        return image.shape[1], image.shape[0]
    return size


def read_bytes(path: Path) -> bytes:
    """The bytes of the image file ``path``, checked to be whole (see ``missing_end``)."""
    if not path.is_file():
        raise InputError("image not found", path=path)
    try:
        data = path.read_bytes()
    except OSError as e:
        raise InputError(f"image cannot be read ({e})", path=path) from None
    if not data:
        raise InputError("image file is empty", path=path)
    problem = missing_end(data)
    if problem:
        raise InputError(f"image cannot be decoded: truncated or corrupt ({problem})", path=path)
    return data


def decode(data: bytes, path: Path, flags: int) -> np.ndarray:
    try:
        image = cv2.imdecode(np.frombuffer(data, np.uint8), flags)
    except cv2.error as e:
        raise InputError(f"image cannot be decoded ({e.msg.strip() or e})", path=path) from None
    if image is None or image.size == 0:
        raise InputError("image cannot be decoded (corrupt or not an image)", path=path)
    return image


def missing_end(data: bytes) -> str | None:
    """What shows a JPEG or PNG file ``data`` to be cut short, or None when it is whole (or another format)."""
    if data.startswith(JPEG_START):
        return None if _jpeg_is_whole(data) else "no end-of-image marker FF D9 after the image data"
    if data.startswith(PNG_SIGNATURE):
        return None if _png_is_whole(data) else "no IEND chunk"
    return None


def _jpeg_segments(data: bytes):
    """Yield (marker, offset) of the marker segments before the first scan, the scan's own (SOS) last. Stray bytes
    between segments are skipped up to the next FF, as libjpeg does."""
    i = 2
    while i + 1 < len(data):
        if data[i] != 0xFF:
            i = data.find(b"\xff", i)
            if i < 0:
                return
            continue
        marker = data[i + 1]
        if marker == 0xFF:                              # fill byte
            i += 1
            continue
        yield marker, i
        if marker in (_SOS, _EOI):
            return
        if marker == 0x01 or 0xD0 <= marker <= 0xD8:    # markers without a length
            i += 2
            continue
        i += 2 + int.from_bytes(data[i + 2:i + 4], "big")


def _jpeg_is_whole(data: bytes) -> bool:
    # Entropy-coded data never holds FF D9 (an FF there is followed by 00 or a restart marker), so the first FF D9
    # after the start of scan ends the image; bytes after it (a newline, an appended video) do no harm. Walking the
    # segments first skips an EXIF thumbnail, which has an end marker of its own.
    for marker, offset in _jpeg_segments(data):
        if marker == _SOS:
            return data.find(b"\xff\xd9", offset + 2) >= 0
    return False


def _png_is_whole(data: bytes) -> bool:
    i = len(PNG_SIGNATURE)
    while i + 12 <= len(data):                          # length (4), type (4), payload, CRC (4)
        if data[i + 4:i + 8] == b"IEND":
            return True
        i += 12 + int.from_bytes(data[i:i + 4], "big")
    return False


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from the JPEG frame header, None for another format or a header without a valid size."""
    if not data.startswith(JPEG_START):
        return None
    for marker, offset in _jpeg_segments(data):
        if marker in _SOF:
            header = data[offset + 5:offset + 9]
            if len(header) < 4:
                return None
            height, width = int.from_bytes(header[:2], "big"), int.from_bytes(header[2:], "big")
            return (width, height) if width > 0 and height > 0 else None
    return None
