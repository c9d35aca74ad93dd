"""Request deadlines against a real server and a model that really sleeps (tests.helpers.SleepyModel).

Server-wide ``--request-timeout``, a model's ``[limits] request_timeout``, a gRPC client's own
deadline; 504 / DEADLINE_EXCEEDED with one message on both protocols; the server keeps serving
while a call hangs (also when it hangs on its very first call); the stuck-calls gauge.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import joblib
import numpy as np
import pytest

from tests.conftest import free_port
from tests.helpers import SleepyModel
from tests.obs_helpers import build_small_repository, v2_body, wait_for
from tests.serving import RunningServer, run_server

pytestmark = pytest.mark.slow
grpcclient = pytest.importorskip("tritonclient.grpc")

TIMEOUT = 0.5
SERVER_MESSAGE = (
    "model 'sleepy' version 1 did not answer within 0.5 s (the request timeout, --request-timeout); "
    "the server goes on serving other requests"
)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RunningServer, int]]:
    root = build_small_repository(tmp_path_factory.mktemp("deadlines"))
    for name in ("sleepy", "grpc_sleepy", "patient"):
        (root / name).mkdir()
        joblib.dump(SleepyModel(), root / name / "model.joblib")
    (root / "patient" / "modelport.toml").write_text("[limits]\nrequest_timeout = 20\n")
    grpc_port = free_port()
    args = ("--request-timeout", str(TIMEOUT), "--grpc-port", str(grpc_port), "--poll-seconds", "0")
    with run_server(root, *args) as running:
        yield running, grpc_port


def _sleep_body(seconds: float) -> dict[str, Any]:
    return {"inputs": [{"name": "input", "shape": [1, 2], "datatype": "FP64", "data": [seconds, 0.0]}]}


def _stuck(url: str, model: str) -> float | None:
    text = httpx.get(url + "/metrics").text
    m = re.search(rf'^modelport_stuck_calls\{{model="{model}",version="1"\}} (\S+)$', text, re.M)
    return float(m.group(1)) if m else None


def test_a_hanging_call_gets_504_while_the_server_keeps_serving(server: tuple[RunningServer, int]) -> None:
    url = server[0].url
    answers: dict[str, Any] = {}

    def hang() -> None:
        started = time.monotonic()
        answers["slow"] = httpx.post(url + "/v2/models/sleepy/infer", json=_sleep_body(4.0), timeout=30)
        answers["slow_seconds"] = time.monotonic() - started

    caller = threading.Thread(target=hang)
    caller.start()
    time.sleep(0.2)  # the sleepy model's first call is running now
    # Its first call: never inline on the event loop, so everything else still answers.
    with httpx.Client(base_url=url, timeout=5) as client:
        started = time.monotonic()
        assert client.get("/v2/health/live").status_code == 200
        ok = client.post("/v2/models/diabetes/infer", json=v2_body(2))
        assert ok.status_code == 200, ok.text
        others_took = time.monotonic() - started
    caller.join()
    assert others_took < 1.0, f"the server stalled behind a hanging model call ({others_took:.2f} s)"
    slow = answers["slow"]
    assert slow.status_code == 504, slow.text
    assert slow.json() == {"error": SERVER_MESSAGE}
    assert answers["slow_seconds"] < 3.0  # answered at the deadline, not when the model returned
    # The call still runs in its thread: it is stuck until the model returns, then the gauge drops.
    assert _stuck(url, "sleepy") == 1.0
    assert wait_for(lambda: _stuck(url, "sleepy") == 0.0, timeout=30)
    assert httpx.get(url + "/v2/health/live").status_code == 200


def test_grpc_gets_deadline_exceeded_with_the_same_message(server: tuple[RunningServer, int]) -> None:
    from tritonclient.utils import InferenceServerException

    client = grpcclient.InferenceServerClient(url=f"127.0.0.1:{server[1]}")
    inp = grpcclient.InferInput("input", [1, 2], "FP64")
    inp.set_data_from_numpy(np.array([[2.0, 0.0]]))
    with pytest.raises(InferenceServerException) as info:
        client.infer("grpc_sleepy", [inp])
    assert info.value.status() == "StatusCode.DEADLINE_EXCEEDED"
    assert info.value.message() == SERVER_MESSAGE.replace("'sleepy'", "'grpc_sleepy'")
    assert client.is_server_live()


def test_a_models_own_limit_wins_over_the_server_wide_one(server: tuple[RunningServer, int]) -> None:
    answer = httpx.post(server[0].url + "/v2/models/patient/infer", json=_sleep_body(1.0), timeout=30)
    assert answer.status_code == 200, answer.text  # 1 s > --request-timeout 0.5, < its [limits] 20


def test_a_grpc_clients_deadline_is_honoured(server: tuple[RunningServer, int]) -> None:
    from tritonclient.utils import InferenceServerException

    url = server[0].url
    client = grpcclient.InferenceServerClient(url=f"127.0.0.1:{server[1]}")
    inp = grpcclient.InferInput("input", [1, 2], "FP64")
    inp.set_data_from_numpy(np.array([[1.5, 0.0]]))
    with pytest.raises(InferenceServerException) as info:
        client.infer("patient", [inp], client_timeout=0.3)  # the model's own budget is 20 s
    assert info.value.status() == "StatusCode.DEADLINE_EXCEEDED"

    # The server gave up at the client's deadline too: it recorded a 504 for that gRPC request.
    def recorded() -> bool:
        text = httpx.get(url + "/metrics").text
        return 'modelport_requests_total{model="patient",protocol="grpc",status="504",version="1"} 1.0' in text

    assert wait_for(recorded, timeout=10)


def test_limits_must_be_a_number_of_seconds(tmp_path: Path) -> None:
    from modelport.core.config import read_config
    from modelport.core.errors import ConfigError

    (tmp_path / "modelport.toml").write_text('[limits]\nrequest_timeout = "soon"\n')
    with pytest.raises(ConfigError, match=r"\[limits\] request_timeout must be a number of seconds >= 0, got 'soon'"):
        read_config(tmp_path)
    (tmp_path / "modelport.toml").write_text("[limits]\ntimeout = 3\n")
    with pytest.raises(ConfigError, match=r"\[limits\] unknown key\(s\) timeout; allowed: request_timeout"):
        read_config(tmp_path)
    (tmp_path / "modelport.toml").write_text("[limits]\nrequest_timeout = 2.5\n")
    limits = read_config(tmp_path).limits
    assert limits is not None and limits.request_timeout == 2.5
