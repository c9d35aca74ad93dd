"""Predictors inside saved PipelineModels (VectorAssembler + model), loaded with modelport.load_model."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

import modelport
from tests.sparkml._util import collect
from tests.tolerance import assert_close

pytestmark = pytest.mark.slow


def _columns_df(spark: Any, x: np.ndarray, y: np.ndarray | None) -> Any:
    names = [f"c{i}" for i in range(x.shape[1])]
    rows = [
        tuple(float(v) for v in row) + ((float(t),) if y is not None else ())
        for row, t in zip(x, y if y is not None else [None] * len(x), strict=True)
    ]
    return spark.createDataFrame(rows, names + (["label"] if y is not None else []))


def _estimators() -> dict[str, tuple[Any, list[str]]]:
    from pyspark.ml.classification import LogisticRegression, RandomForestClassifier
    from pyspark.ml.clustering import KMeans
    from pyspark.ml.regression import GBTRegressor, GeneralizedLinearRegression

    return {
        "lr": (LogisticRegression(maxIter=50), ["rawPrediction", "probability", "prediction"]),
        "rf": (RandomForestClassifier(numTrees=20, seed=1), ["rawPrediction", "probability", "prediction"]),
        "gbt": (GBTRegressor(maxIter=10, seed=1), ["prediction"]),
        "glm": (GeneralizedLinearRegression(family="poisson", link="sqrt"), ["prediction"]),
        "kmeans": (KMeans(k=3, seed=1), ["prediction"]),
    }


@pytest.mark.parametrize("kind", ["lr", "rf", "gbt", "glm", "kmeans"])
def test_pipeline_with_assembler(spark: Any, tmp_path: Path, kind: str) -> None:
    from pyspark.ml import Pipeline, PipelineModel
    from pyspark.ml.feature import VectorAssembler
    from sklearn.datasets import load_iris

    x, y = load_iris(return_X_y=True)
    est, cols = _estimators()[kind]
    assembler = VectorAssembler(inputCols=[f"c{i}" for i in range(4)], outputCol="features")
    fitted = Pipeline(stages=[assembler, est]).fit(_columns_df(spark, x, y))
    fitted.write().overwrite().save(str(tmp_path / "p"))
    spark_model = PipelineModel.load(str(tmp_path / "p"))
    expected = collect(spark_model.transform(_columns_df(spark, x, None)), cols)

    model = modelport.load_model(tmp_path / "p")
    assert [t.name for t in model.signature.inputs] == [f"c{i}" for i in range(4)]
    assert sorted(t.name for t in model.signature.outputs) == sorted(cols)
    got = model.predict({f"c{i}": x[:, i] for i in range(4)})
    for c in cols:
        # class and cluster labels are picked, not computed: exactly the same label
        exact = c == "prediction" and kind in ("lr", "rf", "kmeans")
        assert_close(np.asarray(got[c], dtype=np.float64), expected[c].astype(np.float64), exact=exact, what=c)
    # one row at a time gives the same answers
    one = model.predict({f"c{i}": x[7:8, i] for i in range(4)})
    for c in cols:
        assert_close(np.asarray(one[c], dtype=np.float64)[0], np.asarray(got[c], dtype=np.float64)[7], what=c)
