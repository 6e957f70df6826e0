"""Minimal reader/writer for the safetensors format (no safetensors package).

File layout:
    u64 little-endian N  | N bytes of UTF-8 JSON header | data section

The header maps each tensor name to
    {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}
(offsets relative to the start of the data section) and may hold a
"__metadata__" object of string -> string.  Tensors tile the data section
exactly, back to back, as C-order little-endian raw bytes.

The writer mirrors the reference implementation (safetensors' Rust core):
tensors are ordered by dtype (widest first) then name, the JSON is compact,
"__metadata__" comes first, and the header is padded with spaces to a
multiple of 8 bytes.  Output is deterministic for a given input.

Supported dtypes: F64, F32, F16, BF16, I64, I32, U8, BOOL.  numpy has no
bfloat16: pass a torch.bfloat16 tensor to write BF16 (raw bf16 bits are
stored); load_file returns BF16 tensors widened exactly to float32.
"""

import json
import struct

import numpy as np

__all__ = ["save_file", "load_file", "DTYPE_SIZES"]

# Byte size of one element of each supported dtype.
DTYPE_SIZES = {
    "BOOL": 1, "U8": 1, "I32": 4, "I64": 8,
    "F16": 2, "BF16": 2, "F32": 4, "F64": 8,
}

# Rank of each dtype in the reference implementation's Dtype enum; tensors
# are written in decreasing rank (so wider, more aligned types come first).
_DTYPE_RANK = {
    "BOOL": 0, "U8": 1, "I8": 2, "I16": 3, "U16": 4, "F16": 5, "BF16": 6,
    "I32": 7, "U32": 8, "F32": 9, "F64": 10, "I64": 11, "U64": 12,
}

# numpy dtype (little-endian) for each safetensors dtype except BF16.
_NP_DTYPES = {
    "BOOL": np.dtype("?"), "U8": np.dtype("u1"),
    "I32": np.dtype("<i4"), "I64": np.dtype("<i8"),
    "F16": np.dtype("<f2"), "F32": np.dtype("<f4"), "F64": np.dtype("<f8"),
}

_MAX_HEADER = 100_000_000


def _np_to_st_dtype(dt):
    """Return the safetensors dtype name for a numpy dtype."""
    for name, npdt in _NP_DTYPES.items():
        if dt.kind == npdt.kind and dt.itemsize == npdt.itemsize:
            return name
    raise ValueError(f"unsupported numpy dtype {dt}")


def _to_bytes(value):
    """Convert a numpy array or torch tensor to (dtype name, shape, raw bytes)."""
    if not isinstance(value, np.ndarray):
        mod = type(value).__module__
        if mod.startswith("torch"):
            import torch  # lazy: only needed for torch inputs

            t = value.detach().cpu().contiguous()
            if t.dtype == torch.bfloat16:
                raw = t.view(torch.int16).numpy().astype("<i2", copy=False)
                return "BF16", list(t.shape), raw.tobytes(order="C")
            value = t.numpy()
        else:
            value = np.asarray(value)
    name = _np_to_st_dtype(value.dtype)
    arr = np.asarray(value, dtype=_NP_DTYPES[name], order="C")  # keeps 0-d
    return name, list(arr.shape), arr.tobytes(order="C")


def save_file(tensors, path, metadata=None):
    """Write `tensors` (name -> numpy array or torch tensor) to `path`.

    `metadata` is an optional dict of str -> str stored as "__metadata__".
    """
    if metadata is not None:
        for k, v in metadata.items():
            if not isinstance(k, str) or not isinstance(v, str):
                raise TypeError("metadata keys and values must be str")
    entries = []
    for name, value in tensors.items():
        if not isinstance(name, str) or name == "__metadata__":
            raise ValueError(f"invalid tensor name {name!r}")
        entries.append((name,) + _to_bytes(value))
    entries.sort(key=lambda e: (-_DTYPE_RANK[e[1]], e[0]))

    header = {}
    if metadata is not None:
        header["__metadata__"] = dict(sorted(metadata.items()))
    offset = 0
    for name, dtype, shape, raw in entries:
        header[name] = {"dtype": dtype, "shape": shape,
                        "data_offsets": [offset, offset + len(raw)]}
        offset += len(raw)
    hbytes = json.dumps(header, separators=(",", ":"),
                        ensure_ascii=False).encode("utf-8")
    hbytes += b" " * ((8 - len(hbytes) % 8) % 8)

    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hbytes)))
        f.write(hbytes)
        for _, _, _, raw in entries:
            f.write(raw)


def load_file(path):
    """Read a safetensors file, validating its structure.

    Returns (tensors, metadata): tensors maps name -> numpy array (native
    byte order; BF16 widened to float32), metadata is the "__metadata__"
    dict or None when absent.  Raises ValueError on a malformed file.
    """
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 8:
        raise ValueError(f"{path}: truncated (no header length)")
    (n,) = struct.unpack("<Q", data[:8])
    if n > _MAX_HEADER or 8 + n > len(data):
        raise ValueError(f"{path}: header length {n} invalid")

    def no_dups(pairs):
        d = {}
        for k, v in pairs:
            if k in d:
                raise ValueError(f"{path}: duplicate key {k!r}")
            d[k] = v
        return d

    try:
        header = json.loads(data[8:8 + n].decode("utf-8"),
                            object_pairs_hook=no_dups)
    except UnicodeDecodeError as e:
        raise ValueError(f"{path}: header is not UTF-8 JSON: {e}") from None
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: header is not valid JSON: {e}") from None
    if not isinstance(header, dict):
        raise ValueError(f"{path}: header is not a JSON object")
    body = data[8 + n:]

    metadata = header.pop("__metadata__", None)
    if metadata is not None:
        if not isinstance(metadata, dict) or not all(
                isinstance(v, str) for v in metadata.values()):
            raise ValueError(f"{path}: __metadata__ must map str to str")

    tensors = {}
    spans = []
    for name, info in header.items():
        try:
            dtype = info["dtype"]
            shape = [int(s) for s in info["shape"]]
            begin, end = (int(o) for o in info["data_offsets"])
        except (KeyError, TypeError, ValueError):
            raise ValueError(f"{path}: bad entry for {name!r}") from None
        if dtype not in DTYPE_SIZES:
            raise ValueError(f"{path}: {name!r}: unknown dtype {dtype}")
        if any(s < 0 for s in shape) or not 0 <= begin <= end <= len(body):
            raise ValueError(f"{path}: {name!r}: bad shape or offsets")
        count = int(np.prod(shape, dtype=object)) if shape else 1
        if count * DTYPE_SIZES[dtype] != end - begin:
            raise ValueError(f"{path}: {name!r}: size disagrees with shape")
        raw = body[begin:end]
        if dtype == "BF16":
            bits = np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16
            arr = bits.view(np.float32)
        else:
            arr = np.frombuffer(raw, dtype=_NP_DTYPES[dtype])
            arr = arr.astype(arr.dtype.newbyteorder("="))
        tensors[name] = arr.reshape(shape)
        spans.append((begin, end))

    spans.sort()
    pos = 0
    for begin, end in spans:
        if begin != pos:
            raise ValueError(f"{path}: tensors overlap or leave a hole")
        pos = end
    if pos != len(body):
        raise ValueError(f"{path}: data section not fully covered")
    return tensors, metadata
