"""The smallest PNG writer that serves the sandbox: an 8-bit RGB image from rows of pixels, with zlib and
struct only (no imaging library for a few dozen pixels)."""

from __future__ import annotations

import struct
import zlib
from collections.abc import Sequence

SIGNATURE = b"\x89PNG\r\n\x1a\n"
Colour = tuple[int, int, int]


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def encode(rows: Sequence[Sequence[Colour]]) -> bytes:
    """A PNG of `rows` (each a row of (r, g, b), all of one width)."""
    height, width = len(rows), len(rows[0])
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8 bits, truecolour, no interlace
    raw = b"".join(b"\x00" + bytes(c for pixel in row for c in pixel) for row in rows)  # filter 0 per row
    return SIGNATURE + _chunk(b"IHDR", header) + _chunk(b"IDAT", zlib.compress(raw, 9)) + _chunk(b"IEND", b"")


def gradient(width: int, height: int, top: Colour, bottom: Colour) -> bytes:
    """A vertical gradient from `top` to `bottom`: a picture, if not much of one."""
    rows = []
    for y in range(height):
        t = y / max(1, height - 1)
        colour = tuple(round(a + (b - a) * t) for a, b in zip(top, bottom, strict=True))
        rows.append([colour] * width)
    return encode(rows)  # type: ignore[arg-type]


def size_of(data: bytes) -> tuple[int, int] | None:
    """A PNG's (width, height) from its header; None when `data` is not a PNG."""
    if not data.startswith(SIGNATURE) or data[12:16] != b"IHDR":
        return None
    width, height = struct.unpack(">II", data[16:24])
    return width, height
