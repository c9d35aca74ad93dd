"""Vector columns and small helpers shared by the feature stages.

A vector column is a dense ``(rows, size)`` float64 array or a ``scipy.sparse`` CSR matrix.
Stages that Spark runs on sparse vectors keep CSR for big batches; for a handful of rows a
dense array is much cheaper than building a CSR matrix (~35 µs in scipy) and gives the
same numbers, so :func:`sparse_rows` picks dense below :data:`DENSE_LIMIT` cells.
"""

from __future__ import annotations

import math
import operator
import struct
from decimal import Decimal
from typing import Any

import numpy as np
import scipy.sparse as sp

from modelport.core.errors import InvalidInput, ModelLoadError
from modelport.core.signature import NULL, NULL_BITS
from modelport.runtimes.sparkml.reader import StageMeta

__all__ = [
    "DENSE_LIMIT",
    "NUMBER_TYPES",
    "RowVector",
    "SparseRow",
    "as_float",
    "invalid",
    "is_null",
    "java_double_str",
    "null_mask",
    "n_rows",
    "param_vector",
    "row_array",
    "row_dense",
    "row_dot",
    "row_size",
    "safe_exp",
    "sparse_rows",
    "VECTOR_TYPES",
    "to_dense",
    "with_nulls",
]

DENSE_LIMIT = 1 << 16
"""Below this many cells (rows × size) a 'sparse' result is built dense."""


def to_dense(col: Any) -> np.ndarray:
    """A vector column as a dense 2-D float64 array."""
    if sp.issparse(col):
        return np.asarray(col.toarray(), dtype=np.float64)
    arr = np.asarray(col, dtype=np.float64)
    return arr.reshape(1, -1) if arr.ndim == 1 else arr


def n_rows(col: Any) -> int:
    return int(col.shape[0])


def sparse_rows(
    rows: np.ndarray, cols: np.ndarray, values: np.ndarray, n: int, size: int, ordered: bool = False
) -> Any:
    """A vector column from (row, index, value) triples whose (row, index) pairs are unique.

    ``ordered`` says the triples are already sorted by row, then index.
    """
    if n * size <= DENSE_LIMIT:
        out = np.zeros((n, size), dtype=np.float64)
        out[rows, cols] = values
        return out
    if not ordered:
        order = np.lexsort((cols, rows))
        rows, cols, values = rows[order], cols[order], values[order]
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=n), out=indptr[1:])
    return sp.csr_matrix((values, cols, indptr), shape=(n, size))


def null_mask(col: np.ndarray) -> np.ndarray:
    """Cells of a column that hold Spark's null: ``None``, or the request's null in a float column.

    A float column carries a JSON ``null`` as :data:`~modelport.core.signature.NULL` (a NaN with its own
    payload), so a real NaN stays NaN, as in Spark.
    """
    if col.dtype == np.float64:
        return np.ascontiguousarray(col).view(np.uint64) == NULL_BITS
    if col.dtype == object:
        return np.fromiter((v is None or is_null(v) for v in col.ravel()), bool, col.size).reshape(col.shape)
    return np.zeros(col.shape, dtype=bool)


def is_null(v: Any) -> bool:
    """One row-path value is Spark's null (``None`` or the request's null NaN)."""
    if v is None:
        return True
    return isinstance(v, float) and v != v and struct.unpack("<Q", struct.pack("<d", v))[0] == NULL_BITS


def with_nulls(out: np.ndarray, nulls: np.ndarray) -> np.ndarray:
    """``out`` (float64) with Spark's null where ``nulls`` is set."""
    if nulls.any():
        out = np.array(out, dtype=np.float64)
        out[nulls] = NULL
    return out


def as_float(value: Any) -> float:
    """A double from Spark's param JSON, where NaN and infinities are the strings "NaN", "Inf", "-Inf"."""
    if isinstance(value, str):
        return {"NaN": math.nan, "Inf": math.inf, "-Inf": -math.inf, "Infinity": math.inf}.get(
            value, math.nan if value.lower() == "nan" else float(value.replace("Infinity", "inf"))
        )
    return float(value)


