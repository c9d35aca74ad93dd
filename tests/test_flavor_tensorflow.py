"""TensorFlow SavedModels and Keras 3 files: TF Serving's request and answer formats, every surface, signatures.

Every expected answer comes from TensorFlow itself, in this process: the SavedModel's own signature
function (or ``keras.Model.predict``) on the same inputs, laid out as TF Serving's REST API documents it.
"""

from __future__ import annotations

import base64
import os
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from click.testing import CliRunner
from sklearn.datasets import load_breast_cancer

import modelport
from modelport.cli import main
from modelport.core.errors import ModelLoadError
from modelport.core.model import fork_safe
from modelport.serving.repository import Repository
from tests.conftest import free_port
from tests.server.conftest import make_client
from tests.serving import run_server
from tests.surfaces import check_every_surface
from tests.tolerance import assert_close

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
# Imported, not importorskip'd: tensorflow-cpu is in the dev extra, and a missing one must fail `make test`.
import keras
import tensorflow as tf

LABEL = "predicted_will_buy_on_return_visit"
PROBS = "will_buy_on_return_visit_probs"
VALUES = "will_buy_on_return_visit_values"
# Rows in the shape of the tutorial's: (bounces, time_on_site).
VISITS = [(0, 7363), (1, 0), (0, 12), (0, 1200)]


class _BigQueryML(tf.Module):  # type: ignore[misc]
    """A logistic regression laid out as BigQuery ML exports one: label, class probabilities, class values.

    A second signature, ``annotate``, takes and returns strings (``note_bytes`` is binary by TF Serving's
    ``_bytes`` naming rule) so signature selection and ``{"b64": ...}`` values are exercised.
    """

    def __init__(self) -> None:
        super().__init__()
        self.weights = tf.Variable([-1.7, 0.0011], dtype=tf.float64)
        self.bias = tf.Variable(-0.9, dtype=tf.float64)

    @tf.function(  # type: ignore[misc]
        input_signature=[
            tf.TensorSpec([None], tf.int64, name="bounces"),
            tf.TensorSpec([None], tf.int64, name="time_on_site"),
        ]
    )
    def serve(self, bounces: Any, time_on_site: Any) -> dict[str, Any]:
        x = tf.stack([tf.cast(bounces, tf.float64), tf.cast(time_on_site, tf.float64)], axis=1)
        p = tf.sigmoid(tf.linalg.matvec(x, self.weights) + self.bias)
        n = tf.shape(bounces)[0]
        return {
            LABEL: tf.cast(p >= 0.5, tf.int64)[:, None],
            PROBS: tf.stack([p, 1.0 - p], axis=1),
            VALUES: tf.tile(tf.constant([[1, 0]], tf.int64), tf.stack([n, 1])),
        }

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="note")])  # type: ignore[misc]
    def annotate(self, note: Any) -> dict[str, Any]:
        return {"note_bytes": tf.strings.join([note, b"\x00!"]), "length": tf.strings.length(note)}


@pytest.fixture(scope="module")
def bqml_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``repo/bqml/1/saved_model.pb`` + ``variables/``: TF Serving's versioned layout."""
    root = tmp_path_factory.mktemp("tf") / "repo"
    module = _BigQueryML()
    signatures = {"serving_default": module.serve, "annotate": module.annotate}
    tf.saved_model.save(module, str(root / "bqml" / "1"), signatures=signatures)
    return root


def _tf_call(directory: Path, signature: str, **inputs: Any) -> dict[str, np.ndarray]:
    """TensorFlow's own answer: the SavedModel's signature function called in this process."""
    fn = tf.saved_model.load(str(directory)).signatures[signature]
    return {k: v.numpy() for k, v in fn(**{k: tf.constant(v) for k, v in inputs.items()}).items()}


def _tf_serving_value(name: str, arr: np.ndarray) -> Any:
    """One output as TF Serving's REST API writes it: strings as text, ``*_bytes`` outputs as {"b64": ...}."""
    if arr.dtype.kind == "O":
        flat = [
            {"b64": base64.b64encode(v).decode()} if name.endswith("_bytes") else v.decode() for v in arr.reshape(-1)
        ]
        return np.array(flat, dtype=object).reshape(arr.shape).tolist()
    return arr.tolist()


