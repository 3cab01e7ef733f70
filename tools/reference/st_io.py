"""st_io.py - read and write .safetensors files with numpy/torch only (no safetensors package).

A file is an 8-byte little-endian header length N, N bytes of JSON
({name: {dtype, shape, data_offsets}, "__metadata__": {str: str}}), then the data.
Tensors come back as f32 torch tensors (BF16/F16/F64 widened), or as numpy arrays.
It never writes anything but the file it is asked to write.
"""
import json
import struct

import numpy as np
import torch

_NP = {"F32": np.float32, "F64": np.float64, "F16": np.float16, "I64": np.int64,
       "I32": np.int32, "U8": np.uint8}


def read(path, as_f32=True):
    """Returns (tensors, metadata): tensors maps name -> torch tensor (f32 when as_f32)."""
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n].decode("utf-8"))
    data = raw[8 + n:]
    meta = header.pop("__metadata__", {}) or {}
    out = {}
    for name, info in header.items():
        b, e = info["data_offsets"]
        shape = tuple(info["shape"])
        dt = info["dtype"]
        if dt == "BF16":
            u16 = np.frombuffer(data[b:e], dtype=np.uint16).astype(np.uint32) << 16
            arr = u16.view(np.float32).reshape(shape)
        else:
            arr = np.frombuffer(data[b:e], dtype=_NP[dt]).reshape(shape)
        t = torch.from_numpy(arr.copy())
        out[name] = t.float() if as_f32 and t.is_floating_point() else t
    return out, meta


def to_bf16_bits(t):
    """f32 tensor -> uint16 numpy array of bf16 bits (round to nearest even)."""
    u = t.detach().float().contiguous().numpy().view(np.uint32).astype(np.uint64)
    u = (u + 0x7FFF + ((u >> 16) & 1)) >> 16
    return u.astype(np.uint16)


def round_bf16(t):
    """Rounds an f32 tensor to the nearest bf16 value (kept as f32)."""
    bits = to_bf16_bits(t).astype(np.uint32) << 16
    return torch.from_numpy(bits.view(np.float32).reshape(tuple(t.shape)).copy())


def write(path, tensors, metadata=None, bf16=()):
    """Writes tensors (name -> torch tensor or numpy array). Names in bf16 are stored as BF16."""
    header = {}
    blobs = []
    off = 0
    for name in sorted(tensors):
        t = tensors[name]
        if name in bf16:
            buf = to_bf16_bits(t).tobytes()
            dt = "BF16"
            shape = list(t.shape)
        else:
            a = t.detach().contiguous().numpy() if isinstance(t, torch.Tensor) else np.ascontiguousarray(t)
            dt = {np.dtype(v): k for k, v in _NP.items()}[a.dtype]
            buf = a.tobytes()
            shape = list(a.shape)
        header[name] = {"dtype": dt, "shape": shape, "data_offsets": [off, off + len(buf)]}
        blobs.append(buf)
        off += len(buf)
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    h = json.dumps(header, separators=(",", ":")).encode("utf-8")
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)
