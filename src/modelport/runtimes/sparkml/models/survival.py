"""AFTSurvivalRegressionModel and IsotonicRegressionModel (``ml/regression/``).

AFT: ``prediction = exp(β·x + b)``; ``quantiles = prediction · exp(log(−log1p(−q)) · scale)`` for each
``quantileProbabilities`` q, written only when ``quantilesCol`` is set.

Isotonic (``mllib/regression/IsotonicRegression.scala``): the feature (``featuresCol[featureIndex]``
for a vector column, the column itself for a number column) is located in ``boundaries`` with
Java's ``Arrays.binarySearch`` (its probe order decides which of equal boundaries is found, and
``Double.compare`` orders NaN last); an exact hit returns that prediction, below/above the range the
first/last prediction, otherwise the linear interpolation between the neighbours.
"""

from __future__ import annotations

import bisect
import math
from typing import Any, ClassVar

import numpy as np

from modelport.core.errors import InvalidInput, ModelLoadError
from modelport.runtimes.sparkml.models._base import PredictorStage, first_row
from modelport.runtimes.sparkml.reader import StageMeta, dense_vector
from modelport.runtimes.sparkml.stage import ColumnInfo, Frame, Schema, register
from modelport.runtimes.sparkml.vectors import NUMBER_TYPES, VECTOR_TYPES, row_dense, row_dot, safe_exp

__all__ = ["AFTSurvivalRegressionModel", "IsotonicRegressionModel"]


