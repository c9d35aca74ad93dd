"""gRPC V2 through NVIDIA's own client (tritonclient.grpc) against a real server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import joblib
import numpy as np
import pytest
from sklearn.datasets import load_wine

from tests.conftest import free_port
from tests.serving import RunningServer, run_server
from tests.tolerance import assert_close

pytestmark = pytest.mark.slow
grpcclient = pytest.importorskip("tritonclient.grpc")
ROWS = load_wine(return_X_y=True)[0][:3]


@pytest.fixture(scope="module")
def grpc_server(repo_dir: Path) -> Iterator[tuple[RunningServer, int]]:
    port = free_port()
    with run_server(repo_dir, "--grpc-port", str(port)) as server:
        yield server, port


def _client(port: int) -> object:
    return grpcclient.InferenceServerClient(url=f"127.0.0.1:{port}")


def test_health_and_metadata(grpc_server: tuple[RunningServer, int]) -> None:
    client = _client(grpc_server[1])
    assert client.is_server_live()
    assert client.is_server_ready() is False  # the repository holds a broken model
    assert client.is_model_ready("wine") and not client.is_model_ready("broken")
    meta = client.get_model_metadata("diabetes", as_json=True)
    assert meta["versions"] == ["1", "2"] and meta["inputs"][0]["datatype"] == "FP64"
    assert meta["inputs"][0]["shape"] == ["-1", "10"]
    server_meta = client.get_server_metadata(as_json=True)
    assert server_meta["name"] == "modelport"


def test_infer_raw_and_typed(grpc_server: tuple[RunningServer, int], repo_dir: Path) -> None:
    client = _client(grpc_server[1])
    est = joblib.load(repo_dir / "wine" / "model.joblib")
    inp = grpcclient.InferInput("input", list(ROWS.shape), "FP64")
    inp.set_data_from_numpy(ROWS)
    result = client.infer("wine", [inp], outputs=[grpcclient.InferRequestedOutput("predict_proba")])
    assert_close(result.as_numpy("predict_proba"), est.predict_proba(ROWS))
    assert result.as_numpy("predict") is None  # only the requested output
    versioned = client.infer("diabetes", [_diabetes_input()], model_version="1")
    assert versioned.get_response().model_version == "1"


def _diabetes_input() -> object:
    x = np.full((2, 10), 0.01)
    inp = grpcclient.InferInput("input", list(x.shape), "FP64")
    inp.set_data_from_numpy(x)
    return inp


def test_bytes_input(grpc_server: tuple[RunningServer, int]) -> None:
    client = _client(grpc_server[1])
    inputs = []
    for name, values, dtype in (
        ("alcohol", np.array([13.2, 12.0]), "FP64"),
        ("malic_acid", np.array([1.8, 3.0]), "FP64"),
        ("region", np.array([b"north", b"east"], dtype=object), "BYTES"),
    ):
        inp = grpcclient.InferInput(name, [2], dtype)
        inp.set_data_from_numpy(values)
        inputs.append(inp)
    result = client.infer("wine_frame", inputs)
    assert result.as_numpy("predict").shape == (2,)


def test_errors_map_to_grpc_codes(grpc_server: tuple[RunningServer, int]) -> None:
    from tritonclient.utils import InferenceServerException

    client = _client(grpc_server[1])
    inp = grpcclient.InferInput("input", [1, 12], "FP64")
    inp.set_data_from_numpy(np.zeros((1, 12)))
    with pytest.raises(InferenceServerException) as info:
        client.infer("wine", [inp])
    assert info.value.status() == "StatusCode.INVALID_ARGUMENT"
    assert "model 'wine': input 'input' has shape [1, 12], expected [-1, 13]" in info.value.message()
    with pytest.raises(InferenceServerException) as info:
        client.infer("wyne", [inp])
    assert info.value.status() == "StatusCode.NOT_FOUND" and "unknown model 'wyne'" in info.value.message()
    bad = grpcclient.InferInput("input", [1, 13], "BYTES")
    bad.set_data_from_numpy(np.array([[b"x"] * 13], dtype=object))
    with pytest.raises(InferenceServerException, match="must have datatype FP64, got BYTES"):
        client.infer("wine", [bad])
    with pytest.raises(InferenceServerException) as info:
        client.infer("exploding", [_two_zeros()])
    # As over HTTP: what failed and a request id, never the exception's text (that goes to the log).
    assert info.value.status() == "StatusCode.INTERNAL"
    assert info.value.message().startswith("model 'exploding' version 1 failed")
    assert "the server log has the details" in info.value.message() and "boom" not in info.value.message()
    assert client.is_server_live()  # still serving


def _two_zeros() -> object:
    inp = grpcclient.InferInput("input", [1, 2], "FP64")
    inp.set_data_from_numpy(np.zeros((1, 2)))
    return inp


def test_grpc_port_in_use_fails_startup(repo_dir: Path) -> None:
    port = free_port()
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", port))
        s.listen()
        with (
            pytest.raises(RuntimeError, match="gRPC"),
            run_server(repo_dir / "wine", "--grpc-port", str(port), timeout=30),
        ):
            pass
