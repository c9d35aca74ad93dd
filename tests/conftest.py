"""Shared fixtures: a local SparkSession (started once), free loopback ports, and the check that
the suite leaves no file behind outside its temporary directories."""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
# Tool caches and the environment, not files a test made; test-artifacts/ holds what tests save on
# purpose for CI to keep (the web page's screenshots) and is git-ignored.
_REPO_SKIP = frozenset(
    {".git", ".venv", "__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache", "test-artifacts"}
)


def _repo_files() -> set[str]:
    found = set()
    for top, dirs, files in os.walk(REPO):
        dirs[:] = [d for d in dirs if d not in _REPO_SKIP and not d.endswith(".egg-info")]
        found.update(os.path.relpath(os.path.join(top, f), REPO) for f in files)
    return found


# Files a library keeps in the temporary directory for the whole process, whoever uses it: onnxruntime
# (1.2x) writes its telemetry session state to TMPDIR/.ses as soon as it creates its environment.
_LIBRARY_STATE = frozenset({".ses"})


# TensorFlow's autograph writes the Python it generates for a traced function to the temporary
# directory and keeps it for the process's life (tracebacks point into it); torch keeps its compiled
# kernels' cache in torchinductor_<user> there.
_LIBRARY_PREFIXES = ("pytest-of-", "__autograph_generated_file", "torchinductor_")


_SESSION_PREFIX = "modelport-tests-"


def _sweep_dead_sessions() -> None:
    """Remove the temporary directories of test sessions that died before their own clean-up (a crash, kill -9)."""
    for old in Path(tempfile.gettempdir()).glob(f"{_SESSION_PREFIX}*"):
        pid = old.name[len(_SESSION_PREFIX) :].split("-", 1)[0]
        if not pid.isdigit() or not Path(f"/proc/{pid}").exists():
            shutil.rmtree(old, ignore_errors=True)


def _left_in(temp: Path) -> list[str]:
    # pytest's own basetemp (tmp_path) lives here too: pytest keeps and prunes it.
    return sorted(
        p.name for p in temp.iterdir() if not p.name.startswith(_LIBRARY_PREFIXES) and p.name not in _LIBRARY_STATE
    )


@pytest.fixture(scope="session", autouse=True)
def leaves_no_files() -> Iterator[None]:
    """Fail the session when tests leave files outside their temporary directories.

    The session gets a temporary directory of its own as TMPDIR (inherited by the servers and
    tools tests start), so whatever is left in it at the end was left by this session, even on a
    machine where other processes write to /tmp at the same time. The repository tree must end
    as it began.
    """
    before_repo = _repo_files()
    _sweep_dead_sessions()
    temp = Path(tempfile.mkdtemp(prefix=f"{_SESSION_PREFIX}{os.getpid()}-"))
    saved = {k: os.environ.get(k) for k in ("TMPDIR", "TEMP", "TMP")}
    for key in saved:
        os.environ[key] = str(temp)
    tempfile.tempdir = None  # gettempdir() reads TMPDIR again
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        tempfile.tempdir = None
        left = _left_in(temp)
        shutil.rmtree(temp, ignore_errors=True)
        new_in_repo = sorted(_repo_files() - before_repo)
    problems = []
    if left:
        problems.append(f"left in the temporary directory: {', '.join(left[:20])}")
    if new_in_repo:
        problems.append(f"left in the repository: {', '.join(new_in_repo[:20])}")
    if problems:
        pytest.fail("the tests left files behind (remove what a test creates):\n" + "\n".join(problems))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session", autouse=True)
def compile_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One fresh compile cache per test session (never the user's ~/.cache), inherited by servers started in tests."""
    path = str(tmp_path_factory.mktemp("compile-cache"))
    before = os.environ.get("MODELPORT_COMPILE_CACHE")
    os.environ["MODELPORT_COMPILE_CACHE"] = path
    yield path
    if before is None:
        os.environ.pop("MODELPORT_COMPILE_CACHE", None)
    else:
        os.environ["MODELPORT_COMPILE_CACHE"] = before


@pytest.fixture(scope="session")
def spark() -> Iterator[Any]:
    """A real local[2] SparkSession, shared by every test that needs Spark."""
    pyspark = pytest.importorskip("pyspark")
    from pyspark.sql import SparkSession

    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")  # loopback only, never the host's interfaces
    os.environ.setdefault("PYSPARK_PYTHON", os.environ.get("PYSPARK_PYTHON", __import__("sys").executable))
    session = (
        SparkSession.builder.master("local[2]")
        .appName("modelport-tests")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    assert pyspark.__version__
    yield session
    session.stop()
