"""The one metrics store: counters, histograms and gauges kept in plain Python, rendered at scrape time.

prometheus_client updates cost 2-5 µs each in one process and 5-15 µs each in its
multiprocess mode (a lock and an mmap write per bucket, sum and count); a request touches
four series, which was a tenth of the whole request. Here an update is a dict lookup, a
bisect and three additions under an uncontended lock (~1 µs together). prometheus_client
is used only to write the exposition format.

Several workers combine one way: each writes a snapshot of every series it holds to
``<directory>/requests-<pid>.json`` every ``SNAPSHOT_EVERY_S`` (and before it answers a
scrape); the worker answering a scrape adds the other workers' snapshots to its own
values. Counters and histograms are summed over every snapshot, those of exited workers
included, so a count never goes backwards when a worker is replaced; gauges come from live
workers only (summed, or the largest for per-model states).
"""

from __future__ import annotations

import json
import os
import threading
from bisect import bisect_left
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from modelport.observability.faults import FAULTS

__all__ = ["SNAPSHOT_EVERY_S", "SNAPSHOT_GLOB", "Gauge", "HotMetrics"]

SNAPSHOT_EVERY_S = 0.5
SNAPSHOT_GLOB = "requests-*.json"

Labels = tuple[str, ...]


class _Family:
    """One counter or histogram (fixed bucket bounds) by label values."""

    __slots__ = ("bounds", "doc", "labels", "name", "series")

    def __init__(self, name: str, doc: str, labels: tuple[str, ...], bounds: tuple[float, ...] | None) -> None:
        self.name = name
        self.doc = doc
        self.labels = labels
        self.bounds = bounds  # None for a counter
        # counter: labels -> [count]; histogram: labels -> [per-bucket counts..., +Inf count, sum]
        self.series: dict[Labels, list[float]] = {}

    def new_row(self) -> list[float]:
        return [0.0] if self.bounds is None else [0.0] * (len(self.bounds) + 2)


class Gauge:
    """A gauge by label values; across workers the live ones are summed (``"sum"``) or the largest wins (``"max"``)."""

    __slots__ = ("combine", "doc", "labels", "name", "values")

    def __init__(self, name: str, doc: str, labels: tuple[str, ...], combine: str) -> None:
        self.name = name
        self.doc = doc
        self.labels = labels
        self.combine = combine
        self.values: dict[Labels, float] = {}


