from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pandas as pd
import pytest
from skl2onnx import to_onnx
from skl2onnx.common.data_types import FloatTensorType, StringTensorType
from sklearn.compose import ColumnTransformer
from sklearn.datasets import load_breast_cancer, load_diabetes, load_digits, load_iris, load_wine
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

import modelport
from modelport.core.errors import InvalidInput, ModelLoadError
from tests.tolerance import assert_close


def _save(tmp_path: Path, est: object, X: np.ndarray, name: str = "model.onnx", **options: object) -> Path:
    proto = to_onnx(est, X[:1].astype(np.float32), options=options or None)
    path = tmp_path / name
    path.write_bytes(proto.SerializeToString())
    return path


def _ort_run(path: Path, feeds: dict[str, np.ndarray]) -> list[object]:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return list(session.run(None, feeds))


@pytest.fixture(scope="module")
def cancer() -> tuple[np.ndarray, np.ndarray, object]:
    X, y = load_breast_cancer(return_X_y=True)
    est = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(X, y)
    return X, y, est


def test_zipmap_classifier_signature_and_predictions(tmp_path: Path, cancer: tuple) -> None:
    X, _, est = cancer
    path = _save(tmp_path, est, X)
    model = modelport.load_model(path)
    assert model.flavor == "onnx"
    assert model.signature.to_dict() == {
        "inputs": [{"name": "X", "datatype": "FP32", "shape": [-1, 30]}],
        "outputs": [
            {"name": "output_label", "datatype": "INT64", "shape": [-1]},
            {"name": "output_probability", "datatype": "FP64", "shape": [-1, 2], "parameters": {"labels": [0, 1]}},
        ],
    }
    assert model.info["zipmap"] == "removed at load"
    rows = X[:40]
    out = model.predict({"X": rows.tolist()})
    label, dicts = _ort_run(path, {"X": rows.astype(np.float32)})
    assert_close(out["output_label"], label)
    assert out["output_probability"].dtype == np.float64
    assert_close(out["output_probability"], [[d[0], d[1]] for d in dicts], single=True)  # type: ignore[union-attr]
    assert_close(out["output_label"], est.predict(rows))
    assert_close(out["output_probability"], est.predict_proba(rows), single=True)


def test_zipmap_without_onnx_package_gives_the_same_answer(
    tmp_path: Path, cancer: tuple, monkeypatch: pytest.MonkeyPatch
) -> None:
    X, _, est = cancer
    path = _save(tmp_path, est, X)
    cut = modelport.load_model(path).predict({"X": X[:10]})
    monkeypatch.setitem(sys.modules, "onnx", None)  # `import onnx` now raises ImportError
    model = modelport.load_model(path)
    assert model.info["zipmap"] == "converted per request"
    assert model.signature.output("output_probability").labels == (0, 1)
    out = model.predict({"X": X[:10]})
    assert_close(out["output_label"], cut["output_label"])
    assert_close(out["output_probability"], cut["output_probability"], single=True)


def test_zipmap_false_and_string_labels(tmp_path: Path) -> None:
    X, y = load_iris(return_X_y=True)
    names = np.array(["setosa", "versicolor", "virginica"])[y]
    est = LogisticRegression(max_iter=1000).fit(X, names)
    plain = modelport.load_model(_save(tmp_path, est, X, "plain.onnx", zipmap=False))
    assert [(o.name, o.datatype, o.shape) for o in plain.signature.outputs] == [
        ("label", "BYTES", (-1,)),
        ("probabilities", "FP32", (-1, 3)),
    ]
    assert plain.info["zipmap"] == "none"
    zipped = modelport.load_model(_save(tmp_path, est, X, "zipped.onnx"))
    assert zipped.signature.output("output_probability").labels == ("setosa", "versicolor", "virginica")
    a, b = plain.predict({"X": X[::10]}), zipped.predict({"X": X[::10]})
    assert a["label"].tolist() == b["output_label"].tolist() == est.predict(X[::10]).tolist()
    assert_close(a["probabilities"], b["output_probability"], single=True)


def test_multiclass_forest_on_digits(tmp_path: Path) -> None:
    X, y = load_digits(return_X_y=True)
    est = RandomForestClassifier(n_estimators=8, max_depth=6, random_state=0).fit(X, y)
    model = modelport.load_model(_save(tmp_path, est, X))
    spec = model.signature.output("output_probability")
    assert spec.shape == (-1, 10) and spec.labels == tuple(range(10))
    out = model.predict({"X": X[:50]})
    assert_close(out["output_label"], est.predict(X[:50].astype(np.float32)))
    assert_close(out["output_probability"], est.predict_proba(X[:50].astype(np.float32)), single=True)


