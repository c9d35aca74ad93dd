"""The payload log: Parquet files written in the background, rolled, read back by the CLI."""

from __future__ import annotations

import json
import os
import signal
import stat
import time
from pathlib import Path

import httpx
import numpy as np
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from modelport.cli import main
from modelport.core.errors import ConfigError
from modelport.observability.observe import RequestRecord
from modelport.observability.payload_log import COLUMNS, PayloadLog, read_payloads
from tests.obs_helpers import build_small_repository, v2_body, wait_for
from tests.serving import run_server


@pytest.fixture(scope="module")
def repo_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_small_repository(tmp_path_factory.mktemp("payload-repo"))


def _record(i: int, *, protocol: str = "v2", status: int = 200, model: str = "wine") -> RequestRecord:
    return RequestRecord(
        request_id=f"req-{i:03d}",
        method="POST",
        path=f"/v2/models/{model}/infer",
        protocol=protocol,
        model=model,
        version=1,
        status=status,
        started=1_700_000_000.0 + i,
        duration=0.002,
        inputs={"x": np.array([[i, 2.5]]), "text": np.array(["good", "bad"], dtype=object)},
        outputs={"label": np.array([i % 3], dtype=np.int64)} if status == 200 else None,
        error=None if status == 200 else "model 'wine': bad input",
    )


def test_records_round_trip(tmp_path: Path) -> None:
    depth: list[int] = []
    log = PayloadLog(tmp_path, on_depth=depth.append, flush_seconds=0.05)
    for i in range(5):
        log.observe(_record(i))
    log.observe(_record(5, status=400))
    log.observe(_record(6, protocol="other"))  # metadata, health: not inference
    log.close()
    table = read_payloads(tmp_path)
    assert table.column_names == list(COLUMNS)
    rows = table.to_pylist()
    assert [r["id"] for r in rows] == [f"req-{i:03d}" for i in range(6)]
    assert rows[0]["time"].timestamp() == 1_700_000_000.0
    assert rows[2]["model"] == "wine" and rows[2]["version"] == 1 and rows[2]["status"] == 200
    assert json.loads(rows[2]["inputs"]) == {"x": [[2.0, 2.5]], "text": ["good", "bad"]}
    assert json.loads(rows[2]["outputs"]) == {"label": [2]}
    assert rows[5]["status"] == 400 and rows[5]["outputs"] is None
    assert rows[5]["error"] == "model 'wine': bad input"
    assert sum(depth) == 0 and max(depth) == 1
    assert log.written == 6
    # finished files only: nothing left in progress
    assert not list(tmp_path.glob("*.inprogress"))


def test_a_chunk_that_cannot_be_encoded_is_dropped_alone_and_the_depth_comes_back_to_zero(tmp_path: Path) -> None:
    """Records are encoded 10,000 at a time: a bad record drops its own chunk, the chunks before it are written."""
    depth: list[int] = []
    log = PayloadLog(tmp_path, on_depth=depth.append, flush_seconds=3600)  # one flush, at close
    for i in range(10_005):
        record = _record(i)
        if i == 10_002:
            record.version = "two"  # type: ignore[assignment]  # not an int64: the second chunk fails
        log.observe(record)
    log.close()
    assert log.written == 10_000
    assert len(read_payloads(tmp_path)) == 10_000
    assert sum(depth) == 0 and min(depth) < 0  # never below zero in total: each record leaves once


def test_files_are_named_by_pid_and_roll_by_size(tmp_path: Path) -> None:
    log = PayloadLog(tmp_path, max_bytes=1, flush_seconds=0.05)
    for i in range(3):
        log.observe(_record(i))
        deadline = time.monotonic() + 30
        while log.written <= i and time.monotonic() < deadline:  # one write, one file
            time.sleep(0.01)
    log.close()
    files = sorted(tmp_path.glob("*.parquet"))
    assert len(files) == 3
    assert all(f.name.startswith(f"payloads-{os.getpid()}-") for f in files)
    assert [pq.read_metadata(f).num_rows for f in files] == [1, 1, 1]
    assert read_payloads(tmp_path).num_rows == 3


