"""The scoring loop: record batches in, the same rows plus the model's outputs out.

:class:`Scorer` turns one Arrow record batch into one Arrow record batch; it is what
``modelport score`` runs in each worker process and what ``modelport.spark`` runs in
each Python worker. Columns are matched to model inputs by name or by ``--map``,
checked against the schema before any row is scored, and coerced by the model's
:class:`~modelport.core.signature.InputPlan`. Validation runs vectorised; only a batch that
fails it is taken row by row, to apply the ``--on-error`` policy.
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pyarrow as pa

from modelport.core.errors import ConfigError, InvalidInput, ModelFailed, ModelportError
from modelport.core.signature import Batch, TensorSpec

if TYPE_CHECKING:
    from modelport.core.model import Model

__all__ = [
    "ON_ERROR",
    "Interrupted",
    "ScoreOptions",
    "ScoreReport",
    "Scorer",
    "parse_map",
    "score_files",
    "stop_on_signals",
]

OnError = Literal["fail", "skip", "null"]
ON_ERROR: tuple[OnError, ...] = ("fail", "skip", "null")
ERROR_COLUMN = "error"
DEFAULT_BATCH_SIZE = 10_000


@dataclass(frozen=True)
class ScoreOptions:
    """Everything a worker needs to build its :class:`Scorer` (picklable)."""

    model_uri: str
    outputs: tuple[str, ...] | None = None
    mapping: tuple[tuple[str, tuple[str, ...]], ...] = ()
    keep: tuple[str, ...] | None = None
    on_error: OnError = "fail"
    wide: bool = False

    def __post_init__(self) -> None:
        if self.on_error not in ON_ERROR:
            raise ConfigError(f"on_error '{self.on_error}' is not one of: {', '.join(ON_ERROR)}")


def parse_map(items: Iterable[str]) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """``["a=x", "c1,c2,c3=input", "*=input"]`` -> ``(("x", ("a",)), ("input", ("c1", "c2", "c3")), ...)``."""
    out: dict[str, tuple[str, ...]] = {}
    for item in items:
        cols, sep, name = item.rpartition("=")
        if not sep or not cols.strip() or not name.strip():
            raise ConfigError(f"--map '{item}' must look like COLUMN=INPUT (or COL1,COL2,...=INPUT, or *=INPUT)")
        name = name.strip()
        if name in out:
            raise ConfigError(f"--map names input '{name}' twice")
        out[name] = tuple(c.strip() for c in cols.split(",") if c.strip())
    return tuple(out.items())


# -- schema checks -----------------------------------------------------------------------------------------------


def _is_vector_struct(t: pa.DataType) -> bool:
    """Spark ML's VectorUDT as Arrow: struct<type: int8, size: int32, indices: list, values: list>."""
    return pa.types.is_struct(t) and {t.field(i).name for i in range(t.num_fields)} >= {"type", "values"}


def _numeric(t: pa.DataType) -> bool:
    return (
        pa.types.is_integer(t)
        or pa.types.is_floating(t)
        or pa.types.is_boolean(t)
        or pa.types.is_decimal(t)
        or pa.types.is_null(t)
    )


def _text(t: pa.DataType) -> bool:
    if pa.types.is_dictionary(t):
        t = t.value_type
    return (
        pa.types.is_string(t)
        or pa.types.is_large_string(t)
        or pa.types.is_binary(t)
        or pa.types.is_large_binary(t)
        or pa.types.is_null(t)
        or getattr(pa.types, "is_string_view", lambda _: False)(t)
    )


def _is_list(t: pa.DataType) -> bool:
    return pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t)


def _type_problem(spec: TensorSpec, column: str, t: pa.DataType, many: bool) -> str | None:
    wants = "text" if spec.datatype == "BYTES" else f"{spec.datatype} numbers"
    if spec.datatype == "BYTES":
        if _text(t) or (_is_list(t) and len(spec.shape) > 1 and _text(t.value_type)):
            return None
    else:
        if _numeric(t):
            return None
        if not many and len(spec.shape) > 1 and (_is_vector_struct(t) or (_is_list(t) and _numeric(t.value_type))):
            return None
    return f"column '{column}' has type {t}, but input '{spec.name}' takes {wants}"


