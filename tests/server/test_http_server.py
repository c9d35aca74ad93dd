"""The HTTP server modelport runs on (granian, through its public API): the pinned version range, and
HTTP/1.1 as clients use it (keep-alive, pipelining, HEAD, a 204 preflight, ``Expect: 100-continue``,
large bodies) against a real ``modelport serve`` over raw sockets.
"""

from __future__ import annotations

import json
import socket
import tomllib
from importlib.metadata import version
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from tests.serving import run_server

ROOT = Path(__file__).resolve().parents[2]


def test_the_installed_http_server_is_in_the_range_the_code_was_written_for() -> None:
    """server/run.py uses granian's Python API (Server, HTTP1Settings, serve(target_loader=...)): a release
    outside the pinned range may change it, so this fails before serving can break silently."""
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    (granian,) = [Requirement(d) for d in deps if Requirement(d).name == "granian"]
    assert granian.specifier, "granian must be pinned to a range"
    installed = version("granian")
    assert granian.specifier.contains(installed, prereleases=True), (
        f"granian {installed} is installed; modelport was written for {granian.specifier}: check server/run.py "
        "against its changelog, then move the range in pyproject.toml"
    )
    upper = [s for s in granian.specifier if s.operator in ("<", "<=", "~=", "==")]
    assert upper, "the range needs an upper bound: a new major or minor release may change the API"


def _read_response(sock: socket.socket, buf: bytearray) -> tuple[bytes, dict[bytes, bytes], bytes]:
    """One response off a keep-alive connection; leftover bytes stay in ``buf``."""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        assert chunk, f"connection closed mid-response: {bytes(buf)!r}"
        buf += chunk
    head, _, rest = bytes(buf).partition(b"\r\n\r\n")
    status, *lines = head.split(b"\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (ln.partition(b":") for ln in lines)}
    length = int(headers.get(b"content-length", b"0"))
    if status.split()[1] in (b"204", b"304", b"100"):
        length = 0
    while len(rest) < length:
        chunk = sock.recv(65536)
        assert chunk, "connection closed mid-body"
        rest += chunk
    buf[:] = rest[length:]
    return status, headers, rest[:length]


@pytest.mark.slow
@pytest.mark.parametrize("workers", [1, 2])
def test_keep_alive_pipelining_head_preflight_continue_and_large_bodies(repo_dir: Path, workers: int) -> None:
    args = ("--cors-origin", "https://app.example", "--workers", str(workers))
    with run_server(repo_dir / "wine", *args) as server:
        body = json.dumps({"instances": [[13.0, 2.0, 2.4, 19.0, 100.0, 2.5, 2.5, 0.3, 1.6, 5.0, 1.0, 3.0, 1000.0]]})
        with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
            buf = bytearray()
            post = (
                f"POST /v1/models/wine:predict HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\n\r\n{body}"
            ).encode()
            # Three requests pipelined on one connection: three complete answers, in order.
            sock.sendall(post * 3)
            answers = [_read_response(sock, buf) for _ in range(3)]
            assert [a[0] for a in answers] == [b"HTTP/1.1 200 OK"] * 3
            assert all(len(json.loads(a[2])["predictions"]) == 1 for a in answers)
            # HEAD: a header block and nothing after it; the connection stays usable.
            sock.sendall(b"HEAD /v2/health/live HTTP/1.1\r\nHost: t\r\n\r\n")
            status, _, data = _read_response(sock, buf)
            assert status == b"HTTP/1.1 200 OK" and data == b""
            # A CORS preflight answers 204 with no body.
            sock.sendall(
                b"OPTIONS /v2/models/wine/infer HTTP/1.1\r\nHost: t\r\nOrigin: https://app.example\r\n"
                b"Access-Control-Request-Method: POST\r\n\r\n"
            )
            status, headers, _ = _read_response(sock, buf)
            assert status == b"HTTP/1.1 204 No Content"
            assert headers[b"access-control-allow-origin"] == b"https://app.example"
            # Expect: 100-continue: the interim answer arrives alone, before we send the body.
            sock.sendall(
                f"POST /v1/models/wine:predict HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\nExpect: 100-continue\r\n\r\n".encode()
            )
            status, _, _ = _read_response(sock, buf)
            assert status == b"HTTP/1.1 100 Continue"
            sock.sendall(body.encode())
            status, _, data = _read_response(sock, buf)
            assert status == b"HTTP/1.1 200 OK" and len(json.loads(data)["predictions"]) == 1
            # A large answer (well over the join limit) arrives whole.
            big = json.dumps(
                {"instances": [[13.0, 2.0, 2.4, 19.0, 100.0, 2.5, 2.5, 0.3, 1.6, 5.0, 1.0, 3.0, 1000.0]] * 5000}
            )
            sock.sendall(
                f"POST /v1/models/wine:predict HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(big)}\r\n\r\n{big}".encode()
            )
            status, headers, data = _read_response(sock, buf)
            assert status == b"HTTP/1.1 200 OK"
            assert len(data) > 64 * 1024 and len(json.loads(data)["predictions"]) == 5000
