"""ALSModel (``ml/recommendation/ALS.scala``): prediction = the float32 dot product of the user's and item's factors.

The user and item columns are cast to Int as Spark's ``checkIntegers`` does: a value with a
fractional part or outside the Int range is an error. An id without factors (or a null id) gives
NaN with ``coldStartStrategy = "nan"`` and drops the row with ``"drop"``. Spark computes the dot
product in single precision (``sdot``), so the prediction is a float32 number.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from modelport.core.errors import ModelLoadError
from modelport.runtimes.sparkml.reader import StageMeta, read_data
from modelport.runtimes.sparkml.stage import ColumnInfo, Frame, Schema, Stage, param_or, register
from modelport.runtimes.sparkml.vectors import NUMBER_TYPES, invalid

__all__ = ["ALSModel"]

_INT_MIN, _INT_MAX = -(2**31), 2**31 - 1


def _factors(meta: StageMeta, sub: str) -> tuple[dict[int, int], np.ndarray]:
    table = read_data(meta.path, sub)
    try:
        ids = [int(i) for i in table.column("id").to_pylist()]
        feats = np.asarray(table.column("features").to_pylist(), dtype=np.float32)
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelLoadError(f"{meta.path}: unreadable ALSModel {sub} ({exc!r})") from None
    return {i: k for k, i in enumerate(ids)}, feats


@register
class ALSModel(Stage):
    spark_classes = ("org.apache.spark.ml.recommendation.ALSModel",)

    def __init__(self, meta: StageMeta) -> None:
        super().__init__(meta)
        self.user_col = str(param_or(meta, "userCol", "user"))
        self.item_col = str(param_or(meta, "itemCol", "item"))
        self.pred_col = str(param_or(meta, "predictionCol", "prediction"))
        self.cold = str(param_or(meta, "coldStartStrategy", "nan")).lower()
        if self.cold not in ("nan", "drop"):
            raise ModelLoadError(f"{meta.path}: ALSModel coldStartStrategy '{self.cold}' is not nan or drop")
        self.users, self.user_f = _factors(meta, "userFactors")
        self.items, self.item_f = _factors(meta, "itemFactors")
        self.rank = self.user_f.shape[1] if self.user_f.ndim == 2 else 0
        self.user_rows: list[list[float]] = self.user_f.tolist()
        self.item_rows: list[list[float]] = self.item_f.tolist()
        self.name = f"ALSModel ({meta.uid})"

    @property
    def inputs(self) -> list[str]:
        return [self.user_col, self.item_col]

    @property
    def outputs(self) -> list[str]:
        return [self.pred_col]

    def input_datatype(self, column: str) -> str:
        return "INT64"

    def output_spec(self, column: str) -> tuple[str, tuple[int, ...]]:
        return "FP32", (-1,)

    def setup(self, schema: Schema) -> None:
        schema[self.pred_col] = ColumnInfo("number")

    def _positions(self, col: str, values: Any, lookup: dict[int, int]) -> np.ndarray:
        x = np.asarray(values)
        if x.dtype == object:
            x = np.array([np.nan if v is None else v for v in x], dtype=np.float64)
        xf = x.astype(np.float64)
        present = ~np.isnan(xf)
        bad = present & ((xf != np.trunc(np.where(present, xf, 0))) | (xf < _INT_MIN) | (xf > _INT_MAX))
        if bad.any():
            raise invalid(
                self.name,
                col,
                f"value {float(xf[bad][0])!r}: ALS only supports values in Integer range and without fractional part",
            )
        ids = np.where(present, xf, 0).astype(np.int64)
        return np.array([lookup.get(int(i), -1) if p else -1 for i, p in zip(ids, present, strict=True)])

    def _dots(self, u: np.ndarray, i: np.ndarray) -> np.ndarray:
        """Single-precision dot products, as Spark's ``sdot`` (one code path for frames and single rows)."""
        out: np.ndarray = np.einsum("ij,ij->i", self.user_f[u], self.item_f[i], dtype=np.float32)
        return out

    def transform(self, frame: Frame) -> None:
        u = self._positions(self.user_col, frame[self.user_col], self.users)
        i = self._positions(self.item_col, frame[self.item_col], self.items)
        ok = (u >= 0) & (i >= 0)
        out = np.full(len(u), np.nan, dtype=np.float32)
        if ok.any():
            out[ok] = self._dots(u[ok], i[ok])
        frame[self.pred_col] = out
        if self.cold == "drop" and not ok.all():
            frame.filter(ok)

    def row(self, values: dict[str, Any]) -> bool:
        u, i = values[self.user_col], values[self.item_col]
        if not isinstance(u, NUMBER_TYPES) or not isinstance(i, NUMBER_TYPES):
            return False
        if u != int(u) or i != int(i) or not (_INT_MIN <= u <= _INT_MAX and _INT_MIN <= i <= _INT_MAX):
            return False
        a, b = self.users.get(int(u)), self.items.get(int(i))
        if a is None or b is None:
            if self.cold == "drop":
                return False
            values[self.pred_col] = float("nan")
            return True
        values[self.pred_col] = float(self._dots(np.array([a]), np.array([b]))[0])
        return True

    def describe(self) -> str:
        return (
            f"ALSModel({self.user_col}, {self.item_col} -> {self.pred_col}; rank {self.rank}, "
            f"{len(self.users)} users, {len(self.items)} items, coldStart {self.cold})"
        )
