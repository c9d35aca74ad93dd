"""Shared fixtures: a local SparkSession (started once) and free loopback ports."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from typing import Any

import pytest


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
