"""Reads a safetensors checkpoint into float32 torch tensors (F32, F16 or BF16 on disk) without the
safetensors package, which Debian's python3-torch does not bring. Shared by the Python baselines in scripts/."""

import json
import struct

import numpy as np
import torch

_DTYPES = {"F32": np.float32, "F16": np.float16}


def load_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, e in header.items():
        if name == "__metadata__":
            continue
        a, b = e["data_offsets"]
        if e["dtype"] == "BF16":
            arr = (np.frombuffer(data[a:b], dtype=np.uint16).astype(np.uint32) << 16).view(np.float32)
        elif e["dtype"] in _DTYPES:
            arr = np.frombuffer(data[a:b], dtype=_DTYPES[e["dtype"]]).astype(np.float32)
        else:
            raise ValueError(f"{name}: unsupported dtype {e['dtype']}")
        out[name] = torch.from_numpy(arr.reshape(e["shape"]).copy())
    return out