def _tf_serving_answer(outputs: dict[str, np.ndarray], row_format: bool) -> Any:
    if row_format:
        if len(outputs) == 1:
            return {"predictions": _tf_serving_value(*next(iter(outputs.items())))}
        columns = {k: _tf_serving_value(k, v) for k, v in outputs.items()}
        rows = len(next(iter(outputs.values())))
        return {"predictions": [{k: columns[k][i] for k in outputs} for i in range(rows)]}
    if len(outputs) == 1:
        return {"outputs": _tf_serving_value(*next(iter(outputs.items())))}
    return {"outputs": {k: _tf_serving_value(k, v) for k, v in outputs.items()}}


def _same_json(got: Any, want: Any, where: str = "body") -> None:
    """JSON trees equal in structure; floats within the project's tolerance (they went through text)."""
    if isinstance(want, dict):
        assert isinstance(got, dict) and set(got) == set(want), f"{where}: keys {got!r} instead of {sorted(want)}"
        for k in want:
            _same_json(got[k], want[k], f"{where}.{k}")
    elif isinstance(want, list):
        assert isinstance(got, list) and len(got) == len(want), f"{where}: {got!r} instead of {want!r}"
        for i, (g, w) in enumerate(zip(got, want, strict=True)):
            _same_json(g, w, f"{where}[{i}]")
    elif isinstance(want, float):
        assert_close(got, want, what=where)
    else:
        assert got == want and type(got) is type(want), f"{where}: {got!r} instead of {want!r}"


