"""Prometheus metrics at ``/metrics``, correct across ``--workers`` processes.

One :class:`Metrics` per server process. With several workers, ``serve`` points
``PROMETHEUS_MULTIPROC_DIR`` at a fresh directory before the workers start; each
worker then writes its values there and whichever worker answers a scrape sums
them all: the rarely changing gauges through prometheus_client's multiprocess
mode, the request-path series through snapshots (hotmetrics.py, at most
``SNAPSHOT_EVERY_S`` behind).

The request path pays a cached label lookup and one locked update of plain Python
numbers per request and per model call (hotmetrics.py says why).

The batching code reports inference latency and batch size through
:func:`observe_inference`; it is a no-op until a server has created its Metrics.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from modelport.hotmetrics import SNAPSHOT_GLOB, HotMetrics, Labels
from modelport.observe import RequestRecord

if TYPE_CHECKING:
    from modelport.repository import Repository

__all__ = [
    "CONTENT_TYPE",
    "METRIC_NAMES",
    "MULTIPROC_ENV",
    "Metrics",
    "observe_inference",
]

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
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
)

_active: Metrics | None = None


def multiprocess_dir() -> str | None:
    """The shared directory when running as one of several workers, else None."""
    return os.environ.get(MULTIPROC_ENV) or None


class Metrics:
    """The server's metrics; ``observe`` makes it an :class:`~modelport.observe.Observer`."""

    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, disable_created_metrics

        disable_created_metrics()  # the *_created series double a scrape's size for nothing Prometheus needs
        self.multiprocess = multiprocess_dir() is not None
        # In multiprocess mode values live in the shared files; the metric objects must
        # not also sit in the registry that renders, or every series would count twice.
        self.registry = CollectorRegistry(auto_describe=True)
        reg: Any = None if self.multiprocess else self.registry
        # The four series every request touches live in plain Python (hotmetrics.py).
        self.hot = HotMetrics(LATENCY_BUCKETS, BATCH_BUCKETS)
        if self.multiprocess:
            self.hot.share(str(multiprocess_dir()))
        else:
            self.registry.register(_HotCollector(self.hot))
        self.load_seconds = Gauge(
            "modelport_model_load_seconds",
            "How long the model version took to load.",
            ("model", "version"),
            registry=reg,
            multiprocess_mode="livemax",
        )
        self.model_state = Gauge(
            "modelport_model_state",
            "1 for the state the model version is in (LOADING, AVAILABLE, UNLOADING, FAILED), 0 for the others.",
            ("model", "version", "state"),
            registry=reg,
            multiprocess_mode="livemax",
        )
        self.queue_depth = Gauge(
            "modelport_payload_log_queue_depth",
            "Payload-log records waiting for the background writer.",
            registry=reg,
            multiprocess_mode="livesum",
        )
        self.payload_records = Counter(
            "modelport_payload_log_records",
            "Payload-log records written to Parquet.",
            registry=reg,
        )
        self.stuck_calls = Gauge(
            "modelport_stuck_calls",
            "Model calls still running after their request timed out (504); they hold a thread each.",
            ("model", "version"),
            registry=reg,
            multiprocess_mode="livesum",
        )
        self._request_labels: dict[tuple[str | None, int | None, str, int], tuple[Labels, Labels]] = {}
        self._inference_labels: dict[tuple[str, int], Labels] = {}
        self._lock = threading.Lock()
        self._repository: Repository | None = None
        self._known_versions: set[tuple[str, str]] = set()
        activate(self)

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
        key = (model, version)
        labels = self._inference_labels.get(key)
        if labels is None:
            labels = self._inference_labels[key] = (model, str(version))
        self.hot.inference(labels, seconds, rows)

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
                version = str(v.version)
                seen.add((entry.name, version))
                self.set_model_state(entry.name, v.version, v.state, v.load_seconds)
        with self._lock:
            gone = self._known_versions - seen
            self._known_versions = seen
        for name, version in gone:  # unloaded versions leave the scrape (read 0 in multiprocess files)
            for state in STATES:
                _remove(self.model_state, self.multiprocess, name, version, state)
            _remove(self.load_seconds, self.multiprocess, name, version)

    def set_model_state(self, model: str, version: int, state: str, load_seconds: float | None = None) -> None:
        v = str(version)
        for s in STATES:
            self.model_state.labels(model, v, s).set(1.0 if s == state else 0.0)
        if load_seconds is not None and state != "LOADING":
            self.load_seconds.labels(model, v).set(load_seconds)

    # -- exposition ----------------------------------------------------------------
    def render(self) -> bytes:
        """The scrape body: this process's metrics, or every worker's in multiprocess mode."""
        from prometheus_client import CollectorRegistry, generate_latest

        self.refresh_models()
        if not self.multiprocess:
            return bytes(generate_latest(self.registry))
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        registry.register(_HotCollector(self.hot))
        return bytes(generate_latest(registry))


def _remove(metric: Any, multiprocess: bool, *labels: str) -> None:
    if multiprocess:  # the shared files keep every series; zero it instead
        metric.labels(*labels).set(0.0)
        return
    try:
        metric.remove(*labels)
    except KeyError:
        pass


def activate(metrics: Metrics | None) -> None:
    """Make ``metrics`` the target of :func:`observe_inference` (the newest server wins)."""
    global _active
    _active = metrics


def observe_inference(model: str, version: int, seconds: float, rows: int) -> None:
    """Record one model call: how long it took and how many rows it scored.

    Called by ``DataPlane.infer`` (and the batcher) once per model call, so with
    batching ``rows`` is the merged batch and one call covers several requests.
    """
    metrics = _active
    if metrics is not None:
        metrics.observe_inference(model, version, seconds, rows)


def prepare_multiprocess(directory: str) -> None:
    """Empty ``directory`` of a previous run's files so counters start from zero."""
    from pathlib import Path

    path = Path(directory)
    path.mkdir(parents=True, exist_ok=True)
    for stale in [*path.glob("*.db"), *path.glob(SNAPSHOT_GLOB)]:
        stale.unlink()


class _HotCollector:
    """Hands the request-path series to a prometheus_client registry at scrape time."""

    def __init__(self, hot: HotMetrics) -> None:
        self.hot = hot

    def collect(self) -> Iterator[Any]:
        return self.hot.collect()
