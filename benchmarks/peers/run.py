"""modelport against the model servers people use instead, on one joblib model, in one interleaved run.

    python benchmarks/peers/run.py [--seconds 5 --rounds 3 --peers mlserver,kserve,bentoml,mlflow,flask]

Each peer gets its own venv under the cache dir (``~/.cache/modelport-bench/venvs/<peer>``,
built once; ``--reinstall`` rebuilds), with the runner's scikit-learn version pinned so the
same pickle loads everywhere. Every server serves the breast_cancer StandardScaler +
LogisticRegression pipeline with 2 workers where it has the knob, answers predict_proba,
and is checked to give modelport's probabilities before it is timed. Then, in rounds
that rotate the order, wrk (or hey) measures: single-row p50/p99 at c=1, req/s and p99
at c=32 and c=64, and a 1,000-row request at c=1. Cold start (spawn to first answered
prediction) and RSS and PSS of the server's process tree after the load are recorded too.
``--peers ''`` runs modelport alone; ``--compile-cache cold`` times modelport's first start
of the artifact on the machine (default: warm, as on every later start).
A peer that fails to install or start is reported and skipped, never faked.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from common import (  # noqa: E402
    DRIVERS,
    ROOT,
    Server,
    _tree,
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

LOOPBACK = "127.0.0.1"


@dataclass
class Launch:
    """How one server is started and called."""

    argv: list[str]
    url: str  # the predict endpoint
    body: Callable[[list[list[float]]], bytes]
    env: dict[str, str] = field(default_factory=dict)
    cwd: Path | None = None


@dataclass
class Peer:
    name: str
    packages: list[str]  # pip requirements besides scikit-learn
    launch: Callable[[Peer, Path, Path, int, int], Launch]  # (peer, python, model, port, workers)
    versions_of: list[str]
    note: str = ""


def _json(obj: Any) -> bytes:
    return json.dumps(obj).encode()


def _bin(python: Path, tool: str) -> str:
    return str(python.parent / tool)


# --------------------------------------------------------------------------- peers


def launch_modelport(protocol: str, src: Path, compile_cache: Path) -> Callable[[Peer, Path, Path, int, int], Launch]:
    def launch(peer: Peer, python: Path, model: Path, port: int, workers: int) -> Launch:
        repo = scratch_dir("modelport-peers-") / "models"
        (repo / "breast_cancer").mkdir(parents=True)
        shutil.copy(model, repo / "breast_cancer" / "model.joblib")
        argv = [str(python), "-m", "modelport.cli", "serve", str(repo), "--host", LOOPBACK, "--port", str(port)]
        argv += ["--workers", str(workers)]
        env = {"PYTHONPATH": os.pathsep.join([str(src), os.environ.get("PYTHONPATH", "")])}
        env["MODELPORT_COMPILE_CACHE"] = str(compile_cache)
        base = f"http://{LOOPBACK}:{port}"
        if protocol == "v2":
            return Launch(
                argv, f"{base}/v2/models/breast_cancer/infer", lambda rows: v2_body(rows, ["predict_proba"]), env
            )
        return Launch(argv, f"{base}/v1/models/breast_cancer:predict", lambda rows: _json({"instances": rows}), env)

    return launch


def launch_mlserver(peer: Peer, python: Path, model: Path, port: int, workers: int) -> Launch:
    work = scratch_dir("mlserver-")
    settings = json.loads((HERE / "mlserver" / "settings.json").read_text())
    settings.update(
        http_port=port, grpc_port=free_port(), metrics_port=free_port(), parallel_workers=workers, host=LOOPBACK
    )
    (work / "settings.json").write_text(json.dumps(settings))
    model_settings = json.loads((HERE / "mlserver" / "model-settings.json").read_text())
    model_settings["parameters"]["uri"] = str(model)
    (work / "breast_cancer").mkdir()
    (work / "breast_cancer" / "model-settings.json").write_text(json.dumps(model_settings))
    return Launch(
        [_bin(python, "mlserver"), "start", str(work)],
        f"http://{LOOPBACK}:{port}/v2/models/breast_cancer/infer",
        lambda rows: v2_body(rows, ["predict_proba"]),
        cwd=work,
    )


def launch_kserve(peer: Peer, python: Path, model: Path, port: int, workers: int) -> Launch:
    argv = [str(python), str(HERE / "kserve" / "model.py"), "--model_name", "breast_cancer", "--model_path", str(model)]
    # KServe 0.21's multi-process mode (uvicorn workers spawned with the model pickled into them) lost
    # every child right after start here, silently and in a loop, so KServe runs one worker.
    argv += ["--http_port", str(port), "--grpc_port", str(free_port()), "--workers", "1"]
    return Launch(
        argv,
        f"http://{LOOPBACK}:{port}/v1/models/breast_cancer:predict",
        lambda rows: _json({"instances": rows}),
    )


def launch_bentoml(peer: Peer, python: Path, model: Path, port: int, workers: int) -> Launch:
    home = python.parent.parent / "bentoml-home"
    env = {"BENCH_MODEL": str(model), "BENCH_WORKERS": str(workers), "BENTOML_HOME": str(home)}
    env["BENTOML_DO_NOT_TRACK"] = "true"
    return Launch(
        [_bin(python, "bentoml"), "serve", "service:BreastCancer", "--host", LOOPBACK, "--port", str(port)],
        f"http://{LOOPBACK}:{port}/predict_proba",
        lambda rows: _json({"input": rows}),
        env,
        HERE / "bentoml",
    )


def launch_mlflow(peer: Peer, python: Path, model: Path, port: int, workers: int) -> Launch:
    out = python.parent.parent / "mlflow-model"
    subprocess.run([str(python), str(HERE / "mlflow" / "make_model.py"), str(model), str(out)], check=True)
    argv = [_bin(python, "mlflow"), "models", "serve", "-m", str(out), "--env-manager", "local"]
    argv += ["-h", LOOPBACK, "-p", str(port), "-w", str(workers)]
    env = {"PATH": f"{python.parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    return Launch(argv, f"http://{LOOPBACK}:{port}/invocations", lambda rows: _json({"inputs": rows}), env)


def launch_flask(peer: Peer, python: Path, model: Path, port: int, workers: int) -> Launch:
    argv = [_bin(python, "gunicorn"), "-w", str(workers), "--threads", "4", "-b", f"{LOOPBACK}:{port}", "app:app"]
    return Launch(
        argv,
        f"http://{LOOPBACK}:{port}/predict",
        lambda rows: _json({"instances": rows}),
        {"BENCH_MODEL": str(model)},
        HERE / "flask",
    )


PEERS = {
    # MLServer 1.7.1's inference-pool workers call asyncio.get_event_loop() at start, which uvloop 0.22+
    # refuses outside a running loop (the workers die and no model loads), hence the uvloop pin.
    "mlserver": Peer(
        "mlserver",
        ["mlserver", "mlserver-sklearn", "uvloop<0.22"],
        launch_mlserver,
        ["mlserver", "mlserver-sklearn", "uvloop"],
        "uvloop<0.22 for MLServer's workers",
    ),
    "kserve": Peer(
        "kserve",
        ["kserve"],
        launch_kserve,
        ["kserve"],
        "custom kserve.Model, V1, 1 worker: its --workers 2 children died",
    ),
    "bentoml": Peer("bentoml", ["bentoml"], launch_bentoml, ["bentoml"]),
    "mlflow": Peer("mlflow", ["mlflow"], launch_mlflow, ["mlflow"], "mlflow models serve --env-manager local"),
    "flask": Peer("flask", ["flask", "gunicorn"], launch_flask, ["flask", "gunicorn"], "gunicorn gthread, 4 threads"),
}


# --------------------------------------------------------------------------- venvs


class InstallFailed(Exception):
    pass


def sklearn_version() -> str:
    from importlib.metadata import version

    return version("scikit-learn")


def ensure_venv(peer: Peer, cache: Path, reinstall: bool) -> tuple[Path, dict[str, str], str]:
    """(python, versions, note) for the peer's venv; builds it when missing or out of date."""
    venv = cache / "venvs" / peer.name
    python = venv / "bin" / "python"
    spec = json.dumps({"packages": peer.packages, "sklearn": sklearn_version(), "py": platform.python_version()})
    stamp = venv / ".bench-installed"
    log = cache / "logs" / f"install-{peer.name}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    note = ""
    if reinstall or not stamp.exists() or json.loads(stamp.read_text()).get("spec") != spec:
        with log.open("w") as out:
            if reinstall or not python.exists():  # otherwise pip brings the existing venv up to the spec
                subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True, stdout=out, stderr=out)
            pinned = [*peer.packages, f"scikit-learn=={sklearn_version()}"]
            pip = [str(python), "-m", "pip", "install", "--disable-pip-version-check"]
            done = subprocess.run([*pip, *pinned], stdout=out, stderr=out).returncode == 0
            if not done:
                out.write("\n--- pinned scikit-learn did not resolve; trying without the pin ---\n")
                out.flush()
                done = subprocess.run([*pip, *peer.packages, "scikit-learn"], stdout=out, stderr=out).returncode == 0
        if not done:
            tail = "\n".join(log.read_text(errors="replace").splitlines()[-8:])
            raise InstallFailed(f"pip install {' '.join(peer.packages)} failed (log {log}):\n{tail}")
        stamp.write_text(json.dumps({"spec": spec}))
    listed = subprocess.run([str(python), "-m", "pip", "list", "--format", "json"], capture_output=True, text=True)
    installed = {p["name"].lower(): p["version"] for p in json.loads(listed.stdout or "[]")}
    versions = {name: installed.get(name, "?") for name in [*peer.versions_of, "scikit-learn"]}
    if versions["scikit-learn"] != sklearn_version():
        note = f"scikit-learn {versions['scikit-learn']} (runner has {sklearn_version()}): model retrained in its venv"
    return python, versions, note


