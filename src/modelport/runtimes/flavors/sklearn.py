"""scikit-learn estimators and Pipelines saved with joblib or pickle.

Array models take one input ``input`` of shape ``[-1, n_features]``. Models fitted on a
DataFrame (``feature_names_in_``) take one input per column, text columns as BYTES,
so a client sends named fields. Outputs: ``predict``, plus ``predict_proba`` (labelled
by ``classes_``) when the estimator has it, or ``transform`` for a pure transformer.
"""

from __future__ import annotations

import pickle
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from modelport.core.config import ModelConfig
from modelport.core.errors import ModelLoadError
from modelport.core.signature import Batch, Signature, TensorSpec, datatype_of

__all__ = ["SklearnPredictor", "load", "predictor_for"]


def _read(path: Path) -> Any:
    if path.is_dir():
        raise ModelLoadError(f"{path}: the sklearn flavor expects a .joblib or .pkl file, got a directory")
    try:
        if path.suffix.lower() in {".pkl", ".pickle"}:
            with path.open("rb") as fh:
                return pickle.load(fh)
        import joblib

        return joblib.load(path)
    except (pickle.UnpicklingError, EOFError, ValueError, KeyError, IndexError) as exc:
        raise ModelLoadError(
            f"{path}: not a readable joblib/pickle file ({type(exc).__name__}: {exc}); "
            "expected a scikit-learn estimator saved with joblib.dump or pickle.dump"
        ) from None


def load(path: Path, config: ModelConfig) -> SklearnPredictor:
    estimator = _read(path)
    if not hasattr(estimator, "predict") and not hasattr(estimator, "transform"):
        raise ModelLoadError(
            f"{path}: holds a {type(estimator).__module__}.{type(estimator).__name__}, "
            "which has neither predict nor transform; expected a fitted scikit-learn estimator or Pipeline"
        )
    return predictor_for(estimator, config, str(path))


def predictor_for(estimator: Any, config: ModelConfig | None = None, source: str = "") -> SklearnPredictor:
    """Wrap a fitted estimator (also used by the MLflow flavor and the XGBoost/LightGBM wrappers)."""
    return SklearnPredictor(estimator, config or ModelConfig(), source)


def _final_step(estimator: Any) -> Any:
    steps = getattr(estimator, "steps", None)
    return steps[-1][1] if steps else estimator


def _column_types(estimator: Any, columns: list[str]) -> dict[str, str]:
    """Infer each DataFrame column's datatype from the encoders that consume it."""
    types = dict.fromkeys(columns, "FP64")
    stack = [estimator]
    while stack:
        est = stack.pop()
        for _, step in getattr(est, "steps", []) or []:
            stack.append(step)
        for entry in getattr(est, "transformers_", []) or []:
            _, transformer, cols = entry[0], entry[1], entry[2]
            names = [columns[c] if isinstance(c, int | np.integer) else c for c in np.atleast_1d(cols)]
            inner = _final_step(transformer) if hasattr(transformer, "steps") else transformer
            for sub in getattr(transformer, "steps", []) or []:
                stack.append(sub[1])
            cats = getattr(inner, "categories_", None)
            for i, col in enumerate(names):
                if col not in types:
                    continue
                if cats is not None and i < len(cats) and np.asarray(cats[i]).dtype.kind in "OUS":
                    types[col] = "BYTES"
                elif type(inner).__name__ in {"TfidfVectorizer", "CountVectorizer", "HashingVectorizer"}:
                    types[col] = "BYTES"
    return types


class SklearnPredictor:
    def __init__(self, estimator: Any, config: ModelConfig, source: str) -> None:
        self.estimator = estimator
        self.source = source
        names = getattr(estimator, "feature_names_in_", None)
        self.columns: list[str] | None = None
        if names is not None and not _generic_names(list(names)):
            self.columns = [str(n) for n in names]
            types = _column_types(estimator, self.columns)
            inputs = tuple(TensorSpec(c, types[c], (-1,)) for c in self.columns)
        else:
            n = getattr(estimator, "n_features_in_", None)
            inputs = (TensorSpec("input", "FP64", (-1, int(n) if n is not None else -1)),)
        self.methods: list[tuple[str, str]] = []
        outputs: list[TensorSpec] = []
        classes = getattr(estimator, "classes_", None)
        if hasattr(estimator, "predict"):
            dtype = np.asarray(classes).dtype if classes is not None else np.dtype(np.float64)
            n_targets = _n_targets(estimator)
            shape: tuple[int, ...] = (-1,) if n_targets is None or n_targets == 1 else (-1, n_targets)
            try:
                datatype = datatype_of(dtype)
            except ValueError:
                datatype = "BYTES"
            outputs.append(TensorSpec("predict", datatype, shape))
            self.methods.append(("predict", "predict"))
            if hasattr(estimator, "predict_proba") and classes is not None and np.asarray(classes).ndim == 1:
                labels = tuple(c.item() if hasattr(c, "item") else c for c in np.asarray(classes))
                outputs.append(TensorSpec("predict_proba", "FP64", (-1, len(labels)), labels))
                self.methods.append(("predict_proba", "predict_proba"))
        elif hasattr(estimator, "transform"):
            outputs.append(TensorSpec("transform", "FP64", (-1, -1)))
            self.methods.append(("transform", "transform"))
        self.signature = Signature(inputs, tuple(outputs))
        self.info: dict[str, Any] = {
            "estimator": f"{type(estimator).__module__}.{type(estimator).__name__}",
            "runtime": {o.name: "scikit-learn" for o in outputs},
        }
        self._object_outputs = {o.name for o in outputs if o.datatype == "BYTES"}
        # scikit-learn's trees compare float32 features: larger finite values are refused up front (model.py).
        self.compute_datatype = "FP32" if _float32_trees(estimator) else None

    def frame(self, batch: Batch) -> Any:
        if self.columns is None:
            return batch["input"]
        import pandas as pd

        return pd.DataFrame({c: batch[c] for c in self.columns}, columns=self.columns)

    selects_outputs = True

    def predict(self, batch: Batch, outputs: Sequence[str] | None = None) -> Batch:
        x = self.frame(batch)
        out: Batch = {}
        for name, method in self.methods:
            if outputs is not None and name not in outputs:
                continue
            value = np.asarray(getattr(self.estimator, method)(x))
            if name in self._object_outputs and value.dtype != object:
                value = value.astype(object)
            out[name] = value
        return out


def _float32_trees(estimator: Any) -> bool:
    """True for a tree, a tree ensemble or an XGBoost model fed directly (its predict casts X to float32)."""
    if hasattr(estimator, "tree_") or type(estimator).__module__.startswith("xgboost."):
        return True
    members = getattr(estimator, "estimators_", None)
    if members is None:
        return False
    flat = np.asarray(members, dtype=object).reshape(-1)
    return flat.size > 0 and all(hasattr(m, "tree_") for m in flat)


def _generic_names(names: list[str]) -> bool:
    """Names pandas or numpy made up (x0, x1, ... or 0, 1, ...) mean an array model."""
    return all(n == f"x{i}" or n == str(i) for i, n in enumerate(names))


def _n_targets(estimator: Any) -> int | None:
    final = _final_step(estimator)
    for attr in ("n_outputs_", "n_targets_"):
        value = getattr(final, attr, None)
        if isinstance(value, int | np.integer):
            return int(value)
    coef = getattr(final, "coef_", None)
    if coef is not None and getattr(final, "classes_", None) is None and np.ndim(coef) == 2:
        return int(np.shape(coef)[0])
    return None
