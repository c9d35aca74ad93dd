"""Faults a real ``modelport serve`` must survive: it keeps serving what it had, and says so in logs and metrics.

- a model file truncated while hot reload reads it (a copy still in progress);
- a disk that fills while the payload log writes (a small tmpfs in a private mount namespace);
- a storage backend that fails mid-download (moto's S3 behind a proxy that cuts responses).
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import joblib
import pytest

from modelport.observability.payload_log import read_payloads
from tests.conftest import free_port
from tests.cutting_proxy import CuttingProxy
from tests.obs_helpers import build_small_repository, scrape, v2_body, wait_for
from tests.serving import run_server
from tests.versioned import ROW, add_version, constant_model

pytestmark = pytest.mark.slow

ADMIN = {"authorization": "Bearer adm"}


def _answer(url: str) -> str:
    r = httpx.post(f"{url}/v2/models/m/infer", json=_row(), timeout=10)
    assert r.status_code == 200, r.text
    return str(r.json()["model_version"])


def _row() -> dict[str, object]:
    return {"inputs": [{"name": "input", "shape": [1, 2], "datatype": "FP64", "data": ROW[0]}]}


def _states(url: str) -> dict[str, str]:
    r = httpx.post(f"{url}/v2/repository/index", headers=ADMIN, timeout=10)
    assert r.status_code == 200, r.text
    return {row["version"]: row["state"] for row in r.json()}


# -- a model file truncated while hot reload reads it ----------------------------------------------------------


def test_a_truncated_model_file_fails_its_version_and_loads_once_whole(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    add_version(root / "m", 1)
    whole = tmp_path / "whole.joblib"
    joblib.dump(constant_model(2.0), whole)
    data = whole.read_bytes()
    with run_server(root, "--poll-seconds", "0.2", "--admin-token", "adm", log_dir=tmp_path) as server:
        url = server.url
        assert _answer(url) == "1"
        (root / "m" / "2").mkdir()
        target = root / "m" / "2" / "model.joblib"
        with target.open("wb") as fh:  # a copy in progress: the poller reads the first half only
            fh.write(data[: len(data) // 2])
        wait_for(lambda: _states(url).get("2") == "FAILED", timeout=60)
        assert {_answer(url) for _ in range(20)} == {"1"}  # the version it had keeps serving
        metrics = scrape(url)
        assert metrics['modelport_model_state{model="m",state="FAILED",version="2"}'] == 1.0
        assert metrics['modelport_model_state{model="m",state="AVAILABLE",version="1"}'] == 1.0
        assert metrics['modelport_model_load_failures_total{model="m"}'] >= 1.0
        wait_for(lambda: "model m version 2 failed to load" in server.log(), timeout=30)
        # The copy completes: the files changed, so the failed version is tried again, and loads.
        with target.open("ab") as fh:
            fh.write(data[len(data) // 2 :])
        wait_for(lambda: _states(url) == {"1": "AVAILABLE", "2": "AVAILABLE"}, timeout=60)
        assert _answer(url) == "2"
        # Truncating a served version's file does not touch the model in memory.
        (root / "m" / "1" / "model.joblib").write_bytes(b"")
        pinned = httpx.post(f"{url}/v2/models/m/versions/1/infer", json=_row(), timeout=10)
        assert pinned.status_code == 200 and pinned.json()["outputs"][0]["data"] == [1.0]


# -- a disk that fills while the payload log writes -----------------------------------------------------------


def _namespace_prefix(disk: Path, size: str) -> list[str]:
    """A command prefix that runs the rest in a private mount namespace with a tmpfs of ``size`` at ``disk``.

    The tmpfs exists only in that namespace (nothing on the host is mounted); the test reaches it
    through ``/proc/PID/root``. Root can make the namespace directly, others through a user namespace.
    """
    unshare = shutil.which("unshare")
    if unshare is None:
        pytest.skip("a full disk needs a tmpfs in a private mount namespace: 'unshare' (util-linux) is not installed")
    script = 'mount -t tmpfs -o size="$1" tmpfs "$2" && shift 2 && exec "$@"'
    tried = []
    for flags in (["--mount", "--propagation", "private"], ["--user", "--map-root-user", "--mount"]):
        prefix = [unshare, *flags, "sh", "-c", script, "sh", size, str(disk)]
        probe = subprocess.run([*prefix, "true"], capture_output=True, text=True, timeout=30)
        if probe.returncode == 0:
            return prefix
        tried.append(f"unshare {' '.join(flags)}: {probe.stderr.strip()}")
    pytest.skip("cannot mount a small tmpfs in a private mount namespace here (" + "; ".join(tried) + ")")


@contextlib.contextmanager
def _serve_on_small_disk(root: Path, disk: Path, size: str, *args: str) -> Iterator[tuple[str, Path, Path]]:
    """``modelport serve`` with ``disk`` a ``size`` tmpfs; yields its URL, the disk as the test sees it, the log."""
    disk.mkdir()
    prefix = _namespace_prefix(disk, size)
    port = free_port()
    log_path = disk.parent / "serve.log"
    src = str(Path(__file__).resolve().parents[1] / "src")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (src, os.environ.get("PYTHONPATH")) if p)}
    cmd = [*prefix, sys.executable, "-m", "modelport.cli", "serve", str(root), "--port", str(port), *args]
    with log_path.open("wb") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:

        def up() -> bool:
            assert proc.poll() is None, log_path.read_text()
            try:
                return httpx.get(url + "/v2/health/ready", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(up, timeout=90)
        yield url, Path(f"/proc/{proc.pid}/root") / disk.relative_to("/"), log_path
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def _fill(path: Path) -> int:
    """Write ``path`` until the filesystem is full; the bytes written."""
    chunk = b"\0" * 65536
    written = 0
    with path.open("wb", buffering=0) as fh:
        while True:
            try:
                written += fh.write(chunk) or 0
            except OSError as exc:
                assert exc.errno == errno.ENOSPC, exc
                break
        for size in (4096, 512, 1):  # the last partial blocks too
            try:
                while True:
                    written += fh.write(b"\0" * size) or 0
            except OSError:
                pass
    return written


def test_a_full_disk_keeps_the_records_and_writing_resumes_when_space_returns(tmp_path: Path) -> None:
    root = build_small_repository(tmp_path / "repo")
    shutil.rmtree(root / "broken")

    def send(prefix: str, n: int) -> list[str]:
        ids = []
        with httpx.Client(base_url=url, timeout=10) as client:
            for i in range(n):
                rid = f"{prefix}-{i}"
                r = client.post("/v2/models/diabetes/infer", json=v2_body(2), headers={"X-Request-ID": rid})
                assert r.status_code == 200, r.text  # the server keeps serving
                ids.append(rid)
        return ids

    disk = tmp_path / "disk"
    with _serve_on_small_disk(root, disk, "256k", "--payload-log", str(disk / "payloads"), "--no-access-log") as (
        url,
        seen,
        log_path,
    ):
        payloads = seen / "payloads"
        before = send("before", 20)
        wait_for(lambda: scrape(url)["modelport_payload_log_records_total{}"] == 20, timeout=30)
        filler = seen / "filler"
        assert _fill(filler) > 0
        during = send("during", 30)
        wait_for(lambda: scrape(url).get("modelport_payload_log_write_errors_total{}", 0) >= 1, timeout=30)
        metrics = scrape(url)
        assert metrics["modelport_payload_log_queue_depth{}"] == 30  # held in memory, not dropped
        assert metrics["modelport_payload_log_records_total{}"] == 20
        wait_for(lambda: "payload log: cannot write to" in log_path.read_text(), timeout=30)
        # What was on disk before it filled is still whole and readable.
        assert sorted(r["id"] for r in read_payloads(payloads).to_pylist()) == sorted(before)
        filler.unlink()  # space returns
        wait_for(lambda: scrape(url)["modelport_payload_log_queue_depth{}"] == 0, timeout=30)
        after = send("after", 10)
        wait_for(lambda: scrape(url)["modelport_payload_log_records_total{}"] == 60, timeout=30)
        wait_for(lambda: "payload log: writing to" in log_path.read_text(), timeout=30)
        rows = read_payloads(payloads).to_pylist()
        assert sorted(r["id"] for r in rows) == sorted(before + during + after)
        assert all(r["status"] == 200 for r in rows)


# -- a storage backend that fails mid-download ----------------------------------------------------------------


@pytest.fixture
def s3_behind_proxy(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, CuttingProxy, object]]:
    moto_server = pytest.importorskip("moto.server")
    s3fs = pytest.importorskip("s3fs")
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(key, value)  # the server subprocess inherits them too
    port = free_port()
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    try:
        fs = s3fs.S3FileSystem(endpoint_url=f"http://127.0.0.1:{port}", skip_instance_cache=True)
        fs.mkdir("faults-bucket")
        with CuttingProxy(port, needle=b"/faults-bucket/repo/m/2/") as proxy:
            yield "s3://faults-bucket/repo", proxy, fs
    finally:
        server.stop()


def test_a_backend_failing_mid_download_keeps_the_loaded_versions(
    tmp_path: Path, s3_behind_proxy: tuple[str, CuttingProxy, object]
) -> None:
    uri, proxy, fs = s3_behind_proxy
    local = tmp_path / "src"
    add_version(local / "m", 1)
    fs.put(str(local) + "/", "faults-bucket/repo/", recursive=True)  # type: ignore[attr-defined]
    env = {
        "FSSPEC_S3_ENDPOINT_URL": f"http://127.0.0.1:{proxy.port}",
        "MODELPORT_CACHE": str(tmp_path / "cache"),
    }
    with run_server(uri, "--poll-seconds", "0.5", "--admin-token", "adm", env=env, log_dir=tmp_path) as server:
        url = server.url
        assert _answer(url) == "1"
        proxy.armed.set()  # from now on every download under m/2/ drops mid-body
        add_version(local / "m", 2)
        (local / "m" / "2" / "weights.bin").write_bytes(os.urandom(256 * 1024))  # big enough to be cut mid-way
        fs.put(str(local / "m" / "2") + "/", "faults-bucket/repo/m/2/", recursive=True)  # type: ignore[attr-defined]
        wait_for(lambda: scrape(url).get("modelport_repository_poll_failures_total{}", 0) >= 1, timeout=120)
        assert proxy.cuts >= 1
        assert {_answer(url) for _ in range(20)} == {"1"}
        assert _states(url) == {"1": "AVAILABLE"}
        wait_for(lambda: f"repository poll of {uri} failed; serving what is loaded" in server.log(), timeout=30)
        assert "the download failed" in server.log()
        # The local copy the server loaded from is the one it had: failed downloads go to a staging folder.
        (copy,) = (tmp_path / "cache").glob("*/repo")
        assert (copy / "m" / "1" / "model.joblib").is_file() and not (copy / "m" / "2").exists()
        proxy.armed.clear()  # the backend recovers: the next poll downloads version 2 whole
        wait_for(lambda: _states(url) == {"1": "AVAILABLE", "2": "AVAILABLE"}, timeout=120)
        assert _answer(url) == "2"
        wait_for(lambda: f"repository poll of {uri} works again" in server.log(), timeout=30)
        assert (copy / "m" / "2" / "weights.bin").stat().st_size == 256 * 1024
        assert not list(copy.parent.glob(".*")), "a download left its staging folder behind"