def resolve_columns(
    model: Model,
    schema: pa.Schema,
    mapping: Sequence[tuple[str, tuple[str, ...]]] = (),
    exclude: Sequence[str] = (),
) -> dict[str, list[str]]:
    """Which columns feed each model input; fails before scoring, naming the column, on a gap or a wrong type."""
    specs = {s.name: s for s in model.signature.inputs}
    explicit = dict(mapping)
    unknown = [n for n in explicit if n not in specs]
    if unknown:
        raise ConfigError(
            f"--map names input{'s' if len(unknown) > 1 else ''} {', '.join(repr(u) for u in unknown)}, "
            f"which model '{model.name}' does not have; its inputs are: {', '.join(specs)}"
        )
    used = {c for cols in explicit.values() for c in cols if c != "*"}
    out: dict[str, list[str]] = {}
    for name, spec in specs.items():
        cols = list(explicit.get(name, ()))
        if cols == ["*"]:
            # Every column no other input claims, less the ones named in --keep (ids, timestamps).
            others = {c for n, cs in explicit.items() if n != name for c in cs}
            cols = [c for c in schema.names if c not in others and c not in exclude and (c not in specs or c == name)]
        elif not cols:
            if name not in schema.names:
                hint = ""
                if len(spec.shape) == 2:
                    width = spec.shape[1]
                    hint = (
                        f"; to build it from {'several' if width < 0 else width} columns use "
                        f"--map 'COL1,COL2,...={name}' or --map '*={name}'"
                    )
                raise InvalidInput(
                    f"model '{model.name}': input '{name}' has no column; the input has columns: "
                    f"{', '.join(schema.names)}; map one with --map COLUMN={name}{hint}"
                )
            cols = [name]
        missing = [c for c in cols if c not in schema.names]
        if missing:
            raise InvalidInput(
                f"model '{model.name}': no column {', '.join(repr(m) for m in missing)} for input '{name}'; "
                f"the input has columns: {', '.join(schema.names)}"
            )
        if len(cols) > 1:
            if len(spec.shape) != 2:
                raise InvalidInput(
                    f"model '{model.name}': input '{name}' has shape {list(spec.shape)}, "
                    f"so it takes one column, not {len(cols)} ({', '.join(cols)})"
                )
            if spec.shape[1] not in (-1, len(cols)):
                raise InvalidInput(
                    f"model '{model.name}': input '{name}' takes {spec.shape[1]} columns, "
                    f"{len(cols)} were mapped to it ({', '.join(cols)})"
                )
        for c in cols:
            problem = _type_problem(spec, c, schema.field(c).type, len(cols) > 1)
            if problem:
                raise InvalidInput(f"model '{model.name}': {problem}")
        out[name] = cols
        used.update(cols)
    return out


# -- Arrow <-> numpy --------------------------------------------------------------------------------------------


def _column_to_numpy(col: pa.Array, spec: TensorSpec) -> np.ndarray:
    t = col.type
    if pa.types.is_dictionary(t):
        col = col.cast(t.value_type)
        t = col.type
    if _is_vector_struct(t):
        return _vectors_to_numpy(col)
    if _is_list(t):
        if col.null_count:
            return np.array(col.to_pylist(), dtype=object)
        lengths = np.asarray(col.value_lengths()) if not pa.types.is_fixed_size_list(t) else None
        flat = col.flatten().to_numpy(zero_copy_only=False)
        n = len(col)
        if lengths is None:
            return flat.reshape(n, t.list_size)
        if n and (lengths == lengths[0]).all():
            return flat.reshape(n, int(lengths[0]))
        return np.array(col.to_pylist(), dtype=object)
    if spec.datatype == "BYTES":
        return np.asarray(col.to_numpy(zero_copy_only=False), dtype=object)
    if pa.types.is_decimal(t):
        col = col.cast(pa.float64())
    return col.to_numpy(zero_copy_only=False)


