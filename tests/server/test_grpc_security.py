"""The gRPC port honours the HTTP side's bearer token and TLS (issue 11, security review: High).

A real server with ``--auth-token``, ``--ssl-certfile/--ssl-keyfile`` (certificates from trustme)
and ``--grpc-port``, driven by tritonclient over a real TLS channel.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from tests.conftest import free_port
from tests.obs_helpers import DIABETES_ROW, build_small_repository
from tests.serving import RunningServer, run_server

pytestmark = pytest.mark.slow
grpcclient = pytest.importorskip("tritonclient.grpc")
trustme = pytest.importorskip("trustme")

TOKEN = "s3cret-token"
MISSING = "missing bearer token: send metadata 'authorization: Bearer <token>'"
WRONG = "wrong bearer token: send metadata 'authorization: Bearer <token>'"


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RunningServer, int, Path]]:
    tmp = tmp_path_factory.mktemp("tls")
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    certfile, keyfile, cafile = tmp / "server.pem", tmp / "server.key", tmp / "ca.pem"
    cert.cert_chain_pems[0].write_to_path(str(certfile))
    cert.private_key_pem.write_to_path(str(keyfile))
    ca.cert_pem.write_to_path(str(cafile))
    root = build_small_repository(tmp / "repo")
    grpc_port = free_port()
    args = ("--auth-token", TOKEN, "--ssl-certfile", str(certfile), "--ssl-keyfile", str(keyfile))
    with run_server(root, *args, "--grpc-port", str(grpc_port), scheme="https", verify=str(cafile)) as server:
        yield server, grpc_port, cafile


def _tls_client(port: int, cafile: Path) -> Any:
    return grpcclient.InferenceServerClient(url=f"127.0.0.1:{port}", ssl=True, root_certificates=str(cafile))


def _input() -> Any:
    inp = grpcclient.InferInput("input", [1, 10], "FP64")
    inp.set_data_from_numpy(np.array([DIABETES_ROW]))
    return inp


def _refused(call: Any) -> tuple[str, str]:
    from tritonclient.utils import InferenceServerException

    with pytest.raises(InferenceServerException) as info:
        call()
    return str(info.value.status()), str(info.value.message())


def test_grpc_without_a_token_is_unauthenticated(secured: tuple[RunningServer, int, Path]) -> None:
    _, port, cafile = secured
    client = _tls_client(port, cafile)
    expected = ("StatusCode.UNAUTHENTICATED", MISSING)
    assert _refused(lambda: client.infer("diabetes", [_input()])) == expected
    assert _refused(lambda: client.get_model_metadata("diabetes")) == expected
    assert _refused(lambda: client.is_model_ready("diabetes")) == expected
    assert _refused(lambda: client.get_server_metadata()) == expected
    wrong = {"authorization": "Bearer not-the-token"}
    assert _refused(lambda: client.infer("diabetes", [_input()], headers=wrong)) == (
        "StatusCode.UNAUTHENTICATED",
        WRONG,
    )
    # The health probes stay open, as /v2/health/live and /v2/health/ready do over HTTP.
    assert client.is_server_live() is True


def test_grpc_with_the_token_over_tls_answers(secured: tuple[RunningServer, int, Path]) -> None:
    server, port, cafile = secured
    client = _tls_client(port, cafile)
    headers = {"authorization": f"Bearer {TOKEN}"}
    result = client.infer("diabetes", [_input()], headers=headers)
    over_rest = httpx.post(
        server.url + "/v2/models/diabetes/infer",
        json={"inputs": [{"name": "input", "shape": [1, 10], "datatype": "FP64", "data": DIABETES_ROW}]},
        headers=headers,
        verify=str(cafile),
    )
    assert over_rest.status_code == 200
    from tests.tolerance import assert_close

    assert_close(result.as_numpy("predict"), np.array(over_rest.json()["outputs"][0]["data"]), what="gRPC vs REST")
    assert client.is_model_ready("diabetes", headers=headers)
    # And HTTP still wants the token too.
    assert httpx.get(server.url + "/v2/models/diabetes", verify=str(cafile)).status_code == 401


def test_grpc_port_speaks_only_tls_when_http_does(secured: tuple[RunningServer, int, Path]) -> None:
    plain = grpcclient.InferenceServerClient(url=f"127.0.0.1:{secured[1]}")
    status, _ = _refused(lambda: plain.is_server_live(client_timeout=5))
    assert status in ("StatusCode.UNAVAILABLE", "StatusCode.DEADLINE_EXCEEDED")
