"""Counters for faults the server survives, so that an operator still sees them in ``/metrics``.

A payload-log write that fails (a full disk), a model version that fails to load (a file
truncated while hot reload reads it) and a repository poll that fails (a storage backend
that drops a download) all leave the server serving what it had. Each is logged where it
happens and counted here: the code that meets a fault has no handle on the server's
:class:`~modelport.observability.metrics.Metrics`, so counts are kept per process and every metrics store
of the process (normally the one) is told of them; a store made later starts from the
process's totals, so a failure during the first load still shows. Across ``--workers`` the
stores' snapshots are summed like every other counter.
"""

from __future__ import annotations

import threading
import weakref
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from modelport.observability.hotmetrics import HotMetrics

__all__ = ["FAULTS", "attach", "count", "forget"]

FAULTS: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "payload_log_write": (
        "modelport_payload_log_write_errors",
        "Payload-log flushes that failed to reach the disk (the records are kept in memory and retried).",
        (),
    ),
    "model_load": (
        "modelport_model_load_failures",
        "Model version loads that failed (the versions already loaded keep serving).",
        ("model",),
    ),
    "repository_poll": (
        "modelport_repository_poll_failures",
        "Repository polls that failed, e.g. a storage backend that failed mid-download (what is loaded keeps serving).",
        (),
    ),
}

_lock = threading.Lock()
_totals: dict[tuple[str, tuple[str, ...]], float] = {}
_stores: weakref.WeakSet[HotMetrics] = weakref.WeakSet()


def attach(store: HotMetrics) -> None:
    """Show the fault counters in ``store`` from now on, starting from this process's totals."""
    with _lock:
        _stores.add(store)
        totals = list(_totals.items())
    for (kind, labels), value in totals:
        store.count(store.faults[kind], labels, value)


def forget() -> None:
    """Drop the totals a forked worker inherited from the process that loaded before forking."""
    with _lock:
        _totals.clear()


def count(kind: str, *labels: str) -> None:
    """Count one fault of ``kind`` (a key of :data:`FAULTS`)."""
    if kind not in FAULTS:
        raise KeyError(f"unknown fault kind {kind!r}; known: {', '.join(FAULTS)}")
    with _lock:
        key = (kind, tuple(labels))
        _totals[key] = _totals.get(key, 0.0) + 1.0
        stores = list(_stores)
    for store in stores:
        store.count(store.faults[kind], tuple(labels), 1.0)
