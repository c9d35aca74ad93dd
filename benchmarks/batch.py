"""Batch scoring benchmark (not a test), printed as Markdown tables.

    python benchmarks/batch.py                    # everything: score vs loop, memory, Spark
    python benchmarks/batch.py --rows 1000000 --skip-spark --models logistic --skip-memory

Score vs loop and the memory runs each take the median of ``--rounds`` interleaved rounds, every
run in a fresh interpreter (a busy spell on a shared machine then hits every side alike).

1. rows/s of ``modelport score`` on a Parquet file vs the in-process ``Model.predict``
   loop over the same file (target: >= 0.8x);
2. peak RSS of ``modelport score`` on files 1x, 2x, 10x and 20x larger than ``--memory-batch``
   rows (bounded memory: it should stay flat);
3. ``modelport.spark.predict`` vs ``mlflow.pyfunc.spark_udf`` on the same scikit-learn
   model and data on local[2] (target: >= 1.5x). mlflow goes into its own venv
   (``--mlflow-venv``); when it cannot be installed, that row is skipped with the reason;
4. for a Spark ML PipelineModel, ``modelport.spark.predict`` vs Spark's own
   ``PipelineModel.transform``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"
FEATURES = [f"f{i}" for i in range(13)]


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")]).rstrip(":")}


def make_data(path: Path, rows: int, seed: int = 0) -> None:
    """Wine measurements (scikit-learn's copy) resampled with noise to ``rows`` rows."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    from sklearn.datasets import load_wine

    X, _ = load_wine(return_X_y=True)
    rng = np.random.default_rng(seed)
    writer = None
    step = 500_000
    for start in range(0, rows, step):
        n = min(step, rows - start)
        pick = X[rng.integers(0, len(X), n)] * rng.normal(1.0, 0.02, (n, X.shape[1]))
        cols = {"id": pa.array(np.arange(start, start + n))}
        cols.update({f: pa.array(pick[:, i]) for i, f in enumerate(FEATURES)})
        table = pa.table(cols)
        if writer is None:
            writer = pq.ParquetWriter(path, table.schema)
        writer.write_table(table, row_group_size=100_000)
    assert writer is not None
    writer.close()


def fit_models(root: Path) -> dict[str, Path]:
    """Two DataFrame models on wine: a cheap one (logistic) and a costlier one (random forest)."""
    import joblib
    import pandas as pd
    from sklearn.datasets import load_wine
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = load_wine(return_X_y=True)
    frame = pd.DataFrame(X, columns=FEATURES)
    out = {}
    for name, est in (
        ("logistic", make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))),
        ("forest", RandomForestClassifier(n_estimators=50, max_depth=8, random_state=0, n_jobs=1)),
    ):
        out[name] = root / f"{name}.joblib"
        joblib.dump(est.fit(frame, y), out[name])
    return out


