"""LogisticRegressionModel parity with pyspark: binomial, multinomial, thresholds, sparse input."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import scipy.sparse as sp

from modelport.core.errors import InvalidInput
from tests.sparkml._util import assert_parity, load_stage, run_stage, vector_df
from tests.tolerance import assert_close

pytestmark = pytest.mark.slow

ALL = ["rawPrediction", "probability", "prediction"]


def _split(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    idx = rng.permutation(len(y))
    cut = int(len(y) * 0.7)
    return x[idx[:cut]], y[idx[:cut]], x[idx[cut:]]


def _fit_save(spark: Any, est: Any, x: np.ndarray, y: np.ndarray, path: Path) -> Any:
    model = est.fit(vector_df(spark, x, y))
    model.write().overwrite().save(str(path))
    return type(model).load(str(path))


@pytest.fixture(scope="module")
def cancer() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    from sklearn.datasets import load_breast_cancer

    x, y = load_breast_cancer(return_X_y=True)
    return _split(x, y)


@pytest.fixture(scope="module")
def iris() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    from sklearn.datasets import load_iris

    x, y = load_iris(return_X_y=True)
    return _split(x, y)


@pytest.mark.parametrize(
    "params",
    [{}, {"threshold": 0.3}, {"threshold": 0.0}, {"threshold": 1.0}, {"thresholds": [0.8, 0.2]}],
    ids=["default", "threshold0.3", "threshold0", "threshold1", "thresholds"],
)
def test_binomial(spark: Any, tmp_path: Path, cancer: Any, params: dict[str, Any]) -> None:
    from pyspark.ml.classification import LogisticRegression

    xtr, ytr, xte = cancer
    model = _fit_save(spark, LogisticRegression(maxIter=50, regParam=0.01, **params), xtr, ytr, tmp_path / "m")
    stage = load_stage(tmp_path / "m")
    assert stage.describe().startswith("LogisticRegressionModel(features -> rawPrediction, probability, prediction")
    assert_parity(stage, model, vector_df(spark, xte), xte, ALL)


def test_multinomial_three_classes_with_thresholds(spark: Any, tmp_path: Path, iris: Any) -> None:
    from pyspark.ml.classification import LogisticRegression

    xtr, ytr, xte = iris
    model = _fit_save(spark, LogisticRegression(maxIter=100), xtr, ytr, tmp_path / "plain")
    stage = load_stage(tmp_path / "plain")
    assert "multinomial" in stage.describe()
    assert stage.output_spec("probability") == ("FP64", (-1, 3))
    assert stage.output_spec("prediction") == ("FP64", (-1,))
    assert_parity(stage, model, vector_df(spark, xte), xte, ALL)

    model = _fit_save(spark, LogisticRegression(maxIter=100, thresholds=[0.2, 0.5, 0.0001]), xtr, ytr, tmp_path / "t")
    assert_parity(load_stage(tmp_path / "t"), model, vector_df(spark, xte), xte, ALL)


def test_multinomial_family_with_two_classes(spark: Any, tmp_path: Path, cancer: Any) -> None:
    from pyspark.ml.classification import LogisticRegression

    xtr, ytr, xte = cancer
    est = LogisticRegression(family="multinomial", maxIter=50, regParam=0.01, thresholds=[0.3, 0.7])
    model = _fit_save(spark, est, xtr, ytr, tmp_path / "m")
    stage = load_stage(tmp_path / "m")
    assert "multinomial" in stage.describe()
    assert_parity(stage, model, vector_df(spark, xte), xte, ALL)


def test_sparse_features_and_column_selection(spark: Any, tmp_path: Path, iris: Any) -> None:
    from pyspark.ml.classification import LogisticRegression

    xtr, ytr, xte = iris
    xtr = np.where(xtr > 3.0, xtr, 0.0)
    xte_sparse = sp.csr_matrix(np.where(xte > 3.0, xte, 0.0))
    est = LogisticRegression(maxIter=50, rawPredictionCol="", probabilityCol="p", predictionCol="label_hat")
    model = _fit_save(spark, est, xtr, ytr, tmp_path / "m")
    stage = load_stage(tmp_path / "m")
    assert stage.outputs == ["p", "label_hat"]
    frame = assert_parity(stage, model, vector_df(spark, xte_sparse), xte_sparse, ["p", "label_hat"])
    assert "rawPrediction" not in frame
    dense = run_stage(stage, xte_sparse.toarray())
    assert_close(dense["p"], frame["p"], what="dense vs sparse input")


def test_prediction_only_and_wrong_width(spark: Any, tmp_path: Path, cancer: Any) -> None:
    from pyspark.ml.classification import LogisticRegression

    xtr, ytr, xte = cancer
    est = LogisticRegression(maxIter=20, rawPredictionCol="", probabilityCol="", threshold=0.7)
    model = _fit_save(spark, est, xtr, ytr, tmp_path / "m")
    stage = load_stage(tmp_path / "m")
    assert stage.outputs == ["prediction"]
    assert_parity(stage, model, vector_df(spark, xte), xte, ["prediction"])
    with pytest.raises(InvalidInput, match=r"column 'features' has vectors of size 3, the model expects 30"):
        run_stage(stage, xte[:, :3])
