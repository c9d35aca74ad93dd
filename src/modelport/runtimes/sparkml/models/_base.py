"""What every predictor shares: reading the features column and naming its outputs.

Spark's ``PredictionModel`` reads one vector column (``featuresCol``) and appends
columns whose names come from ``*Col`` params; a column whose param is the empty
string is not produced. Features reach a stage as a dense ``(rows, size)`` float64
array or a ``scipy.sparse`` CSR matrix; both are accepted everywhere.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp

from modelport.core.errors import InvalidInput, ModelLoadError
from modelport.runtimes.sparkml.reader import StageMeta
from modelport.runtimes.sparkml.stage import Frame, Stage
from modelport.runtimes.sparkml.vectors import VECTOR_TYPES, RowVector, row_size

__all__ = ["PredictorStage", "first_row", "row_argmax", "spark_argmax"]


def first_row(meta: StageMeta, sub: str = "data") -> dict[str, Any]:
    """The single row a linear model saves in ``data/``."""
    from modelport.runtimes.sparkml.reader import read_data

    table = read_data(meta.path, sub)
    if table.num_rows < 1:
        raise ModelLoadError(f"{meta.path}: {meta.short_class} data/ has no rows")
    row: dict[str, Any] = table.slice(0, 1).to_pylist()[0]
    return row


def spark_argmax(values: np.ndarray) -> np.ndarray:
    """Row-wise ``Vector.argmax``: the first maximum; NaN never wins unless it is entry 0."""
    if values.shape[1] == 0:
        return np.full(values.shape[0], -1, dtype=np.int64)
    nan = np.isnan(values)
    if not nan.any():
        return np.argmax(values, axis=1)
    clean = np.where(nan, -np.inf, values)
    out = np.argmax(clean, axis=1)
    # Spark starts from entry 0 and only moves on a strict '>', so a NaN first entry never loses.
    out[nan[:, 0]] = 0
    return out


def row_argmax(values: list[float]) -> int:
    """:func:`spark_argmax` for one row: the first maximum, moving on only on a strict '>' (NaN never wins)."""
    if not values:
        return -1
    best, top = 0, values[0]
    for i in range(1, len(values)):
        v = values[i]
        if v > top:
            best, top = i, v
    return best


class PredictorStage(Stage):
    """A stage that reads ``featuresCol`` and writes prediction-like columns."""

    #: ``*Col`` params this stage may write, with their Spark defaults, in output order.
    output_params: ClassVar[tuple[tuple[str, str], ...]] = (("predictionCol", "prediction"),)
    #: ``*Col`` params whose columns are vectors of length ``vector_size``.
    vector_params: ClassVar[frozenset[str]] = frozenset()

    num_features: int = -1
    vector_size: int = -1

    def __init__(self, meta: StageMeta) -> None:
        super().__init__(meta)
        self.features_col: str = str(meta.get("featuresCol") or "features")
        self.cols: dict[str, str] = {
            param: str(meta.get(param, default) or "") for param, default in self.output_params
        }

    def col(self, param: str) -> str:
        """The output column name for ``param`` ('' when Spark would not write it)."""
        return self.cols.get(param, "")

    @property
    def inputs(self) -> list[str]:
        return [self.features_col]

    @property
    def outputs(self) -> list[str]:
        return [name for name in self.cols.values() if name]

    def input_datatype(self, column: str) -> str:
        return "FP64"

    def input_spec(self, column: str) -> tuple[str, tuple[int, ...]]:
        """How a pipeline source column read by this stage is typed: features are ``(-1, numFeatures)``."""
        if column == self.features_col:
            return "FP64", (-1, self.num_features if self.num_features >= 0 else -1)
        return "FP64", (-1,)

    def output_spec(self, column: str) -> tuple[str, tuple[int, ...]]:
        for param, name in self.cols.items():
            if name == column and param in self.vector_params:
                return "FP64", (-1, self.vector_size)
        return "FP64", (-1,)

    def features(self, frame: Frame) -> Any:
        """The features column as float64 (dense ndarray or CSR), checked against ``numFeatures``."""
        name = self.features_col
        if name not in frame:
            raise InvalidInput(f"{self.meta.short_class} {self.meta.uid}: input column '{name}' is missing")
        x = frame[name]
        if sp.issparse(x):
            x = sp.csr_matrix(x, dtype=np.float64) if x.format != "csr" or x.dtype != np.float64 else x
        else:
            x = np.asarray(x)
            if x.ndim != 2:
                raise InvalidInput(
                    f"{self.meta.short_class} {self.meta.uid}: column '{name}' must be a vector column "
                    f"(rows, size), got shape {x.shape}"
                )
            if x.dtype != np.float64:
                try:
                    x = x.astype(np.float64)
                except (TypeError, ValueError):
                    raise InvalidInput(
                        f"{self.meta.short_class} {self.meta.uid}: column '{name}' must hold numbers, got {x.dtype}"
                    ) from None
        if self.num_features >= 0 and x.shape[1] != self.num_features:
            raise InvalidInput(
                f"{self.meta.short_class} {self.meta.uid}: column '{name}' has vectors of size {x.shape[1]}, "
                f"the model expects {self.num_features}"
            )
        return x

    def row_features(self, values: dict[str, Any]) -> RowVector | None:
        """The features of one row, or None when the frame path must judge them (missing, not a vector, wrong size)."""
        x = values.get(self.features_col)
        if not isinstance(x, VECTOR_TYPES):
            return None
        if self.num_features >= 0 and row_size(x) != self.num_features:
            return None
        return x

    def summary(self) -> str:
        """Model-specific details for :meth:`describe` (family, sizes, thresholds)."""
        return f"{self.num_features} features"

    def describe(self) -> str:
        outs = ", ".join(self.outputs) or "no outputs"
        return f"{self.meta.short_class}({self.features_col} -> {outs}; {self.summary()})"
