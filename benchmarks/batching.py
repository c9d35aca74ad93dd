"""Does adaptive batching pay? The same model served with ``--batching on`` and ``--batching off``, side by side.

    python benchmarks/batching.py [--connections 64] [--seconds 3] [--rounds 4] [--no-compile] [--workers 1]

Serves the breast_cancer StandardScaler + LogisticRegression pipeline twice (one server per
setting, same worker count), drives both with wrk at ``--connections`` in interleaved rounds
(single-row V2 request asking for predict_proba), and prints medians of req/s and p99 with the
on/off ratio, against issue 4's target (>= 1.5x req/s with p99 <= 25 ms). ``--no-compile``
serves scikit-learn itself (a ~0.5 ms predict call) instead of the compiled ~10 µs kernel.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import ROOT, Server, breast_cancer_model, free_port, run_wrk, sample_rows, scratch_dir, v2_body


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--no-compile", action="store_true")
    args = parser.parse_args()
    work = scratch_dir("modelport-batching-")
    model = breast_cancer_model(work / "cache")
    (work / "models" / "breast_cancer").mkdir(parents=True)
    shutil.copy(model, work / "models" / "breast_cancer" / "model.joblib")
    body = v2_body(sample_rows(1), ["predict_proba"])
    servers: dict[str, tuple[Server, str]] = {}
    for mode in ("on", "off"):
        port = free_port()
        argv = [sys.executable, "-m", "modelport.cli", "serve", str(work / "models"), "--port", str(port)]
        argv += ["--workers", str(args.workers), "--batching", mode, "--log-format", "json"]
        argv += ["--no-compile"] if args.no_compile else []
        url = f"http://127.0.0.1:{port}/v2/models/breast_cancer/infer"
        server = Server(f"batching {mode}", argv, url, port, env={"PYTHONPATH": str(ROOT / "src")}, probe_body=body)
        server.start(log_dir=work)
        servers[mode] = (server, url)
    rps: dict[str, list[float]] = {"on": [], "off": []}
    p99: dict[str, list[float]] = {"on": [], "off": []}
    try:
        for r in range(args.rounds):
            for mode in ("on", "off") if r % 2 == 0 else ("off", "on"):
                load = run_wrk(servers[mode][1], body, args.connections, args.seconds)
                rps[mode].append(load.rps)
                p99[mode].append(load.p99)
                print(f"round {r + 1}/{args.rounds} batching {mode:>3}: {load.rps:8,.0f} req/s  p99 {load.p99:7.1f} ms")
    finally:
        for server, _ in servers.values():
            server.stop()
    kind = "scikit-learn (--no-compile)" if args.no_compile else "compiled kernel"
    print(
        f"\nbreast_cancer LR, {kind}, {args.workers} worker(s), wrk c={args.connections}, "
        f"{args.rounds} interleaved rounds of {args.seconds:.0f} s (medians)"
    )
    for mode in ("on", "off"):
        med_rps, med_p99 = statistics.median(rps[mode]), statistics.median(p99[mode])
        print(f"  batching {mode:>3}: {med_rps:8,.0f} req/s  p99 {med_p99:7.1f} ms")
    ratio = statistics.median(rps["on"]) / statistics.median(rps["off"])
    on_p99 = statistics.median(p99["on"])
    verdict = "met" if ratio >= 1.5 and on_p99 <= 25.0 else "MISSED"
    print(f"  on/off req/s {ratio:.2f}x, p99 with batching {on_p99:.1f} ms (target >= 1.5x and <= 25 ms: {verdict})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
