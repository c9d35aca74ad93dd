"""Responses through the coalescing transport (headers and body in one write) stay well-formed HTTP.

A real ``modelport serve`` and raw sockets: keep-alive and pipelined requests, HEAD (no body
follows the header block), a 204 preflight, ``Expect: 100-continue``, a large body, and the
unit behaviour of the wrapper itself.
"""

from __future__ import annotations

import asyncio
import json
import socket
from pathlib import Path

import pytest

from modelport.server.transport import CoalescingTransport
from tests.serving import run_server


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
def test_keep_alive_head_preflight_continue_and_large_bodies(repo_dir: Path) -> None:
    with run_server(repo_dir / "wine", "--cors-origin", "https://app.example") as server:
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


class _Recorder(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:  # type: ignore[override]
        self.writes.append(bytes(data))

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed


async def test_the_wrapper_joins_head_and_body_and_flushes_a_lone_head() -> None:
    loop = asyncio.get_running_loop()
    inner = _Recorder()
    t = CoalescingTransport(inner, loop)
    t.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n")
    t.write(b"{}")
    assert inner.writes == [b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}"]
    t.write(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")  # HEAD: no body write follows
    assert len(inner.writes) == 1
    await asyncio.sleep(0)
    assert inner.writes[1] == b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n"
    t.write(b"HTTP/1.1 200 OK\r\n\r\n")
    t.close()  # closing flushes what is held back first
    assert inner.writes[2] == b"HTTP/1.1 200 OK\r\n\r\n" and inner.closed
    big = b"x" * (65 * 1024)
    t2 = CoalescingTransport(_Recorder(), loop)
    t2.write(b"HTTP/1.1 200 OK\r\n\r\n")
    t2.write(big)
    assert t2._transport.writes == [b"HTTP/1.1 200 OK\r\n\r\n", big]  # type: ignore[attr-defined]