def model_for(python: Path, base_model: Path, note: str) -> Path:
    if not note:
        return base_model
    own = python.parent.parent / "model.joblib"
    subprocess.run([str(python), str(HERE / "train_model.py"), str(own)], check=True)
    return own


# --------------------------------------------------------------------------- measuring


def numbers(obj: Any) -> list[float]:
    if isinstance(obj, bool):
        return []
    if isinstance(obj, int | float):
        return [float(obj)]
    if isinstance(obj, dict):
        return [n for v in obj.values() for n in numbers(v)]
    if isinstance(obj, list):
        return [n for v in obj for n in numbers(v)]
    return []


def agrees(answer: bytes, expected: list[float]) -> bool:
    """The response holds the expected probabilities (in order, to 1e-6)."""
    try:
        got = numbers(json.loads(answer))
    except ValueError:
        return False
    for start in range(len(got) - len(expected) + 1):
        if all(abs(got[start + i] - e) <= 1e-6 for i, e in enumerate(expected)):
            return True
    return False


def pss_mb(server: Server) -> float:
    """Proportional set size of the server's process tree (MB): shared pages divided among their sharers,
    so forked workers sharing their parent's pages are not counted once per process as RSS counts them."""
    if server.proc is None:
        return 0.0
    total = 0
    for pid in _tree(server.proc.pid):
        try:
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total += int(line.split()[1])
                    break
        except OSError:
            pass
    return total / 1024.0