def param_vector(meta: StageMeta, name: str) -> np.ndarray:
    """A vector-valued param (saved inline as ``{"type": 1, "values": [...]}``)."""
    value = meta.get(name)
    if not isinstance(value, dict):
        raise ModelLoadError(f"{meta.path}: {meta.short_class} has no vector param '{name}'")
    values = np.asarray([as_float(v) for v in value.get("values", [])], dtype=np.float64)
    if int(value.get("type", 1)) == 1:
        return values
    out = np.zeros(int(value["size"]), dtype=np.float64)
    out[np.asarray(value["indices"], dtype=np.int64)] = values
    return out


def invalid(stage: str, column: str, problem: str) -> InvalidInput:
    """A bad-data error at predict time: a client mistake that names the stage, the column and the value."""
    return InvalidInput(f"Spark ML stage {stage}: column '{column}': {problem}")


def java_double_str(x: float) -> str:
    """``String.valueOf(double)`` as Java 17 prints it, which is what Spark's cast to string gives."""
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "Infinity" if x > 0 else "-Infinity"
    if x == 0:
        return "-0.0" if math.copysign(1.0, x) < 0 else "0.0"
    ax = abs(x)
    if 1e-3 <= ax < 1e7:
        text = repr(ax)
        if "e" in text:
            text = format(Decimal(text), "f")
        text = text if "." in text else text + ".0"
    else:
        sign, digits, exponent = Decimal(repr(ax)).normalize().as_tuple()
        ds = "".join(str(d) for d in digits)
        power = len(ds) + int(exponent) - 1
        text = f"{ds[0]}.{ds[1:] or '0'}E{power}"
    return ("-" if x < 0 else "") + text


# --- One-row values (the pipeline's row path) -----------------------------------------------------


class SparseRow:
    """One sparse vector: ``size`` plus sorted, unique ``indices`` and their ``values`` (plain lists)."""

    __slots__ = ("indices", "size", "values")

    def __init__(self, size: int, indices: list[int], values: list[float]) -> None:
        self.size = size
        self.indices = indices
        self.values = values

    def dense(self) -> list[float]:
        out = [0.0] * self.size
        for i, v in zip(self.indices, self.values, strict=True):
            out[i] = v
        return out

    def __repr__(self) -> str:
        return f"SparseRow({self.size}, {self.indices}, {self.values})"


RowVector = list[float] | SparseRow
"""A vector on the row path: a dense ``list[float]`` or a :class:`SparseRow`."""

VECTOR_TYPES = (list, SparseRow)
"""``isinstance`` check for a row-path vector (a tuple: cheaper per call than ``list | SparseRow``)."""
NUMBER_TYPES = (float, int)
"""``isinstance`` check for a row-path number (bool is an int, as numpy casts it)."""


def row_size(v: RowVector) -> int:
    return v.size if isinstance(v, SparseRow) else len(v)


def row_dense(v: RowVector) -> list[float]:
    """The vector as a dense list (the same list when it is already dense)."""
    return v.dense() if isinstance(v, SparseRow) else v


def row_array(v: Any) -> np.ndarray:
    """A row-path vector as the ``(1, size)`` float64 array the frame path would return."""
    if isinstance(v, SparseRow):
        out = np.zeros((1, v.size), dtype=np.float64)
        if v.indices:
            out[0, v.indices] = v.values
        return out
    return np.array([v], dtype=np.float64)


def row_dot(v: RowVector, weights: list[float]) -> float:
    """``v · weights`` summed in index order (what scipy's CSR product does for a sparse row)."""
    if isinstance(v, SparseRow):
        return sum(map(operator.mul, v.values, map(weights.__getitem__, v.indices)), 0.0)
    return sum(map(operator.mul, v, weights), 0.0)


def safe_exp(x: float) -> float:
    """``math.exp`` that overflows to +inf like numpy instead of raising."""
    try:
        return math.exp(x)
    except OverflowError:
        return math.inf
