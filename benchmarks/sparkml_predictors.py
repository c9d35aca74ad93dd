"""Single-row and batch latency of JVM-free Spark ML predictors (LogisticRegression, 50-tree RandomForest).

Trains both with pyspark on breast_cancer (30 features), saves them, loads each as a
modelport stage and times ``transform`` on a Frame of 1 row and of 1,000 rows.

    PYTHONPATH=src python benchmarks/sparkml_predictors.py [--repeat 2000]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import timeit
from pathlib import Path
from typing import Any

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=2000)
    args = parser.parse_args()

    from pyspark.ml.classification import LogisticRegression, RandomForestClassifier
    from pyspark.ml.linalg import Vectors
    from pyspark.sql import SparkSession
    from sklearn.datasets import load_breast_cancer

    from modelport.runtimes.sparkml.reader import read_metadata
    from modelport.runtimes.sparkml.registry import load_all
    from modelport.runtimes.sparkml.stage import STAGES, Frame

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    spark = (
        SparkSession.builder.master("local[2]")
        .config("spark.ui.enabled", "false")
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    x, y = load_breast_cancer(return_X_y=True)
    df = spark.createDataFrame(
        [(Vectors.dense(r.tolist()), float(t)) for r, t in zip(x, y, strict=True)], ["features", "label"]
    )
    load_all()
    with tempfile.TemporaryDirectory() as tmp:
        models = {
            "LogisticRegression": LogisticRegression(maxIter=100, regParam=0.01),
            "RandomForest(50 trees, depth 5)": RandomForestClassifier(numTrees=50, maxDepth=5, seed=1),
        }
        for name, est in models.items():
            path = Path(tmp) / name.split("(")[0]
            est.fit(df).write().save(str(path))
            meta = read_metadata(path)
            stage = STAGES[meta.cls](meta)
            for rows in (1, 1000):
                batch = x[:rows].copy()

                def run(batch: np.ndarray = batch, stage: Any = stage) -> None:
                    stage.transform(Frame({"features": batch}, batch.shape[0]))

                n = args.repeat if rows == 1 else max(20, args.repeat // 50)
                best = min(timeit.repeat(run, number=n, repeat=5)) / n
                print(f"{name:34s} rows={rows:5d}  {best * 1e6:9.1f} us/call  {best * 1e6 / rows:8.2f} us/row")
    spark.stop()


if __name__ == "__main__":
    main()
