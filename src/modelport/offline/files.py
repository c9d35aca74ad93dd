"""Reading and writing the files ``modelport score`` works on, one record batch at a time.

Inputs are Parquet, CSV or JSON Lines, given as files, folders or globs, local or
remote (``s3://``, ``gs://``, anything fsspec knows). Nothing here holds more than
one batch of rows: Parquet is read row group by row group, CSV and JSON Lines
through pyarrow's streaming readers, and every batch is cut to ``batch_size`` rows.
Outputs go to a temporary name beside the target and are renamed on success.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from modelport.core.errors import ConfigError

__all__ = [
    "FORMATS",
    "InputFile",
    "OutputWriter",
    "expand_inputs",
    "format_of",
    "read_batches",
    "refuse_existing",
    "schema_of",
]

FORMATS = ("parquet", "csv", "jsonl")

_SUFFIXES = {
    ".parquet": "parquet",
    ".pq": "parquet",
    ".csv": "csv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
}

# CSV/JSON blocks: big enough to parse fast, small enough to stay near batch_size rows.
_BLOCK_BYTES = 4 << 20
# Local Parquet column chunks are read through a buffer of this size rather than whole: a row
# group's compressed bytes are then never all in memory beside its decoded columns (-10 MiB of
# peak RSS at 100,000-row groups, and no slower).
_READ_BUFFER = 64 << 10


def format_of(path: str, override: str | None = None) -> str:
    """The file format named by ``override`` or by the path's extension."""
    if override:
        fmt = override.lower()
        if fmt in ("json", "ndjson"):
            fmt = "jsonl"
        if fmt not in FORMATS:
            raise ConfigError(f"format '{override}' is not supported; use one of: {', '.join(FORMATS)}")
        return fmt
    name = path.rstrip("/").lower()
    for suffix in (".gz", ".bz2", ".zst"):
        if name.endswith(suffix):
            name = name[: -len(suffix)]
    for suffix, fmt in _SUFFIXES.items():
        if name.endswith(suffix):
            return fmt
    raise ConfigError(
        f"{path}: cannot tell the format from the extension; use .parquet, .csv or .jsonl, or pass --format"
    )


@dataclass(frozen=True)
class InputFile:
    """One file to read: its filesystem, its path there, the URI shown to users, its format."""

    fs: Any
    path: str
    uri: str
    format: str


def _fs(uri: str) -> tuple[Any, str]:
    import fsspec

    fs, path = fsspec.core.url_to_fs(uri)
    return fs, path


def _protocol(fs: Any) -> str:
    proto = fs.protocol if isinstance(fs.protocol, str) else fs.protocol[0]
    return str(proto)


def _display(fs: Any, path: str) -> str:
    proto = _protocol(fs)
    return path if proto in ("file", "local") else f"{proto}://{path}"


def _is_data_file(path: str) -> bool:
    base = path.rstrip("/").rsplit("/", 1)[-1]
    # Spark and Hadoop leave _SUCCESS, _committed_*, .crc files beside the data.
    return not base.startswith(("_", ".")) and not base.endswith(".crc")


def expand_inputs(inputs: Sequence[str], fmt: str | None = None) -> list[InputFile]:
    """Every data file named by ``inputs`` (files, folders, globs), in a stable order."""
    if not inputs:
        raise ConfigError("no input given; name at least one file, folder or glob")
    found: list[InputFile] = []
    for uri in inputs:
        fs, path = _fs(uri)
        if any(ch in path for ch in "*?["):
            paths = sorted(p for p in fs.glob(path) if fs.isfile(p) and _is_data_file(p))
            if not paths:
                raise ConfigError(f"{uri}: the pattern matches no file")
        elif fs.isdir(path):
            paths = sorted(p for p in fs.find(path) if _is_data_file(p))
            if fmt is None:
                paths = [p for p in paths if _suffix_format(p) is not None]
            if not paths:
                raise ConfigError(f"{uri}: the folder holds no .parquet, .csv or .jsonl file")
        elif fs.isfile(path):
            paths = [path]
        else:
            raise ConfigError(f"{uri}: no such file or directory")
        for p in paths:
            found.append(InputFile(fs, p, _display(fs, p), format_of(p, fmt)))
    kinds = sorted({f.format for f in found})
    if len(kinds) > 1:
        raise ConfigError(f"inputs mix formats ({', '.join(kinds)}); score one format at a time or pass --format")
    return found


def _suffix_format(path: str) -> str | None:
    try:
        return format_of(path)
    except ConfigError:
        return None


def _csv_options(schema: pa.Schema | None) -> tuple[Any, Any]:
    import pyarrow.csv as pcsv

    read = pcsv.ReadOptions(block_size=_BLOCK_BYTES)
    convert = pcsv.ConvertOptions(column_types=schema) if schema is not None else pcsv.ConvertOptions()
    return read, convert


def _open(file: InputFile) -> Any:
    import fsspec

    return fsspec.open(file.uri if "://" in file.uri else file.path, "rb", compression="infer").open()


