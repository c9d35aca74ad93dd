"""Shared bits for the observability tests: a tiny repository, requests, and tool lookup."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from modelport.observability.observe import RequestRecord

DIABETES_ROW = [0.03, 0.05, 0.06, 0.02, -0.04, -0.03, -0.04, 0.0, 0.02, -0.02]


def v2_body(rows: int = 1) -> dict[str, Any]:
    return {"inputs": [{"name": "input", "shape": [rows, 10], "datatype": "FP64", "data": DIABETES_ROW * rows}]}


def build_small_repository(root: Path) -> Path:
    """Two versions of one regression model, and one broken artifact: fast to load."""
    import joblib
    from sklearn.datasets import load_diabetes
    from sklearn.linear_model import LinearRegression, Ridge

    X, y = load_diabetes(return_X_y=True)
    for version, est in ((1, LinearRegression()), (2, Ridge(alpha=1.0))):
        (root / "diabetes" / str(version)).mkdir(parents=True)
        joblib.dump(est.fit(X, y), root / "diabetes" / str(version) / "model.joblib")
    (root / "broken").mkdir()
    (root / "broken" / "model.joblib").write_bytes(b"not a pickle at all")
    return root


def require_tool(name: str) -> str:
    """The path of a Prometheus binary; outside CI a missing one skips, in CI it fails."""
    path = shutil.which(name)
    if path is not None:
        return path
    message = f"'{name}' is not installed: run `make system-deps` (apt-get install prometheus) to run this test"
    if os.environ.get("CI"):
        pytest.fail(message + "; CI must install it")
    pytest.skip(message)


def wait_for(predicate: Any, timeout: float = 60.0, interval: float = 0.2) -> Any:
    """Poll until ``predicate()`` is truthy; returns its value (not a timing assertion: a deadline)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s; last value: {value!r}")
        time.sleep(interval)


def scrape(url: str) -> dict[str, float]:
    """Parse a /metrics page into {'name{labels}': value} with labels sorted."""
    from prometheus_client.parser import text_string_to_metric_families

    text = httpx.get(url + "/metrics", timeout=10).text
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(sample.labels.items()))
            out[f"{sample.name}{{{labels}}}"] = sample.value
    return out


class SlowModel:
    """Takes ``delay`` seconds to predict and touches ``$MODELPORT_TEST_MARKER`` when it starts,
    so a test knows a request is in flight without guessing."""

    n_features_in_ = 2

    def __init__(self, delay: float) -> None:
        self.delay = delay

    def predict(self, X: Any) -> Any:
        import numpy as np

        marker = os.environ.get("MODELPORT_TEST_MARKER")
        if marker:
            Path(marker).touch()
        time.sleep(self.delay)
        return np.zeros(len(X))


def access_record(**changes: object) -> RequestRecord:
    """A finished request as observers see it (a V2 call to diabetes v2), with ``changes`` applied."""
    base = RequestRecord(
        request_id="client-7",
        method="POST",
        path="/v2/models/diabetes/infer",
        protocol="v2",
        model="diabetes",
        version=2,
        status=200,
        started=1_700_000_000.25,
        duration=0.0034567,
        inputs=None,
        outputs=None,
        error=None,
    )
    for key, value in changes.items():
        setattr(base, key, value)
    return base
