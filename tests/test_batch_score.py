"""``modelport score`` and the Scorer: formats, mapping, on-error policies, atomic output, workers."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from modelport.cli import main
from modelport.core.errors import ConfigError, InvalidInput, ModelFailed
from modelport.offline.score import ScoreOptions, Scorer, parse_map, score_files
from modelport.runtimes.loading import load_model
from tests import batch_models as bm
from tests.tolerance import assert_close


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("models")
    return {
        "iris": bm.fit_iris(root / "iris.joblib"),
        "wine": bm.fit_wine(root / "wine.joblib"),
        "penguins": bm.fit_penguins(root / "penguins.joblib"),
    }


def _expected(model_path: Path, table: pa.Table, inputs: dict[str, Any]) -> dict[str, np.ndarray]:
    """In-process Model.predict, one row at a time: what every batch path must reproduce."""
    model = load_model(model_path)
    rows = []
    for i in range(table.num_rows):
        rows.append(model.predict({k: v[i : i + 1] for k, v in inputs.items()}))
    return {k: np.concatenate([r[k] for r in rows]) for k in rows[0]}


def _iris_inputs(table: pa.Table) -> dict[str, Any]:
    return {c: table.column(c).to_numpy() for c in bm.IRIS_FEATURES}


def _assert_outputs(got: pa.Table, expected: dict[str, np.ndarray], wide_labels: list[str] | None = None) -> None:
    assert got.column("predict").to_pylist() == expected["predict"].tolist()
    if wide_labels is not None:
        proba = np.column_stack([got.column(f"predict_proba_{lab}").to_numpy() for lab in wide_labels])
    else:
        proba = np.array(got.column("predict_proba").to_pylist())
    assert_close(proba, expected["predict_proba"])


@pytest.mark.parametrize("in_fmt", ["parquet", "csv", "jsonl"])
@pytest.mark.parametrize("out_fmt", ["parquet", "csv", "jsonl"])
def test_every_format_matches_row_by_row_predict(
    models: dict[str, Path], tmp_path: Path, in_fmt: str, out_fmt: str
) -> None:
    table = bm.iris_frame()
    src = bm.write(table, tmp_path / f"iris.{in_fmt}")
    out = tmp_path / f"scored.{out_fmt}"
    report = score_files(str(models["iris"]), [str(src)], str(out), batch_size=32, workers=1)
    assert (report.rows_in, report.rows_out) == (150, 150)
    got = bm.read(out)
    expected = _expected(models["iris"], table, _iris_inputs(table))
    # Default --keep: every input column, in order, then the outputs.
    assert got.column_names[: len(table.column_names)] == table.column_names
    assert got.column("id").to_pylist() == list(range(150))
    _assert_outputs(got, expected, ["setosa", "versicolor", "virginica"] if out_fmt == "csv" else None)
    assert [p.name for p in tmp_path.iterdir() if "partial" in p.name] == []


def test_folder_and_glob_inputs_skip_spark_marker_files(models: dict[str, Path], tmp_path: Path) -> None:
    table = bm.iris_frame()
    folder = tmp_path / "day"
    folder.mkdir()
    for i, start in enumerate(range(0, 150, 50)):
        bm.write(table.slice(start, 50), folder / f"part-{i:05d}.parquet")
    (folder / "_SUCCESS").write_bytes(b"")
    for inputs in ([str(folder)], [str(folder / "part-*.parquet")]):
        out = tmp_path / "out.parquet"
        score_files(str(models["iris"]), inputs, str(out), batch_size=40, workers=1, keep=["id"])
        got = pq.read_table(out)
        assert got.column_names == ["id", "predict", "predict_proba"]
        assert got.column("id").to_pylist() == list(range(150))


def test_map_builds_array_input_from_columns_and_keep_limits_passthrough(
    models: dict[str, Path], tmp_path: Path
) -> None:
    table = bm.wine_table()
    src = bm.write(table, tmp_path / "wine.parquet")
    out = tmp_path / "out.jsonl"
    score_files(
        str(models["wine"]), [str(src)], str(out), keep=["id"], mapping=parse_map(["*=input"]), outputs=["predict"]
    )
    got = bm.read(out)
    assert got.column_names == ["id", "predict"]
    X = np.column_stack([table.column(f"f{i}").to_numpy() for i in range(13)])
    expected = _expected(models["wine"], table, {"input": X})
    assert got.column("predict").to_pylist() == expected["predict"].tolist()
    # The same with the columns named one by one.
    cols = ",".join(f"f{i}" for i in range(13))
    score_files(str(models["wine"]), [str(src)], str(out), keep=[], mapping=parse_map([f"{cols}=input"]))
    assert bm.read(out).column("predict").to_pylist() == expected["predict"].tolist()


def test_map_renames_a_column(models: dict[str, Path], tmp_path: Path) -> None:
    table = bm.iris_frame().rename_columns(["id", "sl", "sepal_width", "petal_length", "petal_width", "species"])
    src = bm.write(table, tmp_path / "iris.parquet")
    out = tmp_path / "out.parquet"
    score_files(str(models["iris"]), [str(src)], str(out), mapping=parse_map(["sl=sepal_length"]), keep=["id"])
    inputs = {
        "sepal_length": table.column("sl").to_numpy(),
        **{c: table.column(c).to_numpy() for c in bm.IRIS_FEATURES[1:]},
    }
    assert (
        pq.read_table(out).column("predict").to_pylist() == _expected(models["iris"], table, inputs)["predict"].tolist()
    )


def test_missing_column_fails_before_scoring_and_names_it(models: dict[str, Path], tmp_path: Path) -> None:
    src = bm.write(bm.iris_frame().drop_columns(["petal_width"]), tmp_path / "iris.parquet")
    out = tmp_path / "out.parquet"
    with pytest.raises(InvalidInput) as err:
        score_files(str(models["iris"]), [str(src)], str(out))
    assert "input 'petal_width' has no column" in err.value.message
    assert "--map COLUMN=petal_width" in err.value.message
    assert list(tmp_path.iterdir()) == [src]


def test_wrong_type_fails_before_scoring_and_names_the_column(models: dict[str, Path], tmp_path: Path) -> None:
    table = bm.iris_frame()
    table = table.set_column(2, "sepal_width", pa.array([f"w{i}" for i in range(150)]))
    src = bm.write(table, tmp_path / "iris.csv")
    with pytest.raises(InvalidInput) as err:
        score_files(str(models["iris"]), [str(src)], str(tmp_path / "out.parquet"))
    assert err.value.message == (
        "model 'iris': column 'sepal_width' has type string, but input 'sepal_width' takes FP64 numbers"
    )
    assert list(tmp_path.iterdir()) == [src]


def test_array_input_without_map_suggests_one(models: dict[str, Path], tmp_path: Path) -> None:
    src = bm.write(bm.wine_table(), tmp_path / "wine.parquet")
    with pytest.raises(InvalidInput) as err:
        score_files(str(models["wine"]), [str(src)], str(tmp_path / "o.parquet"))
    assert "input 'input' has no column" in err.value.message
    assert "--map 'COL1,COL2,...=input' or --map '*=input'" in err.value.message
    with pytest.raises(InvalidInput, match=r"input 'input' takes 13 columns, 14 were mapped to it \(id, f0"):
        score_files(str(models["wine"]), [str(src)], str(tmp_path / "o.parquet"), mapping=parse_map(["*=input"]))


def test_output_column_clash_and_bad_options_fail_clearly(models: dict[str, Path], tmp_path: Path) -> None:
    table = bm.iris_frame().append_column("predict", pa.array(["x"] * 150))
    src = bm.write(table, tmp_path / "iris.parquet")
    with pytest.raises(ConfigError, match="column 'predict' of the input would be overwritten"):
        score_files(str(models["iris"]), [str(src)], str(tmp_path / "o.parquet"))
    with pytest.raises(ConfigError, match="--keep names column 'nope', which the input does not have"):
        score_files(str(models["iris"]), [str(src)], str(tmp_path / "o.parquet"), keep=["nope"])
    with pytest.raises(ConfigError, match=r"no output 'proba'; its outputs are: predict, predict_proba"):
        score_files(str(models["iris"]), [str(src)], str(tmp_path / "o.parquet"), keep=["id"], outputs=["proba"])
    with pytest.raises(ConfigError, match="cannot tell the format from the extension"):
        score_files(str(models["iris"]), [str(src)], str(tmp_path / "o.txt"), keep=["id"])
    with pytest.raises(ConfigError, match="no such file or directory"):
        score_files(str(models["iris"]), [str(tmp_path / "nope.parquet")], str(tmp_path / "o.parquet"))
    with pytest.raises(ConfigError, match=r"--map 'x' must look like COLUMN=INPUT"):
        parse_map(["x"])
    with pytest.raises(ConfigError, match="on_error 'ignore' is not one of: fail, skip, null"):
        ScoreOptions("m", on_error="ignore")  # type: ignore[arg-type]


# -- on-error ---------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def penguins_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return bm.write(bm.penguins_table(), tmp_path_factory.mktemp("penguins") / "penguins.parquet")


def _bad_penguin_rows() -> list[int]:
    table = bm.penguins_table()
    nan = np.zeros(table.num_rows, dtype=bool)
    for c in bm.PENGUIN_NUMERIC:
        nan |= np.isnan(table.column(c).to_numpy(zero_copy_only=False).astype(float))
    return [int(i) for i in np.flatnonzero(nan)]


def test_on_error_fail_stops_and_leaves_no_output(models: dict[str, Path], penguins_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.parquet"
    with pytest.raises(ModelFailed) as err:
        score_files(str(models["penguins"]), [str(penguins_file)], str(out), batch_size=100, workers=1)
    # The model (scikit-learn) rejects NaN; the message names the file and the batch.
    assert f"{penguins_file}, batch from row 0" in err.value.message
    assert "Input X contains NaN" in err.value.message
    assert list(tmp_path.iterdir()) == []


def test_on_error_skip_drops_only_failing_rows(models: dict[str, Path], penguins_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.parquet"
    report = score_files(
        str(models["penguins"]), [str(penguins_file)], str(out), batch_size=100, on_error="skip", keep=["id"]
    )
    bad = _bad_penguin_rows()
    assert bad == [3, 271]
    got = pq.read_table(out)
    assert got.column("id").to_pylist() == [i for i in range(344) if i not in bad]
    assert (report.rows_in, report.rows_out) == (344, 342)
    table = bm.penguins_table()
    good = pa.array([i for i in range(344) if i not in bad])
    sub = table.take(good)
    expected = _expected(
        models["penguins"],
        sub,
        {c: sub.column(c).to_numpy(zero_copy_only=False) for c in ["island", *bm.PENGUIN_NUMERIC]},
    )
    assert got.column("predict").to_pylist() == expected["predict"].tolist()


def test_on_error_null_keeps_every_row_with_an_error_column(
    models: dict[str, Path], penguins_file: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out.jsonl"
    score_files(str(models["penguins"]), [str(penguins_file)], str(out), batch_size=100, on_error="null", keep=["id"])
    got = bm.read(out)
    assert got.column_names == ["id", "predict", "predict_proba", "error"]
    assert got.column("id").to_pylist() == list(range(344))
    errors = got.column("error").to_pylist()
    assert [i for i, e in enumerate(errors) if e is not None] == [3, 271]
    assert "Input X contains NaN" in errors[3]
    assert got.column("predict")[3].as_py() is None and got.column("predict_proba")[3].as_py() is None
    assert got.column("predict")[0].as_py() == "Adelie"


def test_on_error_applies_to_validation_failures(models: dict[str, Path], tmp_path: Path) -> None:
    # An INT64 input (declared in modelport.toml) fed a float column with one non-integer value.
    model_dir = tmp_path / "iris_int"
    model_dir.mkdir()
    bm.fit_iris(model_dir / "model.joblib")
    specs = ", ".join(
        f'{{name = "{c}", datatype = "{"INT64" if c == "petal_width" else "FP64"}"}}' for c in bm.IRIS_FEATURES
    )
    (model_dir / "modelport.toml").write_text(f"[signature]\ninputs = [{specs}]\n")
    table = bm.iris_frame()
    width = np.round(table.column("petal_width").to_numpy())
    width[7] = 1.5
    table = table.set_column(4, "petal_width", pa.array(width))
    src = bm.write(table, tmp_path / "t.parquet")
    out = tmp_path / "o.parquet"
    with pytest.raises(InvalidInput) as err:
        score_files(str(model_dir), [str(src)], str(out), batch_size=50, keep=["id"])
    assert err.value.message == (
        f"{src}, batch from row 0: row 7: model 'iris_int': input 'petal_width' must be INT64 integers, "
        "got non-integer values"
    )
    score_files(str(model_dir), [str(src)], str(out), batch_size=50, keep=["id"], on_error="null")
    got = pq.read_table(out)
    assert got.num_rows == 150
    assert (
        got.column("error")[7].as_py()
        == "model 'iris_int': input 'petal_width' must be INT64 integers, got non-integer values"
    )
    assert got.column("error").null_count == 149
    score_files(str(model_dir), [str(src)], str(out), batch_size=50, keep=["id"], on_error="skip")
    assert 7 not in pq.read_table(out).column("id").to_pylist()


# -- atomic output, workers, memory ------------------------------------------------------------------------------


def test_a_failure_mid_file_leaves_no_file_that_looks_complete(models: dict[str, Path], tmp_path: Path) -> None:
    table = bm.iris_frame()
    values = table.column("sepal_length").to_numpy().astype(object)
    values[140] = None  # a null in the last batch: the model fails after 4 batches were written
    table = table.set_column(1, "sepal_length", pa.array(values.tolist(), pa.float64()))
    src = bm.write(table, tmp_path / "t.parquet")
    out = tmp_path / "scored.parquet"
    out.write_bytes(b"yesterday's output")
    with pytest.raises(ModelFailed, match="batch from row 128"):
        score_files(str(models["iris"]), [str(src)], str(out), batch_size=32, workers=1)
    assert out.read_bytes() == b"yesterday's output"  # untouched: the new file was never renamed into place
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scored.parquet", "t.parquet"]
    assert _reader_threads() == []  # the read-ahead thread stopped with the run


def _reader_threads() -> list[str]:
    import threading

    return [t.name for t in threading.enumerate() if t.name == "modelport-reader"]


def test_a_read_error_in_a_later_file_fails_naming_it(models: dict[str, Path], tmp_path: Path) -> None:
    # The next batch is read on a thread while the current one is scored; its errors still surface
    # in the run, with the file and column named, and leave no output behind.
    table = bm.iris_frame()
    folder = tmp_path / "day"
    folder.mkdir()
    bm.write(table.slice(0, 100), folder / "part-0.parquet")
    bad = table.slice(100).set_column(1, "sepal_length", pa.array(["wide"] * 50))
    bm.write(bad, folder / "part-1.parquet")
    out = tmp_path / "scored.parquet"
    with pytest.raises(ConfigError) as info:
        score_files(str(models["iris"]), [str(folder)], str(out), batch_size=32, workers=1)
    assert "part-1.parquet: column 'sepal_length' has type string, not double as in the first file" in str(info.value)
    assert not out.exists()
    assert _reader_threads() == []


def test_read_ahead_holds_at_most_one_batch_beyond_the_one_being_scored() -> None:
    from modelport.offline.score import _Prefetch

    pulled = 0

    def source() -> Any:
        nonlocal pulled
        for i in range(10):
            pulled += 1
            yield None, i

    with _Prefetch(source()) as batches:
        for taken, (_, i) in enumerate(batches, start=1):
            assert i == taken - 1
            assert pulled <= taken + 1
    assert pulled == 10


@pytest.mark.slow
def test_workers_give_the_same_rows_in_the_same_order(models: dict[str, Path], tmp_path: Path) -> None:
    table = pa.concat_tables([bm.iris_frame()] * 20)
    table = table.set_column(0, "id", pa.array(np.arange(table.num_rows)))
    src = bm.write(table, tmp_path / "t.parquet")
    one, two = tmp_path / "one.parquet", tmp_path / "two.parquet"
    score_files(str(models["iris"]), [str(src)], str(one), batch_size=100, workers=1)
    report = score_files(str(models["iris"]), [str(src)], str(two), batch_size=100, workers=2)
    assert report.workers == 2
    assert pq.read_table(one).equals(pq.read_table(two))


def test_batches_are_bounded_by_batch_size(models: dict[str, Path], tmp_path: Path) -> None:
    # The streaming contract behind flat memory: no batch the scorer sees is larger than --batch-size.
    from modelport.offline.files import expand_inputs, read_batches, schema_of

    table = pa.concat_tables([bm.iris_frame()] * 10)
    for fmt in ("parquet", "csv", "jsonl"):
        src = bm.write(table, tmp_path / f"t.{fmt}")
        files = expand_inputs([str(src)])
        sizes = [b.num_rows for _, b in read_batches(files, 64, schema_of(files[0]))]
        assert sum(sizes) == 1500 and max(sizes) == 64, fmt
        assert all(s == 64 for s in sizes[:-1])


def test_parquet_row_groups_unaligned_with_batches_read_in_order(tmp_path: Path) -> None:
    # Parquet is read one row group at a time; batches still come out exactly --batch-size rows
    # long and in file order when row groups (70 rows) do not line up with batches (64).
    from modelport.offline.files import expand_inputs, read_batches, schema_of

    table = pa.concat_tables([bm.iris_frame()] * 10)
    table = table.set_column(0, "id", pa.array(np.arange(table.num_rows)))
    src = tmp_path / "t.parquet"
    pq.write_table(table, src, row_group_size=70)
    assert pq.ParquetFile(src).num_row_groups == 22
    files = expand_inputs([str(src)])
    batches = [b for _, b in read_batches(files, 64, schema_of(files[0]))]
    assert [b.num_rows for b in batches] == [64] * 23 + [28]
    assert pa.Table.from_batches(batches).equals(table)


@pytest.mark.slow
def test_million_rows_match_in_process_predict(models: dict[str, Path], tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    n = 1_000_000
    base = bm.iris_frame()
    pick = rng.integers(0, base.num_rows, n)
    cols = {"id": pa.array(np.arange(n))}
    for c in bm.IRIS_FEATURES:
        cols[c] = pa.array(base.column(c).to_numpy()[pick] + rng.normal(0, 0.05, n))
    table = pa.table(cols)
    src = tmp_path / "big.parquet"
    pq.write_table(table, src, row_group_size=100_000)
    out = tmp_path / "big_scored.parquet"
    report = score_files(str(models["iris"]), [str(src)], str(out), batch_size=50_000, keep=["id"], workers=2)
    assert (report.rows_in, report.rows_out) == (n, n)
    got = pq.read_table(out)
    model = load_model(models["iris"])
    expected = model.predict({c: table.column(c).to_numpy() for c in bm.IRIS_FEATURES})
    assert np.array_equal(got.column("id").to_numpy(), np.arange(n))
    assert np.array_equal(got.column("predict").to_numpy(zero_copy_only=False), expected["predict"])
    proba = got.column("predict_proba").combine_chunks().flatten().to_numpy().reshape(n, 3)
    assert_close(proba, expected["predict_proba"])


# -- a predictor that drops rows (the Spark ML pipeline contract) ------------------------------------------------


class _SkippingPredictor:
    """Like a Spark ML pipeline with handleInvalid="skip": rows with a negative value are dropped."""

    def __init__(self) -> None:
        from modelport.core.signature import Signature, TensorSpec

        self.signature = Signature((TensorSpec("x", "FP64"),), (TensorSpec("double", "FP64"),))
        self.info: dict[str, Any] = {}

    def predict(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return self.transform(batch)[0]

    def transform(self, batch: dict[str, np.ndarray]) -> tuple[dict[str, np.ndarray], np.ndarray]:
        keep = np.flatnonzero(batch["x"] >= 0)
        return {"double": batch["x"][keep] * 2}, keep


def test_kept_row_indices_of_a_dropping_model_line_up_with_passthrough() -> None:
    from modelport.core.model import Model

    model = Model("skipper", 1, _SkippingPredictor(), flavor="sparkml", source="test")
    batch = pa.record_batch({"id": pa.array([10, 11, 12, 13]), "x": pa.array([1.0, -1.0, 3.0, -4.0])})
    scorer = Scorer(model, ScoreOptions("unused"), batch.schema)
    out = scorer.score(batch)
    assert out.to_pydict() == {"id": [10, 12], "x": [1.0, 3.0], "double": [2.0, 6.0]}


# -- the command line -------------------------------------------------------------------------------------------


def test_cli_score_writes_and_reports(models: dict[str, Path], tmp_path: Path) -> None:
    src = bm.write(bm.iris_frame(), tmp_path / "iris.csv")
    out = tmp_path / "out.parquet"
    result = CliRunner().invoke(
        main, ["score", str(models["iris"]), str(src), "-o", str(out), "--keep", "id", "--workers", "1"]
    )
    assert result.exit_code == 0, result.output
    assert "scored 150 rows -> 150 rows in" in result.output
    assert pq.read_table(out).column_names == ["id", "predict", "predict_proba"]


def test_cli_score_error_names_the_column(models: dict[str, Path], tmp_path: Path) -> None:
    src = bm.write(bm.iris_frame().drop_columns(["sepal_length"]), tmp_path / "iris.parquet")
    result = CliRunner().invoke(main, ["score", str(models["iris"]), str(src), "-o", str(tmp_path / "o.parquet")])
    assert result.exit_code == 1
    assert "error: model 'iris': input 'sepal_length' has no column" in result.output
    result = CliRunner().invoke(
        main, ["score", str(models["iris"]), str(src), "-o", str(tmp_path / "o.csv"), "--on-error", "maybe"]
    )
    assert result.exit_code == 2
    assert "'maybe' is not one of 'fail', 'skip', 'null'" in result.output


def test_progress_line_shows_rows_rate_and_eta() -> None:
    import io

    from modelport.offline.score import Progress

    stream = io.StringIO()
    bar = Progress(1000, True, stream)
    bar._last = -1.0
    bar.update(250)
    bar.close()
    text = stream.getvalue()
    assert "250/1,000 rows (25%)" in text and "rows/s" in text and "ETA" in text
    quiet = io.StringIO()
    silent = Progress(1000, None, quiet)  # not a terminal: silent
    silent.update(1000)
    silent.close()
    assert quiet.getvalue() == ""


# -- remote storage (s3:// through fsspec, against moto's S3 on loopback) -----------------------------------------


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Any:
    pytest.importorskip("s3fs")
    moto_server = pytest.importorskip("moto.server")
    import fsspec

    from tests.conftest import free_port

    port = free_port()
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setitem(fsspec.config.conf, "s3", {"endpoint_url": f"http://127.0.0.1:{port}"})
    fs = fsspec.filesystem("s3", skip_instance_cache=True)
    fs.mkdir("batch-bucket")
    yield fs
    server.stop()


def test_s3_folder_in_and_s3_file_out(models: dict[str, Path], tmp_path: Path, s3: Any) -> None:
    table = bm.iris_frame()
    for i, start in enumerate(range(0, 150, 75)):
        local = bm.write(table.slice(start, 75), tmp_path / f"part-{i}.parquet")
        s3.put(str(local), f"batch-bucket/day/part-{i}.parquet")
    report = score_files(
        str(models["iris"]), ["s3://batch-bucket/day/"], "s3://batch-bucket/out/scored.parquet", keep=["id"], workers=1
    )
    assert (report.rows_in, report.rows_out) == (150, 150)
    assert s3.ls("batch-bucket/out") == ["batch-bucket/out/scored.parquet"]  # no temporary name left behind
    with s3.open("batch-bucket/out/scored.parquet", "rb") as fh:
        got = pq.read_table(fh)
    expected = _expected(models["iris"], table, _iris_inputs(table))
    assert got.column("id").to_pylist() == list(range(150))
    assert got.column("predict").to_pylist() == expected["predict"].tolist()


def test_cli_score_refuses_to_overwrite_without_force(models: dict[str, Path], tmp_path: Path) -> None:
    src = bm.write(bm.iris_frame(), tmp_path / "iris.parquet")
    out = tmp_path / "out.parquet"
    out.write_bytes(b"yesterday's output")
    for engine in ("local", "spark"):  # refused before any engine starts
        result = CliRunner().invoke(main, ["score", str(models["iris"]), str(src), "-o", str(out), "--engine", engine])
        assert result.exit_code == 1
        assert result.output == f"error: {out} already exists; pass --force to overwrite it\n"
        assert out.read_bytes() == b"yesterday's output"
    result = CliRunner().invoke(main, ["score", str(models["iris"]), str(src), "-o", str(out), "--force"])
    assert result.exit_code == 0, result.output
    assert pq.read_table(out).num_rows == 150
    with pytest.raises(ConfigError, match="already exists; pass --force to overwrite it"):
        score_files(str(models["iris"]), [str(src)], str(out), overwrite=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["iris.parquet", "out.parquet"]


@pytest.fixture(scope="module")
def big_iris(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Iris repeated to 1.5M rows: seconds of scoring, so a signal lands mid-way."""
    table = bm.iris_frame()
    big = pa.concat_tables([table] * 10_000)
    path = tmp_path_factory.mktemp("big") / "big.parquet"
    pq.write_table(big, path, row_group_size=50_000)
    return path


