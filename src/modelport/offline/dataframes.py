"""Scoring Spark DataFrames: in each Python worker, or through a running service.

The only runtime module that imports pyspark, and only inside functions. Both paths
use ``DataFrame.mapInArrow``: Spark hands each Python worker Arrow record batches,
and the worker runs the same :class:`~modelport.offline.score.Scorer` as
``modelport score``. The model (or the HTTP client) is built once per Python worker
and kept for every task that worker runs (Spark reuses Python workers by default).

::

    import modelport.spark

    scored = modelport.spark.predict(df, "models/churn", outputs=["predict"])
    scored = modelport.spark.predict_via_endpoint(df, "http://10.0.0.5:8080", "churn")
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from modelport.core.errors import ConfigError, InvalidInput, ModelFailed, ModelportError
from modelport.core.signature import Batch, InputPlan, Signature
from modelport.offline.score import (
    DEFAULT_BATCH_SIZE,
    OnError,
    ScoreOptions,
    Scorer,
    ScoreReport,
    parse_map,
)

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

__all__ = ["predict", "predict_via_endpoint", "score_with_spark"]

DEFAULT_ENDPOINT_BATCH = 1_000

# One Scorer per (options, schema) in each Python worker, kept across tasks.
_SCORERS: dict[tuple[Any, ...], Scorer] = {}

log = logging.getLogger("modelport.score")


def _arrow_schema(df: DataFrame) -> pa.Schema:
    from pyspark.sql.pandas.types import to_arrow_schema

    session = df.sparkSession
    tz = session.conf.get("spark.sql.session.timeZone")
    return to_arrow_schema(df.schema, timezone=tz)


def _spark_schema(schema: pa.Schema) -> Any:
    from pyspark.sql.pandas.types import from_arrow_schema

    # Spark has no unsigned integers: widen them, as Spark itself does for Parquet.
    fields = []
    for f in schema:
        t = f.type
        if pa.types.is_unsigned_integer(t):
            t = pa.int64() if t.bit_width < 64 else pa.decimal128(20, 0)
        elif pa.types.is_list(t) and pa.types.is_unsigned_integer(t.value_type):
            t = pa.list_(pa.int64())
        elif pa.types.is_float16(t):
            t = pa.float32()
        fields.append(pa.field(f.name, t, f.nullable))
    return from_arrow_schema(pa.schema(fields))


def _mapping(mapping: Any) -> tuple[tuple[str, tuple[str, ...]], ...]:
    if not mapping:
        return ()
    if isinstance(mapping, dict):
        return tuple((k, (v,) if isinstance(v, str) else tuple(v)) for k, v in mapping.items())
    return parse_map(mapping)


@dataclass(frozen=True)
class _PartitionScorer:
    """The function Spark ships to each Python worker: Arrow batches in, scored batches out."""

    options: ScoreOptions
    schema: pa.Schema
    out_schema: pa.Schema
    batch_size: int
    endpoint: tuple[Any, ...] | None = None

    def scorer(self) -> Scorer:
        key = (self.options, self.endpoint, self.schema.to_string())
        found = _SCORERS.get(key)
        if found is None:
            if self.endpoint is None:
                found = Scorer.load(self.options, self.schema)
            else:
                found = Scorer(_RemoteModel(*self.endpoint), self.options, self.schema)  # type: ignore[arg-type]
            _SCORERS[key] = found
        return found

    def __call__(self, batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        from modelport.offline.files import _cut

        scorer = self.scorer()
        for batch in _cut(batches, self.batch_size):
            out = scorer.score(batch)
            if not out.schema.equals(self.out_schema):
                out = out.cast(self.out_schema)
            yield out


def predict(
    df: DataFrame,
    model_uri: str,
    *,
    outputs: Sequence[str] | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    keep: Sequence[str] | None = None,
    mapping: Any = None,
    on_error: OnError = "fail",
    _wide: bool = False,
) -> DataFrame:
    """Score a Spark DataFrame with a modelport model, loaded once per Python worker.

    The result has the ``keep`` columns (default: all) plus the model's outputs
    (2-D outputs as ``array<double>``). Columns map to inputs by name, or by
    ``mapping`` (``{"input": ["c1", "c2"]}`` or ``["c1,c2=input"]``). Every flavor
    works, saved Spark ML PipelineModels included (run by modelport's JVM-free runtime,
    which may drop rows for ``handleInvalid="skip"``). ``model_uri`` must be readable
    from every executor (a shared path, ``s3://``, ``gs://``).
    """
    from modelport.runtimes.loading import load_model

    if batch_size < 1:
        raise ConfigError(f"batch_size must be at least 1, got {batch_size}")
    schema = _arrow_schema(df)
    options = ScoreOptions(
        model_uri=str(model_uri),
        outputs=tuple(outputs) if outputs else None,
        mapping=_mapping(mapping),
        keep=tuple(keep) if keep is not None else None,
        on_error=on_error,
        wide=_wide,
    )
    # Built on the driver first: a missing column or a wrong type fails here, before any task runs.
    model = load_model(options.model_uri)
    scorer = Scorer(model, options, schema)
    from pyspark.sql import functions as F

    fast = hasattr(F, "arrow_udf")  # pyspark >= 4.1
    if fast and getattr(model.predictor, "transform", None) is None and on_error != "skip" and not _wide:
        return _columns_udf(df, scorer, options, schema, batch_size)
    return _map(df, _PartitionScorer(options, schema, scorer.schema, batch_size), scorer.schema)


@dataclass(frozen=True)
class _ColumnScorer:
    """A scalar Arrow UDF body: the input columns (as one struct) in, the outputs (as one struct) out.

    Used when every row gets an output row (no row-dropping model, no on_error=skip): only the
    model's input columns cross into Python and back, the kept columns stay in the JVM.
    """

    options: ScoreOptions
    schema: pa.Schema
    out_type: pa.DataType
    batch_size: int

    def __call__(self, arrays: Iterator[pa.Array]) -> Iterator[pa.Array]:
        key = (self.options, None, self.schema.to_string())
        scorer = _SCORERS.get(key)
        if scorer is None:
            scorer = _SCORERS[key] = Scorer.load(self.options, self.schema)
        for arr in arrays:
            batch = pa.RecordBatch.from_struct_array(arr)
            parts = [scorer.score(batch.slice(i, self.batch_size)) for i in range(0, batch.num_rows, self.batch_size)]
            out = parts[0] if len(parts) == 1 else pa.Table.from_batches(parts).combine_chunks().to_batches()[0]
            result = out.to_struct_array()
            yield result if result.type == self.out_type else result.cast(self.out_type)


def _columns_udf(df: DataFrame, scorer: Scorer, options: ScoreOptions, schema: pa.Schema, batch_size: int) -> DataFrame:
    from pyspark.sql import functions as F
    from pyspark.sql.pandas.functions import ArrowUDFType
    from pyspark.sql.pandas.types import to_arrow_type
    from pyspark.sql.types import StructType

    needed = list(dict.fromkeys(c for cols in scorer.columns.values() for c in cols))
    inner = ScoreOptions(options.model_uri, options.outputs, options.mapping, (), options.on_error, options.wide)
    in_schema = pa.schema([schema.field(c) for c in needed])
    out_fields = [f for f in scorer.schema if f.name not in scorer.keep]
    spark_struct = _spark_schema(pa.schema(out_fields))
    assert isinstance(spark_struct, StructType)
    out_type = to_arrow_type(spark_struct, timezone=df.sparkSession.conf.get("spark.sql.session.timeZone"))
    arrow_udf: Any = F.arrow_udf  # pyspark >= 4.1; its overloads do not cover struct results
    import warnings

    with warnings.catch_warnings():
        # pyspark prefers type hints; a callable object has none to read, so the UDF type is given.
        warnings.filterwarnings("ignore", "It is preferred to specify type hints", UserWarning)
        udf = arrow_udf(_ColumnScorer(inner, in_schema, out_type, batch_size), spark_struct, ArrowUDFType.SCALAR_ITER)
    tmp = "__modelport_out"
    scored = df.withColumn(tmp, udf(F.struct(*[F.col(f"`{c}`") for c in needed])))
    return scored.select(*[F.col(f"`{k}`") for k in scorer.keep], *[F.col(f"{tmp}.`{f.name}`") for f in out_fields])


def _map(df: DataFrame, fn: _PartitionScorer, out_schema: pa.Schema) -> DataFrame:
    from pyspark.sql.pandas.types import to_arrow_schema

    spark_schema = _spark_schema(out_schema)
    target = to_arrow_schema(spark_schema, timezone=df.sparkSession.conf.get("spark.sql.session.timeZone"))
    fn = _PartitionScorer(fn.options, fn.schema, target, fn.batch_size, fn.endpoint)
    return df.mapInArrow(fn, spark_schema)


class _RemoteModel:
    """A model behind a URL that looks like a loaded :class:`~modelport.core.model.Model` to the Scorer."""

    flavor = "remote"

    def __init__(
        self,
        url: str,
        name: str,
        version: str | None,
        protocol: str,
        signature_json: str,
        client_options: tuple[tuple[str, Any], ...],
    ) -> None:
        import orjson

        from modelport.client import Client

        self.name = name
        self.version = version
        self.signature = Signature.from_dict(orjson.loads(signature_json))
        self.plan = InputPlan(name, self.signature)
        self.predictor = None
        kwargs = dict(client_options)
        if "headers" in kwargs:
            kwargs["headers"] = dict(kwargs["headers"])
        self._client = Client(url, protocol=protocol, **kwargs)  # type: ignore[arg-type]

    def run(self, batch: Batch, outputs: Sequence[str] | None = None) -> Batch:
        wanted = list(outputs) if outputs else self.signature.output_names
        try:
            result = self._client.predict(self.name, batch, version=self.version, outputs=wanted)
        except InvalidInput as exc:
            # The local plan passed these rows; the server still refused them: treat as the model failing,
            # so that on_error skip/null can retry row by row.
            raise ModelFailed(exc.message) from None
        return {n: np.asarray(result[n]) for n in wanted}


def predict_via_endpoint(
    df: DataFrame,
    url: str,
    model: str,
    *,
    version: str | int | None = None,
    outputs: Sequence[str] | None = None,
    batch_size: int = DEFAULT_ENDPOINT_BATCH,
    keep: Sequence[str] | None = None,
    mapping: Any = None,
    on_error: OnError = "fail",
    protocol: str = "v2",
    signature: Signature | None = None,
    timeout: float | None = 60.0,
    retries: int = 10,
    backoff: float = 0.2,
    max_backoff: float = 5.0,
    headers: dict[str, str] | None = None,
) -> DataFrame:
    """Score a Spark DataFrame by calling a running modelport (or other V1/V2) service.

    Each partition's rows go to ``url`` in requests of ``batch_size`` rows through
    :class:`modelport.client.Client` (one kept-alive client per Python worker).
    Connection errors, 429 and 503 are retried with exponential backoff, so a server
    restart in the middle of a job costs time, not rows. The signature comes from the
    server's V2 metadata unless ``signature`` is given (needed for a V1-only server).
    """
    import orjson

    from modelport.client import Client

    client_options: tuple[tuple[str, Any], ...] = (
        ("timeout", timeout),
        ("retries", retries),
        ("backoff", backoff),
        ("max_backoff", max_backoff),
    )
    if headers:
        client_options += (("headers", tuple(sorted(headers.items()))),)  # hashable: it keys the worker cache
    if signature is None:
        probe_kwargs: dict[str, Any] = {k: dict(v) if k == "headers" else v for k, v in client_options}
        with Client(url, **probe_kwargs) as probe:
            signature = probe.signature(model, version)
    ver = str(version) if version is not None else None
    endpoint = (url, model, ver, protocol, orjson.dumps(signature.to_dict()).decode(), client_options)
    schema = _arrow_schema(df)
    options = ScoreOptions(
        model_uri=url,
        outputs=tuple(outputs) if outputs else None,
        mapping=_mapping(mapping),
        keep=tuple(keep) if keep is not None else None,
        on_error=on_error,
    )
    scorer = Scorer(_RemoteModel(*endpoint), options, schema)  # type: ignore[arg-type]
    return _map(df, _PartitionScorer(options, schema, scorer.schema, batch_size, endpoint), scorer.schema)


def score_with_spark(
    model_uri: str,
    inputs: Sequence[str],
    output: str,
    *,
    master: str = "local[*]",
    input_format: str | None = None,
    output_format: str | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    keep: Sequence[str] | None = None,
    mapping: Any = None,
    outputs: Sequence[str] | None = None,
    on_error: OnError = "fail",
    session: SparkSession | None = None,
    overwrite: bool = False,
) -> ScoreReport:
    """``modelport score --engine spark``: read with Spark, score with :func:`predict`, write with Spark.

    Spark writes ``output`` as a folder of part files; its output committer moves them
    into place only when the job succeeds (``_SUCCESS`` marks a complete folder). An
    existing ``output`` is an error unless ``overwrite`` (``--force``).
    """
    from modelport.offline.files import format_of

    try:
        from pyspark.sql import SparkSession
    except ImportError as exc:
        raise ConfigError("--engine spark needs pyspark: pip install pyspark") from exc
    in_fmt = format_of(inputs[0], input_format)
    out_fmt = format_of(output, output_format)
    spark = session or (
        SparkSession.builder.master(master)
        .appName("modelport score")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .getOrCreate()
    )
    started = time.perf_counter()
    try:
        reader = spark.read
        if in_fmt == "parquet":
            df = reader.parquet(*inputs)
        elif in_fmt == "csv":
            df = reader.options(header=True, inferSchema=True).csv(list(inputs))
        else:
            df = reader.json(list(inputs))
    except Exception as exc:
        raise ConfigError(f"spark could not read {', '.join(inputs)}: {exc}") from None
    rows_in = df.count()
    scored = predict(
        df,
        model_uri,
        outputs=outputs,
        batch_size=batch_size,
        keep=keep,
        mapping=mapping,
        on_error=on_error,
        _wide=out_fmt == "csv",
    )
    writer = scored.write.mode("overwrite" if overwrite else "errorifexists")
    try:
        if out_fmt == "parquet":
            writer.parquet(output)
        elif out_fmt == "csv":
            writer.option("header", True).csv(output)
        else:
            writer.json(output)
    except BaseException as exc:
        if not isinstance(exc, Exception):  # SIGTERM/SIGINT (score.Interrupted) or KeyboardInterrupt
            _abandon(spark, output, stop_session=session is None)
            raise
        text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        cause = _modelport_cause(exc)
        if cause is not None:
            raise cause from None
        raise ModelFailed(f"spark job writing {output} failed: {text}") from None
    rows_out = spark.read.format("parquet" if out_fmt == "parquet" else out_fmt).load(output).count()
    return ScoreReport(rows_in, rows_out, time.perf_counter() - started, output, 0)


def _abandon(spark: Any, output: str, *, stop_session: bool) -> None:
    """Stop the running write and remove what it left, so an interrupted run leaves no half folder.

    Spark only moves part files into ``output`` when the job commits; until then they sit in
    ``output/_temporary``, but the folder itself exists from the job's start.
    """
    import shutil

    try:
        spark.sparkContext.cancelAllJobs()
        if stop_session:
            spark.stop()
    except Exception as exc:  # the JVM may already be going down with the same signal
        log.debug("stopping Spark after an interrupt: %s: %s", type(exc).__name__, exc)
    if "://" not in output or output.startswith("file://"):
        shutil.rmtree(output.removeprefix("file://"), ignore_errors=True)


def _modelport_cause(exc: BaseException) -> ModelportError | None:
    """The modelport error a Python worker raised, recovered from Spark's wrapped message."""
    import modelport.core.errors as errors

    text = str(exc)
    for name in ("InvalidInput", "ConfigError", "ModelFailed", "EndpointUnavailable", "ModelNotReady"):
        marker = f"{name}: "
        if marker in text:
            message = text.split(marker, 1)[1].split("\n", 1)[0]
            cls = getattr(errors, name, None) or ModelFailed
            return cls(message)
    return None
