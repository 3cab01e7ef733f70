"""sheet.py - PNG contact sheets (zlib + struct only; no imaging library on the box).

write_png writes an 8-bit RGB PNG; sheet() tiles rows of frames with a 2-pixel gap,
scaled up by an integer factor (nearest) so 64x64 frames are easy to look at.
"""
import struct
import zlib

import numpy as np


def write_png(path, img):
    """img uint8 [h, w, 3] -> an RGB PNG file."""
    h, w, _ = img.shape
    raw = b"".join(b"\x00" + img[y].tobytes() for y in range(h))

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
                + chunk(b"IDAT", zlib.compress(raw, 6)) + chunk(b"IEND", b""))


def sheet(rows, scale=2, gap=2):
    """rows: list of lists of uint8 [h, w, 3] frames (same size) -> one uint8 image."""
    h, w, _ = rows[0][0].shape
    ncol = max(len(r) for r in rows)
    out = np.full((len(rows) * (h * scale + gap), ncol * (w * scale + gap), 3), 255, np.uint8)
    for i, r in enumerate(rows):
        for j, f in enumerate(r):
            big = f.repeat(scale, 0).repeat(scale, 1)
            y, x = i * (h * scale + gap), j * (w * scale + gap)
            out[y:y + h * scale, x:x + w * scale] = big
    return out
