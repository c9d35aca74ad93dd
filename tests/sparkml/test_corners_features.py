"""Feature-stage corners against real pyspark (issue 12): null vs NaN, -0.0, casts, input typing, versions."""

from __future__ import annotations

import math
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import modelport
from modelport.core.config import ModelConfig
from modelport.core.errors import InvalidInput, ModelLoadError
from modelport.core.signature import TensorSpec
from modelport.runtimes.sparkml.vectors import null_mask
from tests.sparkml.parity import compare, fit_save_load
from tests.tolerance import assert_close

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::FutureWarning")]

NAN = float("nan")
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "sparkml" / "spark35"


def _assert_like_spark(got: Any, want: list[Any], what: str) -> None:
    """Spark's cells (None for null) against modelport's column: null where Spark has null, else equal."""
    assert len(got) == len(want), what
    for i, w in enumerate(want):
        g = got[i]
        if w is None:
            if isinstance(g, np.ndarray):
                assert g.size and null_mask(np.asarray(g, dtype=np.float64)).all(), f"{what}[{i}]: {g!r}, not null"
            else:
                assert g is None or bool(null_mask(np.array([g], dtype=np.float64))[0]), f"{what}[{i}]: {g!r}, not null"
        elif hasattr(w, "toArray"):
            assert_close(np.asarray(g, dtype=np.float64), w.toArray(), what=f"{what}[{i}]")
        elif isinstance(w, str):
            assert g == w, f"{what}[{i}]: {g!r} instead of {w!r}"
        else:
            g = float(g)
            assert not null_mask(np.array([g]))[0], f"{what}[{i}]: null where Spark has {w!r}"
            assert_close(g, float(w), what=f"{what}[{i}]")


def test_bucketizer_orders_negative_zero_below_zero(spark: Any, tmp_path: Path) -> None:
    from pyspark.ml.feature import Bucketizer

    tiny = 5e-324
    values = [-0.0, 0.0, -tiny, tiny, -1.0, 0.5, 1.0, -0.5]
    df = spark.createDataFrame([(v, min(v, 0.0)) for v in values], "x double, y double")
    stages = [
        Bucketizer(splits=[-math.inf, -1.0, 0.0, 1.0, math.inf], inputCol="x", outputCol="bx"),
        Bucketizer(splits=[-2.0, -1.0, 0.0], inputCol="y", outputCol="by"),  # -0.0 == last split: last bucket
    ]
    fitted, model = fit_save_load(stages, df, tmp_path / "m", outputs=["bx", "by"])
    rows = [{"x": v, "y": min(v, 0.0)} for v in values]
    compare(fitted, model, df, rows, ["bx", "by"])


def test_bucketizer_negative_zero_below_a_zero_first_split_is_out_of_bounds(spark: Any, tmp_path: Path) -> None:
    from pyspark.ml.feature import Bucketizer

    df = spark.createDataFrame([(0.5,)], "x double")
    stages = [Bucketizer(splits=[0.0, 1.0, 2.0], inputCol="x", outputCol="b")]
    fitted, model = fit_save_load(stages, df, tmp_path / "m")
    with pytest.raises(Exception, match="out of Bucketizer bounds"):
        fitted.transform(spark.createDataFrame([(-0.0,)], "x double")).collect()
    for batch in ({"x": np.array([-0.0])}, {"x": np.array([0.5, -0.0])}):
        with pytest.raises(InvalidInput) as err:
            model.predict(batch)
        assert (
            err.value.status == 400 and "out of Bucketizer bounds" in err.value.message and "-0.0" in err.value.message
        )


