"""The request-path series: bucket edges, summing workers' snapshots, and scrapes that never go backwards."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from modelport.observability.hotmetrics import HotMetrics


def _samples(hot: HotMetrics) -> dict[str, float]:
    class Collector:
        def collect(self) -> Any:
            return hot.collect()

    registry = CollectorRegistry()
    registry.register(Collector())
    out = {}
    for family in text_string_to_metric_families(generate_latest(registry).decode()):
        for s in family.samples:
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(s.labels.items()))
            out[f"{s.name}{{{labels}}}"] = s.value
    return out


def test_a_value_on_a_bucket_edge_counts_in_that_bucket() -> None:
    hot = HotMetrics((0.1, 1.0), (1, 2))
    hot.request(("m", "1", "v2", "200"), ("m", "1", "v2"), 0.1)
    hot.request(("m", "1", "v2", "200"), ("m", "1", "v2"), 0.5)
    hot.request(("m", "1", "v2", "400"), ("m", "1", "v2"), 3.0)
    got = _samples(hot)
    base = 'modelport_request_duration_seconds_bucket{le="%s",model="m",protocol="v2",version="1"}'
    assert got[base % "0.1"] == 1.0
    assert got[base % "1.0"] == 2.0
    assert got[base % "+Inf"] == 3.0
    assert got['modelport_request_duration_seconds_sum{model="m",protocol="v2",version="1"}'] == 3.6
    assert got['modelport_requests_total{model="m",protocol="v2",status="200",version="1"}'] == 2.0
    assert got['modelport_requests_total{model="m",protocol="v2",status="400",version="1"}'] == 1.0


def test_snapshots_of_other_workers_are_summed_and_only_live_ones_count_in_flight(tmp_path: Path) -> None:
    hot = HotMetrics((0.1,), (1, 8))
    hot.share(str(tmp_path))
    hot.inference(("m", "1"), 0.05, 4)
    hot.in_flight = 1
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        series = {
            "modelport_batch_size": [[["m", "1"], [0.0, 1.0, 0.0, 3.0]]],
            "modelport_requests": [[["m", "1", "v2", "200"], [5.0]]],
        }
        (tmp_path / f"requests-{other.pid}.json").write_text(
            json.dumps({"pid": other.pid, "in_flight": 2, "series": series})
        )
        dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
        (tmp_path / f"requests-{dead.stdout.strip()}.json").write_text(
            json.dumps({"pid": int(dead.stdout), "in_flight": 7, "series": series})
        )
        got = _samples(hot)
    finally:
        other.kill()
        other.wait()
    assert got['modelport_requests_total{model="m",protocol="v2",status="200",version="1"}'] == 10.0
    assert got['modelport_batch_size_count{model="m",version="1"}'] == 3.0
    assert got['modelport_batch_size_sum{model="m",version="1"}'] == 10.0
    assert got["modelport_requests_in_flight{}"] == 3.0  # 1 here + 2 in the live worker; the dead one's 7 is gone


def test_what_a_scrape_reported_is_on_disk_before_it_returns(tmp_path: Path) -> None:
    """Another worker answering the next scrape reads this file: it must hold at least what we showed."""
    hot = HotMetrics((0.1,), (1,))
    hot.share(str(tmp_path))
    for _ in range(3):
        hot.request(("m", "1", "v1", "200"), ("m", "1", "v1"), 0.01)
    shown = _samples(hot)['modelport_requests_total{model="m",protocol="v1",status="200",version="1"}']
    (snapshot,) = tmp_path.glob("requests-*.json")
    on_disk = json.loads(snapshot.read_text())["series"]["modelport_requests"]
    assert shown == 3.0
    assert on_disk == [[["m", "1", "v1", "200"], [3.0]]]


def test_a_damaged_or_half_written_snapshot_is_skipped(tmp_path: Path) -> None:
    hot = HotMetrics((0.1,), (1,))
    hot.share(str(tmp_path))
    hot.request(("m", "1", "v2", "200"), ("m", "1", "v2"), 0.01)
    (tmp_path / "requests-999999.json").write_text('{"pid": 999999, "in_flight": 3, "ser')
    got = _samples(hot)
    assert got['modelport_requests_total{model="m",protocol="v2",status="200",version="1"}'] == 1.0
    assert got["modelport_requests_in_flight{}"] == 0.0
