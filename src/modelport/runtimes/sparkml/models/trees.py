"""Decision trees and their ensembles (``ml/tree/treeModels.scala``, ``Split.scala``,
``ml/classification/{DecisionTree,RandomForest,GBT}Classifier.scala`` and the regressors).

Saved nodes carry pre-order ids from 0; leaves have children -1. A continuous split
sends ``x <= threshold`` left (NaN goes right); a categorical split sends ``x`` left when
it equals one of the stored left categories; a value that is none of the node's own
``numCategories`` categories (NaN, unseen, non-integer) goes right, or left when the left
side holds more than half of that node's categories (Spark then keeps the right ones).
All trees of a model are stacked into one node table and every row walks all trees at once,
one level per numpy step; a leaf
points to itself so rows that reach it early simply stay.

Outputs: a decision tree classifier's raw is the leaf's class counts; a random forest
sums each tree's normalised leaf counts; probabilities normalise raw. GBT: margin =
Σ weight_t · leaf_t; the classifier's raw is ``[-m, m]`` and ``p0 = 1/(1+exp(2m))``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import scipy.sparse as sp

from modelport.core.errors import ModelLoadError
from modelport.runtimes.sparkml.models._base import PredictorStage
from modelport.runtimes.sparkml.models._classifier import ProbabilisticClassifierStage
from modelport.runtimes.sparkml.reader import StageMeta, read_data
from modelport.runtimes.sparkml.stage import Frame, register
from modelport.runtimes.sparkml.vectors import RowVector, SparseRow, safe_exp

__all__ = [
    "DecisionTreeClassificationModel",
    "DecisionTreeRegressionModel",
    "GBTClassificationModel",
    "GBTRegressionModel",
    "RandomForestClassificationModel",
    "RandomForestRegressionModel",
]

_NODE_FIELDS = ("id", "prediction", "impurity", "impurityStats", "leftChild", "rightChild", "split")


def _tree_rows(meta: StageMeta, ensemble: bool) -> dict[int, list[dict[str, Any]]]:
    """Node rows per tree id (a single tree is tree 0)."""
    table = read_data(meta.path)
    try:
        if not ensemble:
            cols = {f: table.column(f).to_pylist() for f in _NODE_FIELDS}
            nodes = [dict(zip(_NODE_FIELDS, vals, strict=True)) for vals in zip(*cols.values(), strict=True)]
            return {0: nodes}
        tree_ids = table.column("treeID").to_pylist()
        node_data = table.column("nodeData").to_pylist()
    except KeyError as exc:
        raise ModelLoadError(f"{meta.path}: {meta.short_class} data/ lacks column {exc}") from None
    trees: dict[int, list[dict[str, Any]]] = {}
    for tid, node in zip(tree_ids, node_data, strict=True):
        trees.setdefault(int(tid), []).append(node)
    return trees


def _tree_weights(meta: StageMeta, n_trees: int) -> np.ndarray:
    """Per-tree weights from ``treesMetadata/`` (columns treeID, metadata, weights; Spark 4 names them _1.._3)."""
    table = read_data(meta.path, "treesMetadata")
    ids = np.asarray(table.column(0).to_pylist(), dtype=np.int64)
    weights = np.asarray(table.column(2).to_pylist(), dtype=np.float64)
    out = np.full(n_trees, np.nan)
    out[ids] = weights
    if np.isnan(out).any():
        raise ModelLoadError(f"{meta.path}: treesMetadata/ lacks weights for some of the {n_trees} trees")
    return out


class _Forest:
    """All trees of a model as flat arrays, routed together."""

    def __init__(self, meta: StageMeta, trees: dict[int, list[dict[str, Any]]], num_features: int) -> None:
        self.n_trees = len(trees)
        if sorted(trees) != list(range(self.n_trees)):
            raise ModelLoadError(f"{meta.path}: tree ids are not 0..{self.n_trees - 1}")
        total = sum(len(nodes) for nodes in trees.values())
        self.feat = np.zeros(total, dtype=np.intp)
        self.thr = np.full(total, np.nan)
        self.left = np.arange(total, dtype=np.intp)
        self.right = np.arange(total, dtype=np.intp)
        self.prediction = np.zeros(total)
        self.impurity = np.zeros(total)
        stats: list[list[float]] = []
        cat_rows: list[tuple[int, list[float], int]] = []
        self.roots = np.zeros(self.n_trees, dtype=np.intp)
        depth = 0
        base = 0
        for t in range(self.n_trees):
            nodes = sorted(trees[t], key=lambda n: int(n["id"]))
            n = len(nodes)
            if [int(node["id"]) for node in nodes] != list(range(n)):
                raise ModelLoadError(f"{meta.path}: tree {t} node ids are not 0..{n - 1}")
            self.roots[t] = base
            node_depth = np.zeros(n, dtype=np.int64)
            for i, node in enumerate(nodes):
                g = base + i
                self.prediction[g] = float(node["prediction"])
                self.impurity[g] = float(node["impurity"])
                stats.append(list(node["impurityStats"] or []))
                lc, rc = int(node["leftChild"]), int(node["rightChild"])
                if lc < 0 or rc < 0:
                    continue
                if not (i < lc < n and i < rc < n):
                    raise ModelLoadError(f"{meta.path}: tree {t} node {i} has children {lc}, {rc} outside the tree")
                split = node["split"]
                f = int(split["featureIndex"])
                if not 0 <= f < num_features:
                    raise ModelLoadError(
                        f"{meta.path}: tree {t} node {i} splits on feature {f}, model has {num_features}"
                    )
                self.feat[g] = f
                self.left[g], self.right[g] = base + lc, base + rc
                node_depth[lc] = node_depth[rc] = node_depth[i] + 1
                values = list(split["leftCategoriesOrThreshold"])
                num_cat = int(split["numCategories"])
                if num_cat < 0:
                    if len(values) != 1:
                        raise ModelLoadError(f"{meta.path}: tree {t} node {i}: continuous split needs one threshold")
                    self.thr[g] = float(values[0])
                else:
                    cat_rows.append((g, values, num_cat))
            depth = max(depth, int(node_depth.max()) if n else 0)
            base += n
        self.depth = depth
        width = max((len(s) for s in stats), default=0)
        self.stats = np.zeros((total, width))
        for g, s in enumerate(stats):
            self.stats[g, : len(s)] = s
        # Categorical splits: a boolean table row per categorical node.
        self.cat_row = np.full(total, -1, dtype=np.intp)
        cat_width = max((nc for _, _, nc in cat_rows), default=0)
        self.cat_table = np.zeros((len(cat_rows), max(cat_width, 1)), dtype=bool)
        # Spark keeps whichever side is smaller: with more than numCategories/2 left categories it
        # stores the right ones, and a value outside them (NaN, unseen, non-integer) then goes left.
        self.cat_other_left = np.zeros(len(cat_rows), dtype=bool)
        # Each node's own category count: a value at or past it is no category of that node.
        self.cat_count = np.zeros(len(cat_rows), dtype=np.float64)
        for r, (g, values, num_cat) in enumerate(cat_rows):
            self.cat_row[g] = r
            self.cat_count[r] = num_cat
            self.cat_other_left[r] = len(values) > num_cat // 2
            for v in values:
                if not (0 <= v < num_cat and v == int(v)):
                    raise ModelLoadError(f"{meta.path}: categorical split category {v} is outside [0, {num_cat})")
                self.cat_table[r, int(v)] = True
        self.cat_width = cat_width
        self.has_cat = bool(cat_rows)
        internal = self.left != np.arange(total)
        used = np.unique(self.feat[internal])
        self.used = used if used.size else np.zeros(1, dtype=np.intp)
        self.compact_feat = np.searchsorted(self.used, self.feat).astype(np.intp)
        self.compact_feat[~internal] = 0
        # The row path walks the same tables as Python lists.
        self._row_tables = (
            self.roots.tolist(),
            self.feat.tolist(),
            self.thr.tolist(),
            self.left.tolist(),
            self.right.tolist(),
            self.cat_row.tolist(),
            [frozenset(np.flatnonzero(r).tolist()) for r in self.cat_table],
            self.cat_other_left.tolist(),
            self.cat_count.tolist(),
        )
        self.prediction_list: list[float] = self.prediction.tolist()
        self.impurity_list: list[float] = self.impurity.tolist()
        self.stats_list: list[list[float]] = self.stats.tolist()

    def leaves_row(self, x: RowVector) -> list[int]:
        """:meth:`leaves` for one row: the leaf id reached in each tree, in tree order."""
        roots, feat, thr, left, right, cat_row, cat_left, other_left, cat_count = self._row_tables
        if isinstance(x, SparseRow):
            sparse = dict(zip(x.indices, x.values, strict=True))
            get = sparse.get
            xs: Any = None
        else:
            xs = x
        out = []
        for g in roots:
            while left[g] != g:
                f = feat[g]
                v = xs[f] if xs is not None else get(f, 0.0)
                r = cat_row[g]
                if r < 0:
                    g = left[g] if v <= thr[g] else right[g]
                elif 0 <= v < cat_count[r] and v == math.floor(v):
                    g = left[g] if int(v) in cat_left[r] else right[g]
                else:
                    g = left[g] if other_left[r] else right[g]
            out.append(g)
        return out

    def leaves(self, x: Any) -> np.ndarray:
        """``(rows, trees)`` global ids of the leaf each row reaches in each tree."""
        if sp.issparse(x):
            xd = np.asarray(x[:, self.used].toarray(), dtype=np.float64)
            feat = self.compact_feat
        else:
            xd, feat = x, self.feat
        n = xd.shape[0]
        cur = np.repeat(self.roots[None, :], n, axis=0)
        if self.depth == 0 or n == 0:
            return cur
        rows = np.arange(n)[:, None]
        for _ in range(self.depth):
            v = xd[rows, feat[cur]]
            go_left = v <= self.thr[cur]
            if self.has_cat:
                cr = self.cat_row[cur]
                is_cat = cr >= 0
                if is_cat.any():
                    vc = v[is_cat]
                    rows_cat = cr[is_cat]
                    with np.errstate(invalid="ignore"):
                        ok = (vc >= 0) & (vc < self.cat_count[rows_cat]) & (vc == np.floor(vc))
                    idx = np.where(ok, vc, 0).astype(np.intp)
                    go_left[is_cat] = np.where(ok, self.cat_table[rows_cat, idx], self.cat_other_left[rows_cat])
            cur = np.where(go_left, self.left[cur], self.right[cur])
        return cur


def _tree_sum(values: np.ndarray, leaves: np.ndarray) -> np.ndarray:
    """``Σ_t values[leaf_t]`` per row, one tree after another as Spark's loop adds them.

    ``values[leaves].sum(axis=...)`` may be reordered by numpy (pairwise summation), which
    changes the last bits against Spark's sequential sum.
    """
    acc = np.zeros((leaves.shape[0], *values.shape[1:]))
    for t in range(leaves.shape[1]):
        acc += values[leaves[:, t]]
    return acc


def _gbt_sum(values: np.ndarray, leaves: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """``Σ_t weight_t · leaf_t`` per row for GBT models.

    Spark takes it with ``BLAS.ddot``, on Java 17+ SIMD lanes with fused multiply-adds whose order
    depends on the CPU; numpy's (partly pairwise) sum lands closer to it than a sequential sum
    (measured: half the rows bit-equal against a sixth; worst relative difference 5.5e-16).
    """
    out: np.ndarray = (weights[:, None] * values[leaves.T]).sum(axis=0)
    return out


def _num(meta: StageMeta, key: str) -> int:
    value = meta.raw.get(key)
    if value is None:
        raise ModelLoadError(f"{meta.path}: {meta.short_class} metadata lacks '{key}'")
    return int(value)


def _no_leaf_col(meta: StageMeta) -> None:
    if meta.get("leafCol"):
        raise ModelLoadError(
            f"{meta.path}: {meta.short_class} sets leafCol='{meta.get('leafCol')}', which modelport does not "
            "support; clear leafCol (supported outputs: prediction, rawPrediction, probability, variance)"
        )


class _TreeClassifier(ProbabilisticClassifierStage):
    ensemble = False

    def __init__(self, meta: StageMeta) -> None:
        super().__init__(meta)
        _no_leaf_col(meta)
        self.num_features = _num(meta, "numFeatures")
        self.num_classes = _num(meta, "numClasses") if "numClasses" in meta.raw else 2
        self.forest = _Forest(meta, _tree_rows(meta, self.ensemble), self.num_features)
        self.check_thresholds()

    def raw_to_probability(self, raw: np.ndarray) -> np.ndarray:
        total = raw.sum(axis=1, keepdims=True)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(total != 0, raw / np.where(total != 0, total, 1.0), raw)

    def prob_row(self, raw: list[float]) -> list[float]:
        total = 0.0
        for v in raw:  # one after another, as Spark (builtin sum() compensates from Python 3.12)
            total += v
        return [v / total for v in raw] if total != 0 else list(raw)

    def summary(self) -> str:
        f = self.forest
        return f"{f.n_trees} trees, depth {f.depth}, " + super().summary()


@register
class DecisionTreeClassificationModel(_TreeClassifier):
    spark_classes = ("org.apache.spark.ml.classification.DecisionTreeClassificationModel",)

    def __init__(self, meta: StageMeta) -> None:
        super().__init__(meta)
        if self.forest.stats.shape[1] != self.num_classes:
            raise ModelLoadError(
                f"{meta.path}: leaf class counts have {self.forest.stats.shape[1]} entries, expected {self.num_classes}"
            )

    def predict_raw(self, x: Any) -> np.ndarray:
        return self.forest.stats[self.forest.leaves(x)[:, 0]]

    def predict(self, x: Any) -> np.ndarray:
        return self.forest.prediction[self.forest.leaves(x)[:, 0]]

    def raw_row(self, x: RowVector) -> list[float]:
        return list(self.forest.stats_list[self.forest.leaves_row(x)[0]])

    def predict_row(self, x: RowVector) -> float:
        return self.forest.prediction_list[self.forest.leaves_row(x)[0]]


@register
class RandomForestClassificationModel(_TreeClassifier):
    spark_classes = ("org.apache.spark.ml.classification.RandomForestClassificationModel",)
    ensemble = True

    def __init__(self, meta: StageMeta) -> None:
        super().__init__(meta)
        stats = self.forest.stats
        if stats.shape[1] != self.num_classes:
            raise ModelLoadError(
                f"{meta.path}: leaf class counts have {stats.shape[1]} entries, expected {self.num_classes}"
            )
        # Each tree votes with its leaf's counts divided by their (sequential) sum; empty leaves abstain.
        total = np.cumsum(stats, axis=1)[:, -1:] if stats.shape[1] else np.zeros((len(stats), 1))
        self.votes = np.where(total != 0, stats / np.where(total != 0, total, 1.0), 0.0)
        self.votes_list: list[list[float]] = self.votes.tolist()

    def raw_row(self, x: RowVector) -> list[float]:
        votes = self.votes_list
        leaves = self.forest.leaves_row(x)
        acc = list(votes[leaves[0]])
        for g in leaves[1:]:
            acc = [a + b for a, b in zip(acc, votes[g], strict=True)]
        return acc

    def predict_raw(self, x: Any) -> np.ndarray:
        return _tree_sum(self.votes, self.forest.leaves(x))


@register
class GBTClassificationModel(ProbabilisticClassifierStage):
    spark_classes = ("org.apache.spark.ml.classification.GBTClassificationModel",)

    def __init__(self, meta: StageMeta) -> None:
        super().__init__(meta)
        _no_leaf_col(meta)
        loss = str(meta.get("lossType", "logistic")).lower()
        if loss != "logistic":
            raise ModelLoadError(f"{meta.path}: GBTClassificationModel lossType '{loss}' (supported: logistic)")
        self.num_features = _num(meta, "numFeatures")
        self.num_classes = 2
        self.forest = _Forest(meta, _tree_rows(meta, True), self.num_features)
        self.weights = _tree_weights(meta, self.forest.n_trees)
        self.weights_list: list[float] = self.weights.tolist()
        self.check_thresholds()

    def margin(self, x: Any) -> np.ndarray:
        return _gbt_sum(self.forest.prediction, self.forest.leaves(x), self.weights)

    def predict_raw(self, x: Any) -> np.ndarray:
        m = self.margin(x)
        return np.stack([-m, m], axis=1)

    def raw_to_probability(self, raw: np.ndarray) -> np.ndarray:
        with np.errstate(over="ignore"):
            p0 = 1.0 / (1.0 + np.exp(-2.0 * raw[:, 0]))
        return np.stack([p0, 1.0 - p0], axis=1)

    def predict(self, x: Any) -> np.ndarray:
        if self.thresholds is not None:
            return super().predict(x)
        return (self.margin(x) > 0.0).astype(np.float64)

    def margin_row(self, x: RowVector) -> float:
        pred = self.forest.prediction_list
        leaves = self.forest.leaves_row(x)
        total = self.weights_list[0] * pred[leaves[0]]
        for w, g in zip(self.weights_list[1:], leaves[1:], strict=True):
            total += w * pred[g]
        return total

    def raw_row(self, x: RowVector) -> list[float]:
        m = self.margin_row(x)
        return [-m, m]

    def prob_row(self, raw: list[float]) -> list[float]:
        p0 = 1.0 / (1.0 + safe_exp(-2.0 * raw[0]))
        return [p0, 1.0 - p0]

    def predict_row(self, x: RowVector) -> float:
        if self.thresholds is not None:
            return super().predict_row(x)
        return 1.0 if self.margin_row(x) > 0.0 else 0.0

    def summary(self) -> str:
        return f"{self.forest.n_trees} trees, depth {self.forest.depth}, " + super().summary()


class _TreeRegressor(PredictorStage):
    ensemble = True

    def __init__(self, meta: StageMeta) -> None:
        super().__init__(meta)
        _no_leaf_col(meta)
        self.num_features = _num(meta, "numFeatures")
        self.forest = _Forest(meta, _tree_rows(meta, self.ensemble), self.num_features)

    def predict(self, x: Any) -> np.ndarray:
        raise NotImplementedError

    def transform(self, frame: Frame) -> None:
        col = self.col("predictionCol")
        if col:
            frame[col] = self.predict(self.features(frame))

    def predict_row(self, leaves: list[int]) -> float:
        """The prediction from the leaf each tree reached (tree order)."""
        raise NotImplementedError

    def row(self, values: dict[str, Any]) -> bool:
        x = self.row_features(values)
        if x is None:
            return False
        leaves = self.forest.leaves_row(x)
        col = self.col("predictionCol")
        if col:
            values[col] = self.predict_row(leaves)
        var_col = self.col("varianceCol")
        if var_col:
            values[var_col] = self.forest.impurity_list[leaves[0]]
        return True

    def summary(self) -> str:
        return f"{self.forest.n_trees} trees, depth {self.forest.depth}, {self.num_features} features"


@register
class DecisionTreeRegressionModel(_TreeRegressor):
    """prediction = the leaf's mean; ``varianceCol`` (when set) = the leaf's impurity (variance)."""

    spark_classes = ("org.apache.spark.ml.regression.DecisionTreeRegressionModel",)
    output_params = (("predictionCol", "prediction"), ("varianceCol", ""))
    ensemble = False

    def predict(self, x: Any) -> np.ndarray:
        return self.forest.prediction[self.forest.leaves(x)[:, 0]]

    def transform(self, frame: Frame) -> None:
        pred_col, var_col = self.col("predictionCol"), self.col("varianceCol")
        if not (pred_col or var_col):
            return
        leaves = self.forest.leaves(self.features(frame))[:, 0]
        if pred_col:
            frame[pred_col] = self.forest.prediction[leaves]
        if var_col:
            frame[var_col] = self.forest.impurity[leaves]

    def predict_row(self, leaves: list[int]) -> float:
        return self.forest.prediction_list[leaves[0]]


@register
class RandomForestRegressionModel(_TreeRegressor):
    """prediction = mean of the trees' leaf values (summed in tree order, divided by the tree count)."""

    spark_classes = ("org.apache.spark.ml.regression.RandomForestRegressionModel",)

    def predict(self, x: Any) -> np.ndarray:
        out: np.ndarray = _tree_sum(self.forest.prediction, self.forest.leaves(x)) / self.forest.n_trees
        return out

    def predict_row(self, leaves: list[int]) -> float:
        pred = self.forest.prediction_list
        total = pred[leaves[0]]
        for g in leaves[1:]:
            total += pred[g]
        return total / self.forest.n_trees


@register
class GBTRegressionModel(_TreeRegressor):
    """prediction = Σ weight_t · leaf_t."""

    spark_classes = ("org.apache.spark.ml.regression.GBTRegressionModel",)

    def __init__(self, meta: StageMeta) -> None:
        super().__init__(meta)
        self.weights = _tree_weights(meta, self.forest.n_trees)
        self.weights_list: list[float] = self.weights.tolist()

    def predict(self, x: Any) -> np.ndarray:
        return _gbt_sum(self.forest.prediction, self.forest.leaves(x), self.weights)

    def predict_row(self, leaves: list[int]) -> float:
        pred, weights = self.forest.prediction_list, self.weights_list
        total = weights[0] * pred[leaves[0]]
        for w, g in zip(weights[1:], leaves[1:], strict=True):
            total += w * pred[g]
        return total