def test_files_roll_by_age(tmp_path: Path) -> None:
    log = PayloadLog(tmp_path, max_seconds=0.2, flush_seconds=0.05)
    log.observe(_record(0))
    deadline = time.monotonic() + 30
    while not list(tmp_path.glob("*.parquet")) and time.monotonic() < deadline:
        time.sleep(0.05)
    finished = list(tmp_path.glob("*.parquet"))  # closed by age while the log is still open
    log.observe(_record(1))
    log.close()
    assert len(finished) == 1
    assert len(list(tmp_path.glob("*.parquet"))) == 2


def test_records_after_close_are_dropped_and_close_is_idempotent(tmp_path: Path) -> None:
    log = PayloadLog(tmp_path)
    log.close()
    log.observe(_record(0))
    log.close()
    assert read_payloads(tmp_path).num_rows == 0


def test_bad_settings_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        PayloadLog(tmp_path, max_bytes=0)
    assert err.value.message == (
        "payload log: max_bytes (0), max_seconds (3600.0) and flush_seconds (1.0) must be positive"
    )
    (tmp_path / "file").write_text("x")
    with pytest.raises(ConfigError) as err2:
        PayloadLog(tmp_path / "file")
    assert err2.value.message.startswith(f"payload log directory {tmp_path / 'file'}: ")


