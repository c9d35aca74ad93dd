"""The payload log: every inference request and response, on disk within a flush, off the request path.

The server hands each finished inference to :meth:`PayloadLog.observe`, which only
appends to an in-memory queue. A background thread wakes every ``flush_seconds``, turns
what is queued into one Arrow record batch and appends it to the open file, an Arrow IPC
*stream* (``payloads-<pid>-<time>-<seq>.arrows.inprogress``), then fsyncs. A stream needs
no footer: after ``kill -KILL``, an out-of-memory kill or a crash, every batch appended
before is readable (:func:`read_payloads` stops at a torn last message), so a crash loses
at most ``flush_seconds`` of records. Parquet, the format before, writes its footer at
close, and its open file was unreadable after a crash.

When the open file reaches ``max_bytes`` or ``max_seconds``, or the server stops, it is
rewritten as ``payloads-<pid>-<time>-<seq>.parquet`` (zstd, big row groups) for any
Parquet reader, and the stream is removed. A stream whose writer died is converted by the
next server that starts on the directory. Files are 0600 in a 0700 directory: they hold
full inputs and outputs.

A failed write (a full disk) keeps the records in memory, truncates the file back to its
last whole batch, logs, counts ``modelport_payload_log_write_errors_total`` and retries at
every flush; writing resumes when space returns, and no record is dropped while the
process lives. ``modelport_payload_log_queue_depth`` counts records not yet on disk.

Inputs and outputs are stored as JSON text, one column each: models differ in their
tensors, and one file holds every model's traffic.
"""

from __future__ import annotations

import logging
import os
import queue
import stat
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from modelport.core.errors import ConfigError
from modelport.observability import faults
from modelport.observability.observe import RequestRecord

__all__ = ["PayloadLog", "read_payloads"]

log = logging.getLogger("modelport.payload_log")

SUFFIX = ".parquet"
STREAM = ".arrows"
IN_PROGRESS = ".arrows.inprogress"
WRITING = ".writing"  # a Parquet file being written at a roll
OLD_IN_PROGRESS = ".parquet.inprogress"  # earlier modelport: Parquet, unreadable until closed
COLUMNS = ("id", "time", "model", "version", "protocol", "status", "latency_ms", "error", "inputs", "outputs")

FILE_MODE = 0o600
DIR_MODE = 0o700
_ROW_GROUP_ROWS = 64_000
_ROW_GROUP_BYTES = 32 << 20
_RETRY_LOG_SECONDS = 60.0


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


