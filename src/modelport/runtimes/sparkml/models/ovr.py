"""OneVsRestModel (``ml/classification/OneVsRest.scala``): one binary classifier per class.

Spark saves the binary models in ``model_0/`` … ``model_<k-1>/`` (PySpark's own writer, used when
the pipeline around it is written by Python, does the same under a ``pyspark.`` class name).
rawPrediction is ``[m_i.rawPrediction(1) for each model i]`` and the prediction is its first
argmax (Spark's ``Vector.argmax``).
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from modelport.core.errors import ModelLoadError
from modelport.runtimes.sparkml.models._base import row_argmax, spark_argmax
from modelport.runtimes.sparkml.models._classifier import ClassifierStage
from modelport.runtimes.sparkml.reader import StageMeta, read_metadata
from modelport.runtimes.sparkml.stage import STAGES, Frame, RowStep, register
from modelport.runtimes.sparkml.vectors import RowVector

__all__ = ["OneVsRestModel"]


@register
class OneVsRestModel(ClassifierStage):
    spark_classes = (
        "org.apache.spark.ml.classification.OneVsRestModel",
        "pyspark.ml.classification.OneVsRestModel",
    )
    output_params: ClassVar[tuple[tuple[str, str], ...]] = (
        ("rawPredictionCol", "rawPrediction"),
        ("predictionCol", "prediction"),
    )

    def __init__(self, meta: StageMeta) -> None:
        super().__init__(meta)
        dirs = sorted(
            (p for p in meta.path.iterdir() if p.is_dir() and p.name.startswith("model_")),
            key=lambda p: int(p.name.split("_", 1)[1]) if p.name.split("_", 1)[1].isdigit() else -1,
        )
        if not dirs:
            raise ModelLoadError(f"{meta.path}: OneVsRestModel has no model_<i>/ directories")
        declared = meta.raw.get("numClasses")
        if declared is not None and int(declared) != len(dirs):
            raise ModelLoadError(f"{meta.path}: OneVsRestModel declares {declared} classes but has {len(dirs)} models")
        self.models: list[ClassifierStage] = []
        for d in dirs:
            sub = read_metadata(d)
            impl = STAGES.get(sub.cls)
            if impl is None or not issubclass(impl, ClassifierStage):
                raise ModelLoadError(
                    f"{d}: OneVsRestModel's binary classifier {sub.cls} (uid {sub.uid}) is not a supported "
                    "classification model"
                )
            model = impl(sub)
            if model.num_classes != 2:
                raise ModelLoadError(f"{d}: OneVsRestModel's classifier has {model.num_classes} classes, not 2")
            self.models.append(model)
        self.num_classes = len(self.models)
        self.num_features = self.models[0].num_features
        self.vector_size = self.num_classes

    def predict_raw(self, x: Any) -> np.ndarray:
        return np.stack([m.predict_raw(x)[:, 1] for m in self.models], axis=1)

    def raw_to_prediction(self, raw: np.ndarray) -> np.ndarray:
        return spark_argmax(raw).astype(np.float64)

    def transform(self, frame: Frame) -> None:
        x = self.features(frame)
        raw = self.predict_raw(x)
        if self.col("rawPredictionCol"):
            frame[self.col("rawPredictionCol")] = raw
        if self.col("predictionCol"):
            frame[self.col("predictionCol")] = self.raw_to_prediction(raw)

    def raw_row(self, x: RowVector) -> list[float]:
        return [m.raw_row(x)[1] for m in self.models]

    def raw_to_prediction_row(self, raw: list[float]) -> float:
        return float(row_argmax(raw))

    def row_step(self) -> RowStep | None:
        if any(m.row_step() is None for m in self.models):
            return None
        return self.row

    def summary(self) -> str:
        return f"{self.num_features} features, {self.num_classes} x {self.models[0].meta.short_class}"