def _vectors_to_numpy(col: pa.Array) -> np.ndarray:
    """Spark ML vectors (dense or sparse) as a dense 2-D float array."""
    rows = col.to_pylist()
    sizes = {int(r["size"]) if r.get("size") is not None else len(r["values"]) for r in rows if r is not None}
    if len(sizes) > 1 or any(r is None for r in rows):
        return np.array([None if r is None else _dense(r) for r in rows], dtype=object)
    width = sizes.pop() if sizes else 0
    out = np.zeros((len(rows), width), dtype=np.float64)
    for i, r in enumerate(rows):
        if int(r["type"]) == 1:
            out[i] = r["values"]
        else:
            out[i, r["indices"]] = r["values"]
    return out


def _dense(r: Mapping[str, Any]) -> list[float]:
    if int(r["type"]) == 1:
        return list(r["values"])
    out = [0.0] * int(r["size"])
    for i, v in zip(r["indices"], r["values"], strict=True):
        out[i] = v
    return out


def output_arrow_type(spec: TensorSpec) -> pa.DataType:
    """The Arrow type of an output column (2-D outputs become lists)."""
    if spec.datatype == "BYTES":
        base: pa.DataType = pa.string()
    else:
        base = pa.from_numpy_dtype(spec.dtype)
    return pa.list_(base) if len(spec.shape) > 1 else base


def _to_arrow(value: np.ndarray, spec: TensorSpec, mask: np.ndarray | None) -> pa.Array:
    """An output array as an Arrow column; ``mask`` marks rows that get null."""
    typ = output_arrow_type(spec)
    base = typ.value_type if pa.types.is_list(typ) else typ
    if value.ndim > 1:
        n = value.shape[0]
        width = int(np.prod(value.shape[1:]))
        values = _plain(value.reshape(-1), base)
        offsets = pa.array(np.arange(0, (n + 1) * width, width, dtype=np.int32) if n else np.zeros(1, np.int32))
        arr = pa.ListArray.from_arrays(offsets, values, type=typ, mask=_mask(mask))
        return arr
    return _plain(value, base, mask)


def _mask(mask: np.ndarray | None) -> pa.Array | None:
    return pa.array(mask) if mask is not None and mask.any() else None


def _plain(value: np.ndarray, typ: pa.DataType, mask: np.ndarray | None = None) -> pa.Array:
    m = mask if mask is not None and mask.any() else None
    if pa.types.is_string(typ):
        items = [None if v is None else (v.decode() if isinstance(v, bytes) else str(v)) for v in value.tolist()]
        if m is not None:
            items = [None if bad else v for v, bad in zip(items, m.tolist(), strict=True)]
        return pa.array(items, type=typ)
    if value.dtype.kind == "O":
        value = value.astype(typ.to_pandas_dtype())
    return pa.array(value, type=typ, mask=m)


def _wide(name: str, arr: pa.Array, spec: TensorSpec) -> list[tuple[str, pa.Array]]:
    """A list column as one column per entry, for formats without lists (CSV)."""
    width = spec.shape[1] if len(spec.shape) > 1 and spec.shape[1] > 0 else None
    if width is None:
        lengths = arr.value_lengths().drop_null()
        width = int(lengths[0].as_py()) if len(lengths) else 0
    labels = list(spec.labels) if spec.labels is not None and len(spec.labels) == width else list(range(width))
    flat = arr.flatten()
    valid = arr.is_valid()
    cols = []
    # Nulls (on_error=null) have no values in the flattened child; take per position.
    positions = np.cumsum(np.concatenate([[0], np.asarray(valid.fill_null(False)).astype(np.int64)]))[:-1]
    for j, label in enumerate(labels):
        idx = pa.array(positions * width + j)
        col = flat.take(idx) if len(flat) else pa.nulls(len(arr), flat.type)
        col = pa.compute.if_else(valid, col, pa.scalar(None, col.type)) if arr.null_count else col
        cols.append((f"{name}_{label}", col))
    return cols


# -- the scorer -------------------------------------------------------------------------------------------------


@dataclass
class _Checked:
    batch: Batch | None  # the coerced rows that passed
    good: np.ndarray  # their positions in the input batch
    errors: dict[int, str] = field(default_factory=dict)  # position -> message for the rest


