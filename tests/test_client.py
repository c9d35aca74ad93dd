"""modelport.client: retries, batching and errors against a scripted ASGI app, then a real server."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest

from modelport.client import AsyncClient, Client, EndpointUnavailable
from modelport.core.errors import InvalidInput, UnknownModel
from tests.conftest import free_port
from tests.tolerance import assert_close

# -- a scripted service -----------------------------------------------------------------------------------------


class Script:
    """An ASGI app that answers each infer request with the next scripted step, then with echo."""

    def __init__(self) -> None:
        self.steps: list[tuple[int, dict[str, Any], dict[str, str], float]] = []
        self.requests: list[dict[str, Any]] = []

    def then(
        self, status: int, body: dict[str, Any] | None = None, headers: dict[str, str] | None = None, delay: float = 0.0
    ) -> Script:
        self.steps.append((status, body or {"error": f"scripted {status}"}, headers or {}, delay))
        return self

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        assert scope["type"] == "http"
        body = b""
        while True:
            msg = await receive()
            body += msg.get("body", b"")
            if not msg.get("more_body"):
                break
        request = orjson.loads(body) if body else {}
        self.requests.append({"path": scope["path"], "body": request})
        if self.steps:
            status, answer, headers, delay = self.steps.pop(0)
            if delay:
                await asyncio.sleep(delay)
        else:
            status, answer, headers = 200, self._echo(scope["path"], request), {}
        raw = orjson.dumps(answer)
        hdrs = [(b"content-type", b"application/json"), *((k.encode(), v.encode()) for k, v in headers.items())]
        await send({"type": "http.response.start", "status": status, "headers": hdrs})
        await send({"type": "http.response.body", "body": raw})

    @staticmethod
    def _echo(path: str, request: dict[str, Any]) -> dict[str, Any]:
        """V2: output 'double' = 2 * input 'x'; V1: the same in columnar form."""
        if path.startswith("/v2"):
            x = request["inputs"][0]
            data = [2 * v for v in x["data"]]
            return {
                "model_name": "m",
                "outputs": [{"name": "double", "datatype": "FP64", "shape": x["shape"], "data": data}],
            }
        x = np.asarray(request["inputs"]["x"], dtype=float)
        return {"outputs": (2 * x).tolist()}


@pytest.fixture
def service() -> Iterator[tuple[str, Script]]:
    import uvicorn

    script = Script()
    port = free_port()
    config = uvicorn.Config(script, host="127.0.0.1", port=port, log_level="error", lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}", script
    server.should_exit = True
    thread.join(10)


def _fast(url: str, **kw: Any) -> Client:
    return Client(url, backoff=0.01, max_backoff=0.05, **kw)


def test_503_is_retried_then_succeeds(service: tuple[str, Script]) -> None:
    url, script = service
    script.then(503).then(503)
    with _fast(url) as client:
        out = client.predict("m", {"x": np.array([1.0, 2.0])})
        assert client.attempts == 3
    assert_close(out["double"], [2.0, 4.0])


def test_429_honours_retry_after(service: tuple[str, Script]) -> None:
    url, script = service
    script.then(429, headers={"Retry-After": "0"})
    with _fast(url) as client:
        assert client.predict("m", {"x": [3.0]})["double"].tolist() == [6.0]
        assert client.attempts == 2


def test_400_is_never_retried_and_carries_the_server_message(service: tuple[str, Script]) -> None:
    url, script = service
    script.then(400, {"error": "model 'm': input 'x' must be FP64 numbers, got str value 'a'"})
    with _fast(url) as client:
        with pytest.raises(InvalidInput) as err:
            client.predict("m", {"x": [1.0]})
        assert client.attempts == 1
    assert err.value.message == (
        f"{url}/v2/models/m/infer: HTTP 400: model 'm': input 'x' must be FP64 numbers, got str value 'a'"
    )
    assert len(script.requests) == 1


def test_404_unknown_model(service: tuple[str, Script]) -> None:
    url, script = service
    script.then(404, {"error": "unknown model 'wyne'; loaded: wine"})
    with _fast(url) as client, pytest.raises(UnknownModel, match=r"HTTP 404: unknown model 'wyne'; loaded: wine"):
        client.predict("wyne", {"x": [1.0]})


def test_retries_run_out_with_a_clear_error(service: tuple[str, Script]) -> None:
    url, script = service
    for _ in range(3):
        script.then(503, {"error": "model 'm' is loading"})
    with _fast(url, retries=2) as client:
        with pytest.raises(EndpointUnavailable) as err:
            client.predict("m", {"x": [1.0]})
        assert client.attempts == 3
    assert err.value.message == (
        f'POST {url}/v2/models/m/infer failed after 3 attempts; last: HTTP 503: {{"error":"model \'m\' is loading"}}'
    )
    assert err.value.status == 503


def test_connection_refused_is_retried_then_reported() -> None:
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    with _fast(url, retries=3) as client:
        with pytest.raises(EndpointUnavailable, match=r"failed after 4 attempts; last: ConnectError"):
            client.predict("m", {"x": [1.0]})
        assert client.attempts == 4


def test_read_timeout_is_retried(service: tuple[str, Script]) -> None:
    url, script = service
    script.then(200, {"outputs": []}, delay=2.0)
    with _fast(url, timeout=0.5) as client:
        assert client.predict("m", {"x": [1.0]})["double"].tolist() == [2.0]
        assert client.attempts == 2


def test_rows_are_split_into_requests_and_joined_in_order(service: tuple[str, Script]) -> None:
    url, script = service
    x = np.arange(7, dtype=float)
    with _fast(url, batch_size=3) as client:
        out = client.predict("m", {"x": x})
    assert_close(out["double"], 2 * x)
    assert [r["body"]["inputs"][0]["shape"] for r in script.requests] == [[3], [3], [1]]
    assert script.requests[0]["body"]["inputs"][0] == {
        "name": "x",
        "shape": [3],
        "datatype": "FP64",
        "data": [0.0, 1.0, 2.0],
    }


def test_v1_columnar_request_and_lone_output(service: tuple[str, Script]) -> None:
    url, script = service
    with Client(url, protocol="v1") as client:
        out = client.predict("m", [{"x": 1.5}, {"x": 2.5}], outputs=["double"])
    assert out["double"].tolist() == [3.0, 5.0]
    assert script.requests[0] == {"path": "/v1/models/m:predict", "body": {"inputs": {"x": [1.5, 2.5]}}}


def test_async_client_retries_and_batches(service: tuple[str, Script]) -> None:
    url, script = service
    script.then(503)

    async def run() -> tuple[dict[str, np.ndarray], int]:
        async with AsyncClient(url, backoff=0.01, batch_size=2, concurrency=2) as client:
            out = await client.predict("m", {"x": np.arange(5.0)})
            return out, client.attempts

    out, attempts = asyncio.run(run())
    assert_close(out["double"], 2 * np.arange(5.0))
    assert attempts == 4  # 3 requests, one of them retried once


def test_async_client_does_not_retry_400(service: tuple[str, Script]) -> None:
    url, script = service
    script.then(400, {"error": "bad"})

    async def run() -> None:
        async with AsyncClient(url, backoff=0.01) as client:
            await client.predict("m", {"x": [1.0]})

    with pytest.raises(InvalidInput, match="HTTP 400: bad"):
        asyncio.run(run())
    assert len(script.requests) == 1


# -- against a real `modelport serve` ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def real_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    from tests.helpers import build_repository
    from tests.serving import run_server

    root = build_repository(tmp_path_factory.mktemp("repo"))
    # The repository holds a deliberately broken model, so the server as a whole is never ready.
    with run_server(root, ready_path="/v2/models/wine/ready") as server:
        yield server.url, root


@pytest.mark.slow
@pytest.mark.parametrize("protocol", ["v2", "v1"])
def test_real_server_predictions_match_in_process(real_server: tuple[str, Path], protocol: str) -> None:
    from sklearn.datasets import load_wine

    from modelport.runtimes.loading import load_model

    url, root = real_server
    X, _ = load_wine(return_X_y=True)
    expected = load_model(root / "wine" / "model.joblib").predict({"input": X})
    with Client(url, protocol=protocol, batch_size=50) as client:  # type: ignore[arg-type]
        assert client.signature("wine").input_names == ["input"]
        out = client.predict("wine", {"input": X}, outputs=["predict", "predict_proba"])
    assert_close(out["predict"], expected["predict"])
    assert_close(out["predict_proba"], expected["predict_proba"])


@pytest.mark.slow
def test_real_server_errors_are_typed(real_server: tuple[str, Path]) -> None:
    url, _ = real_server
    with Client(url, retries=0) as client:
        with pytest.raises(InvalidInput) as err:
            client.predict("wine", {"input": np.zeros((2, 3))})
        assert "input 'input' has shape [2, 3], expected [-1, 13]" in err.value.message
        with pytest.raises(UnknownModel) as err2:
            client.predict("wyne", {"input": np.zeros((1, 13))})
        assert "wyne" in err2.value.message
        assert client.ready() is False  # the repository's broken model keeps the server unready
