"""Factorization machines: FMRegressionModel and FMClassificationModel (``ml/regression/FMRegressor.scala``).

The model score is ``y = b + w·x + ½ Σ_f ((Σ_i v_if x_i)² − Σ_i (v_if x_i)²)`` over the saved
``intercept``, ``linear`` vector and ``factors`` matrix (numFeatures × factorSize). The regressor
predicts ``y``; the classifier's raw prediction is ``[-y, y]``, probability ``p1 = 1/(1+e^-y)``,
``p0 = 1 − p1``, and the prediction is the generic probabilistic one (argmax or thresholds).
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp

from modelport.core.errors import ModelLoadError
from modelport.runtimes.sparkml.models._base import PredictorStage, first_row
from modelport.runtimes.sparkml.models._classifier import ProbabilisticClassifierStage
from modelport.runtimes.sparkml.reader import StageMeta, dense_vector, matrix
from modelport.runtimes.sparkml.stage import Frame, register
from modelport.runtimes.sparkml.vectors import RowVector, SparseRow, row_dot, safe_exp

__all__ = ["FMClassificationModel", "FMRegressionModel"]


class _FM:
    """The saved weights and the FM score, shared by the regressor and the classifier."""

    intercept: float
    linear: np.ndarray
    factors: np.ndarray
    linear_list: list[float]
    factor_rows: list[list[float]]

    def load_fm(self, meta: StageMeta) -> int:
        row = first_row(meta)
        try:
            self.intercept = float(row["intercept"])
            self.linear = dense_vector(row["linear"])
            self.factors = matrix(row["factors"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelLoadError(f"{meta.path}: unreadable {meta.short_class} data ({exc!r})") from None
        if self.factors.shape[0] != len(self.linear):
            raise ModelLoadError(
                f"{meta.path}: {meta.short_class} factors have {self.factors.shape[0]} rows "
                f"for {len(self.linear)} features"
            )
        self.linear_list = self.linear.tolist()
        self.factor_rows = self.factors.tolist()
        return len(self.linear)

    def score(self, x: Any) -> np.ndarray:
        if sp.issparse(x):
            linear = np.asarray(x @ self.linear).ravel()
            vx = np.asarray(x @ self.factors)
            sq = np.asarray(x.multiply(x) @ (self.factors * self.factors))
        else:
            linear = x @ self.linear
            vx = x @ self.factors
            sq = (x * x) @ (self.factors * self.factors)
        out: np.ndarray = self.intercept + linear + 0.5 * (vx * vx - sq).sum(axis=1)
        return out

    def score_row(self, x: RowVector) -> float:
        k = self.factors.shape[1]
        sums = [0.0] * k
        squares = [0.0] * k
        pairs = zip(x.indices, x.values, strict=True) if isinstance(x, SparseRow) else enumerate(x)
        for i, v in pairs:
            if v == 0.0:
                continue
            for f, w in enumerate(self.factor_rows[i]):
                vx = w * v
                sums[f] += vx
                squares[f] += vx * vx
        y = self.intercept + row_dot(x, self.linear_list)
        for s, q in zip(sums, squares, strict=True):
            y += 0.5 * (s * s - q)
        return y


@register
class FMRegressionModel(_FM, PredictorStage):
    spark_classes = ("org.apache.spark.ml.regression.FMRegressionModel",)

    def __init__(self, meta: StageMeta) -> None:
        super().__init__(meta)
        self.num_features = self.load_fm(meta)

    def transform(self, frame: Frame) -> None:
        col = self.col("predictionCol")
        if col:
            frame[col] = self.score(self.features(frame))

    def row(self, values: dict[str, Any]) -> bool:
        x = self.row_features(values)
        if x is None:
            return False
        col = self.col("predictionCol")
        if col:
            values[col] = self.score_row(x)
        return True

    def summary(self) -> str:
        return f"{self.num_features} features, {self.factors.shape[1]} factors"


@register
class FMClassificationModel(_FM, ProbabilisticClassifierStage):
    spark_classes = ("org.apache.spark.ml.classification.FMClassificationModel",)
    vector_params: ClassVar[frozenset[str]] = frozenset({"rawPredictionCol", "probabilityCol"})

    def __init__(self, meta: StageMeta) -> None:
        super().__init__(meta)
        self.num_features = self.load_fm(meta)
        self.num_classes = 2
        self.check_thresholds()

    def predict_raw(self, x: Any) -> np.ndarray:
        y = self.score(x)
        return np.stack([-y, y], axis=1)

    def raw_to_probability(self, raw: np.ndarray) -> np.ndarray:
        with np.errstate(over="ignore"):
            p1 = 1.0 / (1.0 + np.exp(-raw[:, 1]))
        return np.stack([1.0 - p1, p1], axis=1)

    def raw_row(self, x: RowVector) -> list[float]:
        y = self.score_row(x)
        return [-y, y]

    def prob_row(self, raw: list[float]) -> list[float]:
        p1 = 1.0 / (1.0 + safe_exp(-raw[1]))
        return [1.0 - p1, p1]

    def summary(self) -> str:
        return super().summary() + f", {self.factors.shape[1]} factors"
