"""What the web page's JSON costs the server, and whether watching the ops view slows inference.

Compares, in one run:
1. server time of ``/ui/api/ops`` (``ui.ops_payload``) with 16 models, each with ten minutes of
   activity in every bucket: median and p99 over repeated calls, in-process;
2. the same for ``/ui/api/models`` after its first (cached) answer;
3. one ``modelport serve`` (breast_cancer, logistic regression), ``modelport bench`` at 8
   connections: p50/p99 and requests/s without anyone polling, then with a poller hitting
   ``/ui/api/ops`` every 0.5 s (six times the page's rate), alternated ``--rounds`` times.

    .venv/bin/python benchmarks/ui_ops.py [--seconds 8] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from benchmarks.common import (
    Server,
    breast_cancer_model,
    free_port,
    machine,
    run_modelport_bench,
    sample_rows,
    v2_body,
)

N_MODELS = 16


def _in_process(tmp: Path) -> None:
    from modelport.observability.activity import BUCKET_SECONDS, BUCKETS
    from modelport.observability.observe import RequestRecord
    from modelport.protocols.rest import ui
    from modelport.protocols.rest.app import ModelportApp
    from modelport.protocols.rest.http import dumps
    from modelport.serving.repository import Repository

    root = tmp / "repo"
    model = breast_cancer_model(tmp)
    for i in range(N_MODELS):
        (root / f"m{i:02d}").mkdir(parents=True)
        shutil.copy(model, root / f"m{i:02d}" / "model.joblib")
    repo = Repository(str(root))
    app = ModelportApp(repo)
    now = time.time()
    for i in range(N_MODELS):
        for b in range(BUCKETS):
            for k in range(20):
                app.activity.observe(
                    RequestRecord(
                        "x",
                        "POST",
                        "/",
                        "v2",
                        f"m{i:02d}",
                        1,
                        200,
                        now - b * BUCKET_SECONDS,
                        0.0004 * (1 + k % 7),
                        None,
                        None,
                        None,
                    )
                )

    def timed(fn: object, n: int) -> tuple[float, float]:
        samples = []
        for _ in range(n):
            t0 = time.perf_counter()
            fn()  # type: ignore[operator]
            samples.append((time.perf_counter() - t0) * 1000)
        samples.sort()
        return statistics.median(samples), samples[int(len(samples) * 0.99) - 1]

    p50, p99 = timed(lambda: dumps(ui.ops_payload(app)), 500)
    print(
        f"/ui/api/ops server time (payload + JSON), {N_MODELS} models, full ten-minute rings: "
        f"median {p50:.3f} ms, p99 {p99:.3f} ms"
    )
    asyncio.run(ui.models_payload(repo))  # the first call reads what each model knows, then it is cached
    p50, p99 = timed(lambda: asyncio.run(ui.models_payload(repo)), 200)
    print(f"/ui/api/models server time (cached forms, incl. asyncio.run): median {p50:.3f} ms, p99 {p99:.3f} ms")
    repo.close()


def _poller(url: str, stop: threading.Event, every: float) -> None:
    while not stop.is_set():
        with urllib.request.urlopen(url, timeout=5) as r:
            r.read()
        stop.wait(every)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=8)
    args = parser.parse_args()
    print(machine())
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        _in_process(tmp)
        root = tmp / "serve"
        (root / "breast_cancer").mkdir(parents=True)
        shutil.copy(breast_cancer_model(tmp), root / "breast_cancer" / "model.joblib")
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        server = Server(
            "modelport",
            [sys.executable, "-m", "modelport.cli", "serve", str(root), "--port", str(port)],
            base + "/v2/health/ready",
            port,
            env={"PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src"), "MODELPORT_COMPILE_CACHE": str(tmp)},
        )
        server.start(log_dir=tmp)
        try:
            url = base + "/v2/models/breast_cancer/infer"
            body = v2_body(sample_rows(1))
            run_modelport_bench(url, body, args.connections, 2.0)  # warm-up
            results: dict[str, list[tuple[float, float, float]]] = {"no poller": [], "ops polled every 0.5 s": []}
            for _ in range(args.rounds):
                for label in results:
                    stop = threading.Event()
                    thread = None
                    if label != "no poller":
                        thread = threading.Thread(target=_poller, args=(base + "/ui/api/ops", stop, 0.5), daemon=True)
                        thread.start()
                    load = run_modelport_bench(url, body, args.connections, args.seconds)
                    stop.set()
                    if thread is not None:
                        thread.join()
                    results[label].append((load.p50, load.p99, load.rps))
            print(f"\none-row V2 infer, {args.connections} connections, {args.rounds} rounds of {args.seconds:.0f} s:")
            base_p50 = statistics.median(r[0] for r in results["no poller"])
            for label, rows in results.items():
                p50 = statistics.median(r[0] for r in rows)
                p99 = statistics.median(r[1] for r in rows)
                rps = statistics.median(r[2] for r in rows)
                print(
                    f"  {label:24s} p50 {p50:.3f} ms  p99 {p99:.3f} ms  {rps:,.0f} req/s  "
                    f"p50 ratio {p50 / base_p50:.2f}x"
                )
        finally:
            server.stop()


if __name__ == "__main__":
    main()
