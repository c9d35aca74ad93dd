"""``modelport bench`` against a real uvicorn server on a loopback port (no timing assertions)."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from modelport import bench
from modelport.cli import main
from modelport.core.errors import ConfigError
from tests.conftest import free_port

pytestmark = pytest.mark.slow

METADATA = {
    "name": "toy",
    "versions": ["1"],
    "platform": "test",
    "inputs": [
        {"name": "x", "datatype": "FP32", "shape": [-1, 3]},
        {"name": "k", "datatype": "INT64", "shape": [-1]},
        {"name": "text", "datatype": "BYTES", "shape": [-1]},
        {"name": "flag", "datatype": "BOOL", "shape": [-1, -1]},
    ],
    "outputs": [{"name": "y", "datatype": "FP64", "shape": [-1]}],
}


class ToyApp:
    """Answers V2 metadata/infer for 'toy', fixed statuses under /status/N, and a chunked body."""

    def __init__(self) -> None:
        self.hits: Counter[str] = Counter()
        self.bad_bodies: list[str] = []

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                msg = await receive()
                if msg["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                else:
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        body = b""
        while True:
            msg = await receive()
            body += msg.get("body", b"")
            if not msg.get("more_body"):
                break
        path = scope["path"]
        self.hits[path] += 1
        if path == "/v2/models/toy":
            await self._send(send, 200, json.dumps(METADATA).encode())
        elif path == "/v2/models/toy/infer":
            problem = check_v2(json.loads(body))
            if problem:
                self.bad_bodies.append(problem)
                await self._send(send, 400, json.dumps({"error": problem}).encode())
            else:
                await self._send(
                    send, 200, b'{"outputs": [{"name": "y", "datatype": "FP64", "shape": [1], "data": [1]}]}'
                )
        elif path.startswith("/status/"):
            await self._send(send, int(path.rsplit("/", 1)[1]), b'{"error": "as asked"}')
        elif path == "/chunked":
            await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
            for part in (b"first part, ", b"second part, ", b"last"):
                await send({"type": "http.response.body", "body": part, "more_body": True})
            await send({"type": "http.response.body", "body": b""})
        elif path == "/slow":
            await asyncio.sleep(1.0)
            await self._send(send, 200, b"{}")
        elif path == "/alternate":
            status = 200 if self.hits[path] % 2 else 503
            await self._send(send, status, b"{}")
        else:
            await self._send(send, 404, b'{"error": "no such route"}')

    @staticmethod
    async def _send(send: Any, status: int, body: bytes) -> None:
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def check_v2(body: dict[str, Any]) -> str:
    """Why a generated V2 body does not fit METADATA (empty when it fits)."""
    specs = {s["name"]: s for s in METADATA["inputs"]}
    got = {t["name"]: t for t in body.get("inputs", [])}
    if set(got) != set(specs):
        return f"inputs {sorted(got)} != {sorted(specs)}"
    for name, t in got.items():
        if t["datatype"] != specs[name]["datatype"]:
            return f"{name}: datatype {t['datatype']}"
        size = 1
        for d in t["shape"]:
            size *= d
        if len(t["data"]) != size:
            return f"{name}: {len(t['data'])} values for shape {t['shape']}"
    return ""


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[str, ToyApp]]:
    import uvicorn

    app = ToyApp()
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error", access_log=False)
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not srv.started:
        assert time.monotonic() < deadline, "test server did not start"
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}", app
    srv.should_exit = True
    thread.join(10)


def infer_target(base: str, rows: int = 1) -> bench.Target:
    body = bench.body_from_metadata(bench.fetch_metadata(base, "toy"), rows)
    return bench.make_target(bench.endpoint_url(base, "toy", "v2"), json.dumps(body).encode())


def test_closed_loop_sends_exactly_n_requests_and_counts_statuses(server: tuple[str, ToyApp]) -> None:
    base, app = server
    target = infer_target(base, rows=2)
    before = app.hits["/v2/models/toy/infer"]
    result = bench.run(target, requests=200, concurrency=4, warmup=7)
    assert app.hits["/v2/models/toy/infer"] - before == 207
    assert result.completed == 200
    assert result.statuses == {200: 200}
    assert result.errors == {}
    assert len(result.ok_latencies) == 200
    assert app.bad_bodies == []
    lat = result.latency_ms()
    assert set(lat) == {"mean", "median", "min", "max", "p90", "p99", "p99.9"}
    assert lat["min"] <= lat["median"] <= lat["p90"] <= lat["p99"] <= lat["p99.9"] <= lat["max"]


def test_errors_are_counted_by_status(server: tuple[str, ToyApp]) -> None:
    base, app = server
    result = bench.run(bench.make_target(f"{base}/status/404"), requests=30, concurrency=3)
    assert result.statuses == {404: 30}
    assert result.errors == {"404": 30}
    assert result.ok_latencies == []
    assert result.latency_ms()["max"] > 0  # over every answer when none was 2xx
    start = app.hits["/alternate"]
    mixed = bench.run(bench.make_target(f"{base}/alternate"), requests=40, concurrency=1)
    assert app.hits["/alternate"] - start == 40
    assert mixed.statuses == {200: 20, 503: 20}
    assert mixed.errors == {"503": 20}
    assert "503: 20" in bench.format_result(mixed)


def test_chunked_responses_are_read_to_the_end(server: tuple[str, ToyApp]) -> None:
    base, app = server
    before = app.hits["/chunked"]
    result = bench.run(bench.make_target(f"{base}/chunked"), requests=25, concurrency=2)
    assert result.statuses == {200: 25}
    assert app.hits["/chunked"] - before == 25


def test_duration_and_open_loop_rate(server: tuple[str, ToyApp]) -> None:
    base, app = server
    target = infer_target(base)
    before = app.hits["/v2/models/toy/infer"]
    timed = bench.run(target, duration=0.3, concurrency=2)
    assert timed.completed > 0
    assert app.hits["/v2/models/toy/infer"] - before == timed.completed
    before = app.hits["/v2/models/toy/infer"]
    paced = bench.run(target, requests=60, rate=300, concurrency=4)
    assert paced.completed == 60
    assert paced.rate == 300
    assert app.hits["/v2/models/toy/infer"] - before == 60
    assert min(paced.latencies) > 0


def test_timeouts_and_refused_connections_are_failures(server: tuple[str, ToyApp]) -> None:
    base, _ = server
    slow = bench.run(bench.make_target(f"{base}/slow"), requests=2, concurrency=1, timeout=0.2)
    assert slow.completed == 0
    assert slow.errors == {"TimeoutError": 2}
    refused = bench.run(bench.make_target(f"http://127.0.0.1:{free_port()}/"), requests=3, concurrency=2)
    assert refused.completed == 0
    assert refused.errors == {"connect: ConnectionRefusedError": 2}
    assert "no request was answered" in refused.warnings()


def test_body_from_v2_metadata() -> None:
    body = bench.body_from_metadata(METADATA, rows=3)
    assert check_v2(body) == ""
    tensors = {t["name"]: t for t in body["inputs"]}
    assert tensors["x"]["shape"] == [3, 3] and all(isinstance(v, float) for v in tensors["x"]["data"])
    assert tensors["k"]["shape"] == [3] and all(isinstance(v, int) for v in tensors["k"]["data"])
    assert tensors["text"]["shape"] == [3] and all(isinstance(v, str) and v.isalpha() for v in tensors["text"]["data"])
    assert tensors["flag"]["shape"] == [3, 1] and all(isinstance(v, bool) for v in tensors["flag"]["data"])
    v1 = bench.body_from_metadata(METADATA, rows=2, mode="v1")
    assert len(v1["instances"]) == 2
    assert set(v1["instances"][0]) == {"x", "k", "text", "flag"}
    assert len(v1["instances"][0]["x"]) == 3
    single = {"name": "m", "inputs": [{"name": "input", "datatype": "FP64", "shape": [-1, 4]}]}
    assert [len(r) for r in bench.body_from_metadata(single, rows=2, mode="v1")["instances"]] == [4, 4]


@pytest.mark.parametrize(
    ("metadata", "rows", "message"),
    [
        ({"name": "m", "inputs": [{"name": "a", "datatype": "COMPLEX", "shape": [-1]}]}, 1, "datatype 'COMPLEX'"),
        ({"name": "m", "inputs": []}, 1, "model 'm' lists no inputs"),
        ({"name": "m", "inputs": [{"datatype": "FP32"}]}, 1, "input #0 in the metadata needs 'name'"),
        (METADATA, 0, "--rows must be at least 1, got 0"),
    ],
)
def test_body_generation_errors(metadata: dict[str, Any], rows: int, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        bench.body_from_metadata(metadata, rows)


def test_metadata_of_unknown_model_fails_loudly(server: tuple[str, ToyApp]) -> None:
    base, _ = server
    with pytest.raises(ConfigError, match=r"/v2/models/nope answered 404; --model needs a server"):
        bench.fetch_metadata(base, "nope")


def test_make_target_builds_the_request_once() -> None:
    t = bench.make_target("http://127.0.0.1:9000/v2/models/m/infer", b'{"a": 1}', headers=[("X-Key", "k")])
    head, _, payload = t.request.partition(b"\r\n\r\n")
    assert head.split(b"\r\n")[0] == b"POST /v2/models/m/infer HTTP/1.1"
    assert b"Host: 127.0.0.1:9000" in head and b"Content-Length: 8" in head and b"X-Key: k" in head
    assert payload == b'{"a": 1}'
    assert bench.make_target("127.0.0.1:9000").method == "GET"
    with pytest.raises(ConfigError, match="scheme 'https' is not supported; use http://"):
        bench.make_target("https://example.invalid/")


def test_cli_json_output(server: tuple[str, ToyApp]) -> None:
    base, app = server
    out = CliRunner().invoke(main, ["bench", base, "--model", "toy", "--rows", "2", "-n", "50", "-c", "2", "--json"])
    assert out.exit_code == 0, out.output
    data = json.loads(out.output)
    assert {
        "url", "method", "body_bytes", "concurrency", "rate", "requests", "completed", "ok", "errors",
        "statuses", "duration_s", "rps", "latency_ms", "client_cpu_share", "client_ceiling_rps", "warnings",
    } <= set(data)  # fmt: skip
    assert data["url"] == f"{base}/v2/models/toy/infer"
    assert data["completed"] == 50 and data["ok"] == 50 and data["errors"] == {}
    assert data["statuses"] == {"200": 50}
    assert set(data["latency_ms"]) == {"mean", "median", "min", "max", "p90", "p99", "p99.9"}
    assert app.bad_bodies == []


def test_cli_text_output_and_body_file(server: tuple[str, ToyApp], tmp_path: Path) -> None:
    base, _ = server
    body = tmp_path / "req.json"
    body.write_text(json.dumps(bench.body_from_metadata(METADATA, 1)))
    out = CliRunner().invoke(main, ["bench", f"{base}/v2/models/toy/infer", "--body", f"@{body}", "-n", "20"])
    assert out.exit_code == 0, out.output
    assert "20 answered" in out.output
    assert "p99.9" in out.output and "status    200: 20" in out.output


def test_cli_sweep_with_plot(server: tuple[str, ToyApp], tmp_path: Path) -> None:
    base, _ = server
    png = tmp_path / "sweep.png"
    args = ["bench", base, "--model", "toy", "-n", "30", "--sweep", "1,2,4", "--plot", str(png), "--json"]
    out = CliRunner().invoke(main, args)
    assert out.exit_code == 0, out.output
    levels = json.loads(out.output)["sweep"]
    assert [r["concurrency"] for r in levels] == [1, 2, 4]
    assert all(r["completed"] == 30 for r in levels)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    text = CliRunner().invoke(main, ["bench", base, "--model", "toy", "-n", "10", "--sweep", "1,2"])
    assert text.exit_code == 0, text.output
    assert text.output.splitlines()[1].split()[:3] == ["c", "req/s", "mean"]


def test_cli_compare_runs_both_and_gives_ratios(server: tuple[str, ToyApp], tmp_path: Path) -> None:
    base, app = server
    png = tmp_path / "cmp.png"
    before_a, before_b = app.hits["/v2/models/toy/infer"], app.hits["/status/202"]
    args = ["bench", f"{base}/v2/models/toy/infer", "--body", json.dumps(bench.body_from_metadata(METADATA, 1))]
    args += ["--compare", f"{base}/status/202", "-n", "40", "--rounds", "4", "--plot", str(png), "--json"]
    out = CliRunner().invoke(main, args)
    assert out.exit_code == 0, out.output
    data = json.loads(out.output)
    assert data["a"]["completed"] == 40 and data["b"]["completed"] == 40
    assert data["b"]["statuses"] == {"202": 40}
    assert app.hits["/v2/models/toy/infer"] - before_a == 40 and app.hits["/status/202"] - before_b == 40
    assert set(data["ratios_b_over_a"]) == {"mean", "median", "p90", "p99", "p99.9", "rps"}
    assert all(v > 0 for v in data["ratios_b_over_a"].values())
    assert png.stat().st_size > 0
    text = CliRunner().invoke(main, args[:-5] + ["-n", "10", "--rounds", "2"])
    assert "B / A" in text.output and "rps" in text.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--body", "@/no/such/file.json"], "--body file '/no/such/file.json' does not exist"),
        (["-H", "no-colon"], "header 'no-colon' is not 'Name: value'"),
        (["--model", "nope"], "answered 404"),
        (["--model", "toy", "--mode", "raw"], "--model generates a v1 or v2 body"),
        (["--sweep", "1,x"], "--sweep '1,x' is not a comma-separated list of integers"),
        (["--sweep", "1,2", "--rate", "10"], "cannot be combined with --rate or --compare"),
        (["-c", "0"], "concurrency must be at least 1, got 0"),
        (["--rate", "-5"], "--rate must be positive, got -5"),
    ],
)
def test_cli_bad_options_fail_with_a_message(server: tuple[str, ToyApp], args: list[str], message: str) -> None:
    base, _ = server
    out = CliRunner().invoke(main, ["bench", base, "-n", "5", *args])
    assert out.exit_code == 1
    assert message in out.output
