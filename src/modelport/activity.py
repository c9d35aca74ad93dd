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

from modelport.observe import RequestRecord

__all__ = ["BUCKET_SECONDS", "Activity"]

BUCKET_SECONDS = 10
BUCKETS = 60
RECENT = 20
# Latency bin edges in seconds: 50 µs to ~100 s, 4 bins per doubling.
_EDGES = [50e-6 * 2 ** (i / 4) for i in range(85)]
_MIDS = np.array([_EDGES[0] / 2] + [(a * b) ** 0.5 for a, b in zip(_EDGES, _EDGES[1:], strict=False)] + [_EDGES[-1]])


class _Ring:
    __slots__ = ("counts", "errors", "client_errors", "hist", "tick")

    def __init__(self, tick: int) -> None:
        self.counts = np.zeros(BUCKETS, dtype=np.int64)
        self.errors = np.zeros(BUCKETS, dtype=np.int64)
        self.client_errors = np.zeros(BUCKETS, dtype=np.int64)
        self.hist = np.zeros((BUCKETS, len(_EDGES) + 1), dtype=np.int64)
        self.tick = tick

    def advance(self, tick: int) -> None:
        """Zero the buckets between the last tick seen and ``tick`` (all of them after a long pause)."""
        if tick <= self.tick:
            return
        steps = min(tick - self.tick, BUCKETS)
        for t in range(self.tick + 1, self.tick + 1 + steps):
            i = t % BUCKETS
            self.counts[i] = self.errors[i] = self.client_errors[i] = 0
            self.hist[i] = 0
        self.tick = tick


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
        """Series oldest first, one point per bucket: requests/s, 5xx and 4xx per s, p50 and p99 in ms."""
        now_tick = int(self._clock() // BUCKET_SECONDS)
        order = [(now_tick - BUCKETS + 1 + k) % BUCKETS for k in range(BUCKETS)]
        out: dict[str, Any] = {}
        with self._lock:
            for (model, version), ring in self._rings.items():
                ring.advance(now_tick)
                counts = ring.counts[order]
                hist = ring.hist[order]
                cum = np.cumsum(hist, axis=1)
                p50 = _percentile(cum, counts, 0.5)
                p99 = _percentile(cum, counts, 0.99)
                out.setdefault(model, {})[str(version)] = {
                    "requests_per_s": (counts / BUCKET_SECONDS).round(3).tolist(),
                    "errors_per_s": (ring.errors[order] / BUCKET_SECONDS).round(3).tolist(),
                    "client_errors_per_s": (ring.client_errors[order] / BUCKET_SECONDS).round(3).tolist(),
                    "p50_ms": p50,
                    "p99_ms": p99,
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


def _percentile(cum: np.ndarray, counts: np.ndarray, q: float) -> list[float | None]:
    """Per bucket, the latency (ms) at quantile ``q`` from the histogram; None for an empty bucket."""
    rank = np.ceil(counts * q).astype(np.int64)
    idx = np.argmax(cum >= np.maximum(rank, 1)[:, None], axis=1)
    values = (_MIDS[idx] * 1000).round(3)
    return [float(v) if c else None for v, c in zip(values, counts, strict=True)]


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