async def test_tf_serving_requests_get_tf_serving_answers(bqml_repo: Path) -> None:
    version = bqml_repo / "bqml" / "1"
    bounces = np.array([b for b, _ in VISITS], dtype=np.int64)
    seconds = np.array([t for _, t in VISITS], dtype=np.int64)
    want = _tf_call(version, "serving_default", bounces=bounces, time_on_site=seconds)
    assert set(want[LABEL][:, 0]) == {0, 1}  # both classes among these rows
    notes = [b"\xff\xfe raw", "caf\u00e9".encode()]
    annotated = _tf_call(version, "annotate", note=np.array(notes, dtype=object))
    repository = Repository(str(bqml_repo)).load()
    async with make_client(repository) as client:
        url = "/v1/models/bqml:predict"
        rows = {"instances": [{"bounces": b, "time_on_site": t} for b, t in VISITS]}
        r = await client.post(url, json=rows)
        assert r.status_code == 200, r.text
        _same_json(r.json(), _tf_serving_answer(want, row_format=True))
        columns = {
            "signature_name": "serving_default",
            "inputs": {"bounces": bounces.tolist(), "time_on_site": seconds.tolist()},
        }
        r = await client.post("/v1/models/bqml/versions/1:predict", json=columns)
        assert r.status_code == 200, r.text
        _same_json(r.json(), _tf_serving_answer(want, row_format=False))

        # Another signature, binary strings in and out.
        b64 = [{"b64": base64.b64encode(n).decode()} for n in notes]
        r = await client.post(url, json={"signature_name": "annotate", "instances": [{"note": v} for v in b64]})
        assert r.status_code == 200, r.text
        _same_json(r.json(), _tf_serving_answer(annotated, row_format=True))
        r = await client.post(url, json={"signature_name": "annotate", "inputs": b64})
        assert r.status_code == 200, r.text
        _same_json(r.json(), _tf_serving_answer(annotated, row_format=False))

        # V2, with the signature as a request parameter; BYTES out of V2 binary tensors keep every byte.
        v2 = {
            "inputs": [
                {"name": "bounces", "datatype": "INT64", "shape": [len(VISITS)], "data": bounces.tolist()},
                {"name": "time_on_site", "datatype": "INT64", "shape": [len(VISITS)], "data": seconds.tolist()},
            ]
        }
        r = await client.post("/v2/models/bqml/infer", json=v2)
        assert r.status_code == 200, r.text
        got = {o["name"]: (o["datatype"], o["shape"], o["data"]) for o in r.json()["outputs"]}
        assert got[LABEL][:2] == ("INT64", [4, 1]) and got[PROBS][:2] == ("FP64", [4, 2])
        for name, value in want.items():
            assert_close(np.array(got[name][2]).reshape(value.shape), value, what=f"V2 {name}")
        v2_note = {
            "parameters": {"signature_name": "annotate"},
            "inputs": [{"name": "note", "datatype": "BYTES", "shape": [2], "data": ["plain", "caf\u00e9"]}],
        }
        r = await client.post("/v2/models/bqml/infer", json=v2_note)
        assert r.status_code == 200, r.text
        by_name = {o["name"]: o for o in r.json()["outputs"]}
        assert by_name["note_bytes"]["data"] == ["plain\x00!", "caf\u00e9\x00!"]
        assert by_name["length"]["datatype"] == "INT32" and by_name["length"]["data"] == [5, 5]  # bytes, not chars

        # TF Serving's metadata call lists every signature with TF dtypes and -1 for any size.
        r = await client.get("/v1/models/bqml/metadata")
        defs = r.json()["metadata"]["signature_def"]["signature_def"]
        assert sorted(defs) == ["annotate", "serving_default"]
        assert defs["annotate"]["inputs"]["note"]["dtype"] == "DT_STRING"
        assert defs["serving_default"]["outputs"][PROBS]["dtype"] == "DT_DOUBLE"
        assert [d["size"] for d in defs["serving_default"]["outputs"][PROBS]["tensor_shape"]["dim"]] == ["-1", "2"]

        # Client mistakes: 400s that say what exists.
        r = await client.post(url, json={"signature_name": "classify", **rows})
        assert r.status_code == 400
        assert r.json() == {
            "error": "model 'bqml' has no signature 'classify'; its signatures are: annotate, serving_default"
        }
        r = await client.post("/v2/models/bqml/infer", json={**v2, "parameters": {"signature_name": 7}})
        assert r.status_code == 400
        assert r.json() == {"error": "model 'bqml': signature_name must be a string, got 7"}
        r = await client.post(url, json={"signature_name": "annotate", "instances": [{"note": {"b64": "%%"}}]})
        assert r.status_code == 400
        assert "input 'note' has a 'b64' value that is not valid base64" in r.json()["error"]
        r = await client.post(url, json={"instances": [{"bounces": "many", "time_on_site": 3}]})
        assert r.status_code == 400 and "bounces" in r.json()["error"], r.text


def test_signature_from_modelport_toml_and_load_errors(bqml_repo: Path, tmp_path: Path) -> None:
    version = bqml_repo / "bqml" / "1"
    config = version / "modelport.toml"
    try:
        config.write_text('[tensorflow]\nsignature_name = "annotate"\n')
        model = modelport.load_model(version)
        assert model.signature.input_names == ["note"]
        assert model.signature.to_dict()["outputs"] == [
            {"name": "length", "datatype": "INT32", "shape": [-1]},
            {"name": "note_bytes", "datatype": "BYTES", "shape": [-1]},
        ]
        assert model.for_signature("serving_default").signature.input_names == ["bounces", "time_on_site"]
        config.write_text('[tensorflow]\nsignature_name = "classify"\n')
        with pytest.raises(
            ModelLoadError,
            match=r"signature 'classify' cannot be served; servable signatures: "
            r"annotate, serving_default",
        ):
            modelport.load_model(version)
        config.write_text('[tensorflow]\nsignature = "annotate"\n')
        with pytest.raises(ModelLoadError, match=r'\[tensorflow\] takes signature_name = "NAME" only'):
            modelport.load_model(version)
    finally:
        config.unlink()
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "saved_model.pb").write_bytes(b"not a protobuf")
    with pytest.raises(ModelLoadError, match=r"broken: not a loadable SavedModel"):
        modelport.load_model(broken)
    (tmp_path / "bad.keras").write_bytes(b"PK not a zip")
    with pytest.raises(ModelLoadError, match=r"bad\.keras: not a loadable Keras model"):
        modelport.load_model(tmp_path / "bad.keras")


