"""Graceful shutdown: SIGTERM drains readiness, finishes in-flight work, flushes the payload log, exits 0."""

from __future__ import annotations

import signal
import threading
from pathlib import Path

import httpx
import joblib
import pytest

from modelport.observability.payload_log import read_payloads
from tests.obs_helpers import SlowModel, build_small_repository, v2_body, wait_for
from tests.serving import run_server


@pytest.fixture(scope="module")
def repo_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_small_repository(tmp_path_factory.mktemp("shutdown-repo"))


class Load:
    """Client threads sending inference requests with unique ids until the server goes away."""

    def __init__(self, url: str, threads: int = 4) -> None:
        self.url = url
        self.ok: list[str] = []
        self.failed: list[str] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, args=(n,), daemon=True) for n in range(threads)]

    def __enter__(self) -> Load:
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=60)

    def _run(self, n: int) -> None:
        i = 0
        errors = 0
        # keep-alive on half the threads, a new connection per request on the others
        client = httpx.Client(base_url=self.url, timeout=30) if n % 2 == 0 else None
        while not self._stop.is_set() and errors < 20:
            rid = f"t{n}-{i}"
            i += 1
            try:
                if client is not None:
                    r = client.post("/v2/models/diabetes/infer", json=v2_body(), headers={"X-Request-ID": rid})
                else:
                    r = httpx.post(
                        self.url + "/v2/models/diabetes/infer", json=v2_body(), headers={"X-Request-ID": rid}
                    )
            except httpx.HTTPError:
                errors += 1
                with self._lock:
                    self.failed.append(rid)
                continue
            with self._lock:
                (self.ok if r.status_code == 200 else self.failed).append(rid)
        if client is not None:
            client.close()

    def count(self) -> int:
        with self._lock:
            return len(self.ok)


@pytest.mark.slow
@pytest.mark.parametrize("workers", [1, 2])
def test_sigterm_under_load_loses_no_acknowledged_request(repo_dir: Path, tmp_path: Path, workers: int) -> None:
    out = tmp_path / "payloads"
    args = ("--workers", str(workers), "--payload-log", str(out), "--no-access-log", "--grace-seconds", "20")
    with run_server(repo_dir, *args) as server:
        with Load(server.url) as load:
            wait_for(lambda: load.count() >= 200, timeout=120)
            server.process.send_signal(signal.SIGTERM)  # the parent only: it must forward to its workers
            code = server.process.wait(timeout=60)
        log = server.log()
    assert code == 0, log
    logged = {r["id"]: r["status"] for r in read_payloads(out).to_pylist()}
    acknowledged = set(load.ok)
    assert len(acknowledged) >= 200
    missing = acknowledged - logged.keys()
    assert not missing, f"{len(missing)} requests answered 200 but not in the payload log, e.g. {sorted(missing)[:5]}"
    assert all(logged[rid] == 200 for rid in acknowledged)
    assert not list(out.glob("*.inprogress")), "a payload file was left unfinished"


@pytest.mark.slow
def test_drain_turns_readiness_off_while_still_serving(repo_dir: Path) -> None:
    with run_server(repo_dir / "diabetes", "--drain-seconds", "4", "--log-format", "text") as server:
        with httpx.Client(base_url=server.url) as client:
            assert client.get("/v2/health/ready").status_code == 200
            server.process.send_signal(signal.SIGTERM)
            wait_for(lambda: client.get("/v2/health/ready").status_code == 503, timeout=10, interval=0.05)
            during = client.post("/v2/models/diabetes/infer", json=v2_body())
            live = client.get("/v2/health/live")
        code = server.process.wait(timeout=60)
        log = server.log()
    assert during.status_code == 200
    assert live.status_code == 200
    assert code == 0, log
    assert "SIGTERM: readiness is now false; stopping in 4.0 s (--drain-seconds)" in log


@pytest.mark.slow
def test_in_flight_request_finishes_before_exit(tmp_path: Path) -> None:
    (tmp_path / "repo" / "slow").mkdir(parents=True)
    joblib.dump(SlowModel(2.0), tmp_path / "repo" / "slow" / "model.joblib")
    marker = tmp_path / "predicting"
    out = tmp_path / "payloads"
    env = {"MODELPORT_TEST_MARKER": str(marker)}
    result: dict[str, httpx.Response] = {}
    body = {"inputs": [{"name": "input", "shape": [1, 2], "datatype": "FP64", "data": [1.0, 2.0]}]}
    with run_server(tmp_path / "repo", "--payload-log", str(out), env=env) as server:
        marker.unlink(missing_ok=True)  # the load-time warm-up predicted once; wait for the request's own call

        def call() -> None:
            result["r"] = httpx.post(
                server.url + "/v2/models/slow/infer", json=body, headers={"X-Request-ID": "slow-1"}, timeout=60
            )

        caller = threading.Thread(target=call)
        caller.start()
        wait_for(marker.exists, timeout=30, interval=0.02)
        server.process.send_signal(signal.SIGTERM)
        caller.join(timeout=60)
        code = server.process.wait(timeout=60)
        log = server.log()
    assert result["r"].status_code == 200, log
    assert result["r"].json()["outputs"][0]["data"] == [0.0]
    assert code == 0, log
    assert [r["id"] for r in read_payloads(out).to_pylist()] == ["slow-1"]
