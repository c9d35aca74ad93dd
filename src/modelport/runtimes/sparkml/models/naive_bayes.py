"""NaiveBayesModel: multinomial, complement, bernoulli, gaussian (``ml/classification/NaiveBayes.scala``).

raw: multinomial ``pi + θ·x``; complement ``θ·x − logsumexp(θ·x)``; bernoulli
``pi + Σ log(1−e^θ) + (θ − log(1−e^θ))·x``; gaussian
``pi − (Σ (x−θ)²/σ + Σ log σ) / 2``. probability: softmax of raw (max subtracted).
Spark refuses negative features for multinomial/complement and non-0/1 features for
bernoulli; so does this stage.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp

from modelport.core.errors import InvalidInput, ModelLoadError
from modelport.runtimes.sparkml.models._base import first_row
from modelport.runtimes.sparkml.models._classifier import ProbabilisticClassifierStage
from modelport.runtimes.sparkml.reader import StageMeta, dense_vector, matrix
from modelport.runtimes.sparkml.stage import register

__all__ = ["NaiveBayesModel"]

_TYPES = ("multinomial", "complement", "bernoulli", "gaussian")


def _values(x: Any) -> np.ndarray:
    return np.asarray(x.data if sp.issparse(x) else x)


@register
class NaiveBayesModel(ProbabilisticClassifierStage):
    spark_classes = ("org.apache.spark.ml.classification.NaiveBayesModel",)

    def __init__(self, meta: StageMeta) -> None:
        super().__init__(meta)
        self.model_type = str(meta.get("modelType", "multinomial")).lower()
        if self.model_type not in _TYPES:
            raise ModelLoadError(
                f"{meta.path}: NaiveBayesModel modelType '{self.model_type}' is not supported "
                f"(supported: {', '.join(_TYPES)})"
            )
        row = first_row(meta)
        try:
            self.pi = dense_vector(row["pi"])
            self.theta = np.ascontiguousarray(matrix(row["theta"]))
            sigma = matrix(row["sigma"]) if row.get("sigma") is not None else np.zeros((0, 0))
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelLoadError(f"{meta.path}: unreadable NaiveBayesModel data ({exc!r})") from None
        self.num_classes, self.num_features = self.theta.shape
        if self.model_type == "gaussian":
            if sigma.shape != self.theta.shape:
                raise ModelLoadError(f"{meta.path}: gaussian NaiveBayesModel sigma {sigma.shape} != theta shape")
            self.sigma = sigma
            self.log_var_sum = np.log(sigma).sum(axis=1)
        elif self.model_type == "bernoulli":
            neg = np.log1p(-np.exp(self.theta))
            self.theta_minus_neg = self.theta - neg
            self.pi_minus_theta_sum = self.pi + neg.sum(axis=1)
        self.check_thresholds()

    def _check(self, x: Any) -> None:
        v = _values(x)
        if self.model_type in ("multinomial", "complement") and not (v >= 0.0).all():
            raise InvalidInput(
                f"NaiveBayesModel {self.meta.uid} ({self.model_type}): column '{self.features_col}' has negative "
                "or NaN feature values; Spark requires nonnegative values"
            )
        if self.model_type == "bernoulli" and not ((v == 0.0) | (v == 1.0)).all():
            raise InvalidInput(
                f"NaiveBayesModel {self.meta.uid} (bernoulli): column '{self.features_col}' has values other "
                "than 0 and 1; Spark requires 0/1 features"
            )

    def predict_raw(self, x: Any) -> np.ndarray:
        self._check(x)
        if self.model_type == "multinomial":
            return np.asarray(x @ self.theta.T) + self.pi
        if self.model_type == "complement":
            p = np.asarray(x @ self.theta.T)
            top = p.max(axis=1, keepdims=True)
            return p - (np.log(np.exp(p - top).sum(axis=1, keepdims=True)) + top)
        if self.model_type == "bernoulli":
            return np.asarray(x @ self.theta_minus_neg.T) + self.pi_minus_theta_sum
        xd = x.toarray() if sp.issparse(x) else x
        d = xd[:, None, :] - self.theta[None, :, :]
        s = (d * d / self.sigma[None, :, :]).sum(axis=2)
        out: np.ndarray = self.pi - (s + self.log_var_sum) / 2
        return out

    def raw_to_probability(self, raw: np.ndarray) -> np.ndarray:
        """Spark's ``Utils.softmax``: the first +inf takes all; else exp(raw − max) / sum."""
        if raw.shape[0] == 0:
            return raw.copy()
        top = raw.max(axis=1, keepdims=True)
        with np.errstate(invalid="ignore", over="ignore"):
            e = np.exp(raw - top)
            prob: np.ndarray = e / e.sum(axis=1, keepdims=True)
        inf = np.isposinf(raw)
        rows = inf.any(axis=1)
        if rows.any():
            prob[rows] = 0.0
            prob[np.flatnonzero(rows), np.argmax(inf[rows], axis=1)] = 1.0
        return prob

    def summary(self) -> str:
        return f"{self.model_type}, " + super().summary()
