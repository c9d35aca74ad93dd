"""What a payload-log flush costs the writer thread, per file layout, and what the request path pays.

A flush writes what one ``flush_seconds`` (1 s) of traffic queued: K records. Side by side,
interleaved, medians of ROUNDS rounds:

- parquet-append: a row group appended to an open Parquet file, no fsync (modelport before:
  unreadable after a crash until the file was closed);
- stream+fsync: an Arrow IPC stream batch appended and fsynced (modelport now);
- parquet-file+fsync: one small closed Parquet file per flush, fsynced and renamed (the other
  crash-safe layout the issue names).

Then the roll (rewriting a stream as Parquet) per record, and ``PayloadLog.observe`` on the
request path while the writer thread flushes (p50/p99/max of single calls).

PYTHONPATH=src python benchmarks/payload_log.py [--rounds 7]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from modelport.observability.observe import RequestRecord
from modelport.observability.payload_log import PayloadLog, _finish, _Journal, _record_batch, _schema


def record(i: int) -> RequestRecord:
    return RequestRecord(
        f"req-{i}",
        "POST",
        "/v2/models/wine/infer",
        "v2",
        "wine",
        1,
        200,
        time.time(),
        0.0004,
        {"input": np.full((1, 13), 0.25 + i)},
        {"predict": np.array([i % 3]), "predict_proba": np.array([[0.2, 0.3, 0.5]])},
        None,
    )


def parquet_append(directory: Path, batches: list[pa.RecordBatch]) -> list[float]:
    times = []
    with pq.ParquetWriter(directory / "append.parquet", _schema(), compression="zstd") as writer:
        for b in batches:
            t = time.perf_counter()
            writer.write_table(pa.Table.from_batches([b]))
            times.append(time.perf_counter() - t)
    return times


def stream_fsync(directory: Path, batches: list[pa.RecordBatch]) -> list[float]:
    times = []
    journal = _Journal(directory / "s.arrows.inprogress")
    for b in batches:
        t = time.perf_counter()
        journal.append(b)
        journal.sync()
        times.append(time.perf_counter() - t)
    journal.close()
    return times


def parquet_files(directory: Path, batches: list[pa.RecordBatch]) -> list[float]:
    times = []
    for n, b in enumerate(batches):
        t = time.perf_counter()
        tmp = directory / f"f{n}.parquet.tmp"
        with open(tmp, "wb") as fh:
            pq.write_table(pa.Table.from_batches([b]), fh, compression="zstd")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, directory / f"f{n}.parquet")
        fd = os.open(directory, os.O_RDONLY)
        os.fsync(fd)
        os.close(fd)
        times.append(time.perf_counter() - t)
    return times


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--flushes", type=int, default=20)
    args = parser.parse_args()
    layouts = {"parquet-append": parquet_append, "stream+fsync": stream_fsync, "parquet-file+fsync": parquet_files}
    print(f"per flush, median of {args.rounds} rounds x {args.flushes} flushes (ms); disk: {tempfile.gettempdir()}")
    print(f"{'records/flush':>14} {'encode':>8} " + " ".join(f"{k:>19}" for k in layouts) + "  file bytes/record")
    _record_batch([record(0)])  # warm up (imports, first JSON encode) outside the timings
    for k in (1, 100, 1000):
        records = [record(i) for i in range(k)]
        t = time.perf_counter()
        batches = [_record_batch(records) for _ in range(args.flushes)]
        encode = (time.perf_counter() - t) / args.flushes
        results: dict[str, list[float]] = {name: [] for name in layouts}
        sizes: dict[str, int] = {}
        for _ in range(args.rounds):
            for name, fn in layouts.items():  # interleaved: each round runs every layout once
                with tempfile.TemporaryDirectory() as tmp:
                    results[name].append(statistics.median(fn(Path(tmp), batches)))
                    sizes[name] = sum(p.stat().st_size for p in Path(tmp).iterdir())
        cells = " ".join(f"{statistics.median(results[n]) * 1e3:19.3f}" for n in layouts)
        per_record = " / ".join(f"{sizes[n] / (k * args.flushes):.0f}" for n in layouts)
        print(f"{k:>14} {encode * 1e3:8.3f} {cells}  {per_record}")

    # The roll: rewrite a 100,000-record stream as one Parquet file.
    with tempfile.TemporaryDirectory() as tmp:
        stream = Path(tmp) / "payloads-1-x-0001.arrows.inprogress"
        journal = _Journal(stream)
        for _ in range(100):
            journal.append(_record_batch([record(i) for i in range(1000)]))
        journal.sync()
        journal.close()
        size = stream.stat().st_size
        t = time.perf_counter()
        _finish(stream)
        took = time.perf_counter() - t
        (done,) = Path(tmp).glob("*.parquet")
        print(
            f"roll: 100,000 records, stream {size / 2**20:.1f} MiB -> Parquet {done.stat().st_size / 2**20:.1f} MiB "
            f"in {took * 1e3:.0f} ms ({took / 100_000 * 1e6:.1f} us/record), on the writer thread"
        )

    # The request path: single observe() calls, about a thousand a second, while the writer thread flushes.
    with tempfile.TemporaryDirectory() as tmp:
        log = PayloadLog(tmp, flush_seconds=0.2)
        recs = [record(i) for i in range(1000)]
        calls: list[float] = []
        end = time.perf_counter() + 3.0
        n = 0
        while time.perf_counter() < end:
            r = recs[n % 1000]
            t = time.perf_counter_ns()
            log.observe(r)
            calls.append((time.perf_counter_ns() - t) / 1e3)
            n += 1
            time.sleep(0.0002)
        log.close()
        calls.sort()
        print(
            f"request path: PayloadLog.observe, {len(calls) / 3:,.0f} calls/s for 3 s while the writer flushes: "
            f"p50 {calls[len(calls) // 2]:.2f} us, p99 {calls[int(len(calls) * 0.99)]:.2f} us, max {calls[-1]:.0f} us"
        )


if __name__ == "__main__":
    main()
