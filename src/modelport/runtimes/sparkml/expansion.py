"""Vector maps added for issue 12: RobustScalerModel, PolynomialExpansion and DCT.

RobustScalerModel is Spark's StandardScaler arithmetic with the median as shift and
``1/IQR`` (0 where the range is 0) as scale. PolynomialExpansion follows Spark's recursive
expansion, so terms come in Spark's order and each product is multiplied in Spark's order
(last feature first), which keeps the floating-point result identical; a product that reaches
0 stays 0 even if a later factor is infinite or NaN, as in Spark. DCT is the orthonormal
DCT-II (inverse: DCT-III) that Spark computes with JTransforms' scaled transform.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import scipy.sparse as sp

from modelport.core.errors import ModelLoadError
from modelport.runtimes.sparkml.reader import StageMeta, dense_vector, read_data
from modelport.runtimes.sparkml.scalers import StandardScalerModel, _VectorMap
from modelport.runtimes.sparkml.stage import ColumnInfo, Frame, Schema, param_or, register
from modelport.runtimes.sparkml.vectors import VECTOR_TYPES, SparseRow, invalid, row_dense, row_size, to_dense

__all__ = ["DCT", "PolynomialExpansion", "RobustScalerModel"]

_SPARK = "org.apache.spark.ml.feature."


@register
class RobustScalerModel(StandardScalerModel):
    """``(x - median) * (1/range)``: StandardScalerModel's arithmetic with the saved median and quantile range."""

    spark_classes = (_SPARK + "RobustScalerModel",)

    def __init__(self, meta: StageMeta) -> None:
        _VectorMap.__init__(self, meta)
        row = read_data(meta.path).to_pylist()[0]
        rng = dense_vector(row["range"])
        self.mean = dense_vector(row["median"])
        self.std = rng
        self.size = len(rng)
        self.with_mean = bool(param_or(meta, "withCentering", False))
        self.with_std = bool(param_or(meta, "withScaling", True))
        with np.errstate(divide="ignore"):
            self.scale = np.where(rng == 0, 0.0, 1.0 / rng)
        self.scale_list = self.scale.tolist()
        self.mean_list = self.mean.tolist()


def _poly_size(features: int, degree: int) -> int:
    """Terms of a polynomial of ``degree`` in ``features`` variables, the constant included."""
    return math.comb(features + degree, degree)


@register
class PolynomialExpansion(_VectorMap):
    """Every product of up to ``degree`` features (the constant left out), in Spark's order."""

    spark_classes = (_SPARK + "PolynomialExpansion",)

    def __init__(self, meta: StageMeta) -> None:
        super().__init__(meta)
        self.degree = int(param_or(meta, "degree", 2))
        if self.degree < 1:
            raise ModelLoadError(f"{meta.path}: PolynomialExpansion degree must be >= 1, got {self.degree}")
        self.in_size: int | None = None

    def setup(self, schema: Schema) -> None:
        info = schema.get(self.in_col)
        self.in_size = info.size if info is not None else None
        self.size = _poly_size(self.in_size, self.degree) - 1 if self.in_size is not None else None
        schema[self.out_col] = ColumnInfo("vector", self.size)

    def input_spec(self, column: str) -> tuple[str, tuple[int, ...]]:
        return "FP64", (-1, self.in_size or -1)

    def _expand(self, x: Any, last: int, degree: int, mult: Any, at: int, out: Any, zero: Any, step: Any) -> int:
        """Spark's recursion: write the terms of features ``0..last`` up to ``degree`` times ``mult``."""
        if degree == 0 or last < 0:
            if at >= 0:
                out[at] = zero(mult)
        else:
            v = x[last]  # Spark's sparse path skips unstored zeros; ``step`` knows which they are
            alpha = mult
            start = at
            for i in range(degree + 1):
                start = self._expand(x, last - 1, degree - i, alpha, start, out, zero, step)
                if i < degree:
                    alpha = step(alpha, v, last)
        return at + _poly_size(last + 1, degree)

    def transform(self, frame: Frame) -> None:
        value = frame[self.in_col]
        x = to_dense(value)
        n, d = x.shape
        if self.in_size is not None and d != self.in_size:
            raise invalid(self.meta.short_class, self.in_col, f"vector of size {d}, expected {self.in_size}")
        size = _poly_size(d, self.degree) - 1
        out = np.zeros((size, n), dtype=np.float64)
        cols = np.ascontiguousarray(x.T)

        def zero(a: np.ndarray) -> np.ndarray:
            return np.where(a == 0, 0.0, a)

        unstored = None
        if sp.issparse(value):
            stored = sp.csr_matrix(value, copy=True)
            stored.data = np.ones_like(stored.data)
            unstored = np.ascontiguousarray(stored.toarray().T == 0)

        def step(a: np.ndarray, v: np.ndarray, j: int) -> np.ndarray:
            # Spark stops multiplying once the product is 0; a sparse vector's unstored zeros end it too
            stop = a == 0 if unstored is None else (a == 0) | unstored[j]
            return np.where(stop, 0.0, a * v)

        with np.errstate(invalid="ignore", over="ignore"):
            self._expand(cols, d - 1, self.degree, np.ones(n), -1, out, zero, step)
        result = np.ascontiguousarray(out.T)
        frame[self.out_col] = sp.csr_matrix(result) if sp.issparse(value) and n * size > (1 << 16) else result

    def row(self, values: dict[str, Any]) -> bool:
        v = values[self.in_col]
        if not isinstance(v, VECTOR_TYPES) or (self.in_size is not None and row_size(v) != self.in_size):
            return False
        x = row_dense(v)
        out = [0.0] * (_poly_size(len(x), self.degree) - 1)

        def zero(a: float) -> float:
            return 0.0 if a == 0 else a

        stored = set(v.indices) if isinstance(v, SparseRow) else None

        def step(a: float, f: float, j: int) -> float:
            return 0.0 if a == 0 or (stored is not None and j not in stored) else a * f

        self._expand(x, len(x) - 1, self.degree, 1.0, -1, out, zero, step)
        values[self.out_col] = out
        return True

    def describe(self) -> str:
        return f"PolynomialExpansion({self.in_col} -> {self.out_col}; degree {self.degree})"


@register
class DCT(_VectorMap):
    """Orthonormal DCT-II of each vector (``inverse``: its inverse, DCT-III); output dense, same size."""

    spark_classes = (_SPARK + "DCT",)

    def __init__(self, meta: StageMeta) -> None:
        super().__init__(meta)
        self.inverse = bool(param_or(meta, "inverse", False))

    def _apply(self, x: np.ndarray) -> np.ndarray:
        import scipy.fft

        if x.shape[1] == 0:
            return x.copy()
        fn = scipy.fft.idct if self.inverse else scipy.fft.dct
        out: np.ndarray = fn(x, type=2, norm="ortho", axis=1)
        return out

    def transform(self, frame: Frame) -> None:
        frame[self.out_col] = self._apply(to_dense(self._input(frame)))

    def row(self, values: dict[str, Any]) -> bool:
        x = self.row_input(values)
        if x is None:
            return False
        values[self.out_col] = self._apply(np.array([row_dense(x)], dtype=np.float64))[0].tolist()
        return True

    def describe(self) -> str:
        return f"DCT({self.in_col} -> {self.out_col}{'; inverse' if self.inverse else ''})"
