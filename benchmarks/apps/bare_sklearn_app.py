"""The bare baseline: a V2 request parsed and ``predict_proba`` called, nothing else (see bare.py).

The model path comes from ``BENCH_MODEL``.
"""

from __future__ import annotations

import os
from typing import Any

import joblib
import numpy as np
from bare import v2_app

MODEL = joblib.load(os.environ["BENCH_MODEL"])


def answer(tensor: dict[str, Any]) -> list[dict[str, Any]]:
    x = np.asarray(tensor["data"], dtype=np.float64).reshape(tensor["shape"])
    proba = MODEL.predict_proba(x)
    return [{"name": "predict_proba", "datatype": "FP64", "shape": list(proba.shape), "data": proba.ravel()}]


app = v2_app("breast_cancer", answer)
