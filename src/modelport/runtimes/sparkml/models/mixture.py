"""GaussianMixtureModel and BisectingKMeansModel (``ml/clustering/``).

GaussianMixture: each component's density is Spark's ``MultivariateGaussian``: from the symmetric
eigen-decomposition ``Σ = U diag(d) Uᵀ``, eigenvalues above ``tol = ε · max(d) · k`` count
(a pseudo-inverse and pseudo-determinant otherwise), ``log pdf = −½(k log 2π + Σ log d_i) −
½‖diag(d^-½) Uᵀ (x − μ)‖²``. ``probability_i = (ε + w_i · pdf_i) / Σ_j (ε + w_j · pdf_j)`` with
ε = 2.22e-16 (``MLUtils.EPSILON``); ``prediction`` = its first argmax (an int).

BisectingKMeans: Spark stores the cluster tree (``data/data``: node index, center, children;
``data/metadata``: rootId, distanceMeasure). A point walks down from the root to the closest
child (the first on ties) until a leaf; the leaf's index is the cluster.
"""

from __future__ import annotations

import json
import math
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp

from modelport.core.errors import ModelLoadError
from modelport.runtimes.sparkml.models._base import PredictorStage, row_argmax, spark_argmax
from modelport.runtimes.sparkml.reader import StageMeta, dense_vector, matrix, read_data
from modelport.runtimes.sparkml.stage import Frame, register
from modelport.runtimes.sparkml.vectors import RowVector, row_dense, to_dense

__all__ = ["BisectingKMeansModel", "GaussianMixtureModel"]

_EPSILON = 2.220446049250313e-16


@register
class GaussianMixtureModel(PredictorStage):
    spark_classes = ("org.apache.spark.ml.clustering.GaussianMixtureModel",)
    output_params: ClassVar[tuple[tuple[str, str], ...]] = (
        ("probabilityCol", "probability"),
        ("predictionCol", "prediction"),
    )
    vector_params = frozenset({"probabilityCol"})

    def __init__(self, meta: StageMeta) -> None:
        super().__init__(meta)
        row = read_data(meta.path).to_pylist()[0]
        try:
            self.weights = np.asarray(row["weights"], dtype=np.float64)
            mus = [dense_vector(m) for m in row["mus"]]
            sigmas = [matrix(s) for s in row["sigmas"]]
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelLoadError(f"{meta.path}: unreadable GaussianMixtureModel data ({exc!r})") from None
        if not mus or len(mus) != len(sigmas) or len(mus) != len(self.weights):
            raise ModelLoadError(f"{meta.path}: GaussianMixtureModel weights, means and covariances do not match")
        self.k = len(mus)
        self.num_features = len(mus[0])
        self.vector_size = self.k
        self.means = np.array(mus)
        self.roots: list[np.ndarray] = []
        self.consts: list[float] = []
        for sigma in sigmas:
            d, u = np.linalg.eigh(sigma)
            tol = _EPSILON * float(np.max(d)) * len(d)
            keep = d > tol
            log_det = float(np.sum(np.log(d[keep])))
            inv_sqrt = np.where(keep, np.sqrt(1.0 / np.where(keep, d, 1.0)), 0.0)
            self.roots.append(inv_sqrt[:, None] * u.T)
            self.consts.append(-0.5 * (self.num_features * math.log(2.0 * math.pi) + log_det))

    def output_spec(self, column: str) -> tuple[str, tuple[int, ...]]:
        if column == self.col("predictionCol"):
            return "INT32", (-1,)
        return super().output_spec(column)

    def probabilities(self, x: np.ndarray) -> np.ndarray:
        p = np.empty((x.shape[0], self.k), dtype=np.float64)
        for i in range(self.k):
            v = (x - self.means[i]) @ self.roots[i].T
            with np.errstate(under="ignore", over="ignore"):
                pdf = np.exp(self.consts[i] + (v * v).sum(axis=1) * -0.5)
            p[:, i] = _EPSILON + self.weights[i] * pdf
        total = p.sum(axis=1)
        out: np.ndarray = p / total[:, None]
        return out

    def transform(self, frame: Frame) -> None:
        x = to_dense(self.features(frame))
        prob = self.probabilities(x)
        if self.col("probabilityCol"):
            frame[self.col("probabilityCol")] = prob
        if self.col("predictionCol"):
            frame[self.col("predictionCol")] = spark_argmax(prob).astype(np.int32)

    def row(self, values: dict[str, Any]) -> bool:
        x = self.row_features(values)
        if x is None:
            return False
        prob = self.probabilities(np.array([row_dense(x)], dtype=np.float64))[0].tolist()
        if self.col("probabilityCol"):
            values[self.col("probabilityCol")] = prob
        if self.col("predictionCol"):
            values[self.col("predictionCol")] = row_argmax(prob)
        return True

    def summary(self) -> str:
        return f"k={self.k}, {self.num_features} features"


