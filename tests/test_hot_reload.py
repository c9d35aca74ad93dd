"""Hot reload against a real ``modelport serve``: the poller adds, retries, drains and removes versions."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.serving import run_server
from tests.versioned import add_version, remove_version, v2_body

pytestmark = pytest.mark.slow

ADMIN = {"authorization": "Bearer adm"}


@pytest.fixture
def logs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the server's log goes: a temporary folder of its own (tmp_path is often the repository)."""
    return tmp_path_factory.mktemp("serve-log")


def wait_for(condition: Callable[[], bool], what: str, limit: float = 60.0) -> None:
    """Poll until ``condition`` holds; the limit only stops a broken test from hanging."""
    deadline = time.monotonic() + limit
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.05)


def _answer(url: str, headers: dict[str, str] | None = None) -> str:
    r = httpx.post(f"{url}/v2/models/m/infer", json=v2_body(), headers=headers, timeout=10)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["outputs"][0]["data"] == [float(body["model_version"])]
    assert r.headers["x-model-version"] == body["model_version"]
    return str(body["model_version"])


def _index(url: str) -> list[dict[str, str]]:
    r = httpx.post(f"{url}/v2/repository/index", headers=ADMIN, timeout=10)
    assert r.status_code == 200, r.text
    return list(r.json())


def test_poller_adds_retries_drains_and_removes(tmp_path: Path, logs: Path) -> None:
    model = tmp_path / "m"
    add_version(model, 1)
    with run_server(tmp_path, "--poll-seconds", "0.2", "--admin-token", "adm", log_dir=logs) as server:
        url = server.url
        assert _answer(url) == "1"

        add_version(model, 2)
        wait_for(lambda: _answer(url) == "2", "version 2 to take traffic")
        meta = httpx.get(f"{url}/v2/models/m").json()
        assert meta["versions"] == ["1", "2"]
        assert [s["state"] for s in meta["version_states"]] == ["AVAILABLE", "AVAILABLE"]

        add_version(model, 3, broken=True)
        wait_for(lambda: any(r["version"] == "3" for r in _index(url)), "version 3 to be tried")
        row = [r for r in _index(url) if r["version"] == "3"][0]
        assert row["state"] == "FAILED"
        assert row["reason"].startswith(f"{model}/3/model.joblib: not a readable joblib/pickle file")
        assert {_answer(url) for _ in range(20)} == {"2"}  # the old version keeps serving
        ready = httpx.get(f"{url}/v2/models/m/versions/3/ready")
        assert ready.status_code == 400

        remove_version(model, 2)
        wait_for(lambda: [r["version"] for r in _index(url)] == ["1", "3"], "version 2 to be unloaded")
        assert {_answer(url) for _ in range(20)} == {"1"}
        pinned = httpx.post(f"{url}/v2/models/m/versions/2/infer", json=v2_body())
        assert pinned.status_code == 404
        assert pinned.json() == {"error": "model 'm' has no version 2; versions: 1, 3"}
    log = server.log()
    assert "model m version 2: AVAILABLE" in log and "model m version 2 unloaded" in log


def test_each_worker_process_reloads_itself(tmp_path: Path, logs: Path) -> None:
    model = tmp_path / "m"
    add_version(model, 1)
    with run_server(tmp_path, "--workers", "2", "--poll-seconds", "0.2", log_dir=logs) as server:
        add_version(model, 2)

        def all_on_two() -> bool:
            # A fresh connection per request lets the kernel spread them over both workers.
            return all(_answer(server.url, {"connection": "close"}) == "2" for _ in range(40))

        wait_for(all_on_two, "both workers to serve version 2")


