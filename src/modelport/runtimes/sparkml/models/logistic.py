"""LogisticRegressionModel, binomial and multinomial (``ml/classification/LogisticRegression.scala``).

Binomial: margin ``m = x·β + b``, raw ``[-m, m]``, probability the element-wise sigmoid
of raw; the prediction compares with ``getThreshold`` (``threshold``, or
``1 / (1 + t0/t1)`` when ``thresholds`` is set): ``raw[1] > ln(t/(1-t))`` from raw,
``p1 > t`` from probability. Multinomial (also ``family="multinomial"`` with two
classes): raw = ``B·x + b``; softmax subtracts the largest margin only when it is
positive, and scales by the reciprocal of the sum; the prediction is the generic one.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from modelport.core.errors import ModelLoadError
from modelport.runtimes.sparkml.models._base import first_row, row_argmax, spark_argmax
from modelport.runtimes.sparkml.models._classifier import ProbabilisticClassifierStage
from modelport.runtimes.sparkml.reader import StageMeta, dense_vector, matrix
from modelport.runtimes.sparkml.stage import register
from modelport.runtimes.sparkml.vectors import RowVector, row_dot, safe_exp

__all__ = ["LogisticRegressionModel"]


@register
class LogisticRegressionModel(ProbabilisticClassifierStage):
    spark_classes = ("org.apache.spark.ml.classification.LogisticRegressionModel",)

    def __init__(self, meta: StageMeta) -> None:
        super().__init__(meta)
        row = first_row(meta)
        try:
            self.num_classes = int(row["numClasses"])
            self.num_features = int(row["numFeatures"])
            if "coefficientMatrix" in row:  # Spark >= 2.1
                coef = matrix(row["coefficientMatrix"])
                intercept = dense_vector(row["interceptVector"])
                self.multinomial = bool(row["isMultinomial"])
            else:  # Spark <= 2.0: one binomial coefficient vector
                coef = dense_vector(row["coefficients"]).reshape(1, -1)
                intercept = np.array([float(row["intercept"])])
                self.multinomial = False
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelLoadError(f"{meta.path}: unreadable LogisticRegressionModel data ({exc!r})") from None
        rows_expected = self.num_classes if self.multinomial else 1
        if coef.shape != (rows_expected, self.num_features) or intercept.shape != (rows_expected,):
            raise ModelLoadError(
                f"{meta.path}: LogisticRegressionModel coefficients {coef.shape} / intercepts {intercept.shape} "
                f"do not fit {self.num_classes} classes x {self.num_features} features"
            )
        self.coef = np.ascontiguousarray(coef)
        self.coef_t = np.ascontiguousarray(coef.T)
        self.intercept = intercept
        if not self.multinomial:
            self.beta = np.ascontiguousarray(coef[0])
            self.b = float(intercept[0])
        self.check_thresholds()
        self.threshold = self._threshold(meta) if not self.multinomial else math.nan
        # The row path's copies: plain lists, and the binomial cut on the margin.
        self.coef_rows: list[list[float]] = self.coef.tolist()
        self.intercepts: list[float] = self.intercept.tolist()
        t = self.threshold
        cols = (self.col("rawPredictionCol"), self.col("probabilityCol"), self.col("predictionCol"))
        self.all_cols = cols if all(cols) else None
        self.cut = -math.inf if t == 0.0 else math.inf if t == 1.0 else math.log(t / (1.0 - t)) if t == t else math.nan

    def _threshold(self, meta: StageMeta) -> float:
        """Spark's ``getThreshold``, including ``checkThresholdConsistency``."""
        explicit = meta.raw.get("paramMap") or {}
        threshold = float(meta.get("threshold", 0.5))
        if "thresholds" not in explicit or self.thresholds is None:
            return threshold
        ts = self.thresholds
        if len(ts) != 2:
            raise ModelLoadError(f"{meta.path}: binomial LogisticRegressionModel needs 2 thresholds, got {ts.tolist()}")
        with np.errstate(divide="ignore"):
            equivalent = float(1.0 / (1.0 + np.float64(ts[0]) / np.float64(ts[1])))
        if "threshold" in explicit and abs(equivalent - threshold) >= 1e-5:
            raise ModelLoadError(
                f"{meta.path}: LogisticRegressionModel threshold {threshold} and thresholds {ts.tolist()} "
                "disagree (Spark rejects this model at transform time)"
            )
        return equivalent

    def margin(self, x: Any) -> np.ndarray:
        return np.asarray(x @ self.beta, dtype=np.float64) + self.b

    def predict_raw(self, x: Any) -> np.ndarray:
        if self.multinomial:
            return np.asarray(x @ self.coef_t, dtype=np.float64) + self.intercept
        m = self.margin(x)
        return np.stack([-m, m], axis=1)

    def raw_to_probability(self, raw: np.ndarray) -> np.ndarray:
        with np.errstate(over="ignore"):
            if not self.multinomial:
                return 1.0 / (1.0 + np.exp(-raw))
            if raw.shape[0] == 0:
                return raw.copy()
            if np.isnan(raw).any():  # Spark's argmax skips NaN unless it is entry 0
                idx = spark_argmax(raw)
                top = raw[np.arange(raw.shape[0]), idx]
            else:
                top = raw.max(axis=1)
            e = np.exp(raw - np.maximum(top, 0.0)[:, None])  # subtract the max margin only when it is > 0
            prob = e * (1.0 / e.sum(axis=1))[:, None]
            inf = top == np.inf
            if inf.any():
                idx = spark_argmax(raw)
                prob[inf] = 0.0
                prob[np.flatnonzero(inf), idx[inf]] = 1.0
            return prob

    def row(self, values: dict[str, Any]) -> bool:
        if not self.all_cols or (self.multinomial and self.thresholds is not None):
            return super().row(values)
        # all three outputs (the usual case), inline: the same steps as the generic flow
        x = self.row_features(values)
        if x is None:
            return False
        raw_col, prob_col, pred_col = self.all_cols
        if self.multinomial:
            raw = [row_dot(x, w) + b for w, b in zip(self.coef_rows, self.intercepts, strict=True)]
            values[raw_col] = raw
            if any(map(math.isnan, raw)):
                values[prob_col] = self.prob_row(raw)
                values[pred_col] = float(row_argmax(raw))
                return True
            top = max(raw)  # no NaN: the max, and index() finds its first position as argmax does
            e = [safe_exp(r - top) for r in raw] if top > 0.0 else [safe_exp(r) for r in raw]
            if top == math.inf:
                values[prob_col] = self.prob_row(raw)
            else:
                inv = 1.0 / sum(e)
                values[prob_col] = [v * inv for v in e]
            values[pred_col] = float(raw.index(top))
            return True
        m = row_dot(x, self.coef_rows[0]) + self.b
        values[raw_col] = [-m, m]
        values[prob_col] = [1.0 / (1.0 + safe_exp(m)), 1.0 / (1.0 + safe_exp(-m))]
        values[pred_col] = 1.0 if m > self.cut else 0.0
        return True

    def raw_row(self, x: RowVector) -> list[float]:
        if self.multinomial:
            return [row_dot(x, w) + b for w, b in zip(self.coef_rows, self.intercepts, strict=True)]
        m = row_dot(x, self.coef_rows[0]) + self.b
        return [-m, m]

    def prob_row(self, raw: list[float]) -> list[float]:
        if not self.multinomial:
            return [1.0 / (1.0 + safe_exp(-r)) for r in raw]
        top = raw[row_argmax(raw)]  # the max, or raw[0] when that is NaN (as the frame path picks it)
        shift = top if top != top or top > 0.0 else 0.0
        e = [safe_exp(r - shift) for r in raw]
        inv = 1.0 / sum(e)
        if top == math.inf:
            prob = [0.0] * len(raw)
            prob[row_argmax(raw)] = 1.0
            return prob
        return [v * inv for v in e]

    def raw_to_prediction_row(self, raw: list[float]) -> float:
        if self.multinomial:
            return super().raw_to_prediction_row(raw)
        return 1.0 if raw[1] > self.cut else 0.0

    def probability_to_prediction_row(self, prob: list[float]) -> float:
        if self.multinomial:
            return super().probability_to_prediction_row(prob)
        return 1.0 if prob[1] > self.threshold else 0.0

    def predict_row(self, x: RowVector) -> float:
        if self.multinomial:
            return super().predict_row(x)
        score = 1.0 / (1.0 + safe_exp(-(row_dot(x, self.coef_rows[0]) + self.b)))
        return 1.0 if score > self.threshold else 0.0

    def _binomial_from_raw(self, raw: np.ndarray) -> np.ndarray:
        t = self.threshold
        cut = -math.inf if t == 0.0 else math.inf if t == 1.0 else math.log(t / (1.0 - t))
        return (raw[:, 1] > cut).astype(np.float64)

    def raw_to_prediction(self, raw: np.ndarray) -> np.ndarray:
        if self.multinomial:
            return super().raw_to_prediction(raw)
        return self._binomial_from_raw(raw)

    def probability_to_prediction(self, prob: np.ndarray) -> np.ndarray:
        if self.multinomial:
            return super().probability_to_prediction(prob)
        return (prob[:, 1] > self.threshold).astype(np.float64)

    def predict(self, x: Any) -> np.ndarray:
        if self.multinomial:
            return super().predict(x)
        with np.errstate(over="ignore"):
            score = 1.0 / (1.0 + np.exp(-self.margin(x)))
        return (score > self.threshold).astype(np.float64)

    def summary(self) -> str:
        kind = "multinomial" if self.multinomial else f"binomial, threshold {self.threshold:g}"
        return f"{kind}, " + super().summary()
