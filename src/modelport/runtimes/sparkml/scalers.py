"""Vector-to-vector stages: the scalers, Normalizer, ElementwiseProduct and PCA.

Sparse inputs stay sparse where Spark keeps them sparse (withStd-only StandardScaler, MaxAbsScaler,
ElementwiseProduct, Normalizer); the others give dense vectors as Spark does.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import scipy.sparse as sp

from modelport.core.errors import ModelLoadError
from modelport.runtimes.sparkml.reader import StageMeta, dense_vector, matrix, read_data
from modelport.runtimes.sparkml.stage import ColumnInfo, Frame, Schema, Stage, param_or, register
from modelport.runtimes.sparkml.vectors import (
    VECTOR_TYPES,
    RowVector,
    SparseRow,
    as_float,
    invalid,
    row_dense,
    row_dot,
    row_size,
    to_dense,
)

__all__ = [
    "ElementwiseProduct",
    "MaxAbsScalerModel",
    "MinMaxScalerModel",
    "Normalizer",
    "PCAModel",
    "StandardScalerModel",
]

_SPARK = "org.apache.spark.ml.feature."


def _name(meta: StageMeta) -> str:
    return f"{meta.short_class} ({meta.uid})"


# --- Scalers and vector maps ---------------------------------------------------------------------


class _VectorMap(Stage):
    """One vector in, one vector out of a size fixed at load (or the input's size)."""

    size: int | None = None

    def __init__(self, meta: StageMeta) -> None:
        super().__init__(meta)
        self.in_col, self.out_col = self.inputs[0], self.outputs[0]
        self.name = _name(meta)

    def setup(self, schema: Schema) -> None:
        info = schema.get(self.in_col)
        if self.size is None and info is not None:
            self.size = info.size
        schema[self.out_col] = ColumnInfo("vector", self.size)

    def output_spec(self, column: str) -> tuple[str, tuple[int, ...]]:
        return "FP64", (-1, self.size or -1)

    def input_spec(self, column: str) -> tuple[str, tuple[int, ...]]:
        return "FP64", (-1, getattr(self, "in_size", None) or self.size or -1)

    def row_input(self, values: dict[str, Any]) -> RowVector | None:
        """The input vector of one row, or None when the frame path must judge it (not a vector, wrong size)."""
        v = values[self.in_col]
        if not isinstance(v, VECTOR_TYPES):
            return None
        if self.size is not None and row_size(v) != self.size:
            return None
        return v

    def _input(self, frame: Frame) -> Any:
        value = frame[self.in_col]
        if not sp.issparse(value):
            value = to_dense(value)
        if self.size is not None and value.shape[1] != self.size:
            raise invalid(self.name, self.in_col, f"vector of size {value.shape[1]}, expected {self.size}")
        return value


def _scale_row(x: RowVector, scale: list[float]) -> RowVector:
    """:func:`_scale_columns` for one row."""
    if isinstance(x, SparseRow):
        return SparseRow(x.size, x.indices, [v * scale[i] for i, v in zip(x.indices, x.values, strict=True)])
    return [v * s for v, s in zip(x, scale, strict=True)]


def _scale_columns(x: Any, scale: np.ndarray) -> Any:
    """x * scale per column; CSR stays CSR with its structure (explicit zeros included)."""
    if sp.issparse(x):
        out = x.tocsr(copy=True)
        out.data = out.data * scale[out.indices]
        return out
    return x * scale


@register
class StandardScalerModel(_VectorMap):
    """``(x - mean) * (1/std)``; scale is 0 where std is 0; withMean gives dense output."""

    spark_classes = (_SPARK + "StandardScalerModel",)

    def __init__(self, meta: StageMeta) -> None:
        super().__init__(meta)
        row = read_data(meta.path).to_pylist()[0]
        self.std = dense_vector(row["std"])
        self.mean = dense_vector(row["mean"])
        self.size = len(self.std)
        self.with_mean = bool(param_or(meta, "withMean", False))
        self.with_std = bool(param_or(meta, "withStd", True))
        with np.errstate(divide="ignore"):
            self.scale = np.where(self.std == 0, 0.0, 1.0 / self.std)
        self.scale_list: list[float] = self.scale.tolist()
        self.mean_list: list[float] = self.mean.tolist()

    def transform(self, frame: Frame) -> None:
        x = self._input(frame)
        if self.with_mean:
            x = to_dense(x) - self.mean
            frame[self.out_col] = x * self.scale if self.with_std else x
        elif self.with_std:
            frame[self.out_col] = _scale_columns(x, self.scale)
        else:
            frame[self.out_col] = x

    def row(self, values: dict[str, Any]) -> bool:
        x = self.row_input(values)
        if x is None:
            return False
        if self.with_mean and self.with_std:
            values[self.out_col] = [
                (v - m) * s for v, m, s in zip(row_dense(x), self.mean_list, self.scale_list, strict=True)
            ]
        elif self.with_mean:
            values[self.out_col] = [v - m for v, m in zip(row_dense(x), self.mean_list, strict=True)]
        elif self.with_std:
            values[self.out_col] = _scale_row(x, self.scale_list)
        else:
            values[self.out_col] = x
        return True


@register
class MinMaxScalerModel(_VectorMap):
    """``(x - min) * (max' - min') / range + min'``; constant features go to the middle; NaN stays NaN."""

    spark_classes = (_SPARK + "MinMaxScalerModel",)

    def __init__(self, meta: StageMeta) -> None:
        super().__init__(meta)
        row = read_data(meta.path).to_pylist()[0]
        self.lo = dense_vector(row["originalMin"])
        hi = dense_vector(row["originalMax"])
        self.size = len(hi)
        self.out_min = float(param_or(meta, "min", 0.0))
        span = float(param_or(meta, "max", 1.0)) - self.out_min
        rng = hi - self.lo
        with np.errstate(divide="ignore", invalid="ignore"):
            self.scale = np.where(rng != 0, span / rng, 0.0)
        self.const = self.scale == 0
        self.mid = (self.out_min + float(param_or(meta, "max", 1.0))) / 2  # Spark's constantOutput, same order
        self.row_tables = (self.lo.tolist(), self.scale.tolist(), self.const.tolist())

    def transform(self, frame: Frame) -> None:
        x = to_dense(self._input(frame))
        out = (x - self.lo) * self.scale + self.out_min
        if self.const.any():
            out[:, self.const] = np.where(np.isnan(x[:, self.const]), np.nan, self.mid)
        frame[self.out_col] = out

    def row(self, values: dict[str, Any]) -> bool:
        x = self.row_input(values)
        if x is None:
            return False
        lo, scale, const = self.row_tables
        out_min, mid = self.out_min, self.mid
        values[self.out_col] = [
            (math.nan if v != v else mid) if c else (v - a) * s + out_min
            for v, a, s, c in zip(row_dense(x), lo, scale, const, strict=True)
        ]
        return True


@register
class MaxAbsScalerModel(_VectorMap):
    """``x / maxAbs`` as ``x * (1/maxAbs)``, unchanged where maxAbs is 0; sparse stays sparse."""

    spark_classes = (_SPARK + "MaxAbsScalerModel",)

    def __init__(self, meta: StageMeta) -> None:
        super().__init__(meta)
        max_abs = dense_vector(read_data(meta.path).column("maxAbs")[0].as_py())
        self.size = len(max_abs)
        with np.errstate(divide="ignore"):
            self.scale = np.where(max_abs == 0, 1.0, 1.0 / max_abs)  # Spark leaves all-zero features as they are
        self.scale_list: list[float] = self.scale.tolist()

    def transform(self, frame: Frame) -> None:
        frame[self.out_col] = _scale_columns(self._input(frame), self.scale)

    def row(self, values: dict[str, Any]) -> bool:
        x = self.row_input(values)
        if x is None:
            return False
        values[self.out_col] = _scale_row(x, self.scale_list)
        return True


@register
class ElementwiseProduct(_VectorMap):
    """Hadamard product with the saved ``scalingVec``."""

    spark_classes = (_SPARK + "ElementwiseProduct",)

    def __init__(self, meta: StageMeta) -> None:
        from modelport.runtimes.sparkml.vectors import param_vector

        super().__init__(meta)
        self.scaling = param_vector(meta, "scalingVec")
        self.scaling_list: list[float] = self.scaling.tolist()
        self.size = len(self.scaling)

    def transform(self, frame: Frame) -> None:
        frame[self.out_col] = _scale_columns(self._input(frame), self.scaling)

    def row(self, values: dict[str, Any]) -> bool:
        x = self.row_input(values)
        if x is None:
            return False
        values[self.out_col] = _scale_row(x, self.scaling_list)
        return True


@register
class Normalizer(_VectorMap):
    """Divide each vector by its p-norm (unchanged when the norm is 0), in Spark's arithmetic order.

    ``Vectors.norm`` sums the stored values one after another (no pairwise summation), ignores
    NaN for p = inf (``if (v > max)``), and each value is divided by the norm, never multiplied
    by its reciprocal.
    """

    spark_classes = (_SPARK + "Normalizer",)

    def __init__(self, meta: StageMeta) -> None:
        super().__init__(meta)
        self.p = as_float(param_or(meta, "p", 2.0))
        if self.p < 1:
            raise ModelLoadError(f"{meta.path}: Normalizer p must be >= 1, got {self.p}")

    def _norms(self, values: np.ndarray) -> np.ndarray:
        """Row norms of ``values`` (rows, k), summed column after column as Spark's loop does."""
        p = self.p
        acc = np.zeros(values.shape[0])
        if math.isinf(p):
            for j in range(values.shape[1]):
                a = np.abs(values[:, j])
                np.copyto(acc, a, where=a > acc)
            return acc
        for j in range(values.shape[1]):
            v = values[:, j]
            acc += np.abs(v) if p == 1 else v * v if p == 2 else np.abs(v) ** p
        return acc if p == 1 else np.sqrt(acc) if p == 2 else acc ** (1.0 / p)

    def transform(self, frame: Frame) -> None:
        x = self._input(frame)
        if sp.issparse(x):
            x = sp.csr_matrix(x, dtype=np.float64)
            counts = np.diff(x.indptr)
            stored = np.zeros((x.shape[0], int(counts.max()) if counts.size else 0))
            rows = np.repeat(np.arange(x.shape[0]), counts)
            stored[rows, np.arange(len(x.data)) - np.repeat(x.indptr[:-1], counts)] = x.data
            norm = self._norms(stored)  # the stored values in order, zeros after them add nothing
            norm = np.where(norm == 0, 1.0, norm)
            out = x.copy()
            out.data = out.data / np.repeat(norm, counts)
            frame[self.out_col] = out
        else:
            dense = to_dense(x)
            norm = self._norms(dense)
            frame[self.out_col] = dense / np.where(norm == 0, 1.0, norm)[:, None]

    def row(self, values: dict[str, Any]) -> bool:
        x = self.row_input(values)
        if x is None:
            return False
        present = x.values if isinstance(x, SparseRow) else x  # zeros add nothing to any p-norm
        p = self.p
        norm = 0.0
        if math.isinf(p):
            for v in present:
                if abs(v) > norm:
                    norm = abs(v)
        else:
            for v in present:  # one after another (builtin sum() compensates from Python 3.12)
                norm += abs(v) if p == 1 else v * v if p == 2 else abs(v) ** p
            norm = norm if p == 1 else math.sqrt(norm) if p == 2 else norm ** (1.0 / p)
        if norm == 0:
            norm = 1.0
        if isinstance(x, SparseRow):
            values[self.out_col] = SparseRow(x.size, x.indices, [v / norm for v in x.values])
        else:
            values[self.out_col] = [v / norm for v in x]
        return True


@register
class PCAModel(_VectorMap):
    """Project onto the saved principal components: ``pc^T x``."""

    spark_classes = (_SPARK + "PCAModel",)

    def __init__(self, meta: StageMeta) -> None:
        super().__init__(meta)
        self.pc = matrix(read_data(meta.path).column("pc")[0].as_py())
        self.pc_columns: list[list[float]] = self.pc.T.tolist()
        self.in_size = self.pc.shape[0]
        self.size = self.pc.shape[1]

    def _input(self, frame: Frame) -> Any:
        value = frame[self.in_col]
        if value.shape[1] != self.in_size:
            raise invalid(self.name, self.in_col, f"vector of size {value.shape[1]}, expected {self.in_size}")
        return value if sp.issparse(value) else to_dense(value)

    def transform(self, frame: Frame) -> None:
        out = self._input(frame) @ self.pc
        frame[self.out_col] = np.asarray(out, dtype=np.float64)

    def row(self, values: dict[str, Any]) -> bool:
        x = values[self.in_col]
        if not isinstance(x, VECTOR_TYPES) or row_size(x) != self.in_size:
            return False
        values[self.out_col] = [row_dot(x, column) for column in self.pc_columns]
        return True