def test_null_and_nan_are_told_apart_as_spark_does(spark: Any, tmp_path: Path) -> None:
    from pyspark.ml.feature import (
        Binarizer,
        Bucketizer,
        Imputer,
        OneHotEncoder,
        StringIndexer,
        VectorAssembler,
    )

    schema = "c double, idx double, b double, o double, k double, m double"
    train = spark.createDataFrame(
        [(1.0, 0.0, 0.5, 0.0, 0.5, 2.0), (NAN, 1.0, 1.5, 1.0, 1.5, 3.0), (2.0, 2.0, 0.1, 2.0, 0.1, 7.0)] * 3, schema
    )
    test_rows = [
        {"c": None, "idx": None, "b": None, "o": None, "k": None, "m": None},
        {"c": NAN, "idx": NAN, "b": NAN, "o": NAN, "k": NAN, "m": NAN},
        {"c": 2.0, "idx": 1.0, "b": 1.5, "o": 1.0, "k": 1.5, "m": 0.0},
    ]
    test = spark.createDataFrame([tuple(r.values()) for r in test_rows], schema)
    stages = [
        StringIndexer(inputCol="c", outputCol="c_i", handleInvalid="keep"),
        Binarizer(inputCol="b", outputCol="b_b", threshold=1.0),
        OneHotEncoder(inputCol="o", outputCol="o_v", handleInvalid="keep", dropLast=False),
        Bucketizer(splits=[0.0, 1.0, 2.0], inputCol="k", outputCol="k_b", handleInvalid="keep"),
        Imputer(inputCols=["m"], outputCols=["m_i"], missingValue=0.0),
        VectorAssembler(inputCols=["o_v", "k_b"], outputCol="assembled", handleInvalid="keep"),
    ]
    cols = ["c_i", "b_b", "o_v", "k_b", "m_i", "assembled"]
    fitted, model = fit_save_load(stages, train, tmp_path / "m", outputs=cols)
    want = {c: [r[c] for r in fitted.transform(test).select(*cols).collect()] for c in cols}
    assert want["o_v"][0] is None and want["k_b"][0] is None and want["k_b"][1] == 2.0  # Spark's own answers
    batch = {name: [r[name] for r in test_rows] for name in test_rows[0] if name != "idx"}
    got = model.predict(batch, outputs=cols)
    for c in cols:
        _assert_like_spark(got[c], want[c], c)
    for i in range(len(test_rows)):  # one row at a time (the row path where it answers) gives the same
        one = model.predict({k: v[i : i + 1] for k, v in batch.items()}, outputs=cols)
        for c in cols:
            _assert_like_spark(one[c], want[c][i : i + 1], f"{c} (row {i} alone)")


def test_index_to_string_refuses_null_and_nan_as_spark_4_does(spark: Any, tmp_path: Path) -> None:
    from pyspark.ml.feature import IndexToString

    df = spark.createDataFrame([(1.0,)], "idx double")
    stages = [IndexToString(inputCol="idx", outputCol="label", labels=["x", "y", "z"])]
    fitted, model = fit_save_load(stages, df, tmp_path / "m")
    assert model.predict({"idx": [2.0, 0.0]})["label"].tolist() == ["z", "x"]
    for bad, word in ((None, "null"), (NAN, "NaN")):
        with pytest.raises(Exception):  # noqa: B017 - Spark's own error types differ (cast overflow, unseen index)
            fitted.transform(spark.createDataFrame([(bad,)], "idx double")).collect()
        for batch in ({"idx": [bad]}, {"idx": [1.0, bad]}):
            with pytest.raises(InvalidInput) as err:
                model.predict(batch)
            assert err.value.status == 400 and "IndexToString" in err.value.message and word in err.value.message


def test_imputer_casts_back_to_the_input_type(spark: Any, tmp_path: Path) -> None:
    from pyspark.ml.feature import Imputer

    schema = "i int, f float"
    train = spark.createDataFrame([(1, 0.1), (2, 0.2), (4, 0.4), (-1, -1.0)], schema)
    test_rows = [{"i": -1, "f": -1.0}, {"i": 3, "f": 2.5}]
    test = spark.createDataFrame([(r["i"], r["f"]) for r in test_rows], schema)
    stages = [Imputer(inputCols=["i", "f"], outputCols=["i_o", "f_o"], missingValue=-1.0)]
    fitted, _ = fit_save_load(stages, train, tmp_path / "m")
    want = fitted.transform(test).select("i_o", "f_o").collect()
    assert want[0]["i_o"] == 2 and want[0]["f_o"] != pytest.approx(0.7 / 3, abs=1e-12)  # truncated, float32
    config = ModelConfig(inputs_override=(TensorSpec("i", "INT64", (-1,)), TensorSpec("f", "FP32", (-1,))))
    model = modelport.load_model(tmp_path / "m", config=config)
    batch = {"i": np.array([r["i"] for r in test_rows]), "f": np.array([r["f"] for r in test_rows], np.float32)}
    got = model.predict(batch)
    for c in ("i_o", "f_o"):
        # the same double, cast the same way: equal by construction
        assert_close(got[c], np.array([float(r[c]) for r in want]), exact=True, what=c)
    for i in range(len(test_rows)):
        one = model.predict({k: v[i : i + 1] for k, v in batch.items()})
        assert_close(one["i_o"], np.array([float(want[i]["i_o"])]), exact=True, what="i_o alone")
        assert_close(one["f_o"], np.array([float(want[i]["f_o"])]), exact=True, what="f_o alone")