@register
class BisectingKMeansModel(PredictorStage):
    spark_classes = ("org.apache.spark.ml.clustering.BisectingKMeansModel",)

    def __init__(self, meta: StageMeta) -> None:
        super().__init__(meta)
        base = meta.path / "data"
        try:
            inner = json.loads(
                next(p for p in sorted((base / "metadata").glob("part-*")) if p.stat().st_size)
                .read_text()
                .splitlines()[0]
            )
            table = read_data(base, "data")
        except (StopIteration, OSError, ValueError) as exc:
            raise ModelLoadError(f"{meta.path}: unreadable BisectingKMeansModel tree ({exc!r})") from None
        self.measure = str(inner.get("distanceMeasure") or meta.get("distanceMeasure") or "euclidean").lower()
        if self.measure not in ("euclidean", "cosine"):
            raise ModelLoadError(f"{meta.path}: BisectingKMeansModel distanceMeasure '{self.measure}' is not supported")
        nodes = {int(r["index"]): r for r in table.to_pylist()}
        root = int(inner.get("rootId", -1))
        if root not in nodes:
            raise ModelLoadError(f"{meta.path}: BisectingKMeansModel tree has no root node {root}")
        self.centers = {i: dense_vector(r["center"]) for i, r in nodes.items()}
        self.children = {i: [int(c) for c in (r["children"] or [])] for i, r in nodes.items()}
        self.root = root
        self.num_features = len(self.centers[root])
        self.k = sum(1 for c in self.children.values() if not c)

    def output_spec(self, column: str) -> tuple[str, tuple[int, ...]]:
        return "INT32", (-1,)

    def _distance(self, x: np.ndarray, center: np.ndarray) -> np.ndarray:
        if self.measure == "cosine":
            norm = np.sqrt((x * x).sum(axis=1))
            with np.errstate(invalid="ignore", divide="ignore"):
                out: np.ndarray = 1.0 - (x @ center) / norm / float(np.sqrt(center @ center))
            return out
        d = x - center
        result: np.ndarray = (d * d).sum(axis=1)
        return result

    def predict_clusters(self, x: np.ndarray) -> np.ndarray:
        node = np.full(x.shape[0], self.root, dtype=np.int64)
        while True:
            moved = False
            for parent in np.unique(node):
                kids = self.children[int(parent)]
                if not kids:
                    continue
                at = np.flatnonzero(node == parent)
                dist = np.stack([self._distance(x[at], self.centers[c]) for c in kids], axis=1)
                dist = np.where(np.isnan(dist), np.inf, dist)
                node[at] = np.asarray(kids)[np.argmin(dist, axis=1)]
                moved = True
            if not moved:
                return node.astype(np.int32)

    def transform(self, frame: Frame) -> None:
        col = self.col("predictionCol")
        if col:
            x = self.features(frame)
            frame[col] = self.predict_clusters(x.toarray() if sp.issparse(x) else x)

    def row(self, values: dict[str, Any]) -> bool:
        x: RowVector | None = self.row_features(values)
        if x is None:
            return False
        col = self.col("predictionCol")
        if col:
            values[col] = int(self.predict_clusters(np.array([row_dense(x)], dtype=np.float64))[0])
        return True

    def summary(self) -> str:
        return f"k={self.k}, {self.measure}, {self.num_features} features"
