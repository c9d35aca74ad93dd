"""LightGBM models (the scikit-learn wrappers) as the same numpy tree walk.

The trees come from ``booster_.dump_model()``: numerical splits ``x <= threshold`` on the
double-precision row, leaf values summed in tree order, then LightGBM's own link
(``1 / (1 + exp(-sigmoid * raw))`` for binary, max-shifted softmax for multiclass).
Categorical splits, ``zero_as_missing`` and other objectives are not compiled; rows with
NaN or infinity go to LightGBM itself.

XGBoost is not compiled: it sums leaf values in float32, so agreeing to 1e-9 would mean
repeating its float32 arithmetic and ``expf`` bit for bit.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from modelport.runtimes.compile.kernels import Head, NotCompilable, type_name
from modelport.runtimes.compile.trees import Forest

__all__ = ["LIGHTGBM_NATIVE_ABOVE", "builtin_heads", "native_lightgbm"]

# LightGBM's C++ walk has a large fixed cost per call (~1-8 ms through the sklearn
# wrapper) and a small one per row: numpy wins on small batches, LightGBM on big ones.
LIGHTGBM_NATIVE_ABOVE = 256


@dataclass
class _Tree:
    """One dumped LightGBM tree in the array layout of scikit-learn's ``tree_``."""

    node_count: int
    children_left: np.ndarray
    children_right: np.ndarray
    feature: np.ndarray
    threshold: np.ndarray
    value: np.ndarray
    max_depth: int


def _tree(structure: dict[str, Any]) -> _Tree:
    left: list[int] = []
    right: list[int] = []
    feature: list[int] = []
    threshold: list[float] = []
    value: list[float] = []
    depth = 0

    def add(node: dict[str, Any], level: int) -> int:
        nonlocal depth
        depth = max(depth, level)
        i = len(left)
        left.append(-1)
        right.append(-1)
        feature.append(0)
        threshold.append(0.0)
        value.append(float(node.get("leaf_value", 0.0)))
        if "leaf_value" in node or "split_feature" not in node:
            return i
        if node.get("decision_type") != "<=":
            raise NotCompilable("LightGBM categorical splits are not compiled")
        if node.get("missing_type") == "Zero":
            raise NotCompilable("LightGBM trees with zero_as_missing are not compiled")
        feature[i] = int(node["split_feature"])
        threshold[i] = float(node["threshold"])
        left[i] = add(node["left_child"], level + 1)
        right[i] = add(node["right_child"], level + 1)
        return i

    add(structure, 0)
    return _Tree(
        len(left),
        np.asarray(left, dtype=np.intp),
        np.asarray(right, dtype=np.intp),
        np.asarray(feature, dtype=np.intp),
        np.asarray(threshold, dtype=np.float64),
        np.asarray(value, dtype=np.float64).reshape(-1, 1, 1),
        depth,
    )


def _booster_parts(booster: Any) -> tuple[Forest, int, str, float]:
    dump = booster.dump_model()
    if dump.get("average_output"):
        raise NotCompilable("LightGBM random-forest mode (average_output) is not compiled")
    k = int(dump.get("num_tree_per_iteration", 1))
    trees = dump["tree_info"]
    best = int(getattr(booster, "best_iteration", 0) or 0)
    if best > 0:  # Booster.predict stops there when num_iteration is not given
        trees = trees[: best * k]
    if not trees:
        raise NotCompilable("the LightGBM model has no trees")
    if any("leaf_coeff" in t["tree_structure"] for t in trees):
        raise NotCompilable("LightGBM linear trees are not compiled")
    parts = str(dump.get("objective", "")).split()
    objective = parts[0] if parts else ""
    sigmoid = 1.0
    for p in parts[1:]:
        if p.startswith("sigmoid:"):
            sigmoid = float(p.split(":", 1)[1])
    forest = Forest([_tree(t["tree_structure"]) for t in trees], int(dump["max_feature_idx"]) + 1, float32=False)
    return forest, k, objective, sigmoid


def _raw(forest: Forest, k: int, x: np.ndarray) -> np.ndarray:
    assert forest.value is not None
    leaves = forest.leaves(forest.rows32(x))
    n = leaves.shape[0]
    per_tree = forest.value[leaves, 0].reshape(n, -1, k)
    return np.cumsum(per_tree, axis=1)[:, -1, :]  # LightGBM adds tree after tree, per class


