"""The payload log: every inference request and response, in Parquet, off the request path.

The server hands each finished inference to :meth:`PayloadLog.observe`, which only
appends to an in-memory queue; a background thread turns the queue into Arrow
row groups and writes them. A file is written as ``*.parquet.inprogress`` and
renamed to ``payloads-<pid>-<time>-<seq>.parquet`` when it reaches ``max_bytes`` or
``max_seconds`` or when the server stops, so readers only ever see whole files and
several worker processes never write the same file.

On shutdown (SIGTERM included) the server calls :meth:`close`, which drains the
queue and closes the open file: every request that was answered is on disk. A
SIGKILL or a crash loses what was still queued (at most ``flush_seconds`` worth).

Inputs and outputs are stored as JSON text, one column each: models differ in
their tensors, and one file holds every model's traffic.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from modelport.errors import ConfigError
from modelport.observe import RequestRecord

__all__ = ["PayloadLog", "read_payloads"]

log = logging.getLogger("modelport.payload_log")

SUFFIX = ".parquet"
IN_PROGRESS = ".parquet.inprogress"
COLUMNS = ("id", "time", "model", "version", "protocol", "status", "latency_ms", "error", "inputs", "outputs")


@dataclass(slots=True)
class _Entry:
    record: RequestRecord
    pid: int


def _schema() -> Any:
    import pyarrow as pa

    return pa.schema(
        [
            ("id", pa.string()),
            ("time", pa.timestamp("us", tz="UTC")),
            ("model", pa.string()),
            ("version", pa.int64()),
            ("protocol", pa.string()),
            ("status", pa.int32()),
            ("latency_ms", pa.float64()),
            ("error", pa.string()),
            ("inputs", pa.string()),
            ("outputs", pa.string()),
        ]
    )


def _default(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    raise TypeError(f"cannot log a {type(value).__name__}")


def _tensors_json(batch: Any) -> str | None:
    if batch is None:
        return None
    opts = orjson.OPT_SERIALIZE_NUMPY
    try:
        return orjson.dumps(batch, option=opts, default=_default).decode()
    except TypeError:  # object arrays of str/bytes: orjson's numpy path refuses them
        return orjson.dumps({k: _default(v) for k, v in batch.items()}, default=_default).decode()


class PayloadLog:
    """An observer that records inference traffic to rolling Parquet files in ``directory``."""

    def __init__(
        self,
        directory: str | Path,
        *,
        max_bytes: int = 64 * 1024 * 1024,
        max_seconds: float = 3600.0,
        flush_seconds: float = 1.0,
        on_depth: Callable[[int], None] | None = None,
        on_written: Callable[[int], None] | None = None,
    ) -> None:
        if max_bytes <= 0 or max_seconds <= 0 or flush_seconds <= 0:
            raise ConfigError(
                f"payload log: max_bytes ({max_bytes}), max_seconds ({max_seconds}) and "
                f"flush_seconds ({flush_seconds}) must be positive"
            )
        self.directory = Path(directory)
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"payload log directory {self.directory}: {exc}") from None
        self.max_bytes = max_bytes
        self.max_seconds = max_seconds
        self.flush_seconds = flush_seconds
        self._on_depth = on_depth
        self._on_written = on_written
        self._queue: queue.SimpleQueue[_Entry | None] = queue.SimpleQueue()
        self._pid = os.getpid()
        self._seq = 0
        self._writer: Any = None
        self._path: Path | None = None
        self._opened = 0.0
        self._closed = False
        self.written = 0
        self._thread = threading.Thread(target=self._run, name="modelport-payload-log", daemon=True)
        self._thread.start()

    # -- request path ----------------------------------------------------------------
    def observe(self, record: RequestRecord) -> None:
        """Queue an inference request (V1 predict, V2 infer over REST or gRPC, any status); others are ignored."""
        if record.protocol not in ("v1", "v2", "grpc") or self._closed:
            return
        self._queue.put(_Entry(record, self._pid))
        if self._on_depth is not None:
            self._on_depth(1)

    def depth(self) -> int:
        return self._queue.qsize()

    # -- writer thread -----------------------------------------------------------------
    def _run(self) -> None:
        stop = False
        while not stop:
            try:
                first = self._queue.get(timeout=self.flush_seconds)
            except queue.Empty:
                self._roll_if_due()
                continue
            batch: list[_Entry] = []
            item: _Entry | None = first
            while True:
                if item is None:
                    stop = True
                    break
                batch.append(item)
                if len(batch) >= 10_000:
                    break
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
            if batch:
                try:
                    self._write(batch)
                except Exception:  # keep serving; the log says what went wrong
                    log.exception("payload log: could not write %d records to %s", len(batch), self.directory)
                if self._on_depth is not None:
                    self._on_depth(-len(batch))
            self._roll_if_due()
        self._close_file()

    def _write(self, batch: list[_Entry]) -> None:
        import pyarrow as pa

        records = [e.record for e in batch]
        table = pa.table(
            {
                "id": [r.request_id for r in records],
                "time": pa.array([int(r.started * 1_000_000) for r in records], pa.timestamp("us", tz="UTC")),
                "model": [r.model for r in records],
                "version": pa.array([r.version for r in records], pa.int64()),
                "protocol": [r.protocol for r in records],
                "status": pa.array([r.status for r in records], pa.int32()),
                "latency_ms": [r.duration * 1000.0 for r in records],
                "error": [r.error for r in records],
                "inputs": [_tensors_json(r.inputs) for r in records],
                "outputs": [_tensors_json(r.outputs) for r in records],
            },
            schema=_schema(),
        )
        writer = self._open_writer()
        writer.write_table(table)
        self.written += len(batch)
        if self._on_written is not None:
            self._on_written(len(batch))
        assert self._path is not None
        if self._path.stat().st_size >= self.max_bytes:
            self._close_file()

    def _open_writer(self) -> Any:
        if self._writer is None:
            import pyarrow.parquet as pq

            self._seq += 1
            stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
            self._path = self.directory / f"payloads-{self._pid}-{stamp}-{self._seq:04d}{IN_PROGRESS}"
            self._writer = pq.ParquetWriter(self._path, _schema(), compression="zstd")
            self._opened = time.monotonic()
        return self._writer

    def _roll_if_due(self) -> None:
        if self._writer is not None and time.monotonic() - self._opened >= self.max_seconds:
            self._close_file()

    def _close_file(self) -> None:
        if self._writer is None or self._path is None:
            return
        self._writer.close()
        final = self._path.with_name(self._path.name[: -len(IN_PROGRESS)] + SUFFIX)
        os.replace(self._path, final)
        log.debug("payload log: closed %s", final)
        self._writer = None
        self._path = None

    # -- shutdown ------------------------------------------------------------------------
    def close(self, timeout: float | None = None) -> None:
        """Write everything queued and close the open file; later records are dropped."""
        if self._closed:
            return
        self._closed = True
        self._queue.put(None)
        self._thread.join(timeout)
        if self._thread.is_alive():
            log.error("payload log: the writer did not finish within %s s; %d records queued", timeout, self.depth())


def payload_files(directory: str | Path) -> list[Path]:
    path = Path(directory)
    if not path.is_dir():
        raise ConfigError(f"{path}: not a payload-log directory (no such directory)")
    return sorted(path.glob(f"*{SUFFIX}"))


def read_payloads(directory: str | Path, *, model: str | None = None) -> Any:
    """Every finished payload file in ``directory`` as one Arrow table, oldest first."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    files = payload_files(directory)
    tables = [pq.read_table(f) for f in files]
    table = pa.concat_tables(tables) if tables else _schema().empty_table()
    if model is not None:
        table = table.filter(pc.equal(table["model"], model))
    if table.num_rows:
        table = table.sort_by([("time", "ascending"), ("id", "ascending")])
    return table


def iter_rows(table: Any) -> Iterator[dict[str, Any]]:
    """Rows as dicts with inputs/outputs parsed back from JSON and time as ISO 8601."""
    for row in table.to_pylist():
        row["time"] = row["time"].isoformat() if row["time"] is not None else None
        for key in ("inputs", "outputs"):
            if row[key] is not None:
                row[key] = orjson.loads(row[key])
        yield row
