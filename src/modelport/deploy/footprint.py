"""How much memory and time a real first start of ``modelport serve`` takes on these models.

Platforms size instances by memory (App Engine instance classes, Cloud Run and Lambda memory,
Kubernetes requests), and the figure that matters is the worst moment of the first start: with
an empty compile cache the frameworks are imported to unpickle and check the models before the
server restarts itself without them. So this starts the real server in a subprocess on a free
loopback port, once with an empty compile cache and once with the cache that start filled, and
samples the process tree's peak and settled resident memory.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from modelport.core.errors import ModelportError

__all__ = ["Footprint", "measure"]


@dataclass(frozen=True)
class Footprint:
    """Peak and settled RSS (MB) and seconds to ready, for an empty and a filled compile cache."""

    peak_mb: float
    settled_mb: float
    first_start_s: float
    cached_peak_mb: float
    cached_settled_mb: float
    cached_start_s: float

    def describe(self) -> str:
        return (
            f"first start {self.first_start_s:.1f} s, peak {self.peak_mb:.0f} MB, settled {self.settled_mb:.0f} MB; "
            f"with a filled compile cache {self.cached_start_s:.1f} s, peak {self.cached_peak_mb:.0f} MB, "
            f"settled {self.cached_settled_mb:.0f} MB"
        )


def _children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(p) for p in text.split()]


def _tree(pid: int) -> list[int]:
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(_children(p))
    return out


def _status_kb(pid: int, key: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return 0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1.0) as response:
            return int(response.status) == 200
    except (urllib.error.URLError, OSError):
        return False


def _one_start(root: Path, cache: Path, workers: int, timeout: float) -> tuple[float, float, float]:
    port = _free_port()
    argv = [sys.executable, "-m", "modelport.cli", "serve", str(root), "--host", "127.0.0.1", "--port", str(port)]
    argv += ["--workers", str(workers), "--poll-seconds", "0", "--log-format", "json"]
    env = {**os.environ, "MODELPORT_COMPILE_CACHE": str(cache)}
    log = tempfile.TemporaryFile()
    started = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    peaks: dict[tuple[int, int], int] = {}  # (pid, exec generation) -> VmHWM; an exec resets the high-water mark
    try:
        url = f"http://127.0.0.1:{port}/v2/health/ready"
        took = None
        while took is None:
            if proc.poll() is not None:
                log.seek(0)
                tail = log.read().decode(errors="replace")[-2000:]
                raise ModelportError(f"modelport serve {root} exited with {proc.returncode} while measuring:\n{tail}")
            for pid in _tree(proc.pid):
                hwm = _status_kb(pid, "VmHWM")
                rss = _status_kb(pid, "VmRSS")
                key = (pid, 0)
                # A smaller high-water mark than seen before means the process exec'd: keep both.
                while key in peaks and hwm < peaks[key] and rss < peaks[key]:
                    key = (pid, key[1] + 1)
                peaks[key] = max(peaks.get(key, 0), hwm)
            if _ready(url):
                took = time.perf_counter() - started
                break
            if time.perf_counter() - started > timeout:
                raise ModelportError(f"modelport serve {root} was not ready within {timeout:.0f} s while measuring")
            time.sleep(0.02)
        time.sleep(0.3)
        settled = sum(_status_kb(pid, "VmRSS") for pid in _tree(proc.pid)) / 1024
        peak = max(max(peaks.values(), default=0) / 1024, settled)
        if workers > 1:  # forked workers are up together: the sum of the tree's high-water marks
            peak = max(peak, sum(_status_kb(pid, "VmHWM") for pid in _tree(proc.pid)) / 1024)
        return peak, settled, took
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        log.close()


def measure(root: str | Path, workers: int = 1, timeout: float = 180.0) -> Footprint:
    """Start ``modelport serve root`` twice (empty, then filled compile cache) and report both."""
    path = Path(root)
    if not path.exists():
        raise ModelportError(f"{root}: cannot measure models that are not on this machine; give --memory")
    cache = Path(tempfile.mkdtemp(prefix="modelport-footprint-"))
    try:
        peak, settled, took = _one_start(path, cache, workers, timeout)
        cpeak, csettled, ctook = _one_start(path, cache, workers, timeout)
    finally:
        shutil.rmtree(cache, ignore_errors=True)
    return Footprint(peak, settled, took, cpeak, csettled, ctook)
