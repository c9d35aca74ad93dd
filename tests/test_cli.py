from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import joblib
from click.testing import CliRunner
from sklearn.datasets import load_wine
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from modelport.cli import main


def _wine(tmp_path: Path) -> Path:
    X, y = load_wine(return_X_y=True)
    path = tmp_path / "wine" / "model.joblib"
    path.parent.mkdir()
    joblib.dump(make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(X, y), path)
    return path


def test_help_lists_commands_and_examples() -> None:
    out = CliRunner().invoke(main, ["--help"]).output
    for word in ("serve", "predict", "inspect", "Examples:"):
        assert word in out
    serve_help = CliRunner().invoke(main, ["serve", "--help"]).output
    for flag in ("--workers", "--auth-token", "--max-body", "--cors-origin", "--ssl-certfile", "--batching"):
        assert flag in serve_help


def test_inspect_text_and_json(tmp_path: Path) -> None:
    path = _wine(tmp_path)
    result = CliRunner().invoke(main, ["inspect", str(path.parent)])
    assert result.exit_code == 0, result.output
    assert "flavor:  sklearn" in result.output
    assert "input: FP64[-1, 13]" in result.output
    assert "predict_proba: FP64[-1, 3]" in result.output and "labels=[0, 1, 2]" in result.output
    assert "model.joblib" in result.output
    info = json.loads(CliRunner().invoke(main, ["inspect", str(path), "--json"]).output)
    assert info["signature"]["inputs"][0] == {"name": "input", "datatype": "FP64", "shape": [-1, 13]}
    assert info["files"][0]["bytes"] > 0


def test_predict_accepts_v1_v2_and_plain(tmp_path: Path) -> None:
    path = _wine(tmp_path)
    row = load_wine(return_X_y=True)[0][0].tolist()
    bodies = [
        {"instances": [row]},
        {"inputs": [{"name": "input", "shape": [1, 13], "datatype": "FP64", "data": row}]},
        {"input": [row]},
    ]
    answers = []
    for body in bodies:
        result = CliRunner().invoke(main, ["predict", str(path), "--input", json.dumps(body), "--output", "predict"])
        assert result.exit_code == 0, result.output
        answers.append(json.loads(result.output))
    assert answers[0] == answers[1] == answers[2] == {"predict": [0]}
    (tmp_path / "req.json").write_text(json.dumps(bodies[0]))
    result = CliRunner().invoke(main, ["predict", str(path), "--input", f"@{tmp_path / 'req.json'}"])
    assert set(json.loads(result.output)) == {"predict", "predict_proba"}


def test_cli_errors_are_one_line_and_exit_1(tmp_path: Path) -> None:
    path = _wine(tmp_path)
    result = CliRunner().invoke(main, ["predict", str(path), "--input", '{"instances": [[1, 2]]}'])
    assert result.exit_code == 1
    assert "error: model 'wine': input 'input' has shape [1, 2], expected [-1, 13]" in result.output
    result = CliRunner().invoke(main, ["predict", str(path), "--input", "{oops"])
    assert result.exit_code == 1 and "error: --input is not JSON" in result.output
    result = CliRunner().invoke(main, ["inspect", str(tmp_path / "missing.onnx")])
    assert result.exit_code == 1 and "no such file or directory" in result.output
    result = CliRunner().invoke(main, ["serve", str(path), "--max-body", "lots"])
    assert result.exit_code == 2 and "'lots' is not a size" in result.output


def test_import_modelport_is_light() -> None:
    code = "import sys, modelport, modelport.custom, modelport.runtimes.loading; print(*sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    heavy = {"pyspark", "xgboost", "lightgbm", "onnxruntime", "sklearn", "pandas", "uvicorn"}
    heavy |= {"torch", "tensorflow", "keras", "mlflow", "skops"}
    assert not heavy & set(out)
