"""Decision trees and their ensembles as a numpy walk over every tree at once.

All trees of a model are packed into flat node arrays (feature, threshold, children);
each step moves every (row, tree) pair that is not yet on a leaf one level down, so a
row costs ``depth`` vectorised steps whatever the number of trees. As in scikit-learn,
rows are cast to float32 and compared as doubles with ``x <= threshold``, and per-tree
results are summed in tree order (``cumsum`` is sequential, unlike ``sum``), so the
answers repeat the estimator's own to the last bit in the common case.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from modelport.runtimes.compile.kernels import Fallback, Head, NotCompilable, type_name

__all__ = ["Forest", "builtin_heads"]


class Forest:
    """The fitted ``tree_`` objects of a model, packed for a vectorised walk."""

    def __init__(self, trees: Sequence[Any], n_features: int, *, float32: bool = True) -> None:
        """``trees`` are scikit-learn ``tree_`` objects or anything with the same arrays."""
        self.float32 = float32
        sizes = [t.node_count for t in trees]
        offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.intp)
        feature, threshold, left, right, value = [], [], [], [], []
        for off, t in zip(offsets, trees, strict=True):
            own = np.arange(t.node_count, dtype=np.intp) + off
            leaf = t.children_left == -1
            feature.append(np.where(leaf, 0, t.feature).astype(np.intp))
            threshold.append(np.where(leaf, np.inf, t.threshold))
            left.append(np.where(leaf, own, t.children_left + off))
            right.append(np.where(leaf, own, t.children_right + off))
            value.append(t.value[:, 0, :])
        self.n_trees = len(trees)
        self.n_features = n_features
        self.roots = offsets
        self.feature = np.concatenate(feature)
        self.threshold = np.concatenate(threshold)
        self.left = np.concatenate(left)
        self.right = np.concatenate(right)
        self.is_leaf = self.left == np.arange(self.left.size)
        # Indexed by j = 2 * node: child2[j] is 2 * left child, child2[j + 1] is 2 * right child.
        self.child2 = 2 * np.stack([self.left, self.right], axis=1).reshape(-1)
        self.roots2 = 2 * self.roots
        self.feature2 = np.repeat(self.feature, 2)
        self.threshold2 = np.repeat(self.threshold, 2)
        self.is_leaf2 = np.repeat(self.is_leaf, 2)
        self.chunk = max(1, 32768 // self.n_trees)
        widths = {v.shape[1] for v in value}
        self.value = np.concatenate(value) if len(widths) == 1 else None
        self.depth = max(int(t.max_depth) for t in trees)

    def rows32(self, x: np.ndarray) -> np.ndarray:
        """The float32 rows scikit-learn's validation would make, or a fallback for NaN/inf."""
        with np.errstate(over="ignore"):
            x32 = np.ascontiguousarray(x, dtype=np.float32 if self.float32 else np.float64)
        if not np.isfinite(x32).all():
            # NaN goes where the fitted tree sends missing values, inf is an error: both native.
            raise Fallback
        return x32

    def leaves(self, x32: np.ndarray) -> np.ndarray:
        """Leaf node (global index) of every row in every tree: shape (rows, trees)."""
        n = x32.shape[0]
        if n <= self.chunk:
            return self._leaves(x32)
        # Row chunks keep the working set in cache; one huge gather per level is slower.
        return np.concatenate([self._leaves(x32[i : i + self.chunk]) for i in range(0, n, self.chunk)])

    def _leaves(self, x32: np.ndarray) -> np.ndarray:
        # The walk runs on doubled indices j = 2 * node, so that j + (go right) picks the
        # child slot directly: one numpy call less per level, which is most of the cost
        # for a single row.
        n, t = x32.shape[0], self.n_trees
        flat = x32.reshape(-1)
        j = np.tile(self.roots2, n)
        base = np.repeat(np.arange(n, dtype=np.intp) * self.n_features, t) if n > 1 else None
        feature, threshold, child, is_leaf = self.feature2, self.threshold2, self.child2, self.is_leaf2
        for level in range(self.depth):
            f = feature[j] if base is None else base + feature[j]
            # Right when not (x <= threshold): NaN never gets here, so that is x > threshold.
            j = child[j + (flat[f] > threshold[j])]
            if level % 4 == 3 and is_leaf[j].all():
                break
        return (j >> 1).reshape(n, t)


def _single_output(est: Any) -> None:
    if getattr(est, "n_outputs_", 1) != 1:
        raise NotCompilable(f"{type_name(est)} with {est.n_outputs_} outputs is not compiled")


def decision_tree_classifier(est: Any) -> Head:
    _single_output(est)
    forest = Forest([est.tree_], est.n_features_in_)
    classes = np.asarray(est.classes_)
    assert forest.value is not None
    proba = np.ascontiguousarray(forest.value[:, : est.n_classes_])
    label = np.argmax(forest.value, axis=1)

    def run(x: np.ndarray) -> dict[str, np.ndarray]:
        leaf = forest.leaves(forest.rows32(x))[:, 0]
        return {"predict": classes.take(label[leaf], axis=0), "predict_proba": proba[leaf]}

    return run


