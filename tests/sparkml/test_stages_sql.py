"""Issue 12, SQLTransformer: statements run by DuckDB give Spark SQL's answers (division by zero, integer casts,
log of non-positive numbers, concat with null, WHERE), and what is not reproduced fails at load."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from modelport.core.errors import InvalidInput, ModelLoadError
from tests.sparkml._stages import compare_all, split, wine_df, wine_rows
from tests.sparkml.parity import fit_save_load

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::FutureWarning")]

STATEMENT = (
    "SELECT *, (alcohol - malic) / (cat + 1) AS ratio, "
    "CASE WHEN grade = 'high' THEN 2.0 WHEN grade IN ('mid', 'low') THEN 1.0 ELSE -1.0 END AS g, "
    "CAST(ash * 3 AS INT) AS ash_i, CAST(-ash AS BIGINT) AS neg_i, log(cat) AS lc, log10(malic - 2) AS lm, "
    "sqrt(magnesium) + pow(phenols, 2) AS sp, concat(grade, '_', grade) AS gg, upper(grade) AS up, "
    "length(grade) AS n, coalesce(NULL, alcohol) AS co, greatest(alcohol, malic * 10) AS gr, "
    "(alcohol > 13 AND NOT malic < 2) OR ash IS NULL AS flag, abs(malic - 2.5) % 1.5 AS md "
    "FROM __THIS__"
)
OUTS = ["ratio", "g", "ash_i", "neg_i", "lc", "lm", "sp", "gg", "up", "n", "co", "gr", "flag", "md"]


def test_sql_transformer_matches_spark_sql(spark: Any, tmp_path: Path) -> None:
    from pyspark.ml.feature import SQLTransformer, VectorAssembler

    if True:
        train, test = split(wine_rows())
        test = [*test, dict(test[0], grade="unseen")]
        stages = [
            SQLTransformer(statement=STATEMENT),
            VectorAssembler(inputCols=["ratio", "g", "ash_i", "sp"], outputCol="features", handleInvalid="keep"),
        ]
        fitted, model = fit_save_load(stages, wine_df(spark, train), tmp_path / "m", outputs=[*OUTS, "features"])
        assert model.signature.input("grade").datatype == "BYTES"
        assert model.signature.input("alcohol").datatype == "FP64"
        assert model.signature.output("gg").datatype == "BYTES"
        got = compare_all(fitted, model, wine_df(spark, test), test, [*OUTS, "features"])
        assert np.isnan(got["lc"]).any()  # log(0): Spark's null, not DuckDB's -inf
        assert not np.isnan(got["lm"]).all() and np.isnan(got["lm"]).any()
        assert model.info["stages"][0].startswith("SQLTransformer(alcohol, ash, cat, grade, magnesium, malic, phenols")


def test_sql_transformer_where_drops_rows(spark: Any, tmp_path: Path) -> None:
    from pyspark.ml.feature import SQLTransformer

    train, test = split(wine_rows())
    stages = [SQLTransformer(statement="SELECT *, alcohol * 2 AS a2 FROM __THIS__ WHERE malic > 2 AND grade <> 'low'")]
    fitted, model = fit_save_load(stages, wine_df(spark, train), tmp_path / "m")
    want = [r["a2"] for r in fitted.transform(wine_df(spark, test)).select("a2").collect()]
    from tests.sparkml.parity import batch_from

    batch = model.plan.coerce_batch(batch_from(test, model))
    got, index = model.predictor.transform(batch)
    expected_rows = [i for i, r in enumerate(test) if r["malic"] > 2 and r["grade"] != "low"]
    assert index.tolist() == expected_rows
    from tests.tolerance import assert_close

    assert_close(got["a2"], np.array(want), what="a2")


def test_sql_transformer_ansi_division_by_zero_is_a_client_error(spark: Any, tmp_path: Path) -> None:
    from pyspark.ml.feature import SQLTransformer

    if tuple(int(v) for v in spark.version.split(".")[:2]) < (4, 0):
        pytest.fail("this module runs against pyspark 4.x, whose SQL is ANSI by default")
    train, _ = split(wine_rows())
    stages = [SQLTransformer(statement="SELECT *, alcohol / (cat - 1) AS r FROM __THIS__")]
    _, model = fit_save_load(stages, wine_df(spark, train).where("cat <> 1"), tmp_path / "m")
    with pytest.raises(InvalidInput, match="DIVIDE_BY_ZERO"):
        model.predictor.predict({"alcohol": np.array([1.0]), "cat": np.array([1.0])})


def test_sql_division_by_zero_in_a_spark3_save_is_null(tmp_path: Path) -> None:
    """Spark 3.x's SQL is not ANSI by default: x / 0 and x % 0 are null (a 3.5 save carries sparkVersion 3.5)."""
    import json

    from modelport.runtimes.sparkml.reader import read_metadata
    from modelport.runtimes.sparkml.sql import SQLTransformer as Stage
    from modelport.runtimes.sparkml.stage import ColumnInfo, Frame

    meta_dir = tmp_path / "sql" / "metadata"
    meta_dir.mkdir(parents=True)
    meta = {
        "class": "org.apache.spark.ml.feature.SQLTransformer",
        "sparkVersion": "3.5.1",
        "uid": "SQLTransformer_1",
        "paramMap": {"statement": "SELECT *, a / b AS q, a % b AS m FROM __THIS__"},
        "defaultParamMap": {},
    }
    (meta_dir / "part-00000").write_text(json.dumps(meta))
    stage = Stage(read_metadata(tmp_path / "sql"))
    stage.setup({"a": ColumnInfo("number"), "b": ColumnInfo("number")})
    frame = Frame({"a": np.array([1.0, 7.0]), "b": np.array([0.0, 2.0])}, 2)
    stage.transform(frame)
    assert np.isnan(frame["q"][0]) and frame["q"][1] == 3.5  # one IEEE division each: exact
    assert np.isnan(frame["m"][0]) and frame["m"][1] == 1.0


def test_sql_transformer_refuses_what_it_cannot_reproduce(spark: Any, tmp_path: Path) -> None:
    from pyspark.ml.feature import SQLTransformer

    train, _ = split(wine_rows())
    for statement, what in (
        ("SELECT *, round(alcohol, 1) AS r FROM __THIS__", "function round"),
        ("SELECT *, CAST(alcohol AS STRING) AS s FROM __THIS__", "CAST to (VARCHAR|STRING)"),
    ):
        with pytest.raises(ModelLoadError, match=f"SQLTransformer statement uses {what}, whose Spark semantics"):
            fit_save_load([SQLTransformer(statement=statement)], wine_df(spark, train), tmp_path / what[:6])
