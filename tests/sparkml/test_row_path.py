"""The one-row path: when it is taken, and that it answers as the frame path does.

Every parity test also predicts each held-out row alone (``parity.assert_rows_alone``) and every
stage-level test runs ``Stage.row`` on each row (``_util.run_stage``); these tests cover the rest:
which path a pipeline takes, dropped rows, errors, and stages without a row method.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import modelport
from modelport.core.errors import InvalidInput
from modelport.runtimes.sparkml.pipeline import SparkPipeline
from modelport.runtimes.sparkml.vectors import SparseRow, row_array, row_dense, row_dot, row_size, safe_exp
from tests.sparkml.parity import assert_rows_alone, batch_from, fit_save_load, penguin_df, penguins
from tests.tolerance import assert_close

MODELS = Path(__file__).resolve().parents[2] / "examples" / "models"
NUMS = ["bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g"]


def _pipeline(model: modelport.Model) -> SparkPipeline:
    inner = getattr(model.predictor, "inner", model.predictor)
    assert isinstance(inner, SparkPipeline)
    return inner


def _frame_only(pipe: SparkPipeline, batch: dict[str, Any]) -> dict[str, np.ndarray]:
    """The frame path's answer for ``batch``, whatever its size."""
    steps = pipe._row_steps
    pipe._row_steps = None
    try:
        return pipe.predict(batch)
    finally:
        pipe._row_steps = steps


def _same(got: dict[str, np.ndarray], want: dict[str, np.ndarray]) -> None:
    assert list(got) == list(want)
    for name, value in want.items():
        assert got[name].shape == value.shape and got[name].dtype == value.dtype, name
        if value.dtype == object:
            assert got[name].tolist() == value.tolist(), name
        else:
            assert_close(got[name], value, what=name)


def test_sparse_row_helpers() -> None:
    v = SparseRow(5, [1, 3], [2.0, -1.5])
    assert row_size(v) == 5 and row_dense(v) == [0.0, 2.0, 0.0, -1.5, 0.0]
    assert row_array(v).tolist() == [[0.0, 2.0, 0.0, -1.5, 0.0]] and row_array(v).dtype == np.float64
    assert row_array([1.0, 2.0]).shape == (1, 2)
    w = [1.0, 2.0, 3.0, 4.0, 5.0]
    assert row_dot(v, w) == 2.0 * 2.0 - 1.5 * 4.0 == row_dot(row_dense(v), w)
    assert safe_exp(1000.0) == math.inf and safe_exp(0.0) == 1.0


