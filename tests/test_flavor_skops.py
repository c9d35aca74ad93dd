"""skops files: MLflow 3's default for scikit-learn, and plain .skops artifacts; trusted types exactly as declared."""

from __future__ import annotations

import operator
import subprocess
import sys
from pathlib import Path

import mlflow.sklearn
import numpy as np
import pytest
import skops.io as sio
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler

import modelport
from modelport.core.errors import ModelLoadError
from tests.surfaces import check_every_surface
from tests.tolerance import assert_close

# MLflow warns about its own type hints while it saves; that is not what these tests check.
pytestmark = pytest.mark.filterwarnings("ignore:.*type hint:UserWarning")

X, Y = load_breast_cancer(return_X_y=True)
ROWS = X[::40]


def _save(estimator: Pipeline, path: Path, **options: object) -> None:
    """MLflow 3's sklearn defaults; requirements given so MLflow does not spend a minute inferring them."""
    mlflow.sklearn.save_model(estimator, path, pip_requirements=["scikit-learn"], **options)  # type: ignore[arg-type]


def _plain() -> Pipeline:
    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)).fit(X, Y)


def _capped() -> Pipeline:
    """Caps outliers with numpy.clip, a type skops does not trust by default."""
    clip = FunctionTransformer(np.clip, kw_args={"a_min": 0.0, "a_max": 1000.0})
    return make_pipeline(clip, StandardScaler(), LogisticRegression(max_iter=500)).fit(X, Y)


@pytest.mark.slow
def test_mlflow3_default_sklearn_model_on_every_surface(tmp_path: Path) -> None:
    estimator = _plain()
    root = tmp_path / "repo"
    _save(estimator, root / "cancer")  # MLflow 3's default format: model.skops
    assert (root / "cancer" / "model.skops").is_file()
    assert "serialization_format: skops" in (root / "cancer" / "MLmodel").read_text()
    model = modelport.load_model(root / "cancer")
    assert model.flavor == "mlflow" and model.info["mlflow"]["flavor"] == "sklearn"
    want = {"predict": estimator.predict(ROWS), "predict_proba": estimator.predict_proba(ROWS)}
    check_every_surface(root, "cancer", {"input": ROWS}, want, tmp_path)


def test_mlflow_skops_model_loads_without_mlflow(tmp_path: Path) -> None:
    _save(_plain(), tmp_path / "cancer")
    code = (
        "import sys, modelport\n"
        f"m = modelport.load_model({str(tmp_path / 'cancer')!r})\n"
        "print(m.predict({'input': [[0.0] * 30]})['predict'][0], 'mlflow' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out[1] == "False"


def test_mlflow_records_the_trusted_types_and_modelport_honours_exactly_them(tmp_path: Path) -> None:
    estimator = _capped()
    _save(estimator, tmp_path / "capped", skops_trusted_types=["numpy.clip"])
    assert "- numpy.clip" in (tmp_path / "capped" / "MLmodel").read_text()
    model = modelport.load_model(tmp_path / "capped")
    got = model.predict({"input": ROWS})
    assert_close(got["predict_proba"], estimator.predict_proba(ROWS), what="skops model with a trusted type")

    # The file swapped after logging for one that needs another type: refused, the type named.
    swapped = make_pipeline(FunctionTransformer(operator.neg), StandardScaler(), LogisticRegression(max_iter=500))
    swapped.fit(X, Y)
    sio.dump(swapped, tmp_path / "capped" / "model.skops")
    with pytest.raises(
        ModelLoadError,
        match=r"model\.skops: the skops file needs types that are not trusted: _operator\.neg; the MLmodel's "
        r"skops_trusted_types lists numpy\.clip; if you trust them, log the model again with "
        r"mlflow\.sklearn\.log_model\(\.\.\., skops_trusted_types=\[\"numpy\.clip\", \"_operator\.neg\"\]\)",
    ):
        modelport.load_model(tmp_path / "capped")


def test_plain_skops_file_with_trusted_types_from_modelport_toml(tmp_path: Path) -> None:
    estimator = _capped()
    sio.dump(estimator, tmp_path / "model.skops")
    with pytest.raises(
        ModelLoadError,
        match=r"model\.skops: the skops file needs types that are not trusted: numpy\.clip; if you trust them, "
        r"list them in modelport\.toml beside it: \[skops\] trusted = \[\"numpy\.clip\"\]",
    ):
        modelport.load_model(tmp_path)
    (tmp_path / "modelport.toml").write_text('[skops]\ntrusted = ["numpy.clip"]\n')
    model = modelport.load_model(tmp_path)
    assert (model.flavor, model.name) == ("skops", tmp_path.name)
    assert model.signature.input("input").shape == (-1, 30)
    got = model.predict({"input": ROWS})
    assert_close(got["predict"], estimator.predict(ROWS), what="plain skops predict")
    assert_close(got["predict_proba"], estimator.predict_proba(ROWS), what="plain skops predict_proba")
    # The file on its own, with its directory's modelport.toml.
    assert modelport.load_model(tmp_path / "model.skops").flavor == "skops"


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ('[skops]\ntrusted = "numpy.clip"\n', r"\[skops\] trusted: trusted types must be a list of fully qualified"),
        ('[skops]\ntrust = ["numpy.clip"]\n', r"\[skops\] takes only 'trusted', a list of type names"),
    ],
)
def test_bad_skops_settings(tmp_path: Path, toml: str, message: str) -> None:
    sio.dump(_plain(), tmp_path / "model.skops")
    (tmp_path / "modelport.toml").write_text(toml)
    with pytest.raises(ModelLoadError, match=message):
        modelport.load_model(tmp_path)


def test_corrupt_skops_file(tmp_path: Path) -> None:
    (tmp_path / "model.skops").write_bytes(b"not a zip archive")
    with pytest.raises(
        ModelLoadError, match=r"model\.skops: not a readable skops file \(BadZipFile: File is not a zip"
    ):
        modelport.load_model(tmp_path / "model.skops")
