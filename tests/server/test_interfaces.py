"""RSGI (the default) and ASGI (``--interface asgi``) serve the same app: every answer must be the same.

Two real servers, one per interface, with the same options; each request of a table goes to
both, and status, headers and body are compared (the date and the generated request id aside).
The table covers the infer routes of both protocols, every pre-dispatch refusal (auth, content
type, body limit declared and chunked, CORS, method, route), HEAD, percent-encoded paths, a
chunked body and a body that never completes (``--body-timeout``).
"""

from __future__ import annotations

import json
import re
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.serving import RunningServer, run_server

TOKEN = "s3cret"
ROW = [13.0, 2.0, 2.4, 20.0, 100.0, 2.5, 2.5, 0.3, 1.5, 5.0, 1.0, 3.0, 1000.0]
OPTIONS = ("--auth-token", TOKEN, "--max-body", "4KiB", "--cors-origin", "https://app.example", "--body-timeout", "1")
AUTH = f"Authorization: Bearer {TOKEN}\r\n"


def _request(method: str, path: str, body: bytes = b"", headers: str = AUTH, *, chunked: bool = False) -> bytes:
    head = f"{method} {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n{headers}"
    if chunked:
        pieces = [body[i : i + 100] for i in range(0, len(body), 100)]
        payload = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in pieces) + b"0\r\n\r\n"
        return (head + "Transfer-Encoding: chunked\r\n\r\n").encode() + payload
    if body or method in ("POST", "PUT"):
        head += f"Content-Length: {len(body)}\r\n"
    return (head + "\r\n").encode() + body


V2_INFER = json.dumps({"inputs": [{"name": "input", "datatype": "FP64", "shape": [1, 13], "data": ROW}]}).encode()
V1_PREDICT = json.dumps({"instances": [ROW]}).encode()
JSON = "Content-Type: application/json\r\n"

CASES: dict[str, bytes] = {
    "ready": _request("GET", "/v2/health/ready", headers=""),
    "metadata": _request("GET", "/v2/models/wine"),
    "metadata, HEAD": _request("HEAD", "/v2/models/wine"),
    "metadata, percent-encoded name": _request("GET", "/v2/models/w%69ne"),
    "unknown model with a space": _request("GET", "/v2/models/no%20such"),
    "v2 infer": _request("POST", "/v2/models/wine/infer", V2_INFER, AUTH + JSON),
    "v2 infer, client's request id": _request(
        "POST", "/v2/models/wine/infer", V2_INFER, AUTH + JSON + "X-Request-Id: abc-123\r\n"
    ),
    "v2 infer, chunked body": _request("POST", "/v2/models/wine/infer", V2_INFER, AUTH + JSON, chunked=True),
    "v2 infer, query string": _request("POST", "/v2/models/wine/infer?x=%20y", V2_INFER, AUTH + JSON),
    "v1 predict": _request("POST", "/v1/models/wine:predict", V1_PREDICT, AUTH + JSON),
    "bad JSON": _request("POST", "/v2/models/wine/infer", b'{"inputs": [', AUTH + JSON),
    "wrong shape": _request(
        "POST",
        "/v2/models/wine/infer",
        json.dumps({"inputs": [{"name": "input", "datatype": "FP64", "shape": [1, 2], "data": [1, 2]}]}).encode(),
        AUTH + JSON,
    ),
    "no token": _request("POST", "/v2/models/wine/infer", V2_INFER, JSON),
    "wrong token": _request("POST", "/v2/models/wine/infer", V2_INFER, JSON + "Authorization: Bearer nope\r\n"),
    "unsupported content type": _request(
        "POST", "/v2/models/wine/infer", V2_INFER, AUTH + "Content-Type: text/csv\r\n"
    ),
    "body over --max-body, declared": _request("POST", "/v2/models/wine/infer", b" " * 5000 + V2_INFER, AUTH + JSON),
    "body over --max-body, chunked": _request(
        "POST", "/v2/models/wine/infer", b" " * 5000 + V2_INFER, AUTH + JSON, chunked=True
    ),
    "GET on infer": _request("GET", "/v2/models/wine/infer"),
    "no route": _request("GET", "/v3/nothing"),
    "CORS simple request": _request("GET", "/v2/models/wine", headers=AUTH + "Origin: https://app.example\r\n"),
    "CORS preflight": _request(
        "OPTIONS",
        "/v2/models/wine/infer",
        headers="Origin: https://app.example\r\nAccess-Control-Request-Method: POST\r\n"
        "Access-Control-Request-Headers: content-type, authorization\r\n",
    ),
    "CORS preflight, other origin": _request(
        "OPTIONS",
        "/v2/models/wine/infer",
        headers="Origin: https://evil.example\r\nAccess-Control-Request-Method: POST\r\n",
    ),
    "body that never completes": _request("POST", "/v2/models/wine/infer", V2_INFER, AUTH + JSON)[:-20].replace(
        f"Content-Length: {len(V2_INFER)}".encode(), f"Content-Length: {len(V2_INFER) + 100}".encode()
    ),
}


