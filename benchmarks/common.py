"""Shared pieces of the HTTP benchmarks: the model, servers in subprocesses, and wrk/hey drivers.

Not a test module. Every server is a child process in its own session, started on a
free loopback port and killed (the whole process group) when the benchmark ends.
"""

from __future__ import annotations

import atexit
import csv
import io
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "benchmarks"
N_FEATURES = 30  # breast_cancer


def scratch_dir(prefix: str) -> Path:
    """A temporary directory that goes when the benchmark exits (normally, on an error or Ctrl-C)."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    atexit.register(shutil.rmtree, path, ignore_errors=True)
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --------------------------------------------------------------------------- the model


def breast_cancer_model(cache: Path) -> Path:
    """examples/models/breast_cancer/model.joblib when present, else train the same pipeline into ``cache``.

    StandardScaler + LogisticRegression on scikit-learn's bundled breast_cancer data.
    """
    shipped = ROOT / "examples" / "models" / "breast_cancer" / "model.joblib"
    if shipped.is_file():
        return shipped
    path = cache / "models" / "breast_cancer" / "model.joblib"
    if path.is_file():
        return path
    import joblib
    from sklearn.datasets import load_breast_cancer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = load_breast_cancer(return_X_y=True)
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(X, y)
    path.parent.mkdir(parents=True, exist_ok=True)
    joblib.dump(model, path)
    return path


def sample_rows(n: int) -> list[list[float]]:
    """``n`` real rows of breast_cancer features (cycled), so every server gets the same numbers."""
    from sklearn.datasets import load_breast_cancer

    X = load_breast_cancer().data
    return [[float(v) for v in X[i % len(X)]] for i in range(n)]


def v2_body(rows: list[list[float]], outputs: Sequence[str] = ()) -> bytes:
    body: dict[str, Any] = {
        "inputs": [{"name": "input", "datatype": "FP64", "shape": [len(rows), len(rows[0])], "data": sum(rows, [])}]
    }
    if outputs:
        body["outputs"] = [{"name": o} for o in outputs]
    return json.dumps(body).encode()


# --------------------------------------------------------------------------- servers


@dataclass
class Server:
    """A server under test: how to start it, where to ask if it is ready, and what to send."""

    name: str
    argv: list[str]
    ready_url: str
    port: int
    env: dict[str, str] = field(default_factory=dict)
    cwd: Path | None = None
    probe_body: bytes | None = None  # when set, "ready" means this POST to ready_url answered 200
    proc: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None
    cold_start_s: float | None = None

    def start(self, timeout: float = 120.0, log_dir: Path | None = None) -> float:
        """Start and wait until ``ready_url`` answers 200; return seconds from spawn to that answer.

        With ``probe_body`` this is cold start to the first prediction, not just to a health check.
        """
        log_dir = log_dir or Path(tempfile.gettempdir())
        self.log_path = log_dir / f"{self.name.replace(' ', '_')}-{self.port}.log"
        log = self.log_path.open("wb")
        env = {**os.environ, **self.env}
        t0 = time.perf_counter()
        self.proc = subprocess.Popen(
            self.argv, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=self.cwd, start_new_session=True
        )
        deadline = t0 + timeout
        while time.perf_counter() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"{self.name} exited with {self.proc.returncode}; log: {self.log_path}\n{self.tail()}"
                )
            if http_status(self.ready_url, self.probe_body) == 200:
                self.cold_start_s = time.perf_counter() - t0
                return self.cold_start_s
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"{self.name} was not ready at {self.ready_url} within {timeout:.0f} s\n{self.tail()}")

    def tail(self, lines: int = 25) -> str:
        if self.log_path is None or not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def rss_mb(self) -> float:
        """Resident memory of the server and all its descendants (MB)."""
        if self.proc is None:
            return 0.0
        return sum(_rss_kb(pid) for pid in _tree(self.proc.pid)) / 1024.0

    def cpu_seconds(self) -> float:
        """User + system CPU time so far of the server's live process tree (all threads, Rust ones included)."""
        if self.proc is None:
            return 0.0
        ticks = 0
        for pid in _tree(self.proc.pid):
            try:
                text = Path(f"/proc/{pid}/stat").read_text()
            except OSError:
                continue
            fields = text[text.rindex(")") + 2 :].split()
            ticks += int(fields[11]) + int(fields[12])  # utime, stime
        return ticks / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(5)
        except ProcessLookupError:
            pass


def http_status(url: str, body: bytes | None = None, timeout: float = 2.0) -> int:
    req = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as response:
            response.read()
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
    except (urllib.error.URLError, OSError):
        return 0


def post(url: str, body: bytes, timeout: float = 30.0) -> tuple[int, bytes]:
    req = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as response:
            return int(response.status), response.read()
    except urllib.error.HTTPError as exc:
        return int(exc.code), exc.read()


def _tree(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        fields = text[text.rindex(")") + 2 :].split()
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, []))
    return out


def _rss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


# --------------------------------------------------------------------------- load generators


@dataclass
class Load:
    """One load run: throughput and latency percentiles in milliseconds."""

    rps: float
    p50: float
    p90: float
    p99: float
    requests: int
    errors: int

    def as_dict(self) -> dict[str, float]:
        return {"rps": self.rps, "p50": self.p50, "p90": self.p90, "p99": self.p99, "errors": self.errors}


