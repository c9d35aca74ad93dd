"""MultilayerPerceptronClassificationModel (``ml/classification/MultilayerPerceptronClassifier.scala``,
``ml/ann/Layer.scala``).

Layers ``[n0, n1, ..., nk]``: affine layers with sigmoid between them; the weight vector
holds, per affine layer, its ``(out, in)`` matrix in column-major order followed by its
``out`` biases. rawPrediction is the last affine output (before softmax); probability
is its softmax (max subtracted); prediction the argmax.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from modelport.core.errors import ModelLoadError
from modelport.runtimes.sparkml.models._base import first_row
from modelport.runtimes.sparkml.models._classifier import ProbabilisticClassifierStage
from modelport.runtimes.sparkml.reader import StageMeta, dense_vector
from modelport.runtimes.sparkml.stage import register

__all__ = ["MultilayerPerceptronClassificationModel"]


@register
class MultilayerPerceptronClassificationModel(ProbabilisticClassifierStage):
    spark_classes = ("org.apache.spark.ml.classification.MultilayerPerceptronClassificationModel",)

    def __init__(self, meta: StageMeta) -> None:
        super().__init__(meta)
        row = first_row(meta)
        try:
            layers = row.get("layers") or meta.get("layers")  # Spark 2 saves layers in data/
            self.layers = [int(v) for v in layers]
            weights = dense_vector(row["weights"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelLoadError(f"{meta.path}: unreadable MultilayerPerceptron data ({exc!r})") from None
        if len(self.layers) < 2:
            raise ModelLoadError(f"{meta.path}: MultilayerPerceptron needs at least 2 layers, got {self.layers}")
        expected = sum(a * b + b for a, b in zip(self.layers[:-1], self.layers[1:], strict=False))
        if len(weights) != expected:
            raise ModelLoadError(
                f"{meta.path}: MultilayerPerceptron layers {self.layers} need {expected} weights, got {len(weights)}"
            )
        self.w: list[np.ndarray] = []  # each (in, out), so that x @ w works for dense and sparse x
        self.b: list[np.ndarray] = []
        pos = 0
        for n_in, n_out in zip(self.layers[:-1], self.layers[1:], strict=False):
            w = weights[pos : pos + n_in * n_out].reshape(n_in, n_out)  # column-major (out, in) == row-major (in, out)
            pos += n_in * n_out
            self.w.append(np.ascontiguousarray(w))
            self.b.append(weights[pos : pos + n_out].copy())
            pos += n_out
        self.num_features = self.layers[0]
        self.num_classes = self.layers[-1]
        self.check_thresholds()

    def predict_raw(self, x: Any) -> np.ndarray:
        h = x
        last = len(self.w) - 1
        with np.errstate(over="ignore"):
            for i, (w, b) in enumerate(zip(self.w, self.b, strict=True)):
                h = np.asarray(h @ w) + b
                if i < last:
                    h = 1.0 / (1.0 + np.exp(-h))
        out: np.ndarray = h
        return out

    def raw_to_probability(self, raw: np.ndarray) -> np.ndarray:
        top = raw.max(axis=1, keepdims=True) if raw.shape[0] else raw
        with np.errstate(invalid="ignore", over="ignore"):
            e = np.exp(raw - top)
            out: np.ndarray = e / e.sum(axis=1, keepdims=True)
        return out

    def summary(self) -> str:
        return f"layers {self.layers}"
