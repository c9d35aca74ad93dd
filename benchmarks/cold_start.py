"""Cold start and memory of ``modelport serve``: spawn to first answered prediction, RSS and PSS after it.

    PYTHONPATH=src python benchmarks/cold_start.py [--runs 5 --workers 1,2 --cache cold,warm --src DIR]

Serves the breast_cancer StandardScaler + LogisticRegression pipeline the way the peers
benchmark does (``python -m modelport.cli serve REPO --host 127.0.0.1 --port P --workers N``,
the model copied into a fresh repository each run) and measures:

- cold start: from ``Popen`` to the first V2 infer answered 200 (polled every 10 ms);
- memory after 40 more requests on fresh connections (so every worker has answered) and
  0.5 s of rest: the sum over the process tree of RSS (``VmRSS``, what the peers table
  reports) and of PSS (``/proc/<pid>/smaps_rollup``: shared pages divided among the
  processes sharing them, the fair figure when workers share the parent's pages).

``--cache cold`` gives every run an empty compile cache (the first start of an artifact on a
machine); ``warm`` one filled by an untimed start before (every later start); ``built`` one
filled by ``modelport compile`` on the run's own copy of the model, as the Docker image's build
does (so the first start of a container). Runs of all configurations are interleaved; medians
are printed. ``--src`` serves another source tree (e.g. an export of an older commit) for
before/after figures.

``--lambda`` also times ``modelport.aws_lambda``'s cold start: a fresh interpreter importing the
module with ``AWS_LAMBDA_FUNCTION_NAME`` set (Lambda's init phase: import and load the models)
and answering one V2 event, with an empty and a built cache.

``--sparkml NAME`` instead compares a demo Spark ML pipeline (examples/models/NAME) served by
``modelport serve`` with the same pipeline in a Flask + SparkSession app
(benchmarks/spark_flask_app.py): first start to the first answered prediction, and the RSS of
the whole process tree (the JVM included) after it, with the App Engine standard instance
class each fits.
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
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from common import (  # noqa: E402
    ROOT,
    Server,
    _tree,
    breast_cancer_model,
    free_port,
    machine,
    post,
    sample_rows,
    v2_body,
)


def smaps(pid: int) -> tuple[float, float]:
    """(RSS, PSS) of one process in MB."""
    rss = pss = 0.0
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            key, _, rest = line.partition(":")
            if key == "Rss":
                rss = int(rest.split()[0]) / 1024
            elif key == "Pss":
                pss = int(rest.split()[0]) / 1024
    except OSError:
        pass
    return rss, pss


def build_cache(src: Path, repo: Path, cache: Path) -> None:
    """What the image build does: ``modelport compile`` on the models, into ``cache`` (untimed)."""
    env = {**os.environ, "PYTHONPATH": str(src), "MODELPORT_COMPILE_CACHE": str(cache)}
    argv = [sys.executable, "-m", "modelport.cli", "compile", str(repo), "--no-check"]
    subprocess.run(argv, env=env, check=True, capture_output=True, timeout=600)


def one_run(src: Path, model: Path, workers: int, cache: Path, log_dir: Path, built: bool = False) -> dict[str, Any]:
    repo = Path(tempfile.mkdtemp(prefix="modelport-cold-")) / "models"
    (repo / "breast_cancer").mkdir(parents=True)
    shutil.copy(model, repo / "breast_cancer" / "model.joblib")
    if built:
        build_cache(src, repo, cache)
    port = free_port()
    argv = [sys.executable, "-m", "modelport.cli", "serve", str(repo), "--host", "127.0.0.1", "--port", str(port)]
    argv += ["--workers", str(workers)]
    env = {"PYTHONPATH": str(src), "MODELPORT_COMPILE_CACHE": str(cache)}
    url = f"http://127.0.0.1:{port}/v2/models/breast_cancer/infer"
    body = v2_body(sample_rows(1), ["predict_proba"])
    server = Server(f"modelport-w{workers}", argv, url, port, env, None, body)
    try:
        took = server.start(timeout=180, log_dir=log_dir)
        for _ in range(40):
            status, _ = post(url, body)  # urllib: a new connection each time
            assert status == 200
        time.sleep(0.5)
        assert server.proc is not None
        procs = [smaps(pid) for pid in _tree(server.proc.pid)]
    finally:
        server.stop()
        shutil.rmtree(repo.parent, ignore_errors=True)
    return {
        "cold_start_s": took,
        "rss_mb": sum(r for r, _ in procs),
        "pss_mb": sum(p for _, p in procs),
        "processes": len(procs),
        "per_process": [[round(r, 1), round(p, 1)] for r, p in procs],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--workers", default="1,2")
    parser.add_argument("--cache", default="cold,warm", help="cold, warm, built (compile cache state at start)")
    parser.add_argument("--lambda", dest="lambda_", action="store_true", help="also time the Lambda handler's init")
    parser.add_argument("--sparkml", default=None, help="compare serve with Flask + Spark for examples/models/NAME")
    parser.add_argument("--src", type=Path, default=ROOT / "src", help="the modelport source tree to serve")
    parser.add_argument("--json", type=Path, default=None, help="also write every run here")
    args = parser.parse_args(argv)
    if args.sparkml:
        return sparkml_footprint(args.sparkml, args.runs, args.src)
    workers = [int(w) for w in args.workers.split(",")]
    states = [c.strip() for c in args.cache.split(",") if c.strip()]
    model = breast_cancer_model(Path.home() / ".cache" / "modelport-bench")
    work = Path(tempfile.mkdtemp(prefix="modelport-coldstart-"))
    warm = work / "warm-cache"
    if "warm" in states:  # one untimed start fills it
        one_run(args.src, model, 1, warm, work)
    configs = [(w, c) for w in workers for c in states]
    runs: dict[str, list[dict[str, Any]]] = {f"{w} workers, {c} cache": [] for w, c in configs}
    print(f"machine: {machine()}", file=sys.stderr)
    for r in range(args.runs):
        for w, c in configs[r % len(configs) :] + configs[: r % len(configs)]:
            cache = warm if c == "warm" else Path(tempfile.mkdtemp(prefix="cache-", dir=work))
            got = one_run(args.src, model, w, cache, work, built=c == "built")
            runs[f"{w} workers, {c} cache"].append(got)
            print(
                f"run {r + 1}/{args.runs} {w} workers, {c} cache: {got['cold_start_s']:.2f} s, "
                f"RSS {got['rss_mb']:.0f} MB, PSS {got['pss_mb']:.0f} MB {got['per_process']}",
                file=sys.stderr,
            )
    print(f"load average {os.getloadavg()[0]:.2f} at end", file=sys.stderr)
    print(f"\n`modelport serve --workers N` of breast_cancer, src {args.src}, medians of {args.runs} runs\n")
    print("| configuration | cold start s | RSS sum MB | PSS sum MB | processes |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for name, got in runs.items():
        med = {k: statistics.median(g[k] for g in got) for k in ("cold_start_s", "rss_mb", "pss_mb", "processes")}
        print(
            f"| {name} | {med['cold_start_s']:.2f} | {med['rss_mb']:.0f} | {med['pss_mb']:.0f} "
            f"| {med['processes']:.0f} |"
        )
    if args.lambda_:
        lambda_cold_start(args.src, model, args.runs, work)
    if args.json:
        args.json.write_text(json.dumps({"runs": runs, "machine": machine(), "src": str(args.src)}, indent=2))
    shutil.rmtree(work, ignore_errors=True)
    return 0


_LAMBDA_PROBE = """
import json, sys, time
t = time.perf_counter()
import modelport.aws_lambda as m
init = time.perf_counter() - t
event = {"version": "2.0", "rawPath": "/v2/models/breast_cancer/infer", "rawQueryString": "",
         "headers": {"content-type": "application/json"}, "body": sys.argv[1], "isBase64Encoded": False,
         "requestContext": {"http": {"method": "POST", "path": "/v2/models/breast_cancer/infer",
                                     "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1"}}}
