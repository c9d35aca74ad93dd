"""Train the benchmark pipeline (StandardScaler + LogisticRegression on breast_cancer) into a joblib file.

Used only when a peer's venv could not take the runner's scikit-learn version, so the
pickle would not load there: the same pipeline on the same bundled data, trained with
that venv's scikit-learn. Usage: python train_model.py OUT.joblib
"""

from __future__ import annotations

import sys

import joblib
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

if __name__ == "__main__":
    X, y = load_breast_cancer(return_X_y=True)
    joblib.dump(make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(X, y), sys.argv[1])