def reference_proba(model: Path, rows: list[list[float]]) -> list[float]:
    import joblib

    return [float(v) for v in joblib.load(model).predict_proba(rows).ravel()]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--peers", default=",".join(PEERS), help="comma-separated subset of: " + ", ".join(PEERS))
    parser.add_argument("--seconds", type=float, default=5.0, help="length of each measured run")
    parser.add_argument("--rounds", type=int, default=3, help="rotating rounds; medians are reported")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--driver", choices=sorted(DRIVERS), default="wrk")
    parser.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "modelport-bench")
    parser.add_argument("--src", type=Path, default=ROOT / "src", help="the modelport source tree to serve with")
    parser.add_argument("--reinstall", action="store_true", help="rebuild the peers' venvs")
    parser.add_argument("--install-only", action="store_true", help="build the venvs and stop")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    parser.add_argument(
        "--compile-cache",
        choices=["warm", "cold"],
        default="warm",
        help="modelport's compile cache at its timed start: warm (filled by an untimed start, as on every "
        "restart) or cold (empty, the first start of the artifact on the machine)",
    )
    args = parser.parse_args(argv)
    wanted = [p.strip() for p in args.peers.split(",") if p.strip()]
    unknown = [p for p in wanted if p not in PEERS]
    if unknown:
        parser.error(f"unknown peers {unknown}; known: {', '.join(PEERS)}")
    model = breast_cancer_model(args.cache)
    skipped: dict[str, str] = {}
    ready: dict[str, tuple[Path, dict[str, str], str]] = {}

    def install(name: str) -> tuple[str, Any]:
        try:
            return name, ensure_venv(PEERS[name], args.cache, args.reinstall)
        except (InstallFailed, subprocess.CalledProcessError) as exc:
            return name, exc

    with ThreadPoolExecutor(max_workers=3) as pool:
        for name, outcome in pool.map(install, wanted):
            if isinstance(outcome, Exception):
                skipped[name] = f"install failed: {outcome}"
                print(f"[{name}] {skipped[name]}", file=sys.stderr)
            else:
                ready[name] = outcome
                print(f"[{name}] venv ready: {outcome[1]} {outcome[2]}", file=sys.stderr)
    if args.install_only:
        return 0 if not skipped else 1

    from importlib.metadata import version

    runner = Path(sys.executable)
    entries: dict[str, dict[str, Any]] = {
        "modelport v2": {"python": runner, "versions": {"modelport": version("modelport")}, "note": "V2 infer"},
        "modelport v1": {"python": runner, "versions": {"modelport": version("modelport")}, "note": "V1 :predict"},
    }
    compile_cache = scratch_dir("modelport-compile-cache-")
    launchers: dict[str, Callable[[Peer, Path, Path, int, int], Launch]] = {
        "modelport v2": launch_modelport("v2", args.src, compile_cache),
        "modelport v1": launch_modelport("v1", args.src, compile_cache / "v1"),
    }
    for name, (python, versions, note) in ready.items():
        entries[name] = {
            "python": python,
            "versions": versions,
            "note": "; ".join(x for x in (PEERS[name].note, note) if x),
        }
        launchers[name] = PEERS[name].launch
    one, thousand = sample_rows(1), sample_rows(1000)
    expected = reference_proba(model, one)
    log_dir = args.cache / "logs"
    servers: dict[str, tuple[Server, Launch]] = {}
    print(f"machine: {machine()}", file=sys.stderr)
    if args.compile_cache == "warm":
        for name in ("modelport v2", "modelport v1"):
            port = free_port()
            launch = launchers[name](Peer(name, [], launchers[name], []), runner, model, port, 1)
            warmup = Server(f"{name} warm-up", launch.argv, launch.url, port, launch.env, None, launch.body(one))
            try:
                warmup.start(timeout=180, log_dir=log_dir)
            finally:
                warmup.stop()
    try:
        for name, entry in entries.items():  # one at a time, so cold starts do not compete
            peer = PEERS.get(name, Peer(name, [], launchers[name], []))
            try:
                own_model = model_for(entry["python"], model, entry["note"] if "retrained" in entry["note"] else "")
                port = free_port()
                launch = launchers[name](peer, entry["python"], own_model, port, args.workers)
                server = Server(name, launch.argv, launch.url, port, launch.env, launch.cwd, launch.body(one))
                took = server.start(timeout=180, log_dir=log_dir)
            except (RuntimeError, subprocess.CalledProcessError, OSError) as exc:
                skipped[name] = f"did not start: {exc}"
                print(f"[{name}] {skipped[name]}", file=sys.stderr)
                if "server" in locals():
                    server.stop()
                continue
            status, answer = post(launch.url, launch.body(one))
            if status != 200 or not agrees(answer, expected):
                skipped[name] = f"wrong answer ({status}): {answer[:200]!r}, expected probabilities {expected}"
                print(f"[{name}] {skipped[name]}", file=sys.stderr)
                server.stop()
                continue
            entry["cold_start_s"] = took
            entry["argv"] = launch.argv
            servers[name] = (server, launch)
            print(f"[{name}] first answer {took:.2f} s after spawn: {' '.join(launch.argv)}", file=sys.stderr)
        drive = DRIVERS[args.driver]
        for _, launch in servers.values():
            drive(launch.url, launch.body(one), 32, 1.0)  # warm-up
        keys = ("p50", "p99", "rps32", "p99_32", "rps64", "p99_64", "rows1000_p50", "errors")
        runs: dict[str, dict[str, list[float]]] = {n: {k: [] for k in keys} for n in servers}
        names = list(servers)
        big = {n: launch.body(thousand) for n, (_, launch) in servers.items()}
        for r in range(args.rounds):
            order = names[r % len(names) :] + names[: r % len(names)]
            for name in order:
                _, launch = servers[name]
                single = drive(launch.url, launch.body(one), 1, args.seconds)
                c32 = drive(launch.url, launch.body(one), 32, args.seconds)
                c64 = drive(launch.url, launch.body(one), 64, args.seconds)
                rows = drive(launch.url, big[name], 1, args.seconds)
                got = runs[name]
                got["p50"].append(single.p50)
                got["p99"].append(single.p99)
                got["rps32"].append(c32.rps)
                got["p99_32"].append(c32.p99)
                got["rps64"].append(c64.rps)
                got["p99_64"].append(c64.p99)
                got["rows1000_p50"].append(rows.p50)
                got["errors"].append(single.errors + c32.errors + c64.errors + rows.errors)
                print(
                    f"round {r + 1}/{args.rounds} {name:>13}: p50 {single.p50:.2f} ms, c32 {c32.rps:,.0f}/s, "
                    f"c64 {c64.rps:,.0f}/s, 1000 rows {rows.p50:.1f} ms, errors {got['errors'][-1]:.0f}",
                    file=sys.stderr,
                )
        for name, (server, _) in servers.items():
            entries[name]["rss_mb"] = server.rss_mb()
            entries[name]["pss_mb"] = pss_mb(server)
    finally:
        for server, _ in servers.values():
            server.stop()
    med = {n: {k: median(v) if k != "errors" else sum(v) for k, v in d.items()} for n, d in runs.items()}
    print(render(med, entries, skipped, args))
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "medians": med,
                    "runs": runs,
                    "servers": {n: {k: v for k, v in e.items() if k != "python"} for n, e in entries.items()},
                    "skipped": skipped,
                    "machine": machine(),
                    "driver": f"{args.driver} {tool_version(args.driver)}",
                    "args": {k: str(v) for k, v in vars(args).items()},
                },
                indent=2,
                default=str,
            )
        )
    return 0