assert m.handler(event, None)["statusCode"] == 200
print(json.dumps({"init_s": init, "first_s": time.perf_counter() - t,
                  "frameworks": sorted(x for x in ("sklearn", "pandas", "scipy.stats") if x in sys.modules)}))
"""


def lambda_cold_start(src: Path, model: Path, runs: int, work: Path) -> None:
    """Lambda's init phase (import + load) and first event, in a fresh interpreter, empty vs built cache."""
    body = v2_body(sample_rows(1), ["predict_proba"]).decode()
    got: dict[str, list[dict[str, Any]]] = {"empty cache": [], "built cache": []}
    for r in range(runs):
        for state in got:
            repo = Path(tempfile.mkdtemp(prefix="lambda-", dir=work)) / "models"
            (repo / "breast_cancer").mkdir(parents=True)
            shutil.copy(model, repo / "breast_cancer" / "model.joblib")
            cache = repo.parent / "cache"
            if state == "built cache":
                build_cache(src, repo, cache)
            env = {**os.environ, "PYTHONPATH": str(src), "MODELPORT_COMPILE_CACHE": str(cache)}
            env.update({"AWS_LAMBDA_FUNCTION_NAME": "modelport", "MODELPORT_MODELS": str(repo)})
            t = time.perf_counter()
            done = subprocess.run(
                [sys.executable, "-c", _LAMBDA_PROBE, body], env=env, capture_output=True, text=True, timeout=600
            )
            total = time.perf_counter() - t
            if done.returncode != 0:
                raise SystemExit(done.stderr[-2000:])
            one = json.loads(done.stdout.strip().splitlines()[-1])
            one["process_s"] = total
            got[state].append(one)
            print(f"lambda run {r + 1}/{runs} {state}: {one}", file=sys.stderr)
    print(f"\n`modelport.aws_lambda` cold start (fresh interpreter), breast_cancer, medians of {runs} runs\n")
    print("| compile cache | import + load s | to first answer s | process s | frameworks imported |")
    print("| --- | ---: | ---: | ---: | --- |")
    for state, rows in got.items():
        med = {k: statistics.median(x[k] for x in rows) for k in ("init_s", "first_s", "process_s")}
        print(
            f"| {state} | {med['init_s']:.2f} | {med['first_s']:.2f} | {med['process_s']:.2f} "
            f"| {', '.join(rows[-1]['frameworks']) or 'none'} |"
        )


