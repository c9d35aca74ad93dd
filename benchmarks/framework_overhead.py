"""What does modelport cost on top of a deep-learning framework's own call?

One ``torch.export`` program (a 64-32-10 MLP trained on scikit-learn's digits), served two
ways on uvicorn with one worker each, driven by wrk in interleaved rounds at c=1:

  modelport   ``modelport serve REPO`` (V2 infer; validation, metrics, the program under inference_mode)
  bare        benchmarks/apps/bare_torch_app.py: orjson -> numpy -> the same program -> orjson

for a one-row and a 1,000-row request. Both answers are checked equal before timing. The
medians over rounds are reported with modelport/bare ratios and modelport's added
milliseconds per request. (TensorFlow/Keras is not a modelport flavor yet; torch stands in.)
Run:  python benchmarks/framework_overhead.py [--seconds 3 --rounds 3]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import BENCH, DRIVERS, ROOT, Server, free_port, machine, median, post


def build_program(target: Path) -> None:
    import numpy as np
    import torch
    from sklearn.datasets import load_digits

    x_all, y_all = load_digits(return_X_y=True)
    x = torch.from_numpy((x_all / 16.0).astype(np.float32))
    y = torch.from_numpy(y_all)
    torch.manual_seed(0)
    hidden, out = torch.nn.Linear(64, 32), torch.nn.Linear(32, 10)
    params = [*hidden.parameters(), *out.parameters()]
    optimiser = torch.optim.Adam(params, lr=0.01)
    for _ in range(60):
        optimiser.zero_grad()
        torch.nn.functional.cross_entropy(out(torch.relu(hidden(x))), y).backward()
        optimiser.step()

    class Digits(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.hidden, self.out = hidden, out

        def forward(self, pixels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            p = torch.softmax(self.out(torch.relu(self.hidden(pixels))), dim=1)
            return p, p.argmax(dim=1)

    program = torch.export.export(Digits().eval(), (x[:4],), dynamic_shapes={"pixels": {0: torch.export.Dim("batch")}})
    torch.export.save(program, target)


def body(rows: int) -> bytes:
    import numpy as np
    from sklearn.datasets import load_digits

    x = (load_digits().data / 16.0).astype(np.float32)
    picked = x[np.arange(rows) % len(x)]
    tensor = {"name": "pixels", "shape": [rows, 64], "datatype": "FP32", "data": picked.ravel().tolist()}
    return json.dumps({"inputs": [tensor]}).encode()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=3.0, help="length of each measured run")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds; medians are reported")
    parser.add_argument("--src", type=Path, default=ROOT / "src", help="the modelport source tree to serve with")
    args = parser.parse_args(argv)

    workdir = Path(tempfile.mkdtemp(prefix="modelport-framework-"))
    (workdir / "models" / "digits").mkdir(parents=True)
    program = workdir / "models" / "digits" / "model.pt2"
    build_program(program)
    py = sys.executable
    port = free_port()
    mp = Server(
        "modelport",
        [py, "-m", "modelport.cli", "serve", str(workdir / "models"), "--host", "127.0.0.1", "--port", str(port)],
        f"http://127.0.0.1:{port}/v2/health/ready",
        port,
        env={"PYTHONPATH": os.pathsep.join([str(args.src), os.environ.get("PYTHONPATH", "")])},
    )
    bport = free_port()
    bare = Server(
        "bare",
        [py, "-m", "uvicorn", "bare_torch_app:app", "--app-dir", str(BENCH / "apps"), "--host", "127.0.0.1"]
        + ["--port", str(bport), "--log-level", "warning", "--no-access-log"],
        f"http://127.0.0.1:{bport}/",
        bport,
        env={"BENCH_MODEL": str(program)},
    )
    urls = {
        "modelport": f"http://127.0.0.1:{port}/v2/models/digits/infer",
        "bare": f"http://127.0.0.1:{bport}/v2/models/digits/infer",
    }
    bodies = {1: body(1), 1000: body(1000)}
    drive = DRIVERS["wrk"]
    print(f"machine: {machine()}", file=sys.stderr)
    runs: dict[tuple[str, int], dict[str, list[float]]] = {
        (n, r): {"p50": [], "p99": [], "rps": []} for n in urls for r in bodies
    }
    try:
        for server in (mp, bare):
            print(f"started {server.name} in {server.start(log_dir=workdir):.2f} s", file=sys.stderr)
        for rows, payload in bodies.items():  # the same answer before timing
            answers = {}
            for name, url in urls.items():
                status, text = post(url, payload)
                if status != 200:
                    raise SystemExit(f"{name} answered {status}: {text[:300]!r}")
                answers[name] = {o["name"]: o["data"] for o in json.loads(text)["outputs"]}
            if answers["modelport"]["argmax"] != answers["bare"]["argmax"] or any(
                abs(a - b) > 1e-6
                for a, b in zip(answers["modelport"]["softmax"], answers["bare"]["softmax"], strict=True)
            ):
                raise SystemExit(f"answers differ for {rows} rows")
            for url in urls.values():
                drive(url, payload, 1, 1.0)  # warm up
        for r in range(args.rounds):
            order = list(urls) if r % 2 == 0 else list(reversed(urls))
            for rows, payload in bodies.items():
                for name in order:
                    load = drive(urls[name], payload, 1, args.seconds)
                    if load.errors:
                        print(f"warning: {name}: {load.errors} errors", file=sys.stderr)
                    for key in ("p50", "p99", "rps"):
                        runs[(name, rows)][key].append(getattr(load, key))
                    print(
                        f"round {r + 1} {name:>9} {rows:>4} rows: p50 {load.p50:.3f} ms p99 {load.p99:.3f} ms",
                        file=sys.stderr,
                    )
    finally:
        mp.stop()
        bare.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    med = {k: {m: median(v) for m, v in d.items()} for k, d in runs.items()}
    lines = [
        f"torch.export MLP (digits), V2 JSON, 1 uvicorn worker each, wrk c=1, {args.rounds} interleaved rounds "
        f"of {args.seconds:g} s (medians)",
        "",
        "| rows | server | p50 (ms) | p99 (ms) | req/s |",
        "| ---: | --- | ---: | ---: | ---: |",
    ]
    for rows in bodies:
        for name in urls:
            m = med[(name, rows)]
            lines.append(f"| {rows} | {name} | {m['p50']:.3f} | {m['p99']:.3f} | {m['rps']:,.0f} |")
    lines.append("")
    for rows in bodies:
        a, b = med[("modelport", rows)], med[("bare", rows)]
        lines.append(
            f"{rows} rows: modelport / bare p50 {a['p50'] / b['p50']:.2f}x (+{a['p50'] - b['p50']:.3f} ms), "
            f"p99 {a['p99'] / b['p99']:.2f}x"
        )
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
