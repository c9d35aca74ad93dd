"""NaiveBayes (all model types), MultilayerPerceptron and KMeans parity with pyspark."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import scipy.sparse as sp

from modelport.core.errors import InvalidInput
from tests.sparkml._util import assert_parity, load_stage, run_stage, vector_df

pytestmark = pytest.mark.slow

CLS = ["rawPrediction", "probability", "prediction"]


def _fit_save(est: Any, df: Any, path: Path) -> Any:
    model = est.fit(df)
    model.write().overwrite().save(str(path))
    return type(model).load(str(path))


@pytest.fixture(scope="module")
def digits() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    return x[:500], y[:500]


@pytest.mark.parametrize("model_type", ["multinomial", "complement", "bernoulli", "gaussian"])
def test_naive_bayes(spark: Any, tmp_path: Path, digits: Any, model_type: str) -> None:
    from pyspark.ml.classification import NaiveBayes

    x, y = digits
    if model_type == "bernoulli":
        x = (x > 7).astype(np.float64)
    model = _fit_save(NaiveBayes(modelType=model_type, smoothing=0.5), vector_df(spark, x, y), tmp_path / "m")
    stage = load_stage(tmp_path / "m")
    assert stage.describe().startswith(
        f"NaiveBayesModel(features -> rawPrediction, probability, prediction; {model_type}"
    )
    xt = x[:150]
    if model_type == "gaussian":
        # Near-constant pixels get tiny variances, so gaussian log-likelihoods reach 1e9 where one
        # float64 ulp is 1.2e-7: the relative rule of assert_close is what makes this comparable.
        assert_parity(stage, model, vector_df(spark, xt), xt, ["rawPrediction"])
        assert_parity(stage, model, vector_df(spark, xt), xt, ["probability", "prediction"])
    else:
        assert_parity(stage, model, vector_df(spark, xt), xt, CLS)
    if model_type != "gaussian":
        xs = sp.csr_matrix(xt)
        assert_parity(stage, model, vector_df(spark, xs), xs, CLS)
    if model_type in ("multinomial", "complement"):
        bad = xt[:2].copy()
        bad[1, 5] = -1.0
        with pytest.raises(InvalidInput, match=r"negative or NaN feature values; Spark requires nonnegative"):
            run_stage(stage, bad)
    if model_type == "bernoulli":
        with pytest.raises(InvalidInput, match=r"values other than 0 and 1"):
            run_stage(stage, xt[:2] * 2.0)


def test_naive_bayes_thresholds(spark: Any, tmp_path: Path) -> None:
    from pyspark.ml.classification import NaiveBayes
    from sklearn.datasets import load_wine

    x, y = load_wine(return_X_y=True)
    est = NaiveBayes(modelType="gaussian").setThresholds([0.5, 0.1, 0.4])
    model = _fit_save(est, vector_df(spark, x, y), tmp_path / "m")
    assert_parity(load_stage(tmp_path / "m"), model, vector_df(spark, x), x, CLS)


def test_multilayer_perceptron(spark: Any, tmp_path: Path) -> None:
    from pyspark.ml.classification import MultilayerPerceptronClassifier
    from sklearn.datasets import load_wine

    x, y = load_wine(return_X_y=True)
    x = (x - x.mean(axis=0)) / x.std(axis=0)
    est = MultilayerPerceptronClassifier(layers=[13, 8, 5, 3], maxIter=60, seed=7)
    model = _fit_save(est, vector_df(spark, x, y), tmp_path / "m")
    stage = load_stage(tmp_path / "m")
    assert stage.describe().endswith("layers [13, 8, 5, 3])")
    assert stage.output_spec("rawPrediction") == ("FP64", (-1, 3))
    assert_parity(stage, model, vector_df(spark, x), x, CLS)
    xs = sp.csr_matrix(np.where(np.abs(x) > 0.7, x, 0.0))
    assert_parity(stage, model, vector_df(spark, xs), xs, CLS)
    est = MultilayerPerceptronClassifier(layers=[13, 3], maxIter=30, seed=7).setThresholds([0.2, 0.5, 0.3])
    model = _fit_save(est, vector_df(spark, x, y), tmp_path / "t")
    assert_parity(load_stage(tmp_path / "t"), model, vector_df(spark, x), x, CLS)


@pytest.mark.parametrize("measure", ["euclidean", "cosine"])
def test_kmeans(spark: Any, tmp_path: Path, digits: Any, measure: str) -> None:
    from pyspark.ml.clustering import KMeans

    x, _ = digits
    model = _fit_save(KMeans(k=8, seed=5, distanceMeasure=measure), vector_df(spark, x), tmp_path / "m")
    stage = load_stage(tmp_path / "m")
    assert stage.output_spec("prediction") == ("INT32", (-1,))
    assert stage.describe() == f"KMeansModel(features -> prediction; k=8, {measure}, 64 features)"
    frame = assert_parity(stage, model, vector_df(spark, x), x, ["prediction"])
    assert frame["prediction"].dtype == np.int32
    xs = sp.csr_matrix(x[:200])
    assert_parity(stage, model, vector_df(spark, xs), xs, ["prediction"])
