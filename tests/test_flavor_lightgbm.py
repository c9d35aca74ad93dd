from __future__ import annotations

from pathlib import Path

import joblib
import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer, load_diabetes, load_digits, load_iris, load_wine

import modelport
from modelport.core.errors import ModelLoadError
from tests.tolerance import assert_close


def test_binary_classifier(tmp_path: Path) -> None:
    X, y = load_breast_cancer(return_X_y=True)
    clf = lgb.LGBMClassifier(n_estimators=20, num_leaves=7, verbose=-1).fit(X, y)
    clf.booster_.save_model(tmp_path / "model.txt")
    model = modelport.load_model(tmp_path)
    assert model.flavor == "lightgbm"
    assert model.signature.to_dict() == {
        "inputs": [{"name": "input", "datatype": "FP64", "shape": [-1, 30]}],
        "outputs": [
            {"name": "predict", "datatype": "INT64", "shape": [-1]},
            {"name": "predict_proba", "datatype": "FP64", "shape": [-1, 2], "parameters": {"labels": [0, 1]}},
        ],
    }
    assert model.info["objective"].startswith("binary")
    assert isinstance(model.predictor.booster, lgb.Booster)  # type: ignore[attr-defined]
    out = model.predict({"input": X[:50].tolist()})
    assert_close(out["predict"], clf.predict(X[:50]))
    assert_close(out["predict_proba"], clf.predict_proba(X[:50]))


@pytest.mark.parametrize("loader", [load_iris, load_wine, load_digits])
def test_multiclass(tmp_path: Path, loader: object) -> None:
    X, y = loader(return_X_y=True)  # type: ignore[operator]
    clf = lgb.LGBMClassifier(n_estimators=10, num_leaves=7, verbose=-1).fit(X, y)
    clf.booster_.save_model(tmp_path / "model.txt")
    model = modelport.load_model(tmp_path / "model.txt")
    n = len(np.unique(y))
    assert model.signature.output("predict_proba").shape == (-1, n)
    assert model.signature.output("predict_proba").labels == tuple(range(n))
    out = model.predict({"input": X[:40]})
    assert_close(out["predict"], clf.predict(X[:40]))
    assert_close(out["predict_proba"], clf.predict_proba(X[:40]))


def test_regression_with_feature_names(tmp_path: Path) -> None:
    data = load_diabetes(as_frame=True)
    frame = data.frame.drop(columns="target")
    booster = lgb.train({"objective": "regression", "verbose": -1}, lgb.Dataset(frame, data.target), 15)
    booster.save_model(tmp_path / "model.txt")
    model = modelport.load_model(tmp_path / "model.txt")
    assert model.signature.input_names == list(frame.columns)
    assert [(o.name, o.datatype, o.shape) for o in model.signature.outputs] == [("predict", "FP64", (-1,))]
    rows = frame.iloc[:25]
    out = model.predict({c: rows[c].tolist() for c in frame.columns})
    assert_close(out["predict"], booster.predict(rows))


def test_pandas_categorical_model_is_refused(tmp_path: Path) -> None:
    data = load_wine(as_frame=True)
    frame = data.frame[["alcohol", "hue"]].copy()
    frame["band"] = pd.Categorical(np.where(data.frame["hue"] < 0.9, "low", "high"))
    booster = lgb.train({"objective": "binary", "verbose": -1}, lgb.Dataset(frame, data.target > 0), 3)
    booster.save_model(tmp_path / "model.txt")
    with pytest.raises(ModelLoadError, match=r"model\.txt: the model was trained on pandas categorical columns"):
        modelport.load_model(tmp_path / "model.txt")


def test_sklearn_wrappers_go_through_the_sklearn_flavor(tmp_path: Path) -> None:
    X, y = load_wine(return_X_y=True)
    clf = lgb.LGBMClassifier(n_estimators=5, verbose=-1).fit(X, y)
    joblib.dump(clf, tmp_path / "clf.joblib")
    model = modelport.load_model(tmp_path / "clf.joblib")
    assert model.flavor == "sklearn"
    assert model.signature.input("input").shape == (-1, 13)
    out = model.predict({"input": X[::20]})
    assert_close(out["predict"], clf.predict(X[::20]))
    assert_close(out["predict_proba"], clf.predict_proba(X[::20]))

    Xd, yd = load_diabetes(return_X_y=True)
    reg = lgb.LGBMRegressor(n_estimators=5, verbose=-1).fit(Xd, yd)
    joblib.dump(reg, tmp_path / "reg.joblib")
    out = modelport.load_model(tmp_path / "reg.joblib").predict({"input": Xd[:4]})
    assert_close(out["predict"], reg.predict(Xd[:4]))


def test_corrupt_model_file(tmp_path: Path) -> None:
    bad = tmp_path / "model.txt"
    bad.write_text("tree\nversion=v4\nnum_class=1\nthis is not a model\n")
    with pytest.raises(ModelLoadError, match=r"model\.txt: not a readable LightGBM model .*Booster\.save_model"):
        modelport.load_model(bad)
