"""The do-it-yourself baseline: Flask under gunicorn. POST /predict {"instances": [[...]]}.

Usage (from this folder): BENCH_MODEL=M.joblib gunicorn -w 2 --threads 4 -b 127.0.0.1:N app:app
"""

from __future__ import annotations

import os

import joblib
import numpy as np
from flask import Flask, jsonify, request

app = Flask(__name__)
model = joblib.load(os.environ["BENCH_MODEL"])


@app.get("/health")
def health() -> tuple[str, int]:
    return "ok", 200


@app.post("/predict")
def predict():  # type: ignore[no-untyped-def]
    x = np.asarray(request.get_json()["instances"], dtype=np.float64)
    return jsonify(predictions=model.predict_proba(x).tolist())
