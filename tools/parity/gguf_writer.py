"""A small GGUF v3 writer and the GGML block formats the fixtures use (F32, F16, Q8_0, Q4_0),
in numpy, with the matching dequantizers.

File layout (all little-endian): "GGUF", u32 version 3, u64 tensor count, u64 key/value count,
the key/values (string key, u32 value type, value), the tensor infos (string name, u32 n_dims,
u64 dims in GGML order -- ne[0] is the innermost, i.e. the input features of a weight -- u32
GGML type, u64 offset from the start of the data section), padding to the alignment (32), then
the tensor data, each tensor starting at a multiple of the alignment.
"""

import struct

import numpy as np

ALIGNMENT = 32

# GGUF metadata value types.
(
    UINT8,
    INT8,
    UINT16,
    INT16,
    UINT32,
    INT32,
    FLOAT32,
    BOOL,
    STRING,
    ARRAY,
    UINT64,
    INT64,
    FLOAT64,
) = range(13)

_SCALAR_FORMATS = {
    UINT8: "<B",
    INT8: "<b",
    UINT16: "<H",
    INT16: "<h",
    UINT32: "<I",
    INT32: "<i",
    FLOAT32: "<f",
    BOOL: "<?",
    UINT64: "<Q",
    INT64: "<q",
    FLOAT64: "<d",
}

# GGML tensor types.
GGML_F32, GGML_F16, GGML_Q4_0, GGML_Q8_0 = 0, 1, 2, 8
GGML_TYPE_NAMES = {GGML_F32: "F32", GGML_F16: "F16", GGML_Q4_0: "Q4_0", GGML_Q8_0: "Q8_0"}
QK = 32  # elements per Q4_0 / Q8_0 block

# llama.cpp's general.file_type values.
FILE_TYPE = {GGML_F32: 0, GGML_F16: 1, GGML_Q4_0: 2, GGML_Q8_0: 7}


def _string(s):
    data = s.encode("utf-8")
    return struct.pack("<Q", len(data)) + data


def _value(vtype, value):
    if vtype == STRING:
        return _string(value)
    if vtype == ARRAY:
        etype, items = value
        out = struct.pack("<IQ", etype, len(items))
        if etype == STRING:
            return out + b"".join(_string(s) for s in items)
        if etype == ARRAY:
            raise ValueError("nested GGUF arrays are not used here")
        return out + b"".join(struct.pack(_SCALAR_FORMATS[etype], v) for v in items)
    return struct.pack(_SCALAR_FORMATS[vtype], value)


class GgufWriter:
    """Collects key/values and tensors, then writes one GGUF v3 file."""

    def __init__(self):
        self._kvs = []  # (key, type, value), in insertion order
        self._tensors = []  # (name, ne, ggml type, bytes)

    def add(self, key, vtype, value):
        if any(k == key for k, _, _ in self._kvs):
            raise ValueError(f"duplicate GGUF key '{key}'")
        self._kvs.append((key, vtype, value))

    def add_string(self, key, value):
        self.add(key, STRING, value)

    def add_u32(self, key, value):
        self.add(key, UINT32, int(value))

    def add_f32(self, key, value):
        self.add(key, FLOAT32, float(value))

    def add_array(self, key, etype, items):
        self.add(key, ARRAY, (etype, list(items)))

    def add_tensor(self, name, array, ggml_type):
        """Adds a float32 tensor in numpy (row-major) order, encoded as `ggml_type`."""
        if any(n == name for n, _, _, _ in self._tensors):
            raise ValueError(f"duplicate GGUF tensor '{name}'")
        array = np.asarray(array, dtype=np.float32)
        data = encode(array, ggml_type, name)
        ne = [int(d) for d in reversed(array.shape)]  # GGML order: innermost first
        self._tensors.append((name, ne, ggml_type, data))

    def tensor_names(self):
        return [t[0] for t in self._tensors]

    def write(self, path):
        out = bytearray()
        out += b"GGUF"
        out += struct.pack("<IQQ", 3, len(self._tensors), len(self._kvs))
        for key, vtype, value in self._kvs:
            out += _string(key) + struct.pack("<I", vtype) + _value(vtype, value)
        offset = 0
        offsets = []
        for name, ne, ggml_type, data in self._tensors:
            offsets.append(offset)
            out += _string(name) + struct.pack("<I", len(ne))
            out += b"".join(struct.pack("<Q", d) for d in ne)
            out += struct.pack("<IQ", ggml_type, offset)
            offset += len(data)
            offset += (ALIGNMENT - offset % ALIGNMENT) % ALIGNMENT
        out += b"\0" * ((ALIGNMENT - len(out) % ALIGNMENT) % ALIGNMENT)
        data_start = len(out)
        for (name, ne, ggml_type, data), off in zip(self._tensors, offsets):
            out += b"\0" * (data_start + off - len(out))
            out += data
        with open(path, "wb") as f:
            f.write(bytes(out))
        return len(out)


