"""MLflow python_function models (python_model and loader_module), run through mlflow."""

from __future__ import annotations

import sys
import textwrap
import warnings
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import modelport
from modelport.core.errors import ModelLoadError
from tests.surfaces import check_every_surface

with warnings.catch_warnings():
    warnings.simplefilter("ignore", UserWarning)  # MLflow warns about its own type hints on import
    import mlflow.pyfunc
    from mlflow.models import infer_signature

# MLflow's advice while saving (type hints, input examples) is not what these tests check.
pytestmark = [
    pytest.mark.filterwarnings("ignore:.*[Tt]ype hint:UserWarning"),
    pytest.mark.filterwarnings("ignore:.*input example was not provided:UserWarning"),
]

DATA = load_breast_cancer(as_frame=True)
COLUMNS = ["mean radius", "mean texture", "mean smoothness", "worst area", "worst concavity"]
FRAME = DATA.frame[COLUMNS]
ROWS = FRAME.iloc[::40].reset_index(drop=True)

# "Models from code" (MLflow 3): the model is this file, not a pickle.
MODEL_CODE = """
import joblib
import mlflow
import numpy as np
import pandas as pd
from mlflow.pyfunc import PythonModel


class Screening(PythonModel):
    def load_context(self, context):
        self.pipeline = joblib.load(context.artifacts["pipeline"])

    def predict(self, context, model_input, params=None):
        p = self.pipeline.predict_proba(model_input.to_numpy())[:, 0]
        return pd.DataFrame({"malignant": p, "flag": np.where(p > 0.5, "refer", "routine")})


mlflow.models.set_model(Screening())
"""

LOADER = """
import joblib


class _Wrapped:
    def __init__(self, pipeline):
        self.pipeline = pipeline

    def predict(self, data, params=None):
        return self.pipeline.predict_proba(data)[:, 1]


def _load_pyfunc(path):
    return _Wrapped(joblib.load(path))
"""


def _pipeline(tmp_path: Path) -> Path:
    pipeline = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)).fit(FRAME.to_numpy(), DATA.target)
    joblib.dump(pipeline, tmp_path / "pipeline.joblib")
    return tmp_path / "pipeline.joblib"


def _by_hand(pipeline_file: Path, rows: pd.DataFrame) -> dict[str, np.ndarray]:
    p = joblib.load(pipeline_file).predict_proba(rows.to_numpy())[:, 0]
    return {"malignant": p, "flag": np.where(p > 0.5, "refer", "routine").astype(object)}


def _save_python_model(tmp_path: Path, target: Path, with_signature: bool = True) -> Path:
    code = tmp_path / "screening.py"
    code.write_text(MODEL_CODE)
    pipeline = _pipeline(tmp_path)
    example = _by_hand(pipeline, ROWS)
    signature = infer_signature(ROWS, pd.DataFrame(example)) if with_signature else None
    mlflow.pyfunc.save_model(
        target,
        python_model=str(code),
        artifacts={"pipeline": str(pipeline)},
        signature=signature,
        pip_requirements=["scikit-learn"],  # spares MLflow a minute of inferring them
    )
    return pipeline


@pytest.mark.slow
def test_python_model_on_every_surface(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    pipeline = _save_python_model(tmp_path, root / "screening")
    model = modelport.load_model(root / "screening")
    assert model.flavor == "mlflow"
    assert model.info["mlflow"]["flavor"] == "python_function"
    assert model.info["mlflow"]["loader"] == "python_model"
    assert [(s.name, s.datatype) for s in model.signature.inputs] == [(c, "FP64") for c in COLUMNS]
    assert [(s.name, s.datatype) for s in model.signature.outputs] == [("malignant", "FP64"), ("flag", "BYTES")]
    assert model.predictor.fork_safe is False  # type: ignore[attr-defined]
    inputs = {c: ROWS[c].to_numpy() for c in COLUMNS}
    check_every_surface(root, "screening", inputs, _by_hand(pipeline, ROWS), tmp_path)


def test_loader_module_with_tensor_signature(tmp_path: Path) -> None:
    pipeline = _pipeline(tmp_path)
    (tmp_path / "screening_loader.py").write_text(textwrap.dedent(LOADER))
    x = ROWS.to_numpy()
    want = joblib.load(pipeline).predict_proba(x)[:, 1]
    mlflow.pyfunc.save_model(
        tmp_path / "model",
        loader_module="screening_loader",
        data_path=str(pipeline),
        code_paths=[str(tmp_path / "screening_loader.py")],
        signature=infer_signature(x, want),
        pip_requirements=["scikit-learn"],
    )
    sys.modules.pop("screening_loader", None)
    model = modelport.load_model(tmp_path / "model")
    assert model.info["mlflow"]["loader"] == "loader_module"
    assert [(s.name, s.datatype, s.shape) for s in model.signature.inputs] == [("input", "FP64", (-1, 5))]
    got = model.predict({"input": x})
    # Same arithmetic on the same array: the pipeline called directly and through the loader module.
    np.testing.assert_array_equal(got["predict"], want)


def test_without_a_signature_is_refused_with_the_fix(tmp_path: Path) -> None:
    _save_python_model(tmp_path, tmp_path / "model", with_signature=False)
    with pytest.raises(
        ModelLoadError, match=r"MLmodel: a python_function model needs an input signature to be served; log it with"
    ):
        modelport.load_model(tmp_path / "model")
    # ... or given in modelport.toml.
    (tmp_path / "model" / "modelport.toml").write_text(
        "[signature]\ninputs = ["
        + ", ".join(f'{{name = "{c}", datatype = "FP64"}}' for c in COLUMNS)
        + ']\noutputs = [{name = "malignant", datatype = "FP64"}, {name = "flag", datatype = "BYTES"}]\n'
    )
    model = modelport.load_model(tmp_path / "model")
    got = model.predict({c: ROWS[c].to_numpy() for c in COLUMNS})
    assert list(got["flag"]) == list(_by_hand(tmp_path / "pipeline.joblib", ROWS)["flag"])


def test_without_mlflow_the_error_names_the_extra(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _save_python_model(tmp_path, tmp_path / "model")
    monkeypatch.setitem(sys.modules, "mlflow", None)  # `import mlflow.pyfunc` now raises ImportError
    monkeypatch.setitem(sys.modules, "mlflow.pyfunc", None)
    with pytest.raises(
        ModelLoadError,
        match=r"MLmodel: the model's only loadable flavor is python_function \(python_model\), which needs mlflow; "
        r"install it with: pip install 'modelport\[mlflow\]'",
    ):
        modelport.load_model(tmp_path / "model")


def test_a_model_that_raises_is_a_500_naming_it(tmp_path: Path) -> None:
    _save_python_model(tmp_path, tmp_path / "model")
    model = modelport.load_model(tmp_path / "model")
    rows = {c: ROWS[c].to_numpy() for c in COLUMNS}
    rows["mean radius"] = np.full(len(ROWS), np.nan)  # the scaler passes NaN on; LogisticRegression refuses it
    with pytest.raises(modelport.core.errors.ModelFailed, match=r"version 1 failed: ValueError: Input X contains NaN"):
        model.predict(rows)
