"""The last ten minutes per model version, for the operations view (``/ui/ops``).

Prometheus keeps the long history; this keeps just enough in memory to draw request rate,
error rate and latency percentiles without a Prometheus server. Requests land in 10-second
buckets of a ring (60 buckets), latency in a fixed log-spaced histogram per bucket, so an
observation is a few integer increments and a snapshot for 16 models is a handful of numpy
reductions. Each worker process keeps its own ring: with ``--workers N`` the view shows the
worker that answered the poll (the snapshot says which).
"""

from __future__ import annotations

import bisect
import os
import threading
import time
from collections import deque
from typing import Any

import numpy as np

from modelport.observability.observe import RequestRecord

__all__ = ["BUCKET_SECONDS", "Activity"]

BUCKET_SECONDS = 10
BUCKETS = 60
RECENT = 20
# Latency bin edges in seconds: 50 µs to ~100 s, 4 bins per doubling.
_EDGES = [50e-6 * 2 ** (i / 4) for i in range(85)]
_MIDS = np.array([_EDGES[0] / 2] + [(a * b) ** 0.5 for a, b in zip(_EDGES, _EDGES[1:], strict=False)] + [_EDGES[-1]])


class _Ring:
    """One model version's buckets. Percentiles of a bucket are computed once, when it closes."""

    __slots__ = ("client_errors", "closed", "counts", "errors", "hist", "p50", "p99", "tick")

    def __init__(self, tick: int) -> None:
        self.counts = np.zeros(BUCKETS, dtype=np.int64)
        self.errors = np.zeros(BUCKETS, dtype=np.int64)
        self.client_errors = np.zeros(BUCKETS, dtype=np.int64)
        self.hist = np.zeros((BUCKETS, len(_EDGES) + 1), dtype=np.int64)
        self.p50 = np.full(BUCKETS, np.nan)
        self.p99 = np.full(BUCKETS, np.nan)
        self.tick = tick
        self.closed = tick - 1  # buckets up to this tick have their percentiles

    def advance(self, tick: int) -> None:
        """Zero the buckets between the last tick seen and ``tick`` (all of them after a long pause)."""
        if tick <= self.tick:
            return
        steps = min(tick - self.tick, BUCKETS)
        for t in range(self.tick + 1, self.tick + 1 + steps):
            i = t % BUCKETS
            self.counts[i] = self.errors[i] = self.client_errors[i] = 0
            self.hist[i] = 0
            self.p50[i] = self.p99[i] = np.nan
        self.tick = tick

    def percentiles(self) -> None:
        """Fill p50/p99 for buckets closed since the last call, and (always) the open one."""
        first = max(self.closed + 1, self.tick - BUCKETS + 1)
        rows = [t % BUCKETS for t in range(first, self.tick + 1)]
        counts = self.counts[rows]
        cum = np.cumsum(self.hist[rows], axis=1)
        self.p50[rows] = _percentile(cum, counts, 0.5)
        self.p99[rows] = _percentile(cum, counts, 0.99)
        self.closed = self.tick - 1


class Activity:
    """An observer: per (model, version) request counts, errors and latency over the last ten minutes."""

    def __init__(self, keep_payloads: bool = False, clock: Any = time.time) -> None:
        self._rings: dict[tuple[str, int], _Ring] = {}
        self._recent: deque[dict[str, Any]] = deque(maxlen=RECENT)
        self._lock = threading.Lock()  # gRPC and REST observe from the same loop; snapshots may come from threads
        self._clock = clock
        self.keep_payloads = keep_payloads
        self.started = clock()

    def observe(self, record: RequestRecord) -> None:
        if record.model is None or record.version is None:
            return
        tick = int(record.started // BUCKET_SECONDS)
        key = (record.model, record.version)
        with self._lock:
            ring = self._rings.get(key)
            if ring is None:
                ring = self._rings[key] = _Ring(tick)
            ring.advance(tick)
            i = tick % BUCKETS
            ring.counts[i] += 1
            if record.status >= 500:
                ring.errors[i] += 1
            elif record.status >= 400:
                ring.client_errors[i] += 1
            ring.hist[i, bisect.bisect_left(_EDGES, record.duration)] += 1
            self._recent.append(self._summary(record))

    def _summary(self, record: RequestRecord) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "id": record.request_id,
            "time": record.started,
            "model": record.model,
            "version": record.version,
            "protocol": record.protocol,
            "status": record.status,
            "ms": round(record.duration * 1000, 3),
        }
        if record.error:
            entry["error"] = record.error
        if self.keep_payloads:
            entry["inputs"] = _preview(record.inputs)
            entry["outputs"] = _preview(record.outputs)
        return entry

    def snapshot(self) -> dict[str, Any]:
        """Series oldest first, one point per bucket: requests/s, 5xx and 4xx per s, p50 and p99 in ms.

        Arrays stay numpy (the server's JSON encoder writes them natively, NaN as null for an
        empty bucket): a snapshot of 16 busy models costs well under a millisecond.
        """
        now_tick = int(self._clock() // BUCKET_SECONDS)
        order = (np.arange(now_tick - BUCKETS + 1, now_tick + 1)) % BUCKETS
        out: dict[str, Any] = {}
        with self._lock:
            for (model, version), ring in self._rings.items():
                ring.advance(now_tick)
                ring.percentiles()
                counts = ring.counts[order]
                out.setdefault(model, {})[str(version)] = {
                    "requests_per_s": counts / BUCKET_SECONDS,
                    "errors_per_s": ring.errors[order] / BUCKET_SECONDS,
                    "client_errors_per_s": ring.client_errors[order] / BUCKET_SECONDS,
                    "p50_ms": ring.p50[order],
                    "p99_ms": ring.p99[order],
                    "total": int(counts.sum()),
                }
            recent = list(self._recent)
        return {
            "bucket_seconds": BUCKET_SECONDS,
            "buckets": BUCKETS,
            "now": self._clock(),
            "worker_pid": os.getpid(),
            "series": out,
            "recent": recent[::-1],
        }


def _percentile(cum: np.ndarray, counts: np.ndarray, q: float) -> np.ndarray:
    """Per bucket, the latency (ms) at quantile ``q`` from the histogram; NaN for an empty bucket."""
    rank = np.maximum(np.ceil(counts * q), 1)
    idx = np.argmax(cum >= rank[:, None], axis=1)
    return np.where(counts > 0, (_MIDS[idx] * 1000).round(3), np.nan)


def _preview(batch: Any, limit: int = 8) -> Any:
    """The first rows of each tensor, small enough for a table cell."""
    if not batch:
        return None
    out = {}
    for name, value in batch.items():
        arr = np.asarray(value)
        head = arr[:limit] if arr.ndim else arr
        out[name] = head.tolist() if head.dtype != object else [str(v)[:200] for v in head.ravel()[:limit]]
    return out
