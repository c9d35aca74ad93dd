from __future__ import annotations

from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pytest
import xgboost as xgb
from sklearn.datasets import load_breast_cancer, load_diabetes, load_iris, load_wine

import modelport
from modelport.core.errors import ModelLoadError
from tests.tolerance import assert_close


def test_binary_classifier_booster_json(tmp_path: Path) -> None:
    X, y = load_breast_cancer(return_X_y=True)
    clf = xgb.XGBClassifier(n_estimators=20, max_depth=3).fit(X, y)
    clf.get_booster().save_model(tmp_path / "model.json")
    model = modelport.load_model(tmp_path)
    assert model.flavor == "xgboost"
    assert model.signature.to_dict() == {
        "inputs": [{"name": "input", "datatype": "FP64", "shape": [-1, 30]}],
        "outputs": [
            {"name": "predict", "datatype": "INT64", "shape": [-1]},
            {"name": "predict_proba", "datatype": "FP64", "shape": [-1, 2], "parameters": {"labels": [0, 1]}},
        ],
    }
    assert model.info["objective"] == "binary:logistic"
    assert isinstance(model.predictor.booster, xgb.Booster)  # type: ignore[attr-defined]
    out = model.predict({"input": X[:60].tolist()})
    assert_close(out["predict"], clf.predict(X[:60]))
    assert_close(out["predict_proba"], clf.predict_proba(X[:60]), single=True)


def test_multiclass_softprob_ubj(tmp_path: Path) -> None:
    X, y = load_wine(return_X_y=True)
    clf = xgb.XGBClassifier(n_estimators=10, max_depth=2).fit(X, y)
    clf.get_booster().save_model(tmp_path / "wine.ubj")
    model = modelport.load_model(tmp_path / "wine.ubj")
    assert model.signature.output("predict_proba").shape == (-1, 3)
    assert model.signature.output("predict_proba").labels == (0, 1, 2)
    out = model.predict({"input": X})
    assert_close(out["predict"], clf.predict(X))
    assert_close(out["predict_proba"], clf.predict_proba(X), single=True)


def test_multiclass_softmax_gives_probabilities_too(tmp_path: Path) -> None:
    X, y = load_iris(return_X_y=True)
    booster = xgb.train({"objective": "multi:softmax", "num_class": 3}, xgb.DMatrix(X, label=y), 8)
    booster.save_model(tmp_path / "iris.json")
    model = modelport.load_model(tmp_path / "iris.json")
    out = model.predict({"input": X})
    assert_close(out["predict"], booster.predict(xgb.DMatrix(X)).astype(np.int64))
    soft = xgb.train({"objective": "multi:softprob", "num_class": 3}, xgb.DMatrix(X, label=y), 8)
    assert_close(out["predict_proba"], soft.predict(xgb.DMatrix(X)), single=True)


@pytest.mark.parametrize("objective", ["binary:logitraw", "binary:hinge"])
def test_other_binary_objectives(tmp_path: Path, objective: str) -> None:
    X, y = load_breast_cancer(return_X_y=True)
    booster = xgb.train({"objective": objective, "max_depth": 2}, xgb.DMatrix(X, label=y), 10)
    booster.save_model(tmp_path / "b.json")
    model = modelport.load_model(tmp_path / "b.json")
    out = model.predict({"input": X})
    raw = booster.predict(xgb.DMatrix(X))
    if objective == "binary:hinge":
        assert model.signature.output_names == ["predict"]
        assert_close(out["predict"], raw.astype(np.int64))
    else:
        p = 1 / (1 + np.exp(-raw.astype(np.float64)))
        assert_close(out["predict"], (raw > 0).astype(np.int64))
        assert_close(out["predict_proba"][:, 1], p, single=True)


def test_regressor(tmp_path: Path) -> None:
    X, y = load_diabetes(return_X_y=True)
    reg = xgb.XGBRegressor(n_estimators=15, max_depth=3).fit(X, y)
    reg.get_booster().save_model(tmp_path / "model.json")
    model = modelport.load_model(tmp_path / "model.json")
    assert [(o.name, o.datatype, o.shape) for o in model.signature.outputs] == [("predict", "FP64", (-1,))]
    assert_close(model.predict({"input": X[:30]})["predict"], reg.predict(X[:30]), single=True)


def test_feature_names_become_inputs(tmp_path: Path) -> None:
    data = load_diabetes(as_frame=True)
    frame = data.frame.drop(columns="target")
    booster = xgb.train({"objective": "reg:squarederror"}, xgb.DMatrix(frame, label=data.target), 10)
    booster.save_model(tmp_path / "model.json")
    model = modelport.load_model(tmp_path / "model.json")
    assert model.signature.input_names == list(frame.columns)
    assert {s.datatype for s in model.signature.inputs} == {"FP64"}
    rows = frame.iloc[:12]
    out = model.predict({c: rows[c].tolist() for c in frame.columns})
    assert_close(out["predict"], booster.predict(xgb.DMatrix(rows)), single=True)


def test_categorical_booster_is_refused(tmp_path: Path) -> None:
    data = load_wine(as_frame=True)
    frame = data.frame[["alcohol"]].copy()
    frame["band"] = pd.Categorical(np.where(data.frame["hue"] < 0.9, "low", "high"))
    dtrain = xgb.DMatrix(frame, label=data.target > 0, enable_categorical=True)
    xgb.train({"objective": "binary:logistic", "tree_method": "hist"}, dtrain, 3).save_model(tmp_path / "c.json")
    with pytest.raises(ModelLoadError, match=r"c\.json: the booster has categorical features \(band\)"):
        modelport.load_model(tmp_path / "c.json")


def test_sklearn_wrappers_go_through_the_sklearn_flavor(tmp_path: Path) -> None:
    X, y = load_iris(return_X_y=True)
    clf = xgb.XGBClassifier(n_estimators=5).fit(X, y)
    joblib.dump(clf, tmp_path / "clf.joblib")
    model = modelport.load_model(tmp_path / "clf.joblib")
    assert model.flavor == "sklearn"
    assert model.signature.input("input").shape == (-1, 4)
    out = model.predict({"input": X[::15]})
    assert_close(out["predict"], clf.predict(X[::15]))
    assert_close(out["predict_proba"], clf.predict_proba(X[::15]), single=True)

    Xd, yd = load_diabetes(return_X_y=True)
    reg = xgb.XGBRegressor(n_estimators=5).fit(Xd, yd)
    joblib.dump(reg, tmp_path / "reg.joblib")
    out = modelport.load_model(tmp_path / "reg.joblib").predict({"input": Xd[:4]})
    assert_close(out["predict"], reg.predict(Xd[:4]), single=True)


def test_corrupt_booster_files(tmp_path: Path) -> None:
    bad = tmp_path / "broken.json"
    bad.write_text('{"learner": {"gradient_booster": ')
    with pytest.raises(ModelLoadError, match=r"broken\.json: not a readable XGBoost model .*expected a Booster"):
        modelport.load_model(bad)
    ubj = tmp_path / "broken.ubj"
    ubj.write_bytes(b"\x00\x01not ubjson")
    with pytest.raises(ModelLoadError, match=r"broken\.ubj: not a readable XGBoost model"):
        modelport.load_model(ubj)