# ---------------------------------------------------------------------------------------------
# Block formats (ggml's reference quantizers, quantize_row_*_ref)


def _blocks(x, name):
    x = np.asarray(x, dtype=np.float32)
    if x.shape[-1] % QK != 0:
        raise ValueError(f"{name}: row length {x.shape[-1]} is not a multiple of {QK}")
    return x.reshape(-1, QK)


def _round_half_away(v):
    """C's roundf on float32 values: nearest, ties away from zero (exact)."""
    t = np.trunc(v)
    frac = v - t  # exact for |v| < 2**23
    return np.where(np.abs(frac) >= np.float32(0.5), t + np.sign(v), t)


def quantize_q8_0(x, name="tensor"):
    """Q8_0: per block of 32, d = max|x| / 127 (stored f16), q = round(x / d) as int8."""
    b = _blocks(x, name)
    amax = np.abs(b).max(axis=1)
    d = (amax / np.float32(127)).astype(np.float32)
    inv = np.where(d != 0, np.float32(1) / np.where(d != 0, d, np.float32(1)), np.float32(0))
    q = _round_half_away((b * inv.astype(np.float32)[:, None]).astype(np.float32))
    out = np.empty((b.shape[0], 34), dtype=np.uint8)
    out[:, 0:2] = d.astype("<f2").view(np.uint8).reshape(-1, 2)
    out[:, 2:] = q.astype(np.int8).view(np.uint8)
    return out.tobytes()


def quantize_q4_0(x, name="tensor"):
    """Q4_0: per block of 32, d = (the signed value of largest magnitude, first one on ties) / -8
    stored f16, q = min(15, trunc(x / d + 8.5)); byte j holds element j in its low nibble and
    element j + 16 in its high nibble."""
    b = _blocks(x, name)
    idx = np.argmax(np.abs(b), axis=1)  # first maximum, as ggml's strict '<' scan keeps
    vmax = b[np.arange(b.shape[0]), idx]
    d = (vmax / np.float32(-8)).astype(np.float32)
    inv = np.where(d != 0, np.float32(1) / np.where(d != 0, d, np.float32(1)), np.float32(0))
    v = (b * inv.astype(np.float32)[:, None]).astype(np.float32) + np.float32(8.5)
    q = np.clip(np.trunc(v), 0, 15).astype(np.uint8)
    out = np.empty((b.shape[0], 18), dtype=np.uint8)
    out[:, 0:2] = d.astype("<f2").view(np.uint8).reshape(-1, 2)
    out[:, 2:] = q[:, :16] | (q[:, 16:] << np.uint8(4))
    return out.tobytes()


def encode(x, ggml_type, name="tensor"):
    x = np.asarray(x, dtype=np.float32)
    if ggml_type == GGML_F32:
        return np.ascontiguousarray(x.astype("<f4")).tobytes()
    if ggml_type == GGML_F16:
        return np.ascontiguousarray(x.astype("<f2")).tobytes()
    if ggml_type == GGML_Q8_0:
        return quantize_q8_0(x, name)
    if ggml_type == GGML_Q4_0:
        return quantize_q4_0(x, name)
    raise ValueError(f"{name}: unsupported GGML type {ggml_type}")


def decode(data, ggml_type, shape):
    """Dequantizes `data` (bytes of one tensor) to float32 of numpy `shape`, as ggml does."""
    n = int(np.prod(shape))
    raw = np.frombuffer(data, dtype=np.uint8)
    if ggml_type == GGML_F32:
        return raw.view("<f4")[:n].astype(np.float32).reshape(shape)
    if ggml_type == GGML_F16:
        return raw.view("<f2")[:n].astype(np.float32).reshape(shape)
    if ggml_type == GGML_Q8_0:
        blocks = raw[: n // QK * 34].reshape(-1, 34)
        d = blocks[:, 0:2].copy().view("<f2").astype(np.float32)
        q = blocks[:, 2:].view(np.int8).astype(np.float32)
        return (q * d).astype(np.float32).reshape(shape)
    if ggml_type == GGML_Q4_0:
        blocks = raw[: n // QK * 18].reshape(-1, 18)
        d = blocks[:, 0:2].copy().view("<f2").astype(np.float32)
        qs = blocks[:, 2:]
        q = np.concatenate([qs & 0x0F, qs >> 4], axis=1).astype(np.float32) - np.float32(8)
        return (q * d).astype(np.float32).reshape(shape)
    raise ValueError(f"unsupported GGML type {ggml_type}")


def roundtrip(x, ggml_type, name="tensor"):
    """What a reader gets back from `x` stored as `ggml_type` (float32, same shape)."""
    x = np.asarray(x, dtype=np.float32)
    return decode(encode(x, ggml_type, name), ggml_type, x.shape)
