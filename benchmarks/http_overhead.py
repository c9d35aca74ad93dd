"""What does modelport's HTTP layer cost over a bare ASGI app, and which HTTP server serves it best?

Serves the breast_cancer StandardScaler+LogisticRegression pipeline and a constant-JSON floor
several ways, every server with the same worker count, and drives each with wrk (or hey) in
interleaved rounds (one run, so the ratios share the machine's noise):

  modelport               ``modelport serve REPO --workers 2`` (granian; V2 infer asking for predict_proba)
  modelport --no-compile  the same, calling scikit-learn itself instead of compiled kernels
  modelport on uvicorn    the same app under ``uvicorn --factory`` (uvicorn's public interface only)
  modelport (old tree)    ``--old-src DIR``: an older source tree's ``modelport serve`` (e.g. a12c495:
                          uvicorn with a subclassed protocol and a coalescing transport)
  bare                    benchmarks/apps/bare_sklearn_app.py under uvicorn: orjson -> numpy -> predict_proba
  floor (uvicorn)         benchmarks/apps/constant_app.py: the same-size constant JSON, no model
  floor (granian)         the same app under granian's ASGI interface

c=1 with a single-row request gives p50/p99 latency; c=32 gives req/s. Medians over rounds are
reported, with each modelport row against the floor on the same HTTP server and the targets
(issue 10: p50 <= 1.5x the floor's, req/s >= 0.5x). Run:
  python benchmarks/http_overhead.py [--seconds 5 --rounds 3 --old-src /path/to/old/src]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (
    BENCH,
    DRIVERS,
    ROOT,
    Server,
    breast_cancer_model,
    free_port,
    machine,
    median,
    post,
    sample_rows,
    scratch_dir,
    tool_version,
    v2_body,
)

P50_TARGET = 1.5  # modelport p50 / floor p50 at most (same HTTP server)
RPS_TARGET = 0.5  # modelport req/s / floor req/s at least
# Which floor each modelport row is measured against: the one on its own HTTP server.
FLOOR_OF = {
    "modelport": "floor (granian)",
    "modelport --no-compile": "floor (granian)",
    "modelport on uvicorn": "floor (uvicorn)",
    "modelport (old tree)": "floor (granian)",  # main has served on granian since issue 10 item 2
}


def servers(
    model: Path, repo: Path, workers: int, src: Path, old_src: Path | None
) -> dict[str, tuple[Server, str, bytes]]:
    """name -> (server, URL to load, request body)."""
    py = sys.executable
    row = v2_body(sample_rows(1))
    infer = v2_body(sample_rows(1), ["predict_proba"])
    out: dict[str, tuple[Server, str, bytes]] = {}

    def modelport(name: str, tree: Path, *extra: str) -> None:
        port = free_port()
        argv = [py, "-m", "modelport.cli", "serve", str(repo), "--host", "127.0.0.1", "--port", str(port)]
        server = Server(
            name,
            [*argv, "--workers", str(workers), *extra],
            f"http://127.0.0.1:{port}/v2/health/ready",
            port,
            env={"PYTHONPATH": os.pathsep.join([str(tree), os.environ.get("PYTHONPATH", "")])},
        )
        out[name] = (server, f"http://127.0.0.1:{port}/v2/models/breast_cancer/infer", infer)

    modelport("modelport", src)
    modelport("modelport --no-compile", src, "--no-compile")
    if old_src is not None:
        modelport("modelport (old tree)", old_src)
    port = free_port()
    out["modelport on uvicorn"] = (
        Server(
            "modelport on uvicorn",
            [py, "-m", "uvicorn", "--factory", "modelport_app:app", "--app-dir", str(BENCH / "apps")]
            + ["--host", "127.0.0.1", "--port", str(port), "--workers", str(workers), "--log-level", "warning"]
            + ["--no-access-log"],
            f"http://127.0.0.1:{port}/v2/health/ready",
            port,
            env={"BENCH_REPO": str(repo), "PYTHONPATH": os.pathsep.join([str(src), os.environ.get("PYTHONPATH", "")])},
        ),
        f"http://127.0.0.1:{port}/v2/models/breast_cancer/infer",
        infer,
    )
    for name, module in (("bare", "bare_sklearn_app"), ("floor (uvicorn)", "constant_app")):
        port = free_port()
        server = Server(
            name,
            [py, "-m", "uvicorn", f"{module}:app", "--app-dir", str(BENCH / "apps"), "--host", "127.0.0.1"]
            + ["--port", str(port), "--workers", str(workers), "--log-level", "warning", "--no-access-log"],
            f"http://127.0.0.1:{port}/",
            port,
            env={"BENCH_MODEL": str(model)},
        )
        out[name] = (server, f"http://127.0.0.1:{port}/v2/models/breast_cancer/infer", row)
    port = free_port()
    out["floor (granian)"] = (
        Server(
            "floor (granian)",
            [py, "-m", "granian", "--interface", "asgi", "constant_app:app", "--working-dir", str(BENCH / "apps")]
            + ["--host", "127.0.0.1", "--port", str(port), "--workers", str(workers), "--log-level", "warning"]
            + ["--no-ws", "--http", "1"],
            f"http://127.0.0.1:{port}/",
            port,
        ),
        f"http://127.0.0.1:{port}/v2/models/breast_cancer/infer",
        row,
    )
    return out


def check_answers(found: dict[str, tuple[Server, str, bytes]]) -> None:
    """modelport and the bare app must give the same probabilities before we time them."""
    probs = {}
    for name in ("modelport", "modelport --no-compile", "modelport on uvicorn", "modelport (old tree)", "bare"):
        if name not in found:
            continue
        _, url, body = found[name]
        status, answer = post(url, body)
        if status != 200:
            raise SystemExit(f"{name} answered {status} to the benchmark request: {answer[:300]!r}")
        outputs = {o["name"]: o["data"] for o in json.loads(answer)["outputs"]}
        probs[name] = [round(float(v), 9) for v in outputs["predict_proba"]]
    for name in probs:
        if "bare" not in probs:
            break
        if any(abs(a - b) > 1e-9 for a, b in zip(probs[name], probs["bare"], strict=True)):
            raise SystemExit(f"answers differ: {name} {probs[name]} vs bare {probs['bare']}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=5.0, help="length of each measured run")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds; medians are reported")
    parser.add_argument("--workers", type=int, default=2, help="uvicorn workers for every server")
    parser.add_argument("--driver", choices=sorted(DRIVERS), default="wrk", help="load generator")
    parser.add_argument("--connections", type=int, default=32, help="connections for the throughput run")
    parser.add_argument("--src", type=Path, default=ROOT / "src", help="the modelport source tree to serve with")
    parser.add_argument(
        "--old-src", type=Path, default=None, help="also serve an older source tree (e.g. a git worktree's src)"
    )
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    parser.add_argument(
        "--only",
        default="",
        help="comma-separated server names to run (e.g. 'modelport,modelport (old tree),floor (granian)'): "
        "fewer servers leave room for more rounds on a noisy machine",
    )
    args = parser.parse_args(argv)

    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "modelport-bench"
    model = breast_cancer_model(cache)
    workdir = scratch_dir("modelport-http-")
    repo = workdir / "models"
    (repo / "breast_cancer").mkdir(parents=True)
    shutil.copy(model, repo / "breast_cancer" / "model.joblib")
    drive = DRIVERS[args.driver]
    found = servers(model, repo, args.workers, args.src, args.old_src)
    if args.only:
        wanted = {n.strip() for n in args.only.split(",")}
        unknown = wanted - set(found)
        if unknown:
            raise SystemExit(f"--only: no server named {', '.join(sorted(unknown))}; servers: {', '.join(found)}")
        found = {n: v for n, v in found.items() if n in wanted}
    print(f"machine: {machine()}", file=sys.stderr)
    try:
        for name, (server, _, _) in found.items():
            took = server.start(log_dir=workdir)
            print(f"started {name} in {took:.2f} s: {' '.join(server.argv)}", file=sys.stderr)
        check_answers(found)
        for _, url, body in found.values():  # warm up every worker and connection path
            drive(url, body, args.connections, 1.0)
        runs: dict[str, dict[str, list[float]]] = {
            n: {"p50": [], "p99": [], "rps": [], "p99_c": [], "cpu_us": []} for n in found
        }
        names = list(found)
        for r in range(args.rounds):
            order = names[r % len(names) :] + names[: r % len(names)]
            for name in order:
                server, url, body = found[name]
                single = drive(url, body, 1, args.seconds)
                cpu = server.cpu_seconds()
                many = drive(url, body, args.connections, args.seconds)
                # CPU per request under load: robust to other processes' noise, unlike wall-clock figures.
                runs[name]["cpu_us"].append((server.cpu_seconds() - cpu) / max(1, many.requests) * 1e6)
                for load in (single, many):
                    if load.errors:
                        print(f"warning: {name}: {load.errors} errors in a run", file=sys.stderr)
                runs[name]["p50"].append(single.p50)
                runs[name]["p99"].append(single.p99)
                runs[name]["rps"].append(many.rps)
                runs[name]["p99_c"].append(many.p99)
                print(
                    f"round {r + 1}/{args.rounds} {name:>9}: c=1 p50 {single.p50:.3f} ms p99 {single.p99:.3f} ms; "
                    f"c={args.connections} {many.rps:,.0f} req/s p99 {many.p99:.2f} ms, "
                    f"{runs[name]['cpu_us'][-1]:.0f} CPU us/request",
                    file=sys.stderr,
                )
    finally:
        for server, _, _ in found.values():
            server.stop()
    med = {n: {k: median(v) for k, v in d.items()} for n, d in runs.items()}
    report = render(med, args)
    print(report)
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "medians": med,
                    "runs": runs,
                    "commands": {n: s.argv for n, (s, _, _) in found.items()},
                    "versions": versions(args.driver),
                    "machine": machine(),
                    "args": {k: str(v) for k, v in vars(args).items()},
                },
                indent=2,
            )
        )
    return 0


def versions(driver: str) -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version(), driver: tool_version(driver) if driver != "modelport" else "-"}
    for pkg in ("modelport", "granian", "uvicorn", "uvloop", "httptools", "orjson", "numpy", "scikit-learn"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = "not installed"
    return out


def render(med: dict[str, dict[str, float]], args: Any) -> str:
    c = args.connections
    lines = [
        f"HTTP overhead, breast_cancer single-row V2 request, {args.workers} workers each, "
        f"{args.driver}, {args.rounds} interleaved rounds of {args.seconds:g} s (medians)",
        "",
        f"| server | c=1 p50 (ms) | c=1 p99 (ms) | c={c} req/s | c={c} p99 (ms) | c={c} server CPU µs/request |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, m in med.items():
        lines.append(
            f"| {name} | {m['p50']:.3f} | {m['p99']:.3f} | {m['rps']:,.0f} | {m['p99_c']:.2f} | {m['cpu_us']:.0f} |"
        )
    lines.append("")
    for name, floor_name in FLOOR_OF.items():
        if name not in med or floor_name not in med:
            continue
        mp, floor = med[name], med[floor_name]
        p50_ratio = mp["p50"] / floor["p50"]
        rps_ratio = mp["rps"] / floor["rps"]
        lines.append(
            f"{name} / {floor_name}: p50 {p50_ratio:.2f}x "
            f"(target <= {P50_TARGET}x: {verdict(p50_ratio <= P50_TARGET)}),"
            f"  req/s {rps_ratio:.2f}x (target >= {RPS_TARGET}x: {verdict(rps_ratio >= RPS_TARGET)})"
        )
    for name in ("modelport", "modelport (old tree)", "bare"):
        if name in med and "floor (uvicorn)" in med:
            m, floor = med[name], med["floor (uvicorn)"]
            lines.append(
                f"{name} / floor (uvicorn): p50 {m['p50'] / floor['p50']:.2f}x,  req/s {m['rps'] / floor['rps']:.2f}x"
            )
    if "modelport (old tree)" in med:
        new, old = med["modelport"], med["modelport (old tree)"]
        lines.append(
            f"modelport / modelport (old tree): p50 {new['p50'] / old['p50']:.2f}x,"
            f"  req/s {new['rps'] / old['rps']:.2f}x,  CPU/request {new['cpu_us'] / old['cpu_us']:.2f}x"
        )
    return "\n".join(lines)


def verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"


if __name__ == "__main__":
    raise SystemExit(main())
