"""Parity of the text stages with Spark on the Rotten Tomatoes corpus (plus edge-case strings)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

import modelport
from modelport.runtimes.sparkml.text import murmur3_spark2
from tests.sparkml.parity import compare, fit_save_load, rotten_tomatoes
from tests.tolerance import assert_close

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::FutureWarning")]

EDGE = [
    "  Double  spaces and trailing   ",
    "",
    "tabs\tand\nnewlines",
    "Café déjà vu — naïve ÉCOLE",
    "emoji 😀 party 🎉🎉",
    "UPPER lower MiXeD",
    "a",
    "the of and a it is",
]


def _text_rows(n_train: int = 1500, n_test: int = 200) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    data = rotten_tomatoes()
    train = [{"text": t, "label": y} for t, y in data[:n_train]]
    test = [{"text": t, "label": y} for t, y in data[-n_test:]] + [{"text": t, "label": 0.0} for t in EDGE]
    return train, test


def _df(spark: Any, rows: list[dict[str, Any]]) -> Any:
    return spark.createDataFrame([(r["text"], r["label"]) for r in rows], "text string, label double")


def test_tokenizer_stopwords_ngram_hashingtf_idf(spark: Any, tmp_path: Path) -> None:
    from pyspark.ml.feature import IDF, HashingTF, NGram, StopWordsRemover, Tokenizer

    train, test = _text_rows()
    stages = [
        Tokenizer(inputCol="text", outputCol="words"),
        StopWordsRemover(inputCol="words", outputCol="filtered"),
        NGram(n=2, inputCol="filtered", outputCol="bigrams"),
        HashingTF(inputCol="bigrams", outputCol="tf", numFeatures=1 << 12),
        IDF(inputCol="tf", outputCol="tfidf", minDocFreq=2),
        HashingTF(inputCol="words", outputCol="tf_bin", numFeatures=1 << 17, binary=True),
    ]
    cols = ["words", "filtered", "bigrams", "tf", "tfidf", "tf_bin"]
    fitted, model = fit_save_load(stages, _df(spark, train), tmp_path / "m", outputs=cols)
    compare(fitted, model, _df(spark, test), test, cols)
    assert [s.name for s in model.signature.inputs] == ["text"]
    assert model.signature.input("text").datatype == "BYTES"
    assert model.signature.output("tfidf").shape == (-1, 4096)


def test_regex_tokenizer_count_vectorizer(spark: Any, tmp_path: Path) -> None:
    from pyspark.ml.feature import CountVectorizer, RegexTokenizer, StopWordsRemover

    train, test = _text_rows(800, 150)
    stages = [
        RegexTokenizer(inputCol="text", outputCol="w1", pattern="\\W+", minTokenLength=2),
        RegexTokenizer(inputCol="text", outputCol="w2", pattern="[a-z]+", gaps=False, toLowercase=False),
        StopWordsRemover(inputCol="w2", outputCol="w2f", caseSensitive=True, stopWords=["The", "a", "film"]),
        CountVectorizer(inputCol="w1", outputCol="cv", vocabSize=500, minDF=2.0),
        CountVectorizer(inputCol="w1", outputCol="cv_frac", vocabSize=300, minTF=0.05),
        CountVectorizer(inputCol="w2f", outputCol="cv_bin", vocabSize=200, minTF=2.0, binary=True),
    ]
    cols = ["w1", "w2", "w2f", "cv", "cv_frac", "cv_bin"]
    fitted, model = fit_save_load(stages, _df(spark, train), tmp_path / "m", outputs=cols)
    compare(fitted, model, _df(spark, test), test, cols)


def test_feature_hasher(spark: Any, tmp_path: Path) -> None:
    from pyspark.ml.feature import FeatureHasher

    rows = [
        {"s": "red", "x": 1.5, "flag": True, "code": 3.0},
        {"s": "blue", "x": -2.0, "flag": False, "code": 1.0},
        {"s": "green", "x": 0.0, "flag": True, "code": 3.0},
        {"s": "ünï", "x": 1e20, "flag": False, "code": 2.5},
    ]
    schema = "s string, x double, flag boolean, code double"
    df = spark.createDataFrame([tuple(r.values()) for r in rows], schema)
    stages = [
        FeatureHasher(inputCols=["s", "x", "flag", "code"], categoricalCols=["code"], outputCol="h", numFeatures=64)
    ]
    fitted, model = fit_save_load(stages, df, tmp_path / "m")
    # the saved model does not say which columns were text: every input is BYTES, each value hashed by its kind
    assert [model.signature.input(c).datatype for c in ("s", "x", "flag", "code")] == ["BYTES"] * 4
    want = np.array([r["h"].toArray() for r in fitted.transform(df).select("h").collect()])
    got = model.predict({c: [r[c] for r in rows] for c in ("s", "x", "flag", "code")})
    assert_close(got["h"], want, what="hashed features")


def test_hash_functions_match_the_jvm(spark: Any) -> None:
    import mmh3

    jvm = spark._jvm
    murmur = jvm.org.apache.spark.unsafe.hash.Murmur3_x86_32
    offset = jvm.org.apache.spark.unsafe.Platform.BYTE_ARRAY_OFFSET
    for text in ["", "a", "ab", "abc", "abcd", "abcde", "café", "😀x", "日本語のテキスト", "hello world"]:
        b = bytearray(text.encode("utf-8"))
        assert murmur3_spark2(bytes(b)) == murmur.hashUnsafeBytes(b, offset, len(b), 42), text
        assert mmh3.hash(text, 42) == murmur.hashUnsafeBytes2(b, offset, len(b), 42), text


def test_spark2_model_uses_old_hash(spark: Any, tmp_path: Path) -> None:
    from pyspark.ml.feature import HashingTF, Tokenizer

    df = _df(spark, [{"text": "abc abcde café x", "label": 1.0}])
    path = tmp_path / "m"
    fit_save_load(
        [Tokenizer(inputCol="text", outputCol="w"), HashingTF(inputCol="w", outputCol="tf", numFeatures=97)], df, path
    )
    stage_dir = next((path / "stages").glob("1_*"))
    meta = next((stage_dir / "metadata").glob("part-*"))
    meta.write_text(meta.read_text().replace('"sparkVersion":"' + spark.version, '"sparkVersion":"2.4.8'))
    model = modelport.load_model(path)
    out = model.predict({"text": ["abc abcde café x"]})["tf"][0]
    want = np.zeros(97)
    for t in ["abc", "abcde", "café", "x"]:
        want[murmur3_spark2(t.encode()) % 97] += 1
    np.testing.assert_array_equal(out, want)


def test_null_text_is_a_client_error(spark: Any, tmp_path: Path) -> None:
    from pyspark.ml.feature import HashingTF, Tokenizer

    df = _df(spark, [{"text": "a b", "label": 1.0}])
    _, model = fit_save_load(
        [Tokenizer(inputCol="text", outputCol="w"), HashingTF(inputCol="w", outputCol="tf", numFeatures=8)],
        df,
        tmp_path / "m",
    )
    with pytest.raises(modelport.core.errors.InvalidInput) as err:
        model.predict({"text": ["fine", None]})
    assert err.value.status == 400
    assert "Tokenizer" in err.value.message and "'text'" in err.value.message and "None" in err.value.message
