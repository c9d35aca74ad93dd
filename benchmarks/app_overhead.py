"""CPU cost of modelport's request path per one-row request, in process: no sockets, no HTTP parser.

Calls the ASGI app directly (as uvicorn would, minus the network) with a one-row V2 infer to the
breast_cancer pipeline, and reports CPU microseconds per request (``time.process_time``), which a
busy shared machine disturbs far less than wall-clock latency. With ``--baseline-src OLD/src``
each round runs the old tree and this one in fresh subprocesses, alternating, so old and new are
compared in one run. The app is built as ``modelport serve`` builds it (metrics, access log off,
request timeout 60 s where the tree has one).

Run:  python benchmarks/app_overhead.py [--requests 20000 --rounds 5] [--baseline-src OLD/src]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import ROOT, breast_cancer_model, machine, sample_rows, v2_body

_CHILD = r"""
import asyncio, json, sys, time
from modelport.process.run import ServeConfig, build_app

repo, body, n = sys.argv[1], sys.argv[2].encode(), int(sys.argv[3])
config = ServeConfig(root=repo, access_log=False, poll_seconds=0.0)
app = build_app(config)
scope = {
    "type": "http", "method": "POST", "path": "/v2/models/breast_cancer/infer", "query_string": b"",
    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
}
message = {"type": "http.request", "body": body, "more_body": False}
status = []

async def receive():
    return message

async def send(event):
    if event["type"] == "http.response.start":
        status.append(event["status"])

async def main():
    for _ in range(2000):  # warm-up: thread warm-up calls, batcher bypass, caches
        await app(scope, receive, send)
    status.clear()
    cpu, wall = time.process_time(), time.perf_counter()
    for _ in range(n):
        await app(scope, receive, send)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    assert status == [200] * n, set(status)
    print(json.dumps({"cpu_us": cpu / n * 1e6, "wall_us": wall / n * 1e6}))

asyncio.run(main())
app.repository.close()
"""


def run(src: Path, repo: Path, body: bytes, n: int) -> dict[str, float]:
    env = {
        **os.environ,
        "PYTHONPATH": str(src),
        "MODELPORT_COMPILE_CACHE": os.environ.get("MODELPORT_COMPILE_CACHE", ""),
    }
    if not env["MODELPORT_COMPILE_CACHE"]:
        env.pop("MODELPORT_COMPILE_CACHE")
    out = subprocess.run(
        [sys.executable, "-c", _CHILD, str(repo), body.decode(), str(n)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode != 0:
        raise SystemExit(f"{src}: {out.stderr[-2000:]}")
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=20000, help="measured requests per round")
    parser.add_argument("--rounds", type=int, default=5, help="rounds; medians are reported")
    parser.add_argument("--src", type=Path, default=ROOT / "src", help="the modelport source tree to measure")
    parser.add_argument("--baseline-src", type=Path, default=None, help="also measure this older tree, alternating")
    args = parser.parse_args(argv)
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "modelport-bench"
    workdir = Path(tempfile.mkdtemp(prefix="modelport-app-"))
    try:
        (workdir / "breast_cancer").mkdir()
        shutil.copy(breast_cancer_model(cache), workdir / "breast_cancer" / "model.joblib")
        body = v2_body(sample_rows(1), ["predict_proba"])
        trees = ([("baseline", args.baseline_src)] if args.baseline_src else []) + [("this tree", args.src)]
        results: dict[str, list[dict[str, float]]] = {label: [] for label, _ in trees}
        print(f"machine: {machine()}", file=sys.stderr)
        for r in range(args.rounds):
            for label, src in trees if r % 2 == 0 else list(reversed(trees)):
                result = run(src, workdir, body, args.requests)
                results[label].append(result)
                print(f"round {r + 1} {label}: {result['cpu_us']:.1f} µs CPU per request", file=sys.stderr)
        print(f"one-row V2 infer, in-process ASGI, {args.requests} requests x {args.rounds} rounds (medians)")
        print("| tree | CPU µs / request | wall µs / request |")
        print("| --- | ---: | ---: |")
        med = {k: {m: statistics.median(x[m] for x in v) for m in ("cpu_us", "wall_us")} for k, v in results.items()}
        for label, m in med.items():
            print(f"| {label} | {m['cpu_us']:.1f} | {m['wall_us']:.1f} |")
        if "baseline" in med:
            ratio = med["this tree"]["cpu_us"] / med["baseline"]["cpu_us"]
            print(f"\nthis tree / baseline: CPU per request {ratio:.2f}x")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
