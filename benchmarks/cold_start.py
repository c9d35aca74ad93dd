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
machine); ``warm`` one filled by an untimed start before (every later start). Runs of all
configurations are interleaved; medians are printed. ``--src`` serves another source tree
(e.g. an export of an older commit) for before/after figures.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
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


def one_run(src: Path, model: Path, workers: int, cache: Path, log_dir: Path) -> dict[str, Any]:
    repo = Path(tempfile.mkdtemp(prefix="modelport-cold-")) / "models"
    (repo / "breast_cancer").mkdir(parents=True)
    shutil.copy(model, repo / "breast_cancer" / "model.joblib")
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
    parser.add_argument("--cache", default="cold,warm", help="cold, warm or both (compile cache state at start)")
    parser.add_argument("--src", type=Path, default=ROOT / "src", help="the modelport source tree to serve")
    parser.add_argument("--json", type=Path, default=None, help="also write every run here")
    args = parser.parse_args(argv)
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
            got = one_run(args.src, model, w, cache, work)
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
    if args.json:
        args.json.write_text(json.dumps({"runs": runs, "machine": machine(), "src": str(args.src)}, indent=2))
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
