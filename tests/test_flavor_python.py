"""Custom Python models (modelport.custom.Model): every surface, client errors as 4xx, load errors."""

from __future__ import annotations

import asyncio
import importlib.util
import textwrap
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import modelport
from modelport.core.errors import InvalidInput, ModelFailed, ModelLoadError
from modelport.serving.repository import Repository
from tests.server.conftest import make_client
from tests.surfaces import check_every_surface

# A model that needs a few lines of its own Python: units converted before the pipeline,
# a thresholded label after it, and a client error for a unit it does not know.
MODEL_PY = """
import numpy as np
import joblib
from modelport.custom import Model, TensorSpec
from modelport.core.errors import InvalidInput

SCALE = {"mm": 1.0, "cm": 10.0}


class Tumour(Model):
    inputs = [TensorSpec("features", "FP64", (-1, 30)), TensorSpec("unit", "BYTES", (-1,))]
    outputs = [TensorSpec("malignant", "FP64", (-1,)), TensorSpec("label", "BYTES", (-1,))]

    def load(self):
        self.pipeline = joblib.load(self.path / "pipeline.joblib")
        self.threshold = float(self.settings.get("threshold", 0.5))

    def preprocess(self, batch):
        unknown = sorted(set(batch["unit"]) - set(SCALE))
        if unknown:
            raise InvalidInput(f"unit must be one of cm, mm; got {', '.join(map(repr, unknown))}")
        x = batch["features"].copy()
        x[:, :4] *= np.array([SCALE[u] for u in batch["unit"]])[:, None]  # the four size columns
        return {"x": x}

    def predict(self, batch):
        return {"malignant": self.pipeline.predict_proba(batch["x"])[:, 0]}

    def postprocess(self, batch):
        p = batch["malignant"]
        return {"malignant": p, "label": np.where(p >= self.threshold, "malignant", "benign").astype(object)}
"""

TOML = 'flavor = "python"\nentrypoint = "model.py:Tumour"\n[python]\nthreshold = {threshold}\n'

X, Y = load_breast_cancer(return_X_y=True)


def _write(directory: Path, threshold: float = 0.3, source: str = MODEL_PY) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    pipeline = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)).fit(X, Y)
    joblib.dump(pipeline, directory / "pipeline.joblib")
    (directory / "model.py").write_text(source)
    (directory / "modelport.toml").write_text(TOML.format(threshold=threshold))
    return directory


