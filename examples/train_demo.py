"""Train the demo models in examples/models/ from data that scikit-learn ships.

    python examples/train_demo.py            # rewrites examples/models/* and examples/requests/*

Every model is small and seeded, so a rerun gives the same predictions (the files may
differ byte for byte across library versions). Each directory holds one artifact, which
``modelport serve examples/models`` serves as version 1 of a model named after it.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.datasets import load_breast_cancer, load_diabetes, load_wine
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

HERE = Path(__file__).resolve().parent
MODELS = HERE / "models"
REQUESTS = HERE / "requests"


def _dir(name: str) -> Path:
    path = MODELS / name
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    return path


def _classifier() -> Pipeline:
    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))


def wine() -> None:
    X, y = load_wine(return_X_y=True)
    joblib.dump(_classifier().fit(X, y), _dir("wine") / "model.joblib")


def breast_cancer() -> None:
    X, y = load_breast_cancer(return_X_y=True)
    est = _classifier().fit(X, y)
    joblib.dump(est, _dir("breast_cancer") / "model.joblib")

    # The same pipeline in ONNX. skl2onnx ends classifiers in a ZipMap (a list of dicts);
    # it is kept here on purpose: modelport's onnx flavor cuts it at load time.
    from skl2onnx import to_onnx
    from skl2onnx.common.data_types import FloatTensorType

    proto = to_onnx(est, initial_types=[("input", FloatTensorType([None, X.shape[1]]))], target_opset=17)
    (_dir("breast_cancer_onnx") / "model.onnx").write_bytes(proto.SerializeToString())

    import xgboost as xgb

    clf = xgb.XGBClassifier(n_estimators=40, max_depth=3, learning_rate=0.2, random_state=0, n_jobs=1)
    clf.fit(X, y)
    clf.get_booster().save_model(_dir("breast_cancer_xgb") / "model.json")

    import lightgbm as lgb

    lclf = lgb.LGBMClassifier(n_estimators=40, num_leaves=8, learning_rate=0.2, random_state=0, verbose=-1)
    lclf.fit(X, y)
    lclf.booster_.save_model(_dir("breast_cancer_lgbm") / "model.txt")


def diabetes() -> None:
    X, y = load_diabetes(return_X_y=True)
    joblib.dump(make_pipeline(StandardScaler(), Ridge(alpha=1.0)).fit(X, y), _dir("diabetes") / "model.joblib")


def wine_frame_data() -> tuple[pd.DataFrame, np.ndarray]:
    """Four wine measurements plus a text column, as a client would send named fields."""
    data = load_wine(as_frame=True)
    frame = data.frame[["alcohol", "malic_acid", "color_intensity", "proline"]].copy()
    hue = data.frame["hue"]
    frame["hue_band"] = np.where(hue < 0.8, "low", np.where(hue < 1.1, "medium", "high"))
    return frame, np.asarray(data.target)


def wine_frame() -> None:
    frame, y = wine_frame_data()
    pre = ColumnTransformer(
        [
            ("num", StandardScaler(), ["alcohol", "malic_acid", "color_intensity", "proline"]),
            ("cat", OneHotEncoder(handle_unknown="ignore"), ["hue_band"]),
        ]
    )
    est = make_pipeline(pre, LogisticRegression(max_iter=2000)).fit(frame, y)
    joblib.dump(est, _dir("wine_frame") / "model.joblib")


def _write(name: str, body: dict[str, Any]) -> None:
    REQUESTS.mkdir(exist_ok=True)
    (REQUESTS / name).write_text(json.dumps(body, indent=1) + "\n")


def requests() -> None:
    """V2 infer and V1 instances bodies holding real rows (one of each class)."""
    for name, loader in (("breast_cancer", load_breast_cancer), ("wine", load_wine)):
        X, y = loader(return_X_y=True)
        picks = [int(np.flatnonzero(y == c)[0]) for c in np.unique(y)]
        rows = np.round(X[picks], 6).tolist()
        _write(
            f"{name}_v2.json",
            {
                "id": f"{name}-demo",
                "inputs": [
                    {
                        "name": "input",
                        "shape": [len(rows), len(rows[0])],
                        "datatype": "FP64",
                        "data": [v for row in rows for v in row],
                    }
                ],
            },
        )
        _write(f"{name}_v1.json", {"instances": rows})
    frame, y = wine_frame_data()
    picks = [int(np.flatnonzero(y == c)[0]) for c in np.unique(y)]
    rows = frame.iloc[picks]
    inputs = []
    for column in frame.columns:
        text = rows[column].dtype == object
        inputs.append(
            {
                "name": column,
                "shape": [len(rows)],
                "datatype": "BYTES" if text else "FP64",
                "data": rows[column].tolist(),
            }
        )
    _write("wine_frame_v2.json", {"id": "wine_frame-demo", "inputs": inputs})
    _write("wine_frame_v1.json", {"instances": rows.to_dict(orient="records")})


def main() -> None:
    wine()
    breast_cancer()
    diabetes()
    wine_frame()
    requests()
    for path in sorted(MODELS.rglob("*")) + sorted(REQUESTS.glob("*")):
        if path.is_file():
            print(f"{path.relative_to(HERE)}  {path.stat().st_size:,} bytes")


if __name__ == "__main__":
    main()