def decision_tree_regressor(est: Any) -> Head:
    _single_output(est)
    forest = Forest([est.tree_], est.n_features_in_)
    assert forest.value is not None
    value = np.ascontiguousarray(forest.value[:, 0])

    def run(x: np.ndarray) -> dict[str, np.ndarray]:
        return {"predict": value[forest.leaves(forest.rows32(x))[:, 0]]}

    return run


def forest_classifier(est: Any) -> Head:
    _single_output(est)
    forest = Forest([e.tree_ for e in est.estimators_], est.n_features_in_)
    if forest.value is None:
        raise NotCompilable(f"{type_name(est)}: trees disagree on the number of classes")
    classes = np.asarray(est.classes_)
    proba = np.ascontiguousarray(forest.value[:, : est.n_classes_])
    n = float(len(est.estimators_))

    def run(x: np.ndarray) -> dict[str, np.ndarray]:
        per_tree = proba[forest.leaves(forest.rows32(x))]  # (rows, trees, classes)
        p = np.cumsum(per_tree, axis=1)[:, -1, :]
        p /= n
        return {"predict": classes.take(np.argmax(p, axis=1), axis=0), "predict_proba": p}

    return run


def forest_regressor(est: Any) -> Head:
    _single_output(est)
    forest = Forest([e.tree_ for e in est.estimators_], est.n_features_in_)
    assert forest.value is not None
    value = np.ascontiguousarray(forest.value[:, 0])
    n = float(len(est.estimators_))

    def run(x: np.ndarray) -> dict[str, np.ndarray]:
        y = np.cumsum(value[forest.leaves(forest.rows32(x))], axis=1)[:, -1]
        y /= n
        return {"predict": y}

    return run


def _gb_parts(est: Any) -> tuple[Forest, np.ndarray, float, int]:
    init = est.init_
    if not (isinstance(init, str) and init == "zero") and type_name(init) not in {"DummyClassifier", "DummyRegressor"}:
        raise NotCompilable(f"{type_name(est)} with init={type_name(init)} (only the default prior or 'zero')")
    stages = est.estimators_
    k = stages.shape[1]
    forest = Forest([tree.tree_ for stage in stages for tree in stage], est.n_features_in_)
    # The default init estimator predicts a constant: its raw prediction for any row.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        init_raw = np.asarray(est._raw_predict_init(np.zeros((1, est.n_features_in_))), dtype=np.float64)
    return forest, init_raw.reshape(1, 1, k), float(est.learning_rate), k


def _gb_raw(forest: Forest, init_raw: np.ndarray, rate: float, k: int, x: np.ndarray) -> np.ndarray:
    assert forest.value is not None
    leaves = forest.leaves(forest.rows32(x))
    n = leaves.shape[0]
    steps = rate * forest.value[leaves, 0].reshape(n, -1, k)
    # predict_stages adds stage after stage to the init prediction: a sequential sum.
    raw = np.cumsum(np.concatenate([np.broadcast_to(init_raw, (n, 1, k)), steps], axis=1), axis=1)[:, -1, :]
    return raw.ravel() if k == 1 else raw


# Shallow boosted trees walk fast in scikit-learn's Cython once its fixed cost is paid:
# in benchmarks/compile.py the numpy walk wins below a few hundred rows and loses above.
GB_NATIVE_ABOVE = 256


def gradient_boosting_classifier(est: Any) -> Head:
    forest, init_raw, rate, k = _gb_parts(est)
    classes = np.asarray(est.classes_)
    loss = est._loss

    def run(x: np.ndarray) -> dict[str, np.ndarray]:
        raw = _gb_raw(forest, init_raw, rate, k, x)
        idx = (raw >= 0).astype(int) if raw.ndim == 1 else np.argmax(raw, axis=1)
        return {"predict": classes[idx], "predict_proba": np.asarray(loss.predict_proba(raw))}

    run.native_above = GB_NATIVE_ABOVE  # type: ignore[attr-defined]
    return run


def gradient_boosting_regressor(est: Any) -> Head:
    forest, init_raw, rate, k = _gb_parts(est)

    def run(x: np.ndarray) -> dict[str, np.ndarray]:
        return {"predict": _gb_raw(forest, init_raw, rate, k, x)}

    run.native_above = GB_NATIVE_ABOVE  # type: ignore[attr-defined]
    return run


def builtin_heads() -> dict[type, Any]:
    from sklearn import ensemble, tree

    return {
        tree.DecisionTreeClassifier: decision_tree_classifier,
        tree.ExtraTreeClassifier: decision_tree_classifier,
        tree.DecisionTreeRegressor: decision_tree_regressor,
        tree.ExtraTreeRegressor: decision_tree_regressor,
        ensemble.RandomForestClassifier: forest_classifier,
        ensemble.ExtraTreesClassifier: forest_classifier,
        ensemble.RandomForestRegressor: forest_regressor,
        ensemble.ExtraTreesRegressor: forest_regressor,
        ensemble.GradientBoostingClassifier: gradient_boosting_classifier,
        ensemble.GradientBoostingRegressor: gradient_boosting_regressor,
    }
