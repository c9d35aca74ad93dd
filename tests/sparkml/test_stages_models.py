"""Issue 12, models and tuning results: OneVsRest (Spark's and PySpark's pipeline writers), FM classifier and
regressor, AFT survival, isotonic regression, Gaussian mixture, bisecting k-means, CrossValidatorModel and
TrainValidationSplitModel, against pyspark on scikit-learn's bundled data."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import scipy.sparse as sp

import modelport
from tests.sparkml._stages import WINE_COLS, compare_all, save_stage, split, wine_df, wine_rows
from tests.sparkml._util import collect, load_stage, run_stage, vector_df
from tests.sparkml.parity import fit_save_load
from tests.tolerance import assert_close

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::FutureWarning")]


@pytest.fixture(scope="module")
def wine() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_wine

    x, y = load_wine(return_X_y=True)
    return (x - x.mean(axis=0)) / x.std(axis=0), y.astype(np.float64)


def _check(stage: Any, model: Any, spark: Any, x: Any, cols: list[str], exact: tuple[str, ...] = ()) -> None:
    """Spark's transform and the stage's frame path agree on every column (run_stage also checks row())."""
    want = collect(model.transform(vector_df(spark, x)), cols)
    frame = run_stage(stage, x)
    for c in cols:
        got = frame[c]
        got = got.toarray() if sp.issparse(got) else np.asarray(got)
        # cluster and class indices are whole numbers computed by comparisons: equal by construction
        assert_close(got.astype(np.float64), want[c].astype(np.float64), exact=c in exact, what=c)


def test_one_vs_rest_in_spark_and_pyspark_pipelines(spark: Any, tmp_path: Path) -> None:
    from pyspark.ml.classification import LinearSVC, LogisticRegression, OneVsRest
    from pyspark.ml.feature import StandardScaler, VectorAssembler

    train, test = split(wine_rows())
    for name, clf in (("lr", LogisticRegression(maxIter=20)), ("svc", LinearSVC(maxIter=20))):
        stages = [
            VectorAssembler(inputCols=WINE_COLS, outputCol="raw"),
            StandardScaler(inputCol="raw", outputCol="features", withMean=True),
            OneVsRest(classifier=clf),
        ]
        fitted, model = fit_save_load(stages, wine_df(spark, train), tmp_path / name)
        assert model.signature.output("rawPrediction").shape == (-1, 3)
        compare_all(fitted, model, wine_df(spark, test), test, ["rawPrediction", "prediction"])
    # A pipeline holding only the OneVsRestModel is written by PySpark itself, under a Python class name
    from pyspark.ml import Pipeline

    df = wine_df(spark, train)
    assembled = VectorAssembler(inputCols=WINE_COLS, outputCol="features").transform(df)
    fitted = Pipeline(stages=[OneVsRest(classifier=LogisticRegression(maxIter=20))]).fit(assembled)
    path = save_stage(fitted, tmp_path / "py")
    meta = json.loads(next((path / "metadata").glob("part-*")).read_text())
    assert meta["class"] == "pyspark.ml.pipeline.PipelineModel"
    model = modelport.load_model(path)
    assert model.info["spark_class"] == "pyspark.ml.pipeline.PipelineModel"
    test_df = VectorAssembler(inputCols=WINE_COLS, outputCol="features").transform(wine_df(spark, test))
    want = collect(fitted.transform(test_df), ["rawPrediction", "prediction"])
    x = np.array([[r[c] for c in WINE_COLS] for r in test])
    got = model.predict({"features": x})
    assert_close(got["rawPrediction"], want["rawPrediction"], what="rawPrediction")
    assert_close(got["prediction"], want["prediction"], exact=True, what="prediction")


def test_factorization_machines(spark: Any, tmp_path: Path, wine: Any) -> None:
    from pyspark.ml.classification import FMClassifier
    from pyspark.ml.regression import FMRegressor

    x, y = wine
    binary = (y == 1).astype(np.float64)
    clf = FMClassifier(factorSize=4, maxIter=30, seed=3, stepSize=0.1).fit(vector_df(spark, x, binary))
    stage = load_stage(save_stage(clf, tmp_path / "fmc"))
    _check(stage, clf, spark, x, ["rawPrediction", "probability", "prediction"], exact=("prediction",))
    xs = sp.csr_matrix(np.where(np.abs(x) > 0.8, x, 0.0))
    _check(stage, clf, spark, xs, ["rawPrediction", "probability", "prediction"], exact=("prediction",))
    clf_t = FMClassifier(factorSize=2, maxIter=10, seed=3).setThresholds([0.3, 0.7]).fit(vector_df(spark, x, binary))
    _check(
        load_stage(save_stage(clf_t, tmp_path / "fmt")), clf_t, spark, x, ["probability", "prediction"], ("prediction",)
    )
    reg = FMRegressor(factorSize=3, maxIter=30, seed=5, stepSize=0.05).fit(vector_df(spark, x, y))
    stage = load_stage(save_stage(reg, tmp_path / "fmr"))
    assert stage.describe() == "FMRegressionModel(features -> prediction; 13 features, 3 factors)"
    _check(stage, reg, spark, x, ["prediction"])
    _check(stage, reg, spark, xs, ["prediction"])


def test_aft_survival_regression(spark: Any, tmp_path: Path, wine: Any) -> None:
    from pyspark.ml.regression import AFTSurvivalRegression

    x, y = wine
    x = x[:, :5]
    label = np.exp(0.3 * x[:, 0] + 0.1 * y) + 0.5
    censor = (np.arange(len(y)) % 3 != 0).astype(np.float64)
    df = vector_df(spark, x, label, extra={"censor": censor})
    aft = AFTSurvivalRegression(quantileProbabilities=[0.05, 0.5, 0.95], quantilesCol="q").fit(df)
    stage = load_stage(save_stage(aft, tmp_path / "aft"))
    assert stage.output_spec("q") == ("FP64", (-1, 3))
    _check(stage, aft, spark, x, ["prediction", "q"])
    plain = AFTSurvivalRegression().fit(df)
    stage = load_stage(save_stage(plain, tmp_path / "plain"))
    assert stage.outputs == ["prediction"]
    _check(stage, plain, spark, x, ["prediction"])


def test_isotonic_regression(spark: Any, tmp_path: Path, wine: Any) -> None:
    from pyspark.ml.regression import IsotonicRegression

    x, y = wine
    xr = np.round(x[:, :3], 1)  # repeated feature values, so boundaries repeat
    for isotonic in (True, False):
        model = IsotonicRegression(featureIndex=2, isotonic=isotonic).fit(vector_df(spark, xr, y))
        stage = load_stage(save_stage(model, tmp_path / f"iso{isotonic}"))
        probe = np.concatenate([xr, xr + 0.05, [[0, 0, -10.0], [0, 0, 10.0], [0, 0, 0.0], [0, 0, -0.0]]])
        _check(stage, model, spark, probe, ["prediction"])
    # a number column as featuresCol, inside a pipeline
    train, test = split(wine_rows())
    fitted, pm = fit_save_load(
        [IsotonicRegression(featuresCol="alcohol", labelCol="malic")], wine_df(spark, train), tmp_path / "p"
    )
    want = collect(fitted.transform(wine_df(spark, test)), ["prediction"])["prediction"]
    assert pm.signature.input("alcohol").shape == (-1,)
    got = pm.predict({"alcohol": np.array([r["alcohol"] for r in test])})["prediction"]
    assert_close(got, want, what="isotonic on a number column")


def test_gaussian_mixture_and_bisecting_kmeans(spark: Any, tmp_path: Path, wine: Any) -> None:
    from pyspark.ml.clustering import BisectingKMeans, GaussianMixture
    from sklearn.datasets import load_iris

    x, _ = wine
    x4 = x[:, :4]
    iris = load_iris(return_X_y=True)[0]
    gmm = GaussianMixture(k=3, seed=2, maxIter=30).fit(vector_df(spark, x4))
    stage = load_stage(save_stage(gmm, tmp_path / "gmm"))
    assert stage.output_spec("prediction") == ("INT32", (-1,))
    _check(stage, gmm, spark, x4, ["probability", "prediction"], exact=("prediction",))
    for measure in ("euclidean", "cosine"):
        bkm = BisectingKMeans(k=3, seed=1, distanceMeasure=measure).fit(vector_df(spark, iris))
        stage = load_stage(save_stage(bkm, tmp_path / f"bkm_{measure}"))
        k = len(bkm.clusterCenters())
        assert k > 1
        assert stage.describe() == f"BisectingKMeansModel(features -> prediction; k={k}, {measure}, 4 features)"
        _check(stage, bkm, spark, iris, ["prediction"], exact=("prediction",))


def test_tuning_results_serve_the_best_model(spark: Any, tmp_path: Path) -> None:
    from click.testing import CliRunner
    from pyspark.ml import Pipeline
    from pyspark.ml.classification import LogisticRegression
    from pyspark.ml.evaluation import MulticlassClassificationEvaluator
    from pyspark.ml.feature import VectorAssembler
    from pyspark.ml.tuning import CrossValidator, ParamGridBuilder, TrainValidationSplit

    from modelport.cli import main

    train, test = split(wine_rows())
    lr = LogisticRegression(maxIter=10)
    pipe = Pipeline(stages=[VectorAssembler(inputCols=WINE_COLS, outputCol="features"), lr])
    grid = ParamGridBuilder().addGrid(lr.regParam, [0.0, 0.5]).build()
    evaluator = MulticlassClassificationEvaluator()
    for name, tuner in (
        ("cv", CrossValidator(estimator=pipe, estimatorParamMaps=grid, evaluator=evaluator, numFolds=2, seed=1)),
        ("tvs", TrainValidationSplit(estimator=pipe, estimatorParamMaps=grid, evaluator=evaluator, seed=1)),
    ):
        fitted = tuner.fit(wine_df(spark, train))
        path = save_stage(fitted, tmp_path / name)
        model = modelport.load_model(path)
        kind = "CrossValidatorModel" if name == "cv" else "TrainValidationSplitModel"
        assert model.info["spark_class"] == f"org.apache.spark.ml.tuning.{kind}"
        assert model.info["serves"].startswith(f"bestModel (PipelineModel, uid {fitted.bestModel.uid}) of a {kind}")
        metrics = fitted.avgMetrics if name == "cv" else fitted.validationMetrics
        assert model.info["tuning_metrics"].endswith(", ".join(f"{m:.6g}" for m in metrics))
        compare_all(fitted, model, wine_df(spark, test), test, ["probability", "prediction"])
        out = CliRunner().invoke(main, ["inspect", str(path)])
        assert out.exit_code == 0, out.output
        assert f"serves: bestModel (PipelineModel, uid {fitted.bestModel.uid}) of a {kind}" in out.output
