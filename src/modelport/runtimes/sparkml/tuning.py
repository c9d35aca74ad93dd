"""Saved tuning results: a CrossValidatorModel or TrainValidationSplitModel directory serves its ``bestModel``.

Spark's writers (``ml/tuning/CrossValidator.scala``, ``TrainValidationSplit.scala``, and PySpark's own
writers for Python-only estimators) put the winning model in ``bestModel/`` next to ``estimator/``,
``evaluator/`` and, when kept, ``subModels/``. The metadata records the metric of every grid point
(``avgMetrics`` / ``validationMetrics``), which ``modelport inspect`` shows next to the best one.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from modelport.core.errors import ModelLoadError
from modelport.runtimes.sparkml.reader import StageMeta, read_metadata

__all__ = ["TUNING_CLASSES", "best_model", "tuning_info"]

TUNING_CLASSES = frozenset(
    {
        "org.apache.spark.ml.tuning.CrossValidatorModel",
        "org.apache.spark.ml.tuning.TrainValidationSplitModel",
        "pyspark.ml.tuning.CrossValidatorModel",
        "pyspark.ml.tuning.TrainValidationSplitModel",
    }
)


def best_model(path: Path, meta: StageMeta) -> tuple[Path, StageMeta]:
    """The ``bestModel`` directory of a saved tuning result and its metadata."""
    best = path / "bestModel"
    if not best.is_dir():
        raise ModelLoadError(f"{path}: a saved {meta.short_class} has no bestModel/ directory")
    return best, read_metadata(best)


def _metrics(meta: StageMeta) -> list[float]:
    raw = meta.raw.get("avgMetrics") or meta.raw.get("validationMetrics") or []
    out = []
    for v in raw:
        try:
            out.append(float(v))
        except (TypeError, ValueError):
            out.append(math.nan)
    return out


def tuning_info(meta: StageMeta, best: StageMeta) -> dict[str, Any]:
    """What ``inspect`` shows about a tuning result: that the best model is served, and the grid's metrics."""
    metrics = _metrics(meta)
    kind = "avgMetrics" if "avgMetrics" in meta.raw else "validationMetrics"
    info: dict[str, Any] = {
        "serves": f"bestModel ({best.short_class}, uid {best.uid}) of a {meta.short_class}",
    }
    if metrics:
        info["tuning_metrics"] = f"{kind}: {', '.join(f'{m:.6g}' for m in metrics)}"
    return info
