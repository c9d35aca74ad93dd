"""Loading rules: pipelines and single stages, unsupported stages, outputs, and no JVM at serve time."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import modelport
from modelport.core.errors import ModelLoadError
from tests.sparkml._util import run_without_pyspark
from tests.sparkml.parity import fit_save_load, penguin_df, penguins

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::FutureWarning")]

SRC = Path(__file__).resolve().parents[2] / "src"


def _small(spark: Any, path: Path) -> None:
    from pyspark.ml.feature import HashingTF, StringIndexer, Tokenizer, VectorAssembler

    rows = penguins()[:60]
    df = penguin_df(spark, rows).selectExpr("*", "concat_ws(' ', species, island) AS text")
    stages = [
        Tokenizer(inputCol="text", outputCol="w"),
        HashingTF(inputCol="w", outputCol="tf", numFeatures=16),
        StringIndexer(inputCol="island", outputCol="island_i", handleInvalid="keep"),
        VectorAssembler(inputCols=["tf", "island_i", "year"], outputCol="features"),
    ]
    fit_save_load(stages, df, path)


def test_unsupported_stage_fails_at_load(spark: Any, tmp_path: Path) -> None:
    from pyspark.ml.feature import StringIndexer
    from pyspark.ml.fpm import FPGrowth

    df = spark.createDataFrame(
        [("a", ["x", "y"]), ("b", ["x"]), ("a", ["y", "z"])], "island string, items array<string>"
    )
    stages = [StringIndexer(inputCol="island", outputCol="i"), FPGrowth(itemsCol="items", minSupport=0.3)]
    with pytest.raises(ModelLoadError) as err:
        fit_save_load(stages, df, tmp_path / "m")
    msg = err.value.message
    assert "org.apache.spark.ml.fpm.FPGrowthModel" in msg and "not supported" in msg
    assert "supported stages:" in msg and "StringIndexerModel" in msg and "HashingTF" in msg


def test_single_stage_directory(spark: Any, tmp_path: Path) -> None:
    from pyspark.ml.feature import StringIndexer

    df = penguin_df(spark, penguins()[:50])
    fitted = StringIndexer(inputCol="island", outputCol="island_i", handleInvalid="keep").fit(df)
    fitted.write().overwrite().save(str(tmp_path / "si"))
    model = modelport.load_model(tmp_path / "si")
    assert model.flavor == "sparkml"
    out = model.predict({"island": ["Torgersen", "Mars"]})
    labels = list(fitted.labelsArray[0])
    assert out["island_i"].tolist() == [float(labels.index("Torgersen")), float(len(labels))]


def test_unfitted_pipeline_is_refused(spark: Any, tmp_path: Path) -> None:
    from pyspark.ml import Pipeline
    from pyspark.ml.feature import Tokenizer

    Pipeline(stages=[Tokenizer(inputCol="a", outputCol="b")]).write().overwrite().save(str(tmp_path / "p"))
    with pytest.raises(ModelLoadError) as err:
        modelport.load_model(tmp_path / "p")
    assert "unfitted Pipeline" in err.value.message and "PipelineModel" in err.value.message


def test_config_outputs_pick_intermediate_columns(spark: Any, tmp_path: Path) -> None:
    path = tmp_path / "m"
    _small(spark, path)
    (path / "modelport.toml").write_text('outputs = ["island_i", "features"]\n')
    model = modelport.load_model(path)
    assert model.signature.output_names == ["island_i", "features"]
    out = model.predict({"text": ["Adelie Dream"], "island": ["Dream"], "year": [2008.0]})
    assert out["features"].shape == (1, 18)


def test_load_and_predict_without_pyspark(spark: Any, tmp_path: Path) -> None:
    """A subprocess where importing pyspark or py4j raises: load + predict still work."""
    path = tmp_path / "m"
    _small(spark, path)
    script = textwrap.dedent(
        f"""
        import json, sys
        import modelport
        m = modelport.load_model({str(path)!r})
        out = m.predict({{"text": ["Adelie Dream"], "island": ["Dream"], "year": [2008.0]}})
        print(json.dumps({{"features": out["features"].tolist(),
                          "spark": [k for k in sys.modules if k.startswith(("pyspark", "py4j"))]}}))
        """
    )
    result = run_without_pyspark(tmp_path, script)
    assert result["spark"] == []
    assert np.asarray(result["features"]).shape == (1, 18)
