"""Stages that reshape vectors by slot: VectorIndexerModel, VectorSizeHint, VectorSlicer and Interaction.

Spark drives two of them by the input column's ML attributes (``ml/attribute``): VectorSlicer
resolves ``names`` to slots, and Interaction one-hot encodes slots whose attribute is nominal.
The runtime carries what it knows of those attributes in ``ColumnInfo.attrs`` (see
:func:`assembled_attrs`, which mirrors VectorAssembler's naming) and refuses at load when a stage
needs an attribute it cannot know, instead of guessing.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp

from modelport.core.errors import ModelLoadError
from modelport.runtimes.sparkml.reader import StageMeta, read_data
from modelport.runtimes.sparkml.stage import Attr, ColumnInfo, Frame, Schema, Stage, param_or, register
from modelport.runtimes.sparkml.vectors import (
    NUMBER_TYPES,
    VECTOR_TYPES,
    SparseRow,
    invalid,
    row_dense,
    row_size,
    to_dense,
)

__all__ = ["Interaction", "VectorIndexerModel", "VectorSizeHint", "VectorSlicer", "assembled_attrs", "column_attrs"]

_SPARK = "org.apache.spark.ml.feature."


def _name(meta: StageMeta) -> str:
    return f"{meta.short_class} ({meta.uid})"


def column_attrs(column: str, info: ColumnInfo | None) -> tuple[Attr, ...] | None:
    """The ML attributes of ``column`` as one slot per feature, or None when the runtime does not know them.

    A number column is one slot: nominal with ``len(labels)`` values when it carries labels (a
    StringIndexer output), else what ``info.attrs`` says (pipeline sources are numeric).
    """
    if info is None:
        return None
    if info.kind == "number":
        if info.labels is not None:
            return ((column, len(info.labels)),)
        if info.attrs is not None:
            return ((column, info.attrs[0][1]),)
        return None
    if info.kind == "vector":
        return info.attrs
    return None


def assembled_attrs(inputs: list[str], schema: Schema) -> tuple[Attr, ...] | None:
    """VectorAssembler's output attributes: a number column keeps its attribute under its own name;
    a vector column's slots are named ``<col>_<attr name>`` or ``<col>_<i>`` when unnamed."""
    out: list[Attr] = []
    for col in inputs:
        info = schema.get(col)
        if info is None:
            return None
        if info.kind == "number":
            attrs = column_attrs(col, info)
            out.append((col, attrs[0][1] if attrs else None))
        elif info.attrs is not None:
            for i, (name, card) in enumerate(info.attrs):
                if card is None:
                    out.append((None, None))
                else:
                    out.append((f"{col}_{name}" if name is not None else f"{col}_{i}", card))
        elif info.size is not None:
            out.extend([(None, None)] * info.size)
        else:
            return None
    return tuple(out)


def _vector_input(frame: Frame, col: str) -> Any:
    value = frame[col]
    return value if sp.issparse(value) else to_dense(value)


# --- VectorIndexerModel ---------------------------------------------------------------------------