def ensure_tool(name: str) -> str:
    """The path of ``wrk``/``hey``; installs the Debian package when missing and we are root."""
    found = shutil.which(name)
    if found:
        return found
    if os.geteuid() == 0 and shutil.which("apt-get"):
        print(f"installing {name} with apt-get ...", file=sys.stderr)
        subprocess.run(
            ["apt-get", "install", "-y", "-qq", name],
            check=False,
            env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
        )
        found = shutil.which(name)
        if not found:
            subprocess.run(["apt-get", "update", "-qq"], check=False)
            subprocess.run(["apt-get", "install", "-y", "-qq", name], check=False)
            found = shutil.which(name)
    if not found:
        raise SystemExit(f"{name} is not installed; install it with: sudo apt-get install {name}")
    return found


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0, "m": 60000.0}


def _ms(text: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text.strip())
    if not m:
        raise ValueError(f"wrk latency '{text}' not understood")
    return float(m.group(1)) * _UNITS[m.group(2)]


def run_wrk(url: str, body: bytes | None, connections: int, seconds: float, threads: int = 1) -> Load:
    """wrk with a Lua script for the POST body; percentiles from its --latency table."""
    wrk = ensure_tool("wrk")
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        if body is not None:
            text = body.decode()
            if "]==]" in text:
                raise ValueError("request body contains ']==]'")
            script.write('wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n')
            script.write(f"wrk.body = [==[{text}]==]\n")
        # wrk counts only socket errors; report non-2xx ourselves.
        script.write(
            "local bad = 0\nresponse = function(status, headers, body) if status >= 300 then bad = bad + 1 end end\n"
            "done = function(summary, latency, requests) io.write(string.format('BAD %d\\n', bad)) end\n"
        )
    try:
        cmd = [
            wrk,
            f"-t{min(threads, connections)}",
            f"-c{connections}",
            f"-d{seconds:g}s",
            "--latency",
            "-s",
            script.name,
            url,
        ]
        out = subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=seconds + 60).stdout
    finally:
        os.unlink(script.name)
    pct = {k: _ms(v) for k, v in re.findall(r"^\s+(50|90|99)%\s+(\S+)\s*$", out, re.M)}
    found_rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    found_total = re.search(r"(\d+) requests in", out)
    if not found_rps or not found_total:
        raise RuntimeError(f"wrk output not understood:\n{out}")
    rps, total = float(found_rps.group(1)), int(found_total.group(1))
    socket_errors = sum(int(x) for x in re.findall(r"(?:connect|read|write|timeout) (\d+)", out))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = socket_errors + (int(non2xx.group(1)) if non2xx else 0)
    nan = float("nan")  # no answered request: wrk prints no distribution
    return Load(rps, pct.get("50", nan), pct.get("90", nan), pct.get("99", nan), total, errors)


def run_hey(url: str, body: bytes | None, connections: int, seconds: float) -> Load:
    """hey with per-request CSV output, percentiles computed here."""
    hey = ensure_tool("hey")
    cmd = [hey, "-z", f"{seconds:g}s", "-c", str(connections), "-o", "csv"]
    tmp = None
    if body is not None:
        with tempfile.NamedTemporaryFile("wb", suffix=".json", delete=False) as f:
            f.write(body)
            tmp = f.name
        cmd += ["-m", "POST", "-T", "application/json", "-D", tmp]
    try:
        out = subprocess.run(cmd + [url], capture_output=True, text=True, check=True, timeout=seconds + 60).stdout
    finally:
        if tmp:
            os.unlink(tmp)
    rows = list(csv.DictReader(io.StringIO(out)))
    lat = sorted(float(r["response-time"]) * 1000 for r in rows)
    errors = sum(1 for r in rows if not r["status-code"].startswith("2"))
    span = max(float(r["offset"]) + float(r["response-time"]) for r in rows) if rows else seconds
    return Load(len(rows) / span, _pct(lat, 50), _pct(lat, 90), _pct(lat, 99), len(rows), errors)


def run_modelport_bench(url: str, body: bytes | None, connections: int, seconds: float) -> Load:
    """modelport's own client (``modelport bench``), in-process."""
    sys.path.insert(0, str(ROOT / "src"))
    from modelport import bench

    result = bench.run(bench.make_target(url, body), duration=seconds, concurrency=connections)
    lat = result.latency_ms()
    return Load(result.rps, lat["median"], lat["p90"], lat["p99"], result.completed, sum(result.errors.values()))


DRIVERS = {"wrk": run_wrk, "hey": run_hey, "modelport": run_modelport_bench}


def _pct(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    k = (len(sorted_values) - 1) * q / 100.0
    lo, hi = int(k), min(int(k) + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (k - lo)


def median(values: Sequence[float]) -> float:
    clean = [v for v in values if v == v]
    return statistics.median(clean) if clean else float("nan")


def tool_version(name: str) -> str:
    path = shutil.which(name)
    if not path:
        return "not installed"
    out = subprocess.run(["dpkg-query", "-W", "-f=${Version}", name], capture_output=True, text=True)
    return out.stdout.strip() or "unknown"


def machine() -> str:
    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = os.getloadavg()
    return f"{os.cpu_count()} cores ({cpu}), load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} at start"
