"""Read a saved Spark ML stage: its ``metadata/`` JSON line and its ``data/`` Parquet.

Layout (Spark's ``ml/util/ReadWrite.scala``): ``<dir>/metadata/part-00000`` holds one
JSON object with ``class``, ``uid``, ``sparkVersion``, ``paramMap`` and
``defaultParamMap``; ``<dir>/data/`` holds Parquet files. A PipelineModel lists its
stages in ``paramMap.stageUids`` and stores stage *i* in
``stages/<i zero-padded to len(str(n))>_<uid>``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from modelport.core.errors import ModelLoadError

__all__ = ["StageMeta", "dense_vector", "matrix", "read_data", "read_metadata", "stage_dirs"]


@dataclass(frozen=True)
class StageMeta:
    """A stage's saved metadata with its params resolved (explicit over default)."""

    cls: str
    uid: str
    spark_version: tuple[int, int]
    params: dict[str, Any]
    raw: dict[str, Any]
    path: Path

    @property
    def short_class(self) -> str:
        return self.cls.rsplit(".", 1)[-1]

    def get(self, name: str, default: Any = None) -> Any:
        return self.params.get(name, default)

    def has(self, name: str) -> bool:
        return name in self.params


def read_metadata(path: Path) -> StageMeta:
    meta_dir = path / "metadata"
    parts = sorted(p for p in meta_dir.glob("part-*") if p.is_file()) if meta_dir.is_dir() else []
    if not parts:
        raise ModelLoadError(f"{path}: no Spark ML metadata (expected {meta_dir}/part-00000 written by Spark's save())")
    text = ""
    for part in parts:
        text = part.read_text(encoding="utf-8").strip()
        if text:
            break
    try:
        raw = json.loads(text.splitlines()[0])
        cls = str(raw["class"])
    except (ValueError, KeyError, IndexError) as exc:
        raise ModelLoadError(f"{parts[0]}: not Spark ML metadata JSON ({type(exc).__name__}: {exc})") from None
    major, minor = _spark_version(parts[0], raw.get("sparkVersion"))
    params = dict(raw.get("defaultParamMap") or {})
    params.update(raw.get("paramMap") or {})
    return StageMeta(cls, str(raw.get("uid", "")), (major, minor), params, raw, path)


def _spark_version(source: Path, value: Any) -> tuple[int, int]:
    """``major.minor`` of the saving Spark ("3.5.1", "4.0.0-preview2"); anything else fails the load.

    Some stages read differently by version (HashingTF's hash before 3.0), so guessing would
    silently change answers.
    """
    found = re.match(r"(\d+)\.(\d+)(?:[.\-+]|$)", value) if isinstance(value, str) else None
    if found is None:
        raise ModelLoadError(
            f"{source}: sparkVersion {value!r} is not a Spark version such as '3.5.1'; "
            "the stage's behaviour depends on it, so the model is not loaded"
        )
    return int(found.group(1)), int(found.group(2))


def read_data(path: Path, sub: str = "data") -> Any:
    """The stage's Parquet data as a ``pyarrow.Table`` (all part files, in order)."""
    import pyarrow.parquet as pq

    data_dir = path / sub
    files = sorted(p for p in data_dir.glob("*.parquet")) if data_dir.is_dir() else []
    if not files:
        raise ModelLoadError(f"{path}: no Parquet data in {data_dir}")
    try:
        tables = [pq.read_table(f) for f in files]
    except Exception as exc:
        raise ModelLoadError(f"{data_dir}: unreadable Parquet ({type(exc).__name__}: {exc})") from None
    import pyarrow as pa

    return pa.concat_tables(tables) if len(tables) > 1 else tables[0]


def stage_dirs(path: Path, meta: StageMeta) -> list[Path]:
    """The stage directories of a saved PipelineModel, in pipeline order."""
    # PySpark's own PipelineModel writer (used when a stage is Python-only) puts stageUids at the top level
    uids = meta.get("stageUids") or meta.raw.get("paramMap", {}).get("stageUids") or meta.raw.get("stageUids") or []
    width = len(str(len(uids)))
    out = []
    for i, uid in enumerate(uids):
        d = path / "stages" / f"{str(i).zfill(width)}_{uid}"
        if not d.is_dir():
            raise ModelLoadError(f"{path}: stage {i} ({uid}) is missing; expected {d}")
        out.append(d)
    return out


def dense_vector(value: dict[str, Any] | None) -> np.ndarray:
    """A VectorUDT struct ``{type: 0 sparse | 1 dense, size, indices, values}`` as a dense array."""
    if value is None:
        raise ModelLoadError("a saved vector is null")
    values = np.asarray(value["values"], dtype=np.float64)
    if int(value["type"]) == 1:
        return values
    out = np.zeros(int(value["size"]), dtype=np.float64)
    out[np.asarray(value["indices"], dtype=np.int64)] = values
    return out


def matrix(value: dict[str, Any] | None) -> np.ndarray:
    """A MatrixUDT struct as a dense ``(numRows, numCols)`` array (Spark stores column-major)."""
    if value is None:
        raise ModelLoadError("a saved matrix is null")
    rows, cols = int(value["numRows"]), int(value["numCols"])
    values = np.asarray(value["values"], dtype=np.float64)
    transposed = bool(value.get("isTransposed"))
    if int(value["type"]) == 1:  # dense
        if transposed:
            return values.reshape(rows, cols)
        return values.reshape(cols, rows).T.copy()
    # sparse: compressed columns (or rows when transposed)
    col_ptrs = np.asarray(value["colPtrs"], dtype=np.int64)
    row_idx = np.asarray(value["rowIndices"], dtype=np.int64)
    out = np.zeros((rows, cols), dtype=np.float64)
    outer = rows if transposed else cols
    for j in range(outer):
        for k in range(col_ptrs[j], col_ptrs[j + 1]):
            if transposed:
                out[j, row_idx[k]] = values[k]
            else:
                out[row_idx[k], j] = values[k]
    return out
