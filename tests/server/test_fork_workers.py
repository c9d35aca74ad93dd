"""``--workers N``: fork after the load when the loaded models need no framework, fresh interpreters otherwise."""

from __future__ import annotations

import os
import shutil
import signal
import time
from pathlib import Path

import httpx
import pytest

from tests.serving import run_server

ROOT = Path(__file__).resolve().parents[2]
BODY = {"inputs": [{"name": "input", "datatype": "FP64", "shape": [1, 30], "data": [1.0] * 30}]}
INFER = "/v2/models/breast_cancer/infer"


def _children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        if int(text[text.rindex(")") + 2 :].split()[1]) == pid:
            found.append(int(stat.parent.name))
    return sorted(found)


def _maps(pid: int) -> str:
    return Path(f"/proc/{pid}/maps").read_text()


def _wait(check: object, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


@pytest.fixture()
def repo(tmp_path: Path) -> Path:
    (tmp_path / "models" / "breast_cancer").mkdir(parents=True)
    shutil.copy(ROOT / "examples/models/breast_cancer/model.joblib", tmp_path / "models/breast_cancer/model.joblib")
    return tmp_path / "models"


@pytest.mark.slow
def test_a_cold_cache_loads_once_more_from_the_cache_then_forks_workers_without_scikit_learn(
    repo: Path, tmp_path: Path
) -> None:
    env = {"MODELPORT_COMPILE_CACHE": str(tmp_path / "cache")}
    with run_server(repo, "--workers", "2", env=env) as server:
        assert httpx.post(server.url + INFER, json=BODY).status_code == 200
        log = server.log()
        assert "workers start after one more load, from the compile cache: the loaded models use " in log, log
        assert "sklearn" in log.split("from the compile cache: the loaded models use ")[1].splitlines()[0]
        assert "forking 2 workers after the load" in log, log
        assert len(_children(server.process.pid)) == 2  # the same parent pid: it re-executed itself
    assert list((tmp_path / "cache").glob("*.pkl")), "the first start filled the compile cache"

    with run_server(repo, "--workers", "2", env=env) as server:
        first = httpx.post(server.url + INFER, json=BODY)
        assert first.status_code == 200
        log = server.log()
        assert "forking 2 workers after the load" in log, log
        assert "from the compile cache" in log
        workers = _children(server.process.pid)
        assert len(workers) == 2
        for pid in [server.process.pid, *workers]:
            assert "/sklearn/" not in _maps(pid), f"process {pid} loaded scikit-learn's extensions"
        # every worker answers, with the native model's numbers
        for _ in range(20):
            with httpx.Client() as fresh:  # a new connection each time: the kernel spreads them
                again = fresh.post(server.url + INFER, json=BODY)
            assert again.json()["outputs"] == first.json()["outputs"]
        server.process.send_signal(signal.SIGTERM)
        assert server.process.wait(timeout=60) == 0, server.log()


@pytest.mark.slow
def test_a_worker_that_dies_is_replaced(repo: Path, tmp_path: Path) -> None:
    env = {"MODELPORT_COMPILE_CACHE": str(tmp_path / "cache")}
    with run_server(repo, env=env):  # fill the cache
        pass
    with run_server(repo, "--workers", "2", env=env) as server:
        assert "forking 2 workers after the load" in server.log()
        workers = _children(server.process.pid)
        assert len(workers) == 2
        os.kill(workers[0], signal.SIGKILL)
        _wait(lambda: "ended unexpectedly" in server.log(), "the parent to notice")
        _wait(lambda: len(_children(server.process.pid)) == 2, "a replacement worker")
        assert workers[0] not in _children(server.process.pid)
        assert f"worker {workers[0]} ended unexpectedly (exit code -9); starting another" in server.log()
        for _ in range(10):
            with httpx.Client() as fresh:
                assert fresh.post(server.url + INFER, json=BODY).status_code == 200


@pytest.mark.slow
def test_spawn_can_be_forced(repo: Path, tmp_path: Path) -> None:
    env = {"MODELPORT_COMPILE_CACHE": str(tmp_path / "cache"), "MODELPORT_WORKER_START": "spawn"}
    with run_server(repo, env=env):  # fill the cache
        pass
    with run_server(repo, "--workers", "2", env=env) as server:
        assert httpx.post(server.url + INFER, json=BODY).status_code == 200
        log = server.log()
    assert "forking" not in log and "fresh interpreters:" not in log


@pytest.mark.slow
def test_a_repository_that_cannot_fork_is_remembered_so_the_parent_loads_it_only_once(tmp_path: Path) -> None:
    import joblib
    from sklearn.datasets import load_iris
    from sklearn.neighbors import KNeighborsClassifier

    X, y = load_iris(return_X_y=True)
    (tmp_path / "models" / "knn").mkdir(parents=True)
    joblib.dump(KNeighborsClassifier().fit(X, y), tmp_path / "models" / "knn" / "model.joblib")  # no kernel
    env = {"MODELPORT_COMPILE_CACHE": str(tmp_path / "cache")}
    body = {"inputs": [{"name": "input", "datatype": "FP64", "shape": [1, 4], "data": [5.1, 3.5, 1.4, 0.2]}]}
    with run_server(tmp_path / "models", "--workers", "2", env=env) as server:
        answer = httpx.post(server.url + "/v2/models/knn/infer", json=body)
        log = server.log()
    assert answer.status_code == 200
    assert "workers start as fresh interpreters: the loaded models use " in log and "forking" not in log
    with run_server(tmp_path / "models", "--workers", "2", env=env) as server:
        assert httpx.post(server.url + "/v2/models/knn/infer", json=body).json() == answer.json()
        log = server.log()
    first = log.splitlines()[0]
    assert "(remembered from an earlier start)" in first, log  # before anything was loaded: the parent loads nothing
