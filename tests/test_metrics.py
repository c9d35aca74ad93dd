"""Prometheus metrics: in-process rendering, several workers, and a real Prometheus scraping us."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from modelport.observability.hotmetrics import SNAPSHOT_EVERY_S
from modelport.observability.metrics import METRIC_NAMES, Metrics
from modelport.observability.observe import RequestRecord
from modelport.protocols.rest.app import ModelportApp, ServerOptions
from modelport.serving.repository import Repository
from tests.conftest import free_port
from tests.obs_helpers import build_small_repository, require_tool, scrape, v2_body, wait_for
from tests.serving import children, run_server


@pytest.fixture(scope="module")
def repo_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_small_repository(tmp_path_factory.mktemp("metrics-repo"))


def _record(status: int = 200, model: str | None = "diabetes", version: int | None = 2) -> RequestRecord:
    return RequestRecord(
        request_id="r1",
        method="POST",
        path="/v2/models/diabetes/infer",
        protocol="v2",
        model=model,
        version=version,
        status=status,
        started=time.time(),
        duration=0.003,
        inputs=None,
        outputs=None,
        error=None,
    )


def _text(metrics: Metrics) -> str:
    return metrics.render().decode()


def test_request_counter_and_histogram_by_labels() -> None:
    metrics = Metrics()
    for _ in range(3):
        metrics.observe(_record())
    metrics.observe(_record(status=400))
    text = _text(metrics)
    assert 'modelport_requests_total{model="diabetes",protocol="v2",status="200",version="2"} 3.0' in text
    assert 'modelport_requests_total{model="diabetes",protocol="v2",status="400",version="2"} 1.0' in text
    assert 'modelport_request_duration_seconds_count{model="diabetes",protocol="v2",version="2"} 4.0' in text
    assert 'modelport_request_duration_seconds_bucket{le="0.005",model="diabetes",protocol="v2",version="2"} 4.0' in (
        text
    )
    assert "_created" not in text


def test_requests_without_a_model_have_empty_labels() -> None:
    metrics = Metrics()
    metrics.observe(_record(status=404, model=None, version=None))
    assert 'modelport_requests_total{model="",protocol="v2",status="404",version=""} 1.0' in _text(metrics)


def test_observe_inference_counts_model_calls_and_rows() -> None:
    metrics = Metrics()
    metrics.observe_inference("diabetes", 1, 0.0004, 16)
    metrics.observe_inference("diabetes", 1, 0.0004, 3)
    text = _text(metrics)
    assert 'modelport_inference_duration_seconds_count{model="diabetes",version="1"} 2.0' in text
    assert 'modelport_batch_size_bucket{le="4.0",model="diabetes",version="1"} 1.0' in text
    assert 'modelport_batch_size_sum{model="diabetes",version="1"} 19.0' in text


def test_two_servers_in_one_process_count_their_own_model_calls(repo_dir: Path) -> None:
    """No global "latest instance wins": each app's data plane reports to the Metrics it was given."""
    repository = Repository(str(repo_dir)).load()
    first, second = Metrics(), Metrics()
    app_one = ModelportApp(repository, ServerOptions(metrics=first, observers=[first]))
    ModelportApp(repository, ServerOptions(metrics=second, observers=[second]))  # made last
    app_one.plane.on_inference("diabetes", 1, 0.001, 5)  # type: ignore[misc]
    assert 'modelport_batch_size_sum{model="diabetes",version="1"} 5.0' in _text(first)
    assert "modelport_batch_size_sum" not in _text(second)


def test_model_state_and_load_time_from_the_repository(repo_dir: Path) -> None:
    metrics = Metrics()
    metrics.watch(Repository(str(repo_dir)).load())
    text = _text(metrics)
    assert 'modelport_model_state{model="diabetes",state="AVAILABLE",version="2"} 1.0' in text
    assert 'modelport_model_state{model="diabetes",state="FAILED",version="2"} 0.0' in text
    assert 'modelport_model_state{model="broken",state="FAILED",version="1"} 1.0' in text
    assert 'modelport_model_state{model="broken",state="AVAILABLE",version="1"} 0.0' in text
    assert 'modelport_model_load_seconds{model="diabetes",version="1"}' in text


