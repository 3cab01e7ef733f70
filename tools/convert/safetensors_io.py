"""Write .safetensors files with the standard library and numpy only.

Layout: 8-byte little-endian header length, a JSON header (padded with spaces to a
multiple of 8) naming each tensor's dtype, shape and data offsets, then the raw data
in header order. Written to PATH.tmp, fsynced, then renamed, so a crash never leaves
a half-written file under the final name.
"""

import json
import os
import struct


def write(path, tensors, metadata=None):
    """tensors: iterable of (name, dtype_name, shape, raw_bytes)."""
    header = {}
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    offset = 0
    blobs = []
    for name, dtype, shape, raw in tensors:
        header[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [offset, offset + len(raw)]}
        offset += len(raw)
        blobs.append(raw)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for raw in blobs:
            f.write(raw)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