def in_process_loop(model_path: Path, data: Path, batch_size: int, out: Path | None) -> float:
    """The reference, written the plain way: read Parquet batches, ``Model.predict``, collect; rows/s.

    With ``out`` it also writes what ``modelport score --keep id`` writes (``id``, ``predict``,
    ``predict_proba`` as a list column) with one ``pq.ParquetWriter`` on the same thread, with the
    writer settings ``modelport score`` uses (no dictionary for numbers, snappy): the same work
    and the same file, so the ratio measures modelport's overhead and not a different job.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    sys.path.insert(0, str(SRC))
    from modelport.runtimes.loading import load_model

    model = load_model(model_path)
    pf = pq.ParquetFile(data)
    rows = 0
    writer = None
    start = time.perf_counter()
    for batch in pf.iter_batches(batch_size=batch_size, columns=["id", *FEATURES]):
        pred = model.predict({f: batch.column(i + 1).to_numpy() for i, f in enumerate(FEATURES)})
        rows += batch.num_rows
        if out is None:
            continue
        proba = pred["predict_proba"]
        n, width = proba.shape
        offsets = pa.array(np.arange(0, (n + 1) * width, width, dtype=np.int32))
        table = pa.table(
            {
                "id": batch.column(0),
                "predict": pa.array(pred["predict"]),
                "predict_proba": pa.ListArray.from_arrays(offsets, pa.array(proba.reshape(-1))),
            }
        )
        if writer is None:
            writer = pq.ParquetWriter(out, table.schema, use_dictionary=False, compression="snappy")
        writer.write_table(table)
    if writer is not None:
        writer.close()
    return rows / (time.perf_counter() - start)


def run_loop(model_path: Path, data: Path, batch_size: int, out: Path | None) -> float:
    """``in_process_loop`` in a fresh interpreter, as ``modelport score`` runs in one: rows/s."""
    cmd = [sys.executable, __file__, "--loop-child", "--model", str(model_path), "--data", str(data)]
    cmd += ["--batch-size", str(batch_size)] + (["--out", str(out)] if out is not None else [])
    res = subprocess.run(cmd, capture_output=True, text=True, env=_env(), check=True)
    return float(res.stdout.strip().splitlines()[-1])


def run_score(model_path: Path, data: Path, out: Path, batch_size: int, workers: int) -> dict[str, float]:
    """``modelport score`` in a fresh process: wall rows/s (with start-up) and peak RSS (MiB)."""
    cmd = [
        sys.executable,
        "-m",
        "modelport.cli",
        "score",
        str(model_path),
        str(data),
        "-o",
        str(out),
        "--keep",
        "id",
        "--batch-size",
        str(batch_size),
        "--workers",
        str(workers),
        "--no-progress",
    ]
    # A wrapper process, so RUSAGE_CHILDREN holds only this run's peak (workers included).
    probe = (
        "import resource, subprocess, sys, time, json; t = time.perf_counter(); "
        "p = subprocess.run(sys.argv[1:], capture_output=True, text=True); w = time.perf_counter() - t; "
        "print(json.dumps({'rc': p.returncode, 'wall': w, 'err': p.stderr[-2000:], "
        "'rss_kib': resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}))"
    )
    res = subprocess.run([sys.executable, "-c", probe, *cmd], capture_output=True, text=True, env=_env(), check=True)
    info = json.loads(res.stdout)
    if info["rc"] != 0:
        raise RuntimeError(f"modelport score failed: {info['err']}")
    # The command's own report: "scored N rows -> N rows in OUT (12.3s, 81,234 rows/s)".
    own = info["err"].strip().splitlines()[-1]
    rate = float(own.rsplit(", ", 1)[-1].split(" ")[0].replace(",", "")) if "rows/s" in own else float("nan")
    return {"wall_s": info["wall"], "rss_mib": info["rss_kib"] / 1024, "own_rows_s": rate}


def _median(values: list[float]) -> float:
    return float(np.median(values))


def section_score(work: Path, rows: int, batch_size: int, models: dict[str, Path], rounds: int) -> list[str]:
    import pyarrow.parquet as pq

    data = work / "wine.parquet"
    make_data(data, rows)
    lines = [
        f"### `modelport score` vs in-process loop ({rows:,} rows Parquet, batch {batch_size:,}, "
        f"median of {rounds} interleaved rounds)",
        "",
        "| model | loop, predict only | loop + same output file | score workers=1 | score workers=2 "
        "| best score / loop+write | best score / predict only |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, path in models.items():
        got: dict[str, list[float]] = {"predict": [], "write": [], "one": [], "two": []}
        for _ in range(rounds):  # interleaved, so a busy spell on the machine hits every side alike
            got["predict"].append(run_loop(path, data, batch_size, None))
            got["write"].append(run_loop(path, data, batch_size, work / "loop.parquet"))
            got["one"].append(run_score(path, data, work / "out1.parquet", batch_size, 1)["own_rows_s"])
            got["two"].append(run_score(path, data, work / "out2.parquet", batch_size, 2)["own_rows_s"])
        if not pq.read_table(work / "loop.parquet").equals(pq.read_table(work / "out1.parquet")):
            raise RuntimeError(f"{name}: the loop's output differs from modelport score's: not the same work")
        m = {k: _median(v) for k, v in got.items()}
        best = max(m["one"], m["two"])
        lines.append(
            f"| {name} | {m['predict']:,.0f} | {m['write']:,.0f} | {m['one']:,.0f} | {m['two']:,.0f} "
            f"| {best / m['write']:.2f}x | {best / m['predict']:.2f}x |"
        )
        print(lines[-1], flush=True)
        print(f"  rounds: { {k: [round(x) for x in v] for k, v in got.items()} }", flush=True)
    lines += [
        "",
        "Every figure comes from a fresh interpreter and excludes model loading. score rows/s is the command's"
        " own figure (read + validate + predict + write, after its workers are up). The loop reads the same"
        " columns and calls Model.predict; '+ same output file' also builds and writes the file score writes"
        " (checked equal).",
        "",
    ]
    return lines


def section_memory(work: Path, batch_size: int, models: dict[str, Path], rounds: int) -> list[str]:
    """Peak RSS of ``modelport score`` on files 1x, 2x, 10x and 20x ``batch_size`` rows (median of rounds)."""
    import pyarrow.parquet as pq

    mults = (1, 2, 10, 20)
    files = {}
    for mult in mults:
        files[mult] = work / f"mem{mult}.parquet"
        make_data(files[mult], batch_size * mult, seed=mult)
    got: dict[int, list[dict[str, float]]] = {m: [] for m in mults}
    for _ in range(rounds):
        for mult in mults:
            got[mult].append(run_score(models["logistic"], files[mult], work / "mem_out.parquet", batch_size, 1))
    lines = [
        f"### Peak RSS of `modelport score` (batch {batch_size:,} rows, workers=1, logistic model, "
        f"median of {rounds} rounds)",
        "",
        "| rows in file | x batch size | input row groups | peak RSS MiB | vs 1x | runs MiB |",
        "| ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    base = _median([r["rss_mib"] for r in got[1]])
    for mult in mults:
        rss = [r["rss_mib"] for r in got[mult]]
        groups = pq.ParquetFile(files[mult]).metadata.num_row_groups
        lines.append(
            f"| {batch_size * mult:,} | {mult} | {groups} | {_median(rss):.0f} | {_median(rss) - base:+.0f} "
            f"| {', '.join(f'{x:.0f}' for x in rss)} |"
        )
        print(lines[-1], flush=True)
    for f in files.values():
        f.unlink()
    return [*lines, ""]


# -- Spark (run in the mlflow venv when there is one) --------------------------------------------------------------


def ensure_mlflow_venv(venv: Path) -> tuple[Path | None, str]:
    """A venv with mlflow plus the same pyspark/sklearn/pandas/pyarrow as this one."""
    py = venv / "bin" / "python"
    if (
        py.exists()
        and subprocess.run([str(py), "-c", "import mlflow.pyfunc, pyspark"], capture_output=True).returncode == 0
    ):
        return py, ""
    import pandas
    import pyarrow
    import pyspark
    import sklearn

    pins = [
        f"pyspark=={pyspark.__version__}",
        f"scikit-learn=={sklearn.__version__}",
        f"pandas=={pandas.__version__}",
        f"pyarrow=={pyarrow.__version__}",
        f"numpy=={np.__version__}",
    ]
    print(f"installing mlflow-skinny into {venv} (one time)...", flush=True)
    try:
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, capture_output=True)
        subprocess.run(
            [
                str(py),
                "-m",
                "pip",
                "install",
                "-q",
                "mlflow-skinny",
                "skops",
                *pins,
                "orjson",
                "fsspec",
                "click",
                "joblib",
                "mmh3",
                "scipy",
            ],
            check=True,
            capture_output=True,
            text=True,
        )
    except subprocess.CalledProcessError as exc:
        tail = (exc.stderr or exc.stdout or "")[-500:] if isinstance(exc.stderr, str) else str(exc)
        return None, f"could not install mlflow into {venv}: {tail.strip()}"
    return py, ""


def spark_child(args: argparse.Namespace) -> None:
    """Runs in a separate interpreter: times the Spark paths and prints one JSON line."""
    sys.path.insert(0, str(SRC))
    os.environ["PYSPARK_PYTHON"] = sys.executable
    import warnings

    warnings.filterwarnings("ignore")
    from pyspark.sql import SparkSession

    import modelport.spark as mspark

    spark = (
        SparkSession.builder.master("local[2]")
        .config("spark.ui.enabled", "false")
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.driver.memory", "4g")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    work = Path(args.work)
    df = spark.read.parquet(args.data).repartition(4).cache()
    rows = df.count()
    results: dict[str, Any] = {"rows": rows}

    def timed(frame: Any) -> float:
        start = time.perf_counter()
        frame.write.format("noop").mode("overwrite").save()
        return rows / (time.perf_counter() - start)

    model_path = Path(args.model)
    ours = mspark.predict(df, str(model_path), outputs=["predict"])
    timed(ours)  # warm-up: Python workers start, the model loads once per worker
    results["modelport"] = max(timed(ours), timed(ours))
    try:
        import joblib
        import mlflow.pyfunc
        import mlflow.sklearn

        mdir = work / "mlflow_model"
        if not mdir.exists():
            mlflow.sklearn.save_model(joblib.load(model_path), str(mdir))
        udf = mlflow.pyfunc.spark_udf(spark, str(mdir), result_type="long", env_manager="local")
        from pyspark.sql.functions import struct

        theirs = df.withColumn("predict", udf(struct(*FEATURES)))
        timed(theirs)
        results["mlflow"] = max(timed(theirs), timed(theirs))
    except ImportError as exc:
        results["mlflow_skip"] = f"mlflow is not importable here ({exc})"

    # A Spark ML PipelineModel on the same data: Spark's own transform vs modelport's JVM-free runtime.
    from pyspark.ml import Pipeline
    from pyspark.ml.classification import LogisticRegression
    from pyspark.ml.feature import StandardScaler, VectorAssembler
    from pyspark.sql import functions as F

    labelled = df.withColumn("label", (F.col("f0") > 13.0).cast("double"))
    pm = Pipeline(
        stages=[
            VectorAssembler(inputCols=FEATURES, outputCol="raw"),
            StandardScaler(inputCol="raw", outputCol="features"),
            LogisticRegression(maxIter=20),
        ]
    ).fit(labelled.limit(20_000))
    ppath = work / "spark_pipeline"
    pm.write().overwrite().save(str(ppath))
    spark_out = pm.transform(df).select(*df.columns, "prediction", "probability")
    timed(spark_out)
    results["spark_transform"] = max(timed(spark_out), timed(spark_out))
    try:
        mp_out = mspark.predict(df, str(ppath), outputs=["prediction", "probability"])
        timed(mp_out)
        results["modelport_pipeline"] = max(timed(mp_out), timed(mp_out))
    except Exception as exc:  # the runtime may not know a stage yet: report it, do not hide it
        results["pipeline_skip"] = f"{type(exc).__name__}: {exc}"
    spark.stop()
    print("RESULT " + json.dumps(results), flush=True)


def section_spark(work: Path, rows: int, models: dict[str, Path], venv: Path) -> list[str]:
    data = work / "spark.parquet"
    make_data(data, rows, seed=7)
    py, reason = ensure_mlflow_venv(venv)
    interpreter = py or Path(sys.executable)
    cmd = [
        str(interpreter),
        __file__,
        "--spark-child",
        "--work",
        str(work),
        "--data",
        str(data),
        "--model",
        str(models["logistic"]),
    ]
    res = subprocess.run(cmd, capture_output=True, text=True, env=_env())
    line = next((ln for ln in res.stdout.splitlines() if ln.startswith("RESULT ")), None)
    if line is None:
        raise RuntimeError(f"spark benchmark failed:\n{res.stdout[-3000:]}\n{res.stderr[-3000:]}")
    r = json.loads(line[len("RESULT ") :])
    lines = [
        f"### Spark, local[2], {r['rows']:,} rows, 4 partitions (rows/s, best of 2 after a warm-up)",
        "",
        "| what | modelport.spark.predict | reference | ratio |",
        "| --- | ---: | ---: | ---: |",
    ]
    if "mlflow" in r:
        lines.append(
            f"| sklearn logistic vs `mlflow.pyfunc.spark_udf` | {r['modelport']:,.0f} | {r['mlflow']:,.0f} | "
            f"{r['modelport'] / r['mlflow']:.2f}x |"
        )
    else:
        lines.append(f"| sklearn logistic vs `mlflow.pyfunc.spark_udf` | {r['modelport']:,.0f} | skipped | - |")
        print(f"mlflow comparison skipped: {reason or r.get('mlflow_skip')}", flush=True)
    if "modelport_pipeline" in r:
        lines.append(
            f"| Spark ML PipelineModel vs `PipelineModel.transform` | {r['modelport_pipeline']:,.0f} | "
            f"{r['spark_transform']:,.0f} | {r['modelport_pipeline'] / r['spark_transform']:.2f}x |"
        )
    else:
        lines.append(
            f"| Spark ML PipelineModel vs `PipelineModel.transform` | skipped | {r['spark_transform']:,.0f} | - |"
        )
        print(f"pipeline comparison skipped: {r.get('pipeline_skip')}", flush=True)
    for ln in lines[-2:]:
        print(ln, flush=True)
    return [*lines, ""]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=2_000_000, help="rows for score vs loop")
    parser.add_argument("--batch-size", type=int, default=50_000)
    parser.add_argument("--memory-batch", type=int, default=50_000, help="batch size of the RSS runs")
    parser.add_argument("--spark-rows", type=int, default=1_000_000)
    parser.add_argument("--skip-spark", action="store_true")
    parser.add_argument("--only-spark", action="store_true")
    parser.add_argument("--mlflow-venv", default=str(ROOT / ".bench" / "mlflow-venv"))
    parser.add_argument("--models", default="logistic,forest", help="models for score vs loop (comma-separated)")
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument("--skip-score", action="store_true", help="no score vs loop (memory and Spark only)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds of score vs loop (median)")
    parser.add_argument("--spark-child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--loop-child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    parser.add_argument("--work", help=argparse.SUPPRESS)
    parser.add_argument("--data", help=argparse.SUPPRESS)
    parser.add_argument("--model", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.spark_child:
        spark_child(args)
        return
    if args.loop_child:
        out = Path(args.out) if args.out else None
        print(in_process_loop(Path(args.model), Path(args.data), args.batch_size, out), flush=True)
        return
    with tempfile.TemporaryDirectory(prefix="modelport-bench-") as tmp:
        work = Path(tmp)
        models = fit_models(work)
        print(f"cores: {os.cpu_count()}, python {sys.version.split()[0]}", flush=True)
        out: list[str] = []
        if not args.only_spark:
            chosen = {n: models[n] for n in args.models.split(",")}
            if not args.skip_score:
                out += section_score(work, args.rows, args.batch_size, chosen, args.rounds)
            if not args.skip_memory:
                out += section_memory(work, args.memory_batch, models, args.rounds)
        if not args.skip_spark:
            out += section_spark(work, args.spark_rows, models, Path(args.mlflow_venv))
        print("\n".join(out))
    _ = resource  # imported for the probe's sake; keeps the dependency visible


if __name__ == "__main__":
    main()
