"""Adaptive batching: concurrent requests to one model version share one ``predict``.

Requests are validated before they get here, so a bad request fails alone. Each
queued request waits at most ``max_latency_ms``; with 0 it waits only until the event
loop has read the other requests that arrived with it (one loop tick), so a lone
request pays almost nothing and a burst becomes one call. A batch that reaches
``max_batch_size`` rows runs at once. When the model raises, every request in that
batch gets the error; the next batch is unaffected. A caller that goes away (its
task cancelled) just never reads its rows; the batch still runs for the others.

At most ``max_concurrent`` batches run at once per model version. While they run
(a slow model runs in a thread), new requests queue and leave together as the next
batch as soon as one finishes, so batches grow exactly as much as the load needs.

Traffic that never coalesces (one client sending one request at a time) would pay
the queue's extra loop ticks for nothing. After ``SOLO_AFTER`` batches in a row that
held one request each, requests go straight to the model; every ``PROBE_EVERY``-th
request probes: it and whatever arrives before its flush go through the queue
again, and if that batch coalesces, batching resumes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from modelport.core.signature import Batch

__all__ = ["Batcher"]

# run(batch, outputs): outputs=None means every output; otherwise only those are needed.
RunFn = Callable[[Batch, Sequence[str] | None], Awaitable[Batch]]

SOLO_AFTER = 8
PROBE_EVERY = 256


@dataclass
class _Pending:
    batch: Batch
    rows: int
    outputs: Sequence[str] | None
    future: asyncio.Future[Batch]


@dataclass
class _Group:
    items: list[_Pending] = field(default_factory=list)
    rows: int = 0


def _key(batch: Batch) -> tuple[tuple[str, tuple[int, ...], str], ...]:
    # Only requests whose per-row shapes and dtypes agree can be stacked along axis 0.
    return tuple((name, arr.shape[1:], arr.dtype.str) for name, arr in batch.items())


class Batcher:
    """Coalesces concurrent Batches for one model version; ``run`` does the predict."""

    def __init__(self, run: RunFn, max_batch_size: int, max_latency_ms: float = 0.0, max_concurrent: int = 1) -> None:
        if max_batch_size < 2:
            raise ValueError("max_batch_size must be at least 2 for batching to do anything")
        self.run = run
        self.max_batch_size = max_batch_size
        self.max_latency = max(0.0, max_latency_ms) / 1000.0
        self.max_concurrent = max(1, max_concurrent)
        self._running = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self._groups: dict[tuple[tuple[str, tuple[int, ...], str], ...], _Group] = {}
        self._scheduled = False
        self._solo = 0  # batches in a row that held a single request
        self._direct = 0  # requests sent straight to the model since the last probe
        self._probing = False
        self.batches_run = 0
        self.rows_run = 0
        self.direct_runs = 0

    @property
    def bypassing(self) -> bool:
        """True while traffic does not coalesce and requests skip the queue."""
        return self._solo >= SOLO_AFTER

    async def submit(self, batch: Batch, rows: int, outputs: Sequence[str] | None = None) -> Batch:
        if rows >= self.max_batch_size:
            return self._select(await self.run(batch, outputs), outputs)
        if self._solo >= SOLO_AFTER and not self._probing and not self._groups and not self._running:
            self._direct += 1
            if self._direct < PROBE_EVERY:
                return self._select(await self._run_direct(batch, rows, outputs), outputs)
            self._direct = 0
            self._probing = True  # this request and the others before its flush are queued
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Batch] = loop.create_future()
        key = _key(batch)
        group = self._groups.setdefault(key, _Group())
        group.items.append(_Pending(batch, rows, outputs, future))
        group.rows += rows
        if self._running >= self.max_concurrent:
            return await future  # leaves with the next batch when a running one finishes
        if group.rows >= self.max_batch_size:
            del self._groups[key]
            self._start(group)
        else:
            self._schedule(loop)
        return await future

    async def _run_direct(self, batch: Batch, rows: int, outputs: Sequence[str] | None) -> Batch:
        # Counted as running, so requests arriving meanwhile (a model in a thread) queue and coalesce.
        self._running += 1
        try:
            result = await self.run(batch, outputs)
        finally:
            self._running -= 1
            if self._groups:
                self._schedule(asyncio.get_running_loop())
        self.direct_runs += 1
        self.batches_run += 1
        self.rows_run += rows
        return result

    def _schedule(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._scheduled:
            return
        self._scheduled = True
        if self.max_latency > 0:
            loop.call_later(self.max_latency, self._flush)
        else:
            loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._scheduled = False
        groups, self._groups = self._groups, {}
        for key, group in groups.items():
            for chunk in self._chunks(group):
                if self._running < self.max_concurrent:
                    self._start(chunk)
                else:  # stays queued; the next finished batch flushes it
                    queued = self._groups.setdefault(key, _Group())
                    queued.items.extend(chunk.items)
                    queued.rows += chunk.rows

    def _chunks(self, group: _Group) -> list[_Group]:
        chunks = [_Group()]
        for p in group.items:
            if chunks[-1].rows and chunks[-1].rows + p.rows > self.max_batch_size:
                chunks.append(_Group())
            chunks[-1].items.append(p)
            chunks[-1].rows += p.rows
        return chunks

    def _start(self, group: _Group) -> None:
        self._running += 1
        task = asyncio.get_running_loop().create_task(self._execute(group))
        self._tasks.add(task)  # the loop keeps only weak references to tasks
        task.add_done_callback(self._tasks.discard)

    async def _execute(self, group: _Group) -> None:
        items = group.items
        self._solo = self._solo + 1 if len(items) == 1 else 0
        self._probing = False
        if len(items) == 1:
            merged = items[0].batch
        else:
            merged = {name: np.concatenate([p.batch[name] for p in items]) for name in items[0].batch}
        try:
            result = await self.run(merged, _union(items))
        except BaseException as exc:  # every caller in this batch gets the model's error
            for p in items:
                if not p.future.done():
                    p.future.set_exception(exc)
            if not isinstance(exc, Exception):
                raise
            return
        finally:
            self._running -= 1
            if self._groups:
                self._schedule(asyncio.get_running_loop())
        self.batches_run += 1
        self.rows_run += group.rows
        start = 0
        for p in items:
            end = start + p.rows
            if not p.future.done():  # a cancelled caller simply does not get its rows
                p.future.set_result(self._select({k: v[start:end] for k, v in result.items()}, p.outputs))
            start = end

    @staticmethod
    def _select(result: Batch, outputs: Sequence[str] | None) -> Batch:
        return result if outputs is None else {name: result[name] for name in outputs}


def _union(items: list[_Pending]) -> list[str] | None:
    """The outputs a merged batch must compute: None (all) if any caller wants all."""
    names: dict[str, None] = {}
    for p in items:
        if p.outputs is None:
            return None
        names.update(dict.fromkeys(p.outputs))
    return list(names)
