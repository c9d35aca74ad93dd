"""A big JSON body is decoded and run off the event loop (issue 11, security review: Medium).

Parsing ~30 MiB of JSON into arrays holds the GIL for seconds (orjson and numpy are single C
calls), so on the event loop, or even in a thread, it froze health probes and small requests
behind it. This is a behaviour check with a generous bound, not a benchmark
(benchmarks/big_body.py measures the p99).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest

from tests.obs_helpers import build_small_repository, v2_body
from tests.serving import RunningServer, run_server

pytestmark = pytest.mark.slow

ROWS = 700_000  # short values ("1.5"): ~30 MiB of JSON, just under the default --max-body of 32 MiB


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    root: Path = build_small_repository(tmp_path_factory.mktemp("big"))
    with run_server(root, "--poll-seconds", "0", "--no-access-log") as running:
        yield running


@pytest.mark.parametrize("protocol", ["v1", "v2"])
def test_probes_and_small_requests_stay_fast_while_a_big_body_is_decoded(server: RunningServer, protocol: str) -> None:
    rows = [[float((i + j) % 8) / 2 for j in range(10)] for i in range(ROWS)]
    if protocol == "v1":
        route, body = "/v1/models/diabetes/versions/1:predict", orjson.dumps({"instances": rows})
    else:
        flat = [v for row in rows for v in row]
        data = {"inputs": [{"name": "input", "shape": [ROWS, 10], "datatype": "FP64", "data": flat}]}
        route, body = "/v2/models/diabetes/versions/1/infer", orjson.dumps(data)
    assert 26 * 2**20 < len(body) < 32 * 2**20
    answer: dict[str, httpx.Response] = {}

    def post_big() -> None:
        answer["big"] = httpx.post(
            server.url + route, content=body, headers={"content-type": "application/json"}, timeout=120
        )

    worst = 0.0
    probes = 0
    with httpx.Client(base_url=server.url, timeout=30) as client:
        client.get("/v2/health/live")  # connection open before the big body starts
        sender = threading.Thread(target=post_big)
        sender.start()
        while sender.is_alive():
            started = time.monotonic()
            live = client.get("/v2/health/live")
            small = client.post("/v2/models/diabetes/versions/1/infer", json=v2_body(1))
            worst = max(worst, time.monotonic() - started)
            assert live.status_code == 200 and small.status_code == 200, small.text
            probes += 1
            time.sleep(0.02)
        sender.join()
    big = answer["big"]
    assert big.status_code == 200, big.text[:300]
    if protocol == "v1":
        assert len(big.json()["predictions"]) == ROWS
    else:
        assert big.json()["outputs"][0]["shape"] == [ROWS]
    assert probes >= 3, "the big request finished before the probes could overlap it"
    assert worst < 1.0, f"a probe and a one-row request waited {worst:.2f} s behind the big body"