def test_inspect_shows_what_saved_model_cli_shows(bqml_repo: Path) -> None:
    from tensorflow.core.framework import types_pb2
    from tensorflow.python.tools import saved_model_utils

    version = bqml_repo / "bqml" / "1"
    # saved_model_cli show --all reads the MetaGraphDef tagged "serve"; so does this.
    meta = saved_model_utils.get_meta_graph_def(str(version), "serve")
    expected = []
    for name in sorted(k for k in meta.signature_def if k != "__saved_model_init_op"):
        sig = meta.signature_def[name]
        expected.append(f"signature_def['{name}']:")
        for kind, tensors in (("inputs", sig.inputs), ("outputs", sig.outputs)):
            for key in sorted(tensors):
                info = tensors[key]
                dims = ", ".join(str(d.size) for d in info.tensor_shape.dim)
                expected.append(f"  {kind}['{key}'] dtype: {types_pb2.DataType.Name(info.dtype)} shape: ({dims})")
    result = CliRunner().invoke(main, ["inspect", str(version)])
    assert result.exit_code == 0, result.output
    shown = result.output.split("signature_def:\n", 1)[1].splitlines()[: len(expected)]
    assert [line.strip() for line in shown] == [line.strip() for line in expected]
    assert "flavor:  tensorflow" in result.output
    assert "inputs:\n  bounces: INT64[-1]\n  time_on_site: INT64[-1]\noutputs:\n" in result.output


# ---- Keras 3 ----

X, Y = load_breast_cancer(return_X_y=True)
X32 = X.astype(np.float32)