@pytest.mark.slow
@pytest.mark.parametrize(("signum", "workers"), [(signal.SIGTERM, 1), (signal.SIGINT, 1), (signal.SIGTERM, 2)])
def test_a_signal_mid_way_removes_the_partial_output(
    models: dict[str, Path], big_iris: Path, tmp_path: Path, signum: int, workers: int
) -> None:
    out = tmp_path / "scored.jsonl"
    src = str(Path(__file__).resolve().parents[1] / "src")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (src, os.environ.get("PYTHONPATH")) if p)}
    cmd = [sys.executable, "-m", "modelport.cli", "score", str(models["iris"]), str(big_iris), "-o", str(out)]
    cmd += ["--batch-size", "2000", "--workers", str(workers), "--keep", "id"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while not any(p.stat().st_size > 0 for p in tmp_path.glob(".scored.jsonl.*.partial")):
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "no partial output appeared"
            time.sleep(0.02)
        proc.send_signal(signum)  # rows are on disk under the temporary name: mid-way
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    name = signal.Signals(signum).name
    assert proc.returncode == 128 + signum, err
    assert err.decode().strip().splitlines()[-1] == (
        f"error: interrupted by {name}; removed the unfinished output, {out} was not written"
    )
    assert list(tmp_path.iterdir()) == []  # neither the partial file nor an output