def _exchange(server: RunningServer, raw: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send ``raw`` and read the answer until the server closes (every request says Connection: close)."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(raw)
        data = b""
        while True:
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            data += chunk
            head, sep, body = data.partition(b"\r\n\r\n")
            length = re.search(rb"(?i)\r\ncontent-length: (\d+)", head)
            if sep and length and len(body) >= int(length.group(1)) and not raw.startswith(b"HEAD"):
                break
            if sep and raw.startswith(b"HEAD"):
                break
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return status, headers, body


@pytest.fixture(scope="module")
def servers(repo_dir: Path) -> Iterator[tuple[RunningServer, RunningServer]]:
    with (
        run_server(repo_dir / "wine", *OPTIONS) as rsgi,
        run_server(repo_dir / "wine", *OPTIONS, "--interface", "asgi") as asgi,
    ):
        yield rsgi, asgi


@pytest.mark.parametrize("case", list(CASES))
def test_rsgi_and_asgi_answer_alike(servers: tuple[RunningServer, RunningServer], case: str) -> None:
    rsgi, asgi = servers
    raw = CASES[case]
    answers = []
    for server in (rsgi, asgi):
        started = time.monotonic()
        status, headers, body = _exchange(server, raw)
        answers.append((status, headers, body, time.monotonic() - started))
    (s1, h1, b1, _), (s2, h2, b2, _) = answers
    assert (s1, b1) == (s2, b2), f"{case}: RSGI {s1} {b1[:300]!r} vs ASGI {s2} {b2[:300]!r}"
    for headers in (h1, h2):
        assert re.fullmatch(r"[0-9a-f]{32}|abc-123", headers.pop("x-request-id", "")), headers
        headers.pop("date", None)
    assert h1 == h2, case
    if case == "body that never completes":
        assert s1 == 408 and b"--body-timeout" in b1
        assert all(took < 5 for *_, took in answers)


def test_the_table_reaches_every_kind_of_answer(servers: tuple[RunningServer, RunningServer]) -> None:
    """The comparison above means something only if the cases get the answers they are named for."""
    rsgi, _ = servers
    statuses = {case: _exchange(rsgi, raw)[0] for case, raw in CASES.items()}
    assert statuses["v2 infer"] == statuses["v1 predict"] == statuses["v2 infer, chunked body"] == 200
    assert statuses["no token"] == statuses["wrong token"] == 401
    assert statuses["unsupported content type"] == 415
    assert statuses["body over --max-body, declared"] == statuses["body over --max-body, chunked"] == 413
    assert statuses["bad JSON"] == statuses["wrong shape"] == 400
    assert statuses["GET on infer"] == 405
    assert statuses["no route"] == statuses["unknown model with a space"] == 404
    assert statuses["CORS preflight"] == 204 and statuses["CORS preflight, other origin"] == 403
    assert statuses["metadata, percent-encoded name"] == 200


@pytest.mark.parametrize("interface", ["rsgi", "asgi"])
def test_pipelined_requests_on_one_connection_are_answered_in_order(
    servers: tuple[RunningServer, RunningServer], interface: str
) -> None:
    """HTTP/1.1 keep-alive with pipelining: four requests written at once, four answers in request order."""
    server = servers[0] if interface == "rsgi" else servers[1]
    keep = [
        r.replace(b"Connection: close\r\n", b"") for r in (CASES["v2 infer"], CASES["no route"], CASES["v1 predict"])
    ]
    last = CASES["ready"]  # Connection: close ends the exchange
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(b"".join(keep) + last)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    statuses = [int(m) for m in re.findall(rb"HTTP/1\.1 (\d{3}) ", data)]
    assert statuses == [200, 404, 200, 200], data[:500]
    assert data.count(b'"model_name":"wine"') == 1 and data.count(b'"predictions"') == 1