def lgbm_classifier(est: Any) -> Head:
    forest, k, objective, sigmoid = _booster_parts(est.booster_)
    classes = np.asarray(est.classes_)
    if objective == "binary" and k == 1:

        def binary(x: np.ndarray) -> dict[str, np.ndarray]:
            p = 1.0 / (1.0 + np.exp(-sigmoid * _raw(forest, k, x)[:, 0]))
            proba = np.vstack((1.0 - p, p)).transpose()
            return {"predict": classes.take(np.argmax(proba, axis=1), axis=0), "predict_proba": proba}

        binary.native_above = LIGHTGBM_NATIVE_ABOVE  # type: ignore[attr-defined]
        return binary
    if objective == "multiclass":

        def multiclass(x: np.ndarray) -> dict[str, np.ndarray]:
            raw = _raw(forest, k, x)
            e = np.exp(raw - raw.max(axis=1, keepdims=True))
            proba = e / e.sum(axis=1, keepdims=True)
            return {"predict": classes.take(np.argmax(proba, axis=1), axis=0), "predict_proba": proba}

        multiclass.native_above = LIGHTGBM_NATIVE_ABOVE  # type: ignore[attr-defined]
        return multiclass
    raise NotCompilable(f"{type_name(est)} with objective '{objective}' (compiled: binary, multiclass)")


_IDENTITY = {"regression", "regression_l1", "huber", "fair", "quantile", "mape"}


def lgbm_regressor(est: Any) -> Head:
    forest, k, objective, _ = _booster_parts(est.booster_)
    if objective not in _IDENTITY or k != 1:
        raise NotCompilable(f"{type_name(est)} with objective '{objective}' (compiled: {', '.join(sorted(_IDENTITY))})")

    def run(x: np.ndarray) -> dict[str, np.ndarray]:
        return {"predict": _raw(forest, k, x)[:, 0]}

    run.native_above = LIGHTGBM_NATIVE_ABOVE  # type: ignore[attr-defined]
    return run


def native_lightgbm(predictor: Any) -> Any:
    """A kernel for the lightgbm flavor's predictor (a ``booster`` with ``columns``).

    Its outputs follow that flavor: ``predict`` is the class index (INT64) for binary and
    multiclass objectives, ``predict_proba`` the probabilities; the check holds it to them.
    """
    forest, k, objective, sigmoid = _booster_parts(predictor.booster)
    columns = predictor.columns
    name = predictor.signature.inputs[0].name

    def rows(batch: Any) -> np.ndarray:
        if columns is None:
            return np.asarray(batch[name], dtype=np.float64)
        return np.column_stack([np.asarray(batch[c], dtype=np.float64) for c in columns])

    if objective == "binary" and k == 1:

        def binary(batch: Any) -> dict[str, np.ndarray]:
            p = 1.0 / (1.0 + np.exp(-sigmoid * _raw(forest, k, rows(batch))[:, 0]))
            return {"predict": (p > 0.5).astype(np.int64), "predict_proba": np.column_stack([1.0 - p, p])}

        kernel: Any = binary
    elif objective in {"multiclass", "softmax"}:

        def multiclass(batch: Any) -> dict[str, np.ndarray]:
            raw = _raw(forest, k, rows(batch))
            e = np.exp(raw - raw.max(axis=1, keepdims=True))
            proba = e / e.sum(axis=1, keepdims=True)
            return {"predict": proba.argmax(axis=1).astype(np.int64), "predict_proba": proba}

        kernel = multiclass
    elif objective in _IDENTITY and k == 1:

        def regression(batch: Any) -> dict[str, np.ndarray]:
            return {"predict": _raw(forest, k, rows(batch))[:, 0]}

        kernel = regression
    else:
        raise NotCompilable(
            f"LightGBM objective '{objective}' (compiled: binary, multiclass, {', '.join(sorted(_IDENTITY))})"
        )
    kernel.native_above = LIGHTGBM_NATIVE_ABOVE
    return kernel


def builtin_heads() -> dict[type, Any]:
    try:
        import lightgbm
    except ImportError:
        return {}
    return {lightgbm.LGBMClassifier: lgbm_classifier, lightgbm.LGBMRegressor: lgbm_regressor}
