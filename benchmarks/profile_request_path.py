"""Where does a single-row request spend its time inside ``modelport serve``? A py-spy profile under load.

    PYTHONPATH=src python benchmarks/profile_request_path.py [--seconds 10] [--concurrency 1] [--no-compile]

Serves the breast_cancer StandardScaler + LogisticRegression pipeline with one worker, drives it
with ``hey`` (V2 infer, one row, asking for predict_proba) while ``py-spy record`` samples the
server at 1 kHz, and prints the functions with the most samples on the stack ("total") and at
the top of it ("self"), as shares of all samples. Idle samples (the event loop waiting in
epoll) are counted and shown separately, so the shares of busy time are readable. Needs py-spy
(pip) and hey (apt), and ptrace rights over the server (root, or ptrace_scope 0).
"""

from __future__ import annotations

import argparse
import collections
import json
import shutil
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import ROOT, Server, breast_cancer_model, free_port, sample_rows, scratch_dir, v2_body

IDLE = ("select", "poll", "epoll", "_run_once", "run_forever")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--no-compile", action="store_true")
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args()
    for tool in ("py-spy", "hey"):
        if shutil.which(tool) is None and not (Path(sys.executable).parent / tool).exists():
            print(f"{tool} is not installed; see the docstring", file=sys.stderr)
            return 2
    pyspy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    work = scratch_dir("modelport-profile-")
    model = breast_cancer_model(work / "cache")
    repo = work / "models" / "breast_cancer"
    repo.mkdir(parents=True)
    shutil.copy(model, repo / "model.joblib")
    port = free_port()
    argv = [sys.executable, "-m", "modelport.cli", "serve", str(repo.parent), "--port", str(port)]
    argv += ["--log-format", "json"] + (["--no-compile"] if args.no_compile else [])
    url = f"http://127.0.0.1:{port}/v2/models/breast_cancer/infer"
    body = v2_body(sample_rows(1), ["predict_proba"])
    server = Server("modelport", argv, url, port, env={"PYTHONPATH": str(ROOT / "src")}, probe_body=body)
    server.start(log_dir=work)
    assert server.proc is not None
    body_file = work / "body.json"
    body_file.write_bytes(body)
    raw = work / "profile.txt"
    try:
        spy = subprocess.Popen(
            [
                pyspy,
                "record",
                "--pid",
                str(server.proc.pid),
                "--subprocesses",
                "--rate",
                "1000",
                "--format",
                "raw",
                "--gil",
            ]
            + ["--duration", str(int(args.seconds)), "--output", str(raw), "--nonblocking"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        hey = subprocess.run(
            ["hey", "-z", f"{args.seconds}s", "-c", str(args.concurrency), "-m", "POST", "-T", "application/json"]
            + ["-D", str(body_file), url],
            capture_output=True,
            text=True,
        )
        _, err = spy.communicate(timeout=args.seconds + 60)
    finally:
        server.stop()
    if not raw.exists():
        print(f"py-spy wrote no profile: {err.decode(errors='replace')}", file=sys.stderr)
        return 1
    summary = [ln for ln in hey.stdout.splitlines() if "Requests/sec" in ln or "50%" in ln or "99%" in ln]
    print(f"hey -c {args.concurrency} for {args.seconds:.0f} s: " + " | ".join(s.strip() for s in summary))
    report(raw, args.top)
    return 0


def report(raw: Path, top: int) -> None:
    """Aggregate py-spy's collapsed stacks into total/self shares of busy samples."""
    total: collections.Counter[str] = collections.Counter()
    own: collections.Counter[str] = collections.Counter()
    busy = idle = 0
    for line in raw.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack:
            continue
        count = int(count_text)
        frames = stack.split(";")
        leaf = frames[-1]
        if any(word in leaf for word in IDLE):
            idle += count
            continue
        busy += count
        own[leaf] += count
        for frame in set(frames[1:]):
            total[frame] += count
    print(f"samples: {busy} busy, {idle} idle (event loop waiting)")
    print(json.dumps({"busy": busy, "idle": idle}))
    print(f"\n{'total %':>8} {'self %':>7}  function (file:line)")
    for frame, n in total.most_common(top):
        print(f"{100 * n / busy:8.1f} {100 * own.get(frame, 0) / busy:7.1f}  {frame}")
    print(f"\ntop self time:\n{'self %':>7}  function")
    for frame, n in own.most_common(top):
        print(f"{100 * n / busy:7.1f}  {frame}")


if __name__ == "__main__":
    sys.exit(main())
