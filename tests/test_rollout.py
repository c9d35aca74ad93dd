"""Zero-downtime rollout: steady load from 16 clients while versions are added, shifted and removed.

Every answer must succeed and come from a version that was live while the request ran:
added to disk before the answer arrived, and not yet confirmed gone when the request left.
Each answer's value is the version's own number, so the version header cannot lie.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.serving import run_server
from tests.test_hot_reload import ADMIN, wait_for
from tests.versioned import add_version, remove_version, traffic_toml, v2_body, write_config

pytestmark = pytest.mark.slow

CLIENTS = 16
MIN_SECONDS = 20.0
HOLD_SECONDS = 1.2  # how long load runs in each traffic state


@dataclass
class Answer:
    sent: float
    received: float
    status: int
    version: int | None
    value: float | None
    error: str | None


def _client_loop(url: str, stop: threading.Event, out: list[Answer]) -> None:
    body = v2_body()
    with httpx.Client(base_url=url, timeout=30) as client:
        while not stop.is_set():
            sent = time.monotonic()
            try:
                r = client.post("/v2/models/m/infer", json=body)
                received = time.monotonic()
                if r.status_code == 200:
                    data = r.json()
                    version = int(data["model_version"])
                    assert int(r.headers["x-model-version"]) == version
                    out.append(Answer(sent, received, 200, version, data["outputs"][0]["data"][0], None))
                else:
                    out.append(Answer(sent, received, r.status_code, None, None, r.text))
            except Exception as exc:  # a dropped connection is a failed request too
                out.append(Answer(sent, time.monotonic(), 0, None, None, f"{type(exc).__name__}: {exc}"))


def test_zero_downtime_rollout(tmp_path: Path) -> None:
    model = tmp_path / "m"
    add_version(model, 1)
    write_config(model, traffic_toml({1: 100}))
    added: dict[int, float] = {1: -math.inf}
    gone: dict[int, float] = {}
    windows: list[tuple[str, float, float]] = []  # (traffic state, start, end) once the server applied it

    with run_server(tmp_path, "--poll-seconds", "0.25", "--admin-token", "adm") as server:
        url = server.url

        def index() -> list[dict[str, str]]:
            return list(httpx.post(f"{url}/v2/repository/index", headers=ADMIN, timeout=10).json())

        def shares() -> dict[str, float]:
            return dict(httpx.get(f"{url}/v2/models/m", timeout=10).json()["traffic"])

        def shadow() -> str | None:
            return httpx.get(f"{url}/v2/models/m", timeout=10).json().get("shadow_version")

        def cycle(old: int, new: int) -> None:
            # Add: the new version loads and warms up while the old one takes all traffic...
            added[new] = time.monotonic()
            add_version(model, new)
            wait_for(lambda: {"name": "m", "version": str(new), "state": "AVAILABLE", "reason": ""} in index(), "load")
            # ...then shadows it, takes half, takes everything;
            write_config(model, traffic_toml({old: 100}, shadow=new))
            wait_for(lambda: shadow() == str(new), "shadow")
            time.sleep(HOLD_SECONDS)
            write_config(model, traffic_toml({old: 50, new: 50}))
            wait_for(lambda: shares() == {str(old): 0.5, str(new): 0.5}, "50/50")
            t0 = time.monotonic()
            time.sleep(HOLD_SECONDS)
            windows.append((f"{old}/{new}", t0, time.monotonic()))
            write_config(model, traffic_toml({new: 100}))
            wait_for(lambda: shares() == {str(new): 1.0}, "100% on the new version")
            time.sleep(HOLD_SECONDS)
            # and the old one is removed: drained, then unloaded.
            remove_version(model, old)
            wait_for(lambda: all(r["version"] != str(old) for r in index()), "unload")
            gone[old] = time.monotonic()

        stop = threading.Event()
        results: list[list[Answer]] = [[] for _ in range(CLIENTS)]
        threads = [threading.Thread(target=_client_loop, args=(url, stop, results[i])) for i in range(CLIENTS)]
        start = time.monotonic()
        for t in threads:
            t.start()
        try:
            for old in (1, 2, 3):
                cycle(old, old + 1)
            while time.monotonic() - start < MIN_SECONDS:
                time.sleep(0.2)
        finally:
            stop.set()
            for t in threads:
                t.join(timeout=60)
        elapsed = time.monotonic() - start
        final = index()

    answers = [a for r in results for a in r]
    failures = [a for a in answers if a.status != 200]
    assert failures == [], f"{len(failures)} failed of {len(answers)}: {failures[:5]}"
    assert all(results), "every client got answers"
    assert elapsed >= MIN_SECONDS
    assert final == [{"name": "m", "version": "4", "state": "AVAILABLE", "reason": ""}]
    assert "closing anyway" not in server.log()  # every drain finished before its version closed

    for a in answers:
        assert a.version is not None and a.value == float(a.version), a
        assert a.received >= added[a.version], f"version {a.version} answered before it was added: {a}"
        assert a.sent <= gone.get(a.version, math.inf), f"version {a.version} answered after it was gone: {a}"
    for label, t0, t1 in windows:
        seen = {a.version for a in answers if a.sent >= t0 and a.received <= t1}
        assert seen == {int(v) for v in label.split("/")}, (label, seen)
    print(f"\nrollout: {len(answers)} requests from {CLIENTS} clients in {elapsed:.1f} s, 0 failed")
