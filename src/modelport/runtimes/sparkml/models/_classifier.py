"""Spark's ClassificationModel / ProbabilisticClassificationModel output logic.

``transform`` mirrors Spark: ``rawPrediction`` from the features; ``probability``
from the raw column when it is produced, else from the features; ``prediction``
from the raw column when produced (``raw2prediction``), else from the probability
(``probability2prediction``), else straight from the features (``predict``). Without
``thresholds`` the prediction is the first argmax; with them, the first index whose
``p / t`` beats every earlier one, starting from -inf: a zero threshold scores +inf, but
0/0 is NaN, so a zero-probability class with a zero threshold is never chosen.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numpy as np

from modelport.core.errors import ModelLoadError
from modelport.runtimes.sparkml.models._base import PredictorStage, row_argmax, spark_argmax
from modelport.runtimes.sparkml.reader import StageMeta
from modelport.runtimes.sparkml.stage import Frame, RowStep
from modelport.runtimes.sparkml.vectors import RowVector

__all__ = ["ClassifierStage", "ProbabilisticClassifierStage"]


class ClassifierStage(PredictorStage):
    """``ClassificationModel``: rawPrediction and prediction."""

    output_params: ClassVar[tuple[tuple[str, str], ...]] = (
        ("rawPredictionCol", "rawPrediction"),
        ("predictionCol", "prediction"),
    )
    vector_params = frozenset({"rawPredictionCol", "probabilityCol"})
    probabilistic: ClassVar[bool] = False

    num_classes: int = 2

    def __init__(self, meta: StageMeta) -> None:
        super().__init__(meta)
        thresholds = meta.get("thresholds")
        self.thresholds: np.ndarray | None = None
        if self.probabilistic and thresholds is not None:
            self.thresholds = np.asarray(thresholds, dtype=np.float64)

    def check_thresholds(self) -> None:
        """Call once ``num_classes`` is known; Spark refuses a mismatch at transform time."""
        self.vector_size = self.num_classes
        if self.thresholds is not None and len(self.thresholds) != self.num_classes:
            raise ModelLoadError(
                f"{self.meta.path}: {self.meta.short_class} has {len(self.thresholds)} thresholds "
                f"but {self.num_classes} classes"
            )

    # --- the model-specific parts -------------------------------------------------
    def predict_raw(self, x: Any) -> np.ndarray:
        """``(rows, numClasses)`` raw scores."""
        raise NotImplementedError

    def raw_to_prediction(self, raw: np.ndarray) -> np.ndarray:
        return spark_argmax(raw).astype(np.float64)

    def predict(self, x: Any) -> np.ndarray:
        """Spark's ``predict(features)``, used when neither raw nor probability is output."""
        return self.raw_to_prediction(self.predict_raw(x))

    # --- Spark's transform --------------------------------------------------------
    def transform(self, frame: Frame) -> None:
        x = self.features(frame)
        raw_col, pred_col = self.col("rawPredictionCol"), self.col("predictionCol")
        raw = None
        if raw_col:
            raw = self.predict_raw(x)
            frame[raw_col] = raw
        if pred_col:
            frame[pred_col] = self.raw_to_prediction(raw) if raw is not None else self.predict(x)

    # --- one row (the pipeline's row path): the same steps on plain lists ---------
    def raw_row(self, x: RowVector) -> list[float]:
        """:meth:`predict_raw` for one row."""
        raise NotImplementedError

    def raw_to_prediction_row(self, raw: list[float]) -> float:
        return float(row_argmax(raw))

    def predict_row(self, x: RowVector) -> float:
        return self.raw_to_prediction_row(self.raw_row(x))

    def row_step(self) -> RowStep | None:
        return None if type(self).raw_row is ClassifierStage.raw_row else self.row

    def row(self, values: dict[str, Any]) -> bool:
        x = self.row_features(values)
        if x is None:
            return False
        raw_col, pred_col = self.col("rawPredictionCol"), self.col("predictionCol")
        raw = None
        if raw_col:
            raw = self.raw_row(x)
            values[raw_col] = raw
        if pred_col:
            values[pred_col] = self.raw_to_prediction_row(raw) if raw is not None else self.predict_row(x)
        return True

    def summary(self) -> str:
        return f"{self.num_features} features, {self.num_classes} classes"