@register
class VectorIndexerModel(Stage):
    """Categorical slots -> category index by the saved maps; continuous slots unchanged.

    Spark's map lookup: a value the map lacks (NaN included) is invalid -> ``error`` raises,
    ``keep`` gives ``len(map)``, ``skip`` drops the row. A sparse vector's unstored zeros are
    not looked up (Spark relies on 0.0 mapping to 0), so a sparse input keeps its structure.
    """

    spark_classes = (_SPARK + "VectorIndexerModel",)

    def __init__(self, meta: StageMeta) -> None:
        super().__init__(meta)
        row = read_data(meta.path).to_pylist()[0]
        self.size = int(row["numFeatures"])
        maps = row["categoryMaps"] or []
        if isinstance(maps, dict):
            maps = list(maps.items())
        self.maps: dict[int, dict[float, float]] = {}
        for feature, mapping in maps:
            items = mapping.items() if isinstance(mapping, dict) else mapping
            self.maps[int(feature)] = {float(k): float(v) for k, v in items}
        if any(not 0 <= f < self.size for f in self.maps):
            raise ModelLoadError(f"{meta.path}: VectorIndexerModel category maps outside [0, {self.size})")
        self.features = sorted(self.maps)
        self.mode = str(param_or(meta, "handleInvalid", "error"))
        if self.mode not in ("error", "skip", "keep"):
            raise ModelLoadError(f"{meta.path}: VectorIndexerModel handleInvalid '{self.mode}' is not error/skip/keep")
        self.in_col, self.out_col = self.inputs[0], self.outputs[0]
        self.name = _name(meta)
        # Per categorical slot: the sorted known values and their indices, for a vectorised lookup.
        self.tables = {
            f: (np.array(sorted(m), dtype=np.float64), np.array([m[k] for k in sorted(m)], dtype=np.float64))
            for f, m in self.maps.items()
        }

    def input_spec(self, column: str) -> tuple[str, tuple[int, ...]]:
        return "FP64", (-1, self.size)

    def output_spec(self, column: str) -> tuple[str, tuple[int, ...]]:
        return "FP64", (-1, self.size)

    def setup(self, schema: Schema) -> None:
        before = column_attrs(self.in_col, schema.get(self.in_col))
        named = before is not None and len(before) == self.size
        attrs: list[Attr] = []
        for j in range(self.size):
            name = before[j][0] if named and before is not None else None
            if j in self.maps:
                # Spark 4 lists "__unknown" among a categorical slot's values under keep (Spark 3.5 does not,
                # as its saves show); two values without it make a BinaryAttribute, which Interaction treats as numeric
                unknown = self.mode == "keep" and self.meta.spark_version >= (4, 0)
                n = len(self.maps[j]) + (1 if unknown else 0)
                attrs.append((name, 0 if n == 2 and not unknown else n))
            else:
                attrs.append((name, 0))
        schema[self.out_col] = ColumnInfo("vector", self.size, attrs=tuple(attrs))

    def _lookup(self, feature: int, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        keys, idx = self.tables[feature]
        pos = np.searchsorted(keys, values)
        pos_c = np.minimum(pos, max(len(keys) - 1, 0))
        found = (pos < len(keys)) & (keys[pos_c] == values) if len(keys) else np.zeros(len(values), bool)
        out = np.where(found, idx[pos_c] if len(keys) else 0.0, float(len(keys)))
        return out, ~found

    def transform(self, frame: Frame) -> None:
        x = _vector_input(frame, self.in_col)
        if x.shape[1] != self.size:
            raise invalid(self.name, self.in_col, f"vector of size {x.shape[1]}, expected {self.size}")
        bad_rows = np.zeros(x.shape[0], dtype=bool)
        if sp.issparse(x):
            out = sp.csr_matrix(x, dtype=np.float64, copy=True)
            out.sort_indices()
            rows = np.repeat(np.arange(out.shape[0]), np.diff(out.indptr))
            for f in self.features:
                at = np.flatnonzero(out.indices == f)
                if not len(at):
                    continue
                mapped, bad = self._lookup(f, out.data[at])
                self._invalid(f, out.data[at], bad)
                out.data[at] = mapped
                bad_rows[rows[at[bad]]] = True
        else:
            out = x.copy()
            for f in self.features:
                mapped, bad = self._lookup(f, out[:, f])
                self._invalid(f, out[:, f], bad)
                out[:, f] = mapped
                bad_rows |= bad
        frame[self.out_col] = out
        if self.mode == "skip" and bad_rows.any():
            frame.filter(~bad_rows)

    def _invalid(self, feature: int, values: np.ndarray, bad: np.ndarray) -> None:
        if self.mode == "error" and bad.any():
            raise invalid(
                self.name,
                self.in_col,
                f"value {float(values[bad][0])!r} in feature {feature} is not one of its categories "
                f"{sorted(self.maps[feature])[:10]}; VectorIndexer handleInvalid is 'error' (set 'keep' or 'skip')",
            )

    def row(self, values: dict[str, Any]) -> bool:
        v = values[self.in_col]
        if not isinstance(v, VECTOR_TYPES) or row_size(v) != self.size:
            return False
        keep = self.mode == "keep"
        if isinstance(v, SparseRow):
            out_values = list(v.values)
            for k, i in enumerate(v.indices):
                m = self.maps.get(i)
                if m is not None:
                    got = m.get(out_values[k])
                    if got is None:
                        if not keep:
                            return False
                        got = float(len(m))
                    out_values[k] = got
            values[self.out_col] = SparseRow(v.size, v.indices, out_values)
            return True
        out = list(v)
        for f in self.features:
            m = self.maps[f]
            got = m.get(out[f])
            if got is None:
                if not keep:
                    return False
                got = float(len(m))
            out[f] = got
        values[self.out_col] = out
        return True

    def describe(self) -> str:
        return f"VectorIndexerModel({self.in_col} -> {self.out_col}; {len(self.maps)} of {self.size} categorical)"


# --- VectorSizeHint -------------------------------------------------------------------------------


@register
class VectorSizeHint(Stage):
    """Checks (or, with ``optimistic``, only declares) the size of a vector column; writes no column."""

    spark_classes = (_SPARK + "VectorSizeHint",)

    def __init__(self, meta: StageMeta) -> None:
        super().__init__(meta)
        size = meta.get("size")
        if size is None:
            raise ModelLoadError(f"{meta.path}: VectorSizeHint has no 'size' param")
        self.size = int(size)
        self.mode = str(param_or(meta, "handleInvalid", "error"))
        if self.mode not in ("error", "skip", "optimistic"):
            raise ModelLoadError(
                f"{meta.path}: VectorSizeHint handleInvalid '{self.mode}' is not error/skip/optimistic"
            )
        self.in_col = str(meta.get("inputCol"))
        self.name = _name(meta)

    @property
    def outputs(self) -> list[str]:
        return []

    def input_spec(self, column: str) -> tuple[str, tuple[int, ...]]:
        return "FP64", (-1, self.size)

    def setup(self, schema: Schema) -> None:
        info = schema.get(self.in_col)
        attrs = info.attrs if info is not None and info.attrs is not None and len(info.attrs) == self.size else None
        schema[self.in_col] = ColumnInfo("vector", self.size, attrs=attrs)

    def transform(self, frame: Frame) -> None:
        if self.mode == "optimistic":
            return
        x = frame[self.in_col]
        got = int(x.shape[1]) if getattr(x, "ndim", 2) == 2 else -1
        if got == self.size:
            return
        if self.mode == "error":
            raise invalid(self.name, self.in_col, f"vector of size {got}, VectorSizeHint says {self.size}")
        frame.filter(np.zeros(frame.n, dtype=bool))

    def row(self, values: dict[str, Any]) -> bool:
        if self.mode == "optimistic":
            return True
        v = values[self.in_col]
        return isinstance(v, VECTOR_TYPES) and row_size(v) == self.size

    def describe(self) -> str:
        return f"VectorSizeHint({self.in_col}; size {self.size}, {self.mode})"


# --- VectorSlicer ---------------------------------------------------------------------------------


@register
class VectorSlicer(Stage):
    """The slots ``indices`` then those named by ``names`` (resolved through the input's ML attributes)."""

    spark_classes = (_SPARK + "VectorSlicer",)

    def __init__(self, meta: StageMeta) -> None:
        super().__init__(meta)
        self.indices = [int(i) for i in (meta.get("indices") or [])]
        self.names = [str(n) for n in (meta.get("names") or [])]
        if not self.indices and not self.names:
            raise ModelLoadError(f"{meta.path}: VectorSlicer selects no features (indices and names are empty)")
        self.in_col, self.out_col = self.inputs[0], self.outputs[0]
        self.selected: list[int] = list(self.indices)
        self.out_attrs: tuple[Attr, ...] | None = None
        self.name = _name(meta)

    def setup(self, schema: Schema) -> None:
        info = schema.get(self.in_col)
        attrs = column_attrs(self.in_col, info) if info is not None and info.kind == "vector" else None
        self.selected = list(self.indices)
        if self.names:
            if attrs is None or any(card is None for _, card in attrs):
                raise ModelLoadError(
                    f"{self.meta.path}: VectorSlicer selects features by name ({', '.join(self.names)}) but the "
                    f"feature names of column '{self.in_col}' are not known at load time (they come from Spark's ML "
                    "attributes, which the runtime tracks through VectorAssembler of pipeline inputs); "
                    "save the VectorSlicer with indices instead"
                )
            by_name = {n: i for i, (n, _) in enumerate(attrs) if n is not None}
            missing = [n for n in self.names if n not in by_name]
            if missing:
                raise ModelLoadError(
                    f"{self.meta.path}: VectorSlicer names {missing} are not features of column '{self.in_col}' "
                    f"(its features: {', '.join(n for n, _ in attrs if n is not None)})"
                )
            self.selected += [by_name[n] for n in self.names]
        if len(set(self.selected)) != len(self.selected):
            raise ModelLoadError(f"{self.meta.path}: VectorSlicer selects a feature twice: {self.selected}")
        if attrs is not None and len(attrs) and max(self.selected) >= len(attrs):
            raise ModelLoadError(
                f"{self.meta.path}: VectorSlicer selects index {max(self.selected)} of a {len(attrs)}-slot vector"
            )
        self.out_attrs = tuple(attrs[i] for i in self.selected) if attrs is not None else None
        schema[self.out_col] = ColumnInfo("vector", len(self.selected), attrs=self.out_attrs)

    def output_spec(self, column: str) -> tuple[str, tuple[int, ...]]:
        return "FP64", (-1, len(self.selected))

    def transform(self, frame: Frame) -> None:
        x = _vector_input(frame, self.in_col)
        top = max(self.selected)
        if x.shape[1] <= top:
            raise invalid(self.name, self.in_col, f"vector of size {x.shape[1]}; VectorSlicer selects index {top}")
        out = x[:, self.selected]
        frame[self.out_col] = sp.csr_matrix(out) if sp.issparse(out) else np.ascontiguousarray(out)

    def row(self, values: dict[str, Any]) -> bool:
        v = values[self.in_col]
        if not isinstance(v, VECTOR_TYPES) or row_size(v) <= max(self.selected):
            return False
        dense = row_dense(v)
        values[self.out_col] = [dense[i] for i in self.selected]
        return True

    def describe(self) -> str:
        return f"VectorSlicer({self.in_col} -> {self.out_col}; slots {self.selected})"


# --- Interaction ----------------------------------------------------------------------------------


@register
class Interaction(Stage):
    """The products of one value from each input: numbers, vectors, nominal slots one-hot encoded.

    Index = the first column's slot most significant; value = the product taken from the last
    column to the first (Spark's order, so the floating-point result is the same).
    """

    spark_classes = (_SPARK + "Interaction",)

    def __init__(self, meta: StageMeta) -> None:
        super().__init__(meta)
        self.out_col = self.outputs[0]
        self.cards: list[list[int]] = []
        self.sizes: list[int] = []
        self.kinds: list[str] = []
        self.name = _name(meta)

    def setup(self, schema: Schema) -> None:
        self.cards, self.sizes, self.kinds = [], [], []
        names: list[list[str]] = []
        for col in self.inputs:
            info = schema.get(col)
            attrs = column_attrs(col, info)
            if info is None or attrs is None or any(card is None for _, card in attrs):
                made = "vector" if info is not None and info.kind == "vector" else "number"
                raise ModelLoadError(
                    f"{self.meta.path}: Interaction reads the {made} column '{col}', whose ML attributes (which slots "
                    "are nominal) the runtime does not know at load time; Interaction is supported on pipeline "
                    "inputs, StringIndexer outputs and vectors from VectorAssembler/VectorIndexer/VectorSlicer/"
                    "Interaction"
                )
            cards = [int(c or 0) for _, c in attrs]
            self.cards.append(cards)
            self.sizes.append(sum(c if c > 0 else 1 for c in cards))
            self.kinds.append(info.kind)
            names.append(self._slot_names(col, info, attrs))
        out_names = names[-1]
        for head in reversed(names[:-1]):
            out_names = [f"{h}:{t}" for h in head for t in out_names]
        size = int(np.prod(self.sizes))
        schema[self.out_col] = ColumnInfo("vector", size, attrs=tuple((n, 0) for n in out_names))

    @staticmethod
    def _slot_names(col: str, info: ColumnInfo, attrs: tuple[Attr, ...]) -> list[str]:
        """Spark's attribute names after encoding: ``[group_]name[_value]`` per output slot."""
        out: list[str] = []
        for i, (name, card) in enumerate(attrs):
            if info.kind == "number":
                parts = [col if info.labels is not None else str(i)]
                values = list(info.labels or ())
            else:
                parts = [col, name if name is not None else str(i)]
                values = [str(j) for j in range(card or 0)]
            if card:
                out.extend("_".join([*parts, v]) for v in values)
            else:
                out.append("_".join(parts))
        return out

    def output_spec(self, column: str) -> tuple[str, tuple[int, ...]]:
        return "FP64", (-1, int(np.prod(self.sizes)) if self.sizes else -1)

    def _encode(self, k: int, col: str, value: Any) -> np.ndarray:
        """Column ``k`` as its ``(rows, size_k)`` encoded block (nominal slots one-hot)."""
        cards = self.cards[k]
        if self.kinds[k] == "number":
            x = np.asarray(value, dtype=np.float64).reshape(-1, 1)
        else:
            x = to_dense(value)
            if x.shape[1] != len(cards):
                raise invalid(self.name, col, f"vector of size {x.shape[1]}, expected {len(cards)}")
        if not any(cards):
            return x
        out = np.zeros((x.shape[0], self.sizes[k]), dtype=np.float64)
        cur = 0
        for j, card in enumerate(cards):
            if card > 0:
                v = x[:, j]
                ok = (v >= 0) & (v == np.trunc(v)) & (v < card)
                if not ok.all():
                    raise invalid(self.name, col, f"values must be category indices in [0, {card}), got {v[~ok][0]!r}")
                out[np.arange(len(v)), cur + v.astype(np.int64)] = 1.0
                cur += card
            else:
                out[:, cur] = x[:, j]
                cur += 1
        return out

    def transform(self, frame: Frame) -> None:
        blocks = [self._encode(k, col, frame[col]) for k, col in enumerate(self.inputs)]
        cur = blocks[-1] * 1.0
        for block in reversed(blocks[:-1]):
            cur = (cur[:, None, :] * block[:, :, None]).reshape(cur.shape[0], -1)
        frame[self.out_col] = cur

    def row(self, values: dict[str, Any]) -> bool:
        blocks: list[list[float]] = []
        for k, col in enumerate(self.inputs):
            v = values[col]
            cards = self.cards[k]
            if self.kinds[k] == "number":
                if not isinstance(v, NUMBER_TYPES):
                    return False
                x = [float(v)]
            elif isinstance(v, VECTOR_TYPES) and row_size(v) == len(cards):
                x = row_dense(v)
            else:
                return False
            if not any(cards):
                blocks.append(list(x))
                continue
            block: list[float] = []
            for xv, card in zip(x, cards, strict=True):
                if card > 0:
                    if not (0 <= xv < card and xv == int(xv)):
                        return False
                    one = [0.0] * card
                    one[int(xv)] = 1.0
                    block.extend(one)
                else:
                    block.append(xv)
            blocks.append(block)
        cur = blocks[-1]
        for block in reversed(blocks[:-1]):
            cur = [p * a for a in block for p in cur]
        values[self.out_col] = cur
        return True

    def describe(self) -> str:
        return f"Interaction({', '.join(self.inputs)} -> {self.out_col})"
