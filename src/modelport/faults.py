"""Counters for faults the server survives, so that an operator still sees them in ``/metrics``.

A payload-log write that fails (a full disk), a model version that fails to load (a file
truncated while hot reload reads it) and a repository poll that fails (a storage backend
that drops a download) all leave the server serving what it had. Each is logged where it
happens and counted here.

The counters are prometheus_client objects made on first use, like the server's other rare
counters: with ``--workers`` they go to the shared multiprocess files, which every scrape
sums; in one process they are added to the registry of the server's :class:`Metrics`
(the newest one, as :func:`modelport.metrics.observe_inference` uses).
"""

from __future__ import annotations

import threading
import weakref
from typing import Any

__all__ = ["FAULTS", "count", "expose"]

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
_counters: dict[str, Any] = {}
_registries: weakref.WeakSet[Any] = weakref.WeakSet()


def _counter(kind: str) -> Any:
    counter = _counters.get(kind)
    if counter is None:
        from prometheus_client import Counter

        name, doc, labels = FAULTS[kind]
        counter = _counters[kind] = Counter(name, doc, labels, registry=None)
    return counter


def expose() -> None:
    """Make every fault counter part of the active server's scrape (at 0 until something fails)."""
    from modelport import metrics as metrics_module

    metrics = getattr(metrics_module, "_active", None)
    with _lock:
        for kind in FAULTS:
            _counter(kind)
        if metrics is None or metrics.multiprocess or metrics.registry in _registries:
            return
        for counter in _counters.values():
            metrics.registry.register(counter)
        _registries.add(metrics.registry)


def count(kind: str, *labels: str) -> None:
    """Count one fault of ``kind`` (a key of :data:`FAULTS`)."""
    expose()
    counter = _counters[kind]
    (counter.labels(*labels) if labels else counter).inc()
