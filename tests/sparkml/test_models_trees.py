"""Decision tree, random forest and GBT parity with pyspark: continuous and categorical
splits, NaN and unseen categories, sparse input, thresholds, varianceCol."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import scipy.sparse as sp

from modelport.core.errors import ModelLoadError
from tests.sparkml._util import assert_parity, collect, load_stage, vector_df

pytestmark = pytest.mark.slow

CLS = ["rawPrediction", "probability", "prediction"]


def _fit_save(est: Any, df: Any, path: Path) -> Any:
    model = est.fit(df)
    model.write().overwrite().save(str(path))
    return type(model).load(str(path))


def _with_nan(x: np.ndarray, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    out = x.copy()
    out[rng.random(out.shape) < 0.15] = np.nan
    return out


@pytest.fixture(scope="module")
def iris() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_iris

    return load_iris(return_X_y=True)


@pytest.fixture(scope="module")
def digits_indexed(spark: Any, tmp_path_factory: Any) -> dict[str, Any]:
    """Digits with every pixel made categorical by a VectorIndexer (pixel values 0..16)."""
    from pyspark.ml.feature import VectorIndexer
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    x, y = x[:600], y[:600]
    df = vector_df(spark, x, y).withColumnRenamed("features", "raw")
    indexer = VectorIndexer(inputCol="raw", outputCol="features", maxCategories=17).fit(df)
    assert len(indexer.categoryMaps) > 40
    train = indexer.transform(df).select("features", "label").cache()
    xi = collect(train, ["features"])["features"]
    # Held-out rows: indexed features, plus NaN and an unseen category (99) sprinkled in.
    test_x = xi[:120].copy()
    rng = np.random.default_rng(3)
    test_x[rng.random(test_x.shape) < 0.05] = np.nan
    test_x[rng.random(test_x.shape) < 0.05] = 99.0
    return {"train": train, "x": test_x, "y": y}


@pytest.mark.parametrize("kind", ["dt", "rf", "rf_thresholds"])
def test_multiclass_continuous_with_nan(spark: Any, tmp_path: Path, iris: Any, kind: str) -> None:
    from pyspark.ml.classification import DecisionTreeClassifier, RandomForestClassifier

    x, y = iris
    est = {
        "dt": lambda: DecisionTreeClassifier(maxDepth=6, seed=1),
        "rf": lambda: RandomForestClassifier(numTrees=30, maxDepth=6, seed=1),
        "rf_thresholds": lambda: RandomForestClassifier(numTrees=10, seed=2).setThresholds([0.5, 0.2, 0.3]),
    }[kind]()
    model = _fit_save(est, vector_df(spark, x, y), tmp_path / "m")
    stage = load_stage(tmp_path / "m")
    assert stage.output_spec("probability") == ("FP64", (-1, 3))
    xt = _with_nan(x)
    assert_parity(stage, model, vector_df(spark, xt), xt, CLS)
    assert_parity(stage, model, vector_df(spark, x), x, CLS)


def test_prediction_only_paths(spark: Any, tmp_path: Path, iris: Any) -> None:
    from pyspark.ml.classification import DecisionTreeClassifier

    x, y = iris
    est = DecisionTreeClassifier(maxDepth=3, rawPredictionCol="", probabilityCol="")
    model = _fit_save(est, vector_df(spark, x, y), tmp_path / "m")
    stage = load_stage(tmp_path / "m")
    assert stage.outputs == ["prediction"]
    assert_parity(stage, model, vector_df(spark, x), x, ["prediction"])


@pytest.mark.parametrize("kind", ["dt", "rf", "gbt", "gbt_thresholds"])
def test_categorical_splits_nan_and_unseen(spark: Any, tmp_path: Path, digits_indexed: Any, kind: str) -> None:
    from pyspark.ml.classification import DecisionTreeClassifier, GBTClassifier, RandomForestClassifier
    from pyspark.sql import functions as F

    train = digits_indexed["train"]
    if kind.startswith("gbt"):
        train = train.withColumn("label", (F.col("label") > 4).cast("double"))
    est = {
        "dt": lambda: DecisionTreeClassifier(maxDepth=8, maxBins=32, seed=1),
        "rf": lambda: RandomForestClassifier(numTrees=15, maxDepth=6, seed=1),
        "gbt": lambda: GBTClassifier(maxIter=15, maxDepth=4, seed=1),
        "gbt_thresholds": lambda: GBTClassifier(maxIter=5, maxDepth=3, seed=1).setThresholds([0.3, 0.7]),
    }[kind]()
    model = _fit_save(est, train, tmp_path / "m")
    stage = load_stage(tmp_path / "m")
    forest = stage.forest  # type: ignore[attr-defined]
    assert forest.has_cat, "the trees should split on categorical features"
    x = digits_indexed["x"]
    assert_parity(stage, model, vector_df(spark, x), x, CLS)


@pytest.mark.parametrize("kind", ["dt", "rf", "gbt"])
def test_regressors_categorical(spark: Any, tmp_path: Path, digits_indexed: Any, kind: str) -> None:
    from pyspark.ml.regression import DecisionTreeRegressor, GBTRegressor, RandomForestRegressor

    est = {
        "dt": lambda: DecisionTreeRegressor(maxDepth=6, varianceCol="var"),
        "rf": lambda: RandomForestRegressor(numTrees=20, maxDepth=5, seed=1),
        "gbt": lambda: GBTRegressor(maxIter=20, maxDepth=4, seed=1),
    }[kind]()
    model = _fit_save(est, digits_indexed["train"], tmp_path / "m")
    stage = load_stage(tmp_path / "m")
    cols = ["prediction", "var"] if kind == "dt" else ["prediction"]
    assert stage.outputs == cols
    x = digits_indexed["x"]
    assert_parity(stage, model, vector_df(spark, x), x, cols, exact=())


@pytest.mark.parametrize("kind", ["rf", "gbt"])
def test_sparse_input(spark: Any, tmp_path: Path, kind: str) -> None:
    from pyspark.ml.regression import GBTRegressor, RandomForestRegressor
    from sklearn.datasets import load_diabetes

    x, y = load_diabetes(return_X_y=True)
    x = np.where(x > 0.0, x, 0.0)  # about half zeros
    est = RandomForestRegressor(numTrees=25, seed=3) if kind == "rf" else GBTRegressor(maxIter=25, seed=3)
    model = _fit_save(est, vector_df(spark, sp.csr_matrix(x), y), tmp_path / "m")
    stage = load_stage(tmp_path / "m")
    xs = sp.csr_matrix(x[:100])
    assert_parity(stage, model, vector_df(spark, xs), xs, ["prediction"], exact=())
    assert_parity(stage, model, vector_df(spark, x[:100]), x[:100], ["prediction"], exact=())


def test_leaf_col_is_refused(spark: Any, tmp_path: Path, iris: Any) -> None:
    from pyspark.ml.classification import DecisionTreeClassifier

    x, y = iris
    _fit_save(DecisionTreeClassifier(maxDepth=2, leafCol="leaf"), vector_df(spark, x, y), tmp_path / "m")
    with pytest.raises(ModelLoadError, match=r"sets leafCol='leaf', which modelport does not support"):
        load_stage(tmp_path / "m")
