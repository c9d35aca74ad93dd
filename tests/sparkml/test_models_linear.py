"""LinearRegression, GeneralizedLinearRegression and LinearSVC parity with pyspark."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import scipy.sparse as sp

from modelport.core.errors import InvalidInput
from tests.sparkml._util import assert_parity, load_stage, run_stage, vector_df

pytestmark = pytest.mark.slow


def _standardized(x: np.ndarray) -> np.ndarray:
    return (x - x.mean(axis=0)) / x.std(axis=0)


@pytest.fixture(scope="module")
def diabetes() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_diabetes

    x, y = load_diabetes(return_X_y=True)
    return _standardized(x), y


@pytest.fixture(scope="module")
def cancer() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_breast_cancer

    x, y = load_breast_cancer(return_X_y=True)
    return _standardized(x[:, :6]), y


def _fit_save(spark: Any, est: Any, df: Any, path: Path) -> Any:
    model = est.fit(df)
    model.write().overwrite().save(str(path))
    return type(model).load(str(path))


def test_linear_regression_dense_and_sparse(spark: Any, tmp_path: Path, diabetes: Any) -> None:
    from pyspark.ml.regression import LinearRegression

    x, y = diabetes
    model = _fit_save(
        spark, LinearRegression(regParam=0.1, elasticNetParam=0.5), vector_df(spark, x, y), tmp_path / "m"
    )
    stage = load_stage(tmp_path / "m")
    assert stage.describe() == "LinearRegressionModel(features -> prediction; 10 features)"
    assert_parity(stage, model, vector_df(spark, x[:60]), x[:60], ["prediction"], exact=())
    xs = sp.csr_matrix(np.where(np.abs(x[:60]) > 0.8, x[:60], 0.0))
    assert_parity(stage, model, vector_df(spark, xs), xs, ["prediction"], exact=())


def test_linear_svc(spark: Any, tmp_path: Path, cancer: Any) -> None:
    from pyspark.ml.classification import LinearSVC

    x, y = cancer
    for name, est in [("plain", LinearSVC(maxIter=50)), ("thr", LinearSVC(maxIter=50, threshold=0.4))]:
        model = _fit_save(spark, est, vector_df(spark, x, y), tmp_path / name)
        stage = load_stage(tmp_path / name)
        assert stage.outputs == ["rawPrediction", "prediction"]
        assert stage.output_spec("rawPrediction") == ("FP64", (-1, 2))
        assert_parity(stage, model, vector_df(spark, x[:100]), x[:100], ["rawPrediction", "prediction"])
    # prediction alone takes Spark's predict() path
    model = _fit_save(spark, LinearSVC(maxIter=50, rawPredictionCol=""), vector_df(spark, x, y), tmp_path / "p")
    assert_parity(load_stage(tmp_path / "p"), model, vector_df(spark, x[:100]), x[:100], ["prediction"])


GLM_CASES = [
    ("diabetes", {"family": "gaussian", "link": "log"}),
    ("diabetes", {"family": "gaussian"}),
    ("diabetes", {"family": "poisson", "link": "sqrt"}),
    ("diabetes", {"family": "poisson"}),
    ("diabetes", {"family": "gamma", "link": "log"}),
    ("diabetes", {"family": "gamma", "link": "identity"}),
    ("diabetes", {"family": "tweedie", "variancePower": 1.5, "linkPower": 0.0}),
    ("diabetes", {"family": "tweedie", "variancePower": 1.5}),
    ("diabetes", {"family": "tweedie", "variancePower": 1.0, "linkPower": 0.5}),
    ("cancer", {"family": "binomial"}),
    ("cancer", {"family": "binomial", "link": "probit"}),
    ("cancer", {"family": "binomial", "link": "cloglog"}),
]


@pytest.mark.parametrize(
    ("data", "params"), GLM_CASES, ids=["-".join(f"{v}" for v in p.values()) for _, p in GLM_CASES]
)
def test_glm(spark: Any, tmp_path: Path, request: Any, data: str, params: dict[str, Any]) -> None:
    from pyspark.ml.regression import GeneralizedLinearRegression

    x, y = request.getfixturevalue(data)
    est = GeneralizedLinearRegression(maxIter=50, regParam=0.01, linkPredictionCol="eta", **params)
    model = _fit_save(spark, est, vector_df(spark, x, y), tmp_path / "m")
    stage = load_stage(tmp_path / "m")
    assert stage.outputs == ["prediction", "eta"]
    assert_parity(stage, model, vector_df(spark, x[:80]), x[:80], ["prediction", "eta"], exact=())


def test_glm_offset(spark: Any, tmp_path: Path, diabetes: Any) -> None:
    from pyspark.ml.regression import GeneralizedLinearRegression

    x, y = diabetes
    offset = np.log(1.0 + np.arange(len(y)) % 7)
    df = vector_df(spark, x, y, {"off": offset})
    est = GeneralizedLinearRegression(family="poisson", offsetCol="off", predictionCol="mu", maxIter=50)
    model = _fit_save(spark, est, df, tmp_path / "m")
    stage = load_stage(tmp_path / "m")
    assert stage.inputs == ["features", "off"]
    assert "family poisson, link log" in stage.describe()
    assert_parity(
        stage,
        model,
        vector_df(spark, x[:80], None, {"off": offset[:80]}),
        x[:80],
        ["mu"],
        exact=(),
        extra={"off": offset[:80]},
    )
    with pytest.raises(InvalidInput, match=r"offset column 'off' is missing"):
        run_stage(stage, x[:3])
