"""``--workers N``: granian forks the workers after the one load when the loaded models need no framework;
fresh interpreters that load for themselves otherwise. Never a re-execution, never an environment switch."""

from __future__ import annotations

import os
import shutil
import signal
import time
from pathlib import Path

import httpx
import pytest

from tests.serving import children, run_server

ROOT = Path(__file__).resolve().parents[2]
BODY = {"inputs": [{"name": "input", "datatype": "FP64", "shape": [1, 30], "data": [1.0] * 30}]}
INFER = "/v2/models/breast_cancer/infer"


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
@pytest.mark.parametrize("cache", ["cold", "warm"])
def test_compiled_models_are_forked_after_the_load_without_scikit_learn_anywhere(
    repo: Path, tmp_path: Path, cache: str
) -> None:
    """A trial load in a short-lived child fills the compile cache (importing scikit-learn there only);
    the main process then loads from the cache, without the framework, and forks the workers."""
    env = {"MODELPORT_COMPILE_CACHE": str(tmp_path / "cache")}
    if cache == "warm":
        with run_server(repo, env=env):
            pass
    with run_server(repo, "--workers", "2", env=env) as server:
        first = httpx.post(server.url + INFER, json=BODY)
        assert first.status_code == 200
        log = server.log()
        assert "forking 2 workers after the load" in log, log
        assert "fresh interpreters" not in log
        workers = children(server.process.pid)
        assert len(workers) == 2  # the trial child is gone
        for pid in [server.process.pid, *workers]:
            assert "/sklearn/" not in _maps(pid), f"process {pid} loaded scikit-learn's extensions"
        # every worker answers, with the native model's numbers
        for _ in range(20):
            with httpx.Client() as fresh:  # a new connection each time: the kernel spreads them
                assert fresh.post(server.url + INFER, json=BODY).json()["outputs"] == first.json()["outputs"]
        server.process.send_signal(signal.SIGTERM)
        assert server.process.wait(timeout=60) == 0, server.log()
    assert list((tmp_path / "cache").glob("*.pkl")), "the compile cache was filled"
    assert "re-execut" not in log


@pytest.mark.slow
def test_a_worker_that_dies_is_replaced(repo: Path, tmp_path: Path) -> None:
    env = {"MODELPORT_COMPILE_CACHE": str(tmp_path / "cache")}
    with run_server(repo, env=env):  # fill the cache
        pass
    with run_server(repo, "--workers", "2", env=env) as server:
        assert "forking 2 workers after the load" in server.log()
        workers = children(server.process.pid)
        assert len(workers) == 2
        os.kill(workers[0], signal.SIGKILL)
        _wait(
            lambda: len(children(server.process.pid)) == 2 and workers[0] not in children(server.process.pid),
            "a replacement worker",
        )
        for _ in range(10):
            with httpx.Client() as fresh:
                assert fresh.post(server.url + INFER, json=BODY).status_code == 200


@pytest.mark.slow
def test_a_model_that_needs_its_framework_gets_fresh_workers_that_answer(tmp_path: Path) -> None:
    import joblib
    from sklearn.datasets import load_iris
    from sklearn.neighbors import KNeighborsClassifier

    X, y = load_iris(return_X_y=True)
    (tmp_path / "models" / "knn").mkdir(parents=True)
    joblib.dump(KNeighborsClassifier().fit(X, y), tmp_path / "models" / "knn" / "model.joblib")  # no kernel
    env = {"MODELPORT_COMPILE_CACHE": str(tmp_path / "cache")}
    body = {"inputs": [{"name": "input", "datatype": "FP64", "shape": [1, 4], "data": [5.1, 3.5, 1.4, 0.2]}]}
    with run_server(tmp_path / "models", "--workers", "2", env=env) as server:
        answers = []
        for _ in range(10):
            with httpx.Client() as fresh:
                answers.append(fresh.post(server.url + "/v2/models/knn/infer", json=body))
        log = server.log()
        main = _maps(server.process.pid)
    assert "/sklearn/" not in main, "the main process imported scikit-learn (only the trial load and workers may)"
    assert all(a.status_code == 200 for a in answers), answers[0].text
    assert all(a.json() == answers[0].json() for a in answers)
    assert "workers start as fresh interpreters and load the repository themselves: the loaded models use " in log
    assert "forking" not in log


@pytest.mark.slow
def test_an_onnx_model_is_never_served_from_a_fork_of_the_process_that_opened_its_session(tmp_path: Path) -> None:
    """onnxruntime's session threads do not survive a fork: the workers must open their own sessions."""
    (tmp_path / "models" / "bc").mkdir(parents=True)
    shutil.copy(ROOT / "examples/models/breast_cancer_onnx/model.onnx", tmp_path / "models/bc/model.onnx")
    with run_server(tmp_path / "models", "--workers", "2", "--no-compile") as server:
        answers = []
        for _ in range(10):
            with httpx.Client(timeout=30) as fresh:  # new connections: both workers answer
                answers.append(fresh.post(server.url + "/v2/models/bc/infer", json=BODY))
        log = server.log()
        main = _maps(server.process.pid)
    assert "onnxruntime" not in main, "the main process opened an onnxruntime session"
    assert all(a.status_code == 200 for a in answers), answers[0].text
    assert all(a.json()["outputs"] == answers[0].json()["outputs"] for a in answers)
    assert "workers start as fresh interpreters and load the repository themselves: the loaded models use " in log
    assert "onnxruntime" in log.split("the loaded models use ")[1].splitlines()[0]
    assert "forking" not in log