def test_regressor_and_input_cast(tmp_path: Path) -> None:
    X, y = load_diabetes(return_X_y=True)
    est = LinearRegression().fit(X, y)
    model = modelport.load_model(_save(tmp_path, est, X))
    assert [(o.name, o.datatype, o.shape) for o in model.signature.outputs] == [("variable", "FP32", (-1, 1))]
    # The predictor casts what it is given to the graph's dtype (float64 -> float32).
    out = model.predictor.predict({"X": X[:5]})
    assert_close(out["variable"][:, 0], est.predict(X[:5]), single=True)


def test_several_inputs_with_a_text_column(tmp_path: Path) -> None:
    data = load_wine(as_frame=True)
    frame = data.frame[["alcohol", "malic_acid"]].astype(np.float32)
    frame["region"] = np.where(data.target == 0, "north", np.where(data.target == 1, "south", "east"))
    pre = ColumnTransformer(
        [("num", StandardScaler(), ["alcohol", "malic_acid"]), ("cat", OneHotEncoder(), ["region"])]
    )
    est = make_pipeline(pre, LogisticRegression(max_iter=1000)).fit(frame, data.target)
    types = [
        ("alcohol", FloatTensorType([None, 1])),
        ("malic_acid", FloatTensorType([None, 1])),
        ("region", StringTensorType([None, 1])),
    ]
    (tmp_path / "m.onnx").write_bytes(to_onnx(est, initial_types=types).SerializeToString())
    model = modelport.load_model(tmp_path / "m.onnx")
    assert [(s.name, s.datatype, s.shape) for s in model.signature.inputs] == [
        ("alcohol", "FP32", (-1, 1)),
        ("malic_acid", "FP32", (-1, 1)),
        ("region", "BYTES", (-1, 1)),
    ]
    rows = frame.iloc[::30]
    out = model.predict({c: rows[c].tolist() for c in frame.columns})
    assert_close(out["output_label"], est.predict(rows))
    assert_close(out["output_probability"], est.predict_proba(pd.DataFrame(rows)), single=True)
    with pytest.raises(InvalidInput, match="input 'alcohol' must be FP32 numbers, got str value 'x'"):
        model.predict({"alcohol": ["x"], "malic_acid": [1.0], "region": ["north"]})


def test_corrupt_onnx_names_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "broken.onnx"
    bad.write_bytes(b"\x08\x07this is not a protobuf graph" * 3)
    with pytest.raises(ModelLoadError, match=r"broken\.onnx: not a (readable|loadable) ONNX model"):
        modelport.load_model(bad)


def test_empty_onnx_file(tmp_path: Path) -> None:
    (tmp_path / "empty.onnx").write_bytes(b"")
    with pytest.raises(ModelLoadError, match=r"empty\.onnx: not a (readable|loadable) ONNX model"):
        modelport.load_model(tmp_path / "empty.onnx")


def test_thread_setting(tmp_path: Path, cancer: tuple, monkeypatch: pytest.MonkeyPatch) -> None:
    X, _, est = cancer
    path = _save(tmp_path, est, X)
    assert modelport.load_model(path).info["intra_op_threads"] == 1
    monkeypatch.setenv("MODELPORT_ONNX_THREADS", "2")
    assert modelport.load_model(path).info["intra_op_threads"] == 2
    monkeypatch.setenv("MODELPORT_ONNX_THREADS", "many")
    with pytest.raises(ModelLoadError, match=r"model\.onnx: MODELPORT_ONNX_THREADS='many' is not a whole number"):
        modelport.load_model(path)


def test_unsupported_output_type_is_refused(tmp_path: Path) -> None:
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 2])
    seq = helper.make_tensor_sequence_value_info("seq", TensorProto.FLOAT, None)
    graph = helper.make_graph([helper.make_node("SequenceConstruct", ["x"], ["seq"])], "g", [x], [seq])
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    proto.ir_version = 8
    (tmp_path / "seq.onnx").write_bytes(proto.SerializeToString())
    with pytest.raises(
        ModelLoadError, match=r"output 'seq' has ONNX type seq\(tensor\(float\)\), which modelport does not serve"
    ):
        modelport.load_model(tmp_path / "seq.onnx")


def test_external_weights_are_found_beside_the_model(tmp_path: Path) -> None:
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    weights = np.arange(12, dtype=np.float32).reshape(4, 3)
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 3])
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"])], "g", [x], [y], [numpy_helper.from_array(weights, "w")]
    )
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    proto.ir_version = 8
    onnx.save_model(proto, tmp_path / "net.onnx", save_as_external_data=True, location="net.weights", size_threshold=0)
    assert (tmp_path / "net.weights").is_file()
    model = modelport.load_model(tmp_path / "net.onnx")
    assert [(s.name, s.datatype, s.shape) for s in model.signature.inputs] == [("x", "FP32", (-1, 4))]
    rows = np.ones((2, 4))
    assert_close(model.predict({"x": rows})["y"], rows @ weights, single=True)