class ProbabilisticClassifierStage(ClassifierStage):
    """``ProbabilisticClassificationModel``: rawPrediction, probability, prediction."""

    output_params = (
        ("rawPredictionCol", "rawPrediction"),
        ("probabilityCol", "probability"),
        ("predictionCol", "prediction"),
    )
    probabilistic = True

    def raw_to_probability(self, raw: np.ndarray) -> np.ndarray:
        """A new array of class probabilities (``raw`` is left alone)."""
        raise NotImplementedError

    def raw_to_prediction(self, raw: np.ndarray) -> np.ndarray:
        if self.thresholds is None:
            return spark_argmax(raw).astype(np.float64)
        return self.probability_to_prediction(self.raw_to_probability(raw))

    def probability_to_prediction(self, prob: np.ndarray) -> np.ndarray:
        if self.thresholds is None:
            return spark_argmax(prob).astype(np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            scaled = prob / self.thresholds
        # Spark's loop starts from max = -inf and moves on a strict '>': NaN never wins, all-NaN gives 0.
        return np.argmax(np.where(np.isnan(scaled), -np.inf, scaled), axis=1).astype(np.float64)

    def prob_row(self, raw: list[float]) -> list[float]:
        """:meth:`raw_to_probability` for one row."""
        raise NotImplementedError

    def raw_to_prediction_row(self, raw: list[float]) -> float:
        if self.thresholds is None:
            return float(row_argmax(raw))
        return self.probability_to_prediction_row(self.prob_row(raw))

    def probability_to_prediction_row(self, prob: list[float]) -> float:
        if self.thresholds is None:
            return float(row_argmax(prob))
        best, top = 0, -math.inf
        for i, (p, t) in enumerate(zip(prob, self.thresholds.tolist(), strict=True)):
            scaled = (math.nan if p == 0.0 or p != p else math.copysign(math.inf, p)) if t == 0.0 else p / t
            if scaled > top:
                best, top = i, scaled
        return float(best)

    def row_step(self) -> RowStep | None:
        if type(self).prob_row is ProbabilisticClassifierStage.prob_row:
            return None
        return super().row_step()

    def row(self, values: dict[str, Any]) -> bool:
        x = self.row_features(values)
        if x is None:
            return False
        raw_col, prob_col, pred_col = (
            self.col("rawPredictionCol"),
            self.col("probabilityCol"),
            self.col("predictionCol"),
        )
        raw = prob = None
        if raw_col:
            raw = self.raw_row(x)
            values[raw_col] = raw
        if prob_col:
            prob = self.prob_row(raw if raw is not None else self.raw_row(x))
            values[prob_col] = prob
        if pred_col:
            if raw is not None:
                values[pred_col] = self.raw_to_prediction_row(raw)
            elif prob is not None:
                values[pred_col] = self.probability_to_prediction_row(prob)
            else:
                values[pred_col] = self.predict_row(x)
        return True

    def transform(self, frame: Frame) -> None:
        x = self.features(frame)
        raw_col, prob_col, pred_col = (
            self.col("rawPredictionCol"),
            self.col("probabilityCol"),
            self.col("predictionCol"),
        )
        raw = prob = None
        if raw_col:
            raw = self.predict_raw(x)
            frame[raw_col] = raw
        if prob_col:
            prob = self.raw_to_probability(raw if raw is not None else self.predict_raw(x))
            frame[prob_col] = prob
        if pred_col:
            if raw is not None:
                pred = self.raw_to_prediction(raw)
            elif prob is not None:
                pred = self.probability_to_prediction(prob)
            else:
                pred = self.predict(x)
            frame[pred_col] = pred

    def summary(self) -> str:
        extra = f", thresholds {self.thresholds.tolist()}" if self.thresholds is not None else ""
        return super().summary() + extra