@register
class AFTSurvivalRegressionModel(PredictorStage):
    spark_classes = ("org.apache.spark.ml.regression.AFTSurvivalRegressionModel",)
    output_params: ClassVar[tuple[tuple[str, str], ...]] = (("predictionCol", "prediction"), ("quantilesCol", ""))
    vector_params = frozenset({"quantilesCol"})

    def __init__(self, meta: StageMeta) -> None:
        super().__init__(meta)
        row = first_row(meta)
        try:
            self.coef = dense_vector(row["coefficients"])
            self.intercept = float(row["intercept"])
            self.scale = float(row["scale"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelLoadError(f"{meta.path}: unreadable AFTSurvivalRegressionModel data ({exc!r})") from None
        self.num_features = len(self.coef)
        self.coef_list: list[float] = self.coef.tolist()
        probs = [float(q) for q in (meta.get("quantileProbabilities") or [])]
        self.quantile_factors = np.array([math.exp(math.log(-math.log1p(-q)) * self.scale) for q in probs])
        self.factor_list: list[float] = self.quantile_factors.tolist()
        self.vector_size = len(probs)

    def _lambda(self, x: Any) -> np.ndarray:
        margin = np.asarray(x @ self.coef).ravel() + self.intercept
        with np.errstate(over="ignore"):
            out: np.ndarray = np.exp(margin)
        return out

    def transform(self, frame: Frame) -> None:
        lam = self._lambda(self.features(frame))
        if self.col("predictionCol"):
            frame[self.col("predictionCol")] = lam
        if self.col("quantilesCol"):
            frame[self.col("quantilesCol")] = lam[:, None] * self.quantile_factors[None, :]

    def row(self, values: dict[str, Any]) -> bool:
        x = self.row_features(values)
        if x is None:
            return False
        lam = safe_exp(row_dot(x, self.coef_list) + self.intercept)
        if self.col("predictionCol"):
            values[self.col("predictionCol")] = lam
        if self.col("quantilesCol"):
            values[self.col("quantilesCol")] = [lam * f for f in self.factor_list]
        return True

    def summary(self) -> str:
        return f"{self.num_features} features, scale {self.scale:.6g}"


def _java_search(keys: np.ndarray, x: np.ndarray) -> np.ndarray:
    """``java.util.Arrays.binarySearch(keys, x)`` for each x: the found index or ``-(insertion point) - 1``.

    Keys and probes are compared as ``Double.compare`` does (NaN above everything, -0.0 below 0.0).
    """

    def order(a: np.ndarray) -> np.ndarray:
        # Double.compare's total order as int64 keys: the IEEE bits, negatives reflected below zero
        a = np.where(np.isnan(a), np.nan, a)  # one canonical NaN, the largest key
        bits = a.view(np.int64)
        return np.where(bits < 0, np.int64(-0x8000000000000000) - bits - 1, bits)

    k, v = order(np.asarray(keys, dtype=np.float64)), order(np.asarray(x, dtype=np.float64))
    low = np.zeros(len(v), dtype=np.int64)
    high = np.full(len(v), len(k) - 1, dtype=np.int64)
    found = np.full(len(v), -1, dtype=np.int64)
    active = low <= high
    while active.any():
        mid = (low + high) >> 1
        km = k[np.clip(mid, 0, len(k) - 1)]
        less, more = km < v, km > v
        hit = active & ~less & ~more
        found[hit] = mid[hit]
        low = np.where(active & less, mid + 1, low)
        high = np.where(active & more, mid - 1, high)
        active = active & ~hit & (low <= high)
    return np.where(found >= 0, found, -low - 1)


@register
class IsotonicRegressionModel(PredictorStage):
    spark_classes = ("org.apache.spark.ml.regression.IsotonicRegressionModel",)

    def __init__(self, meta: StageMeta) -> None:
        super().__init__(meta)
        row = first_row(meta)
        try:
            self.boundaries = np.asarray(row["boundaries"], dtype=np.float64)
            self.predictions = np.asarray(row["predictions"], dtype=np.float64)
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelLoadError(f"{meta.path}: unreadable IsotonicRegressionModel data ({exc!r})") from None
        if len(self.boundaries) != len(self.predictions) or not len(self.boundaries):
            raise ModelLoadError(f"{meta.path}: IsotonicRegressionModel boundaries and predictions do not match")
        self.feature_index = int(meta.get("featureIndex", 0) or 0)
        self.vector_input = True
        self.b_list: list[float] = self.boundaries.tolist()
        self.p_list: list[float] = self.predictions.tolist()

    def setup(self, schema: Schema) -> None:
        info = schema.get(self.features_col)
        if info is not None:
            self.vector_input = info.kind == "vector"
        for col in self.outputs:
            schema[col] = ColumnInfo("number")

    def input_spec(self, column: str) -> tuple[str, tuple[int, ...]]:
        # Spark reads a number or a vector column here and the save does not say which: a pipeline input
        # named "features" (the default) is taken as a vector, any other name as a number column.
        return ("FP64", (-1, -1)) if column == "features" else ("FP64", (-1,))

    def _feature(self, frame: Frame) -> np.ndarray:
        col = frame[self.features_col]
        if getattr(col, "ndim", 1) == 1:
            return np.asarray(col, dtype=np.float64)
        if col.shape[1] <= self.feature_index:
            raise InvalidInput(
                f"IsotonicRegressionModel {self.meta.uid}: column '{self.features_col}' has vectors of size "
                f"{col.shape[1]}; featureIndex is {self.feature_index}"
            )
        return np.asarray(
            col[:, self.feature_index].toarray() if hasattr(col, "toarray") else col[:, self.feature_index],
            dtype=np.float64,
        ).ravel()

    def predict_values(self, x: np.ndarray) -> np.ndarray:
        b, p = self.boundaries, self.predictions
        found = _java_search(b, x)
        insert = -found - 1
        out = np.empty(len(x), dtype=np.float64)
        exact = found >= 0
        out[exact] = p[found[exact]]
        low = ~exact & (insert == 0)
        high = ~exact & (insert == len(b))
        mid = ~exact & ~low & ~high
        out[low] = p[0]
        out[high] = p[-1]
        i = insert[mid]
        x1, y1, x2, y2 = b[i - 1], p[i - 1], b[i], p[i]
        out[mid] = y1 + (y2 - y1) * (x[mid] - x1) / (x2 - x1)
        return out

    def transform(self, frame: Frame) -> None:
        col = self.col("predictionCol")
        if col:
            frame[col] = self.predict_values(self._feature(frame))

    def row(self, values: dict[str, Any]) -> bool:
        v = values.get(self.features_col)
        if isinstance(v, VECTOR_TYPES):
            dense = row_dense(v)
            if len(dense) <= self.feature_index:
                return False
            x = float(dense[self.feature_index])
        elif isinstance(v, NUMBER_TYPES):
            x = float(v)
        else:
            return False
        if x != x or x == 0.0 or x in self.b_list:
            return False  # NaN, signed zeros and exact hits: the frame path's Java search decides
        i = bisect.bisect_left(self.b_list, x)
        col = self.col("predictionCol")
        if col:
            b, p = self.b_list, self.p_list
            if i == 0:
                values[col] = p[0]
            elif i == len(b):
                values[col] = p[-1]
            else:
                values[col] = p[i - 1] + (p[i] - p[i - 1]) * (x - b[i - 1]) / (b[i] - b[i - 1])
        return True

    def summary(self) -> str:
        return f"{len(self.boundaries)} boundaries, feature {self.feature_index}"
