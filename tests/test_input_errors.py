"""Values a framework refuses are the client's error (400); anything else a model raises is its failure (500)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sklearn.datasets import load_wine

import modelport
from modelport.core.errors import InvalidInput, ModelFailed, ModelRejectedInput
from modelport.core.input_errors import rejected_input
from modelport.core.model import Model
from modelport.runtimes.flavors.sklearn import predictor_for

X, Y = load_wine(return_X_y=True)


class OwnValueError:
    """A user's estimator whose own predict raises ValueError: a failure of the model, not of the input."""

    n_features_in_ = 13

    def predict(self, X: Any) -> Any:
        raise ValueError("my feature store is down")


def _with(value: float) -> np.ndarray:
    row = X[:2].copy()
    row[1, 3] = value
    return row


def test_sklearn_refusals_are_invalid_input_naming_the_model() -> None:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    fitted = make_pipeline(StandardScaler(), LogisticRegression()).fit(X, Y)
    model = Model("lr", 3, predictor_for(fitted), flavor="sklearn", source="")
    for value, said in ((np.nan, "Input X contains NaN."), (np.inf, "Input X contains infinity")):
        with pytest.raises(ModelRejectedInput) as err:
            model.predict({"input": _with(value)})
        assert err.value.status == 400 and err.value.grpc_code == "INVALID_ARGUMENT"
        assert err.value.message.startswith(f"model 'lr' version 3 rejected the input: sklearn says: {said}")
        assert "\n" not in err.value.message  # scikit-learn's advice paragraphs are left out
    # float64 arithmetic: a huge finite value is a valid input for this model
    assert model.predict({"input": _with(2.08e270)})["predict"].shape == (2,)


def test_float32_models_refuse_values_beyond_float32_before_the_model() -> None:
    from sklearn.ensemble import RandomForestClassifier

    forest = Model("rf", 1, predictor_for(RandomForestClassifier(n_estimators=3).fit(X, Y)), flavor="s", source="")
    with pytest.raises(InvalidInput) as err:
        forest.predict({"input": _with(-2.08e270)})
    assert err.value.message == (
        "model 'rf': input 'input' has value -2.08e+270, beyond the range of FP32 (±3.403e+38) that the model "
        "computes in"
    )
    assert err.value.__cause__ is None  # refused before the model ran
    # Infinity is not "too large for float32": the model's own check decides, and is quoted.
    with pytest.raises(InvalidInput, match=r"^model 'rf' version 1 rejected the input: s says: Input X contains inf"):
        forest.predict({"input": _with(np.inf)})


def test_xgboost_values_beyond_float32_are_refused(tmp_path: Path) -> None:
    import xgboost as xgb

    xgb.XGBClassifier(n_estimators=3, max_depth=2).fit(X, Y).get_booster().save_model(tmp_path / "m.json")
    model = modelport.load_model(tmp_path / "m.json", name="xg")
    with pytest.raises(InvalidInput, match=r"^model 'xg': input 'input' has value 2\.08e\+270, beyond the range"):
        model.predict({"input": _with(2.08e270)})
    # NaN is XGBoost's missing value; its in-place predict takes infinity as a value above every split.
    out = model.predict({"input": np.vstack([_with(np.nan), _with(np.inf)])})
    assert np.isfinite(out["predict_proba"]).all()


def test_xgboost_data_check_is_recognised() -> None:
    import xgboost as xgb

    booster = xgb.XGBRegressor(n_estimators=2).fit(X, Y).get_booster()
    with pytest.raises(xgb.core.XGBoostError) as err:
        booster.predict(xgb.DMatrix(_with(np.inf)))
    assert rejected_input(err.value) == (
        "Input data contains `inf` or a value too large, while `missing` is not set to `inf`"
    )


def test_lightgbm_takes_nan_and_infinity(tmp_path: Path) -> None:
    import lightgbm as lgb

    lgb.LGBMRegressor(n_estimators=3, verbose=-1).fit(X, Y).booster_.save_model(tmp_path / "m.txt")
    model = modelport.load_model(tmp_path / "m.txt", name="lg")
    out = model.predict({"input": np.vstack([_with(np.nan), _with(np.inf), _with(2.08e270)])})
    assert np.isfinite(out["predict"]).all()  # NaN is LightGBM's missing value; LightGBM computes in float64


def test_onnxruntime_invalid_argument_is_recognised() -> None:
    import onnxruntime as ort
    from skl2onnx import to_onnx
    from sklearn.linear_model import LogisticRegression

    onx = to_onnx(LogisticRegression(max_iter=50, tol=1e-2).fit(X / 1000, Y), X[:1].astype(np.float32))
    session = ort.InferenceSession(onx.SerializeToString(), providers=["CPUExecutionProvider"])
    with pytest.raises(Exception) as err:
        session.run(None, {session.get_inputs()[0].name: np.zeros((2, 5), np.float32)})
    said = rejected_input(err.value)
    assert said is not None and said.startswith("Got invalid dimensions for input")


def test_a_models_own_value_error_stays_a_failure() -> None:
    model = Model("own", 1, predictor_for(OwnValueError()), flavor="sklearn", source="")
    with pytest.raises(ModelFailed) as err:
        model.predict({"input": X[:1]})
    assert err.value.status == 500
    assert err.value.public == "model 'own' version 1 failed while predicting"  # what an HTTP client is told
    assert err.value.message == "model 'own' version 1 failed: ValueError: my feature store is down"
    assert rejected_input(RuntimeError("x")) is None
