"""Connections are bounded before any request reaches auth (issue 11, security review, Medium).

Each test reproduces one finding against a real ``modelport serve`` with raw sockets: idle
connections, a partial request line, dripping headers and a partial body are all closed in
bounded time; a client holding as many idle sockets as the server has descriptors does not
keep health probes out for long; one unfinished 256 MiB header does not grow the server's memory.
"""

from __future__ import annotations

import json
import os
import resource
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tests.conftest import free_port
from tests.serving import children, run_server

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
WINE_ROW = [13.0, 2.0, 2.4, 19.0, 100.0, 2.5, 2.5, 0.3, 1.6, 5.0, 1.0, 3.0, 1000.0]


def _closed_after(sock: socket.socket, limit: float) -> float:
    """Seconds until the server closes ``sock`` (reading and discarding anything it sends first)."""
    start = time.monotonic()
    sock.settimeout(limit)
    try:
        while sock.recv(65536):
            pass
    except (ConnectionResetError, TimeoutError):
        if time.monotonic() - start >= limit:
            return float("inf")
    return time.monotonic() - start


def _tree_rss_mb(pid: int) -> float:
    pids = [pid, *children(pid)]
    total = 0.0
    for p in pids:
        for line in Path(f"/proc/{p}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1]) / 1024
    return total


def test_idle_partial_line_dripping_headers_and_idle_keep_alive_are_closed(repo_dir: Path) -> None:
    with run_server(repo_dir / "wine", "--header-timeout", "1") as server:
        addr = ("127.0.0.1", server.port)
        idle = socket.create_connection(addr)
        partial = socket.create_connection(addr)
        partial.sendall(b"GET /v2/hea")
        drip = socket.create_connection(addr)
        drip.sendall(b"GET /v2/health/live HTTP/1.1\r\nHost: t\r\n")
        kept = socket.create_connection(addr)
        kept.sendall(b"GET /v2/health/live HTTP/1.1\r\nHost: t\r\n\r\n")
        assert kept.recv(65536).startswith(b"HTTP/1.1 200")
        # a header line every 0.3 s: each arrives in time, the block never completes
        dripped_until = time.monotonic() + 5
        drip.setblocking(False)
        closed_drip = None
        while time.monotonic() < dripped_until:
            try:
                drip.send(b"X-Slow: 1\r\n")
                if drip.recv(65536) == b"":
                    closed_drip = True
                    break
            except BlockingIOError:
                pass
            except (BrokenPipeError, ConnectionResetError):
                closed_drip = True
                break
            time.sleep(0.3)
        assert closed_drip, "a connection dripping headers stayed open 5 s with --header-timeout 1"
        for name, sock in (("idle", idle), ("partial request line", partial), ("idle keep-alive", kept)):
            took = _closed_after(sock, 5.0)
            assert took < 5.0, f"{name} connection still open after 5 s with --header-timeout 1"
            sock.close()
        assert httpx.get(server.url + "/v2/health/live").status_code == 200


def test_a_partial_body_ends_with_408_and_a_json_error(repo_dir: Path) -> None:
    with run_server(repo_dir / "wine", "--body-timeout", "1") as server:
        sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
        sock.sendall(
            b"POST /v1/models/wine:predict HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
            b'Content-Length: 1000\r\n\r\n{"instances": [[13.0'
        )
        started = time.monotonic()
        data = b""
        while b"\r\n\r\n" not in data or not data.rstrip().endswith(b"}"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
        took = time.monotonic() - started
        sock.close()
        head, _, body = data.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 408"), data
        assert json.loads(body) == {
            "error": "the request body did not arrive within 1 s; send it whole or raise --body-timeout"
        }
        assert took < 5
        # a whole body is unaffected
        answer = httpx.post(server.url + "/v1/models/wine:predict", json={"instances": [WINE_ROW]})
        assert answer.status_code == 200


def test_a_body_dripped_in_small_pieces_is_bounded_in_total_not_per_piece(repo_dir: Path) -> None:
    body = json.dumps({"instances": [WINE_ROW]}).encode()
    with run_server(repo_dir / "wine", "--body-timeout", "1") as server:
        sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
        sock.sendall(
            b"POST /v1/models/wine:predict HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
            + f"Content-Length: {len(body)}\r\n\r\n".encode()
        )
        answer = b""
        sock.setblocking(False)
        for piece in (body[i : i + 4] for i in range(0, len(body), 4)):  # 4 bytes every 0.2 s: ~8 s in all
            try:
                sock.send(piece)
                answer += sock.recv(65536)
                break
            except BlockingIOError:
                pass
            except (BrokenPipeError, ConnectionResetError):
                break
            time.sleep(0.2)
        sock.settimeout(10)
        try:
            while not answer.rstrip().endswith(b"}"):
                chunk = sock.recv(65536)
                if not chunk:
                    break
                answer += chunk
        except (ConnectionResetError, TimeoutError):
            pass
        sock.close()
    assert answer.startswith(b"HTTP/1.1 408"), answer
    assert b"--body-timeout" in answer


def test_one_unfinished_huge_header_does_not_grow_memory(repo_dir: Path) -> None:
    with run_server(repo_dir / "wine", "--max-header-size", "64KiB") as server:
        before = _tree_rss_mb(server.process.pid)
        sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
        sock.sendall(b"GET /v2/health/live HTTP/1.1\r\nHost: t\r\nX-Big: ")
        chunk = b"a" * (1 << 20)
        sent = 0
        try:
            while sent < 256 << 20:  # 256 MiB, never finished
                sock.sendall(chunk)
                sent += len(chunk)
        except (BrokenPipeError, ConnectionResetError, TimeoutError):
            pass
        after = _tree_rss_mb(server.process.pid)
        sock.close()
        assert sent < 16 << 20, f"the server read {sent >> 20} MiB of one header before refusing it"
        assert after - before < 32, f"RSS grew from {before:.0f} to {after:.0f} MiB"
        assert httpx.get(server.url + "/v2/health/live").status_code == 200
        # granian refuses the block with an empty 431 (its own answer: no JSON body, see docs/operations.md);
        # its buffer grows in steps, so a block somewhat over the limit may still be read, never 2x
        big = httpx.get(server.url + "/v2/health/live", headers={"X-Big": "a" * (128 << 10)})
        assert big.status_code == 431, big
        assert httpx.get(server.url + "/v2/health/live", headers={"X-Ok": "a" * (40 << 10)}).status_code == 200


@contextmanager
def _serve_with_descriptor_limit(root: Path, limit: int, *args: str) -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    """``modelport serve`` with soft and hard RLIMIT_NOFILE at ``limit`` (as the review ran it)."""
    port = free_port()
    log = Path(os.environ.get("TMPDIR", "/tmp")) / f"modelport-limits-{port}.log"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)])}
    cmd = [sys.executable, "-m", "modelport.cli", "serve", str(root), "--host", "127.0.0.1", "--port", str(port), *args]
    with log.open("wb") as out:
        proc = subprocess.Popen(
            cmd,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
            preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit)),
        )
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, log.read_text()
            try:
                if httpx.get(f"http://127.0.0.1:{port}/v2/health/live", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        yield proc, port
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        text = log.read_text()
        log.unlink()
        assert "Too many open files" not in text, text


def test_idle_sockets_up_to_the_descriptor_limit_do_not_keep_health_probes_out(repo_dir: Path) -> None:
    # The review: 200 idle sockets under a 200-descriptor limit made probes fail for 30 s.
    with _serve_with_descriptor_limit(repo_dir / "wine", 200, "--header-timeout", "2") as (_, port):
        idle = [socket.create_connection(("127.0.0.1", port)) for _ in range(200)]
        try:
            started = time.monotonic()
            probe = httpx.get(f"http://127.0.0.1:{port}/v2/health/live", timeout=10)
            took = time.monotonic() - started
            assert probe.status_code == 200
            assert took < 5, f"a health probe waited {took:.1f} s behind idle sockets"
            # fewer idle sockets than the cap: probes are answered at once
            for sock in idle:
                sock.close()
            idle = [socket.create_connection(("127.0.0.1", port)) for _ in range(100)]
            started = time.monotonic()
            assert httpx.get(f"http://127.0.0.1:{port}/v2/health/live", timeout=10).status_code == 200
            assert time.monotonic() - started < 1
        finally:
            for sock in idle:
                sock.close()
