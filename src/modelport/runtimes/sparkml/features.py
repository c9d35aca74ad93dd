"""Tabular feature stages: indexers, encoders, assembler, imputer, bucketizer and binarizer (scalers: scalers.py).

Numbers arrive as float64. A request's ``null`` arrives as :data:`modelport.core.signature.NULL`
(a NaN with its own payload, see :func:`~modelport.runtimes.sparkml.vectors.null_mask`), so each stage
treats null and NaN apart exactly where Spark does: OneHotEncoder and Bucketizer (keep/error)
return null for null; StringIndexer looks NaN up as the label "NaN"; Imputer replaces NaN only
when ``missingValue`` is NaN. IndexToString and Binarizer changed in Spark 4 (column
expressions instead of UDFs), so they follow the Spark version that saved the model: before 4,
null gives null and IndexToString reads NaN as index 0; from 4, IndexToString refuses null and
NaN and Binarizer gives 0.0 for both.
"""

from __future__ import annotations

import bisect
import math
import struct
from typing import Any

import numpy as np
import scipy.sparse as sp

from modelport.core.errors import ModelLoadError
from modelport.core.signature import NULL, NULL_BITS
from modelport.runtimes.sparkml.reader import StageMeta, read_data
from modelport.runtimes.sparkml.stage import ColumnInfo, Frame, Schema, Stage, param_or, register
from modelport.runtimes.sparkml.vectors import (
    NUMBER_TYPES,
    SparseRow,
    as_float,
    invalid,
    is_null,
    java_double_str,
    null_mask,
    to_dense,
    with_nulls,
)

__all__ = [
    "Binarizer",
    "Bucketizer",
    "ImputerModel",
    "IndexToString",
    "OneHotEncoderModel",
    "StringIndexerModel",
    "VectorAssembler",
]

_SPARK = "org.apache.spark.ml.feature."
_INT_LABEL = __import__("re").compile(r"-?(?:0|[1-9]\d*)")  # how Spark casts an int: no leading zeros


def _name(meta: StageMeta) -> str:
    return f"{meta.short_class} ({meta.uid})"


def _handle_invalid(meta: StageMeta, allowed: tuple[str, ...], default: str = "error") -> str:
    mode = str(param_or(meta, "handleInvalid", default))
    if mode not in allowed:
        raise ModelLoadError(
            f"{meta.path}: {meta.short_class} handleInvalid '{mode}' is not one of {', '.join(allowed)}"
        )
    return mode


def _pairs(meta: StageMeta) -> list[tuple[str, str]]:
    """(input, output) column pairs of a stage that takes inputCol/outputCol or inputCols/outputCols."""
    ins, outs = meta.get("inputCols"), meta.get("outputCols")
    if ins:
        return list(zip(ins, outs or [], strict=True))
    return [(meta.get("inputCol"), meta.get("outputCol"))]


class _Scalar(Stage):
    """Stages that output one number column per input column."""

    def output_spec(self, column: str) -> tuple[str, tuple[int, ...]]:
        return "FP64", (-1,)


# --- StringIndexer / IndexToString ----------------------------------------------------------------


