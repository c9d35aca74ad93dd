"""A saved PipelineModel (or a single saved stage) as a predictor: stages in order over one Frame.

The signature is worked out at load time from the columns the stages read and write:
inputs are the columns some stage reads but none produces (typed by the first stage that
reads them), outputs are the leaf columns (produced, never read later) unless the config
names others. ``predict`` returns one row per request row, filling rows that a
``handleInvalid = "skip"`` stage dropped with NaN / None; ``transform`` returns only the
kept rows and their positions, as Spark's own ``transform`` would.

One-row batches (the serving case) take the row path when every stage has a ``row`` method:
plain Python values in a dict, no numpy per stage. A row a stage declines (dropped by a
``skip`` stage, invalid, or an input shape the row code does not model) is answered by the
frame path, so fills and error messages are the frame path's own.
"""

from __future__ import annotations

import gc
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from modelport.core import fastpaths
from modelport.core.errors import ModelLoadError
from modelport.core.signature import NULL, Batch, Signature, TensorSpec
from modelport.runtimes.sparkml.reader import StageMeta, read_metadata, stage_dirs
from modelport.runtimes.sparkml.registry import supported_classes
from modelport.runtimes.sparkml.stage import (
    REFUSED,
    STAGES,
    Attr,
    ColumnInfo,
    Frame,
    RowStep,
    Schema,
    Stage,
    setup_stage,
)
from modelport.runtimes.sparkml.tuning import TUNING_CLASSES, best_model, tuning_info
from modelport.runtimes.sparkml.vectors import VECTOR_TYPES, row_array

__all__ = ["SparkPipeline", "load_pipeline", "load_stages"]

_PIPELINE_MODELS = {"org.apache.spark.ml.PipelineModel", "pyspark.ml.pipeline.PipelineModel"}
_GC_PAUSE_ROWS = 10_000
_UNFITTED = {"org.apache.spark.ml.Pipeline"}


def load_stages(path: Path) -> tuple[StageMeta, list[Stage]]:
    """The root metadata and the stage objects, nested PipelineModels flattened."""
    root = read_metadata(path)
    return root, _stages(path, root)


def _stages(path: Path, meta: StageMeta) -> list[Stage]:
    if meta.cls in TUNING_CLASSES:
        best, best_meta = best_model(path, meta)
        return _stages(best, best_meta)
    if meta.cls in _PIPELINE_MODELS:
        out: list[Stage] = []
        for d in stage_dirs(path, meta):
            out.extend(_stages(d, read_metadata(d)))
        return out
    if meta.cls in _UNFITTED:
        raise ModelLoadError(
            f"{path}: is an unfitted {meta.short_class}; save the PipelineModel that fit() returns instead"
        )
    impl = STAGES.get(meta.cls)
    if impl is None and meta.cls in REFUSED:
        raise ModelLoadError(
            f"{path}: Spark ML stage {meta.cls} (uid {meta.uid}) is not supported: {REFUSED[meta.cls]}"
        )
    if impl is None:
        supported = ", ".join(sorted({c.rsplit(".", 1)[-1] for c in supported_classes()}))
        raise ModelLoadError(
            f"{path}: Spark ML stage {meta.cls} (uid {meta.uid}) is not supported by the JVM-free runtime; "
            f"supported stages: PipelineModel, {supported}"
        )
    return [impl(meta)]


def _source_spec(stage: Stage, column: str) -> tuple[str, tuple[int, ...]]:
    spec = getattr(stage, "input_spec", None)
    if spec is not None:
        result: tuple[str, tuple[int, ...]] = spec(column)
        return result
    if column == stage.meta.get("featuresCol"):
        return "FP64", (-1, -1)
    return stage.input_datatype(column), (-1,)


def _vector_sources(stages: list[Stage]) -> dict[str, tuple[int, ...]]:
    """Source columns that some stage reads as a vector, with that stage's shape for them."""
    produced: set[str] = set()
    found: dict[str, tuple[int, ...]] = {}
    for stage in stages:
        for col in stage.inputs:
            if col not in produced and col not in found:
                dt, shape = _source_spec(stage, col)
                if len(shape) == 2 and dt != "BYTES":
                    found[col] = shape
        produced.update(stage.outputs)
    return found


def _source_attrs(kind: str, col: str, size: int | None) -> tuple[Attr, ...] | None:
    """A request column carries no ML attributes: numbers are numeric, vector slots numeric and unnamed."""
    if kind == "number":
        return ((col, 0),)
    if kind == "vector" and size is not None:
        return ((None, 0),) * size
    return None


