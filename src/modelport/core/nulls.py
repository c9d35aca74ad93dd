"""Null and NaN in answers: how each wire form tells Spark's null from a real NaN.

Inside modelport a float64 output carries a null as :data:`~modelport.core.signature.NULL` (a NaN whose
payload spells "null") and a text output as ``None``; a real NaN is any other NaN. JSON has neither
NaN nor infinities, so answers write null as ``null`` and the others as the strings the request
side already reads: ``"NaN"``, ``"Infinity"``, ``"-Infinity"`` (numpy, tritonclient and KServe's
``as_numpy`` turn those strings back into floats). Binary tensors and gRPC contents hold no null,
so the positions of the nulls travel beside the tensor (:func:`null_positions`).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from modelport.core.signature import NULL, NULL_BITS

__all__ = [
    "all_finite",
    "json_numbers",
    "null_mask",
    "null_positions",
    "numbers_from_json",
    "text_for_bytes",
]


def all_finite(arr: np.ndarray) -> bool:
    """No NaN (null or not) and no infinity in a float array: the common case, checked on every answer.

    For a few values Python's ``math.isfinite`` is cheaper than numpy's ufunc call and reduction.
    """
    if arr.size <= 16:
        return all(map(math.isfinite, arr.ravel().tolist()))
    return bool(np.isfinite(arr).all())


def null_mask(arr: np.ndarray) -> np.ndarray | None:
    """Where ``arr`` holds a null (the NULL NaN in float64, ``None`` in objects); None when it holds none.

    Only float64 carries the NULL payload: a narrower float cannot, so its NaNs are NaN.
    """
    if arr.dtype == np.float64:
        if all_finite(arr):
            return None
        mask = np.ascontiguousarray(arr).view(np.uint64) == NULL_BITS
    elif arr.dtype == object:
        mask = np.fromiter((v is None for v in arr.reshape(-1).tolist()), bool, arr.size).reshape(arr.shape)
    else:
        return None
    return mask if mask.any() else None


def null_positions(arr: np.ndarray) -> list[int] | None:
    """The flat (row-major) positions of the nulls in ``arr``, for the ``nulls`` output parameter."""
    mask = null_mask(arr)
    return None if mask is None else np.flatnonzero(mask).tolist()


def json_numbers(arr: np.ndarray) -> Any:
    """A float array as JSON can hold it: ``arr`` itself when every value is finite (orjson writes it
    natively), else nested lists with ``None`` for null and ``"NaN"``/``"Infinity"``/``"-Infinity"``."""
    if arr.dtype.kind != "f" or all_finite(arr):
        return arr
    wide = arr.astype(np.float64, copy=False)
    out = wide.astype(object)
    nan = np.isnan(wide)
    out[nan] = "NaN"
    if arr.dtype == np.float64:
        out[np.ascontiguousarray(wide).view(np.uint64) == NULL_BITS] = None
    out[wide == np.inf] = "Infinity"
    out[wide == -np.inf] = "-Infinity"
    return out.tolist()


def numbers_from_json(data: Any, dtype: np.dtype[Any]) -> np.ndarray:
    """JSON numbers back to ``dtype``: the special strings become NaN/±inf and ``null`` becomes NULL (float64)
    or NaN (narrower floats, which cannot carry the payload)."""
    arr = np.asarray(data, dtype=dtype)
    if dtype == np.float64 and not all_finite(arr):
        flat = np.asarray(data, dtype=object).reshape(-1)
        nulls = np.fromiter((v is None for v in flat.tolist()), bool, flat.size)
        if nulls.any():
            arr = arr.copy()
            arr.reshape(-1)[nulls] = NULL
    return arr


def text_for_bytes(value: Any) -> bytes:
    """One BYTES element for a binary tensor or gRPC contents: a null is empty there (``nulls`` says which)."""
    if value is None:
        return b""
    return value if isinstance(value, bytes) else str(value).encode("utf-8")