@register
class StringIndexerModel(_Scalar):
    """Label -> index by the saved labels; the input is cast to string first (1.0 -> "1.0")."""

    spark_classes = (_SPARK + "StringIndexerModel",)

    def __init__(self, meta: StageMeta) -> None:
        super().__init__(meta)
        table = read_data(meta.path)
        if "labelsArray" in table.column_names:
            arrays = table.column("labelsArray")[0].as_py()
        elif "labels" in table.column_names:
            arrays = [table.column("labels")[0].as_py()]
        else:
            raise ModelLoadError(f"{meta.path}: StringIndexerModel data has neither labelsArray nor labels")
        self.pairs = _pairs(meta)
        if len(arrays) != len(self.pairs):
            raise ModelLoadError(f"{meta.path}: {len(arrays)} label arrays for {len(self.pairs)} input columns")
        self.labels = [tuple(str(x) for x in a) for a in arrays]
        self.lookup = [{lab: float(i) for i, lab in enumerate(a)} for a in self.labels]
        self.mode = _handle_invalid(meta, ("error", "skip", "keep"))
        self.name = _name(meta)
        self.input_types = {src: _label_type(labs) for (src, _), labs in zip(self.pairs, self.labels, strict=True)}

    def input_datatype(self, column: str) -> str:
        return self.input_types.get(column, "BYTES")

    def setup(self, schema: Schema) -> None:
        for (_, dst), labels in zip(self.pairs, self.labels, strict=True):
            schema[dst] = ColumnInfo("number", labels=labels + ("__unknown",) if self.mode == "keep" else labels)

    def transform(self, frame: Frame) -> None:
        keep_mask: np.ndarray | None = None
        for (src, dst), lookup, labels in zip(self.pairs, self.lookup, self.labels, strict=True):
            col = frame[src]
            keys = _as_strings(col)
            unknown = float(len(labels))
            if len(keys) == 1:
                found = lookup.get(keys[0], -1.0) if keys[0] is not None else -1.0
                out = np.array([found])
                bad = out < 0
                if found >= 0:
                    frame[dst] = out
                    continue
            else:
                out = np.fromiter((lookup.get(k, -1.0) if k is not None else -1.0 for k in keys), np.float64, len(keys))
                bad = out < 0
            if bad.any():
                if self.mode == "error":
                    value = keys[int(np.flatnonzero(bad)[0])]
                    if value is None:
                        raise invalid(
                            self.name, src, "null value; StringIndexer handleInvalid is 'error' (set 'keep' or 'skip')"
                        )
                    raise invalid(
                        self.name,
                        src,
                        f"unseen label {value!r}; StringIndexer handleInvalid is 'error' "
                        f"(known labels: {_preview(labels)})",
                    )
                if self.mode == "keep":
                    out[bad] = unknown
                else:
                    keep_mask = ~bad if keep_mask is None else keep_mask & ~bad
            frame[dst] = out
        if keep_mask is not None:
            frame.filter(keep_mask)

    def row(self, values: dict[str, Any]) -> bool:
        keep = self.mode == "keep"
        for (src, dst), lookup, labels in zip(self.pairs, self.lookup, self.labels, strict=True):
            v = values[src]
            key = v if isinstance(v, str) or v is None else None if is_null(v) else _scalar_str(v)
            found = lookup.get(key) if key is not None else None
            if found is None:
                if not keep:
                    return False  # skip drops the row, error raises: both the frame path's job
                found = float(len(labels))
            values[dst] = found
        return True


def _preview(labels: tuple[str, ...], limit: int = 10) -> str:
    shown = ", ".join(repr(x) for x in labels[:limit])
    return shown + (f", ... ({len(labels)} in all)" if len(labels) > limit else "")


def _label_type(labels: tuple[str, ...]) -> str:
    """Labels that all look like Spark's string cast of ints/doubles mean the column was numeric."""
    if not labels:
        return "BYTES"
    if all(_INT_LABEL.fullmatch(x) for x in labels):
        return "INT64"
    try:
        if all(java_double_str(float(x)) == x for x in labels):
            return "FP64"
    except ValueError:
        pass
    return "BYTES"


def _as_strings(col: np.ndarray) -> list[Any]:
    """Spark's cast to string: ints as "1", doubles as Java prints them ("1.0", "NaN"); null stays None."""
    kind = col.dtype.kind
    if kind == "O":
        return [v if isinstance(v, str) or v is None else None if is_null(v) else _scalar_str(v) for v in col.tolist()]
    if kind in "iu":
        return [str(v) for v in col.tolist()]
    if kind == "b":
        return ["true" if v else "false" for v in col.tolist()]
    if kind == "f":
        nulls = null_mask(col) if col.dtype == np.float64 else np.zeros(len(col), dtype=bool)
        return [None if n else java_double_str(v) for v, n in zip(col.tolist(), nulls.tolist(), strict=True)]
    return [str(v) for v in col.tolist()]