def schema_of(file: InputFile) -> pa.Schema:
    """The file's columns and types, read from the footer (Parquet) or the first block."""
    if file.format == "parquet":
        import pyarrow.parquet as pq

        with file.fs.open(file.path, "rb") as fh:
            return pq.ParquetFile(fh).schema_arrow
    with _open(file) as fh:
        reader = _stream_reader(file, fh, None)
        return reader.schema


def _stream_reader(file: InputFile, fh: Any, schema: pa.Schema | None) -> Any:
    if file.format == "csv":
        import pyarrow.csv as pcsv

        read, convert = _csv_options(schema)
        return pcsv.open_csv(fh, read_options=read, convert_options=convert)
    import pyarrow.json as pjson

    parse = pjson.ParseOptions(explicit_schema=schema) if schema is not None else None
    return pjson.open_json(fh, read_options=pjson.ReadOptions(block_size=_BLOCK_BYTES), parse_options=parse)


def count_rows(files: Sequence[InputFile]) -> int | None:
    """Total rows when the footers tell it (Parquet), else None."""
    if any(f.format != "parquet" for f in files):
        return None
    import pyarrow.parquet as pq

    total = 0
    for f in files:
        with f.fs.open(f.path, "rb") as fh:
            total += pq.ParquetFile(fh).metadata.num_rows
    return total


def _cut(batches: Iterator[pa.RecordBatch], size: int) -> Iterator[pa.RecordBatch]:
    """Re-chunk a stream of batches into batches of exactly ``size`` rows (the last may be short)."""
    pending: list[pa.RecordBatch] = []
    rows = 0
    for batch in batches:
        while batch.num_rows:
            take = min(size - rows, batch.num_rows)
            pending.append(batch.slice(0, take))
            rows += take
            batch = batch.slice(take)
            if rows == size:
                yield _combine(pending)
                pending, rows = [], 0
    if rows:
        yield _combine(pending)


def _combine(parts: list[pa.RecordBatch]) -> pa.RecordBatch:
    if len(parts) == 1:
        return parts[0]
    return pa.Table.from_batches(parts).combine_chunks().to_batches()[0]


def read_batches(
    files: Sequence[InputFile], batch_size: int, schema: pa.Schema, columns: Sequence[str] | None = None
) -> Iterator[tuple[InputFile, pa.RecordBatch]]:
    """Stream every file as record batches of at most ``batch_size`` rows, cast to ``schema``.

    Files must have the columns of ``schema`` (the first file's); a file whose column
    cannot be cast fails with a message naming the file and the column.
    """
    wanted = list(columns) if columns is not None else schema.names
    target = pa.schema([schema.field(n) for n in wanted])
    for file in files:
        for batch in _cut(_raw_batches(file, batch_size, schema, wanted), batch_size):
            yield file, _conform(file, batch, target)


def _raw_batches(file: InputFile, batch_size: int, schema: pa.Schema, wanted: list[str]) -> Iterator[pa.RecordBatch]:
    if file.format == "parquet":
        import pyarrow.parquet as pq

        # One row group at a time: a reader pre-buffers the byte ranges of the row groups it is asked
        # for and keeps them until it is dropped, so one reader over the whole file held every row
        # group it had read (peak RSS grew with the file: +150 MiB over 1M rows). Pre-buffering
        # (coalesced reads) pays off on object stores; a local file is opened by Arrow itself,
        # without pre-buffering and through a small buffer, so its reads run without the GIL.
        local = _protocol(file.fs) in ("file", "local")
        with contextlib.ExitStack() as stack:
            if local:
                from pyarrow.fs import LocalFileSystem

                pf = stack.enter_context(
                    pq.ParquetFile(file.path, pre_buffer=False, filesystem=LocalFileSystem(), buffer_size=_READ_BUFFER)
                )
            else:
                pf = pq.ParquetFile(stack.enter_context(file.fs.open(file.path, "rb")), pre_buffer=True)
            _check_columns(file, pf.schema_arrow, wanted)
            # use_threads=False: ``modelport score`` reads on its own thread while the previous batch
            # is scored, so decoding already overlaps predicting; Arrow's pool on top oversubscribed
            # two cores and spread allocations over more threads (-10 MiB peak RSS, not slower).
            # One thread still decodes ~4.5M rows/s of 14 float columns, beyond any model here.
            for group in range(pf.num_row_groups):
                yield from pf.iter_batches(batch_size=batch_size, row_groups=[group], columns=wanted, use_threads=False)
        return
    with _open(file) as fh:
        # Every block is read with the first file's types, so that a column that looks like
        # integers in one block and decimals in the next keeps one type.
        reader = _stream_reader(file, fh, schema)
        _check_columns(file, reader.schema, wanted)
        try:
            for batch in reader:
                yield batch.select(wanted)
        except pa.ArrowInvalid as exc:
            raise ConfigError(f"{file.uri}: cannot read as {file.format}: {exc}") from None