class SparkPipeline:
    """Stages over a Frame, with the signature and alignment rules in the module docstring."""

    def __init__(
        self, path: Path, root: StageMeta, stages: list[Stage], outputs: tuple[str, ...] | None = None
    ) -> None:
        self.path = path
        self.stages = stages
        schema: Schema = {}
        produced: dict[str, Stage] = {}
        sources: dict[str, tuple[str, tuple[int, ...]]] = {}
        consumed_after: dict[str, bool] = {}
        vector_sources = _vector_sources(stages)
        for stage in stages:
            for col in stage.inputs:
                if col in produced:
                    consumed_after[col] = True
                elif col not in sources:
                    dt, shape = _source_spec(stage, col)
                    if len(shape) == 1 and col in vector_sources:
                        dt, shape = "FP64", vector_sources[col]
                    sources[col] = (dt, shape)
                    kind = _source_kind(dt, shape)
                    size = shape[1] if kind == "vector" and shape[1] > 0 else None
                    held = "string" if kind == "text" else kind
                    schema[col] = ColumnInfo(held, size, attrs=_source_attrs(held, col, size))
            setup_stage(stage, schema)
            for col in stage.outputs:
                produced[col] = stage
                consumed_after[col] = False
        if not stages:
            raise ModelLoadError(f"{path}: the PipelineModel has no stages")
        if outputs:
            unknown = [o for o in outputs if o not in produced]
            if unknown:
                raise ModelLoadError(
                    f"{path}: outputs {unknown} are not produced by any stage; produced columns: {', '.join(produced)}"
                )
            names = list(outputs)
        else:
            names = [c for c in produced if not consumed_after[c]]
        self.sources = tuple(sources)
        self._token_sources = [n for n, (dt, shape) in sources.items() if _source_kind(dt, shape) == "tokens"]
        out_specs = []
        self._outputs: list[tuple[str, str]] = []
        for name in names:
            dt, shape = produced[name].output_spec(name)
            out_specs.append(TensorSpec(name, dt, shape))
            kind = "vector" if len(shape) == 2 and dt != "BYTES" else "text" if dt == "BYTES" else "number"
            self._outputs.append((name, kind))
        self.signature = Signature(
            tuple(TensorSpec(n, dt, shape) for n, (dt, shape) in sources.items()), tuple(out_specs)
        )
        self._transforms = [s.transform for s in stages]
        self._row_steps: list[RowStep] | None = None
        self._row_sources: list[tuple[str, str]] = []
        steps = [s.row_step() for s in stages]
        #: stages without a row method; any of them sends one-row batches down the frame path
        self.row_blockers = [s.describe() for s, step in zip(stages, steps, strict=True) if step is None]
        if not self.row_blockers and sources and fastpaths.enabled("sparkml-row"):
            self._row_steps = [step for step in steps if step is not None]
            self._row_sources = [(n, _source_kind(dt, shape)) for n, (dt, shape) in sources.items()]
        #: how a one-row batch is computed: "row" (per-row Python) or "frame" (the columnar path)
        self.one_row_path = "row" if self._row_steps is not None else "frame"
        runtime = dict.fromkeys(names, "modelport.sparkml")
        self.info: dict[str, Any] = {
            "spark_version": root.raw.get("sparkVersion"),
            "spark_class": root.cls,
            "stages": [s.describe() for s in stages],
            "runtime": runtime,
        }
        if root.cls in TUNING_CLASSES:
            self.info.update(tuning_info(root, best_model(path, root)[1]))

    def _run(self, batch: Batch) -> Frame:
        n = 0
        columns: dict[str, Any] = {}
        for name in self.sources:
            arr = batch[name]
            columns[name] = arr
            n = arr.shape[0]
        for name in self._token_sources:
            columns[name] = _token_rows(columns[name])
        frame = Frame(columns, n)
        # A big batch builds millions of small containers (token lists) that live until the run ends;
        # the cyclic GC would scan them again and again (~40% of a text pipeline's time), so it pauses.
        pause = n >= _GC_PAUSE_ROWS and gc.isenabled()
        if pause:
            gc.disable()
        try:
            for transform in self._transforms:
                transform(frame)
        finally:
            if pause:
                gc.enable()
        return frame

    def _row_values(self, batch: Batch) -> dict[str, Any] | None:
        """The sources of a one-row batch as plain values, or None when the batch is not one such row."""
        values: dict[str, Any] = {}
        for name, kind in self._row_sources:
            arr = batch[name]
            if not isinstance(arr, np.ndarray):
                return None
            shape = arr.shape
            if kind == "vector":
                if len(shape) != 2 or shape[0] != 1 or arr.dtype.kind not in "fiub":
                    return None
                values[name] = (arr[0] if arr.dtype == np.float64 else arr[0].astype(np.float64)).tolist()
            elif kind == "tokens":
                if len(shape) != 2 or shape[0] != 1:
                    return None
                values[name] = _token_rows(arr)[0]
            elif shape != (1,) or (kind == "number" and arr.dtype.kind not in "fiub"):
                return None
            elif arr.dtype.kind == "f" and arr.dtype.itemsize < 8:
                return None  # a float32 column: stages that cast back to the input type need the frame path
            else:
                values[name] = arr.item()  # a Python scalar (or the object itself)
        return values

    def predict_row(self, batch: Batch) -> Batch | None:
        """The row path for a one-row batch; None when the batch or the row needs the frame path."""
        if self._row_steps is None:
            return None
        values = self._row_values(batch)
        if values is None:
            return None
        for step in self._row_steps:
            if not step(values):
                return None
        out: Batch = {}
        for name, kind in self._outputs:
            v = values[name]
            if kind == "text":
                arr = np.empty(1, dtype=object)
                arr[0] = v
                out[name] = arr
            elif isinstance(v, VECTOR_TYPES):
                out[name] = row_array(v)
            else:
                out[name] = np.array([v], dtype=np.float64)
        return out

    def predict(self, batch: Batch) -> Batch:
        """One output row per input row; rows a skip stage dropped come back as null (NULL numbers, None text)."""
        if self._row_steps is not None:
            result = self.predict_row(batch)
            if result is not None:
                return result
        frame = self._run(batch)
        n_in = _rows(batch)
        out: Batch = {}
        full = frame.n == n_in
        for name, kind in self._outputs:
            value = _encode(frame[name], kind)
            if not full:
                value = _fill(value, frame.index, n_in, kind)
            out[name] = value
        return out

    def transform(self, batch: Batch) -> tuple[Batch, np.ndarray]:
        """The kept rows only (as Spark returns them) and their positions in ``batch``."""
        if self._row_steps is not None:
            result = self.predict_row(batch)
            if result is not None:
                return result, np.arange(1)
        frame = self._run(batch)
        return {name: _encode(frame[name], kind) for name, kind in self._outputs}, frame.index