def test_feature_hasher_skips_nulls_and_takes_strings(spark: Any, tmp_path: Path) -> None:
    from pyspark.ml.feature import FeatureHasher

    schema = "s string, x double, flag boolean, n int, code double"
    rows = [
        ("red", 1.5, True, 3, 3.0),
        (None, None, None, None, None),
        ("blue", NAN, False, -2, NAN),
        ("ünï", 1e20, None, 0, 2.5),
    ]
    df = spark.createDataFrame(rows, schema)
    stages = [FeatureHasher(inputCols=["s", "x", "flag", "n", "code"], categoricalCols=["code"], outputCol="h")]
    fitted, model = fit_save_load(stages, df, tmp_path / "m", outputs=["h"])
    assert [model.signature.input(c).datatype for c in ("s", "x", "flag", "n", "code")] == ["BYTES"] * 5
    want = np.array([r["h"].toArray() for r in fitted.transform(df).select("h").collect()])
    names = ["s", "x", "flag", "n", "code"]
    got = model.predict({name: [r[i] for r in rows] for i, name in enumerate(names)})
    assert_close(got["h"], want, what="hashed features")


def test_token_list_inputs_and_digit_labels_are_typed_as_spark_columns(spark: Any, tmp_path: Path) -> None:
    from pyspark.ml.feature import CountVectorizer, HashingTF, NGram, StopWordsRemover, StringIndexer

    schema = "words array<string>, zip string"
    train_rows = [(["hello", "world"], "02139"), (["the", "quick", "fox", "hello"], "10001"), (["fox"], "94105")]
    df = spark.createDataFrame(train_rows, schema)
    stages = [
        HashingTF(inputCol="words", outputCol="tf", numFeatures=64),
        CountVectorizer(inputCol="words", outputCol="cv"),
        NGram(inputCol="words", outputCol="bigrams"),
        StopWordsRemover(inputCol="words", outputCol="kept"),
        StringIndexer(inputCol="zip", outputCol="zip_i"),
    ]
    cols = ["tf", "cv", "bigrams", "kept", "zip_i"]
    fitted, model = fit_save_load(stages, df, tmp_path / "m", outputs=cols)
    assert model.signature.input("words").datatype == "BYTES" and model.signature.input("words").shape == (-1, -1)
    assert model.signature.input("zip").datatype == "BYTES"
    want = fitted.transform(df).select(*cols).collect()
    width = max(len(r[0]) for r in train_rows)
    words = [list(r[0]) + [None] * (width - len(r[0])) for r in train_rows]  # shorter rows padded with null
    got = model.predict({"words": words, "zip": [r[1] for r in train_rows]}, outputs=cols)
    for c in cols:
        for i, w in enumerate(want):
            g = got[c][i]
            if hasattr(w[c], "toArray"):
                assert_close(g, w[c].toArray(), what=f"{c}[{i}]")
            elif isinstance(w[c], list):
                assert list(g) == w[c], f"{c}[{i}]: {g!r} instead of {w[c]!r}"
            else:
                assert_close(g, float(w[c]), what=f"{c}[{i}]")
    with pytest.raises(InvalidInput) as err:  # a plain string is not a token list (Spark would not hash its characters)
        model.predict({"words": ["hello world"], "zip": ["02139"]})
    assert err.value.status == 400 and "'words'" in err.value.message and "[-1, -1]" in err.value.message


@pytest.mark.parametrize("version", ["banana", "", "three.five", None])
def test_unparsable_spark_version_fails_at_load(tmp_path: Path, version: str | None) -> None:
    path = tmp_path / "m"
    shutil.copytree(FIXTURES / "text_lr" / "model", path)
    meta = next((path / "stages").glob("2_HashingTF_*")) / "metadata" / "part-00000"
    text = meta.read_text()
    assert '"sparkVersion":"3.5' in text
    start = text.index('"sparkVersion":"') + len('"sparkVersion":"')
    end = text.index('"', start)
    if version is None:
        text = text[: start - len('"sparkVersion":"')] + text[end + 2 :]  # drop the key and its comma
    else:
        text = text[:start] + version + text[end:]
    meta.write_text(text)
    with pytest.raises(ModelLoadError) as err:
        modelport.load_model(path)
    assert "sparkVersion" in str(err.value) and "HashingTF" in str(err.value)


def test_request_null_and_nan_arrive_apart() -> None:
    # JSON has no NaN literal: null is Spark's null, the string "NaN" is NaN (both NaN to other models).
    from modelport.core.signature import InputPlan, Signature

    plan = InputPlan("m", Signature((TensorSpec("x", "FP64", (-1,)),), ()))
    for data in ([None, "NaN", 1.5], [None, NAN, 1.5]):
        x = plan.coerce("x", data)
        assert np.isnan(x[:2]).all() and x[2] == 1.5
        assert null_mask(x).tolist() == [True, False, False]
    assert np.isnan(plan.coerce("x", ["NaN", "Infinity"])[0]) and plan.coerce("x", ["-Infinity"])[0] == -np.inf
    with pytest.raises(InvalidInput) as err:
        plan.coerce("x", ["1.5"])
    assert err.value.status == 400 and "must be FP64 numbers" in err.value.message
