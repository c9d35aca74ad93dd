"""TargetEncoderModel (Spark 4, ``ml/feature/TargetEncoder.scala``): category value -> its smoothed target statistic.

Spark saves, per input column (``index``), the training ``categories`` with their ``counts`` and ``stats``
(positives for a binary target, the mean for a continuous one); category ``Int.MaxValue`` holds the
whole column's totals (the "unseen" entry) and -1 the null category. The encoding of a category is
``w · stat/count + (1 − w) · global_stat/global_count`` (binary) or ``w · stat + (1 − w) · global_stat``
(continuous) with ``w = count / (count + smoothing)``, computed here in that order. A null gets the null
category's encoding when training saw one, else it is unseen; a value that is not a saved category (-1
and Int.MaxValue included) is unseen: ``handleInvalid = "keep"`` gives the unseen entry's encoding,
``"error"`` fails. NaN and null travel the same way on the wire (modelport's null convention).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from modelport.core.errors import ModelLoadError
from modelport.runtimes.sparkml.reader import StageMeta, read_data
from modelport.runtimes.sparkml.stage import ColumnInfo, Frame, Schema, Stage, param_or, register
from modelport.runtimes.sparkml.vectors import NUMBER_TYPES, as_float, invalid

__all__ = ["TargetEncoderModel"]

_UNSEEN = float(2**31 - 1)
_NULL = -1.0


@register
class TargetEncoderModel(Stage):
    spark_classes = ("org.apache.spark.ml.feature.TargetEncoderModel",)

    def __init__(self, meta: StageMeta) -> None:
        super().__init__(meta)
        table = read_data(meta.path)
        needed = {"index", "categories", "counts", "stats"}
        if not needed <= set(table.column_names):
            raise ModelLoadError(
                f"{meta.path}: TargetEncoderModel data has columns {table.column_names}, expected {sorted(needed)}"
            )
        smoothing = as_float(param_or(meta, "smoothing", 0.0))
        binary = str(param_or(meta, "targetType", "binary")) == "binary"
        rows = sorted(table.to_pylist(), key=lambda r: int(r["index"]))
        self.encodings: list[dict[float, float]] = []
        for r in rows:
            stats = {
                float(c): (float(n), float(v)) for c, n, v in zip(r["categories"], r["counts"], r["stats"], strict=True)
            }
            if _UNSEEN not in stats:
                raise ModelLoadError(f"{meta.path}: TargetEncoderModel column {r['index']} has no global statistics")
            g_count, g_stat = stats[_UNSEEN]
            enc: dict[float, float] = {}
            for cat, (count, stat) in stats.items():
                weight = count / (count + smoothing)
                enc[cat] = (
                    weight * (stat / count) + (1 - weight) * (g_stat / g_count)
                    if binary
                    else weight * stat + (1 - weight) * g_stat
                )
            self.encodings.append(enc)
        ins, outs = meta.get("inputCols"), meta.get("outputCols")
        self.pairs = list(zip(ins, outs or [], strict=True)) if ins else [(meta.get("inputCol"), meta.get("outputCol"))]
        if len(self.pairs) != len(self.encodings):
            raise ModelLoadError(
                f"{meta.path}: TargetEncoderModel has {len(self.encodings)} encodings for {len(self.pairs)} columns"
            )
        self.mode = str(param_or(meta, "handleInvalid", "error"))
        if self.mode not in ("error", "keep"):
            raise ModelLoadError(f"{meta.path}: TargetEncoderModel handleInvalid '{self.mode}' is not error or keep")
        self.name = f"TargetEncoderModel ({meta.uid})"

    @property
    def inputs(self) -> list[str]:
        return [src for src, _ in self.pairs]

    @property
    def outputs(self) -> list[str]:
        return [dst for _, dst in self.pairs]

    def setup(self, schema: Schema) -> None:
        for _, dst in self.pairs:
            schema[dst] = ColumnInfo("number")

    def _encode(self, k: int, x: float) -> float | None:
        table = self.encodings[k]
        found = table.get(_NULL) if x != x else None if x in (_NULL, _UNSEEN) else table.get(x)
        if found is None and self.mode == "keep":
            found = table[_UNSEEN]
        return found

    def transform(self, frame: Frame) -> None:
        for k, (src, dst) in enumerate(self.pairs):
            col = np.asarray(frame[src], dtype=np.float64)
            out = np.empty(len(col), dtype=np.float64)
            for i, x in enumerate(col.tolist()):
                got = self._encode(k, x)
                if got is None:
                    what = "null value" if x != x else f"unseen value {x!r}"
                    raise invalid(
                        self.name, src, f"{what}; TargetEncoder handleInvalid is 'error' (set 'keep' to encode it)"
                    )
                out[i] = got
            frame[dst] = out

    def row(self, values: dict[str, Any]) -> bool:
        for k, (src, dst) in enumerate(self.pairs):
            v = values[src]
            if not isinstance(v, NUMBER_TYPES):
                return False
            got = self._encode(k, float(v))
            if got is None:
                return False
            values[dst] = got
        return True

    def describe(self) -> str:
        return f"TargetEncoderModel({', '.join(self.inputs)} -> {', '.join(self.outputs)}; {self.mode})"
