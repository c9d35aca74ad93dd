"""Linear models as one matrix product plus the estimator's own link.

Each kernel repeats scikit-learn's arithmetic in its order (``X @ coef_.T +
intercept_``, then ``scipy.special.expit`` or the in-place softmax of
``sklearn.utils.extmath``), so on the same BLAS the answers are usually bit-identical;
the agreement check holds them to 1e-9 either way. The logistic is numpy's
``1 / (1 + exp(-x))``, the formula scipy's ``expit`` evaluates: importing scipy.special
for it would cost a serving process ~0.3 s and ~10 MB (bit-identical to expit on 4M normal
samples of scale 1 to 800, this machine).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from modelport.runtimes.compile.kernels import Head, NotCompilable, finite_or_fallback, type_name

__all__ = ["builtin_heads"]


def _coef(est: Any) -> tuple[np.ndarray, np.ndarray | float]:
    coef = getattr(est, "coef_", None)
    if coef is None:
        raise NotCompilable(f"{type_name(est)} has no coef_")
    if not isinstance(coef, np.ndarray):
        raise NotCompilable(f"{type_name(est)}.coef_ is a {type(coef).__name__} (sparse coefficients are not compiled)")
    coef = np.asarray(coef, dtype=np.float64)
    intercept = getattr(est, "intercept_", 0.0)
    intercept = np.asarray(intercept, dtype=np.float64) if np.ndim(intercept) else float(intercept)
    return coef, intercept


def _scores(est: Any) -> Any:
    """``decision_function`` as LinearClassifierMixin computes it, flattened for one column."""
    coef, intercept = _coef(est)
    coef_t = coef.T if coef.ndim == 2 else coef

    def scores(x: np.ndarray) -> np.ndarray:
        s = finite_or_fallback(x) @ coef_t + intercept
        return s.reshape(-1) if s.ndim > 1 and s.shape[1] == 1 else s

    return scores


def _softmax(x: np.ndarray) -> np.ndarray:
    # sklearn.utils.extmath.softmax, step for step, on a copy.
    x = x.copy()
    x -= np.max(x, axis=1).reshape((-1, 1))
    np.exp(x, out=x)
    x /= np.sum(x, axis=1).reshape((-1, 1))
    return x


def _expit(x: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):  # exp(-x) overflows to inf for x < -709: 1 / inf is the 0 expit gives
        out = np.exp(-x)
    out += 1.0
    return np.divide(1.0, out, out=out)


def _ovr_proba(scores: np.ndarray) -> np.ndarray:
    # LinearClassifierMixin._predict_proba_lr: the logistic, then one-vs-rest normalisation.
    prob = _expit(scores)
    if prob.ndim == 1:
        both = np.empty((prob.shape[0], 2))  # np.stack([1 - prob, prob], axis=1), without its overhead
        np.subtract(1, prob, out=both[:, 0])
        both[:, 1] = prob
        return both
    total = prob.sum(axis=1)
    zero = total == 0
    if zero.any():
        prob[zero, :] = 1
        total[zero] = prob.shape[1]
    prob /= total.reshape((prob.shape[0], -1))
    return prob


def classifier(est: Any, proba: str | None = None) -> Head:
    """``predict`` (and ``predict_proba`` when ``proba`` names the link) of a linear classifier."""
    classes = np.asarray(est.classes_)
    if classes.ndim != 1:
        raise NotCompilable(f"{type_name(est)} with several outputs is not compiled")
    scores = _scores(est)

    def run(x: np.ndarray) -> dict[str, np.ndarray]:
        s = scores(x)
        idx = (s > 0).astype(np.intp) if s.ndim == 1 else np.argmax(s, axis=1)
        out = {"predict": classes.take(idx, axis=0)}
        if proba == "ovr":
            out["predict_proba"] = _ovr_proba(s)
        elif proba == "softmax":
            out["predict_proba"] = _softmax(s) if s.ndim == 2 else _ovr_proba(s)
        return out

    return run


def logistic(est: Any) -> Head:
    # LogisticRegression.predict_proba: _predict_proba_lr for two classes, softmax above.
    return classifier(est, "softmax" if len(est.classes_) > 2 else "ovr")


def sgd_classifier(est: Any) -> Head:
    return classifier(est, "ovr" if est.loss == "log_loss" else None)


def regressor(est: Any) -> Head:
    coef, intercept = _coef(est)
    coef_t = coef.T if coef.ndim == 2 else coef

    def run(x: np.ndarray) -> dict[str, np.ndarray]:
        return {"predict": finite_or_fallback(x) @ coef_t + intercept}

    return run


def sgd_regressor(est: Any) -> Head:
    base = regressor(est)
    return lambda x: {"predict": base(x)["predict"].ravel()}


def builtin_heads() -> dict[type, Any]:
    from sklearn import linear_model as lm
    from sklearn import svm

    heads: dict[type, Any] = {lm.LogisticRegression: logistic, lm.SGDClassifier: sgd_classifier}
    for cls in (lm.RidgeClassifier, lm.RidgeClassifierCV, lm.Perceptron, svm.LinearSVC):
        heads[cls] = classifier
    for cls in (
        lm.LinearRegression,
        lm.Ridge,
        lm.RidgeCV,
        lm.Lasso,
        lm.LassoCV,
        lm.ElasticNet,
        lm.ElasticNetCV,
        lm.HuberRegressor,
        lm.BayesianRidge,
        svm.LinearSVR,
    ):
        heads[cls] = regressor
    heads[lm.SGDRegressor] = sgd_regressor
    return heads
