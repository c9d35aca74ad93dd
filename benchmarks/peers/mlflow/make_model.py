"""Wrap the joblib pipeline as an MLflow model directory whose pyfunc returns predict_proba.

Usage (with the MLflow venv's python): python make_model.py MODEL.joblib OUT_DIR
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import joblib
import mlflow.sklearn

if __name__ == "__main__":
    source, out = sys.argv[1], Path(sys.argv[2])
    if out.exists():
        shutil.rmtree(out)
    mlflow.sklearn.save_model(joblib.load(source), str(out), pyfunc_predict_fn="predict_proba")
