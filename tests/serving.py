"""Start a real ``modelport serve`` subprocess on a free loopback port, and always stop it."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.conftest import free_port


@dataclass
class RunningServer:
    url: str
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path
    kept_log: str | None = None
    """The log's text once the server stopped and its file was removed."""

    def log(self) -> str:
        if self.kept_log is not None:
            return self.kept_log
        return self.log_path.read_text(errors="replace")


@contextlib.contextmanager
def run_server(
    root: str | Path,
    *args: str,
    env: dict[str, str] | None = None,
    scheme: str = "http",
    ready_path: str = "/v2/health/live",
    timeout: float = 60.0,
    verify: object = False,
    log_dir: Path | None = None,
) -> Iterator[RunningServer]:
    """``modelport serve ROOT ARGS`` on 127.0.0.1:<free port>; yields when it answers.

    The server's output goes to a file in ``log_dir``, or in a temporary directory removed
    when the server stops (``server.log()`` still answers from memory after that).
    """
    port = free_port()
    own_dir = None if log_dir is not None else Path(tempfile.mkdtemp(prefix="modelport-serve-"))
    log_path = Path(log_dir or own_dir or ".") / f"modelport-serve-{port}.log"
    cmd = [sys.executable, "-m", "modelport.cli", "serve", str(root), "--host", "127.0.0.1", "--port", str(port), *args]
    full_env = {**os.environ, **(env or {})}
    src = str(Path(__file__).resolve().parents[1] / "src")
    full_env["PYTHONPATH"] = os.pathsep.join(p for p in (src, str(Path(src).parent), full_env.get("PYTHONPATH")) if p)
    with log_path.open("wb") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=full_env, start_new_session=True)
    url = f"{scheme}://127.0.0.1:{port}"
    server = RunningServer(url, port, proc, log_path)
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"modelport serve exited with {proc.returncode}:\n{server.log()}")
            try:
                if httpx.get(url + ready_path, timeout=1.0, verify=verify).status_code < 500:  # type: ignore[arg-type]
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"modelport serve did not answer within {timeout} s:\n{server.log()}")
            time.sleep(0.1)
        yield server
    finally:
        try:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()
        finally:
            if own_dir is not None:
                server.kept_log = log_path.read_text(errors="replace") if log_path.exists() else ""
                shutil.rmtree(own_dir, ignore_errors=True)


def children(pid: int) -> list[int]:
    """The direct child processes of ``pid`` (a server's workers), from /proc."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        if int(text[text.rindex(")") + 2 :].split()[1]) == pid:
            found.append(int(stat.parent.name))
    return sorted(found)