def test_admin_token_from_the_environment_is_separate_from_the_inference_token(tmp_path: Path, logs: Path) -> None:
    add_version(tmp_path / "m", 1)
    env = {"MODELPORT_ADMIN_TOKEN": "adm"}
    with run_server(tmp_path, "--auth-token", "inf", "--poll-seconds", "0", env=env, log_dir=logs) as server:
        url = server.url
        wrong = httpx.post(f"{url}/v2/repository/models/m/unload", headers={"authorization": "Bearer inf"})
        assert wrong.status_code == 401
        assert wrong.json() == {"error": "wrong admin bearer token: send 'Authorization: Bearer <admin token>'"}
        assert httpx.post(f"{url}/v2/repository/models/m/unload", headers=ADMIN).status_code == 200
        gone = httpx.post(f"{url}/v2/models/m/infer", json=v2_body(), headers={"authorization": "Bearer inf"})
        assert gone.status_code == 503
        not_admin = httpx.post(f"{url}/v2/models/m/infer", json=v2_body(), headers=ADMIN)
        assert not_admin.status_code == 401
        assert httpx.post(f"{url}/v2/repository/models/m/load", headers=ADMIN).status_code == 200
        assert _answer(url, {"authorization": "Bearer inf"}) == "1"


def test_bad_traffic_config_stops_the_server_at_start(tmp_path: Path) -> None:
    add_version(tmp_path / "m", 1)
    (tmp_path / "m" / "modelport.toml").write_text("[traffic]\nweights = {1 = 0}\n")
    src = str(Path(__file__).resolve().parents[1] / "src")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (src, os.environ.get("PYTHONPATH")) if p)}
    done = subprocess.run(
        [sys.executable, "-m", "modelport.cli", "serve", str(tmp_path), "--port", "0"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1] == (
        f"error: {tmp_path}/m/modelport.toml: [traffic] weights are all 0; give at least one version a positive weight"
    )


def test_poller_follows_an_s3_root(tmp_path: Path, logs: Path) -> None:
    """An s3:// repository on a local moto server: a new version appears, an old one goes."""
    moto_server = pytest.importorskip("moto.server")
    boto3 = pytest.importorskip("boto3")
    pytest.importorskip("s3fs")
    from tests.conftest import free_port

    port = free_port()
    moto = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    moto.start()
    env = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
        "MODELPORT_CACHE": str(tmp_path / "cache"),
    }
    try:
        s3 = boto3.client(
            "s3",
            endpoint_url=env["AWS_ENDPOINT_URL"],
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            region_name="us-east-1",
        )
        s3.create_bucket(Bucket="models")
        local = tmp_path / "local"
        for v in (1, 2):
            add_version(local / "m", v)

        def upload(version: int) -> None:
            path = local / "m" / str(version) / "model.joblib"
            s3.put_object(Bucket="models", Key=f"repo/m/{version}/model.joblib", Body=path.read_bytes())

        upload(1)
        with run_server(
            "s3://models/repo", "--poll-seconds", "0.3", "--admin-token", "adm", env=env, log_dir=logs
        ) as server:
            assert _answer(server.url) == "1"
            upload(2)
            wait_for(lambda: _answer(server.url) == "2", "version 2 from S3")
            s3.delete_object(Bucket="models", Key="repo/m/1/model.joblib")
            wait_for(lambda: [r["version"] for r in _index(server.url)] == ["2"], "version 1 to go")
            assert {_answer(server.url) for _ in range(10)} == {"2"}
    finally:
        moto.stop()


def test_grpc_follows_the_traffic_split_and_sticky_metadata(tmp_path: Path, logs: Path) -> None:
    grpcclient = pytest.importorskip("tritonclient.grpc")
    import numpy as np

    from tests.conftest import free_port
    from tests.versioned import traffic_toml, write_config

    for v in (1, 2):
        add_version(tmp_path / "m", v)
    write_config(tmp_path / "m", traffic_toml({1: 50, 2: 50}, sticky="x-user"))
    port = free_port()
    with run_server(tmp_path, "--grpc-port", str(port), "--poll-seconds", "0", log_dir=logs):
        client = grpcclient.InferenceServerClient(url=f"127.0.0.1:{port}")
        inp = grpcclient.InferInput("input", [1, 2], "FP64")
        inp.set_data_from_numpy(np.array([[0.5, 1.5]]))

        def ask(headers: dict[str, str] | None = None) -> str:
            result = client.infer("m", [inp], headers=headers)
            version = str(result.get_response().model_version)
            assert result.as_numpy("predict").tolist() == [float(version)]
            return version

        assert {ask() for _ in range(60)} == {"1", "2"}
        for user in ("alice", "bob", "carol"):
            assert len({ask({"x-user": user}) for _ in range(10)}) == 1
