"""The committed demo models load and answer the committed request bodies sensibly."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer, load_diabetes, load_wine

import modelport
from tests.tolerance import assert_close

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
MODELS = EXAMPLES / "models"


def _body(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((EXAMPLES / "requests" / name).read_text())
    return data


def _v2_batch(body: dict[str, Any]) -> dict[str, Any]:
    return {t["name"]: np.asarray(t["data"]).reshape(t["shape"]) for t in body["inputs"]}


@pytest.mark.parametrize(
    ("model_dir", "flavor"),
    [
        ("wine", "sklearn"),
        ("breast_cancer", "sklearn"),
        ("breast_cancer_onnx", "onnx"),
        ("breast_cancer_xgb", "xgboost"),
        ("breast_cancer_lgbm", "lightgbm"),
        ("diabetes", "sklearn"),
        ("wine_frame", "sklearn"),
    ],
)
def test_demo_models_load(model_dir: str, flavor: str) -> None:
    model = modelport.load_model(MODELS / model_dir)
    assert (model.name, model.version, model.flavor) == (model_dir, 1, flavor)


@pytest.mark.parametrize(
    "model_dir", ["breast_cancer", "breast_cancer_onnx", "breast_cancer_xgb", "breast_cancer_lgbm"]
)
def test_breast_cancer_models_answer_the_request_bodies(model_dir: str) -> None:
    model = modelport.load_model(MODELS / model_dir)
    v2, v1 = _body("breast_cancer_v2.json"), _body("breast_cancer_v1.json")
    batch = _v2_batch(v2)
    # The same JSON numbers parsed by two decoders: identical by construction.
    assert_close(batch["input"], v1["instances"], exact=True)
    out = model.predict(batch)
    label, proba = list(out.values())
    # The bodies hold the first malignant (0) and the first benign (1) row; every model gets them right.
    assert label.tolist() == [0, 1]
    assert proba.shape == (2, 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-6)  # a property of one output, not two paths


def test_onnx_demo_agrees_with_its_sklearn_twin() -> None:
    X, _ = load_breast_cancer(return_X_y=True)
    a = modelport.load_model(MODELS / "breast_cancer").predict({"input": X})
    b = modelport.load_model(MODELS / "breast_cancer_onnx").predict({"input": X})
    # The ONNX graph computes in float32 (its outputs are widened to FP64).
    assert_close(b["output_probability"], a["predict_proba"], single=True, what="ONNX vs scikit-learn")
    assert np.mean(b["output_label"] == a["predict"]) > 0.99


def test_wine_bodies() -> None:
    model = modelport.load_model(MODELS / "wine")
    v1 = _body("wine_v1.json")
    out = model.predict({"input": v1["instances"]})
    assert out["predict"].tolist() == [0, 1, 2]
    X, _ = load_wine(return_X_y=True)
    assert model.predict(_v2_batch(_body("wine_v2.json")))["predict"].tolist() == [0, 1, 2]
    assert model.predict({"input": X})["predict"].shape == (len(X),)


def test_wine_frame_bodies() -> None:
    model = modelport.load_model(MODELS / "wine_frame")
    rows = _body("wine_frame_v1.json")["instances"]
    columns = {name: [row[name] for row in rows] for name in model.signature.input_names}
    out = model.predict(columns)
    est = joblib.load(MODELS / "wine_frame" / "model.joblib")
    assert_close(out["predict_proba"], est.predict_proba(pd.DataFrame(rows)))
    v2 = {t["name"]: t["data"] for t in _body("wine_frame_v2.json")["inputs"]}
    assert_close(model.predict(v2)["predict_proba"], out["predict_proba"])


def test_diabetes_regressor() -> None:
    X, y = load_diabetes(return_X_y=True)
    model = modelport.load_model(MODELS / "diabetes")
    assert [(o.name, o.datatype) for o in model.signature.outputs] == [("predict", "FP64")]
    pred = model.predict({"input": X})["predict"]
    assert np.corrcoef(pred, y)[0, 1] > 0.6