class Scorer:
    """Scores Arrow record batches with one loaded model; one per worker process."""

    def __init__(self, model: Model, options: ScoreOptions, schema: pa.Schema) -> None:
        self.model = model
        self.options = options
        self.columns = resolve_columns(model, schema, options.mapping, options.keep or ())
        self.specs = {s.name: s for s in model.signature.inputs}
        self.outputs = tuple(options.outputs) if options.outputs else tuple(model.signature.output_names)
        bad = [o for o in self.outputs if o not in model.signature.output_names]
        if bad:
            raise ConfigError(
                f"model '{model.name}': no output {', '.join(repr(b) for b in bad)}; "
                f"its outputs are: {', '.join(model.signature.output_names)}"
            )
        self.out_specs = {s.name: s for s in model.signature.outputs if s.name in self.outputs}
        keep = list(schema.names) if options.keep is None else list(options.keep)
        missing = [k for k in keep if k not in schema.names]
        if missing:
            raise ConfigError(
                f"--keep names column{'s' if len(missing) > 1 else ''} {', '.join(repr(m) for m in missing)}, "
                f"which the input does not have; it has: {', '.join(schema.names)}"
            )
        self.keep = keep
        new = list(self.outputs) + ([ERROR_COLUMN] if options.on_error == "null" else [])
        clash = [c for c in new if c in keep]
        if clash:
            raise ConfigError(
                f"column{'s' if len(clash) > 1 else ''} {', '.join(repr(c) for c in clash)} of the input would be "
                f"overwritten by model '{model.name}'s output; leave {'them' if len(clash) > 1 else 'it'} out "
                "with --keep or choose outputs with --outputs"
            )
        transform = getattr(model.predictor, "transform", None)
        self._transform: Callable[[Batch], tuple[Batch, Any]] | None = transform if callable(transform) else None
        self.schema = self._output_schema(schema)

    @classmethod
    def load(cls, options: ScoreOptions, schema: pa.Schema) -> Scorer:
        from modelport.runtimes.loading import load_model

        return cls(load_model(options.model_uri), options, schema)

    def _output_schema(self, schema: pa.Schema) -> pa.Schema:
        fields = [schema.field(k) for k in self.keep]
        for name in self.outputs:
            spec = self.out_specs[name]
            typ = output_arrow_type(spec)
            if self.options.wide and pa.types.is_list(typ):
                n = spec.shape[1] if spec.shape[1] > 0 else 0
                labels = list(spec.labels) if spec.labels is not None and len(spec.labels) == n else range(n)
                fields.extend(pa.field(f"{name}_{lab}", typ.value_type) for lab in labels)
            else:
                fields.append(pa.field(name, typ))
        if self.options.on_error == "null":
            fields.append(pa.field(ERROR_COLUMN, pa.string()))
        return pa.schema(fields)

    # The input Batch for rows of an Arrow batch (no validation yet).
    def _raw(self, batch: pa.RecordBatch) -> dict[str, np.ndarray]:
        raw: dict[str, np.ndarray] = {}
        for name, cols in self.columns.items():
            spec = self.specs[name]
            arrays = [_column_to_numpy(batch.column(batch.schema.get_field_index(c)), spec) for c in cols]
            if len(arrays) == 1:
                raw[name] = arrays[0]
            else:
                raw[name] = np.column_stack([a.astype(np.float64) if a.dtype.kind != "O" else a for a in arrays])
        return raw

    def _coerce(self, raw: Mapping[str, np.ndarray]) -> Batch:
        plan = self.model.plan
        return plan.check({n: plan.coerce(n, v) for n, v in raw.items()})

    def _check(self, raw: dict[str, np.ndarray], n: int) -> _Checked:
        try:
            return _Checked(self._coerce(raw), np.arange(n))
        except InvalidInput:
            if self.options.on_error == "fail" and n == 1:
                raise
        # Row by row, only for a batch that failed as a whole.
        errors: dict[int, str] = {}
        for i in range(n):
            try:
                self._coerce({k: v[i : i + 1] for k, v in raw.items()})
            except InvalidInput as exc:
                errors[i] = exc.message
                if self.options.on_error == "fail":
                    raise InvalidInput(f"row {i}: {exc.message}") from None
        good = np.array([i for i in range(n) if i not in errors], dtype=np.int64)
        coerced = self._coerce({k: v[good] for k, v in raw.items()}) if len(good) else None
        return _Checked(coerced, good, errors)

    def _predict(self, batch: Batch) -> tuple[Batch, np.ndarray | None]:
        if self._transform is not None:
            try:
                out, kept = self._transform(batch)
            except ModelportError:
                raise
            except Exception as exc:
                raise ModelFailed(f"model '{self.model.name}' failed: {type(exc).__name__}: {exc}") from exc
            return {n: np.asarray(out[n]) for n in self.outputs}, np.asarray(kept, dtype=np.int64)
        return self.model.run(batch, self.outputs), None

    def _predict_rows(self, checked: _Checked) -> tuple[Batch, np.ndarray]:
        """Predict the checked rows; with skip/null, a batch the model rejects is retried row by row."""
        assert checked.batch is not None
        try:
            out, kept = self._predict(checked.batch)
            return out, checked.good if kept is None else checked.good[kept]
        except ModelFailed:
            if self.options.on_error == "fail":
                raise
        parts: list[Batch] = []
        rows: list[int] = []
        for j, pos in enumerate(checked.good.tolist()):
            one = {k: v[j : j + 1] for k, v in checked.batch.items()}
            try:
                out, kept = self._predict(one)
            except ModelFailed as exc:
                checked.errors[pos] = exc.message
                continue
            if kept is None or len(kept):
                parts.append(out)
                rows.append(pos)
        if not parts:
            return {n: np.empty((0,)) for n in self.outputs}, np.empty(0, dtype=np.int64)
        return {n: np.concatenate([p[n] for p in parts]) for n in self.outputs}, np.array(rows, dtype=np.int64)

    def score(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        """The kept columns of ``batch`` plus the model's outputs, under ``on_error``."""
        n = batch.num_rows
        if n == 0:
            return pa.RecordBatch.from_pylist([], self.schema)
        checked = self._check(self._raw(batch), n)
        if checked.batch is not None:
            out, rows = self._predict_rows(checked)
        else:
            out, rows = {}, np.empty(0, dtype=np.int64)
        null_policy = self.options.on_error == "null"
        if null_policy and checked.errors:
            bad = np.array(sorted(checked.errors), dtype=np.int64)
            order = np.concatenate([rows, bad])
            final = np.sort(order)
            pos_in = np.searchsorted(final, rows)
            mask = np.ones(len(final), dtype=bool)
            mask[pos_in] = False
            columns = {}
            for name in self.outputs:
                spec = self.out_specs[name]
                value = out.get(name)
                columns[name] = _scatter(value, pos_in, len(final), spec)
            errors = [checked.errors.get(int(i)) for i in final]
        else:
            final, mask, columns = rows, None, out
            errors = [None] * len(final) if null_policy else []
        take = pa.array(final, type=pa.int64())
        arrays: list[pa.Array] = []
        kept = batch.select(self.keep) if self.keep else None
        if kept is not None:
            kept = kept.take(take) if len(final) != n or not np.array_equal(final, np.arange(n)) else kept
            arrays.extend(kept.columns)
        for name in self.outputs:
            spec = self.out_specs[name]
            arr = _to_arrow(np.asarray(columns[name]), spec, mask)
            if self.options.wide and pa.types.is_list(arr.type):
                arrays.extend(a for _, a in _wide(name, arr, spec))
            else:
                arrays.append(arr)
        if null_policy:
            arrays.append(pa.array(errors, type=pa.string()))
        return pa.RecordBatch.from_arrays(arrays, schema=self.schema)


def _scatter(value: np.ndarray | None, positions: np.ndarray, n: int, spec: TensorSpec) -> np.ndarray:
    """Place scored rows at ``positions`` of an ``n``-row array; the rest is filler that the mask nulls."""
    if value is None or len(value) == 0:
        width = spec.shape[1:] if len(spec.shape) > 1 else ()
        width = tuple(max(w, 0) for w in width)
        dtype = object if spec.datatype == "BYTES" else spec.dtype
        return np.zeros((n, *width), dtype=dtype)
    value = np.asarray(value)
    out = np.zeros((n, *value.shape[1:]), dtype=value.dtype)
    out[positions] = value
    return out


# -- the file loop ----------------------------------------------------------------------------------------------


class Interrupted(BaseException):
    """SIGTERM or SIGINT arrived while scoring.

    Raised in the main thread by :func:`stop_on_signals`, it unwinds the scoring loop like
    any error, so the output writer deletes its partial file. A BaseException, like
    KeyboardInterrupt, so that no ``except Exception`` on the way swallows it.
    """

    def __init__(self, signum: int) -> None:
        self.signum = signum
        self.name = signal.Signals(signum).name
        super().__init__(f"interrupted by {self.name}")


@contextlib.contextmanager
def stop_on_signals(signums: Sequence[int] = (signal.SIGTERM, signal.SIGINT)) -> Iterator[None]:
    """Turn the first of ``signums`` into :class:`Interrupted`; later ones are ignored while cleaning up.

    Without this SIGTERM ends the process at once and leaves the ``.partial`` output behind.
    A no-op outside the main thread (only it may set signal handlers).
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    fired: list[int] = []

    def handler(signum: int, frame: Any) -> None:
        if fired:
            return
        fired.append(signum)
        raise Interrupted(signum)

    previous = {s: signal.signal(s, handler) for s in signums}
    try:
        yield
    finally:
        for s, old in previous.items():
            signal.signal(s, old)


@dataclass
class ScoreReport:
    """What a run did: rows read and written, and how long it took."""

    rows_in: int = 0
    rows_out: int = 0
    seconds: float = 0.0
    output: str = ""
    workers: int = 1
    startup: float = 0.0  # starting worker processes, included in ``seconds``

    @property
    def rows_per_second(self) -> float:
        """Scoring throughput: rows over the time after the workers were up."""
        busy = self.seconds - self.startup
        return self.rows_in / busy if busy > 0 else 0.0


class Progress:
    """A one-line progress display (rows, rows/s, ETA) on a terminal; silent otherwise."""

    def __init__(self, total: int | None, enabled: bool | None, stream: Any = None) -> None:
        self.stream = stream or sys.stderr
        self.enabled = self.stream.isatty() if enabled is None else enabled
        self.total = total
        self.rows = 0
        self.start = time.perf_counter()
        self._last = 0.0

    def update(self, rows: int) -> None:
        self.rows += rows
        now = time.perf_counter()
        if self.enabled and now - self._last >= 0.2:
            self._last = now
            self._draw(now)

    def _draw(self, now: float, end: str = "") -> None:
        elapsed = max(now - self.start, 1e-9)
        rate = self.rows / elapsed
        text = f"\r{self.rows:,} rows"
        if self.total:
            pct = 100.0 * self.rows / self.total
            text = f"\r{self.rows:,}/{self.total:,} rows ({pct:.0f}%)"
        text += f"  {rate:,.0f} rows/s"
        if self.total and rate > 0 and self.rows < self.total:
            left = int((self.total - self.rows) / rate)
            text += f"  ETA {left // 3600}:{left // 60 % 60:02d}:{left % 60:02d}"
        else:
            text += f"  {elapsed:.1f}s"
        self.stream.write(text + "   " + end)
        self.stream.flush()

    def close(self) -> None:
        if self.enabled:
            self._draw(time.perf_counter(), end="\n")


_WORKER: Scorer | None = None


def _init_worker(options: ScoreOptions, schema: pa.Schema) -> None:
    global _WORKER
    _WORKER = Scorer.load(options, schema)


def _ping(wait: float) -> None:
    time.sleep(wait)  # long enough that each of N pings lands on its own worker


def _score_in_worker(batch: pa.RecordBatch) -> pa.RecordBatch:
    assert _WORKER is not None, "worker not initialised"
    return _WORKER.score(batch)


def score_files(
    model_uri: str,
    inputs: Sequence[str],
    output: str,
    *,
    input_format: str | None = None,
    output_format: str | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    workers: int | None = None,
    keep: Sequence[str] | None = None,
    mapping: Sequence[tuple[str, tuple[str, ...]]] = (),
    outputs: Sequence[str] | None = None,
    on_error: OnError = "fail",
    progress: bool | None = None,
    overwrite: bool = True,
) -> ScoreReport:
    """Score files with a model and write one output file (what ``modelport score`` runs).

    ::

        score_files("models/wine", ["data/*.parquet"], "scored.parquet", keep=["id"], workers=4)

    ``overwrite=False`` refuses an existing output before anything is read (the CLI's default).
    """
    from modelport.offline.files import (
        OutputWriter,
        count_rows,
        expand_inputs,
        format_of,
        read_batches,
        refuse_existing,
        schema_of,
    )
    from modelport.runtimes.loading import load_model

    if batch_size < 1:
        raise ConfigError(f"--batch-size must be at least 1, got {batch_size}")
    if not overwrite:
        refuse_existing(output)
    files = expand_inputs(inputs, input_format)
    out_format = format_of(output, output_format)
    schema = schema_of(files[0])
    options = ScoreOptions(
        model_uri=model_uri,
        outputs=tuple(outputs) if outputs else None,
        mapping=tuple(mapping),
        keep=tuple(keep) if keep is not None else None,
        on_error=on_error,
        wide=out_format == "csv",
    )
    model = load_model(model_uri)
    scorer = Scorer(model, options, schema)  # checks columns and types before any row is read
    needed = list(dict.fromkeys([*scorer.keep, *(c for cols in scorer.columns.values() for c in cols)]))
    total = count_rows(files)
    # One process by default: it reads ahead and writes on threads, and on 2 cores a pool was
    # slower for every model measured (docs/bench/batch.md: 344k vs 826k rows/s for a logistic
    # regression, 112k vs 165k for a 50-tree forest) because each batch is pickled both ways.
    n_workers = max(1, workers or 1)
    if total is not None and total <= batch_size:
        n_workers = 1
    report = ScoreReport(output=output, workers=n_workers)
    bar = Progress(total, progress)
    started = time.perf_counter()
    with (
        OutputWriter(output, out_format, overwrite=overwrite) as sink,
        _Background(sink) as writer,
        _Prefetch(read_batches(files, batch_size, schema, needed)) as batches,
    ):
        if n_workers == 1:
            for file, batch in batches:
                result = _located(scorer.score, file.uri, report.rows_in, batch)
                report.rows_in += batch.num_rows
                report.rows_out += result.num_rows
                bar.update(batch.num_rows)
                writer.write(result)
                del batch, result  # before the next batch arrives: one batch less alive at the peak
                _release_unused()
        else:
            _run_pool(options, schema, n_workers, batches, writer, report, bar)
        writer.flush()
        if sink.rows == 0:
            sink.write_empty(scorer.schema)
    bar.close()
    report.seconds = time.perf_counter() - started
    return report


def _release_unused() -> None:
    """Hand memory Arrow's allocator holds but no longer uses back to the system, once per batch.

    Without it, freed batches stay in the allocator's (mimalloc's or jemalloc's) pages for a
    while, and peak RSS crept up with the length of the file. It costs well under a
    millisecond a batch.
    """
    pa.default_memory_pool().release_unused()


class _Prefetch:
    """Reads the next batch on a thread while the current one is scored (Arrow decodes without the GIL).

    The reader starts on batch k+1 only once batch k has been taken, so at most two input batches
    are alive: the one being scored and the one read ahead. A read error is raised where that
    batch would have been used; leaving the ``with`` block stops the reader, which then closes
    the generator (and the files it holds open) on its own thread.
    """

    def __init__(self, source: Iterator[tuple[Any, pa.RecordBatch]]) -> None:
        import queue
        import threading

        self._source = source
        self._queue: queue.SimpleQueue[tuple[str, Any]] = queue.SimpleQueue()
        self._taken = threading.Semaphore(1)  # one read ahead of what the scoring thread has taken
        self._stop = False
        self._thread = threading.Thread(target=self._run, name="modelport-reader", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            while True:
                self._taken.acquire()
                if self._stop:
                    return
                try:
                    item = next(self._source)
                except StopIteration:
                    self._queue.put(("end", None))
                    return
                self._queue.put(("item", item))
                del item
        except BaseException as exc:  # handed to the scoring thread, which raises it
            self._queue.put(("error", exc))
        finally:
            close = getattr(self._source, "close", None)
            if close is not None:
                close()

    def __iter__(self) -> Iterator[tuple[Any, pa.RecordBatch]]:
        while True:
            kind, value = self._queue.get()
            if kind == "end":
                return
            if kind == "error":
                raise value
            self._taken.release()
            yield value
            del value

    def __enter__(self) -> _Prefetch:
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop = True
        self._taken.release()
        self._thread.join()


class _Background:
    """Writes batches on a thread (Arrow's writers release the GIL), so writing overlaps scoring.

    The queue holds at most two batches: memory stays bounded. A write error surfaces on the
    next ``write`` or on ``flush``.
    """

    def __init__(self, sink: Any) -> None:
        import queue
        import threading

        self.sink = sink
        self._queue: queue.Queue[pa.RecordBatch | None] = queue.Queue(maxsize=2)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="modelport-writer", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            batch = self._queue.get()
            if batch is None:
                return
            if self._error is None:
                try:
                    self.sink.write(batch)
                    del batch
                    _release_unused()
                except BaseException as exc:  # handed to the scoring thread, which raises it
                    self._error = exc

    def write(self, batch: pa.RecordBatch) -> None:
        if self._error is not None:
            raise self._error
        self._queue.put(batch)

    def flush(self) -> None:
        self._queue.put(None)
        self._thread.join()
        if self._error is not None:
            raise self._error

    def __enter__(self) -> _Background:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()


def _located(fn: Callable[[pa.RecordBatch], pa.RecordBatch], uri: str, start: int, batch: pa.RecordBatch) -> Any:
    """Run ``fn`` on a batch; an error names the file and the rows."""
    try:
        return fn(batch)
    except ModelportError as exc:
        raise type(exc)(f"{uri}, batch from row {start}: {exc.message}") from None


def _run_pool(
    options: ScoreOptions,
    schema: pa.Schema,
    n_workers: int,
    batches: Iterable[tuple[Any, pa.RecordBatch]],
    writer: Any,
    report: ScoreReport,
    bar: Progress,
) -> None:
    import multiprocessing as mp

    # spawn, not fork: the parent holds Arrow and BLAS thread pools that a fork would copy mid-flight.
    ctx = mp.get_context("spawn")
    window: deque[tuple[str, int, int, Future[pa.RecordBatch]]] = deque()
    # At most two batches per worker in flight: memory stays flat however big the input.
    limit = 2 * n_workers
    with ProcessPoolExecutor(n_workers, mp_context=ctx, initializer=_init_worker, initargs=(options, schema)) as pool:
        # Start every worker (interpreter, imports, model load) before the first batch is read,
        # and report that start-up apart from the scoring rate.
        began = time.perf_counter()
        for fut in [pool.submit(_ping, 0.05) for _ in range(n_workers)]:
            fut.result()
        report.startup = time.perf_counter() - began
        try:
            for file, batch in batches:
                window.append((file.uri, report.rows_in, batch.num_rows, pool.submit(_score_in_worker, batch)))
                report.rows_in += batch.num_rows
                while len(window) >= limit:
                    _drain_one(window, writer, report, bar)
            while window:
                _drain_one(window, writer, report, bar)
        except BaseException:
            for *_, fut in window:
                fut.cancel()
            raise


def _drain_one(
    window: deque[tuple[str, int, int, Future[pa.RecordBatch]]], writer: Any, report: ScoreReport, bar: Progress
) -> None:
    uri, start, rows, fut = window.popleft()
    try:
        result = fut.result()
    except ModelportError as exc:
        raise type(exc)(f"{uri}, batch from row {start}: {exc.message}") from None
    writer.write(result)
    report.rows_out += result.num_rows
    bar.update(rows)
    del result
    _release_unused()
