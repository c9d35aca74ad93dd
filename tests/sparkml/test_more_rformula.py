"""RFormulaModel against pyspark: string terms, interactions, '.', '- term', no intercept, string and forced
labels, vector terms, handleInvalid; the label column is absent from every prediction request."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

import modelport
from modelport.core.errors import InvalidInput, ModelLoadError
from tests.sparkml._stages import WINE_COLS, compare_all, save_stage, split, wine_rows
from tests.sparkml.parity import batch_from, collect, fit_save_load
from tests.tolerance import assert_close

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::FutureWarning")]

REGIONS = ["north", "south", "east", "west", "centre"]


def _rows() -> list[dict[str, Any]]:
    """Wine rows plus a second string column ``region`` and a 2-slot vector ``v``."""
    rows = wine_rows()
    for i, r in enumerate(rows):
        r["region"] = REGIONS[(i * 7) % 5] if i % 11 else "north"
        r["v"] = [r["ash"] - 2.0, float(i % 3)]
    return rows


_SCHEMA = ", ".join(
    [*(f"{c} double" for c in WINE_COLS), "cat double", "grade string", "label double", "region string"]
)


def _df(spark: Any, rows: list[dict[str, Any]], vector: bool = False) -> Any:
    cols = [*WINE_COLS, "cat", "grade", "label", "region"]
    if not vector:
        return spark.createDataFrame([tuple(r[c] for c in cols) for r in rows], _SCHEMA)
    from pyspark.ml.linalg import Vectors, VectorUDT
    from pyspark.sql.types import StructField, StructType

    schema = spark.createDataFrame([], _SCHEMA).schema
    schema = StructType([*schema.fields, StructField("v", VectorUDT())])
    return spark.createDataFrame([(*(r[c] for c in cols), Vectors.dense(r["v"])) for r in rows], schema)


@pytest.fixture(scope="module")
def data() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    return split(_rows())


@pytest.mark.parametrize(
    "formula",
    [
        "label ~ alcohol + grade + region",
        "label ~ grade + malic:grade + region:grade + ash:magnesium + alcohol",
        "label ~ . - cat - region",
        "label ~ region + grade + alcohol - 1",
        "label ~ grade:region:malic + phenols - 1",
    ],
)
def test_formula_features_and_a_model_after_it(spark: Any, tmp_path: Path, data: Any, formula: str) -> None:
    """featuresCol and a logistic regression on it equal Spark's; the test frame has no label column."""
    from pyspark.ml.classification import LogisticRegression
    from pyspark.ml.feature import RFormula

    train, test = data
    stages = [RFormula(formula=formula), LogisticRegression(maxIter=15, regParam=0.01)]
    cols = ["features", "rawPrediction", "probability", "prediction"]
    fitted, model = fit_save_load(stages, _df(spark, train), tmp_path / "m", outputs=cols)
    assert "label" not in model.signature.input_names
    test_df = _df(spark, test).drop("label")
    compare_all(fitted, model, test_df, test, cols)
    assert model.info["stages"][0].startswith(f"RFormulaModel('{formula}'")


def test_string_label_and_forced_index_label_are_not_inputs(spark: Any, tmp_path: Path, data: Any) -> None:
    """A string label is indexed by Spark only when present; modelport serves the features without it."""
    from pyspark.ml.feature import RFormula

    train, test = data
    for name, rf in (
        ("string", RFormula(formula="grade ~ alcohol + region + malic:region", labelCol="y")),
        ("forced", RFormula(formula="cat ~ alcohol + grade", forceIndexLabel=True, labelCol="y")),
        ("nolabel", RFormula(formula="~ alcohol + grade")),
    ):
        fitted, model = fit_save_load([rf], _df(spark, train), tmp_path / name)
        label = fitted.stages[0].getOrDefault("formula").split("~")[0].strip()
        assert label not in model.signature.input_names
        assert model.signature.output_names == ["features"]
        test_df = _df(spark, test).drop(label) if label else _df(spark, test)
        compare_all(fitted, model, test_df, test, ["features"])


def test_vector_term(spark: Any, tmp_path: Path, data: Any) -> None:
    """A vector column in the formula goes through Spark's VectorSizeHint: the signature declares its size."""
    from pyspark.ml.feature import RFormula

    train, test = data
    fitted, model = fit_save_load(
        [RFormula(formula="label ~ v + grade + malic:grade")], _df(spark, train, vector=True), tmp_path / "v"
    )
    assert model.signature.input("v").shape == (-1, 2)
    compare_all(fitted, model, _df(spark, test, vector=True).drop("label"), test, ["features"])


