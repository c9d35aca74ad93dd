"""The usual way to serve a Spark ML pipeline: Flask + a local SparkSession, one transform per request.

    python benchmarks/spark_flask_app.py MODEL_DIR PORT

POST /predict with a JSON object of column -> value (one row); answers the prediction and
probability. Used by benchmarks/sparkml_vs_spark.py as the reference for `modelport serve`.
"""

from __future__ import annotations

import sys
from typing import Any


def main() -> None:
    from flask import Flask, jsonify, request
    from pyspark.ml import PipelineModel
    from pyspark.sql import SparkSession

    path, port = sys.argv[1], int(sys.argv[2])
    spark = (
        SparkSession.builder.master("local[2]")
        .config("spark.ui.enabled", "false")
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.sql.shuffle.partitions", "1")
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    model = PipelineModel.load(path)
    app = Flask(__name__)

    @app.post("/predict")
    def predict() -> Any:
        row = request.get_json()
        df = spark.createDataFrame([row])
        out = model.transform(df).select("prediction", "probability").collect()[0]
        return jsonify({"prediction": out["prediction"], "probability": out["probability"].toArray().tolist()})

    @app.get("/health")
    def health() -> Any:
        return "ok"

    app.run(host="127.0.0.1", port=port, threaded=False)


if __name__ == "__main__":
    main()
