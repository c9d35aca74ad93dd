"""What does modelport add on top of TensorFlow's own call, for a Keras model?

The same small Keras network (breast_cancer, Normalization + Dense 8 + two heads, saved as
``.keras``) served two ways on uvicorn, one worker each, V2 JSON with FP32 inputs:

  modelport   ``modelport serve REPO`` (the tensorflow flavor: a traced signature function)
  bare        benchmarks/apps/bare_keras_app.py: orjson -> numpy -> the model through one
              tf.function -> orjson; the floor for this model over HTTP

and, in this process, the framework call alone (the traced function on a ready tensor) and
``model.predict`` for reference. One row and 1,000 rows; c=1, so p50/p99 is per-request latency.
Rounds are interleaved and medians reported. Run:
  python benchmarks/keras_overhead.py [--seconds 3 --rounds 3]   (needs tensorflow-cpu and wrk or hey)
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from common import BENCH, DRIVERS, ROOT, Server, free_port, machine, median, post

SIZES = (1, 1000)


def keras_model(cache: Path) -> Path:
    """Train and save the benchmark model once (deterministic seed); reused across runs."""
    path = cache / "keras_cancer.keras"
    if path.exists():
        return path
    import keras
    import numpy as np
    from sklearn.datasets import load_breast_cancer

    X, y = load_breast_cancer(return_X_y=True)
    X = X.astype(np.float32)
    keras.utils.set_random_seed(0)
    features = keras.Input(shape=(30,), name="features")
    norm = keras.layers.Normalization()
    norm.adapt(X)
    hidden = keras.layers.Dense(8, activation="relu")(norm(features))
    model = keras.Model(
        features,
        {"proba": keras.layers.Dense(2, activation="softmax")(hidden), "score": keras.layers.Dense(1)(hidden)},
    )
    model.compile(optimizer="adam", loss={"proba": "sparse_categorical_crossentropy", "score": "mse"})
    model.fit(X, {"proba": y, "score": y.astype(np.float32)}, epochs=3, batch_size=64, verbose=0)
    path.parent.mkdir(parents=True, exist_ok=True)
    model.save(path)
    return path


def body(rows: int) -> bytes:
    from sklearn.datasets import load_breast_cancer

    X = load_breast_cancer().data
    data = [float(v) for i in range(rows) for v in X[i % len(X)]]
    return json.dumps(
        {"inputs": [{"name": "features", "datatype": "FP32", "shape": [rows, 30], "data": data}]}
    ).encode()


def framework_call(model_path: Path, rows: int, seconds: float) -> dict[str, float]:
    """Median/p99 ms of the traced call on a ready tensor, and of ``model.predict``, in this process."""
    import keras
    import numpy as np
    import tensorflow as tf
    from sklearn.datasets import load_breast_cancer

    model = keras.saving.load_model(model_path, compile=False)
    call = tf.function(lambda x: model(x, training=False)).get_concrete_function(tf.TensorSpec([None, 30], tf.float32))
    X = load_breast_cancer().data.astype(np.float32)
    x = X[np.arange(rows) % len(X)]
    out = {}
    for name, fn in (
        ("call", lambda: {k: v.numpy() for k, v in call(tf.constant(x)).items()}),
        ("predict", lambda: model.predict(x, verbose=0)),
    ):
        fn()
        times = []
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            t = time.perf_counter()
            fn()
            times.append((time.perf_counter() - t) * 1e3)
        times.sort()
        out[f"{name}_p50"] = times[len(times) // 2]
        out[f"{name}_p99"] = times[min(len(times) - 1, int(len(times) * 0.99))]
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=3.0, help="length of each measured run")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds; medians are reported")
    parser.add_argument("--driver", choices=sorted(DRIVERS), default="wrk", help="load generator")
    parser.add_argument("--src", type=Path, default=ROOT / "src", help="the modelport source tree to serve with")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = parser.parse_args(argv)

    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "modelport-bench"
    model = keras_model(cache)
    workdir = Path(tempfile.mkdtemp(prefix="modelport-keras-"))
    repo = workdir / "models"
    (repo / "cancer").mkdir(parents=True)
    (repo / "cancer" / "model.keras").symlink_to(model)
    py = sys.executable
    env = {
        "PYTHONPATH": os.pathsep.join([str(args.src), os.environ.get("PYTHONPATH", "")]),
        "TF_CPP_MIN_LOG_LEVEL": "2",
    }
    port = free_port()
    servers = {
        "modelport": (
            Server(
                "modelport",
                [py, "-m", "modelport.cli", "serve", str(repo), "--host", "127.0.0.1", "--port", str(port)]
                + ["--log-level", "warning"],
                f"http://127.0.0.1:{port}/v2/health/ready",
                port,
                env=env,
            ),
            f"http://127.0.0.1:{port}/v2/models/cancer/infer",
        )
    }
    port = free_port()
    servers["bare"] = (
        Server(
            "bare",
            [py, "-m", "uvicorn", "bare_keras_app:app", "--app-dir", str(BENCH / "apps"), "--host", "127.0.0.1"]
            + ["--port", str(port), "--log-level", "warning", "--no-access-log"],
            f"http://127.0.0.1:{port}/",
            port,
            env={**env, "BENCH_MODEL": str(model)},
        ),
        f"http://127.0.0.1:{port}/v2/models/cancer/infer",
    )
    drive = DRIVERS[args.driver]
    bodies = {n: body(n) for n in SIZES}
    print(f"machine: {machine()}", file=sys.stderr)
    runs: dict[str, dict[int, dict[str, list[float]]]] = {
        s: {n: {"p50": [], "p99": []} for n in SIZES} for s in servers
    }
    try:
        for name, (server, _) in servers.items():
            took = server.start(log_dir=workdir)
            print(f"started {name} in {took:.2f} s", file=sys.stderr)
        for n in SIZES:  # the two must agree before they are timed
            answers = {}
            for name, (_, url) in servers.items():
                status, raw = post(url, bodies[n])
                if status != 200:
                    raise SystemExit(f"{name} answered {status}: {raw[:300]!r}")
                answers[name] = {o["name"]: o["data"] for o in json.loads(raw)["outputs"]}
            for key, values in answers["bare"].items():
                got = answers["modelport"][key]
                if any(abs(a - b) > 1e-5 * max(1.0, abs(b)) for a, b in zip(got, values, strict=True)):
                    raise SystemExit(f"answers differ for {key} at {n} rows")
            for _, url in servers.values():
                drive(url, bodies[n], 1, 1.0)  # warm-up
        names = list(servers)
        for r in range(args.rounds):
            for name in names[r % 2 :] + names[: r % 2]:
                _, url = servers[name]
                for n in SIZES:
                    load = drive(url, bodies[n], 1, args.seconds)
                    if load.errors:
                        print(f"warning: {name} {n} rows: {load.errors} errors", file=sys.stderr)
                    runs[name][n]["p50"].append(load.p50)
                    runs[name][n]["p99"].append(load.p99)
                    print(
                        f"round {r + 1} {name:>9} {n:>5} rows: p50 {load.p50:.3f} ms p99 {load.p99:.3f} ms",
                        file=sys.stderr,
                    )
        rss = {name: server.rss_mb() for name, (server, _) in servers.items()}
    finally:
        for server, _ in servers.values():
            server.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    calls = {n: framework_call(model, n, args.seconds) for n in SIZES}
    med = {s: {n: {k: median(v) for k, v in d.items()} for n, d in per.items()} for s, per in runs.items()}
    lines = [
        f"Keras overhead, V2 JSON FP32, one uvicorn worker each, {args.driver} c=1, "
        f"{args.rounds} interleaved rounds of {args.seconds:g} s (medians)",
        "",
        "| rows | TF call p50 | model.predict p50 | bare app p50 / p99 | modelport p50 / p99 | modelport - bare |"
        " modelport / bare |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for n in SIZES:
        mp, bare, call = med["modelport"][n], med["bare"][n], calls[n]
        lines.append(
            f"| {n} | {call['call_p50']:.3f} | {call['predict_p50']:.3f} | {bare['p50']:.3f} / {bare['p99']:.3f} | "
            f"{mp['p50']:.3f} / {mp['p99']:.3f} | {mp['p50'] - bare['p50']:+.3f} | {mp['p50'] / bare['p50']:.2f}x |"
        )
    lines.append("")
    lines.append("All times in ms. TF call: the traced function on a ready tensor, in-process (no HTTP, no JSON).")
    lines.append(f"RSS after the runs: modelport {rss['modelport']:.0f} MB, bare {rss['bare']:.0f} MB.")
    print("\n".join(lines))
    if args.json:
        args.json.write_text(
            json.dumps(
                {"medians": med, "runs": runs, "framework": calls, "rss_mb": rss, "machine": machine()}, indent=2
            )
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