def test_handle_invalid(spark: Any, tmp_path: Path, data: Any) -> None:
    """keep: an unseen category gets the extra slot as in Spark; error: a client error naming column and value."""
    from pyspark.ml.feature import RFormula

    train, test = data
    unseen = [dict(r, region="atlantis") if i % 3 == 0 else r for i, r in enumerate(test)]
    fitted, model = fit_save_load(
        [RFormula(formula="label ~ region + alcohol + grade:region", handleInvalid="keep")],
        _df(spark, train),
        tmp_path / "keep",
    )
    compare_all(fitted, model, _df(spark, unseen).drop("label"), unseen, ["features"])

    fitted, model = fit_save_load([RFormula(formula="label ~ region + alcohol")], _df(spark, train), tmp_path / "err")
    with pytest.raises(InvalidInput, match=r"column 'region': unseen label 'atlantis'"):
        model.predict(batch_from(unseen, model))
    compare_all(fitted, model, _df(spark, test).drop("label"), test, ["features"])


def test_missing_inner_pipeline_fails_at_load(spark: Any, tmp_path: Path, data: Any) -> None:
    import shutil

    from pyspark.ml.feature import RFormula

    train, _ = data
    fitted = RFormula(formula="label ~ alcohol + grade").fit(_df(spark, train))
    path = save_stage(fitted, tmp_path / "rf")
    assert modelport.load_model(path).signature.output("features").shape == (-1, 3)
    shutil.rmtree(path / "pipelineModel")
    with pytest.raises(ModelLoadError, match="RFormulaModel has no pipelineModel/ directory"):
        modelport.load_model(path)


def test_slicing_by_name_after_it(spark: Any, tmp_path: Path, data: Any) -> None:
    """A VectorSlicer by name after RFormula selects Spark's slots (names rebuilt from the terms, as Spark's
    private attribute rewriter leaves them); with a vector term the names are unknown and it fails at load."""
    from pyspark.ml import Pipeline
    from pyspark.ml.feature import RFormula, VectorSlicer

    train, test = data
    names = ["ash:magnesium", "grade_mid", "alcohol", "region_north:grade_low", "region___unknown:grade_high"]
    fitted, model = fit_save_load(
        [
            RFormula(formula="label ~ alcohol + grade + region:grade + ash:magnesium", handleInvalid="keep"),
            VectorSlicer(inputCol="features", outputCol="s", names=names),
        ],
        _df(spark, train),
        tmp_path / "sliced",
        outputs=["features", "s"],
    )
    spark_names = [
        a["name"]
        for a in sorted(
            (
                a
                for group in fitted.transform(_df(spark, test)).schema["s"].metadata["ml_attr"]["attrs"].values()
                for a in group
            ),
            key=lambda a: a["idx"],
        )
    ]
    assert spark_names == names
    compare_all(fitted, model, _df(spark, test).drop("label"), test, ["features", "s"])

    stages = [
        RFormula(formula="label ~ v + grade"),
        VectorSlicer(inputCol="features", outputCol="s", names=["grade_mid"]),
    ]
    path = save_stage(Pipeline(stages=stages).fit(_df(spark, train, vector=True)), tmp_path / "vec")
    with pytest.raises(ModelLoadError, match=r"VectorSlicer selects features by name \(grade_mid\).*with indices"):
        modelport.load_model(path)


def test_handle_invalid_skip_drops_the_rows_spark_drops(spark: Any, tmp_path: Path, data: Any) -> None:
    """skip: rows with an unseen category or a NaN number are dropped (Spark's transform), NaN-filled by predict."""
    from pyspark.ml.feature import RFormula

    train, test = data
    bad = [
        dict(r, region="atlantis") if i % 3 == 0 else dict(r, alcohol=float("nan")) if i % 5 == 1 else r
        for i, r in enumerate(test)
    ]
    fitted, model = fit_save_load(
        [RFormula(formula="label ~ region + alcohol + grade:region", handleInvalid="skip")],
        _df(spark, train),
        tmp_path / "s",
    )
    want = collect(fitted.transform(_df(spark, bad).drop("label")), ["features"])["features"]
    got = model.predict(batch_from(bad, model))["features"]
    dropped = np.isnan(got).all(axis=1)
    expect_dropped = np.array([i % 3 == 0 or i % 5 == 1 for i in range(len(bad))])
    assert (dropped == expect_dropped).all()
    assert_close(got[~dropped], want, what="features of the kept rows")
