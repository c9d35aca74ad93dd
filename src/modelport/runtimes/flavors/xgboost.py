"""Native XGBoost Booster files (``.json``, ``.ubj``).

A Booster file carries no Python class, so its outputs follow from its objective:
classifiers (``binary:*``, ``multi:*``) serve ``predict`` (the class index, INT64) and,
where the objective yields them, ``predict_proba`` (FP64 ``[-1, n_classes]``) as
``XGBClassifier`` would; every other objective serves ``predict`` (FP64). Inputs are one
``input`` array of ``[-1, num_features]``, or one FP64 column per feature name when the
booster was trained with names. ``XGBClassifier``/``XGBRegressor`` pickles go through the
sklearn flavor instead.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from modelport.core.config import ModelConfig
from modelport.core.errors import ModelLoadError
from modelport.core.signature import Batch, Signature, TensorSpec

__all__ = ["XGBoostPredictor", "load", "predictor_for_booster"]

_CLASSIFIERS = ("binary:logistic", "binary:logitraw", "binary:hinge", "multi:softprob", "multi:softmax")


def load(path: Path, config: ModelConfig) -> XGBoostPredictor:
    import xgboost as xgb

    if path.is_dir():
        raise ModelLoadError(f"{path}: the xgboost flavor expects a .json or .ubj Booster file, got a directory")
    booster = xgb.Booster()
    try:
        booster.load_model(str(path))
    except xgb.core.XGBoostError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise ModelLoadError(
            f"{path}: not a readable XGBoost model ({first}); expected a Booster saved with save_model as .json or .ubj"
        ) from None
    return predictor_for_booster(booster, config, str(path))


def predictor_for_booster(booster: Any, config: ModelConfig | None = None, source: str = "") -> XGBoostPredictor:
    """Wrap a loaded ``xgboost.Booster`` (also used by the MLflow flavor)."""
    return XGBoostPredictor(booster, config or ModelConfig(), source)


class XGBoostPredictor:
    def __init__(self, booster: Any, config: ModelConfig, source: str) -> None:
        self.booster = booster
        self.source = source
        # One thread: a request of a few rows is ~1.5x faster than with two (the hand-off costs
        # more than the trees), and concurrent requests use the other core.
        booster.set_param("nthread", 1)
        # XGBoost stores features as float32: larger finite values are refused up front (model.py).
        self.compute_datatype = "FP32"
        learner = json.loads(booster.save_config())["learner"]
        self.objective = str(learner["objective"]["name"])
        params = learner["learner_model_param"]
        num_class = int(params.get("num_class", "0") or 0)
        num_target = int(params.get("num_target", "1") or 1)
        n_features = int(booster.num_features())

        types = booster.feature_types or []
        if "c" in types:
            cats = [n for n, t in zip(booster.feature_names or range(len(types)), types, strict=False) if t == "c"]
            raise ModelLoadError(
                f"{source}: the booster has categorical features ({', '.join(map(str, cats))}), which the native "
                "XGBoost flavor does not serve; supported: numeric features. Save the fitted XGBClassifier/"
                "XGBRegressor (with its encoder pipeline) with joblib instead"
            )
        names = booster.feature_names
        self.columns: list[str] | None = [str(n) for n in names] if names else None
        if self.columns:
            inputs = tuple(TensorSpec(c, "FP64", (-1,)) for c in self.columns)
        else:
            inputs = (TensorSpec("input", "FP64", (-1, n_features)),)

        self.kind = "regression"
        outputs: list[TensorSpec]
        if self.objective in _CLASSIFIERS:
            n_classes = num_class if self.objective.startswith("multi:") else 2
            labels = tuple(range(n_classes))
            self.kind = self.objective
            outputs = [TensorSpec("predict", "INT64", (-1,))]
            if self.objective != "binary:hinge":
                outputs.append(TensorSpec("predict_proba", "FP64", (-1, n_classes), labels))
        else:
            outputs = [TensorSpec("predict", "FP64", (-1,) if num_target == 1 else (-1, num_target))]
        self.signature = Signature(inputs, tuple(outputs))
        self.info: dict[str, Any] = {
            "objective": self.objective,
            "num_features": n_features,
            "num_class": num_class,
            "num_trees": _num_trees(booster),
            "xgboost": _version(),
            "runtime": {o.name: "xgboost" for o in outputs},
        }

    def matrix(self, batch: Batch) -> np.ndarray:
        if self.columns is None:
            return batch["input"]
        return np.column_stack([batch[c] for c in self.columns])

    def predict(self, batch: Batch) -> Batch:
        x = self.matrix(batch)
        kind = self.kind
        if kind == "regression":
            return {"predict": np.asarray(self.booster.inplace_predict(x, validate_features=False), dtype=np.float64)}
        if kind == "multi:softmax":
            margin = self.booster.inplace_predict(x, predict_type="margin", validate_features=False)
            proba = _softmax(np.asarray(margin, dtype=np.float64))
            return {"predict": proba.argmax(axis=1).astype(np.int64), "predict_proba": proba}
        raw = np.asarray(self.booster.inplace_predict(x, validate_features=False), dtype=np.float64)
        if kind == "multi:softprob":
            return {"predict": raw.argmax(axis=1).astype(np.int64), "predict_proba": raw}
        if kind == "binary:hinge":
            return {"predict": raw.astype(np.int64)}
        p = 1.0 / (1.0 + np.exp(-raw)) if kind == "binary:logitraw" else raw
        return {"predict": (p > 0.5).astype(np.int64), "predict_proba": np.column_stack([1.0 - p, p])}


def _softmax(margin: np.ndarray) -> np.ndarray:
    shifted = np.exp(margin - margin.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


def _num_trees(booster: Any) -> int | None:
    try:
        return int(booster.num_boosted_rounds())
    except Exception:  # older boosters without the method: the count is only informative
        return None


def _version() -> str:
    import xgboost as xgb

    return str(xgb.__version__)
