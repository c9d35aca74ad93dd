"""Helpers for Spark ML parity tests: numpy <-> Spark DataFrames, and loading one saved stage."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from modelport.runtimes.sparkml.reader import read_metadata
from modelport.runtimes.sparkml.registry import load_all
from modelport.runtimes.sparkml.stage import STAGES, Frame, Stage
from modelport.runtimes.sparkml.vectors import SparseRow
from tests.tolerance import assert_close


def vector_df(spark: Any, x: Any, y: np.ndarray | None = None, extra: dict[str, np.ndarray] | None = None) -> Any:
    """A DataFrame with ``features`` (dense, or sparse when ``x`` is a scipy matrix), ``label``, extras."""
    from pyspark.ml.linalg import Vectors

    n = x.shape[0]
    if sp.issparse(x):
        x = sp.csr_matrix(x)
        feats = [
            Vectors.sparse(
                x.shape[1],
                x.indices[x.indptr[i] : x.indptr[i + 1]].tolist(),
                x.data[x.indptr[i] : x.indptr[i + 1]].tolist(),
            )
            for i in range(n)
        ]
    else:
        feats = [Vectors.dense(row.tolist()) for row in np.asarray(x, dtype=np.float64)]
    cols: dict[str, list[Any]] = {"features": feats}
    if y is not None:
        cols["label"] = [float(v) for v in y]
    for name, values in (extra or {}).items():
        cols[name] = [float(v) for v in values]
    names = list(cols)
    rows = [tuple(cols[c][i] for c in names) for i in range(n)]
    return spark.createDataFrame(rows, names)


def collect(df: Any, columns: list[str]) -> dict[str, np.ndarray]:
    """Columns of a transformed DataFrame as numpy (vectors become 2-D arrays), in row order."""
    rows = df.select(*columns).collect()
    out: dict[str, np.ndarray] = {}
    for c in columns:
        values = [r[c] for r in rows]
        if values and hasattr(values[0], "toArray"):
            out[c] = np.array([v.toArray() for v in values], dtype=np.float64)
        else:
            out[c] = np.array(values)
    return out


def load_stage(path: Path | str) -> Stage:
    """One saved stage, through the same registry the pipeline loader uses."""
    load_all()
    meta = read_metadata(Path(path))
    return STAGES[meta.cls](meta)


def run_stage(stage: Stage, x: Any, extra: dict[str, np.ndarray] | None = None) -> Frame:
    """Apply ``stage`` to a Frame holding ``features`` (and extra numeric columns).

    When the stage has a row method, every row is also run through it alone and must give the
    frame's answer for that row (:func:`assert_row_method_agrees`).
    """
    columns: dict[str, Any] = {"features": x}
    columns.update(extra or {})
    frame = Frame(columns, x.shape[0])
    stage.transform(frame)
    assert_row_method_agrees(stage, x, extra or {}, frame)
    return frame


def _row_vector(x: Any, i: int) -> Any:
    """Row ``i`` of a vector column as the row path holds it: a dense list or a SparseRow."""
    if sp.issparse(x):
        r = sp.csr_matrix(x)
        lo, hi = r.indptr[i], r.indptr[i + 1]
        order = np.argsort(r.indices[lo:hi], kind="stable")
        return SparseRow(r.shape[1], r.indices[lo:hi][order].tolist(), r.data[lo:hi][order].tolist())
    return np.asarray(x[i], dtype=np.float64).tolist()


def assert_row_method_agrees(stage: Stage, x: Any, extra: dict[str, np.ndarray], frame: Frame) -> int:
    """``stage.row`` on each row alone equals the frame's row by tests/tolerance.py's rule."""
    step = stage.row_step()
    if step is None or frame.n != x.shape[0]:
        return 0
    answered = 0
    for i in range(x.shape[0]):
        values: dict[str, Any] = {"features": _row_vector(x, i)}
        values.update({k: float(v[i]) for k, v in extra.items()})
        if not step(values):
            continue
        answered += 1
        for col in stage.outputs:
            want = frame[col]
            want_row = np.asarray(want[i : i + 1].toarray() if sp.issparse(want) else want[i : i + 1], dtype=np.float64)
            got = values[col]
            have = np.asarray([got.dense() if isinstance(got, SparseRow) else got], dtype=np.float64)
            assert have.shape == want_row.shape, (col, i, have.shape, want_row.shape)
            assert_close(have, want_row, what=f"{col}: row {i} by row()")
    assert answered, f"{stage.describe()}: row() declined every row"
    return answered


def assert_parity(
    stage: Stage,
    spark_model: Any,
    spark_df: Any,
    x: Any,
    columns: list[str],
    extra: dict[str, np.ndarray] | None = None,
    exact: tuple[str, ...] = ("prediction",),
) -> Frame:
    """Spark's transform and the stage agree: ``exact`` columns (class labels) equal, the rest by assert_close."""
    expected = collect(spark_model.transform(spark_df), columns)
    frame = run_stage(stage, x, extra)
    for c in columns:
        got = np.asarray(frame[c])
        assert got.shape == expected[c].shape, (c, got.shape, expected[c].shape)
        # class labels are picked, not computed: they must be the same label
        assert_close(got, expected[c], exact=c in exact or expected[c].dtype.kind in "iu", what=c)
    return frame


_BLOCK_PYSPARK = """
import sys

class _Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("pyspark", "py4j"):
            raise ImportError(f"{name} is blocked in this test")
        return None

sys.meta_path.insert(0, _Block())
"""


def run_without_pyspark(tmp_path: Path, script: str, timeout: float = 300) -> dict[str, Any]:
    """Run ``script`` in a Python where importing pyspark or py4j raises; the JSON of its last line.

    Checks first that pyspark really is blocked there, then that the script exits 0.
    """
    import json

    blocker = tmp_path / "block"
    blocker.mkdir()
    (blocker / "sitecustomize.py").write_text(_BLOCK_PYSPARK)
    guard = (
        "try:\n    import pyspark\nexcept ImportError:\n    pass\nelse:\n    raise SystemExit('pyspark importable')\n"
    )
    src = Path(__file__).resolve().parents[2] / "src"
    env = dict(os.environ, PYTHONPATH=f"{blocker}{os.pathsep}{src}")
    code = guard + textwrap.dedent(script)
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stderr
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result