@pytest.fixture(scope="module")
def keras_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small network trained on breast_cancer, saved as ``repo/cancer/1/model.keras``."""
    keras.utils.set_random_seed(0)
    features = keras.Input(shape=(30,), name="features")
    norm = keras.layers.Normalization()
    norm.adapt(X32)
    hidden = keras.layers.Dense(8, activation="relu")(norm(features))
    proba = keras.layers.Dense(2, activation="softmax", name="proba")(hidden)
    score = keras.layers.Dense(1, name="score")(hidden)
    model = keras.Model(features, {"proba": proba, "score": score})
    model.compile(optimizer="adam", loss={"proba": "sparse_categorical_crossentropy", "score": "mse"})
    model.fit(X32, {"proba": Y, "score": Y.astype(np.float32)}, epochs=3, batch_size=64, verbose=0)
    root = tmp_path_factory.mktemp("keras") / "repo"
    (root / "cancer" / "1").mkdir(parents=True)
    model.save(root / "cancer" / "1" / "model.keras")
    return root


def _keras_answer(path: Path, x: np.ndarray) -> dict[str, np.ndarray]:
    model = keras.saving.load_model(path)
    out: dict[str, np.ndarray] = model.predict(x, verbose=0)
    return out


def test_keras_signature(keras_repo: Path) -> None:
    model = modelport.load_model(keras_repo / "cancer" / "1" / "model.keras")
    assert (model.flavor, model.info["format"]) == ("tensorflow", "keras")
    assert model.signature.to_dict() == {
        "inputs": [{"name": "features", "datatype": "FP32", "shape": [-1, 30]}],
        "outputs": [
            {"name": "proba", "datatype": "FP32", "shape": [-1, 2]},
            {"name": "score", "datatype": "FP32", "shape": [-1, 1]},
        ],
    }
    assert fork_safe(model.predictor) is False  # TensorFlow's thread pools do not survive fork


@pytest.mark.slow
def test_keras_every_surface_matches_model_predict(keras_repo: Path, tmp_path: Path) -> None:
    x = X32[::40]
    want = _keras_answer(keras_repo / "cancer" / "1" / "model.keras", x)
    check_every_surface(keras_repo, "cancer", {"features": x}, want, tmp_path)


@pytest.mark.slow
def test_savedmodel_every_surface_matches_tf(bqml_repo: Path, tmp_path: Path) -> None:
    bounces = np.array([b for b, _ in VISITS], dtype=np.int64)
    seconds = np.array([t for _, t in VISITS], dtype=np.int64)
    want = _tf_call(bqml_repo / "bqml" / "1", "serving_default", bounces=bounces, time_on_site=seconds)
    check_every_surface(bqml_repo, "bqml", {"bounces": bounces, "time_on_site": seconds}, want, tmp_path)


@pytest.mark.slow
def test_two_workers_serve_keras_from_fresh_interpreters(keras_repo: Path, tmp_path: Path) -> None:
    x = X32[:5]
    want = _keras_answer(keras_repo / "cancer" / "1" / "model.keras", x)
    with run_server(keras_repo, "--workers", "2", log_dir=tmp_path) as server:
        log = server.log()
        assert "workers start as fresh interpreters" in log and "tensorflow" in log, log
        assert "forking" not in log, log  # TensorFlow's thread pools would not survive a fork
        for _ in range(8):
            with httpx.Client() as fresh:  # a new connection each time: the kernel spreads them over workers
                r = fresh.post(f"{server.url}/v1/models/cancer:predict", json={"instances": x.tolist()}, timeout=30)
            assert r.status_code == 200, r.text
            predictions = r.json()["predictions"]
            assert_close(np.array([p["proba"] for p in predictions]), want["proba"], what="proba")
            assert_close(np.array([p["score"] for p in predictions]), want["score"], what="score")


@pytest.mark.slow
def test_grpc_signature_parameter(bqml_repo: Path, tmp_path: Path) -> None:
    import tritonclient.grpc as grpcclient
    from tritonclient.utils import InferenceServerException

    notes = np.array([b"\xff\xfe raw", b"plain"], dtype=object)
    want = _tf_call(bqml_repo / "bqml" / "1", "annotate", note=notes)
    port = free_port()
    with run_server(bqml_repo, "--grpc-port", str(port), log_dir=tmp_path):
        client = grpcclient.InferenceServerClient(url=f"127.0.0.1:{port}")
        try:
            tensor = grpcclient.InferInput("note", [2], "BYTES")
            tensor.set_data_from_numpy(notes)
            result = client.infer("bqml", [tensor], parameters={"signature_name": "annotate"})
            assert list(result.as_numpy("note_bytes")) == list(want["note_bytes"])  # bytes: equal or not
            assert list(result.as_numpy("length")) == list(want["length"])
            with pytest.raises(InferenceServerException, match="model 'bqml' has no signature 'classify'"):
                client.infer("bqml", [tensor], parameters={"signature_name": "classify"})
        finally:
            client.close()


def test_keras_sequential_model_is_named_as_keras_names_it(tmp_path: Path) -> None:
    """A Sequential model has no output_names: its output is called after its last layer."""
    keras.utils.set_random_seed(1)
    seq = keras.Sequential([keras.Input(shape=(4,)), keras.layers.Dense(3, name="logits")])
    seq.save(tmp_path / "seq.keras")
    reloaded = keras.saving.load_model(tmp_path / "seq.keras")
    model = modelport.load_model(tmp_path / "seq.keras")
    assert model.signature.input_names == [t.name for t in reloaded.inputs]
    assert model.signature.output_names == ["logits"]
    x = X32[:3, :4]
    got = model.predict({model.signature.input_names[0]: x})["logits"]
    assert_close(got, reloaded.predict(x, verbose=0), what="Sequential logits")


def test_detection_and_the_server_modules_do_not_import_tensorflow(bqml_repo: Path, keras_repo: Path) -> None:
    """Only loading a TensorFlow model imports TensorFlow: detecting one, or a server without one, does not."""
    import subprocess
    import sys

    saved, keras_dir = str(bqml_repo / "bqml" / "1"), str(keras_repo / "cancer" / "1")
    code = (
        "import sys\nfrom pathlib import Path\nimport modelport.protocols.rest.app, modelport.serving.repository\n"
        "from modelport.runtimes.flavors import detect\n"
        f"print(detect(Path({saved!r}))[0], detect(Path({keras_dir!r}))[0])\n"
        "print(sorted(m for m in ('tensorflow', 'keras', 'tf_keras') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.splitlines() == ["tensorflow tensorflow", "[]"]