def test_reading_a_missing_directory_says_so(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        read_payloads(tmp_path / "nowhere")
    assert err.value.message == f"{tmp_path / 'nowhere'}: not a payload-log directory (no such directory)"


def _filled(tmp_path: Path) -> Path:
    log = PayloadLog(tmp_path, flush_seconds=0.05)
    for i in range(4):
        log.observe(_record(i, model="wine" if i % 2 == 0 else "iris"))
    log.close()
    return tmp_path


def test_cli_prints_a_table(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["payloads", str(_filled(tmp_path))])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split() == ["time", "id", "model", "version", "status", "latency_ms", "inputs", "outputs"]
    assert lines[1].split()[1:6] == ["req-000", "wine", "1", "200", "2.00"]
    assert lines[1].split()[-1] == '{"label":[0]}'
    assert lines[-1] == "4 requests"


def test_cli_json_filter_and_limit(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["payloads", str(_filled(tmp_path)), "--json", "--model", "wine", "--limit", "1"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert len(rows) == 1
    assert rows[0] == {
        "id": "req-002",
        "time": "2023-11-14T22:13:22+00:00",
        "model": "wine",
        "version": 1,
        "protocol": "v2",
        "status": 200,
        "latency_ms": 2.0,
        "error": None,
        "inputs": {"x": [[2.0, 2.5]], "text": ["good", "bad"]},
        "outputs": {"label": [2]},
    }


def test_cli_on_an_empty_directory(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["payloads", str(tmp_path)])
    assert result.exit_code == 0
    assert result.output == f"no payloads recorded in {tmp_path}\n"


@pytest.mark.slow
def test_server_records_v1_and_v2_traffic_per_worker(repo_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "payloads"
    ids = []
    with run_server(
        repo_dir, "--workers", "2", "--payload-log", str(out), "--no-access-log", log_dir=tmp_path
    ) as server:
        for i in range(30):
            with httpx.Client(base_url=server.url) as one:  # new connections reach both workers
                rid = f"v2-{i}"
                assert (
                    one.post("/v2/models/diabetes/infer", json=v2_body(2), headers={"X-Request-ID": rid}).status_code
                    == 200
                )
                ids.append(rid)
        v1 = httpx.post(
            server.url + "/v1/models/diabetes/versions/1:predict",
            json={"instances": [v2_body()["inputs"][0]["data"]]},
            headers={"X-Request-ID": "v1-0"},
        )
        assert v1.status_code == 200
        bad = httpx.post(server.url + "/v2/models/diabetes/infer", json={"inputs": []}, headers={"X-Request-ID": "bad"})
        assert bad.status_code == 400
        assert httpx.get(server.url + "/v2/models/diabetes").status_code == 200  # metadata: not logged
        parent = server.process.pid
    rows = {r["id"]: r for r in read_payloads(out).to_pylist()}
    assert set(rows) == {*ids, "v1-0", "bad"}
    assert rows["v1-0"]["protocol"] == "v1" and rows["v1-0"]["version"] == 1
    assert json.loads(rows["v1-0"]["outputs"])["predict"] == pytest.approx(v1.json()["predictions"])
    assert json.loads(rows["v2-3"]["inputs"]) == {"input": [v2_body()["inputs"][0]["data"]] * 2}
    assert rows["bad"]["status"] == 400 and rows["bad"]["error"] == bad.json()["error"]
    pids = {f.name.split("-")[1] for f in out.glob("*.parquet")}
    # each worker writes its own files, named by its pid; the parent process writes none
    assert pids and all(p.isdigit() for p in pids)
    assert str(parent) not in pids


# -- crash safety and file modes ----------------------------------------------------------------------------------


def _wait_written(log: PayloadLog, n: int) -> None:
    deadline = time.monotonic() + 30
    while log.written < n:
        assert time.monotonic() < deadline, f"only {log.written} of {n} records written"
        time.sleep(0.01)


def test_an_open_file_is_readable_without_closing_it(tmp_path: Path) -> None:
    """What a crash leaves (the writer never closes its file) is readable up to the last flush."""
    log = PayloadLog(tmp_path, flush_seconds=0.05)
    for i in range(3):
        log.observe(_record(i))
    _wait_written(log, 3)
    log.observe(_record(3))
    _wait_written(log, 4)
    (open_file,) = tmp_path.glob("*.arrows.inprogress")
    assert not list(tmp_path.glob("*.parquet"))
    assert [r["id"] for r in read_payloads(tmp_path).to_pylist()] == [f"req-{i:03d}" for i in range(4)]
    # A crash in the middle of a write leaves a torn last message: the whole batches before it still read.
    with open_file.open("ab") as fh:
        fh.write(b"\xff\xff\xff\xff\x40\x01\x00\x00partial")
    assert read_payloads(tmp_path).num_rows == 4
    log.close()


def test_a_stream_left_by_a_dead_writer_is_converted_by_the_next_one(tmp_path: Path) -> None:
    log = PayloadLog(tmp_path, flush_seconds=0.05)
    for i in range(3):
        log.observe(_record(i))
    _wait_written(log, 3)
    (left,) = tmp_path.glob("*.arrows.inprogress")
    dead = left.with_name(left.name.replace(f"-{os.getpid()}-", "-999999999-"))  # no such process
    os.rename(left, dead)
    cut_short = dead.with_name(dead.name.replace(".arrows.inprogress", ".parquet.writing"))
    cut_short.write_bytes(b"PAR1 half a file")  # its roll was under way when it died
    log.close()  # its own file is gone: nothing to finish
    PayloadLog(tmp_path, flush_seconds=0.05).close()
    assert not list(tmp_path.glob("*.arrows*")) and not cut_short.exists()
    (done,) = tmp_path.glob("*.parquet")
    assert done.name == dead.name.replace(".arrows.inprogress", ".parquet")
    assert [r["id"] for r in pq.read_table(done).to_pylist()] == ["req-000", "req-001", "req-002"]


def test_cli_reads_old_parquet_files_open_streams_and_skips_a_footerless_old_file(tmp_path: Path) -> None:
    import pyarrow as pa

    from modelport.observability.payload_log import _schema

    old = pa.table(
        {
            "id": ["old-1"],
            "time": pa.array([1_600_000_000_000_000], pa.timestamp("us", tz="UTC")),
            "model": ["wine"],
            "version": pa.array([1], pa.int64()),
            "protocol": ["v2"],
            "status": pa.array([200], pa.int32()),
            "latency_ms": [1.0],
            "error": pa.array([None], pa.string()),
            "inputs": ['{"x":[[1.0]]}'],
            "outputs": ['{"y":[2]}'],
        },
        schema=_schema(),
    )
    pq.write_table(old, tmp_path / "payloads-1-20200913T122640-0001.parquet")  # what earlier versions wrote
    whole = (tmp_path / "payloads-1-20200913T122640-0001.parquet").read_bytes()
    (tmp_path / "payloads-1-20200913T130000-0002.parquet.inprogress").write_bytes(whole[: len(whole) // 2])
    log = PayloadLog(tmp_path, flush_seconds=0.05)
    log.observe(_record(0))
    _wait_written(log, 1)
    result = CliRunner().invoke(main, ["payloads", str(tmp_path), "--json"])
    log.close()
    assert result.exit_code == 0, result.output
    assert [r["id"] for r in json.loads(result.stdout)] == ["old-1", "req-000"]
    assert "skipping payloads-1-20200913T130000-0002.parquet.inprogress" in result.stderr


def test_files_are_private_whatever_the_umask(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o755)
    shared.chmod(0o755)
    before = os.umask(0o002)
    try:
        fresh = PayloadLog(tmp_path / "new" / "payloads", flush_seconds=0.05)
        fresh.observe(_record(0))
        _wait_written(fresh, 1)
        (open_file,) = (tmp_path / "new" / "payloads").glob("*.arrows.inprogress")
        assert stat.S_IMODE(open_file.stat().st_mode) == 0o600
        fresh.close()
        existing = PayloadLog(shared, flush_seconds=0.05)
        existing.observe(_record(1))
        existing.close()
    finally:
        os.umask(before)
    assert stat.S_IMODE((tmp_path / "new" / "payloads").stat().st_mode) == 0o700
    assert stat.S_IMODE(shared.stat().st_mode) == 0o700  # an existing directory loses group and other access
    files = [*(tmp_path / "new" / "payloads").iterdir(), *shared.iterdir()]
    assert len(files) == 2 and all(f.suffix == ".parquet" for f in files)
    assert {stat.S_IMODE(f.stat().st_mode) for f in files} == {0o600}


@pytest.mark.slow
def test_every_acknowledged_record_survives_kill_9(repo_dir: Path, tmp_path: Path) -> None:
    """kill -KILL after the flush interval: every answered request is on disk and readable."""
    out = tmp_path / "payloads"
    acknowledged = []
    with run_server(repo_dir, "--payload-log", str(out), "--no-access-log", log_dir=tmp_path) as server:
        with httpx.Client(base_url=server.url) as client:
            for i in range(40):
                rid = f"kill-{i}"
                r = client.post("/v2/models/diabetes/infer", json=v2_body(1 + i % 3), headers={"X-Request-ID": rid})
                assert r.status_code == 200, r.text
                acknowledged.append((rid, r.json()["outputs"][0]["data"]))
        time.sleep(1.0 + 0.5)  # flush_seconds (1 s) plus time for the write itself on a busy machine
        os.killpg(server.process.pid, signal.SIGKILL)
        server.process.wait()
    result = CliRunner().invoke(main, ["payloads", str(out), "--json"])
    assert result.exit_code == 0, result.output
    rows = {r["id"]: r for r in json.loads(result.stdout)} if result.stdout.startswith("[") else {}
    assert set(rows) == {rid for rid, _ in acknowledged}
    assert list(out.glob("*.arrows.inprogress")), "the writer had an open file when it was killed"
    for rid, predicted in acknowledged:
        assert rows[rid]["status"] == 200
        assert rows[rid]["outputs"]["predict"] == predicted  # the same JSON numbers the client was sent
    # The next server on the directory turns the dead process's stream into a Parquet file.
    with run_server(repo_dir, "--payload-log", str(out), "--no-access-log", log_dir=tmp_path):
        wait_for(lambda: not list(out.glob("*.arrows*")), timeout=30)
    assert read_payloads(out).num_rows == len(acknowledged)
    assert sum(pq.read_metadata(f).num_rows for f in out.glob("*.parquet")) == len(acknowledged)
