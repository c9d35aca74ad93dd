"""A BentoML 1.2+ service around the joblib pipeline: POST /predict_proba {"input": [[...]]}.

The model path and worker count come from BENCH_MODEL and BENCH_WORKERS.
Usage (from this folder): bentoml serve service:BreastCancer --host 127.0.0.1 --port N
"""

from __future__ import annotations

import os

import bentoml
import joblib
import numpy as np


@bentoml.service(workers=int(os.environ.get("BENCH_WORKERS", "2")))
class BreastCancer:
    def __init__(self) -> None:
        self.model = joblib.load(os.environ["BENCH_MODEL"])

    @bentoml.api
    def predict_proba(self, input: np.ndarray) -> np.ndarray:  # the request's JSON field
        return self.model.predict_proba(input)
