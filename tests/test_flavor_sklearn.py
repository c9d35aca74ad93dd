from __future__ import annotations

import pickle
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.datasets import load_breast_cancer, load_diabetes, load_digits, load_iris, load_wine
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

import modelport
from modelport.core.errors import InvalidInput, ModelLoadError
from tests.tolerance import assert_close


def test_wine_pipeline_joblib(tmp_path: Path) -> None:
    X, y = load_wine(return_X_y=True)
    est = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(X, y)
    joblib.dump(est, tmp_path / "model.joblib")
    model = modelport.load_model(tmp_path / "model.joblib")
    assert model.name == tmp_path.name and model.flavor == "sklearn"  # "model" is generic: the folder names it
    sig = model.signature.to_dict()
    assert sig["inputs"] == [{"name": "input", "datatype": "FP64", "shape": [-1, 13]}]
    assert [o["name"] for o in sig["outputs"]] == ["predict", "predict_proba"]
    assert sig["outputs"][1]["parameters"] == {"labels": [0, 1, 2]}
    out = model.predict({"input": X[:20]})
    assert_close(out["predict"], est.predict(X[:20]))
    assert_close(out["predict_proba"], est.predict_proba(X[:20]))


def test_pickle_and_regressor(tmp_path: Path) -> None:
    X, y = load_diabetes(return_X_y=True)
    est = LinearRegression().fit(X, y)
    with (tmp_path / "diabetes.pkl").open("wb") as fh:
        pickle.dump(est, fh)
    model = modelport.load_model(tmp_path)
    assert model.name == tmp_path.name
    assert [o.name for o in model.signature.outputs] == ["predict"]
    assert model.signature.outputs[0].datatype == "FP64"
    assert_close(model.predict({"input": X[:5]})["predict"], est.predict(X[:5]))


@pytest.mark.parametrize("loader", [load_iris, load_breast_cancer, load_digits])
def test_classifiers_on_shipped_data(tmp_path: Path, loader: object) -> None:
    X, y = loader(return_X_y=True)  # type: ignore[operator]
    est = RandomForestClassifier(n_estimators=10, random_state=0).fit(X, y)
    joblib.dump(est, tmp_path / "m.joblib")
    model = modelport.load_model(tmp_path / "m.joblib", name="clf", version=3)
    assert (model.name, model.version) == ("clf", 3)
    out = model.predict({"input": X[:7].tolist()})
    assert_close(out["predict"], est.predict(X[:7]))
    assert_close(out["predict_proba"], est.predict_proba(X[:7]))


def _penguin_like_frame() -> tuple[pd.DataFrame, np.ndarray]:
    data = load_wine(as_frame=True)
    frame = data.frame.iloc[:, :3].copy()
    frame.columns = ["alcohol", "malic_acid", "ash"]
    frame["region"] = np.where(data.target == 0, "north", np.where(data.target == 1, "south", "east"))
    return frame, np.asarray(data.target)


def test_dataframe_model_with_text_column(tmp_path: Path) -> None:
    frame, y = _penguin_like_frame()
    pre = ColumnTransformer(
        [("num", StandardScaler(), ["alcohol", "malic_acid", "ash"]), ("cat", OneHotEncoder(), ["region"])]
    )
    est = make_pipeline(pre, LogisticRegression(max_iter=1000)).fit(frame, y)
    joblib.dump(est, tmp_path / "model.joblib")
    model = modelport.load_model(tmp_path / "model.joblib")
    specs = {s.name: s.datatype for s in model.signature.inputs}
    assert specs == {"alcohol": "FP64", "malic_acid": "FP64", "ash": "FP64", "region": "BYTES"}
    rows = frame.iloc[:4]
    out = model.predict({c: rows[c].tolist() for c in frame.columns})
    assert_close(out["predict"], est.predict(rows))
    with pytest.raises(InvalidInput, match="input 'alcohol' must be FP64 numbers, got str value 'x'"):
        model.predict({**{c: rows[c].tolist() for c in frame.columns}, "alcohol": ["x"] * 4})


def test_string_class_labels(tmp_path: Path) -> None:
    X, y = load_iris(return_X_y=True)
    names = np.array(["setosa", "versicolor", "virginica"])[y]
    joblib.dump(LogisticRegression(max_iter=500).fit(X, names), tmp_path / "iris.joblib")
    model = modelport.load_model(tmp_path / "iris.joblib")
    assert model.signature.output("predict").datatype == "BYTES"
    assert model.predict({"input": X[:1]})["predict"].tolist() == ["setosa"]


def test_corrupt_artifact_names_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "broken.joblib"
    bad.write_bytes(b"this is not a pickle")
    with pytest.raises(ModelLoadError, match=r"broken\.joblib.*expected a scikit-learn estimator"):
        modelport.load_model(bad)


def test_non_estimator_pickle(tmp_path: Path) -> None:
    joblib.dump({"a": 1}, tmp_path / "d.joblib")
    with pytest.raises(ModelLoadError, match="neither predict nor transform"):
        modelport.load_model(tmp_path / "d.joblib")


def test_unknown_artifact(tmp_path: Path) -> None:
    (tmp_path / "notes.bin").write_bytes(b"\0")
    with pytest.raises(ModelLoadError, match="no model artifact found.*expected an MLflow model directory"):
        modelport.load_model(tmp_path)


class _CountingLR(LogisticRegression):
    """A real LogisticRegression that records which prediction methods ran."""

    calls: list[str] = []

    def predict(self, X):  # type: ignore[no-untyped-def]
        _CountingLR.calls.append("predict")
        return super().predict(X)

    def predict_proba(self, X):  # type: ignore[no-untyped-def]
        _CountingLR.calls.append("predict_proba")
        return super().predict_proba(X)


def test_only_the_requested_outputs_are_computed() -> None:
    from modelport.core.model import Model
    from modelport.runtimes.flavors.sklearn import predictor_for

    X, y = load_iris(return_X_y=True)
    model = Model("iris", 1, predictor_for(_CountingLR(max_iter=500).fit(X, y)), flavor="sklearn", source="memory")
    _CountingLR.calls.clear()
    out = model.predict({"input": X[:3]}, outputs=["predict_proba"])
    assert list(out) == ["predict_proba"] and out["predict_proba"].shape == (3, 3)
    assert _CountingLR.calls == ["predict_proba"]  # no separate predict call for an output nobody asked for
    _CountingLR.calls.clear()
    both = model.predict({"input": X[:3]})
    assert sorted(_CountingLR.calls) == ["predict", "predict_proba"]
    assert_close(both["predict_proba"], out["predict_proba"])