def _record_batch(records: list[RequestRecord]) -> Any:
    import pyarrow as pa

    return pa.record_batch(
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


def _private_dir(directory: Path) -> None:
    """Create ``directory`` 0700, or take group and other access away from one that exists."""
    try:
        directory.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
        mode = stat.S_IMODE(directory.stat().st_mode)
    except OSError as exc:
        raise ConfigError(f"payload log directory {directory}: {exc}") from None
    if mode & 0o077:
        try:
            directory.chmod(mode & ~0o077)
            log.info(
                "payload log: made %s private (mode %o, was %o): it holds full inputs", directory, mode & ~0o077, mode
            )
        except OSError as exc:
            log.warning("payload log: %s is mode %o and cannot be made private: %s", directory, mode, exc)


def _create_private(path: Path) -> int:
    """A new file, 0600 whatever the umask, opened for writing."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, FILE_MODE)
    try:
        os.fchmod(fd, FILE_MODE)
    except OSError:
        os.close(fd)
        raise
    return fd


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


class _Pending:
    """The file-like sink the Arrow stream writer writes into: bytes waiting for the disk."""

    def __init__(self) -> None:
        self.data = bytearray()
        self.closed = False

    def write(self, data: Any) -> int:
        view = memoryview(data)
        self.data += view
        return view.nbytes

    def flush(self) -> None:
        pass

    def close(self) -> None:
        self.closed = True


class _Journal:
    """One open stream file. Batches are serialised into memory, then written and fsynced by :meth:`sync`.

    If a write fails the file is cut back to the end of its last whole batch and the bytes
    stay in memory for the next try, so the file on disk is always a readable stream.
    """

    def __init__(self, path: Path) -> None:
        import pyarrow as pa

        self.path = path
        self.opened = time.monotonic()
        self._pending = _Pending()
        self._writer = pa.ipc.new_stream(self._pending, _schema(), options=pa.ipc.IpcWriteOptions(compression="zstd"))
        self._fd: int | None = None
        self.size = 0  # bytes on disk, all of them whole messages
        self.unsynced = 0  # records in ``_pending``

    def append(self, batch: Any) -> None:
        self._writer.write_batch(batch)
        self.unsynced += batch.num_rows

    def sync(self) -> int:
        """Write and fsync what is pending; the number of records that reached the disk."""
        data = self._pending.data
        if not data:
            return 0
        if self._fd is None:
            self._fd = _create_private(self.path)
            _fsync_dir(self.path.parent)
        view = memoryview(data)
        written = 0
        try:
            while written < len(view):
                written += os.write(self._fd, view[written:])
            os.fsync(self._fd)
        except OSError:
            view.release()
            if written:
                try:
                    os.ftruncate(self._fd, self.size)
                    os.lseek(self._fd, self.size, os.SEEK_SET)
                except OSError:
                    log.exception("payload log: could not cut %s back to its last whole batch", self.path)
            raise
        view.release()
        self.size += len(data)
        del data[:]
        done, self.unsynced = self.unsynced, 0
        return done

    def close(self) -> None:
        """Close the file (what is pending must have been synced)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


class PayloadLog:
    """An observer that records inference traffic to files in ``directory`` (see the module docstring)."""

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
        _private_dir(self.directory)
        self.max_bytes = max_bytes
        self.max_seconds = max_seconds
        self.flush_seconds = flush_seconds
        self._on_depth = on_depth
        self._on_written = on_written
        self._queue: queue.SimpleQueue[RequestRecord] = queue.SimpleQueue()
        self._pid = os.getpid()
        self._seq = 0
        self._journal: _Journal | None = None
        self._held: list[Any] = []  # record batches not yet in a journal (none could be opened)
        self._failing_since: float | None = None
        self._last_error_log = 0.0
        self._closed = False
        self._stop = threading.Event()
        self.written = 0
        """Records on disk (fsynced)."""
        # Import Arrow (a second on a busy machine) and build the zstd codec now, at start-up, not
        # in the first flush: that flush would otherwise reach the disk later than flush_seconds.
        import pyarrow as pa

        pa.Codec("zstd").compress(b"warm-up")
        _record_batch([])
        self._thread = threading.Thread(target=self._run, name="modelport-payload-log", daemon=True)
        self._thread.start()

    # -- request path ----------------------------------------------------------------
    def observe(self, record: RequestRecord) -> None:
        """Queue an inference request (V1 predict, V2 infer over REST or gRPC, any status); others are ignored."""
        if record.protocol not in ("v1", "v2", "grpc") or self._closed:
            return
        self._queue.put(record)
        if self._on_depth is not None:
            self._on_depth(1)

    def depth(self) -> int:
        """Records not yet on disk: queued, or held after a failed write."""
        held = sum(b.num_rows for b in self._held)
        return self._queue.qsize() + held + (self._journal.unsynced if self._journal is not None else 0)

    # -- writer thread -----------------------------------------------------------------
    def _run(self) -> None:
        self._recover()
        while True:
            stopping = self._stop.wait(self.flush_seconds)
            self._flush()
            journal = self._journal
            if journal is not None and (
                stopping or journal.size >= self.max_bytes or time.monotonic() - journal.opened >= self.max_seconds
            ):
                self._roll()
            if stopping:
                break
        left = self.depth()
        if left:
            log.error(
                "payload log: %d records could not be written to %s before the server stopped", left, self.directory
            )

    def _drain(self) -> list[RequestRecord]:
        records: list[RequestRecord] = []
        while True:
            try:
                records.append(self._queue.get_nowait())
            except queue.Empty:
                return records

    def _flush(self) -> None:
        records = self._drain()
        encoded = 0
        try:
            for start in range(0, len(records), 10_000):
                self._held.append(_record_batch(records[start : start + 10_000]))
                encoded = min(len(records), start + 10_000)
        except Exception:  # a record that cannot be encoded must not stop the writer
            # The chunks encoded before the failure are held and leave the depth when written.
            dropped = len(records) - encoded
            log.exception("payload log: could not encode %d records; they are dropped", dropped)
            if self._on_depth is not None:
                self._on_depth(-dropped)
        if not self._held and (self._journal is None or not self._journal.unsynced):
            return
        try:
            if self._journal is None:
                self._journal = self._new_journal()
            for batch in self._held:
                self._journal.append(batch)
            self._held.clear()
            done = self._journal.sync()
        except OSError as exc:
            self._write_failed(exc)
            return
        if self._failing_since is not None:
            log.warning(
                "payload log: writing to %s again after %.0f s of failures",
                self.directory,
                time.monotonic() - self._failing_since,
            )
            self._failing_since = None
        self.written += done
        if self._on_depth is not None:
            self._on_depth(-done)
        if self._on_written is not None:
            self._on_written(done)

    def _write_failed(self, exc: OSError) -> None:
        faults.count("payload_log_write")
        now = time.monotonic()
        if self._failing_since is None or now - self._last_error_log >= _RETRY_LOG_SECONDS:
            log.error(
                "payload log: cannot write to %s (%s); %d records are kept in memory and retried every %g s",
                self.directory,
                exc,
                self.depth(),
                self.flush_seconds,
            )
            self._last_error_log = now
        if self._failing_since is None:
            self._failing_since = now

    def _new_journal(self) -> _Journal:
        self._seq += 1
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
        return _Journal(self.directory / f"payloads-{self._pid}-{stamp}-{self._seq:04d}{IN_PROGRESS}")

    def _roll(self) -> None:
        """Finish the open stream (only when it is all on disk) as a Parquet file."""
        journal = self._journal
        if journal is None or journal.unsynced or self._held:
            return
        journal.close()
        self._journal = None
        if journal.size:
            _finish(journal.path)

    def _recover(self) -> None:
        """Convert streams left by writers that died (a crash, ``kill -KILL``) into Parquet files."""
        for path in sorted(self.directory.glob(f"*{SUFFIX}{WRITING}")):  # a roll cut short: its stream remains
            pid = _pid_of(path)
            if pid is not None and (pid == self._pid or not _alive(pid)):
                path.unlink(missing_ok=True)
        for path in sorted(self.directory.glob(f"*{IN_PROGRESS}")):
            pid = _pid_of(path)
            if pid is None or (pid != self._pid and _alive(pid)):
                continue
            claimed = path.with_name(path.name[: -len(IN_PROGRESS)] + STREAM)
            try:
                os.rename(path, claimed)  # one server converts it, even when several start at once
            except OSError:
                continue
            log.info("payload log: %s was left by a process that stopped; converting it", path.name)
            _finish(claimed)

    # -- shutdown ------------------------------------------------------------------------
    def close(self, timeout: float | None = None) -> None:
        """Write everything queued and finish the open file; later records are dropped."""
        if self._closed:
            return
        self._closed = True
        self._stop.set()
        self._thread.join(timeout)
        if self._thread.is_alive():
            log.error("payload log: the writer did not finish within %s s; %d records queued", timeout, self.depth())


def _pid_of(path: Path) -> int | None:
    parts = path.name.split("-")
    return int(parts[1]) if len(parts) > 2 and parts[0] == "payloads" and parts[1].isdigit() else None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A killed worker whose parent died too can linger as a zombie (an init that does not reap, as in
    # many containers): signal 0 still reaches it, but it writes nothing any more.
    try:
        line = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return line[line.rindex(")") + 2 : line.rindex(")") + 3] != "Z"


def _finish(stream: Path) -> None:
    """Rewrite a stream file as Parquet beside it, then remove it; on failure keep it as ``.arrows``."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    name = stream.name
    stem = name[: -len(IN_PROGRESS)] if name.endswith(IN_PROGRESS) else name[: -len(STREAM)]
    final = stream.with_name(stem + SUFFIX)
    tmp = stream.with_name(stem + SUFFIX + WRITING)
    try:
        fd = _create_private(tmp)
        with os.fdopen(fd, "wb") as fh:
            with pq.ParquetWriter(fh, _schema(), compression="zstd") as writer:
                parts: list[Any] = []
                rows = size = 0
                for batch in _stream_batches(stream):  # big row groups, one stream batch (a flush) in memory at a time
                    parts.append(batch)
                    rows += batch.num_rows
                    size += batch.nbytes
                    if rows >= _ROW_GROUP_ROWS or size >= _ROW_GROUP_BYTES:
                        writer.write_table(pa.Table.from_batches(parts))
                        parts, rows, size = [], 0, 0
                if parts:
                    writer.write_table(pa.Table.from_batches(parts))
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, final)
        _fsync_dir(stream.parent)
        stream.unlink()
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        kept = stream.with_name(stem + STREAM)
        if stream != kept:
            try:
                os.replace(stream, kept)
            except OSError:
                kept = stream
        faults.count("payload_log_write")
        log.error("payload log: could not write %s (%s); its records stay readable in %s", final.name, exc, kept.name)
        return
    log.debug("payload log: finished %s", final)


def _stream_batches(path: Path) -> Iterator[Any]:
    """The whole batches of an Arrow stream file; a torn last message (a crash mid-write) is left out."""
    import pyarrow as pa

    with pa.OSFile(str(path), "rb") as source:
        try:
            reader = pa.ipc.open_stream(source)
        except (pa.ArrowInvalid, OSError):  # empty, or cut inside the schema
            return
        while True:
            try:
                yield reader.read_next_batch()
            except StopIteration:
                return
            except (pa.ArrowInvalid, OSError) as exc:
                log.debug("payload log: %s ends in a partial batch (%s); read up to it", path.name, exc)
                return


def payload_files(directory: str | Path) -> list[Path]:
    """Every readable payload file: Parquet, and streams not yet converted (open, left by a crash, or kept)."""
    path = Path(directory)
    if not path.is_dir():
        raise ConfigError(f"{path}: not a payload-log directory (no such directory)")
    parquet = sorted(path.glob(f"*{SUFFIX}"))
    stems = {p.name[: -len(SUFFIX)] for p in parquet}
    streams = []
    for p in sorted([*path.glob(f"*{STREAM}"), *path.glob(f"*{IN_PROGRESS}")]):
        stem = p.name[: -len(IN_PROGRESS)] if p.name.endswith(IN_PROGRESS) else p.name[: -len(STREAM)]
        if stem not in stems:  # else a crash came between writing the Parquet file and removing the stream
            streams.append(p)
    old = sorted(path.glob(f"*{OLD_IN_PROGRESS}"))  # an older modelport's open (or crashed) Parquet file
    return parquet + streams + old


def read_payloads(
    directory: str | Path, *, model: str | None = None, on_skip: Callable[[str], None] | None = None
) -> Any:
    """Every payload record in ``directory`` as one Arrow table, oldest first (finished and open files).

    A file that cannot be read is reported to ``on_skip`` (default: a logged warning) and left out.
    """
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    tables = []
    for f in payload_files(directory):
        if f.name.endswith(SUFFIX):
            tables.append(pq.read_table(f, schema=_schema()))
        elif f.name.endswith(OLD_IN_PROGRESS):
            try:
                tables.append(pq.read_table(f, schema=_schema()))
            except (pa.ArrowInvalid, OSError):
                message = f"skipping {f.name}: an older modelport's Parquet file without its footer (unreadable)"
                (on_skip or log.warning)(message)
        else:
            tables.append(pa.Table.from_batches(list(_stream_batches(f)), schema=_schema()))
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
