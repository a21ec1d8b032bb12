"""Small images for tests, made with the standard library: a solid-colour PNG, and the heads of
JPEG and WEBP files (enough for a header reader)."""

from __future__ import annotations

import struct

from dashscope_emulator.png import solid_png


def png(width: int, height: int, rgb: tuple[int, int, int] = (200, 40, 40)) -> bytes:
    """A real, decodable PNG of one colour."""
    return solid_png(width, height, rgb)


def jpeg_head(width: int, height: int) -> bytes:
    """SOI, an APP0 segment, then a baseline SOF0 naming the size."""
    app0 = b"\xff\xe0" + struct.pack(">H", 16) + b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
    sof = (
        b"\xff\xc0" + struct.pack(">HBHHB", 17, 8, height, width, 3) + b"\x01\x22\x00\x02\x11\x01\x03\x11\x01"
    )
    return b"\xff\xd8" + app0 + sof


def webp_head(width: int, height: int) -> bytes:
    """A RIFF/WEBP file with a VP8X chunk naming the canvas size."""
    vp8x = (
        b"VP8X"
        + struct.pack("<I", 10)
        + b"\x00\x00\x00\x00"
        + (width - 1).to_bytes(3, "little")
        + (height - 1).to_bytes(3, "little")
    )
    return b"RIFF" + struct.pack("<I", 4 + len(vp8x)) + b"WEBP" + vp8x
