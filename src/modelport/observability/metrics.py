"""Prometheus metrics at ``/metrics``, correct across ``--workers`` processes.

One :class:`Metrics` per server process, made by ``serve`` and handed to whatever records
into it (the app, its data plane, the payload log): nothing is global. Every series lives
in one store (hotmetrics.py); with several workers ``serve`` gives each the same directory,
where each worker's snapshot is added to the scrape whichever worker answers it.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from modelport.observability import faults
from modelport.observability.hotmetrics import Gauge, HotMetrics, Labels, _Family
from modelport.observability.observe import RequestRecord

if TYPE_CHECKING:
    from modelport.serving.repository import Repository

__all__ = ["CONTENT_TYPE", "METRIC_NAMES", "Metrics"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

STATES = ("LOADING", "AVAILABLE", "UNLOADING", "FAILED")

LATENCY_BUCKETS = (
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096, 16384)

# Every series name a scrape can show (histograms add _bucket/_sum/_count, counters _total).
METRIC_NAMES = (
    "modelport_requests_total",
    "modelport_request_duration_seconds",
    "modelport_inference_duration_seconds",
    "modelport_batch_size",
    "modelport_requests_in_flight",
    "modelport_model_load_seconds",
    "modelport_model_state",
    "modelport_payload_log_queue_depth",
    "modelport_payload_log_records_total",
    "modelport_stuck_calls",
    # faults.py: what the server survived
    "modelport_payload_log_write_errors_total",
    "modelport_model_load_failures_total",
    "modelport_repository_poll_failures_total",
)


class _GaugeHandle:
    """``inc(n)`` on one unlabelled gauge (the payload log's queue depth)."""

    def __init__(self, hot: HotMetrics, gauge: Gauge) -> None:
        self._hot = hot
        self._gauge = gauge

    def inc(self, amount: float = 1.0) -> None:
        self._hot.add_gauge(self._gauge, (), amount)


class _CounterHandle:
    """``inc(n)`` on one unlabelled counter (payload-log records written)."""

    def __init__(self, hot: HotMetrics, family: _Family) -> None:
        self._hot = hot
        self._family = family

    def inc(self, amount: float = 1.0) -> None:
        self._hot.count(self._family, (), amount)


class Metrics:
    """The server's metrics; ``observe`` makes it an :class:`~modelport.observability.observe.Observer`.

    ``directory``: where the workers of one server share their snapshots (None: one process).
    """

    def __init__(self, directory: str | None = None) -> None:
        self.hot = HotMetrics(LATENCY_BUCKETS, BATCH_BUCKETS)
        if directory is not None:
            self.hot.share(directory)
        faults.attach(self.hot)
        self.queue_depth = _GaugeHandle(self.hot, self.hot.queue_depth)
        self.payload_records = _CounterHandle(self.hot, self.hot.payload_records)
        self._request_labels: dict[tuple[str | None, int | None, str, int], tuple[Labels, Labels]] = {}
        self._inference_labels: dict[tuple[str, int], Labels] = {}
        self._lock = threading.Lock()
        self._repository: Repository | None = None
        self._known_versions: set[tuple[str, str]] = set()

    # -- request path ------------------------------------------------------------
    def observe(self, record: RequestRecord) -> None:
        key = (record.model, record.version, record.protocol, record.status)
        labels = self._request_labels.get(key)
        if labels is None:
            model, version, protocol, status = key
            m, v = model or "", "" if version is None else str(version)
            labels = self._request_labels[key] = ((m, v, protocol, str(status)), (m, v, protocol))
        self.hot.request(labels[0], labels[1], record.duration)

    def observe_inference(self, model: str, version: int, seconds: float, rows: int) -> None:
        """Record one model call: how long it took and how many rows it scored.

        The data plane calls this once per model call, so with batching ``rows`` is the
        merged batch and one call covers several requests.
        """
        key = (model, version)
        labels = self._inference_labels.get(key)
        if labels is None:
            labels = self._inference_labels[key] = (model, str(version))
        self.hot.inference(labels, seconds, rows)

    def add_stuck_calls(self, model: str, version: int, delta: int) -> None:
        """Calls still running after their request timed out: +1 when one is left behind, -1 when it returns."""
        self.hot.add_gauge(self.hot.stuck_calls, (model, str(version)), float(delta))

    def request_started(self) -> None:
        self.hot.in_flight += 1

    def request_finished(self) -> None:
        self.hot.in_flight -= 1

    # -- models --------------------------------------------------------------------
    def watch(self, repository: Repository) -> None:
        """Report this repository's model states and load times (refreshed on every scrape)."""
        self._repository = repository
        self.refresh_models()

    def refresh_models(self) -> None:
        repository = self._repository
        if repository is None:
            return
        seen: set[tuple[str, str]] = set()
        for entry in repository.entries():
            for v in list(entry.versions.values()):
                seen.add((entry.name, str(v.version)))
                self.set_model_state(entry.name, v.version, v.state, v.load_seconds)
        with self._lock:
            gone = self._known_versions - seen
            self._known_versions = seen
        for name, version in gone:  # unloaded versions leave the scrape
            for state in STATES:
                self.hot.remove_gauge(self.hot.model_state, (name, version, state))
            self.hot.remove_gauge(self.hot.load_seconds, (name, version))

    def set_model_state(self, model: str, version: int, state: str, load_seconds: float | None = None) -> None:
        v = str(version)
        for s in STATES:
            self.hot.set_gauge(self.hot.model_state, (model, v, s), 1.0 if s == state else 0.0)
        if load_seconds is not None and state != "LOADING":
            self.hot.set_gauge(self.hot.load_seconds, (model, v), load_seconds)

    # -- exposition ----------------------------------------------------------------
    def render(self) -> bytes:
        """The scrape body: every worker's series, combined."""
        from prometheus_client import CollectorRegistry, generate_latest

        self.refresh_models()
        registry = CollectorRegistry(auto_describe=False)
        registry.register(_Collector(self.hot))
        return bytes(generate_latest(registry))


class _Collector:
    """Hands the store's series to a prometheus_client registry at scrape time."""

    def __init__(self, hot: HotMetrics) -> None:
        self.hot = hot

    def collect(self) -> Iterator[Any]:
        return self.hot.collect()
