"""The payload log: Parquet files written in the background, rolled, read back by the CLI."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import httpx
import numpy as np
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from modelport.cli import main
from modelport.errors import ConfigError
from modelport.observe import RequestRecord
from modelport.payload_log import COLUMNS, PayloadLog, read_payloads
from tests.obs_helpers import build_small_repository, v2_body
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
    with run_server(repo_dir, "--workers", "2", "--payload-log", str(out), "--no-access-log") as server:
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
