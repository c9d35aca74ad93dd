"""Structured access logs: JSON for machines, text on a terminal, request ids end to end."""

from __future__ import annotations

import io
import json
import logging
import os
import re
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from modelport.cli import main
from modelport.core.errors import ConfigError
from modelport.observability.logs import AccessLog, JsonFormatter, TextFormatter, configure_logging, resolve_format
from tests.obs_helpers import access_record, build_small_repository, v2_body, wait_for
from tests.serving import run_server


@pytest.fixture(scope="module")
def repo_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_small_repository(tmp_path_factory.mktemp("logs-repo"))


Captured = tuple[logging.Logger, io.StringIO, "logging.StreamHandler[io.StringIO]"]


@pytest.fixture
def captured() -> Iterator[Captured]:
    logger = logging.getLogger("modelport.access.test")
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    yield logger, stream, handler
    logger.removeHandler(handler)


def test_json_access_line_has_the_request_fields(captured: Captured) -> None:
    logger, stream, handler = captured
    handler.setFormatter(JsonFormatter())
    AccessLog(logger).observe(access_record(status=400, error="model 'diabetes': unknown input 'x'"))
    line = json.loads(stream.getvalue())
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", line.pop("time"))
    assert line == {
        "level": "info",
        "logger": "modelport.access.test",
        "message": "POST /v2/models/diabetes/infer 400 diabetes v2 3.457 ms id=client-7",
        "request_id": "client-7",
        "method": "POST",
        "path": "/v2/models/diabetes/infer",
        "protocol": "v2",
        "model": "diabetes",
        "version": 2,
        "status": 400,
        "latency_ms": 3.457,
        "error": "model 'diabetes': unknown input 'x'",
    }


def test_text_access_line_is_one_readable_line(captured: Captured) -> None:
    logger, stream, handler = captured
    handler.setFormatter(TextFormatter())
    AccessLog(logger).observe(
        access_record(model=None, version=None, path="/v2/health/ready", method="GET", status=503)
    )
    text = stream.getvalue()
    assert text.count("\n") == 1
    assert text.rstrip().endswith("INFO modelport.access.test: GET /v2/health/ready 503 3.457 ms id=client-7")


def test_access_log_respects_the_level(captured: Captured) -> None:
    logger, stream, handler = captured
    handler.setFormatter(JsonFormatter())
    logger.setLevel(logging.WARNING)
    AccessLog(logger).observe(access_record())
    assert stream.getvalue() == ""


def test_json_formatter_keeps_exceptions() -> None:
    try:
        raise ValueError("bad thing")
    except ValueError:
        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed %s", ("here",), exc_info=True)
        import sys

        record.exc_info = sys.exc_info()
    out = json.loads(JsonFormatter().format(record))
    assert out["message"] == "failed here"
    assert out["level"] == "error"
    assert "ValueError: bad thing" in out["exception"]


def test_auto_is_text_on_a_terminal_and_json_otherwise(tmp_path: Path) -> None:
    leader, follower = os.openpty()
    try:
        with os.fdopen(follower, "w", closefd=False) as tty:
            assert resolve_format("auto", tty) == "text"
    finally:
        os.close(leader)
        os.close(follower)
    with (tmp_path / "log.txt").open("w") as file:
        assert resolve_format("auto", file) == "json"
        assert resolve_format("text", file) == "text"
    assert resolve_format("json") == "json"


def test_unknown_format_is_refused() -> None:
    with pytest.raises(ConfigError) as err:
        resolve_format("xml")
    assert err.value.message == "log format 'xml' is not supported; use one of json, text, auto"


def test_cli_refuses_an_unknown_log_format(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["serve", str(tmp_path), "--log-format", "xml"])
    assert result.exit_code == 2
    assert "Invalid value for '--log-format': 'xml' is not one of 'json', 'text', 'auto'." in result.output


def test_configure_logging_puts_one_handler_on_the_root() -> None:
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    try:
        assert configure_logging("warning", "json") == "json"
        assert isinstance(root.handlers[0].formatter, JsonFormatter)
        assert root.level == logging.WARNING
        assert len(root.handlers) == 1
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])


def _access_lines(log: str) -> list[dict[str, object]]:
    out = []
    for line in log.splitlines():
        if line.startswith("{"):
            entry = json.loads(line)
            if entry["logger"] == "modelport.access":
                out.append(entry)
    return out


@pytest.mark.slow
def test_server_writes_json_access_logs_with_request_ids(repo_dir: Path) -> None:
    with run_server(repo_dir / "diabetes", "--log-format", "json") as server:
        given = httpx.post(
            server.url + "/v2/models/diabetes/versions/1/infer", json=v2_body(), headers={"X-Request-ID": "trace-42"}
        )
        generated = httpx.post(server.url + "/v2/models/diabetes/infer", json={"inputs": [{"name": "nope"}]})

        # Access lines are flushed in blocks (every 0.25 s): wait until both requests' lines are out.
        def both() -> list[dict[str, object]]:
            found = [e for e in _access_lines(server.log()) if e["path"] != "/v2/health/live"]
            return found if len(found) >= 2 else []

        lines = wait_for(both)
        log = server.log()
    assert given.status_code == 200
    assert given.headers["x-request-id"] == "trace-42"
    assert generated.status_code == 400
    new_id = generated.headers["x-request-id"]
    assert re.fullmatch(r"[0-9a-f]{32}", new_id)
    first, second = lines[:2]
    assert {k: first[k] for k in ("request_id", "model", "version", "status", "protocol", "method")} == {
        "request_id": "trace-42",
        "model": "diabetes",
        "version": 1,
        "status": 200,
        "protocol": "v2",
        "method": "POST",
    }
    assert isinstance(first["latency_ms"], float)
    assert second["request_id"] == new_id
    assert second["status"] == 400
    assert second["error"] == generated.json()["error"]
    # every line, the server's own included, is JSON
    assert all(line.startswith("{") for line in log.splitlines() if line.strip())


@pytest.mark.slow
def test_text_format_and_no_access_log(repo_dir: Path) -> None:
    with run_server(repo_dir / "diabetes", "--log-format", "text", "--no-access-log") as server:
        assert httpx.post(server.url + "/v2/models/diabetes/infer", json=v2_body()).status_code == 200
        time.sleep(0.5)  # give a (wrong) access line the chance to appear
        log = server.log()
    assert "modelport.access" not in log
    assert "granian.access" not in log  # granian's own access log stays off: modelport.access replaces it
    assert re.search(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} INFO modelport.server: serving ", log, re.M)


def test_generated_request_ids_are_unique_and_a_forked_worker_draws_its_own_prefix() -> None:
    from modelport.observability.observe import new_request_id

    ids = {new_request_id() for _ in range(1000)}
    assert len(ids) == 1000 and all(re.fullmatch(rb"[0-9a-f]{32}", i) for i in ids)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child reports one id and leaves at once
        os.write(write, new_request_id())
        os._exit(0)
    os.waitpid(pid, 0)
    child = os.read(read, 64)
    os.close(read)
    os.close(write)
    assert child[:16] != next(iter(ids))[:16]