def _check_columns(file: InputFile, schema: pa.Schema, wanted: list[str]) -> None:
    missing = [n for n in wanted if n not in schema.names]
    if missing:
        raise ConfigError(
            f"{file.uri}: no column {', '.join(repr(m) for m in missing)}; it has: {', '.join(schema.names)}"
        )


def _conform(file: InputFile, batch: pa.RecordBatch, target: pa.Schema) -> pa.RecordBatch:
    if batch.schema.equals(target):
        return batch
    arrays = []
    for field in target:
        col = batch.column(batch.schema.get_field_index(field.name))
        if col.type != field.type:
            try:
                col = col.cast(field.type)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
                raise ConfigError(
                    f"{file.uri}: column '{field.name}' has type {col.type}, not {field.type} as in the first file "
                    f"({exc})"
                ) from None
        arrays.append(col)
    return pa.RecordBatch.from_arrays(arrays, schema=target)


def refuse_existing(uri: str) -> None:
    """Fail, naming the file and the flag, when ``uri`` already exists (``score`` without ``--force``)."""
    fs, path = _fs(uri)
    if fs.exists(path):
        raise ConfigError(f"{uri} already exists; pass --force to overwrite it")


class OutputWriter:
    """Writes record batches to Parquet, CSV or JSON Lines under a temporary name.

    ``commit()`` renames the file into place; ``abort()`` (or leaving the ``with`` block
    with an exception, :class:`~modelport.offline.score.Interrupted` by SIGTERM or SIGINT
    included) deletes it, so a crash never leaves a file that looks complete. With
    ``overwrite=False`` an existing target is refused before anything is written.
    """

    def __init__(self, uri: str, fmt: str | None = None, *, overwrite: bool = True) -> None:
        self.uri = uri
        self.format = format_of(uri, fmt)
        self.fs, self.path = _fs(uri)
        parent, _, base = self.path.rpartition("/")
        if parent and not self.fs.isdir(parent):
            if _protocol(self.fs) in ("file", "local"):
                raise ConfigError(f"{uri}: the folder {parent} does not exist")
        if self.fs.isdir(self.path):
            raise ConfigError(f"{uri}: is a folder; name an output file")
        if not overwrite:
            refuse_existing(uri)
        tmp_base = f".{base}.{uuid.uuid4().hex[:8]}.partial"
        self.tmp_path = f"{parent}/{tmp_base}" if parent else tmp_base
        self._fh: Any = None
        self._writer: Any = None
        self.rows = 0

    def __enter__(self) -> OutputWriter:
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.abort()

    def write(self, batch: pa.RecordBatch) -> None:
        if self._fh is None:
            self._fh = self.fs.open(self.tmp_path, "wb")
            self._writer = self._make_writer(batch.schema)
        if self.format == "jsonl":
            self._write_jsonl(batch)
        else:
            self._writer.write_batch(batch)
        self.rows += batch.num_rows

    def _make_writer(self, schema: pa.Schema) -> Any:
        if self.format == "parquet":
            import pyarrow.parquet as pq

            # Dictionary-encoding float columns (predictions, probabilities) costs more than the whole
            # prediction and rarely pays off; keep it for text, where it does. Snappy: on 1M scored
            # rows it wrote as fast as no compression (fewer bytes) and faster than lz4 or zstd
            # (docs/bench/batch.md).
            text = [f.name for f in schema if pa.types.is_string(f.type) or pa.types.is_large_string(f.type)]
            return pq.ParquetWriter(self._fh, schema, use_dictionary=text or False, compression="snappy")
        if self.format == "csv":
            import pyarrow.csv as pcsv

            return pcsv.CSVWriter(self._fh, schema)
        return None

    def _write_jsonl(self, batch: pa.RecordBatch) -> None:
        import orjson

        opts = orjson.OPT_APPEND_NEWLINE | orjson.OPT_SERIALIZE_NUMPY
        write = self._fh.write
        for row in batch.to_pylist():
            write(orjson.dumps(row, default=_json_default, option=opts))

    def commit(self) -> None:
        """Finish the file and move it to its final name."""
        if self._fh is None:  # no rows: still write a valid, empty file
            self._fh = self.fs.open(self.tmp_path, "wb")
        if self._writer is not None:
            self._writer.close()
        self._fh.close()
        if _protocol(self.fs) in ("file", "local"):
            os.replace(self.tmp_path, self.path)
        else:
            self.fs.mv(self.tmp_path, self.path)

    def abort(self) -> None:
        try:
            if self._writer is not None:
                self._writer.close()
            if self._fh is not None:
                self._fh.close()
        except Exception:  # cleaning up after another error; that one matters
            pass
        try:
            if self.fs.exists(self.tmp_path):
                self.fs.rm(self.tmp_path)
        except OSError:
            pass

    def write_empty(self, schema: pa.Schema) -> None:
        """Give an input without rows an output with the right columns."""
        if self._fh is None:
            self._fh = self.fs.open(self.tmp_path, "wb")
            self._writer = self._make_writer(schema)
            if self._writer is not None and self.format == "parquet":
                self._writer.write_table(schema.empty_table())


def _json_default(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, float | int | str):
        return value
    return str(value)
