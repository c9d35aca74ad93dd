"""The V2 binary tensor data extension (Triton's ``binary_tensor_data``).

A body is a JSON header of ``Inference-Header-Content-Length`` bytes followed by the
raw tensors, in the order their entries appear in the header, each sized by its
``binary_data_size`` parameter. Little-endian, row-major; BOOL is one byte; each BYTES
element is a 4-byte little-endian length and then its bytes.
"""

from __future__ import annotations

import struct
from typing import Any

import numpy as np

from modelport.core.errors import BadRequest
from modelport.core.nulls import text_for_bytes
from modelport.core.signature import DATATYPES

__all__ = ["decode_bytes_tensor", "encode_tensor", "rectangular", "split_body", "tensor_from_bytes"]

HEADER = b"inference-header-content-length"


def split_body(body: bytes, header_length: bytes) -> tuple[bytes, memoryview]:
    try:
        n = int(header_length)
    except ValueError:
        raise BadRequest(
            f"Inference-Header-Content-Length '{header_length.decode('latin-1')}' is not an integer"
        ) from None
    if n < 0 or n > len(body):
        raise BadRequest(f"Inference-Header-Content-Length is {n} but the body has only {len(body)} bytes")
    return body[:n], memoryview(body)[n:]


def decode_bytes_tensor(raw: memoryview, name: str) -> list[Any]:
    out: list[Any] = []
    pos, end = 0, len(raw)
    while pos < end:
        if pos + 4 > end:
            raise BadRequest(f"input '{name}': truncated BYTES element length at byte {pos}")
        (size,) = struct.unpack_from("<I", raw, pos)
        pos += 4
        if pos + size > end:
            raise BadRequest(f"input '{name}': BYTES element of {size} bytes runs past the tensor's data")
        chunk = bytes(raw[pos : pos + size])
        try:
            out.append(chunk.decode("utf-8"))
        except UnicodeDecodeError:
            out.append(chunk)
        pos += size
    return out


def tensor_from_bytes(raw: memoryview, name: str, datatype: str, shape: list[int]) -> Any:
    """Binary tensor data as a flat array (or list of str/bytes for BYTES)."""
    if datatype == "BYTES":
        return decode_bytes_tensor(raw, name)
    dtype = DATATYPES.get(datatype)
    if dtype is None:
        raise BadRequest(f"input '{name}': datatype '{datatype}' is not one of {', '.join(DATATYPES)}")
    dtype = dtype.newbyteorder("<")
    if len(raw) % dtype.itemsize:
        raise BadRequest(f"input '{name}': {len(raw)} bytes is not a whole number of {datatype} values")
    arr = np.frombuffer(raw, dtype=dtype)
    return arr.astype(dtype.newbyteorder("="), copy=False)


def rectangular(arr: np.ndarray) -> tuple[np.ndarray, list[int] | None]:
    """A column of lists (Spark's token arrays) as the ``(rows, longest)`` tensor V2 requires, and each row's length.

    Rows are right-padded with empty strings; ``lengths`` (-1 for a null row) says where each row
    really ends, so a real empty token is never mistaken for padding. Anything else passes through.
    """
    if arr.dtype != object or arr.ndim != 1 or not arr.size:
        return arr, None
    if not any(isinstance(v, list | tuple | np.ndarray) for v in arr.tolist()):
        return arr, None
    rows = [None if v is None else list(v) for v in arr.tolist()]
    lengths = [-1 if r is None else len(r) for r in rows]
    out = np.full((len(rows), max(max(lengths), 0)), "", dtype=object)
    for i, r in enumerate(rows):
        if r:
            out[i, : len(r)] = r
    return out, lengths


def encode_tensor(arr: np.ndarray, datatype: str) -> bytes:
    if datatype == "BYTES":
        parts = []
        for v in arr.reshape(-1).tolist():
            b = text_for_bytes(v)  # a null is empty here; the output's ``nulls`` parameter lists it
            parts.append(struct.pack("<I", len(b)))
            parts.append(b)
        return b"".join(parts)
    dtype = DATATYPES[datatype].newbyteorder("<")
    return np.ascontiguousarray(arr, dtype=dtype).tobytes()
