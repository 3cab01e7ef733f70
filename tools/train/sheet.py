"""sheet.py - PNG contact sheets (zlib + struct only; no imaging library on the box).

write_png writes an 8-bit RGB PNG; read_png reads 8-bit RGB/RGBA non-interlaced PNGs
(what the engine writes; anything else is refused); sheet() tiles rows of frames with
a 2-pixel gap, scaled up by an integer factor (nearest) so 64x64 frames are easy to see.
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


def read_png(path):
    """8-bit RGB or RGBA, non-interlaced PNG -> uint8 [h, w, 3]."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError("%s: not a PNG" % path)
    pos, idat, hdr = 8, [], None
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        if kind == b"IHDR":
            hdr = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat.append(body)
        pos += 12 + n
    w, h, depth, ctype, _, _, interlace = hdr
    if depth != 8 or ctype not in (2, 6) or interlace:
        raise ValueError("%s: only 8-bit RGB/RGBA non-interlaced PNGs are read" % path)
    bpp = 3 if ctype == 2 else 4
    raw = zlib.decompress(b"".join(idat))
    stride = w * bpp
    out = np.zeros((h, stride), np.int32)
    prev = np.zeros(stride, np.int32)
    for y in range(h):
        ft = raw[y * (stride + 1)]
        line = np.frombuffer(raw, np.uint8, stride, y * (stride + 1) + 1).astype(np.int32)
        cur = np.zeros(stride, np.int32)
        for x in range(stride):
            a = cur[x - bpp] if x >= bpp else 0
            b = prev[x]
            c = prev[x - bpp] if x >= bpp else 0
            if ft == 0:
                pr = 0
            elif ft == 1:
                pr = a
            elif ft == 2:
                pr = b
            elif ft == 3:
                pr = (a + b) // 2
            else:
                pa, pb, pc = abs(b - c), abs(a - c), abs(a + b - 2 * c)
                pr = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
            cur[x] = (line[x] + pr) & 255
        out[y] = cur
        prev = cur
    return out.reshape(h, w, bpp)[:, :, :3].astype(np.uint8)