def _own_answer(directory: Path, batch: dict[str, np.ndarray], threshold: float) -> dict[str, np.ndarray]:
    """The class run by hand, in this process: what every surface must give back."""
    spec = importlib.util.spec_from_file_location("tumour_by_hand", directory / "model.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    model = module.Tumour()
    model.path, model.settings = directory, {"threshold": threshold}
    model.load()
    out: dict[str, np.ndarray] = model.postprocess(model.predict(model.preprocess(dict(batch))))
    return out


def _batch(rows: slice) -> dict[str, np.ndarray]:
    x = X[rows].copy()
    units = np.array(["mm", "cm"] * (len(x) // 2 + 1), dtype=object)[: len(x)]
    x[units == "cm", :4] /= 10.0
    return {"features": x, "unit": units}


@pytest.mark.slow
def test_every_surface_matches_the_class_run_by_hand(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    directory = _write(root / "tumour" / "1")
    batch = _batch(slice(0, 240, 20))
    want = _own_answer(directory, batch, 0.3)
    assert set(want["label"]) == {"malignant", "benign"}  # the threshold matters on these rows
    check_every_surface(root, "tumour", batch, want, tmp_path)


def test_signature_info_and_inspect(tmp_path: Path) -> None:
    model = modelport.load_model(_write(tmp_path / "tumour"))
    assert (model.name, model.flavor) == ("tumour", "python")
    assert model.signature.to_dict() == {
        "inputs": [
            {"name": "features", "datatype": "FP64", "shape": [-1, 30]},
            {"name": "unit", "datatype": "BYTES", "shape": [-1]},
        ],
        "outputs": [
            {"name": "malignant", "datatype": "FP64", "shape": [-1]},
            {"name": "label", "datatype": "BYTES", "shape": [-1]},
        ],
    }
    assert model.info["entrypoint"] == "model.py:Tumour"
    assert model.info["runtime"] == {"malignant": "python", "label": "python"}
    assert model.predictor.fork_safe is True  # type: ignore[attr-defined]


async def test_client_error_from_the_class_is_a_400_and_its_own_failure_a_500(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    _write(root / "tumour")
    bad_unit = {"features": X[:2].tolist(), "unit": ["mm", "inch"]}
    with pytest.raises(InvalidInput, match=r"unit must be one of cm, mm; got 'inch'"):
        modelport.load_model(root / "tumour").predict(bad_unit)
    repository = Repository(str(root)).load()
    body = {
        "inputs": [
            {"name": "features", "shape": [2, 30], "datatype": "FP64", "data": X[:2].reshape(-1).tolist()},
            {"name": "unit", "shape": [2], "datatype": "BYTES", "data": ["mm", "inch"]},
        ]
    }
    async with make_client(repository) as client:
        r = await client.post("/v2/models/tumour/infer", json=body)
        assert r.status_code == 400
        assert r.json() == {"error": "unit must be one of cm, mm; got 'inch'"}
        # Wrong width is caught by the declared signature before the class sees it.
        body["inputs"][0]["shape"] = [2, 15]  # type: ignore[index]
        body["inputs"][0]["data"] = X[:2, :15].reshape(-1).tolist()  # type: ignore[index]
        r = await client.post("/v2/models/tumour/infer", json=body)
        assert r.status_code == 400
        assert (
            r.json()["error"] == "model 'tumour': input 'features' has shape [2, 15], expected [-1, 30] (-1 = any size)"
        )

    broken = MODEL_PY.replace('return {"x": x}', 'return {"x": x[:, :5]}')  # the pipeline wants 30 columns
    _write(root / "tumour", source=broken)
    repository = Repository(str(root)).load()
    async with make_client(repository) as client:
        r = await client.post("/v2/models/tumour/infer", json={"inputs": _v2(X[:2], ["mm", "mm"])})
        assert r.status_code == 500
        # The class's own bug (it sends 5 columns to a 30-column pipeline) is a 500, even though scikit-learn
        # raised it from its input checks: inside user code that is not the client's fault. The body names
        # the model and a request id; the exception goes to the log.
        assert r.json()["error"].startswith("model 'tumour' version 1 failed while predicting (request id ")


def _v2(x: np.ndarray, units: list[str]) -> list[dict[str, Any]]:
    return [
        {"name": "features", "shape": list(x.shape), "datatype": "FP64", "data": x.reshape(-1).tolist()},
        {"name": "unit", "shape": [len(units)], "datatype": "BYTES", "data": units},
    ]


async def test_versions_and_batching(tmp_path: Path) -> None:
    """Two versions, each with its own model.py and threshold, behind the batcher: no shared module."""
    root = tmp_path / "repo"
    _write(root / "tumour" / "1", threshold=0.01)
    _write(root / "tumour" / "2", threshold=0.99)
    (root / "tumour" / "modelport.toml").write_text("[batching]\nmax_batch_size = 16\nmax_latency_ms = 20\n")
    repository = Repository(str(root)).load()
    batch = _batch(slice(0, 160, 20))
    want1 = _own_answer(root / "tumour" / "1", batch, 0.01)
    want2 = _own_answer(root / "tumour" / "2", batch, 0.99)
    assert list(want1["label"]) != list(want2["label"])
    async with make_client(repository) as client:

        async def ask(version: str, row: int) -> Any:
            body = {"inputs": _v2(batch["features"][row : row + 1], [batch["unit"][row]])}
            r = await client.post(f"/v2/models/tumour/versions/{version}/infer", json=body)
            assert r.status_code == 200, r.text
            return {o["name"]: o["data"][0] for o in r.json()["outputs"]}

        answers = await asyncio.gather(*(ask(v, i) for v in ("1", "2") for i in range(8)))
    got1, got2 = answers[:8], answers[8:]
    assert [a["label"] for a in got1] == list(want1["label"])
    assert [a["label"] for a in got2] == list(want2["label"])


def test_signature_from_modelport_toml(tmp_path: Path) -> None:
    source = MODEL_PY.replace("    inputs = [", "    _inputs = [").replace("    outputs = [", "    _outputs = [")
    directory = _write(tmp_path / "tumour", source=source)
    with pytest.raises(
        ModelLoadError, match=r"model\.py:Tumour: declares no inputs and outputs; set them on the class"
    ):
        modelport.load_model(directory)
    (directory / "modelport.toml").write_text(
        TOML.format(threshold=0.5).replace(
            "[python]",
            "[signature]\n"
            'inputs = [{name = "features", datatype = "FP64", shape = [-1, 30]}, {name = "unit", datatype = "BYTES"}]\n'
            'outputs = [{name = "malignant", datatype = "FP64"}, {name = "label", datatype = "BYTES"}]\n[python]',
        )
    )
    model = modelport.load_model(directory)
    assert model.signature.input_names == ["features", "unit"]
    batch = _batch(slice(0, 4))
    got = model.predict(batch)
    assert list(got["label"]) == list(_own_answer(directory, batch, 0.5)["label"])


@pytest.mark.parametrize(
    ("toml", "source", "message"),
    [
        ('flavor = "python"\n', MODEL_PY, r'needs entrypoint = "FILE\.py:Class" .*got None'),
        ('entrypoint = "model.py"\n', MODEL_PY, r'needs entrypoint = "FILE\.py:Class" .*got \'model\.py\''),
        (
            'entrypoint = "nope.py:Tumour"\n',
            MODEL_PY,
            r"entrypoint file nope\.py not found in .* \(Python files: model\.py\)",
        ),
        (
            'entrypoint = "model.py:Tumor"\n',
            MODEL_PY,
            r"class Tumor not found; modelport\.custom\.Model subclasses in the file: Tumour",
        ),
        (
            'entrypoint = "model.py:SCALE"\n',
            MODEL_PY,
            r"class SCALE is a dict, not a modelport\.custom\.Model subclass",
        ),
        (
            'entrypoint = "model.py:Tumour"\n',
            "import not_a_module_anywhere\n" + MODEL_PY,
            r"model\.py: importing it failed: ModuleNotFoundError: No module named 'not_a_module_anywhere' "
            r"\(at model\.py:1\)",
        ),
        (
            'entrypoint = "model.py:Tumour"\n',
            MODEL_PY.replace('"pipeline.joblib"', '"missing.joblib"'),
            r"model\.py:Tumour: load\(\) failed: FileNotFoundError: .*missing\.joblib",
        ),
        (
            'entrypoint = "model.py:Tumour"\n',
            MODEL_PY.replace('TensorSpec("unit", "BYTES", (-1,))', 'TensorSpec("unit", "TEXT", (-1,))'),
            r"importing it failed: ValueError: tensor 'unit': datatype 'TEXT' is not one of BOOL",
        ),
    ],
)
def test_load_errors(tmp_path: Path, toml: str, source: str, message: str) -> None:
    directory = _write(tmp_path / "tumour", source=source)
    (directory / "modelport.toml").write_text(toml)
    with pytest.raises(ModelLoadError, match=message):
        modelport.load_model(directory)


@pytest.mark.parametrize(
    ("change", "replacement", "message"),
    [
        ('"label": np.where', '"labels": np.where', r"returned no 'label'; it returned: malignant, labels"),
        ('return {"malignant": p,', 'return {"malignant", "label"}  #', r"returned a set; expected a mapping"),
        (
            '"malignant": p,',
            '"malignant": p[:1],',
            r"output 'malignant' has shape \[1\]; declared \[-1\] with one row per input row \(3\)",
        ),
        (
            'np.where(p >= self.threshold, "malignant", "benign").astype(object)',
            "p * 2",
            r"output 'label' is declared BYTES but holds float64 values",
        ),
        ('"malignant": p,', '"malignant": p.astype(complex),', r"output 'malignant' holds complex128 values"),
    ],
)
def test_a_class_that_breaks_its_own_contract_is_a_500(
    tmp_path: Path, change: str, replacement: str, message: str
) -> None:
    source = MODEL_PY.replace(change, replacement, 1)
    assert source != MODEL_PY
    model = modelport.load_model(_write(tmp_path / "tumour", source=source))
    with pytest.raises(ModelFailed, match=message):
        model.predict(_batch(slice(0, 3)))


def test_class_may_declare_itself_not_fork_safe(tmp_path: Path) -> None:
    source = MODEL_PY.replace("    def load(self):", "    fork_safe = False\n\n    def load(self):")
    model = modelport.load_model(_write(tmp_path / "tumour", source=textwrap.dedent(source)))
    assert model.predictor.fork_safe is False  # type: ignore[attr-defined]


def test_fork_safe_is_found_through_wrappers(tmp_path: Path) -> None:
    """The process model asks modelport.runtimes.flavors.fork_safe; a [signature] override wraps the predictor."""
    from modelport.core.model import fork_safe

    source = MODEL_PY.replace("    def load(self):", "    fork_safe = False\n\n    def load(self):")
    directory = _write(tmp_path / "tumour", source=source)
    assert fork_safe(modelport.load_model(directory).predictor) is False
    (directory / "modelport.toml").write_text(
        TOML.format(threshold=0.5) + "[signature]\n"
        'outputs = [{name = "p_malignant", datatype = "FP64"}, {name = "label", datatype = "BYTES"}]\n'
    )
    model = modelport.load_model(directory)
    assert model.signature.output_names == ["p_malignant", "label"]
    assert type(model.predictor).__name__ == "_Renamed" and fork_safe(model.predictor) is False
    assert fork_safe(modelport.load_model(_write(tmp_path / "plain")).predictor) is True


def test_the_process_model_will_not_fork_a_model_that_declares_itself_unsafe(tmp_path: Path) -> None:
    """``fork_unsafe`` asks every loaded model's flavor, not only which modules were imported."""
    from modelport.process.run import fork_unsafe
    from modelport.serving.repository import Repository

    safe_root, unsafe_root = tmp_path / "safe", tmp_path / "unsafe"
    _write(safe_root / "churn")
    source = MODEL_PY.replace("    def load(self):", "    fork_safe = False\n\n    def load(self):")
    _write(unsafe_root / "churn", source=source)
    safe = Repository(str(safe_root)).load()
    unsafe = Repository(str(unsafe_root)).load()
    try:
        reason = fork_unsafe(unsafe)
        assert reason is not None and "models whose flavor cannot be forked after loading: churn v1" in reason
        # The safe one may still not fork (scikit-learn was imported), but never because of its flavor.
        assert "cannot be forked after loading" not in (fork_unsafe(safe) or "")
    finally:
        safe.close()
        unsafe.close()
