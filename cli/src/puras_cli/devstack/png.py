"""A small PNG made with the standard library alone (zlib + struct), for the demo."""

from __future__ import annotations

import base64
import struct
import zlib

__all__ = ["gradient_png", "png_data_url"]

_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _chunk(tag: bytes, data: bytes) -> bytes:
    crc = zlib.crc32(tag + data) & 0xFFFFFFFF
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", crc)


def gradient_png(width: int = 64, height: int = 48) -> bytes:
    """An 8-bit RGB image: red grows left to right, green top to bottom, blue constant."""
    if not (1 <= width <= 4096 and 1 <= height <= 4096):
        raise ValueError("width and height must be between 1 and 4096")
    rows = bytearray()
    for y in range(height):
        rows.append(0)  # filter type 0 (None) for every scanline
        g = y * 255 // max(1, height - 1)
        for x in range(width):
            rows += bytes((x * 255 // max(1, width - 1), g, 160))
    # IHDR: width, height, bit depth 8, colour type 2 (RGB), deflate, adaptive, no interlace.
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        _SIGNATURE
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(bytes(rows), 9))
        + _chunk(b"IEND", b"")
    )


def png_data_url(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")
