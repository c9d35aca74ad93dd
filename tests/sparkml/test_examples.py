"""The committed demo pipelines (examples/models) give Spark's answers, and need no Spark to load."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import modelport
from tests.sparkml.parity import collect, penguins, rotten_tomatoes
from tests.tolerance import assert_close

MODELS = Path(__file__).resolve().parents[2] / "examples" / "models"
PENGUIN_COLS = ["island", "sex", "bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g"]
PENGUIN_SCHEMA = (
    "island string, sex string, bill_length_mm double, bill_depth_mm double, flipper_length_mm double, "
    "body_mass_g double"
)


def test_demo_signatures() -> None:
    sentiment = modelport.load_model(MODELS / "sentiment")
    assert sentiment.signature.input_names == ["text"]
    assert sentiment.signature.output("probability").shape == (-1, 2)
    penguin = modelport.load_model(MODELS / "penguins")
    assert sorted(penguin.signature.input_names) == sorted(PENGUIN_COLS)
    assert penguin.signature.output("probability").labels == ("Adelie", "Gentoo", "Chinstrap")
    out = penguin.predict(
        {
            c: [None] if c in ("sex", "flipper_length_mm") else ["Dream"] if c == "island" else [40.0]
            for c in PENGUIN_COLS
        }
    )
    assert out["probability"].shape == (1, 3) and out["prediction"].shape == (1,)


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::FutureWarning")
def test_demo_parity_with_spark(spark: Any) -> None:
    from pyspark.ml import PipelineModel

    docs = [t for t, _ in rotten_tomatoes()[-300:]] + ["", "  spaces  everywhere ", "Émoji 😀"]
    sdf = spark.createDataFrame([(t,) for t in docs], "text string")
    cols = ["rawPrediction", "probability", "prediction"]
    want = collect(PipelineModel.load(str(MODELS / "sentiment")).transform(sdf), cols)
    got = modelport.load_model(MODELS / "sentiment").predict({"text": docs})
    for c in cols:
        assert_close(got[c], want[c], what=c)

    rows = [dict(r, island=r["island"] if i % 50 else "Atlantis") for i, r in enumerate(penguins())]
    pdf = spark.createDataFrame([tuple(r[c] for c in PENGUIN_COLS) for r in rows], PENGUIN_SCHEMA)
    want = collect(PipelineModel.load(str(MODELS / "penguins")).transform(pdf), cols)
    batch = {c: [r[c] for r in rows] for c in PENGUIN_COLS}
    got = modelport.load_model(MODELS / "penguins").predict(batch)
    for c in cols:
        assert_close(got[c], want[c], what=c)
