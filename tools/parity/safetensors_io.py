"""A minimal safetensors writer and reader on numpy arrays.

numpy has no bfloat16, so BF16 tensors travel as uint16 bit patterns. The format: an 8-byte
little-endian header length, a JSON header {name: {dtype, shape, data_offsets}, "__metadata__":
{...}} padded with spaces to a multiple of 8, then the tensors' bytes back to back.
"""

import json
import struct

import numpy as np

from .mlx_quant import bf16_to_f32

# safetensors dtype name -> numpy storage dtype (little-endian).
_STORAGE = {
    "F32": np.dtype("<f4"),
    "F16": np.dtype("<f2"),
    "BF16": np.dtype("<u2"),  # bit patterns
    "U32": np.dtype("<u4"),
    "I32": np.dtype("<i4"),
    "U8": np.dtype("u1"),
}


def save(path, tensors, metadata=None):
    """Writes `tensors`, a dict name -> (dtype name, numpy array), to `path`.

    The array must already hold the storage type (uint16 bit patterns for BF16).
    """
    header = {}
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    blobs = []
    offset = 0
    for name in sorted(tensors):
        dtype, array = tensors[name]
        if dtype not in _STORAGE:
            raise ValueError(f"{path}: tensor '{name}': unsupported dtype {dtype}")
        storage = _STORAGE[dtype]
        array = np.asarray(array)
        if array.dtype.kind != storage.kind or array.dtype.itemsize != storage.itemsize:
            raise ValueError(
                f"{path}: tensor '{name}': array of {array.dtype} cannot be stored as {dtype}"
            )
        data = np.ascontiguousarray(array.astype(storage, copy=False)).tobytes()
        header[name] = {
            "dtype": dtype,
            "shape": [int(d) for d in array.shape],
            "data_offsets": [offset, offset + len(data)],
        }
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * ((8 - len(text) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for data in blobs:
            f.write(data)


def load(path):
    """Reads a safetensors file: (dict name -> (dtype name, storage array), metadata dict)."""
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + n].decode("utf-8"))
    base = 8 + n
    metadata = header.pop("__metadata__", {}) or {}
    out = {}
    for name, info in header.items():
        dtype = info["dtype"]
        if dtype not in _STORAGE:
            raise ValueError(f"{path}: tensor '{name}': unsupported dtype {dtype}")
        begin, end = info["data_offsets"]
        array = np.frombuffer(raw[base + begin : base + end], dtype=_STORAGE[dtype])
        out[name] = (dtype, array.reshape(info["shape"]).copy())
    return out, metadata


def load_float32(path):
    """Reads a safetensors file of float tensors as a dict name -> float32 array."""
    tensors, _ = load(path)
    out = {}
    for name, (dtype, array) in tensors.items():
        if dtype == "BF16":
            out[name] = bf16_to_f32(array)
        elif dtype in ("F32", "F16"):
            out[name] = array.astype(np.float32)
        else:
            raise ValueError(f"{path}: tensor '{name}' is {dtype}, expected a float dtype")
    return out