def test_every_exported_name_is_listed() -> None:
    from modelport.observability import faults

    metrics = Metrics()
    metrics.observe(_record())
    metrics.observe_inference("m", 1, 0.1, 1)
    for kind, (_, _, labels) in faults.FAULTS.items():  # counted per process, shown by every store
        faults.count(kind, *("m" for _ in labels))
    from prometheus_client.parser import text_string_to_metric_families

    names = {f.name for f in text_string_to_metric_families(_text(metrics))}
    listed = {n.removesuffix("_total") for n in METRIC_NAMES}
    assert names == listed


async def test_metrics_route_in_process(repo_dir: Path) -> None:
    repository = Repository(str(repo_dir)).load()
    metrics = Metrics()
    app = ModelportApp(repository, ServerOptions(metrics=metrics, observers=[metrics]))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        ok = await client.post("/v2/models/diabetes/versions/1/infer", json=v2_body(4))
        assert ok.status_code == 200
        bad = await client.post("/v2/models/diabetes/infer", json={"inputs": []})
        assert bad.status_code == 400
        page = await client.get("/metrics")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/plain; version=0.0.4")
    text = page.text
    assert 'modelport_requests_total{model="diabetes",protocol="v2",status="200",version="1"} 1.0' in text
    assert 'modelport_requests_total{model="diabetes",protocol="v2",status="400",version="2"} 1.0' in text
    assert 'modelport_batch_size_sum{model="diabetes",version="1"} 4.0' in text
    # the scrape itself is the one request in flight while the page renders
    assert "modelport_requests_in_flight 1.0" in text
    assert "\nmodelport_payload_log_queue_depth 0.0\n" in text


async def test_metrics_off_answers_404_with_the_reason(repo_dir: Path) -> None:
    app = ModelportApp(Repository(str(repo_dir)).load(), ServerOptions())
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        page = await client.get("/metrics")
    assert page.status_code == 404
    assert page.json() == {"error": "metrics are off; start the server without --no-metrics"}


def _requests_total(samples: dict[str, float], status: str = "200") -> float:
    return sum(
        v
        for k, v in samples.items()
        if k.startswith("modelport_requests_total{") and 'model="diabetes"' in k and f'status="{status}"' in k
    )


@pytest.mark.slow
def test_counts_are_summed_across_workers(repo_dir: Path) -> None:
    with run_server(repo_dir, "--workers", "2", "--no-access-log") as server:
        with httpx.Client(base_url=server.url) as client:
            for _ in range(40):  # new connections: the kernel spreads them over both workers
                with httpx.Client(base_url=server.url) as one:
                    assert one.post("/v2/models/diabetes/infer", json=v2_body()).status_code == 200
            # each worker shares its request counts every SNAPSHOT_EVERY_S; after that, every scrape agrees
            wait_for(lambda: _requests_total(scrape(server.url)) == 40.0, timeout=10 * SNAPSHOT_EVERY_S)
            time.sleep(2 * SNAPSHOT_EVERY_S)
            pages = [scrape(server.url) for _ in range(6)]
            assert client.get("/v2/health/live").status_code == 200
    # whichever worker answered the scrape, it reports both workers' requests
    assert [_requests_total(p) for p in pages] == [40.0] * 6
    assert all(p['modelport_model_state{model="broken",state="FAILED",version="1"}'] == 1.0 for p in pages)
    assert all(p['modelport_batch_size_count{model="diabetes",version="2"}'] == 40.0 for p in pages)


@pytest.mark.slow
def test_no_metrics_flag(repo_dir: Path) -> None:
    with run_server(repo_dir / "diabetes", "--no-metrics") as server:
        page = httpx.get(server.url + "/metrics")
    assert page.status_code == 404
    assert page.json()["error"] == "metrics are off; start the server without --no-metrics"