@pytest.mark.parametrize("name", ["sentiment", "penguins"])
def test_demo_pipelines_take_the_row_path(name: str) -> None:
    model = modelport.load_model(MODELS / name)
    pipe = _pipeline(model)
    assert pipe.one_row_path == "row" and pipe.row_blockers == []
    if name == "sentiment":
        rows: dict[str, list[Any]] = {"text": ["A great film, great  cast\tand a good plot", "", "bad bad BAD"]}
    else:
        rows = {
            "island": ["Biscoe", "Dream", "Atlantis"],
            "sex": ["male", None, "female"],
            "bill_length_mm": [45.1, None, 39.0],
            "bill_depth_mm": [14.5, 18.2, None],
            "flipper_length_mm": [215.0, 190.0, 181.0],
            "body_mass_g": [5000.0, 3700.0, None],
        }
    batch = model.plan.coerce_batch(rows)
    whole = _frame_only(pipe, batch)
    for i in range(3):
        one = {k: v[i : i + 1] for k, v in batch.items()}
        by_row = pipe.predict_row(one)
        assert by_row is not None, f"row {i} left the row path"
        _same(by_row, {k: v[i : i + 1] for k, v in whole.items()})
        _same(pipe.predict(one), by_row)
        kept, index = pipe.transform(one)
        assert index.tolist() == [0]
        _same(kept, by_row)
    # a batch of several rows, or arrays of another shape, go the frame path
    assert pipe.predict_row(batch) is None


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::FutureWarning")
def test_dropped_rows_are_filled_like_the_frame_path(spark: Any, tmp_path: Path) -> None:
    from pyspark.ml.classification import LogisticRegression
    from pyspark.ml.feature import IndexToString, StringIndexer, VectorAssembler

    train = [dict(r) for r in penguins() if r["sex"] is not None and r["bill_length_mm"] is not None]
    stages = [
        StringIndexer(inputCols=["island", "species"], outputCols=["island_i", "label"], handleInvalid="skip"),
        VectorAssembler(inputCols=["island_i", *NUMS], outputCol="features", handleInvalid="skip"),
        LogisticRegression(maxIter=20),
        IndexToString(inputCol="prediction", outputCol="species_hat", labels=["a", "b", "c"]),
    ]
    outputs = ["probability", "prediction", "species_hat"]
    _, model = fit_save_load(stages, penguin_df(spark, train), tmp_path / "m", outputs=outputs)
    pipe = _pipeline(model)
    assert pipe.one_row_path == "row"
    good = train[0]
    rows = [good, dict(good, island="Atlantis"), dict(good, bill_depth_mm=None), train[-1]]
    batch = batch_from(rows, model)
    full = model.predict(batch)
    assert full["species_hat"].tolist()[1:3] == [None, None]
    assert np.isnan(full["probability"][1:3]).all() and np.isnan(full["prediction"][1:3]).all()
    for i, row in enumerate(rows):
        one = batch_from([row], model)
        took_row = pipe.predict_row(model.plan.coerce_batch(one)) is not None
        assert took_row == (i in (0, 3)), i  # a dropped row is the frame path's to fill
        alone = model.predict(one)
        _same(alone, {k: v[i : i + 1] for k, v in full.items()})
        kept, index = pipe.transform(model.plan.coerce_batch(one))
        assert index.tolist() == ([] if i in (1, 2) else [0])
        assert kept["probability"].shape == ((0, 3) if i in (1, 2) else (1, 3))
    assert assert_rows_alone(model, batch, full, list(full)) == 2


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::FutureWarning")
def test_error_rows_raise_the_frame_paths_error(spark: Any, tmp_path: Path) -> None:
    from pyspark.ml.feature import Bucketizer, IndexToString, OneHotEncoder, StringIndexer, Tokenizer, VectorAssembler

    train = [dict(r, year=r["year"] - 2007) for r in penguins() if all(r[c] is not None for c in NUMS)]
    stages = [
        StringIndexer(inputCol="island", outputCol="island_i"),
        OneHotEncoder(inputCol="island_i", outputCol="island_oh"),
        OneHotEncoder(inputCol="year", outputCol="year_oh"),
        VectorAssembler(inputCols=["island_oh", "year_oh", "bill_length_mm"], outputCol="features"),
        Bucketizer(splits=[0.0, 20.0, 100.0], inputCol="bill_depth_mm", outputCol="depth_b"),
        IndexToString(inputCol="depth_b", outputCol="depth_label", labels=["shallow", "deep"]),
        Tokenizer(inputCol="sex", outputCol="sex_words"),
    ]
    _, model = fit_save_load(stages, penguin_df(spark, train), tmp_path / "m")
    pipe = _pipeline(model)
    assert pipe.one_row_path == "row"
    good = train[0]
    assert pipe.predict_row(model.plan.coerce_batch(batch_from([good], model))) is not None
    cases = [
        ({"island": "Atlantis"}, "unseen label 'Atlantis'"),
        ({"island": None}, "null value"),
        ({"year": 7}, "unseen value 7.0"),
        ({"year": -1}, "negative value -1.0"),
        ({"bill_length_mm": None}, "VectorAssembler"),
        ({"bill_depth_mm": 150.0}, "150.0 out of Bucketizer bounds [0.0, 100.0]"),
        ({"bill_depth_mm": float("nan")}, "NaN value; Bucketizer"),
        ({"bill_depth_mm": None}, "null index"),  # Bucketizer passes null on; Spark 4's IndexToString refuses it
        ({"sex": None}, "is null"),
    ]
    for change, expected in cases:
        bad = dict(good, **change)
        with pytest.raises(InvalidInput) as alone:
            model.predict(batch_from([bad], model))
        with pytest.raises(InvalidInput) as among:
            model.predict(batch_from([good, bad, good], model))
        assert expected in alone.value.message, (change, alone.value.message)
        assert alone.value.message == among.value.message
        assert alone.value.status == among.value.status == 400


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::FutureWarning")
def test_stage_without_row_method_uses_the_frame_path(spark: Any, tmp_path: Path) -> None:
    from pyspark.ml.classification import NaiveBayes
    from pyspark.ml.feature import StringIndexer, VectorAssembler

    train = [r for r in penguins() if all(r[c] is not None for c in NUMS)]
    stages = [
        StringIndexer(inputCol="species", outputCol="label"),
        VectorAssembler(inputCols=NUMS, outputCol="features"),
        NaiveBayes(modelType="gaussian"),
    ]
    _, model = fit_save_load(stages, penguin_df(spark, train), tmp_path / "m")
    pipe = _pipeline(model)
    assert pipe.one_row_path == "frame"
    assert len(pipe.row_blockers) == 1 and pipe.row_blockers[0].startswith("NaiveBayesModel(")
    batch = batch_from(train[:25], model)
    assert pipe.predict_row(model.plan.coerce_batch(batch_from(train[:1], model))) is None
    full = model.predict(batch)
    assert assert_rows_alone(model, batch, full, list(full)) == 0


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::FutureWarning")
def test_hashing_tf_bucket_cache_is_bounded(spark: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from pyspark.ml.feature import HashingTF, Tokenizer

    import modelport.runtimes.sparkml.text as text

    df = spark.createDataFrame([("a b c",)], "text string")
    fitted, model = fit_save_load(
        [Tokenizer(inputCol="text", outputCol="w"), HashingTF(inputCol="w", outputCol="tf", numFeatures=64)],
        df,
        tmp_path / "m",
    )
    monkeypatch.setattr(text, "_CACHE_LIMIT", 5)
    stage = _pipeline(model).stages[1]
    assert isinstance(stage, text.HashingTF)
    docs = ["one two three", "four five six seven", "one one eight", "a b c d e f g h", "two"]
    from tests.sparkml.parity import collect

    want = collect(fitted.transform(spark.createDataFrame([(d,) for d in docs], "text string")), ["tf"])["tf"]
    np.testing.assert_array_equal(model.predict({"text": docs})["tf"], want)  # 16 distinct terms, limit 5
    assert len(stage._buckets) <= 5
    for i, doc in enumerate(docs):
        np.testing.assert_array_equal(model.predict({"text": [doc]})["tf"], want[i : i + 1])
        assert len(stage._buckets) <= 5
