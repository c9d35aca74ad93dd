"""Tiny models and repositories the server tests share, fitted from scikit-learn's bundled data."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import joblib
import numpy as np


class ExplodingModel:
    """Predicts by raising: the server must answer 500 and keep serving."""

    n_features_in_ = 2

    def predict(self, X: Any) -> Any:
        raise RuntimeError("boom: the model's own failure")


class SleepyModel:
    """Sleeps as many seconds as its first input value says, then predicts 0: a model call that hangs."""

    n_features_in_ = 2

    def predict(self, X: Any) -> Any:
        import time

        time.sleep(float(np.asarray(X)[0, 0]))
        return np.zeros(len(X))


def build_repository(root: Path) -> Path:
    from sklearn.compose import ColumnTransformer
    from sklearn.datasets import load_breast_cancer, load_diabetes, load_wine
    from sklearn.linear_model import LinearRegression, LogisticRegression, Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    X, y = load_wine(return_X_y=True)
    (root / "wine").mkdir(parents=True)
    joblib.dump(
        make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(X, y), root / "wine" / "model.joblib"
    )

    # A forest: scikit-learn's trees compute in float32, so larger finite values must be refused up front.
    from sklearn.ensemble import RandomForestClassifier

    (root / "wine_forest").mkdir()
    joblib.dump(RandomForestClassifier(n_estimators=5, random_state=0).fit(X, y), root / "wine_forest" / "model.joblib")

    Xb, yb = load_breast_cancer(return_X_y=True)
    (root / "breast_cancer").mkdir()
    joblib.dump(
        make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(Xb, yb),
        root / "breast_cancer" / "model.joblib",
    )

    Xd, yd = load_diabetes(return_X_y=True)
    for version, est in ((1, LinearRegression()), (2, Ridge(alpha=1.0))):
        (root / "diabetes" / str(version)).mkdir(parents=True)
        joblib.dump(est.fit(Xd, yd), root / "diabetes" / str(version) / "model.joblib")

    import pandas as pd

    frame = pd.DataFrame(X[:, :2], columns=["alcohol", "malic_acid"])
    frame["region"] = np.array(["north", "south", "east"])[y]
    pre = ColumnTransformer(
        [("num", StandardScaler(), ["alcohol", "malic_acid"]), ("cat", OneHotEncoder(), ["region"])]
    )
    (root / "wine_frame").mkdir()
    joblib.dump(
        make_pipeline(pre, LogisticRegression(max_iter=1000)).fit(frame, y), root / "wine_frame" / "model.joblib"
    )

    (root / "exploding").mkdir()
    joblib.dump(ExplodingModel(), root / "exploding" / "model.joblib")

    (root / "broken").mkdir()
    (root / "broken" / "model.joblib").write_bytes(b"not a pickle at all")
    return root