def _scalar_str(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return java_double_str(v)
    return str(v)


@register
class IndexToString(Stage):
    """Index -> label, from the ``labels`` param or, when unset, the labels of the indexer that made the column."""

    spark_classes = (_SPARK + "IndexToString",)

    def __init__(self, meta: StageMeta) -> None:
        super().__init__(meta)
        labels = meta.raw.get("paramMap", {}).get("labels")
        self.labels: tuple[str, ...] | None = tuple(str(x) for x in labels) if labels else None
        self.in_col, self.out_col = self.inputs[0], self.outputs[0]
        self.name = _name(meta)
        self.spark4 = meta.spark_version[0] >= 4  # null and NaN are errors there, no longer null and labels[0]

    def output_spec(self, column: str) -> tuple[str, tuple[int, ...]]:
        return "BYTES", (-1,)

    def setup(self, schema: Schema) -> None:
        if self.labels is None:
            info = schema.get(self.in_col)
            if info is None or info.labels is None:
                raise ModelLoadError(
                    f"{self.meta.path}: IndexToString has no 'labels' param and column '{self.in_col}' does not come "
                    "from a StringIndexer in this pipeline; set labels on the stage before saving"
                )
            self.labels = info.labels
        self._array = np.asarray(self.labels, dtype=object)
        schema[self.out_col] = ColumnInfo("string")

    def transform(self, frame: Frame) -> None:
        col = np.asarray(frame[self.in_col], dtype=np.float64)
        nan = np.isnan(col)
        if self.spark4 and nan.any():
            what = "null" if null_mask(col)[nan][0] else "NaN"
            raise invalid(self.name, self.in_col, f"{what} index; Spark 4's IndexToString fails on null and NaN")
        nulls = null_mask(col) if nan.any() else nan
        with np.errstate(invalid="ignore"):
            idx = (np.where(nan, 0.0, col) if nan.any() else col).astype(np.int64)  # Java's (int) NaN is 0
        bad = ((idx < 0) | (idx >= len(self._array))) & ~nulls
        if bad.any():
            raise invalid(self.name, self.in_col, f"unseen index {float(col[bad][0])!r} (labels: {len(self._array)})")
        out = self._array[np.where(nulls, 0, idx)]
        if nulls.any():
            out[nulls] = None  # Spark's udf over a primitive double answers null for null
        frame[self.out_col] = out

    def row(self, values: dict[str, Any]) -> bool:
        v = values[self.in_col]
        if not isinstance(v, NUMBER_TYPES):
            return False
        x = float(v)
        if x != x:
            if self.spark4:
                return False  # the frame path raises
            if is_null(x):
                values[self.out_col] = None
                return True
            x = 0.0  # Java's (int) NaN is 0
        elif math.isinf(x):
            return False
        i = int(x)
        labels = self.labels or ()
        if not 0 <= i < len(labels):
            return False
        values[self.out_col] = labels[i]
        return True


# --- OneHotEncoder -------------------------------------------------------------------------------


@register
class OneHotEncoderModel(Stage):
    """Category index -> one-hot vector; dropLast drops the last slot; keep adds one for invalid values."""

    spark_classes = (_SPARK + "OneHotEncoderModel",)

    def __init__(self, meta: StageMeta) -> None:
        super().__init__(meta)
        table = read_data(meta.path)
        self.category_sizes = [int(x) for x in table.column("categorySizes")[0].as_py()]
        self.pairs = _pairs(meta)
        self.drop_last = bool(param_or(meta, "dropLast", True))
        self.mode = _handle_invalid(meta, ("error", "keep"))
        keep = self.mode == "keep"
        self.sizes = [
            n - 1 if self.drop_last and not keep else n + 1 if keep and not self.drop_last else n
            for n in self.category_sizes
        ]
        self.name = _name(meta)

    def output_spec(self, column: str) -> tuple[str, tuple[int, ...]]:
        return "FP64", (-1, self.sizes[[d for _, d in self.pairs].index(column)])

    def setup(self, schema: Schema) -> None:
        for (_, dst), size in zip(self.pairs, self.sizes, strict=True):
            schema[dst] = ColumnInfo("vector", size)

    def transform(self, frame: Frame) -> None:
        for (src, dst), n, size in zip(self.pairs, self.category_sizes, self.sizes, strict=True):
            x = frame[src]
            if x.dtype != np.float64:
                x = x.astype(np.float64)
            nulls = null_mask(x)
            valid = (x >= 0) & (x < n) | nulls  # null gives a null vector, whatever handleInvalid says
            if not valid.all():
                if self.mode == "error":
                    v = float(x[~valid][0])
                    what = "negative value" if v < 0 else "null value" if v != v else "unseen value"
                    raise invalid(
                        self.name,
                        src,
                        f"{what} {v!r}; OneHotEncoder expects 0 <= index < {n} "
                        "and its handleInvalid is 'error' (set 'keep')",
                    )
                x = np.where(valid, x, float(n))
            idx = np.where(nulls, size, x).astype(np.int64)  # no NaN left: invalid values became n above
            out = np.zeros((len(x), size), dtype=np.float64)
            if len(idx) == 1:
                if idx[0] < size:
                    out[0, idx[0]] = 1.0
            else:
                hit = idx < size
                out[np.flatnonzero(hit), idx[hit]] = 1.0
            if nulls.any():
                out[nulls] = NULL
            frame[dst] = out

    def row(self, values: dict[str, Any]) -> bool:
        for (src, dst), n, size in zip(self.pairs, self.category_sizes, self.sizes, strict=True):
            v = values[src]
            if not isinstance(v, NUMBER_TYPES):
                return False
            x = float(v)
            if not 0 <= x < n:
                if self.mode == "error" or is_null(x):
                    return False
                x = float(n)
            i = int(x)
            if size <= _DENSE_ROW:  # small: a plain list, which the assembler just extends
                out = [0.0] * size
                if i < size:
                    out[i] = 1.0
                values[dst] = out
            else:
                values[dst] = SparseRow(size, [i], [1.0]) if i < size else SparseRow(size, [], [])
        return True


# --- VectorAssembler -----------------------------------------------------------------------------

_DENSE_ROW = 256
"""On the row path an assembled vector this small is a plain list even with sparse parts (cheaper downstream)."""


@register
class VectorAssembler(Stage):
    """Concatenate numbers and vectors; null/NaN numbers and null vectors per handleInvalid."""

    spark_classes = (_SPARK + "VectorAssembler",)

    def __init__(self, meta: StageMeta) -> None:
        super().__init__(meta)
        self.mode = _handle_invalid(meta, ("error", "skip", "keep"))
        self.out_col = self.outputs[0]
        self.sizes: list[int | None] = []
        self.size: int | None = None  # known once setup() has seen the input columns
        self.name = _name(meta)

    def setup(self, schema: Schema) -> None:
        self.sizes = []
        for col in self.inputs:
            info = schema.get(col)
            self.sizes.append(1 if info is None or info.kind == "number" else info.size)
        total = None if any(s is None for s in self.sizes) else sum(s for s in self.sizes if s is not None)
        self.size = total
        from modelport.runtimes.sparkml.vector_stages import (
            assembled_attrs,
        )  # Spark's attribute names, for VectorSlicer

        schema[self.out_col] = ColumnInfo("vector", total, attrs=assembled_attrs(self.inputs, schema))

    def output_spec(self, column: str) -> tuple[str, tuple[int, ...]]:
        return "FP64", (-1, self.size if self.size else -1)

    def transform(self, frame: Frame) -> None:
        parts: list[Any] = []
        scalar_pos: list[int] = []
        scalar_names: list[str] = []
        any_sparse = False
        width = 0
        null_vectors: np.ndarray | None = None
        null_name = ""
        for col in self.inputs:
            value = frame[col]
            if sp.issparse(value):
                any_sparse = True
                parts.append(value)
                width += value.shape[1]
                continue
            if value.ndim == 2 and value.shape[1] and value.dtype == np.float64:
                nv = null_mask(value[:, 0])  # a null vector (from a null OneHotEncoder input) is all null
                if nv.any():
                    null_name = null_name or col
                    null_vectors = nv if null_vectors is None else null_vectors | nv
            if value.ndim == 1:
                value = value.reshape(-1, 1)
                scalar_pos.append(width)
                scalar_names.append(col)
            parts.append(value)
            width += value.shape[1]
        if any_sparse:
            out: Any = sp.hstack(
                [p if sp.issparse(p) else sp.csr_matrix(p, dtype=np.float64) for p in parts], format="csr"
            )
            scalars = out[:, scalar_pos].toarray() if scalar_pos else None
        else:
            out = np.concatenate(parts, axis=1) if len(parts) > 1 else parts[0]
            if out.dtype != np.float64:
                out = out.astype(np.float64)
            scalars = out[:, scalar_pos] if scalar_pos else None
        if self.mode == "keep" and (null_vectors is not None or scalars is not None):
            data = out.data if sp.issparse(out) else out
            hit = np.ascontiguousarray(data).view(np.uint64) == NULL_BITS
            if hit.any():
                out = out.copy()  # never write into a request's own array
                (out.data if sp.issparse(out) else out)[hit] = np.nan  # Spark keeps a null as NaN
        frame[self.out_col] = out
        if null_vectors is not None and self.mode == "error":
            raise invalid(
                self.name, null_name, 'null vector while assembling with handleInvalid = "error" (use "keep" or "skip")'
            )
        # NaN inside a vector input is data; a null or NaN number is a missing value
        drop = null_vectors if self.mode == "skip" else None
        if scalars is not None:
            nan = np.isnan(scalars)
            if nan.any():
                if self.mode == "error":
                    col = scalar_names[int(np.flatnonzero(nan.any(axis=0))[0])]
                    raise invalid(
                        self.name,
                        col,
                        'null or NaN value while assembling with handleInvalid = "error" (use "keep" or "skip")',
                    )
                if self.mode == "skip":
                    drop = nan.any(axis=1) if drop is None else drop | nan.any(axis=1)
        if drop is not None:
            frame.filter(~drop)

    def row(self, values: dict[str, Any]) -> bool:
        dense = self.size is not None and self.size <= _DENSE_ROW
        parts: list[Any] = []
        out: list[float] = []
        any_sparse = False
        keep = self.mode == "keep"
        for col in self.inputs:
            v = values[col]
            if isinstance(v, list):
                if v and is_null(v[0]):
                    return False  # a null vector: the frame path's job
                out.extend(v)
                parts.append(v)
            elif isinstance(v, NUMBER_TYPES):
                x = float(v)
                if x != x:
                    if not keep:
                        return False  # a missing number: error or skip, the frame path's job
                    x = math.nan
                out.append(x)
                parts.append(x)
            elif isinstance(v, SparseRow):
                any_sparse = True
                if dense:
                    out.extend(v.dense())
                parts.append(v)
            else:
                return False
        if dense or not any_sparse:
            values[self.out_col] = out
            return True
        indices: list[int] = []
        vals: list[float] = []
        offset = 0
        for p in parts:
            if isinstance(p, SparseRow):
                indices.extend([i + offset for i in p.indices])
                vals.extend(p.values)
                offset += p.size
            elif isinstance(p, list):
                for i, x in enumerate(p):
                    if x != 0.0:
                        indices.append(i + offset)
                        vals.append(x)
                offset += len(p)
            else:
                if p != 0.0:
                    indices.append(offset)
                    vals.append(p)
                offset += 1
        values[self.out_col] = SparseRow(offset, indices, vals)
        return True


# --- Imputer -------------------------------------------------------------------------------------


@register
class ImputerModel(_Scalar):
    """Replace null and ``missingValue`` (NaN by default) with the saved surrogate, cast to the input's type.

    Spark casts the result back to the input column's type: an integer column gets the surrogate
    truncated, a float column gets it rounded to float32. The saved model does not say the type, so
    it is the request's: declare such a column INT32/INT64/FP32 in modelport.toml's [signature].
    """

    spark_classes = (_SPARK + "ImputerModel",)

    def __init__(self, meta: StageMeta) -> None:
        super().__init__(meta)
        table = read_data(meta.path)
        row = table.to_pylist()[0]
        self.pairs = _pairs(meta)
        try:
            self.surrogates = [float(row[src]) for src, _ in self.pairs]
        except KeyError as exc:
            raise ModelLoadError(f"{meta.path}: ImputerModel data has no surrogate for column {exc}") from None
        self.missing = as_float(param_or(meta, "missingValue", "NaN"))

    def transform(self, frame: Frame) -> None:
        missing = self.missing
        for (src, dst), value in zip(self.pairs, self.surrogates, strict=True):
            col = frame[src]
            x = col if col.dtype == np.float64 else col.astype(np.float64)
            mask = np.isnan(x) if math.isnan(missing) else null_mask(x) | (x == missing)
            out = np.where(mask, value, x) if mask.any() else x
            if col.dtype.kind in "iu":
                out = np.trunc(out)  # Spark's cast of the double back to an integer column
            elif col.dtype.kind == "f" and col.dtype.itemsize < 8:
                out = out.astype(col.dtype).astype(np.float64)
            frame[dst] = out

    def row(self, values: dict[str, Any]) -> bool:
        missing = self.missing
        for (src, dst), value in zip(self.pairs, self.surrogates, strict=True):
            v = values[src]
            if not isinstance(v, NUMBER_TYPES):
                return False
            x = float(v)
            if x != x:
                hit = missing != missing or is_null(x)
            else:
                hit = x == missing
            if isinstance(v, int) and not isinstance(v, bool):
                values[dst] = float(math.trunc(value)) if hit else x
            else:
                values[dst] = value if hit else x
        return True


# --- Bucketizer / Binarizer ----------------------------------------------------------------------


def _order_keys(x: np.ndarray) -> np.ndarray:
    """int64 keys that sort doubles as Java's ``Double.compare`` does (-0.0 before 0.0)."""
    bits = np.ascontiguousarray(x, dtype=np.float64).view(np.int64)
    return np.where(bits >= 0, bits, -(bits & np.int64(0x7FFFFFFFFFFFFFFF)) - 1)


def _order_key(x: float) -> int:
    """:func:`_order_keys` for one double."""
    bits = struct.unpack("<q", struct.pack("<d", x))[0]
    return int(bits if bits >= 0 else -(bits & 0x7FFFFFFFFFFFFFFF) - 1)


@register
class Bucketizer(_Scalar):
    """Bucket index by the splits: [s_i, s_i+1), the last bucket closed; NaN per handleInvalid.

    Spark finds the bucket with ``java.util.Arrays.binarySearch``, which orders -0.0 below 0.0,
    after checking ``x == last split`` numerically; the keys below give the same order.
    """

    spark_classes = (_SPARK + "Bucketizer",)

    def __init__(self, meta: StageMeta) -> None:
        super().__init__(meta)
        self.pairs = _pairs(meta)
        if meta.get("splitsArray") and meta.get("inputCols"):
            arrays = meta.get("splitsArray")
        else:
            arrays = [meta.get("splits")]
        if not arrays or any(a is None for a in arrays):
            raise ModelLoadError(f"{meta.path}: Bucketizer has no splits")
        self.splits = [np.asarray([as_float(v) for v in a], dtype=np.float64) for a in arrays]
        self.split_lists: list[list[float]] = [a.tolist() for a in self.splits]
        self.split_keys = [_order_keys(a) for a in self.splits]
        self.split_key_lists: list[list[int]] = [k.tolist() for k in self.split_keys]
        self.mode = _handle_invalid(meta, ("error", "skip", "keep"))
        self.name = _name(meta)

    def transform(self, frame: Frame) -> None:
        keep_mask: np.ndarray | None = None
        for (src, dst), splits, keys in zip(self.pairs, self.splits, self.split_keys, strict=True):
            x = np.asarray(frame[src], dtype=np.float64)
            nan = np.isnan(x)
            nulls = null_mask(x) if nan.any() else nan
            if nan.any():
                if self.mode == "error" and (nan & ~nulls).any():
                    raise invalid(
                        self.name, src, "NaN value; Bucketizer handleInvalid is 'error' (set 'keep' or 'skip')"
                    )
                if self.mode == "skip":  # Spark drops rows with null or NaN in any input column
                    keep_mask = ~nan if keep_mask is None else keep_mask & ~nan
            xk = _order_keys(x)
            out = np.searchsorted(keys, xk, side="right").astype(np.float64) - 1.0
            last = x == splits[-1]
            out[last] = len(splits) - 2
            oob = ~nan & ~last & ((xk < keys[0]) | (xk > keys[-1]))
            if oob.any() and (keep_mask is None or (oob & keep_mask).any()):
                v = float(x[oob][0])
                raise invalid(
                    self.name,
                    src,
                    f"value {v!r} out of Bucketizer bounds [{float(splits[0])!r}, {float(splits[-1])!r}]",
                )
            out[nan] = len(splits) - 1
            out[nulls] = NULL  # keep and error: Spark's udf answers null for null
            frame[dst] = out
        if keep_mask is not None:
            frame.filter(keep_mask)

    def row(self, values: dict[str, Any]) -> bool:
        for (src, dst), splits, keys in zip(self.pairs, self.split_lists, self.split_key_lists, strict=True):
            v = values[src]
            if not isinstance(v, NUMBER_TYPES):
                return False
            x = float(v)
            if x != x:
                if self.mode == "skip" or (self.mode == "error" and not is_null(x)):
                    return False
                values[dst] = NULL if is_null(x) else float(len(splits) - 1)
            elif x == splits[-1]:
                values[dst] = float(len(splits) - 2)
            else:
                key = _order_key(x)
                if key < keys[0] or key > keys[-1]:
                    return False  # out of bounds: the frame path raises
                values[dst] = float(bisect.bisect_right(keys, key) - 1)
        return True


@register
class Binarizer(Stage):
    """1.0 where the value is above the threshold, else 0.0; numbers or vectors, one or many columns."""

    spark_classes = (_SPARK + "Binarizer",)

    def __init__(self, meta: StageMeta) -> None:
        super().__init__(meta)
        self.pairs = _pairs(meta)
        thresholds = meta.get("thresholds") if meta.get("inputCols") else None
        if thresholds:
            self.thresholds = [as_float(t) for t in thresholds]
        else:
            self.thresholds = [as_float(param_or(meta, "threshold", 0.0))] * len(self.pairs)
        self.kinds: dict[str, ColumnInfo] = {}
        self.null_is_null = meta.spark_version[0] < 4  # Spark 4 compares with a column expression: null -> 0.0

    def setup(self, schema: Schema) -> None:
        for src, dst in self.pairs:
            info = schema.get(src) or ColumnInfo("number")
            self.kinds[dst] = info
            schema[dst] = ColumnInfo(info.kind if info.kind == "vector" else "number", info.size)

    def output_spec(self, column: str) -> tuple[str, tuple[int, ...]]:
        info = self.kinds.get(column)
        if info is not None and info.kind == "vector":
            return "FP64", (-1, info.size or -1)
        return "FP64", (-1,)

    def transform(self, frame: Frame) -> None:
        for (src, dst), t in zip(self.pairs, self.thresholds, strict=True):
            x = frame[src]
            if sp.issparse(x) and t >= 0:
                out = x.tocsr(copy=True)
                out.data = (out.data > t).astype(np.float64)
                out.eliminate_zeros()
                frame[dst] = out
            else:
                dense = to_dense(x) if sp.issparse(x) else np.asarray(x, dtype=np.float64)
                out = (dense > t).astype(np.float64)
                frame[dst] = with_nulls(out, null_mask(dense)) if dense.ndim == 1 and self.null_is_null else out

    def row(self, values: dict[str, Any]) -> bool:
        for (src, dst), t in zip(self.pairs, self.thresholds, strict=True):
            v = values[src]
            if isinstance(v, SparseRow):
                if t >= 0:
                    kept = [i for i, x in zip(v.indices, v.values, strict=True) if x > t]
                    values[dst] = SparseRow(v.size, kept, [1.0] * len(kept))
                else:
                    values[dst] = [1.0 if x > t else 0.0 for x in v.dense()]
            elif isinstance(v, list):
                values[dst] = [1.0 if x > t else 0.0 for x in v]
            elif isinstance(v, NUMBER_TYPES):
                values[dst] = NULL if self.null_is_null and is_null(v) else 1.0 if float(v) > t else 0.0
            else:
                return False
        return True
