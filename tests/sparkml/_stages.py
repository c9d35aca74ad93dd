"""Helpers for the issue-12 stage tests: wine rows as Spark and modelport inputs, compared with assert_close."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

import modelport
from tests.sparkml.parity import assert_rows_alone, batch_from, collect
from tests.tolerance import assert_close

WINE_COLS = ["alcohol", "malic", "ash", "alcalinity", "magnesium", "phenols"]


def wine_rows() -> list[dict[str, Any]]:
    """scikit-learn's bundled wine data as row dicts: six numbers, a small integer ``cat``, a string ``grade``."""
    from sklearn.datasets import load_wine

    x, y = load_wine(return_X_y=True)
    rows = []
    for i, (features, label) in enumerate(zip(x, y, strict=True)):
        row: dict[str, Any] = {c: float(v) for c, v in zip(WINE_COLS, features[: len(WINE_COLS)], strict=True)}
        row["cat"] = float(int(features[0]) % 3)
        row["grade"] = ["low", "mid", "high"][int(label)] if i % 7 else "mid"
        row["label"] = float(label)
        rows.append(row)
    return rows


WINE_SCHEMA = ", ".join([*(f"{c} double" for c in WINE_COLS), "cat double", "grade string", "label double"])


def wine_df(spark: Any, rows: list[dict[str, Any]]) -> Any:
    cols = [*WINE_COLS, "cat", "grade", "label"]
    return spark.createDataFrame([tuple(r[c] for c in cols) for r in rows], WINE_SCHEMA)


def split(rows: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    return [r for i, r in enumerate(rows) if i % 4], [r for i, r in enumerate(rows) if not i % 4]


def compare_all(
    fitted: Any, model: modelport.Model, test_df: Any, rows: list[dict[str, Any]], cols: list[str]
) -> dict[str, Any]:
    """Spark's transform against modelport's predict on every column (assert_close), then each row alone."""
    want = collect(fitted.transform(test_df), cols)
    batch = batch_from(rows, model)
    got = model.predict(batch, outputs=cols)
    for c in cols:
        assert_close(got[c], want[c], what=c)
    assert_rows_alone(model, batch, got, cols)
    return got


def save_stage(stage: Any, path: Path) -> Path:
    """Save a Spark stage (or fitted model) without .crc files."""
    stage.write().overwrite().save(str(path))
    for crc in path.rglob(".*.crc"):
        crc.unlink()
    return path


def vectors(values: np.ndarray) -> list[Any]:
    from pyspark.ml.linalg import Vectors

    return [Vectors.dense(v.tolist()) for v in values]
