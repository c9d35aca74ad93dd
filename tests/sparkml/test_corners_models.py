"""Corners where modelport's models used to answer differently from Spark (issue 12), each against real pyspark."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from modelport.core.errors import InvalidInput
from tests.sparkml._util import collect, load_stage, run_stage, vector_df
from tests.tolerance import assert_close

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::FutureWarning")]


def _categorical_df(spark: Any, x: np.ndarray, y: np.ndarray | None, sizes: dict[int, int]) -> Any:
    """A features column whose ML attributes mark the columns in ``sizes`` as nominal with that many values."""
    from pyspark.sql.functions import col

    df = vector_df(spark, x, y)
    nominal = [{"idx": i, "name": f"f{i}", "vals": [str(v) for v in range(n)]} for i, n in sizes.items()]
    numeric = [{"idx": i, "name": f"f{i}"} for i in range(x.shape[1]) if i not in sizes]
    meta = {"ml_attr": {"attrs": {"nominal": nominal, "numeric": numeric}, "num_attrs": x.shape[1]}}
    return df.withColumn("features", col("features").alias("features", metadata=meta))


@pytest.mark.parametrize("kind", ["dt_classifier", "dt_regressor", "gbt_regressor"])
def test_categorical_split_uses_the_nodes_own_category_count(spark: Any, tmp_path: Path, kind: str) -> None:
    # Feature 0 has 3 categories, feature 1 has 8: values 3..7 of feature 0 are no category of its nodes,
    # so they go the 'other' way of each node, not wherever the 8-wide table happens to say.
    from pyspark.ml.classification import DecisionTreeClassifier
    from pyspark.ml.regression import DecisionTreeRegressor, GBTRegressor

    rng = np.random.default_rng(3)
    n = 400
    x = np.column_stack([rng.integers(0, 3, n), rng.integers(0, 8, n), rng.normal(size=n)]).astype(float)
    y = ((x[:, 0] == 1) ^ (x[:, 1] % 3 == 0)).astype(float)
    est = {
        "dt_classifier": DecisionTreeClassifier(maxDepth=5, seed=1),
        "dt_regressor": DecisionTreeRegressor(maxDepth=5, seed=1),
        "gbt_regressor": GBTRegressor(maxIter=5, maxDepth=3, seed=1),
    }[kind]
    model = est.fit(_categorical_df(spark, x, y, {0: 3, 1: 8}))
    model.write().overwrite().save(str(tmp_path / "m"))
    grid = np.array([[a, b, 0.1] for a in [0, 1, 2, 3, 4, 5, 7, 2.5, -1.0, np.nan] for b in [0, 1, 3, 7, 9]], float)
    want = collect(model.transform(vector_df(spark, grid)), ["prediction"])["prediction"]
    frame = run_stage(load_stage(tmp_path / "m"), grid)
    assert_close(frame["prediction"], want, what=f"{kind} prediction on out-of-range categories")


def test_zero_threshold_loses_when_its_probability_is_zero(spark: Any, tmp_path: Path) -> None:
    # Spark scores p/t: a zero threshold gives +inf when p > 0 but 0/0 = NaN (never chosen) when p == 0.
    from pyspark.ml.classification import DecisionTreeClassifier
    from sklearn.datasets import load_iris

    x, y = load_iris(return_X_y=True)
    est = DecisionTreeClassifier(maxDepth=4, seed=1).setThresholds([0.0, 0.5, 0.5])
    model = est.fit(vector_df(spark, x, y))
    model.write().overwrite().save(str(tmp_path / "m"))
    cols = ["rawPrediction", "probability", "prediction"]
    want = collect(model.transform(vector_df(spark, x)), cols)
    assert (want["probability"][:, 0] == 0).any() and set(want["prediction"]) == {0.0, 1.0, 2.0}
    frame = run_stage(load_stage(tmp_path / "m"), x)
    for c in cols:
        assert_close(frame[c], want[c], what=c)
    # prediction without raw or probability columns goes through the same rule
    model.setRawPredictionCol("").setProbabilityCol("")
    model.write().overwrite().save(str(tmp_path / "p"))
    want_p = collect(model.transform(vector_df(spark, x)), ["prediction"])["prediction"]
    assert_close(run_stage(load_stage(tmp_path / "p"), x)["prediction"], want_p, what="prediction only")


def test_kmeans_cosine_zero_vector_is_a_client_error(spark: Any, tmp_path: Path) -> None:
    # Spark refuses a zero vector under cosine distance (it has no direction); it is not cluster 0.
    from pyspark.ml.clustering import KMeans
    from sklearn.datasets import load_iris

    x, _ = load_iris(return_X_y=True)
    model = KMeans(k=3, seed=1, distanceMeasure="cosine").fit(vector_df(spark, x))
    model.write().overwrite().save(str(tmp_path / "m"))
    probe = np.vstack([x[:3], np.zeros((1, 4))])
    with pytest.raises(Exception, match="(?i)zero"):
        model.transform(vector_df(spark, probe)).collect()
    stage = load_stage(tmp_path / "m")
    want = collect(model.transform(vector_df(spark, x[:3])), ["prediction"])["prediction"]
    assert_close(run_stage(stage, x[:3])["prediction"], want, what="cosine clusters")
    with pytest.raises(InvalidInput) as err:
        run_stage(stage, probe)
    assert err.value.status == 400
    assert "KMeansModel" in err.value.message and "zero" in err.value.message and "row 3" in err.value.message


def test_scalers_follow_sparks_arithmetic_order(spark: Any, tmp_path: Path) -> None:
    # MinMaxScaler's constant-column value is (min + max) / 2; Normalizer sums one value after another,
    # skips NaN for p = inf and divides by the norm. Same operations in the same order: equal bit for bit.
    from pyspark.ml import Pipeline
    from pyspark.ml.feature import MinMaxScaler, Normalizer

    rng = np.random.default_rng(7)
    x = rng.normal(size=(60, 24)) * 10.0 ** rng.integers(-3, 4, size=24)
    x[:, 5] = 2.5  # a constant column
    train = vector_df(spark, x)
    stages = [MinMaxScaler(inputCol="features", outputCol="mm", min=-3.7, max=11.3)]
    stages += [Normalizer(inputCol="features", outputCol=f"n{i}", p=p) for i, p in enumerate([1.0, 2.0, 3.0, np.inf])]
    model = Pipeline(stages=stages).fit(train)
    model.write().overwrite().save(str(tmp_path / "m"))
    probe = x.copy()
    probe[3, 7] = np.nan
    cols = ["mm", "n0", "n1", "n2", "n3"]
    for data in (probe, __import__("scipy.sparse", fromlist=["csr_matrix"]).csr_matrix(np.where(probe > 0, probe, 0))):
        want = collect(model.transform(vector_df(spark, data)), cols)
        for stage_dir in sorted((tmp_path / "m" / "stages").iterdir()):
            stage = load_stage(stage_dir)
            frame = run_stage(stage, data)
            col = stage.outputs[0]
            got = frame[col].toarray() if hasattr(frame[col], "toarray") else frame[col]
            if col == "n2":  # p = 3 goes through pow(), whose last bit differs between Java and C
                assert_close(got, want[col], what=col)
            else:
                assert_close(got, want[col], exact=True, what=f"{col} bit for bit")


@pytest.mark.parametrize("kind", ["regressor", "classifier"])
def test_random_forest_sums_in_tree_order(spark: Any, tmp_path: Path, kind: str) -> None:
    # Spark adds the trees' answers one after another; numpy's sum over a tree axis may pair them up.
    from pyspark.ml.classification import RandomForestClassifier
    from pyspark.ml.regression import RandomForestRegressor
    from sklearn.datasets import load_diabetes, load_wine

    x, y = load_diabetes(return_X_y=True) if kind == "regressor" else load_wine(return_X_y=True)
    est = (
        RandomForestRegressor(numTrees=60, seed=1)
        if kind == "regressor"
        else RandomForestClassifier(numTrees=60, seed=1)
    )
    model = est.fit(vector_df(spark, x, y))
    model.write().overwrite().save(str(tmp_path / "m"))
    col = "prediction" if kind == "regressor" else "rawPrediction"
    want = collect(model.transform(vector_df(spark, x)), [col])[col]
    # the same additions in the same order: equal bit for bit
    assert_close(run_stage(load_stage(tmp_path / "m"), x)[col], want, exact=True, what=f"{col} in tree order")