def render(
    med: dict[str, dict[str, float]], entries: dict[str, dict[str, Any]], skipped: dict[str, str], args: Any
) -> str:
    lines = [
        f"breast_cancer pipeline, {args.workers} workers each, {args.driver} {tool_version(args.driver)}, "
        f"{args.rounds} rotating rounds of {args.seconds:g} s per measurement (medians); "
        f"modelport's compile cache {args.compile_cache} at its start",
        "",
        "| server | versions | c=1 p50 ms | c=1 p99 ms | c=32 req/s | c=32 p99 ms | c=64 req/s | c=64 p99 ms "
        "| 1,000 rows p50 ms | cold start s | RSS MB | PSS MB | errors |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, m in med.items():
        e = entries[name]
        versions = ", ".join(f"{k} {v}" for k, v in e["versions"].items())
        if e.get("note"):
            versions += f" ({e['note']})"
        lines.append(
            f"| {name} | {versions} | {m['p50']:.2f} | {m['p99']:.2f} | {m['rps32']:,.0f} | {m['p99_32']:.1f} "
            f"| {m['rps64']:,.0f} | {m['p99_64']:.1f} | {m['rows1000_p50']:.1f} | {e['cold_start_s']:.1f} "
            f"| {e['rss_mb']:,.0f} | {e['pss_mb']:,.0f} | {m['errors']:.0f} |"
        )
    base = med.get("modelport v2")
    if base:
        lines += [
            "",
            "Ratios to modelport (V2): latency and cold start above 1 and req/s below 1 mean the peer is slower; "
            "RSS or PSS above 1 means it uses more memory.",
            "",
            "| server | c=1 p50 | c=1 p99 | c=32 req/s | c=64 req/s | 1,000 rows p50 | cold start | RSS | PSS |",
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        ]
        eb = entries["modelport v2"]
        for name, m in med.items():
            e = entries[name]
            lines.append(
                f"| {name} | {m['p50'] / base['p50']:.2f} | {m['p99'] / base['p99']:.2f} "
                f"| {m['rps32'] / base['rps32']:.2f} | {m['rps64'] / base['rps64']:.2f} "
                f"| {m['rows1000_p50'] / base['rows1000_p50']:.2f} | {e['cold_start_s'] / eb['cold_start_s']:.2f} "
                f"| {e['rss_mb'] / eb['rss_mb']:.2f} | {e['pss_mb'] / eb['pss_mb']:.2f} |"
            )
    if skipped:
        lines += ["", "Skipped (not measured):"]
        lines += [f"- {name}: {reason.splitlines()[0]}" for name, reason in skipped.items()]
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