def _source_kind(datatype: str, shape: tuple[int, ...]) -> str:
    """How a pipeline source is held: ``vector``, ``tokens`` (BYTES rows of strings), ``text`` or ``number``."""
    if len(shape) == 2:
        return "tokens" if datatype == "BYTES" else "vector"
    return "text" if datatype == "BYTES" else "number"


def _token_rows(arr: np.ndarray) -> np.ndarray:
    """A ``(rows, k)`` BYTES input as one token list per row; trailing nulls pad shorter rows and are dropped."""
    out = np.empty(arr.shape[0], dtype=object)
    if arr.ndim != 2:
        return arr  # already one list per row (the in-process API)
    for i, row in enumerate(arr.tolist()):
        while row and row[-1] is None:
            row.pop()
        out[i] = row
    return out


def _rows(batch: Batch) -> int:
    for arr in batch.values():
        return int(arr.shape[0])
    return 0


def _encode(value: Any, kind: str) -> np.ndarray:
    if kind == "vector":
        if sp.issparse(value):
            return np.asarray(value.toarray(), dtype=np.float64)
        return value if isinstance(value, np.ndarray) and value.dtype == np.float64 else np.asarray(value, np.float64)
    if kind == "text":
        return value if value.dtype == object else value.astype(object)
    return value if value.dtype == np.float64 else value.astype(np.float64)


def _fill(value: np.ndarray, index: np.ndarray, n: int, kind: str) -> np.ndarray:
    if kind == "text":
        full = np.full((n, *value.shape[1:]), None, dtype=object)
    else:  # a dropped row answers null (a null vector for vector outputs): Spark has no value for it
        full = np.full((n, *value.shape[1:]), NULL, dtype=np.float64)
    full[index] = value
    return full


def load_pipeline(path: Path, outputs: tuple[str, ...] | None = None) -> SparkPipeline:
    """Load a saved PipelineModel directory or a single saved stage directory."""
    root, stages = load_stages(path)
    return SparkPipeline(path, root, stages, outputs)
