"""Read PyTorch .pth checkpoints without torch: a zip of a pickle plus raw storages.

torch.save (the zip format used since PyTorch 1.6) writes `<root>/data.pkl`, one file
per storage under `<root>/data/<key>`, and on newer versions `<root>/byteorder`. The
pickle rebuilds tensors through `torch._utils._rebuild_tensor_v2(storage, offset,
size, stride, ...)`, with storages named by persistent ids ("storage", type, key,
location, numel). This module unpickles with an allow-list that accepts only those
rebuild calls, storage types and OrderedDict: a checkpoint cannot run code here.
Only the Python standard library and numpy are used.
"""

import collections
import pickle
import sys
import zipfile

import numpy as np

# storage class name -> (numpy dtype of the raw bytes, safetensors dtype name)
STORAGE_TYPES = {
    "FloatStorage": ("<f4", "F32"),
    "DoubleStorage": ("<f8", "F64"),
    "HalfStorage": ("<f2", "F16"),
    "BFloat16Storage": ("<u2", "BF16"),  # numpy has no bfloat16: keep the raw bits
    "LongStorage": ("<i8", "I64"),
    "IntStorage": ("<i4", "I32"),
    "ShortStorage": ("<i2", "I16"),
    "CharStorage": ("i1", "I8"),
    "ByteStorage": ("u1", "U8"),
    "BoolStorage": ("u1", "BOOL"),
}


class PthError(Exception):
    """A checkpoint that cannot be read; the message says why and what to do."""


class StorageType:
    def __init__(self, name):
        self.name = name


class Tensor:
    """A tensor read from a checkpoint: numpy array of raw elements plus its dtype name."""

    def __init__(self, array, dtype):
        self.array = array
        self.dtype = dtype


def _rebuild_tensor(storage, offset, size, stride, *_rest):
    raw, dtype = storage
    size = tuple(int(s) for s in size)
    stride = tuple(int(s) for s in stride)
    count = 1
    for s in size:
        count *= s
    if count == 0:
        return Tensor(np.zeros(size, dtype=raw.dtype), dtype)
    last = offset + sum((s - 1) * st for s, st in zip(size, stride))
    if offset < 0 or last >= raw.size or any(st < 0 for st in stride):
        raise PthError("a tensor points outside its storage: the checkpoint is corrupt")
    view = np.lib.stride_tricks.as_strided(
        raw[offset:], shape=size, strides=tuple(st * raw.itemsize for st in stride)
    )
    return Tensor(np.ascontiguousarray(view), dtype)


def _rebuild_parameter(data, _requires_grad, _hooks, *_rest):
    return data


class _Unpickler(pickle.Unpickler):
    ALLOWED = {
        ("collections", "OrderedDict"): collections.OrderedDict,
        ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
        ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
        ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    }

    def __init__(self, fileobj, zf, root):
        super().__init__(fileobj)
        self.zf = zf
        self.root = root
        self.storages = {}

    def find_class(self, module, name):
        if (module, name) in self.ALLOWED:
            return self.ALLOWED[(module, name)]
        if module == "torch" and name in STORAGE_TYPES:
            return StorageType(name)
        raise PthError(
            f"the checkpoint asks to run {module}.{name}; only tensors and dicts are "
            "accepted (is this a full pickled model rather than a state dict?)"
        )

    def persistent_load(self, pid):
        if not isinstance(pid, tuple) or len(pid) < 5 or pid[0] != "storage":
            raise PthError(f"unknown persistent id {pid!r} in the checkpoint")
        stype, key = pid[1], str(pid[2])
        if not isinstance(stype, StorageType):
            raise PthError(f"unsupported storage type {stype!r}")
        if key not in self.storages:
            npdtype, dtype = STORAGE_TYPES[stype.name]
            try:
                data = self.zf.read(f"{self.root}/data/{key}")
            except KeyError:
                raise PthError(f"storage {key} is missing from the checkpoint archive")
            item = np.dtype(npdtype).itemsize
            if len(data) % item:
                raise PthError(f"storage {key} has {len(data)} bytes, not a multiple of {item}")
            self.storages[key] = (np.frombuffer(data, dtype=npdtype), dtype)
        return self.storages[key]


def load(path):
    """Returns {name: Tensor} from a .pth state dict (nested 'state_dict'/'model' keys
    are unwrapped). Raises PthError with a message a user can act on."""
    if not zipfile.is_zipfile(path):
        raise PthError(
            f"{path} is not a zip-format PyTorch checkpoint (saved by torch >= 1.6); "
            "re-save it with torch.save(torch.load(f), g) on a machine with torch"
        )
    with zipfile.ZipFile(path) as zf:
        pkls = [n for n in zf.namelist() if n.endswith("/data.pkl")]
        if len(pkls) != 1:
            raise PthError(f"{path}: expected one data.pkl in the archive, found {len(pkls)}")
        root = pkls[0][: -len("/data.pkl")]
        if f"{root}/byteorder" in zf.namelist():
            if zf.read(f"{root}/byteorder").strip() != b"little":
                raise PthError(f"{path}: big-endian checkpoints are not supported")
        with zf.open(pkls[0]) as f:
            try:
                obj = _Unpickler(f, zf, root).load()
            except PthError:
                raise
            except Exception as e:  # malformed pickle
                raise PthError(f"{path}: cannot unpickle: {e}")
    for key in ("state_dict", "model", "module"):
        if isinstance(obj, dict) and key in obj and isinstance(obj[key], dict):
            obj = obj[key]
    if not isinstance(obj, dict):
        raise PthError(f"{path}: the checkpoint holds a {type(obj).__name__}, not a state dict")
    out = collections.OrderedDict()
    for name, value in obj.items():
        if isinstance(value, Tensor):
            out[str(name)] = value
    if not out:
        raise PthError(f"{path}: no tensors found")
    return out


if __name__ == "__main__":
    for n, t in load(sys.argv[1]).items():
        print(n, t.dtype, list(t.array.shape))