def sparkml_footprint(name: str, runs: int, src: Path) -> int:
    """modelport serve vs Flask + SparkSession on one demo Spark ML pipeline: first start and RSS."""
    sys.path.insert(0, str(HERE))
    from sparkml_vs_spark import sample_rows as spark_rows

    model_dir = ROOT / "examples" / "models" / name
    row = spark_rows(name, 1)[0]
    v2 = {
        "inputs": [
            {"name": k, "datatype": "BYTES" if isinstance(v, str) else "FP64", "shape": [1], "data": [v]}
            for k, v in row.items()
            if v is not None
        ]
    }
    env = {"PYTHONPATH": str(src), "SPARK_LOCAL_IP": "127.0.0.1"}
    results: dict[str, list[tuple[float, float]]] = {"modelport serve": [], "Flask + SparkSession": []}
    work = Path(tempfile.mkdtemp(prefix="sparkml-footprint-"))
    for r in range(runs):
        for kind in results:
            port = free_port()
            if kind == "modelport serve":
                argv = [sys.executable, "-m", "modelport.cli", "serve", str(model_dir), "--host", "127.0.0.1"]
                argv += ["--port", str(port)]
                url, body = f"http://127.0.0.1:{port}/v2/models/{name}/infer", json.dumps(v2).encode()
            else:
                argv = [sys.executable, str(HERE / "spark_flask_app.py"), str(model_dir), str(port)]
                url, body = f"http://127.0.0.1:{port}/predict", json.dumps(row).encode()
            server = Server(kind, argv, url, port, env, None, body)
            try:
                took = server.start(timeout=600, log_dir=work)
                time.sleep(0.5)
                rss = server.rss_mb()
            finally:
                server.stop()
            results[kind].append((took, rss))
            print(f"run {r + 1}/{runs} {kind}: first start {took:.2f} s, RSS {rss:.0f} MB", file=sys.stderr)
    shutil.rmtree(work, ignore_errors=True)
    sys.path.insert(0, str(src))
    from modelport.deploy.gcp import INSTANCE_CLASSES

    print(f"\n{name}: first start to the first answered prediction, and RSS after it (medians of {runs} runs)\n")
    print("| server | first start s | RSS MB (process tree) | App Engine standard class (RSS + 25%) |")
    print("| --- | ---: | ---: | --- |")
    for kind, rows in results.items():
        took = statistics.median(t for t, _ in rows)
        rss = statistics.median(m for _, m in rows)
        fits = next((f"{c} ({mb} MB)" for c, mb in INSTANCE_CLASSES if rss * 1.25 <= mb), "none")
        print(f"| {kind} | {took:.2f} | {rss:.0f} | {fits} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
