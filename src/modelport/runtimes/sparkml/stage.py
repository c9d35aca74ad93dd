"""The frame that flows through a pipeline and the base class of every stage.

A :class:`Frame` is columnar like a Batch, with Spark's column kinds:

- numbers: 1-D ``float64``/``int64``/``bool`` arrays (NaN where Spark has NaN);
- strings: 1-D ``object`` arrays of ``str`` or ``None`` (Spark's null);
- string arrays (tokens): 1-D ``object`` arrays whose items are ``list[str]`` or ``None``;
- vectors: 2-D ``float64`` arrays ``(rows, size)`` when dense, ``scipy.sparse.csr_matrix``
  ``(rows, size)`` where Spark keeps them sparse.

A stage whose ``handleInvalid`` is ``skip`` drops rows with :meth:`Frame.filter`;
``Frame.index`` remembers which request rows are still there.

A stage may also implement :meth:`Stage.row`, the same semantics for ONE row held as plain
Python values in a dict (numbers as ``float``, strings as ``str``/``None``, tokens as
``list[str]``, vectors as ``list[float]`` or :class:`~modelport.runtimes.sparkml.vectors.SparseRow`).
It returns False when the row is not its to answer: a ``skip`` stage drops it, or the
frame path would raise for it (invalid data), or the input is a shape the row code does not
model. The pipeline then answers that request with the frame path, so fills and error
messages come from one place.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp

from modelport.runtimes.sparkml.reader import StageMeta

__all__ = ["REFUSED", "STAGES", "Attr", "Column", "Frame", "RowStep", "Stage", "refuse", "register"]

Column = Any  # np.ndarray | sp.csr_matrix
RowStep = Callable[[dict[str, Any]], bool]


class Frame:
    """Columns of equal length plus the original row positions still present."""

    def __init__(self, columns: dict[str, Column], n: int, index: np.ndarray | None = None) -> None:
        self.columns = columns
        self.n = n
        self.index = np.arange(n) if index is None else index

    def __getitem__(self, name: str) -> Column:
        return self.columns[name]

    def __setitem__(self, name: str, value: Column) -> None:
        self.columns[name] = value

    def __contains__(self, name: str) -> bool:
        return name in self.columns

    def filter(self, keep: np.ndarray) -> None:
        """Drop the rows where ``keep`` is False (Spark's ``handleInvalid = "skip"``)."""
        if keep.all():
            return
        for name, col in self.columns.items():
            self.columns[name] = col[keep] if not sp.issparse(col) else col[np.flatnonzero(keep)]
        self.index = self.index[keep]
        self.n = int(keep.sum())


class Stage:
    """One saved Spark ML stage, loaded once and applied to many frames.

    Subclasses set ``spark_classes`` (fully qualified class names they implement),
    read their params from ``meta`` and their data with ``reader.read_data`` in
    ``__init__``, and implement ``transform``. ``inputs``/``outputs`` name the
    columns they read and write, so the pipeline can work out its signature.
    """

    spark_classes: ClassVar[tuple[str, ...]] = ()

    def __init__(self, meta: StageMeta) -> None:
        self.meta = meta

    @property
    def inputs(self) -> list[str]:
        cols = self.meta.get("inputCols")
        if cols:
            return list(cols)
        col = self.meta.get("inputCol") or self.meta.get("featuresCol")
        return [col] if col else []

    @property
    def outputs(self) -> list[str]:
        cols = self.meta.get("outputCols")
        if cols:
            return list(cols)
        col = self.meta.get("outputCol")
        return [col] if col else []

    def input_datatype(self, column: str) -> str:
        """The V2 datatype a request should send for ``column`` when it is a pipeline source."""
        return "FP64"

    def output_spec(self, column: str) -> tuple[str, tuple[int, ...]]:
        """V2 datatype and shape of an output column (``(-1, size)`` for vectors)."""
        return "FP64", (-1,)

    def transform(self, frame: Frame) -> None:
        raise NotImplementedError

    def row(self, values: dict[str, Any]) -> bool:
        """Apply the stage to one row held in ``values``; False hands the row to the frame path.

        Stages that implement it must give the frame path's numbers (to rounding) and labels exactly.
        """
        raise NotImplementedError

    def row_step(self) -> RowStep | None:
        """The per-row function the pipeline may use, or None (then one-row batches take the frame path).

        Called once the pipeline has run ``setup``; a stage may answer None for configurations its
        ``row`` does not cover.
        """
        return None if type(self).row is Stage.row else self.row

    def describe(self) -> str:
        return f"{self.meta.short_class}({', '.join(self.inputs)} -> {', '.join(self.outputs)})"


STAGES: dict[str, type[Stage]] = {}


def register(cls: type[Stage]) -> type[Stage]:
    """Class decorator: make a stage implementation known under its Spark class names."""
    for name in cls.spark_classes:
        STAGES[name] = cls
    return cls


REFUSED: dict[str, str] = {}
"""Spark classes the runtime knows and turns down at load, with the reason (and what to save instead)."""


def refuse(spark_class: str, reason: str) -> None:
    """Make ``spark_class`` fail at load with ``reason`` instead of the generic "not supported"."""
    REFUSED[spark_class] = reason


def param_or(meta: StageMeta, name: str, default: Any) -> Any:
    value = meta.get(name)
    return default if value is None else value


class ColumnInfo:
    """What the pipeline knows about a column at load time: its kind, vector size and labels.

    ``kind`` is ``number``, ``string``, ``tokens`` or ``vector``. ``labels`` carries a
    StringIndexer's labels forward, as Spark's ML attribute metadata does, so that
    IndexToString works without its own ``labels`` param.

    ``attrs`` is a vector's per-slot ML attributes where a stage knows them (VectorSlicer selects
    by these names, Interaction one-hot encodes nominal slots): one :data:`Attr` per slot, None
    when unknown.
    """

    __slots__ = ("attrs", "kind", "labels", "size")

    def __init__(
        self,
        kind: str,
        size: int | None = None,
        labels: tuple[str, ...] | None = None,
        attrs: tuple[Attr, ...] | None = None,
    ) -> None:
        self.kind = kind
        self.size = size
        self.labels = labels
        self.attrs = attrs

    def __repr__(self) -> str:
        return f"ColumnInfo({self.kind!r}, size={self.size}, labels={self.labels}, attrs={self.attrs})"


Attr = tuple[str | None, int | None]
"""One slot's ML attribute: ``(name, cardinality)``; cardinality 0 is numeric, n > 0 a nominal
feature with n values; None where the runtime does not know (then stages that need it refuse)."""


Schema = dict[str, ColumnInfo]


def info_from_spec(datatype: str, shape: tuple[int, ...]) -> ColumnInfo:
    """A ColumnInfo for an output described by ``Stage.output_spec``."""
    if len(shape) == 2:
        return ColumnInfo("vector", shape[1] if shape[1] > 0 else None)
    return ColumnInfo("string" if datatype == "BYTES" else "number")


def setup_stage(stage: Stage, schema: Schema) -> None:
    """Let ``stage`` see the columns before it (``stage.setup`` when it has one) and record its outputs."""
    setup = getattr(stage, "setup", None)
    if setup is not None:
        setup(schema)
        return
    for col in stage.outputs:
        schema[col] = info_from_spec(*stage.output_spec(col))
