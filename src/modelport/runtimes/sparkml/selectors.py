"""Feature selectors: ChiSqSelectorModel, UnivariateFeatureSelectorModel, VarianceThresholdSelectorModel.

All three save ``selectedFeatures`` and transform the same way (Spark's ``SelectorModel``):
the output holds the features at those indices in increasing order; sparse stays sparse.
Spark does not check the input size; an index past the end of a vector is an error.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp

from modelport.core.errors import ModelLoadError
from modelport.runtimes.sparkml.reader import StageMeta, read_data
from modelport.runtimes.sparkml.stage import Attr, ColumnInfo, Frame, Schema, Stage, register
from modelport.runtimes.sparkml.vectors import VECTOR_TYPES, SparseRow, invalid, row_size, to_dense

__all__ = ["SelectorModel"]

_SPARK = "org.apache.spark.ml.feature."


@register
class SelectorModel(Stage):
    """The saved ``selectedFeatures`` of a fitted selector, applied to ``featuresCol``."""

    spark_classes = (
        _SPARK + "ChiSqSelectorModel",
        _SPARK + "UnivariateFeatureSelectorModel",
        _SPARK + "VarianceThresholdSelectorModel",
    )

    def __init__(self, meta: StageMeta) -> None:
        super().__init__(meta)
        table = read_data(meta.path)
        if "selectedFeatures" not in table.column_names:
            raise ModelLoadError(f"{meta.path}: {meta.short_class} data has no selectedFeatures")
        selected = table.column("selectedFeatures")[0].as_py() or []
        # Spark 2.x's ChiSqSelectorModel kept them unsorted and sorted at transform time
        self.selected = sorted(int(i) for i in selected)
        if len(set(self.selected)) != len(self.selected) or any(i < 0 for i in self.selected):
            raise ModelLoadError(f"{meta.path}: {meta.short_class} selectedFeatures are not distinct indices")
        self.in_col = str(meta.get("featuresCol") or "features")
        self.out_col = str(meta.get("outputCol"))
        self.index = np.asarray(self.selected, dtype=np.int64)
        self.name = f"{meta.short_class} ({meta.uid})"
        self.in_size: int | None = None

    @property
    def inputs(self) -> list[str]:
        return [self.in_col]

    @property
    def outputs(self) -> list[str]:
        return [self.out_col]

    def input_spec(self, column: str) -> tuple[str, tuple[int, ...]]:
        return "FP64", (-1, -1)

    def output_spec(self, column: str) -> tuple[str, tuple[int, ...]]:
        return "FP64", (-1, len(self.selected))

    def setup(self, schema: Schema) -> None:
        info = schema.get(self.in_col)
        attrs: tuple[Attr, ...] | None = None
        if info is not None and info.kind == "vector":
            self.in_size = info.size
            if info.attrs is not None and self.selected and max(self.selected) < len(info.attrs):
                attrs = tuple(info.attrs[i] for i in self.selected)
        if self.in_size is not None and self.selected and max(self.selected) >= self.in_size:
            raise ModelLoadError(
                f"{self.meta.path}: {self.meta.short_class} selects feature {max(self.selected)} of column "
                f"'{self.in_col}', which has {self.in_size}"
            )
        schema[self.out_col] = ColumnInfo("vector", len(self.selected), attrs=attrs)

    def transform(self, frame: Frame) -> None:
        x = frame[self.in_col]
        if not sp.issparse(x):
            x = to_dense(x)
        if self.selected and x.shape[1] <= self.selected[-1]:
            raise invalid(
                self.name, self.in_col, f"vector of size {x.shape[1]}; the selector keeps index {self.selected[-1]}"
            )
        out = x[:, self.index]
        frame[self.out_col] = sp.csr_matrix(out) if sp.issparse(out) else np.ascontiguousarray(out)

    def row(self, values: dict[str, Any]) -> bool:
        v = values[self.in_col]
        if not isinstance(v, VECTOR_TYPES) or (self.selected and row_size(v) <= self.selected[-1]):
            return False
        if isinstance(v, SparseRow):
            pos = {i: k for k, i in enumerate(self.selected)}
            kept = [(pos[i], x) for i, x in zip(v.indices, v.values, strict=True) if i in pos]
            values[self.out_col] = SparseRow(len(self.selected), [k for k, _ in kept], [x for _, x in kept])
        else:
            values[self.out_col] = [v[i] for i in self.selected]
        return True

    def describe(self) -> str:
        return f"{self.meta.short_class}({self.in_col} -> {self.out_col}; {len(self.selected)} features)"
