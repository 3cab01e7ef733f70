"""st.py - a tiny safetensors reader/writer on numpy (no safetensors package).

The format: 8-byte little-endian header length N, N bytes of JSON mapping each tensor
name to {dtype, shape, data_offsets [begin, end)} relative to the data section (plus
an optional "__metadata__" of strings), then the raw little-endian data. BF16 has no
numpy dtype: it travels as uint16 bit patterns (see bf16_bits / bf16_to_f32).
This module never rounds silently: f32 -> bf16 is an explicit call (round to nearest
even), and save() writes exactly the arrays it is given.
"""
import json
import struct

import numpy as np

# safetensors dtype name -> numpy dtype of the stored bits
_NP = {
    "F64": np.float64, "F32": np.float32, "F16": np.float16, "BF16": np.uint16,
    "I64": np.int64, "I32": np.int32, "I16": np.int16, "I8": np.int8,
    "U8": np.uint8, "BOOL": np.bool_,
}
_ST = {np.dtype(np.float64): "F64", np.dtype(np.float32): "F32", np.dtype(np.float16): "F16",
       np.dtype(np.int64): "I64", np.dtype(np.int32): "I32", np.dtype(np.int16): "I16",
       np.dtype(np.int8): "I8", np.dtype(np.uint8): "U8", np.dtype(np.bool_): "BOOL"}


class BF16:
    """Marks a uint16 array as BF16 bit patterns for save()."""

    def __init__(self, bits):
        assert bits.dtype == np.uint16
        self.bits = bits


def bf16_bits(a):
    """f32 array -> uint16 bf16 bit patterns, round to nearest even (finite inputs)."""
    u = np.ascontiguousarray(a, dtype=np.float32).view(np.uint32).astype(np.uint64)
    u = (u + 0x7FFF + ((u >> 16) & 1)) >> 16
    return u.astype(np.uint16)


def bf16_to_f32(bits):
    """uint16 bf16 bit patterns -> f32 array (exact)."""
    return (bits.astype(np.uint32) << 16).view(np.float32)


def bf16_round(a):
    """f32 array rounded to the nearest bf16 value, returned as f32."""
    return bf16_to_f32(bf16_bits(a))


def save(path, tensors, metadata=None):
    """Writes {name: np.ndarray | BF16} to path, in the given order, data packed
    back to back (no gaps), header padded with spaces to a multiple of 8."""
    header, blobs, off = {}, [], 0
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    for name, t in tensors.items():
        if isinstance(t, BF16):
            arr, dt = np.ascontiguousarray(t.bits), "BF16"
        else:
            arr = np.ascontiguousarray(t)
            dt = _ST[arr.dtype]
        raw = arr.astype(arr.dtype.newbyteorder("<"), copy=False).tobytes()
        header[name] = {"dtype": dt, "shape": list(arr.shape),
                        "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def load(path, as_f32=False):
    """Reads path -> (dict name -> np.ndarray, metadata dict). BF16 tensors come back
    as uint16 bits, or as f32 when as_f32 is set (F16/F64 then also become f32)."""
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    meta = header.pop("__metadata__", {}) or {}
    base = 8 + n
    out = {}
    for name, info in header.items():
        b, e = info["data_offsets"]
        arr = np.frombuffer(data[base + b:base + e], dtype=np.dtype(_NP[info["dtype"]]).newbyteorder("<"))
        arr = arr.reshape(info["shape"]).astype(_NP[info["dtype"]])
        if as_f32:
            if info["dtype"] == "BF16":
                arr = bf16_to_f32(arr)
            elif info["dtype"] in ("F16", "F64"):
                arr = arr.astype(np.float32)
        out[name] = arr
    return out, meta


def dtypes(path):
    """name -> safetensors dtype string, from the header only."""
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
    header.pop("__metadata__", None)
    return {k: v["dtype"] for k, v in header.items()}