@pytest.mark.slow
def test_a_real_prometheus_scrapes_the_request_counter(repo_dir: Path, tmp_path: Path) -> None:
    prometheus = require_tool("prometheus")
    with run_server(repo_dir, "--workers", "2", "--no-access-log") as server:
        for _ in range(7):
            assert httpx.post(server.url + "/v2/models/diabetes/infer", json=v2_body()).status_code == 200
        config = tmp_path / "prometheus.yml"
        config.write_text(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
            "scrape_configs:\n"
            "  - job_name: modelport\n"
            f"    static_configs:\n      - targets: ['127.0.0.1:{server.port}']\n"
        )
        port = free_port()
        log = (tmp_path / "prometheus.log").open("wb")
        proc = subprocess.Popen(
            [
                prometheus,
                f"--config.file={config}",
                f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{port}",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:

            def counted() -> float:
                if proc.poll() is not None:
                    raise AssertionError(f"prometheus exited: {(tmp_path / 'prometheus.log').read_text()}")
                try:
                    answer = httpx.get(
                        f"http://127.0.0.1:{port}/api/v1/query",
                        params={"query": 'sum(modelport_requests_total{model="diabetes",status="200"})'},
                        timeout=5,
                    ).json()
                except (httpx.HTTPError, ValueError):  # Prometheus still starting: 503 or a non-JSON answer
                    return 0.0
                results = answer.get("data", {}).get("result", [])
                return float(results[0]["value"][1]) if results else 0.0

            assert wait_for(lambda: counted() >= 7, timeout=90) is True
            assert counted() == 7.0
            series = httpx.get(
                f"http://127.0.0.1:{port}/api/v1/query", params={"query": "modelport_requests_total"}
            ).json()
            labels = [r["metric"] for r in series["data"]["result"] if r["metric"].get("model") == "diabetes"]
            assert labels == [
                {
                    "__name__": "modelport_requests_total",
                    "instance": f"127.0.0.1:{server.port}",
                    "job": "modelport",
                    "model": "diabetes",
                    "protocol": "v2",
                    "status": "200",
                    "version": "2",
                }
            ]
        finally:
            proc.terminate()
            proc.wait(timeout=30)
            log.close()


@pytest.mark.slow
def test_workers_share_a_temporary_metrics_dir_removed_on_exit(repo_dir: Path, tmp_path: Path) -> None:
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    with run_server(repo_dir / "diabetes", "--workers", "2", env={"TMPDIR": str(tmp)}) as server:
        assert httpx.post(server.url + "/v2/models/diabetes/infer", json=v2_body()).status_code == 200
        made = list(tmp.glob("modelport-metrics-*"))
        assert len(made) == 1
        wait_for(lambda: len(list(made[0].glob("requests-*.json"))) == 2, timeout=10 * SNAPSHOT_EVERY_S)
        server.process.send_signal(signal.SIGTERM)
        assert server.process.wait(timeout=60) == 0
    assert not made[0].exists()


@pytest.mark.slow
def test_counters_never_go_backwards_when_a_worker_is_replaced(repo_dir: Path) -> None:
    with run_server(repo_dir, "--workers", "2", "--no-access-log") as server:
        for _ in range(30):  # new connections: both workers answer some
            with httpx.Client(base_url=server.url) as one:
                assert one.post("/v2/models/diabetes/infer", json=v2_body()).status_code == 200
        wait_for(lambda: _requests_total(scrape(server.url)) == 30.0, timeout=10 * SNAPSHOT_EVERY_S)
        workers = children(server.process.pid)
        assert len(workers) == 2
        os.kill(workers[0], signal.SIGKILL)  # its counts must survive it
        seen = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            now = children(server.process.pid)
            try:
                seen.append(_requests_total(scrape(server.url)))
            except httpx.HTTPError:
                pass
            if len(now) == 2 and workers[0] not in now and len(seen) >= 5:
                break
            time.sleep(0.1)
        for _ in range(10):
            with httpx.Client(base_url=server.url) as one:
                assert one.post("/v2/models/diabetes/infer", json=v2_body()).status_code == 200
        wait_for(lambda: _requests_total(scrape(server.url)) == 40.0, timeout=10 * SNAPSHOT_EVERY_S)
        after = [_requests_total(scrape(server.url)) for _ in range(6)]
    assert seen and min(seen) == 30.0, seen  # the dead worker's requests still count
    assert after == [40.0] * 6
