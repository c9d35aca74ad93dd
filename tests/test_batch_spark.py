"""modelport.spark on a real local SparkSession: in-worker scoring, Spark ML pipelines, a running service."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

import modelport.spark as mspark
from modelport.core.errors import InvalidInput
from modelport.runtimes.loading import load_model
from tests import batch_models as bm
from tests.conftest import free_port
from tests.tolerance import assert_close

pytestmark = [
    pytest.mark.slow,
    pytest.mark.filterwarnings("ignore:PySpark does not yet fully support pandas:FutureWarning"),
]


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("spark-models")
    return {
        "iris": bm.fit_iris(root / "iris.joblib"),
        "wine": bm.fit_wine(root / "wine.joblib"),
        "penguins": bm.fit_penguins(root / "penguins.joblib"),
    }


def _df(spark: Any, table: pa.Table, partitions: int = 3) -> Any:
    return spark.createDataFrame(table.to_pandas()).repartition(partitions)


def _by_id(pdf: Any) -> Any:
    return pdf.sort_values("id").reset_index(drop=True)


def test_predict_matches_model_predict_row_by_row(spark: Any, models: dict[str, Path]) -> None:
    table = bm.iris_frame()
    out = _by_id(mspark.predict(_df(spark, table), str(models["iris"]), batch_size=16).toPandas())
    assert list(out.columns) == [*table.column_names, "predict", "predict_proba"]
    assert out["id"].tolist() == list(range(150))
    model = load_model(models["iris"])
    for i in range(150):
        row = model.predict({c: table.column(c).to_numpy()[i : i + 1] for c in bm.IRIS_FEATURES})
        assert out["predict"][i] == row["predict"][0]
        assert_close(out["predict_proba"][i], row["predict_proba"][0])


def test_predict_maps_columns_keeps_chosen_and_selects_outputs(spark: Any, models: dict[str, Path]) -> None:
    table = bm.wine_table()
    scored = mspark.predict(
        _df(spark, table), str(models["wine"]), mapping={"input": ["*"]}, keep=["id"], outputs=["predict"]
    )
    assert scored.columns == ["id", "predict"]
    out = _by_id(scored.toPandas())
    X = np.column_stack([table.column(f"f{i}").to_numpy() for i in range(13)])
    assert_close(out["predict"], load_model(models["wine"]).predict({"input": X})["predict"])


def test_predict_checks_columns_on_the_driver(spark: Any, models: dict[str, Path]) -> None:
    df = _df(spark, bm.iris_frame().drop_columns(["petal_length"]))
    with pytest.raises(InvalidInput) as err:
        mspark.predict(df, str(models["iris"]))
    assert "input 'petal_length' has no column" in err.value.message


def test_predict_on_error_skip_and_null(spark: Any, models: dict[str, Path]) -> None:
    df = _df(spark, bm.penguins_table())
    skipped = mspark.predict(df, str(models["penguins"]), on_error="skip", keep=["id"]).toPandas()
    assert sorted(skipped["id"]) == [i for i in range(344) if i not in (3, 271)]
    nulls = _by_id(mspark.predict(df, str(models["penguins"]), on_error="null", keep=["id"]).toPandas())
    assert len(nulls) == 344
    assert [i for i, e in enumerate(nulls["error"]) if isinstance(e, str)] == [3, 271]
    assert "Input X contains NaN" in nulls["error"][3]


def test_score_engine_spark_writes_a_committed_folder(spark: Any, models: dict[str, Path], tmp_path: Path) -> None:
    from modelport.offline.dataframes import score_with_spark

    src = bm.write(bm.iris_frame(), tmp_path / "iris.parquet")
    out = tmp_path / "scored.parquet"
    report = score_with_spark(str(models["iris"]), [str(src)], str(out), keep=["id"], session=spark)
    assert (report.rows_in, report.rows_out) == (150, 150)
    assert (out / "_SUCCESS").exists()
    got = _by_id(spark.read.parquet(str(out)).toPandas())
    expected = load_model(models["iris"]).predict({c: bm.iris_frame().column(c).to_numpy() for c in bm.IRIS_FEATURES})
    assert got["predict"].tolist() == expected["predict"].tolist()


# -- Spark ML pipelines, through the JVM-free runtime ------------------------------------------------------------


@pytest.fixture(scope="module")
def spark_pipeline(spark: Any, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any]:
    from pyspark.ml import Pipeline
    from pyspark.ml.classification import LogisticRegression
    from pyspark.ml.feature import StringIndexer, VectorAssembler

    frame = bm.penguins_table().to_pandas()
    frame["label"] = frame["species"].map({"Adelie": 0.0, "Chinstrap": 1.0, "Gentoo": 2.0})
    df = spark.createDataFrame(frame).repartition(2)
    pipeline = Pipeline(
        stages=[
            StringIndexer(inputCol="island", outputCol="island_idx", handleInvalid="keep"),
            VectorAssembler(inputCols=["island_idx", *bm.PENGUIN_NUMERIC], outputCol="features", handleInvalid="skip"),
            LogisticRegression(maxIter=50),
        ]
    )
    fitted = pipeline.fit(df.dropna(subset=bm.PENGUIN_NUMERIC))
    path = tmp_path_factory.mktemp("sparkml") / "penguins_pipeline"
    fitted.write().save(str(path))
    return path, fitted


def test_spark_ml_pipeline_matches_spark_transform_and_drops_the_same_rows(
    spark: Any, spark_pipeline: tuple[Path, Any]
) -> None:
    path, fitted = spark_pipeline
    model = load_model(path)
    assert hasattr(model.predictor, "transform")
    table = bm.penguins_table().drop_columns(["species"])  # scoring data has no label column
    df = spark.createDataFrame(table.to_pandas()).repartition(3)
    ours = _by_id(mspark.predict(df, str(path), outputs=["prediction", "probability"], keep=["id"]).toPandas())
    theirs = _by_id(fitted.transform(df).select("id", "prediction", "probability").toPandas())
    # handleInvalid="skip" drops the rows with a missing measurement, in Spark and here alike.
    assert ours["id"].tolist() == theirs["id"].tolist()
    assert len(ours) == 342
    assert_close(ours["prediction"], theirs["prediction"])
    assert_close(
        np.stack(ours["probability"].to_numpy()), np.stack([v.toArray() for v in theirs["probability"]]), rtol=1e-9
    )


def test_score_files_runs_spark_ml_pipelines_too(spark_pipeline: tuple[Path, Any], tmp_path: Path) -> None:
    from modelport.offline.score import score_files

    path, _ = spark_pipeline
    table = bm.penguins_table().drop_columns(["species"])
    src = bm.write(table, tmp_path / "p.parquet")
    out = tmp_path / "o.parquet"
    report = score_files(str(path), [str(src)], str(out), keep=["id"], outputs=["prediction"], workers=1)
    assert (report.rows_in, report.rows_out) == (344, 342)
    assert 3 not in bm.read(out).column("id").to_pylist()


# -- a running `modelport serve`, restarted in the middle of a job -----------------------------------------------


class Server:
    """``modelport serve`` on a fixed port, which the test may stop and start again."""

    def __init__(self, root: Path, log: Path) -> None:
        self.root = root
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self) -> None:
        import httpx

        src = str(Path(__file__).resolve().parents[1] / "src")
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([src, str(Path(src).parent)])}
        cmd = [sys.executable, "-m", "modelport.cli", "serve", str(self.root), "--host", "127.0.0.1"]
        with self.log.open("ab") as fh:
            self.proc = subprocess.Popen(
                [*cmd, "--port", str(self.port)], stdout=fh, stderr=subprocess.STDOUT, env=env, start_new_session=True
            )
        self.starts += 1
        deadline = time.monotonic() + 120
        while True:
            assert self.proc.poll() is None, self.log.read_text()
            try:
                if httpx.get(self.url + "/v2/health/ready", timeout=1.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, f"server did not start:\n{self.log.read_text()}"
            time.sleep(0.1)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(30)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("serve-repo")
    (root / "iris").mkdir()
    bm.fit_iris(root / "iris" / "model.joblib")
    srv = Server(root, root.parent / "serve.log")
    srv.start()
    yield srv
    srv.kill()


def _iris_rows(n: int) -> pa.Table:
    base = bm.iris_frame()
    idx = np.arange(n) % base.num_rows
    table = base.take(pa.array(idx))
    return table.set_column(0, "id", pa.array(np.arange(n)))


def test_predict_via_endpoint_matches_in_process(spark: Any, server: Server) -> None:
    table = _iris_rows(600)
    scored = mspark.predict_via_endpoint(_df(spark, table), server.url, "iris", batch_size=64, keep=["id"])
    assert scored.columns == ["id", "predict", "predict_proba"]
    out = _by_id(scored.toPandas())
    expected = load_model(server.root / "iris" / "model.joblib").predict(
        {c: table.column(c).to_numpy() for c in bm.IRIS_FEATURES}
    )
    assert out["predict"].tolist() == expected["predict"].tolist()
    assert_close(np.stack(out["predict_proba"].to_numpy()), expected["predict_proba"])


def test_predict_via_endpoint_v1(spark: Any, server: Server) -> None:
    table = _iris_rows(200)
    scored = mspark.predict_via_endpoint(
        _df(spark, table, 2), server.url, "iris", protocol="v1", keep=["id"], outputs=["predict"], batch_size=50
    )
    out = _by_id(scored.toPandas())
    expected = load_model(server.root / "iris" / "model.joblib").predict(
        {c: table.column(c).to_numpy() for c in bm.IRIS_FEATURES}
    )
    assert out["predict"].tolist() == expected["predict"].tolist()


def test_server_restart_mid_job_loses_and_duplicates_no_row(spark: Any, server: Server) -> None:
    n = 40_000
    table = _iris_rows(n)
    df = _df(spark, table, 16)
    scored = mspark.predict_via_endpoint(df, server.url, "iris", batch_size=40, keep=["id"], retries=30)
    tracker = spark.sparkContext.statusTracker()
    events: dict[str, Any] = {}

    def restart_when_a_task_is_done() -> None:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            for stage_id in tracker.getActiveStageIds():
                info = tracker.getStageInfo(stage_id)
                if info is not None and info.numTasks == 16 and 1 <= info.numCompletedTasks < 16:
                    events["done_at_kill"] = info.numCompletedTasks
                    server.kill()
                    time.sleep(1.0)
                    server.start()
                    events["restarted"] = True
                    return
            time.sleep(0.05)

    killer = threading.Thread(target=restart_when_a_task_is_done)
    starts = server.starts
    killer.start()
    out = scored.toPandas()
    killer.join(300)
    events["finished"] = True
    assert events.get("restarted"), "the job ended before the server could be restarted"
    assert server.starts == starts + 1
    assert 1 <= events["done_at_kill"] < 16
    assert len(out) == n
    assert sorted(out["id"].tolist()) == list(range(n))  # none lost, none twice
    out = _by_id(out)
    expected = load_model(server.root / "iris" / "model.joblib").predict(
        {c: table.column(c).to_numpy() for c in bm.IRIS_FEATURES}
    )
    assert out["predict"].tolist() == expected["predict"].tolist()


def test_score_engine_spark_interrupted_leaves_no_half_folder(models: dict[str, Path], tmp_path: Path) -> None:
    """SIGTERM while Spark writes: the job is cancelled and the unfinished output folder removed."""
    import pyarrow.parquet as pq

    src = tmp_path / "big.parquet"
    pq.write_table(pa.concat_tables([bm.iris_frame()] * 4_000), src, row_group_size=20_000)  # 600k rows
    out = tmp_path / "scored.parquet"
    root = str(Path(__file__).resolve().parents[1] / "src")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p)}
    cmd = [sys.executable, "-m", "modelport.cli", "score", str(models["iris"]), str(src), "-o", str(out)]
    cmd += ["--engine", "spark", "--master", "local[1]", "--batch-size", "500", "--keep", "id"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, start_new_session=True)
    try:
        deadline = time.monotonic() + 240
        while not (out / "_temporary").exists():  # the write job has started
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the Spark write never started"
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 128 + signal.SIGTERM, err
    assert err.decode().strip().splitlines()[-1] == (
        f"error: interrupted by SIGTERM; removed the unfinished output, {out} was not written"
    )
    assert not out.exists()
