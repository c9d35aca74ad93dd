"""Spark ML pipelines: modelport's JVM-free runtime against Spark itself, side by side.

    PYTHONPATH=src python benchmarks/sparkml_vs_spark.py [--rows 100000] [--single 2000] [--http]

Compares, for examples/models/sentiment (Tokenizer -> HashingTF -> IDF -> LogisticRegression) and
examples/models/penguins (StringIndexer -> OneHotEncoder -> Imputer -> VectorAssembler ->
StandardScaler -> LogisticRegression):

1. load time: ``PipelineModel.load`` vs ``modelport.load_model``;
2. one row in process: Spark ``createDataFrame`` + ``transform`` + ``collect`` vs ``Model.predict``;
3. a batch of --rows rows from Parquet to Parquet: Spark local[2] vs modelport (pyarrow + predict);
4. with --http: sequential single-row HTTP requests to a Flask + SparkSession app vs ``modelport serve``
   (one keep-alive socket each, pre-built requests: the client adds tens of µs, not httpx's ~0.3 ms).

Prints medians, p99 and ratios. Not a test: timings depend on the machine.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
MODELS = ROOT / "examples" / "models"


def timings(fn: Callable[[], Any], n: int, warmup: int = 5) -> list[float]:
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def p(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))]


def show(label: str, spark: list[float], mp: list[float], unit: float = 1e3, suffix: str = "ms") -> None:
    ms, mm = statistics.median(spark), statistics.median(mp)
    print(
        f"{label:<44} spark median {ms * unit:9.3f} {suffix} p99 {p(spark, 0.99) * unit:9.3f} | "
        f"modelport median {mm * unit:9.3f} {suffix} p99 {p(mp, 0.99) * unit:9.3f} | ratio {ms / mm:8.1f}x"
    )


def sample_rows(name: str, n: int) -> list[dict[str, Any]]:
    import random

    rnd = random.Random(0)
    if name == "sentiment":
        words = "a the film movie good bad great boring funny plot actor story love hate best worst".split()
        return [{"text": " ".join(rnd.choice(words) for _ in range(rnd.randint(5, 40)))} for _ in range(n)]
    islands, sexes = ["Biscoe", "Dream", "Torgersen"], ["male", "female", None]
    return [
        {
            "island": rnd.choice(islands),
            "bill_length_mm": rnd.uniform(32, 60) if rnd.random() > 0.02 else None,
            "bill_depth_mm": rnd.uniform(13, 22),
            "flipper_length_mm": rnd.uniform(170, 230),
            "body_mass_g": rnd.uniform(2700, 6300),
            "sex": rnd.choice(sexes),
        }
        for _ in range(n)
    ]


def spark_schema(name: str) -> str:
    if name == "sentiment":
        return "text string"
    return (
        "island string, bill_length_mm double, bill_depth_mm double, flipper_length_mm double, "
        "body_mass_g double, sex string"
    )


def batch_of(rows: list[dict[str, Any]]) -> dict[str, Any]:
    import numpy as np

    out: dict[str, Any] = {}
    for key in rows[0]:
        values = [r[key] for r in rows]
        if any(isinstance(v, str) for v in values):
            out[key] = np.array(values, dtype=object)
        else:
            out[key] = np.array([np.nan if v is None else v for v in values], dtype=np.float64)
    return out


class KeepAlivePost:
    """POST one fixed, pre-built request over one persistent socket; fails loudly on a non-200 answer.

    Raw bytes rather than http.client, whose header parsing (email.parser) costs ~0.15 ms a
    response of its own: the client should add as little as possible to what is timed.
    """

    def __init__(self, port: int, path: str, body: bytes) -> None:
        self.port = port
        self.sock: Any = None
        head = f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        self.request = (head + f"Content-Length: {len(body)}\r\n\r\n").encode() + body
        self.path = path

    def _connect(self) -> Any:
        import socket

        sock = socket.create_connection(("127.0.0.1", self.port), timeout=120)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock

    def __call__(self) -> bytes:
        if self.sock is None:  # first call, or the server closed after its last answer (HTTP/1.0)
            self.sock = self._connect()
        self.sock.sendall(self.request)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise SystemExit(f"{self.path}: the server closed the connection")
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        status = head.split(b" ", 2)[1]
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        while len(body) < length:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise SystemExit(f"{self.path}: the server closed the connection mid-body")
            body += chunk
        if status != b"200":
            raise SystemExit(f"{self.path} answered {status.decode()}: {body[:300]!r}")
        lowered = head.lower()
        if head.startswith(b"HTTP/1.0") or b"connection: close" in lowered:
            self.sock.close()
            self.sock = None
        return body


def bench_http(name: str, rows: list[dict[str, Any]], n: int) -> None:
    import httpx

    from tests.conftest import free_port  # loopback port helper

    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    model_dir = MODELS / name
    flask_port, mp_port = free_port(), free_port()
    procs = [
        subprocess.Popen(
            [sys.executable, str(ROOT / "benchmarks" / "spark_flask_app.py"), str(model_dir), str(flask_port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        ),
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "modelport.cli",
                "serve",
                str(model_dir),
                "--host",
                "127.0.0.1",
                "--port",
                str(mp_port),
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        ),
    ]
    try:
        with httpx.Client(timeout=60) as client:
            for url in (f"http://127.0.0.1:{flask_port}/health", f"http://127.0.0.1:{mp_port}/v2/health/ready"):
                deadline = time.time() + 600
                while True:
                    try:
                        if client.get(url).status_code == 200:
                            break
                    except httpx.HTTPError:
                        pass
                    if time.time() > deadline:
                        raise SystemExit(f"server at {url} did not come up")
                    time.sleep(0.5)
            row = rows[0]
            v2 = {
                "inputs": [
                    {
                        "name": k,
                        "datatype": "BYTES" if isinstance(v, str) else "FP64",
                        "shape": [1],
                        "data": [v if v is not None else (None if isinstance(v, str) else "NaN")],
                    }
                    for k, v in row.items()
                    if v is not None
                ]
            }
            # Timed with one keep-alive socket per server and pre-built requests: httpx costs ~0.3 ms a
            # request of its own and http.client ~0.15 ms, a large part of modelport's whole answer.
            flask_post = KeepAlivePost(flask_port, "/predict", json.dumps(row).encode())
            mp_post = KeepAlivePost(mp_port, f"/v2/models/{name}/infer", json.dumps(v2).encode())
            spark_t = timings(flask_post, max(20, n // 20))
            mp_t = timings(mp_post, n)
            show(f"{name}: HTTP single row (Flask+Spark vs serve)", spark_t, mp_t)
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(timeout=30)


def bench_model(name: str, spark: Any, args: argparse.Namespace) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq
    from pyspark.ml import PipelineModel

    import modelport

    path = str(MODELS / name)
    spark_load = timings(lambda: PipelineModel.load(path), 3, warmup=1)
    mp_load = timings(lambda: modelport.load_model(path), 10, warmup=1)
    show(f"{name}: load", spark_load, mp_load)
    spark_model = PipelineModel.load(path)
    model = modelport.load_model(path)
    rows = sample_rows(name, max(args.rows, 1))
    schema = spark_schema(name)
    one = [tuple(rows[0].values())]
    spark_one = timings(
        lambda: spark_model.transform(spark.createDataFrame(one, schema)).select("prediction", "probability").collect(),
        max(20, args.single // 40),
    )
    single = batch_of(rows[:1])
    mp_one = timings(lambda: model.predict(single), args.single, warmup=50)
    show(f"{name}: one row in process", spark_one, mp_one, 1e6, "us")

    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "in.parquet"
        pq.write_table(pa.Table.from_pylist(rows), src)

        def spark_batch() -> None:
            df = spark.read.parquet(str(src))
            out = spark_model.transform(df).select("prediction", "probability")
            out.write.mode("overwrite").parquet(str(Path(tmp) / "spark_out"))

        def mp_batch() -> None:
            table = pq.read_table(src)
            batch = {}
            for col in table.column_names:
                arr = table.column(col).to_numpy(zero_copy_only=False)
                batch[col] = arr.astype(object) if arr.dtype.kind in "OU" else arr.astype("float64")
            out = model.predict(batch)
            prob = out["probability"]
            pq.write_table(
                pa.table(
                    {
                        "prediction": out["prediction"],
                        "probability": pa.FixedSizeListArray.from_arrays(prob.reshape(-1), prob.shape[1]),
                    }
                ),
                Path(tmp) / "mp_out.parquet",
            )

        show(
            f"{name}: {args.rows} rows parquet->parquet",
            timings(spark_batch, 3, 1),
            timings(mp_batch, 3, 1),
            1.0,
            "s ",
        )
    if args.http:
        bench_http(name, rows, max(200, args.single // 4))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--single", type=int, default=2000, help="single-row predictions to time for modelport")
    parser.add_argument("--http", action="store_true", help="also run the HTTP comparison (needs modelport serve)")
    parser.add_argument("--models", default="sentiment,penguins", help="comma-separated demo model names")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))

    from pyspark.sql import SparkSession

    spark = (
        SparkSession.builder.master("local[2]")
        .config("spark.ui.enabled", "false")
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.sql.shuffle.partitions", "2")
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    print(f"python {sys.version.split()[0]}, pyspark {spark.version}, cpus {os.cpu_count()}")
    for name in args.models.split(","):
        bench_model(name, spark, args)
    spark.stop()


if __name__ == "__main__":
    main()
