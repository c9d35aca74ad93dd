"""Every protocol goes through the same DataPlane path to the observers (issue 11).

- gRPC requests reach the payload log and the metrics exactly as REST ones do.
- Made-up model names never become metric labels, on any protocol: 300 of them over gRPC and
  HTTP leave the /metrics series unchanged (it once grew from 22 KB to 1.84 MB).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from modelport.observability.payload_log import iter_rows, read_payloads
from tests.conftest import free_port
from tests.obs_helpers import DIABETES_ROW, build_small_repository, v2_body, wait_for
from tests.serving import RunningServer, run_server
from tests.tolerance import assert_close

pytestmark = pytest.mark.slow
grpcclient = pytest.importorskip("tritonclient.grpc")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RunningServer, int, Path]]:
    tmp = tmp_path_factory.mktemp("observe")
    root = build_small_repository(tmp / "repo")
    payloads = tmp / "payloads"
    port = free_port()
    args = ("--grpc-port", str(port), "--payload-log", str(payloads), "--poll-seconds", "0")
    with run_server(root, *args) as running:
        yield running, port, payloads


def _series(url: str) -> set[str]:
    """The /metrics sample lines without their values: which series exist."""
    text = httpx.get(url + "/metrics").text
    return {line.rsplit(" ", 1)[0] for line in text.splitlines() if line and not line.startswith("#")}


def _grpc_input() -> Any:
    inp = grpcclient.InferInput("input", [1, 10], "FP64")
    inp.set_data_from_numpy(np.array([DIABETES_ROW]))
    return inp


def test_unknown_model_names_never_become_labels(server: tuple[RunningServer, int, Path]) -> None:
    from tritonclient.utils import InferenceServerException

    url, port = server[0].url, server[1]
    client = grpcclient.InferenceServerClient(url=f"127.0.0.1:{port}")
    names = [f"made-up-{uuid.uuid4().hex[:12]}" for _ in range(300)]

    def unknown(name: str, http: httpx.Client) -> None:
        with pytest.raises(InferenceServerException) as info:
            client.infer(name, [_grpc_input()])
        assert info.value.status() == "StatusCode.NOT_FOUND"
        assert http.post(f"/v2/models/{name}/infer", json=v2_body()).status_code == 404
        assert http.post(f"/v1/models/{name}:predict", json={"instances": [DIABETES_ROW]}).status_code == 404

    with httpx.Client(base_url=url) as http:
        unknown(names[0], http)  # the fixed label's series exist from here on
        before = _series(url)
        for name in names[1:]:
            unknown(name, http)
    after = _series(url)
    assert after == before
    page = httpx.get(url + "/metrics").text
    assert not any(name in page for name in names)
    # The unknown names are counted, under the one empty model label, per protocol.
    for protocol in ("grpc", "v1", "v2"):
        m = re.search(
            rf'modelport_requests_total\{{model="",protocol="{protocol}",status="404",version=""\}} (\S+)', page
        )
        assert m is not None and float(m.group(1)) == 300.0, protocol


def test_grpc_requests_reach_metrics_and_the_payload_log_like_rest(
    server: tuple[RunningServer, int, Path], tmp_path: Path
) -> None:
    running, port, payloads = server
    client = grpcclient.InferenceServerClient(url=f"127.0.0.1:{port}")
    over_grpc = client.infer("diabetes", [_grpc_input()], model_version="1", request_id="grpc-req-1")
    over_rest = httpx.post(
        running.url + "/v2/models/diabetes/versions/1/infer", json=v2_body(), headers={"x-request-id": "rest-req-1"}
    )
    assert over_rest.status_code == 200
    page = httpx.get(running.url + "/metrics").text
    for protocol in ("grpc", "v2"):
        assert f'modelport_requests_total{{model="diabetes",protocol="{protocol}",status="200",version="1"}}' in page
        assert f'modelport_request_duration_seconds_count{{model="diabetes",protocol="{protocol}",version="1"}}' in page

    # The payload log writes a file when it rolls or closes: stop the server, then read it.
    running.process.terminate()
    running.process.wait(timeout=30)
    assert wait_for(lambda: read_payloads(payloads, model="diabetes").num_rows >= 2, timeout=10)
    rows = {r["id"]: r for r in iter_rows(read_payloads(payloads, model="diabetes"))}
    grpc_row, rest_row = rows["grpc-req-1"], rows["rest-req-1"]
    assert grpc_row["protocol"] == "grpc" and rest_row["protocol"] == "v2"
    for key in ("model", "version", "status", "error"):
        assert grpc_row[key] == rest_row[key], key
    assert grpc_row["inputs"] == rest_row["inputs"] == {"input": [DIABETES_ROW]}
    assert_close(np.array(grpc_row["outputs"]["predict"]), over_grpc.as_numpy("predict"), what="payload vs answer")
    assert_close(
        np.array(grpc_row["outputs"]["predict"]), np.array(rest_row["outputs"]["predict"]), what="gRPC vs REST"
    )
