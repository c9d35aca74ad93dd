"""MLflow directories written by real MLflow (tests/fixtures/mlflow/make_fixtures.py), read without it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import modelport
from modelport.core.errors import ModelLoadError
from tests.tolerance import assert_close

FIXTURES = Path(__file__).parent / "fixtures" / "mlflow"


def _expected(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / f"{name}.expected.json").read_text())
    return data


def _copy(name: str, tmp_path: Path) -> Path:
    target = tmp_path / name
    shutil.copytree(FIXTURES / name, target)
    return target


def _check(model: modelport.Model, name: str) -> None:
    exp = _expected(name)
    out = model.predict(exp["inputs"])
    for key, want in exp["outputs"].items():
        # The fixtures include XGBoost and ONNX models, which compute in float32.
        assert_close(np.asarray(out[key], dtype=np.float64), want, what=key, single=True)


def test_sklearn_array_model_with_column_signature_stacks_columns() -> None:
    model = modelport.load_model(FIXTURES / "sklearn_columns")
    assert (model.name, model.flavor) == ("sklearn_columns", "mlflow")
    names = model.signature.input_names
    assert names[:3] == ["alcohol", "malic_acid", "ash"] and len(names) == 13
    assert {(s.datatype, s.shape) for s in model.signature.inputs} == {("FP64", (-1,))}
    assert model.signature.output_names == ["predict", "predict_proba"]
    assert model.info["mlflow"]["flavor"] == "sklearn"
    _check(model, "sklearn_columns")
    # Order comes from the signature, not from the request.
    exp = _expected("sklearn_columns")
    shuffled = dict(reversed(list(exp["inputs"].items())))
    assert_close(model.predict(shuffled)["predict"], exp["outputs"]["predict"])


def test_sklearn_with_tensor_signature() -> None:
    model = modelport.load_model(FIXTURES / "sklearn_tensor")
    assert [(s.name, s.datatype, s.shape) for s in model.signature.inputs] == [("input", "FP64", (-1, 4))]
    _check(model, "sklearn_tensor")


def test_sklearn_dataframe_model_with_string_column() -> None:
    model = modelport.load_model(FIXTURES / "sklearn_frame")
    assert {s.name: s.datatype for s in model.signature.inputs} == {
        "alcohol": "FP64",
        "malic_acid": "FP64",
        "color_intensity": "FP64",
        "hue_band": "BYTES",
    }
    _check(model, "sklearn_frame")


def test_xgboost_booster() -> None:
    model = modelport.load_model(FIXTURES / "xgboost")
    assert model.signature.input("input").shape == (-1, 30)
    assert model.info["objective"] == "binary:logistic"
    assert model.predictor.booster is not None  # type: ignore[attr-defined]
    _check(model, "xgboost")


def test_xgboost_sklearn_wrapper() -> None:
    model = modelport.load_model(FIXTURES / "xgboost_sklearn")
    assert model.info["mlflow"]["flavor"] == "xgboost"
    assert model.info["estimator"] == "xgboost.sklearn.XGBClassifier"
    _check(model, "xgboost_sklearn")


def test_lightgbm_booster_with_named_columns() -> None:
    model = modelport.load_model(FIXTURES / "lightgbm")
    assert model.signature.input_names == ["age", "sex", "bmi", "bp", "s1", "s2", "s3", "s4", "s5", "s6"]
    assert model.signature.output_names == ["predict"]
    _check(model, "lightgbm")


def test_onnx() -> None:
    model = modelport.load_model(FIXTURES / "onnx")
    assert [(s.name, s.datatype, s.shape) for s in model.signature.inputs] == [("X", "FP32", (-1, 4))]
    assert model.signature.output("output_probability").labels == (0, 1, 2)
    _check(model, "onnx")


def test_mlmodel_without_supported_flavor(tmp_path: Path) -> None:
    (tmp_path / "MLmodel").write_text("flavors:\n  h2o:\n    data: model.h2o\n")
    with pytest.raises(
        ModelLoadError,
        match=r"flavors h2o are not served by modelport; "
        r"supported MLflow flavors: sklearn, xgboost, lightgbm, onnx, spark, "
        r"python_function \(with modelport\[mlflow\]\)",
    ):
        modelport.load_model(tmp_path)


def test_unreadable_mlmodel(tmp_path: Path) -> None:
    (tmp_path / "MLmodel").write_text("flavors: [unclosed\n")
    with pytest.raises(ModelLoadError, match=r"MLmodel: not a readable MLmodel YAML file"):
        modelport.load_model(tmp_path)
    (tmp_path / "MLmodel").write_text("just text\n")
    with pytest.raises(ModelLoadError, match=r"MLmodel: has no 'flavors' mapping; not an MLflow model"):
        modelport.load_model(tmp_path)


def test_skops_format_with_a_pickle_inside_is_a_clear_error(tmp_path: Path) -> None:
    path = _copy("sklearn_tensor", tmp_path)
    mlmodel = path / "MLmodel"
    mlmodel.write_text(mlmodel.read_text().replace("serialization_format: pickle", "serialization_format: skops"))
    with pytest.raises(ModelLoadError, match=r"model\.pkl: not a readable skops file \(BadZipFile"):
        modelport.load_model(path)
    mlmodel.write_text(mlmodel.read_text().replace("serialization_format: skops", "serialization_format: dill"))
    with pytest.raises(
        ModelLoadError, match=r"serialized as 'dill'; supported serialization formats: cloudpickle, pickle, skops"
    ):
        modelport.load_model(path)


def test_missing_data_file(tmp_path: Path) -> None:
    path = _copy("xgboost", tmp_path)
    (path / "model.ubj").unlink()
    with pytest.raises(ModelLoadError, match=r"xgboost flavor points at model\.ubj, which does not exist"):
        modelport.load_model(path)


def test_corrupt_pickle(tmp_path: Path) -> None:
    path = _copy("sklearn_columns", tmp_path)
    (path / "model.pkl").write_bytes(b"garbage")
    with pytest.raises(ModelLoadError, match=r"model\.pkl: not a readable cloudpickle file"):
        modelport.load_model(path)


def test_signature_that_does_not_fit_the_model(tmp_path: Path) -> None:
    path = _copy("sklearn_tensor", tmp_path)
    mlmodel = path / "MLmodel"
    mlmodel.write_text(mlmodel.read_text().replace('"shape": [-1, 4]', '"shape": [-1, 7]'))
    with pytest.raises(ModelLoadError, match=r"signature's inputs \(input FP64\[-1, 7\]\) do not fit"):
        modelport.load_model(path)


def test_unsupported_column_type(tmp_path: Path) -> None:
    path = _copy("sklearn_frame", tmp_path)
    mlmodel = path / "MLmodel"
    mlmodel.write_text(mlmodel.read_text().replace('"type": "string"', '"type": "datetime"'))
    with pytest.raises(ModelLoadError, match=r"column 'hue_band' has MLflow type 'datetime'.*supported column types"):
        modelport.load_model(path)


def test_model_without_signature_uses_the_native_one(tmp_path: Path) -> None:
    path = _copy("sklearn_columns", tmp_path)
    mlmodel = path / "MLmodel"
    text = mlmodel.read_text()
    mlmodel.write_text(text[: text.index("signature:")])
    model = modelport.load_model(path)
    assert [(s.name, s.shape) for s in model.signature.inputs] == [("input", (-1, 13))]


@pytest.mark.slow
def test_spark_flavor_runs_without_a_jvm(tmp_path: Path, spark: Any) -> None:
    """An MLflow ``spark`` model directory is served by the JVM-free Spark ML runtime."""
    from pyspark.ml import Pipeline
    from pyspark.ml.classification import LogisticRegression
    from pyspark.ml.feature import VectorAssembler
    from sklearn.datasets import load_iris

    data = load_iris(as_frame=True).frame
    data.columns = ["sl", "sw", "pl", "pw", "label"]
    records = [tuple(float(v) for v in row) for row in data.itertuples(index=False)]
    df = spark.createDataFrame(records, schema=list(data.columns))
    pipeline = Pipeline(
        stages=[VectorAssembler(inputCols=["sl", "sw", "pl", "pw"], outputCol="features"), LogisticRegression()]
    )
    fitted = pipeline.fit(df)
    fitted.write().save(str(tmp_path / "sparkml"))
    (tmp_path / "MLmodel").write_text(
        "artifact_path: model\nflavors:\n  spark:\n    model_data: sparkml\n    pyspark_version: 4.3.0\n"
        "  python_function:\n    loader_module: mlflow.spark\n    data: sparkml\n"
    )
    model = modelport.load_model(tmp_path)
    assert model.flavor == "mlflow"
    rows = data.iloc[::25]
    out = model.predict({c: rows[c].to_numpy() for c in ["sl", "sw", "pl", "pw"]})
    held = [tuple(float(v) for v in row) for row in rows.itertuples(index=False)]
    expected = fitted.transform(spark.createDataFrame(held, schema=list(data.columns)))
    expected = expected.select("prediction", "probability").collect()
    assert_close(out["prediction"], [r.prediction for r in expected])
    assert_close(out["probability"], [r.probability.toArray() for r in expected])


def test_pickle_needing_a_missing_module(tmp_path: Path) -> None:
    path = _copy("sklearn_tensor", tmp_path)
    # A pickle that refers to a module nobody installed: protocol 2, GLOBAL opcode, then STOP.
    (path / "model.pkl").write_bytes(b"\x80\x02cmodelport_no_such_module\nEstimator\nq\x00.")
    with pytest.raises(
        ModelLoadError,
        match=r"model\.pkl: the pickled sklearn model needs the Python module 'modelport_no_such_module'",
    ):
        modelport.load_model(path)


def test_code_logged_with_the_model_is_importable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import pickle
    import sys

    path = _copy("sklearn_tensor", tmp_path)
    code = path / "code"
    code.mkdir()
    (code / "mp_custom_scaler.py").write_text(
        "from sklearn.linear_model import LogisticRegression\n\nclass Custom(LogisticRegression):\n    pass\n"
    )
    monkeypatch.syspath_prepend(str(code))
    import mp_custom_scaler  # type: ignore[import-not-found]

    X = np.asarray(_expected("sklearn_tensor")["inputs"]["input"])
    est = mp_custom_scaler.Custom(max_iter=500).fit(X, [0, 1] * (len(X) // 2))
    (path / "model.pkl").write_bytes(pickle.dumps(est))
    monkeypatch.delitem(sys.modules, "mp_custom_scaler")
    sys.path.remove(str(code))
    mlmodel = path / "MLmodel"
    mlmodel.write_text(mlmodel.read_text().replace("    code: null\n", "    code: code\n"))
    model = modelport.load_model(path)
    assert model.info["estimator"] == "mp_custom_scaler.Custom"
    assert_close(model.predict({"input": X})["predict"], est.predict(X))
