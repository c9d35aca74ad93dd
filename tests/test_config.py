"""modelport.toml beside an artifact: flavor, name, outputs, signature, batching."""

from __future__ import annotations

from pathlib import Path

import joblib
import pytest
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import modelport
from modelport.core.errors import ConfigError, InvalidInput, ModelportError
from tests.tolerance import assert_close

X, Y = load_iris(return_X_y=True)


def _iris(tmp_path: Path, toml: str) -> Path:
    d = tmp_path / "iris"
    d.mkdir()
    joblib.dump(make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)).fit(X, Y), d / "clf.joblib")
    (d / "modelport.toml").write_text(toml)
    return d


def test_name_outputs_and_batching(tmp_path: Path) -> None:
    d = _iris(tmp_path, 'name = "flowers"\noutputs = ["predict_proba"]\n[batching]\nmax_batch_size = 16\n')
    model = modelport.load_model(d)
    assert model.name == "flowers"
    assert model.signature.output_names == ["predict_proba"]
    assert set(model.predict({"input": X[:2]})) == {"predict_proba"}
    assert model.batching is not None and model.batching.max_batch_size == 16


def test_signature_override_renames_and_retypes(tmp_path: Path) -> None:
    d = _iris(
        tmp_path,
        "[signature]\n"
        'inputs = [{name = "measurements", datatype = "FP32", shape = [-1, 4]}]\n'
        'outputs = [{name = "species", datatype = "INT64", shape = [-1]},'
        ' {name = "scores", datatype = "FP64", shape = [-1, 3], labels = ["setosa", "versicolor", "virginica"]}]\n',
    )
    model = modelport.load_model(d)
    assert model.signature.input_names == ["measurements"] and model.signature.inputs[0].datatype == "FP32"
    assert model.signature.output("scores").labels == ("setosa", "versicolor", "virginica")
    out = model.predict({"measurements": X[:3]})
    assert out["species"].tolist() == [0, 0, 0] and out["scores"].shape == (3, 3)


def test_flavor_override_is_used(tmp_path: Path) -> None:
    d = _iris(tmp_path, 'flavor = "onnx"\n')
    with pytest.raises(ModelportError, match="onnx"):
        modelport.load_model(d)


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ("colour = 'red'\n", "unknown key(s) colour; allowed: batching, compile, entrypoint, flavor"),
        ("outputs = 'predict'\n", "'outputs' must be a list of output names"),
        ("[batching]\nmax_rows = 3\n", "[batching] unknown key(s) max_rows; allowed: max_batch_size, max_latency_ms"),
        ("[signature]\ninputs = [{name = 'x', datatype = 'FLOAT'}]\n", "datatype 'FLOAT' is not one of"),
        (
            "[signature]\ninputs = [{name = 'a'}, {name = 'b'}]\n",
            "signature.inputs lists 2 tensors but the model has 1",
        ),
        ("this is = not toml [\n", "not valid TOML"),
    ],
)
def test_bad_config_names_the_file_and_the_problem(tmp_path: Path, toml: str, message: str) -> None:
    d = _iris(tmp_path, toml)
    with pytest.raises(ConfigError) as info:
        modelport.load_model(d)
    assert "modelport.toml" in str(info.value) and message in str(info.value)


def test_unknown_output_selected(tmp_path: Path) -> None:
    d = _iris(tmp_path, 'outputs = ["decision"]\n')
    with pytest.raises(
        ModelportError, match="outputs \\['decision'\\] are not produced; it has: predict, predict_proba"
    ):
        modelport.load_model(d)


def test_predict_checks_inputs(tmp_path: Path) -> None:
    model = modelport.load_model(_iris(tmp_path, ""))
    with pytest.raises(InvalidInput, match="model 'iris': unknown input 'x'; the model's inputs are: input"):
        model.predict({"x": X[:1]})
    with pytest.raises(InvalidInput, match="model 'iris': missing input 'input'"):
        model.predict({})
    assert_close(model.predict({"input": X[:1]})["predict"], [0])
