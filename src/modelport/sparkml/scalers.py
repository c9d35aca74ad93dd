"""Vector-to-vector stages: the scalers, Normalizer, ElementwiseProduct and PCA.

Sparse inputs stay sparse where Spark keeps them sparse (withStd-only StandardScaler, MaxAbsScaler,
ElementwiseProduct, Normalizer); the others give dense vectors as Spark does.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import scipy.sparse as sp

from modelport.errors import ModelLoadError
from modelport.sparkml.reader import StageMeta, dense_vector, matrix, read_data
from modelport.sparkml.stage import ColumnInfo, Frame, Schema, Stage, param_or, register
from modelport.sparkml.vectors import as_float, invalid, to_dense

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

    def _input(self, frame: Frame) -> Any:
        value = frame[self.in_col]
        if not sp.issparse(value):
            value = to_dense(value)
        if self.size is not None and value.shape[1] != self.size:
            raise invalid(self.name, self.in_col, f"vector of size {value.shape[1]}, expected {self.size}")
        return value


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

    def transform(self, frame: Frame) -> None:
        x = self._input(frame)
        if self.with_mean:
            x = to_dense(x) - self.mean
            frame[self.out_col] = x * self.scale if self.with_std else x
        elif self.with_std:
            frame[self.out_col] = _scale_columns(x, self.scale)
        else:
            frame[self.out_col] = x


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
        self.mid = 0.5 * span + self.out_min

    def transform(self, frame: Frame) -> None:
        x = to_dense(self._input(frame))
        out = (x - self.lo) * self.scale + self.out_min
        if self.const.any():
            out[:, self.const] = np.where(np.isnan(x[:, self.const]), np.nan, self.mid)
        frame[self.out_col] = out


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

    def transform(self, frame: Frame) -> None:
        frame[self.out_col] = _scale_columns(self._input(frame), self.scale)


@register
class ElementwiseProduct(_VectorMap):
    """Hadamard product with the saved ``scalingVec``."""

    spark_classes = (_SPARK + "ElementwiseProduct",)

    def __init__(self, meta: StageMeta) -> None:
        from modelport.sparkml.vectors import param_vector

        super().__init__(meta)
        self.scaling = param_vector(meta, "scalingVec")
        self.size = len(self.scaling)

    def transform(self, frame: Frame) -> None:
        frame[self.out_col] = _scale_columns(self._input(frame), self.scaling)


@register
class Normalizer(_VectorMap):
    """Divide each vector by its p-norm (unchanged when the norm is 0)."""

    spark_classes = (_SPARK + "Normalizer",)

    def __init__(self, meta: StageMeta) -> None:
        super().__init__(meta)
        self.p = as_float(param_or(meta, "p", 2.0))
        if self.p < 1:
            raise ModelLoadError(f"{meta.path}: Normalizer p must be >= 1, got {self.p}")

    def transform(self, frame: Frame) -> None:
        x = self._input(frame)
        dense = to_dense(x)
        a = np.abs(dense)
        p = self.p
        if p == 1:
            norm = a.sum(axis=1)
        elif p == 2:
            norm = np.sqrt((dense * dense).sum(axis=1))
        elif math.isinf(p):
            norm = a.max(axis=1) if a.shape[1] else np.zeros(len(a))
        else:
            norm = (a**p).sum(axis=1) ** (1.0 / p)
        norm = np.where(norm == 0, 1.0, norm)
        if sp.issparse(x):
            frame[self.out_col] = sp.csr_matrix(x.multiply(1.0 / norm[:, None]))
        else:
            frame[self.out_col] = dense / norm[:, None]


@register
class PCAModel(_VectorMap):
    """Project onto the saved principal components: ``pc^T x``."""

    spark_classes = (_SPARK + "PCAModel",)

    def __init__(self, meta: StageMeta) -> None:
        super().__init__(meta)
        self.pc = matrix(read_data(meta.path).column("pc")[0].as_py())
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
