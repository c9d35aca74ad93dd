"""Parity of the tabular feature stages with Spark on palmerpenguins and scikit-learn's wine data."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

import modelport
from modelport.core.errors import InvalidInput
from tests.sparkml.parity import batch_from, collect, compare, fit_save_load, penguin_df, penguins
from tests.tolerance import assert_close

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::FutureWarning")]

NUMS = ["bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g"]


def _split() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    rows = penguins()
    train = [r for i, r in enumerate(rows) if i % 5]
    test = [r for i, r in enumerate(rows) if not i % 5]
    return train, test


def _with_invalid(test: list[dict[str, Any]]) -> list[dict[str, Any]]:
    odd = dict(test[0], island="Atlantis", sex=None, species="Adelie")
    odd2 = dict(test[1], sex="unknown", bill_length_mm=None)
    return [*test, odd, odd2]


@pytest.mark.parametrize(
    ("strategy", "order", "p"),
    [
        ("mean", "frequencyDesc", 2.0),
        ("median", "frequencyAsc", 1.0),
        ("mode", "alphabetDesc", float("inf")),
        ("mean", "alphabetAsc", 3.0),
    ],
)
def test_tabular_pipeline_keep(spark: Any, tmp_path: Path, strategy: str, order: str, p: float) -> None:
    from pyspark.ml.feature import (
        PCA,
        Imputer,
        IndexToString,
        MaxAbsScaler,
        MinMaxScaler,
        Normalizer,
        OneHotEncoder,
        StandardScaler,
        StringIndexer,
        VectorAssembler,
    )

    train, test = _split()
    test = _with_invalid(test)
    filled = [c + "_f" for c in NUMS]
    stages = [
        StringIndexer(
            inputCols=["species", "island", "sex"],
            outputCols=["species_i", "island_i", "sex_i"],
            handleInvalid="keep",
            stringOrderType=order,
        ),
        OneHotEncoder(
            inputCols=["island_i", "sex_i"], outputCols=["island_oh", "sex_oh"], dropLast=False, handleInvalid="keep"
        ),
        Imputer(inputCols=NUMS, outputCols=filled, strategy=strategy),
        VectorAssembler(inputCols=["island_oh", "sex_oh", *filled, "year"], outputCol="features", handleInvalid="keep"),
        StandardScaler(inputCol="features", outputCol="scaled", withMean=True, withStd=True),
        MinMaxScaler(inputCol="features", outputCol="mm", min=-1.0, max=2.0),
        MaxAbsScaler(inputCol="features", outputCol="ma"),
        PCA(k=3, inputCol="scaled", outputCol="pca"),
        Normalizer(inputCol="features", outputCol="norm", p=p),
        IndexToString(inputCol="species_i", outputCol="species_back"),
    ]
    cols = [
        "species_i",
        "island_i",
        "sex_i",
        "island_oh",
        "sex_oh",
        *filled,
        "features",
        "scaled",
        "mm",
        "ma",
        "pca",
        "norm",
        "species_back",
    ]
    fitted, model = fit_save_load(stages, penguin_df(spark, train), tmp_path / "m", outputs=cols)
    compare(fitted, model, penguin_df(spark, test), test, cols)
    sig = model.signature
    assert sig.input("island").datatype == "BYTES"
    assert sig.input("year").datatype == "FP64"
    assert sig.output("species_back").datatype == "BYTES"
    assert sig.output("features").shape == (-1, 5 + 4 + 4 + 1)


def test_default_outputs_are_leaf_columns(spark: Any, tmp_path: Path) -> None:
    from pyspark.ml.feature import IndexToString, OneHotEncoder, StringIndexer, VectorAssembler

    train, _ = _split()
    stages = [
        StringIndexer(inputCol="island", outputCol="island_i", handleInvalid="keep"),
        OneHotEncoder(inputCol="island_i", outputCol="island_oh"),
        VectorAssembler(inputCols=["island_oh", "year"], outputCol="features"),
        IndexToString(inputCol="island_i", outputCol="island_back"),
    ]
    _, model = fit_save_load(stages, penguin_df(spark, train), tmp_path / "m")
    assert model.signature.input_names == ["island", "year"]
    assert model.signature.output_names == ["features", "island_back"]
    # island_i carries 3 labels + "__unknown" (keep), so the encoder sees 4 categories and drops the last
    assert model.signature.output("features").shape == (-1, 4)
    assert model.info["runtime"] == {
        "features": "modelport.sparkml",
        "island_back": "modelport.sparkml",
    }
    assert model.info["stages"][0] == "StringIndexerModel(island -> island_i)"
    assert model.info["spark_version"] == spark.version


def test_skip_modes_drop_rows_like_spark(spark: Any, tmp_path: Path) -> None:
    from pyspark.ml.feature import Bucketizer, StringIndexer, VectorAssembler

    train, test = _split()
    test = _with_invalid(test)
    stages = [
        StringIndexer(inputCols=["island", "sex"], outputCols=["island_i", "sex_i"], handleInvalid="skip"),
        VectorAssembler(
            inputCols=["island_i", "sex_i", "bill_length_mm", "body_mass_g"], outputCol="features", handleInvalid="skip"
        ),
        Bucketizer(
            splits=[-float("inf"), 40.0, 45.0, 50.0, float("inf")],
            inputCol="bill_depth_mm",
            outputCol="depth_b",
            handleInvalid="skip",
        ),
    ]
    cols = ["island_i", "sex_i", "features", "depth_b"]
    fitted, model = fit_save_load(stages, penguin_df(spark, train), tmp_path / "m", outputs=cols)
    test_df = penguin_df(spark, test)
    want = collect(fitted.transform(test_df), cols)
    kept, index = model.predictor.transform(model.plan.coerce_batch(batch_from(test, model)))
    for c in cols:
        assert_close(kept[c], want[c], what=c)
    expected_kept = [
        i
        for i, r in enumerate(test)
        if r["island"] in {"Torgersen", "Biscoe", "Dream"}
        and r["sex"] in {"male", "female"}
        and r["bill_length_mm"] is not None
        and r["body_mass_g"] is not None
        and r["bill_depth_mm"] is not None
    ]
    assert index.tolist() == expected_kept
    full = model.predict(batch_from(test, model))
    assert full["features"].shape == (len(test), 4)
    dropped = sorted(set(range(len(test))) - set(expected_kept))
    assert dropped and np.isnan(full["features"][dropped]).all()
    assert_close(full["features"][expected_kept], want["features"], what="kept rows")


def test_numeric_string_indexer_inputs(spark: Any, tmp_path: Path) -> None:
    from pyspark.ml.feature import StringIndexer

    train, test = _split()
    stages = [
        StringIndexer(inputCol="year", outputCol="year_i"),
        StringIndexer(inputCol="flipper_length_mm", outputCol="flipper_i", handleInvalid="keep"),
    ]
    fitted, model = fit_save_load(stages, penguin_df(spark, train), tmp_path / "m")
    assert model.signature.input("year").datatype == "INT64"
    assert model.signature.input("flipper_length_mm").datatype == "FP64"
    compare(fitted, model, penguin_df(spark, test), test, ["year_i", "flipper_i"])


def _wine(spark: Any) -> tuple[Any, list[dict[str, Any]], list[str]]:
    from sklearn.datasets import load_wine

    data = load_wine()
    names = [n.replace("/", "_") for n in data.feature_names]
    rows = [dict(zip(names, map(float, x), strict=True)) for x in data.data]
    df = spark.createDataFrame([tuple(r.values()) for r in rows], ", ".join(f"`{n}` double" for n in names))
    return df, rows, names


def test_vector_stages_on_wine(spark: Any, tmp_path: Path) -> None:
    from pyspark.ml.feature import (
        Binarizer,
        Bucketizer,
        ElementwiseProduct,
        MaxAbsScaler,
        Normalizer,
        OneHotEncoder,
        StandardScaler,
        VectorAssembler,
    )
    from pyspark.ml.linalg import Vectors

    df, rows, names = _wine(spark)
    stages = [
        VectorAssembler(inputCols=names, outputCol="x"),
        StandardScaler(inputCol="x", outputCol="std_only", withStd=True, withMean=False),
        StandardScaler(inputCol="x", outputCol="mean_only", withStd=False, withMean=True),
        ElementwiseProduct(
            scalingVec=Vectors.dense(np.linspace(-1, 2, len(names)).tolist()), inputCol="x", outputCol="ep"
        ),
        Normalizer(inputCol="x", outputCol="n1", p=1.0),
        Binarizer(inputCol="x", outputCol="xb", threshold=2.0),
        Binarizer(inputCols=[names[0], names[1]], outputCols=["b0", "b1"], thresholds=[13.0, 2.0]),
        Bucketizer(
            splitsArray=[[0.0, 12.0, 13.0, 14.0, 15.0], [0.0, 1.0, 2.0, 3.0, 10.0]],
            inputCols=[names[0], names[1]],
            outputCols=["k0", "k1"],
        ),
        OneHotEncoder(inputCols=["k0", "k1"], outputCols=["k0_oh", "k1_oh"], dropLast=True),
        VectorAssembler(inputCols=["k0_oh", "k1_oh", "b0"], outputCol="sparse_x"),
        MaxAbsScaler(inputCol="sparse_x", outputCol="sparse_ma"),
    ]
    cols = ["std_only", "mean_only", "ep", "n1", "xb", "b0", "b1", "k0", "k1", "k0_oh", "k1_oh", "sparse_ma"]
    fitted, model = fit_save_load(stages, df, tmp_path / "m", outputs=cols)
    compare(fitted, model, df, rows, cols)


def test_bucketizer_keep_and_imputer_missing_value(spark: Any, tmp_path: Path) -> None:
    from pyspark.ml.feature import Bucketizer, Imputer

    rows = [{"a": v, "b": w} for v, w in [(1.0, -1.0), (-1.0, 3.0), (5.0, -1.0), (2.0, 7.0), (3.0, 4.0)]]
    df = spark.createDataFrame([(r["a"], r["b"]) for r in rows], "a double, b double")
    stages = [
        Imputer(inputCols=["a"], outputCols=["a_f"], missingValue=-1.0, strategy="median"),
        Bucketizer(splits=[-1.0, 0.0, 2.5, 10.0], inputCol="b", outputCol="b_k", handleInvalid="keep"),
    ]
    fitted, model = fit_save_load(stages, df, tmp_path / "m", outputs=["a_f", "b_k"])
    # A request's missing number (JSON null, NaN here) is Spark's null for the Imputer: the surrogate replaces it
    # whatever missingValue is; for the Bucketizer NaN goes to the extra 'keep' bucket.
    test = [*rows, {"a": None, "b": 10.0}, {"a": 0.5, "b": float("nan")}]
    test_df = spark.createDataFrame([(r["a"], r["b"]) for r in test], "a double, b double")
    compare(fitted, model, test_df, test, ["a_f", "b_k"])


def test_error_modes_raise_invalid_input(spark: Any, tmp_path: Path) -> None:
    from pyspark.ml.feature import Bucketizer, IndexToString, OneHotEncoder, StringIndexer, VectorAssembler

    train, test = _split()
    stages = [
        StringIndexer(inputCol="island", outputCol="island_i"),
        OneHotEncoder(inputCol="island_i", outputCol="island_oh"),
        OneHotEncoder(inputCol="year", outputCol="year_oh"),
        VectorAssembler(inputCols=["island_oh", "bill_length_mm"], outputCol="features"),
        Bucketizer(splits=[0.0, 20.0, 100.0], inputCol="bill_depth_mm", outputCol="depth_b"),
        IndexToString(inputCol="depth_b", outputCol="depth_label", labels=["shallow", "deep"]),
    ]
    train = [dict(r, year=r["year"] - 2007) for r in train if all(r[c] is not None for c in NUMS)]
    _, model = fit_save_load(stages, penguin_df(spark, train), tmp_path / "m")
    good = {k: v for k, v in batch_from(train[:2], model).items()}
    model.predict(good)

    def fails(column: str, value: Any) -> str:
        batch = dict(good)
        arr = np.array(batch[column], dtype=object if column == "island" else np.float64)
        arr[1] = value
        batch[column] = arr
        with pytest.raises(InvalidInput) as err:
            model.predict(batch)
        assert err.value.status == 400
        assert f"'{column}'" in err.value.message
        return err.value.message

    msg = fails("island", "Atlantis")
    assert "StringIndexerModel" in msg and "unseen label 'Atlantis'" in msg and "Torgersen" in msg
    assert "null value" in fails("island", None)
    msg = fails("year", 7.0)
    assert "OneHotEncoderModel" in msg and "unseen value 7.0" in msg
    assert "negative value -1.0" in fails("year", -1.0)
    msg = fails("bill_length_mm", None)
    assert "VectorAssembler" in msg and "handleInvalid" in msg
    msg = fails("bill_depth_mm", 150.0)
    assert "Bucketizer" in msg and "150.0 out of Bucketizer bounds [0.0, 100.0]" in msg
    assert "NaN" in fails("bill_depth_mm", float("nan"))


def test_index_to_string_unseen_index(spark: Any, tmp_path: Path) -> None:
    from pyspark.ml.feature import IndexToString

    df = spark.createDataFrame([(0.0,), (1.0,)], "i double")
    _, model = fit_save_load([IndexToString(inputCol="i", outputCol="s", labels=["a", "b"])], df, tmp_path / "m")
    assert model.predict({"i": [1.0, 0.0]})["s"].tolist() == ["b", "a"]
    with pytest.raises(InvalidInput) as err:
        model.predict({"i": [5.0]})
    assert "IndexToString" in err.value.message and "unseen index 5.0" in err.value.message
    assert modelport.load_model(tmp_path / "m").signature.output("s").datatype == "BYTES"