class HotMetrics:
    """Every series modelport exports; ``collect`` yields prometheus_client metric families."""

    def __init__(self, latency_buckets: tuple[float, ...], batch_buckets: tuple[float, ...]) -> None:
        self.requests = _Family(
            "modelport_requests",
            "Requests answered, by model, version, protocol (v1, v2, grpc, other) and HTTP status.",
            ("model", "version", "protocol", "status"),
            None,
        )
        self.request_seconds = _Family(
            "modelport_request_duration_seconds",
            "Time from request arrival to response sent.",
            ("model", "version", "protocol"),
            latency_buckets,
        )
        self.inference_seconds = _Family(
            "modelport_inference_duration_seconds",
            "Time the model spent predicting one batch.",
            ("model", "version"),
            latency_buckets,
        )
        self.batch_size = _Family(
            "modelport_batch_size", "Rows per batch handed to the model.", ("model", "version"), batch_buckets
        )
        self.payload_records = _Family(
            "modelport_payload_log_records", "Payload-log records written to Parquet.", (), None
        )
        # Faults the server survives (faults.py): counted where they happen, shown here.
        self.faults = {kind: _Family(name, doc, labels, None) for kind, (name, doc, labels) in FAULTS.items()}
        self.families = (
            self.requests,
            self.request_seconds,
            self.inference_seconds,
            self.batch_size,
            self.payload_records,
            *self.faults.values(),
        )
        self.load_seconds = Gauge(
            "modelport_model_load_seconds", "How long the model version took to load.", ("model", "version"), "max"
        )
        self.model_state = Gauge(
            "modelport_model_state",
            "1 for the state the model version is in (LOADING, AVAILABLE, UNLOADING, FAILED), 0 for the others.",
            ("model", "version", "state"),
            "max",
        )
        self.queue_depth = Gauge(
            "modelport_payload_log_queue_depth", "Payload-log records waiting for the background writer.", (), "sum"
        )
        self.queue_depth.values[()] = 0.0
        self.stuck_calls = Gauge(
            "modelport_stuck_calls",
            "Model calls still running after their request timed out (504); they hold a thread each.",
            ("model", "version"),
            "sum",
        )
        self.gauges = (self.load_seconds, self.model_state, self.queue_depth, self.stuck_calls)
        self.in_flight = 0  # a plain attribute: two per request, no lock (one event loop per worker)
        self._lock = threading.Lock()
        self._dir: Path | None = None
        self._changed = False

    # -- request path ------------------------------------------------------------
    def request(self, counted: Labels, timed: Labels, seconds: float) -> None:
        """One answered request: its counter and its duration."""
        with self._lock:
            row = self.requests.series.get(counted)
            if row is None:
                row = self.requests.series[counted] = [0.0]
            row[0] += 1.0
            _observe(self.request_seconds, timed, seconds)
            self._changed = True

    def inference(self, labels: Labels, seconds: float, rows: int) -> None:
        """One model call: its duration and how many rows it scored."""
        with self._lock:
            _observe(self.inference_seconds, labels, seconds)
            _observe(self.batch_size, labels, rows)
            self._changed = True

    # -- everything else ---------------------------------------------------------------
    def count(self, family: _Family, labels: Labels, amount: float) -> None:
        with self._lock:
            row = family.series.get(labels)
            if row is None:
                row = family.series[labels] = [0.0]
            row[0] += amount
            self._changed = True

    def set_gauge(self, gauge: Gauge, labels: Labels, value: float) -> None:
        with self._lock:
            gauge.values[labels] = value
            self._changed = True

    def add_gauge(self, gauge: Gauge, labels: Labels, amount: float) -> None:
        with self._lock:
            gauge.values[labels] = gauge.values.get(labels, 0.0) + amount
            self._changed = True

    def remove_gauge(self, gauge: Gauge, labels: Labels) -> None:
        with self._lock:
            gauge.values.pop(labels, None)
            self._changed = True

    # -- several workers ------------------------------------------------------------
    def share(self, directory: str) -> None:
        """Write snapshots to ``directory`` (every ``SNAPSHOT_EVERY_S``) and add its others at scrape time."""
        self._dir = Path(directory)
        thread = threading.Thread(target=self._snapshot_loop, name="modelport-metrics-snapshot", daemon=True)
        thread.start()

    def _snapshot_loop(self) -> None:
        event = threading.Event()
        last_in_flight = self.in_flight
        while not event.wait(SNAPSHOT_EVERY_S):
            if self.in_flight != last_in_flight:
                last_in_flight = self.in_flight
                self._changed = True
            try:
                self.write_snapshot()
            except OSError:  # the directory went away (server shutting down): stop quietly
                return

    def _state(self) -> dict[str, Any]:
        with self._lock:
            return {
                "pid": os.getpid(),
                "in_flight": self.in_flight,
                "series": {f.name: [[list(k), list(v)] for k, v in f.series.items()] for f in self.families},
                "gauges": {g.name: [[list(k), v] for k, v in g.values.items()] for g in self.gauges},
            }

    def write_snapshot(self, state: dict[str, Any] | None = None) -> None:
        """Share this worker's series (``state``, or the current ones when something changed)."""
        if self._dir is None:
            return
        if state is None:
            if not self._changed:
                return
            self._changed = False
            state = self._state()
        target = self._dir / f"requests-{state['pid']}.json"
        tmp = target.with_suffix(".tmp")
        tmp.write_text(json.dumps(state))
        os.replace(tmp, target)

    # -- exposition ----------------------------------------------------------------
    def collect(self) -> Iterator[Any]:
        """Metric families for a scrape: this process's series, with every other worker's snapshot added."""
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

        states = self._gather()
        in_flight = 0.0
        totals: dict[str, dict[Labels, list[float]]] = {f.name: {} for f in self.families}
        gauges: dict[str, dict[Labels, float]] = {g.name: {} for g in self.gauges}
        combine = {g.name: g.combine for g in self.gauges}
        for state, live in states:
            if live:
                in_flight += state["in_flight"]
                for name, rows in state.get("gauges", {}).items():
                    into_g = gauges.get(name)
                    if into_g is None:
                        continue
                    for labels, value in rows:
                        key = tuple(labels)
                        have_g = into_g.get(key)
                        if have_g is None:
                            into_g[key] = value
                        else:
                            into_g[key] = have_g + value if combine[name] == "sum" else max(have_g, value)
            for name, rows in state["series"].items():
                into = totals.get(name)
                if into is None:
                    continue
                for labels, values in rows:
                    key = tuple(labels)
                    have = into.get(key)
                    if have is None:
                        into[key] = list(values)
                    else:
                        for i, v in enumerate(values):
                            have[i] += v
        for family in self.families:
            series = totals[family.name]
            if family.bounds is None:
                counter = CounterMetricFamily(family.name, family.doc, labels=family.labels)
                for labels, values in sorted(series.items()):
                    counter.add_metric(labels, values[0])
                if not family.labels and not series:
                    counter.add_metric((), 0.0)
                yield counter
                continue
            hist = HistogramMetricFamily(family.name, family.doc, labels=family.labels)
            for labels, values in sorted(series.items()):
                running = 0.0
                buckets = []
                for bound, n in zip(family.bounds, values, strict=False):
                    running += n
                    buckets.append((_le(bound), running))
                running += values[len(family.bounds)]
                buckets.append(("+Inf", running))
                hist.add_metric(labels, buckets, values[-1])
            yield hist
        gauge = GaugeMetricFamily("modelport_requests_in_flight", "Requests received and not yet answered.")
        gauge.add_metric([], in_flight)
        yield gauge
        for g in self.gauges:
            family_g = GaugeMetricFamily(g.name, g.doc, labels=g.labels)
            for labels, value in sorted(gauges[g.name].items()):
                family_g.add_metric(labels, value)
            yield family_g

    def _gather(self) -> list[tuple[dict[str, Any], bool]]:
        own = self._state()
        if self._dir is None:
            return [(own, True)]
        # What a scrape reports for this worker is first written to its snapshot, so no later
        # scrape (answered by another worker from that file) can show a smaller count.
        self.write_snapshot(own)
        out = [(own, True)]
        for path in self._dir.glob(SNAPSHOT_GLOB):
            try:
                state = json.loads(path.read_text())
            except (OSError, ValueError):  # half-written by a crash, or removed meanwhile
                continue
            pid = int(state.get("pid", -1))
            if pid == own["pid"]:
                continue
            out.append((state, _alive(pid)))
        return out


def _observe(family: _Family, labels: Labels, value: float) -> None:
    bounds = family.bounds
    assert bounds is not None
    row = family.series.get(labels)
    if row is None:
        row = family.series[labels] = family.new_row()
    row[bisect_left(bounds, value)] += 1.0  # buckets are "less than or equal"
    row[-1] += value


def _le(bound: float) -> str:
    from prometheus_client.utils import floatToGoString

    return str(floatToGoString(bound))  # the same "le" labels prometheus_client's own histograms write


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
