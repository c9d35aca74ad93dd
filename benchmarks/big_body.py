"""How slow do small requests get while a ~30 MiB JSON body is being served?

Starts ``modelport serve`` on a one-model repository (diabetes LinearRegression), sends
one-row V2 requests one after another (c=1) for ``--seconds`` while idle, then again while
another client posts ~30 MiB V1 bodies back to back, and reports p50 / p99 / max of the small
requests in both phases. With ``--baseline-src OLD/src`` the same runs against an older tree
first, so old and new are measured in one run, one after the other.

Run:  python benchmarks/big_body.py [--seconds 10] [--baseline-src /path/to/old/src]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import ROOT, Server, free_port, machine

ROWS = 700_000  # short values: ~30 MiB of V1 JSON, under the default --max-body of 32 MiB
SMALL = orjson.dumps({"inputs": [{"name": "input", "shape": [1, 10], "datatype": "FP64", "data": [0.01] * 10}]})


def _repo(workdir: Path) -> Path:
    import joblib
    from sklearn.datasets import load_diabetes
    from sklearn.linear_model import LinearRegression

    root = workdir / "models"
    (root / "diabetes").mkdir(parents=True)
    joblib.dump(LinearRegression().fit(*load_diabetes(return_X_y=True)), root / "diabetes" / "model.joblib")
    return root


def _big_body() -> bytes:
    return orjson.dumps({"instances": [[float((i + j) % 8) / 2 for j in range(10)] for i in range(ROWS)]})


def _percentiles(latencies: list[float]) -> dict[str, float]:
    ordered = sorted(latencies)
    n = len(ordered)
    return {
        "n": float(n),
        "p50_ms": ordered[n // 2] * 1000,
        "p99_ms": ordered[min(n - 1, int(n * 0.99))] * 1000,
        "max_ms": ordered[-1] * 1000,
    }


def _small_requests(client: httpx.Client, seconds: float, keep_going: threading.Event | None = None) -> list[float]:
    latencies = []
    end = time.monotonic() + seconds
    while time.monotonic() < end and (keep_going is None or keep_going.is_set()):
        started = time.perf_counter()
        answer = client.post("/v2/models/diabetes/infer", content=SMALL, headers={"content-type": "application/json"})
        latencies.append(time.perf_counter() - started)
        if answer.status_code != 200:
            raise SystemExit(f"small request answered {answer.status_code}: {answer.text[:200]}")
    return latencies


def measure(src: Path, repo: Path, big: bytes, seconds: float, workdir: Path) -> dict[str, object]:
    port = free_port()
    server = Server(
        f"modelport-{port}",
        [sys.executable, "-m", "modelport.cli", "serve", str(repo), "--host", "127.0.0.1", "--port", str(port)]
        + ["--no-access-log", "--poll-seconds", "0"],
        f"http://127.0.0.1:{port}/v2/health/ready",
        port,
        env={"PYTHONPATH": str(src)},
    )
    server.start(log_dir=workdir)
    url = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(base_url=url, timeout=120) as client:
            _small_requests(client, 1.0)  # warm up
            idle = _small_requests(client, seconds)
            running = threading.Event()
            running.set()
            big_seconds: list[float] = []

            def post_big() -> None:
                with httpx.Client(base_url=url, timeout=300) as big_client:
                    while running.is_set():
                        started = time.perf_counter()
                        answer = big_client.post(
                            "/v1/models/diabetes:predict", content=big, headers={"content-type": "application/json"}
                        )
                        if answer.status_code != 200:
                            raise SystemExit(f"big request answered {answer.status_code}: {answer.text[:200]}")
                        big_seconds.append(time.perf_counter() - started)

            sender = threading.Thread(target=post_big, daemon=True)
            sender.start()
            time.sleep(0.2)
            busy = _small_requests(client, seconds)
            running.clear()
            sender.join()
    finally:
        server.stop()
    return {"idle": _percentiles(idle), "busy": _percentiles(busy), "big_requests": len(big_seconds)} | (
        {"big_s_median": sorted(big_seconds)[len(big_seconds) // 2]} if big_seconds else {}
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each phase")
    parser.add_argument("--src", type=Path, default=ROOT / "src", help="the modelport source tree to serve")
    parser.add_argument("--baseline-src", type=Path, default=None, help="also measure this older tree first")
    args = parser.parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="modelport-bigbody-"))
    try:
        repo = _repo(workdir)
        big = _big_body()
        print(f"machine: {machine()}; big body {len(big) / 2**20:.1f} MiB ({ROWS:,} rows)", file=sys.stderr)
        trees = ([("baseline", args.baseline_src)] if args.baseline_src else []) + [("this tree", args.src)]
        print("| tree | phase | small requests | p50 (ms) | p99 (ms) | max (ms) | big requests (median s) |")
        print("| --- | --- | ---: | ---: | ---: | ---: | ---: |")
        for label, src in trees:
            result = measure(src, repo, big, args.seconds, workdir)
            for phase in ("idle", "busy"):
                p = result[phase]
                assert isinstance(p, dict)
                extra = (
                    f"{result['big_requests']} ({result.get('big_s_median', float('nan')):.2f})"
                    if phase == "busy"
                    else ""
                )
                print(
                    f"| {label} | {phase} | {p['n']:.0f} | {p['p50_ms']:.2f} | {p['p99_ms']:.2f} | {p['max_ms']:.1f} "
                    f"| {extra} |"
                )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
