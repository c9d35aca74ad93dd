"""KMeansModel (``ml/clustering/KMeans.scala``, ``mllib/clustering/DistanceMeasure.scala``).

prediction (an int, as Spark's IntegerType) = the index of the closest center, the
first one on ties: squared Euclidean distance, or cosine distance
``1 − x·c / (|x| |c|)``. Spark fails on a zero vector under cosine distance (no direction),
so a request holding one gets a 400 naming the row.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp

from modelport.core.errors import ModelLoadError
from modelport.runtimes.sparkml.models._base import PredictorStage
from modelport.runtimes.sparkml.reader import StageMeta, dense_vector, read_data
from modelport.runtimes.sparkml.stage import Frame, register
from modelport.runtimes.sparkml.vectors import invalid

__all__ = ["KMeansModel"]

_CHUNK = 1 << 22  # elements of the (rows, k, d) difference block computed at once


@register
class KMeansModel(PredictorStage):
    spark_classes = ("org.apache.spark.ml.clustering.KMeansModel",)

    def __init__(self, meta: StageMeta) -> None:
        super().__init__(meta)
        table = read_data(meta.path)
        try:
            if "clusterIdx" in table.column_names:
                idx = table.column("clusterIdx").to_pylist()
                centers = [dense_vector(v) for v in table.column("clusterCenter").to_pylist()]
                order = np.argsort(idx)
                self.centers = np.array([centers[i] for i in order])
            else:  # Spark 1.x/2.0: one row per center, in order
                self.centers = np.array([dense_vector(v) for v in table.column("clusterCenters").to_pylist()])
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelLoadError(f"{meta.path}: unreadable KMeansModel data ({exc!r})") from None
        if self.centers.ndim != 2 or self.centers.shape[0] == 0:
            raise ModelLoadError(f"{meta.path}: KMeansModel has no cluster centers")
        self.k, self.num_features = self.centers.shape
        self.measure = str(meta.get("distanceMeasure", "euclidean")).lower()
        if self.measure not in ("euclidean", "cosine"):
            raise ModelLoadError(
                f"{meta.path}: KMeansModel distanceMeasure '{self.measure}' is not supported "
                "(supported: euclidean, cosine)"
            )
        self.center_sq = (self.centers * self.centers).sum(axis=1)
        self.center_norm = np.sqrt(self.center_sq)

    def output_spec(self, column: str) -> tuple[str, tuple[int, ...]]:
        return "INT32", (-1,)

    def distances(self, x: Any) -> np.ndarray:
        """``(rows, k)`` distances as Spark's distance measure defines them."""
        if self.measure == "cosine":
            dot = np.asarray(x @ self.centers.T)
            norm = np.sqrt(np.asarray(x.multiply(x).sum(axis=1)).ravel() if sp.issparse(x) else (x * x).sum(axis=1))
            with np.errstate(invalid="ignore", divide="ignore"):
                out: np.ndarray = 1.0 - dot / norm[:, None] / self.center_norm[None, :]
            return out
        if sp.issparse(x):
            sq = np.asarray(x.multiply(x).sum(axis=1)).ravel()
            return np.maximum(sq[:, None] - 2.0 * np.asarray(x @ self.centers.T) + self.center_sq[None, :], 0.0)
        n = x.shape[0]
        step = max(1, _CHUNK // max(1, self.k * self.num_features))
        res = np.empty((n, self.k))
        for start in range(0, n, step):
            d = x[start : start + step, None, :] - self.centers[None, :, :]
            res[start : start + step] = (d * d).sum(axis=2)
        return res

    def transform(self, frame: Frame) -> None:
        col = self.col("predictionCol")
        if not col:
            return
        x = self.features(frame)
        if self.measure == "cosine":
            self._check_nonzero(x)
        d = self.distances(x)
        d = np.where(np.isnan(d), np.inf, d)
        frame[col] = np.argmin(d, axis=1).astype(np.int32)

    def _check_nonzero(self, x: Any) -> None:
        sq = np.asarray(x.multiply(x).sum(axis=1)).ravel() if sp.issparse(x) else (x * x).sum(axis=1)
        zero = np.flatnonzero(sq == 0)
        if zero.size:
            raise invalid(
                f"KMeansModel ({self.meta.uid})",
                self.features_col,
                f"row {int(zero[0])} is a zero vector; cosine distance is not defined for it (Spark fails the job)",
            )

    def summary(self) -> str:
        return f"k={self.k}, {self.measure}, {self.num_features} features"
