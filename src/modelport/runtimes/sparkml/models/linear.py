"""Linear predictors: LinearRegressionModel, GeneralizedLinearRegressionModel, LinearSVCModel.

Sources: ``ml/regression/LinearRegression.scala``, ``ml/regression/GeneralizedLinearRegression.scala``,
``ml/classification/LinearSVC.scala``. All three score ``x·β + b``; the GLM adds an
optional offset column and maps the linear predictor through the inverse link, then
clips it into the family's range (``project``) as Spark does.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from modelport.core.errors import InvalidInput, ModelLoadError
from modelport.runtimes.sparkml.models._base import PredictorStage, first_row
from modelport.runtimes.sparkml.models._classifier import ClassifierStage
from modelport.runtimes.sparkml.reader import StageMeta, dense_vector
from modelport.runtimes.sparkml.stage import Frame, register
from modelport.runtimes.sparkml.vectors import NUMBER_TYPES, RowVector, row_dot

__all__ = ["GeneralizedLinearRegressionModel", "LinearRegressionModel", "LinearSVCModel"]

_EPS = 1e-16  # GeneralizedLinearRegression.epsilon
_MAX = np.finfo(np.float64).max


def _coefficients(meta: StageMeta) -> tuple[np.ndarray, float]:
    row = first_row(meta)
    try:
        return dense_vector(row["coefficients"]), float(row["intercept"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelLoadError(f"{meta.path}: unreadable {meta.short_class} data ({exc!r})") from None


class _Linear(PredictorStage):
    def __init__(self, meta: StageMeta) -> None:
        super().__init__(meta)
        self.beta, self.b = _coefficients(meta)
        self.beta_list: list[float] = self.beta.tolist()
        self.num_features = len(self.beta)

    def margin(self, x: Any) -> np.ndarray:
        return np.asarray(x @ self.beta, dtype=np.float64) + self.b


@register
class LinearRegressionModel(_Linear):
    spark_classes = ("org.apache.spark.ml.regression.LinearRegressionModel",)

    def transform(self, frame: Frame) -> None:
        col = self.col("predictionCol")
        if col:
            frame[col] = self.margin(self.features(frame))

    def row(self, values: dict[str, Any]) -> bool:
        x = self.row_features(values)
        if x is None:
            return False
        col = self.col("predictionCol")
        if col:
            values[col] = row_dot(x, self.beta_list) + self.b
        return True


@register
class LinearSVCModel(ClassifierStage):
    """raw = ``[-m, m]``; prediction 1 iff ``m > threshold`` (threshold applies to the margin)."""

    spark_classes = ("org.apache.spark.ml.classification.LinearSVCModel",)

    def __init__(self, meta: StageMeta) -> None:
        super().__init__(meta)
        self.beta, self.b = _coefficients(meta)
        self.beta_list: list[float] = self.beta.tolist()
        self.num_features = len(self.beta)
        self.num_classes = 2
        self.threshold = float(meta.get("threshold", 0.0))
        self.check_thresholds()

    def predict_raw(self, x: Any) -> np.ndarray:
        m = np.asarray(x @ self.beta, dtype=np.float64) + self.b
        return np.stack([-m, m], axis=1)

    def raw_to_prediction(self, raw: np.ndarray) -> np.ndarray:
        return (raw[:, 1] > self.threshold).astype(np.float64)

    def raw_row(self, x: RowVector) -> list[float]:
        m = row_dot(x, self.beta_list) + self.b
        return [-m, m]

    def raw_to_prediction_row(self, raw: list[float]) -> float:
        return 1.0 if raw[1] > self.threshold else 0.0

    def summary(self) -> str:
        return f"{self.num_features} features, threshold {self.threshold:g}"


# --- GLM families and links -------------------------------------------------------


def _probit(eta: np.ndarray) -> np.ndarray:
    from scipy.special import erf

    return 0.5 * (1.0 + erf(eta / math.sqrt(2.0)))


def _power(p: float) -> Callable[[np.ndarray], np.ndarray]:
    if p == 0.0:
        return np.exp
    return lambda eta: np.power(eta, 1.0 / p)


_LINKS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "identity": lambda eta: eta,
    "logit": lambda eta: 1.0 / (1.0 + np.exp(-1.0 * eta)),
    "log": np.exp,
    "inverse": lambda eta: 1.0 / eta,
    "probit": _probit,
    "cloglog": lambda eta: 1.0 - np.exp(-1.0 * np.exp(eta)),
    "sqrt": lambda eta: eta * eta,
}
_POWER_NAMES = {0.0: "log", 1.0: "identity", -1.0: "inverse", 0.5: "sqrt"}
_DEFAULT_LINK = {"gaussian": "identity", "binomial": "logit", "poisson": "log", "gamma": "inverse"}


def _project_gaussian(mu: np.ndarray) -> np.ndarray:
    return np.where(mu == -np.inf, -_MAX, np.where(mu == np.inf, _MAX, mu))


def _project_binomial(mu: np.ndarray) -> np.ndarray:
    return np.where(mu < _EPS, _EPS, np.where(mu > 1.0 - _EPS, 1.0 - _EPS, mu))


def _project_tweedie(mu: np.ndarray) -> np.ndarray:
    return np.where(mu < _EPS, _EPS, np.where(np.isinf(mu), _MAX, mu))


@register
class GeneralizedLinearRegressionModel(_Linear):
    """``prediction = project(unlink(x·β + b + offset))``; ``linkPredictionCol`` gets the linear predictor."""

    spark_classes = ("org.apache.spark.ml.regression.GeneralizedLinearRegressionModel",)

    def __init__(self, meta: StageMeta) -> None:
        super().__init__(meta)
        explicit = meta.raw.get("paramMap") or {}
        family = str(meta.get("family", "gaussian")).lower()
        if family == "tweedie":
            vp = float(meta.get("variancePower", 0.0))
            family = {0.0: "gaussian", 1.0: "poisson", 2.0: "gamma"}.get(vp, "tweedie")
            if "linkPower" in explicit:
                lp = float(explicit["linkPower"])
            else:
                lp = {"gaussian": 1.0, "poisson": 0.0, "gamma": -1.0}.get(family, 1.0 - vp)
            link_name = _POWER_NAMES.get(lp, f"power({lp:g})")
            self.unlink = _LINKS[link_name] if lp in _POWER_NAMES else _power(lp)
            self.family_name = family if family != "tweedie" else f"tweedie({vp:g})"
        elif family in _DEFAULT_LINK:
            link_name = str(explicit.get("link") or _DEFAULT_LINK[family]).lower()
            if link_name not in _LINKS:
                raise ModelLoadError(
                    f"{meta.path}: GeneralizedLinearRegressionModel link '{link_name}' is not supported "
                    f"(supported: {', '.join(_LINKS)})"
                )
            self.unlink = _LINKS[link_name]
            self.family_name = family
        else:
            raise ModelLoadError(
                f"{meta.path}: GeneralizedLinearRegressionModel family '{family}' is not supported "
                "(supported: gaussian, binomial, poisson, gamma, tweedie)"
            )
        self.link_name = link_name
        self.project = (
            _project_gaussian
            if family == "gaussian"
            else _project_binomial
            if family == "binomial"
            else _project_tweedie
        )
        self.offset_col = str(meta.get("offsetCol") or "")
        self.link_col = str(meta.get("linkPredictionCol") or "")

    @property
    def inputs(self) -> list[str]:
        return [self.features_col] + ([self.offset_col] if self.offset_col else [])

    @property
    def outputs(self) -> list[str]:
        return super().outputs + ([self.link_col] if self.link_col else [])

    def transform(self, frame: Frame) -> None:
        x = self.features(frame)
        eta = self.margin(x)
        if self.offset_col:
            if self.offset_col not in frame:
                raise InvalidInput(
                    f"GeneralizedLinearRegressionModel {self.meta.uid}: offset column '{self.offset_col}' is missing"
                )
            try:
                offset = np.asarray(frame[self.offset_col], dtype=np.float64)
            except (TypeError, ValueError):
                raise InvalidInput(
                    f"GeneralizedLinearRegressionModel {self.meta.uid}: offset column '{self.offset_col}' "
                    "must hold numbers"
                ) from None
            eta = eta + offset
        col = self.col("predictionCol")
        if col:
            with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
                frame[col] = self.project(self.unlink(eta))
        if self.link_col:
            frame[self.link_col] = eta

    def row(self, values: dict[str, Any]) -> bool:
        x = self.row_features(values)
        if x is None:
            return False
        eta = row_dot(x, self.beta_list) + self.b
        if self.offset_col:
            offset = values.get(self.offset_col)
            if not isinstance(offset, NUMBER_TYPES):
                return False
            eta = eta + float(offset)
        col = self.col("predictionCol")
        if col:
            with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
                values[col] = float(self.project(self.unlink(np.array([eta])))[0])
        if self.link_col:
            values[self.link_col] = eta
        return True

    def summary(self) -> str:
        offset = f", offset {self.offset_col}" if self.offset_col else ""
        return f"family {self.family_name}, link {self.link_name}, {self.num_features} features{offset}"
