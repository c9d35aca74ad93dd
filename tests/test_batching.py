"""Adaptive batching: rows go back to the caller that sent them, errors stay in their batch."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from modelport.core.config import BatchingConfig, ModelConfig
from modelport.core.errors import ModelFailed
from modelport.core.model import Model
from modelport.core.signature import Batch, Signature, TensorSpec
from modelport.protocols.rest.app import ModelportApp
from modelport.serving.batching import Batcher
from modelport.serving.dataplane import BatchingPolicy, DataPlane
from modelport.serving.repository import Lease, ModelEntry, Repository, VersionEntry


class Doubler:
    """Returns 2*x and the size of the batch each row was predicted in."""

    signature = Signature(
        (TensorSpec("x", "FP64", (-1, 2)),), (TensorSpec("y", "FP64", (-1, 2)), TensorSpec("n", "INT64", (-1,)))
    )
    info: dict[str, Any] = {}

    def __init__(self, delay: float = 0.0, fail_on: float | None = None) -> None:
        self.delay = delay
        self.fail_on = fail_on
        self.sizes: list[int] = []
        self.threads: set[str] = set()

    def predict(self, batch: Batch) -> Batch:
        x = batch["x"]
        self.sizes.append(len(x))
        self.threads.add(threading.current_thread().name)
        if self.delay:
            time.sleep(self.delay)
        if self.fail_on is not None and (x == self.fail_on).any():
            raise ValueError(f"cannot predict {self.fail_on}")
        return {"y": x * 2, "n": np.full(len(x), len(x))}


def _model(predictor: Doubler, batching: BatchingConfig | None = None) -> Model:
    return Model("dbl", 1, predictor, flavor="test", source="memory", batching=batching)


class _Repo(Repository):
    def __init__(self, model: Model) -> None:
        super().__init__("memory")
        self.model = model
        self.version = VersionEntry(1, Path("."), "AVAILABLE", model=model)

    def get(self, name: str, version: int | str | None = None) -> Model:
        return self.model

    def has(self, name: str) -> bool:
        return True

    def entry(self, name: str) -> ModelEntry:
        return ModelEntry(name, Path("."), ModelConfig(), {1: self.version})

    def lease(self, name: str, version: int | str | None = None, headers: Mapping[bytes, bytes] | None = None) -> Lease:
        return Lease.take(self.version, self.model)


async def test_rows_return_to_their_callers_under_concurrency() -> None:
    predictor = Doubler()
    model = _model(predictor, BatchingConfig(max_batch_size=32, max_latency_ms=2.0))
    plane = DataPlane(_Repo(model))
    inputs = [np.array([[i, -i]] * (1 + i % 3), dtype=np.float64) for i in range(400)]
    results = await asyncio.gather(*(plane.predict(model, {"x": x}) for x in inputs))
    for x, out in zip(inputs, results, strict=True):
        # Doubling is exact in binary floating point, batched or not: equal by construction.
        np.testing.assert_array_equal(out["y"], x * 2)
    assert max(predictor.sizes) > 1, "concurrent requests should have shared predict calls"
    assert max(predictor.sizes) <= 32 + 2  # a batch closes once it reaches max_batch_size
    assert sum(predictor.sizes) == sum(len(x) for x in inputs)


async def test_requested_outputs_per_caller() -> None:
    model = _model(Doubler(), BatchingConfig(max_batch_size=8))
    plane = DataPlane(_Repo(model))
    a, b = await asyncio.gather(
        plane.predict(model, {"x": np.ones((1, 2))}, ["y"]), plane.predict(model, {"x": np.ones((1, 2))}, ["n"])
    )
    assert list(a) == ["y"] and list(b) == ["n"]


async def test_model_error_fails_only_its_batch() -> None:
    predictor = Doubler(fail_on=13.0)
    model = _model(predictor, BatchingConfig(max_batch_size=4, max_latency_ms=5.0))
    plane = DataPlane(_Repo(model))
    first = [plane.predict(model, {"x": np.array([[v, v]], dtype=np.float64)}) for v in (1.0, 13.0, 2.0, 3.0)]
    results = await asyncio.gather(*first, return_exceptions=True)
    assert all(isinstance(r, ModelFailed) for r in results)
    assert "cannot predict 13.0" in str(results[0])
    after = await asyncio.gather(*(plane.predict(model, {"x": np.array([[v, v]])}) for v in (4.0, 5.0)))
    assert [float(r["y"][0, 0]) for r in after] == [8.0, 10.0]


async def test_cancelled_caller_does_not_break_the_batch() -> None:
    predictor = Doubler(delay=0.05)
    batcher_model = _model(predictor, BatchingConfig(max_batch_size=16, max_latency_ms=20.0))
    plane = DataPlane(_Repo(batcher_model))
    tasks = [asyncio.create_task(plane.predict(batcher_model, {"x": np.full((1, 2), float(i))})) for i in range(6)]
    await asyncio.sleep(0.005)
    tasks[2].cancel()
    done = await asyncio.gather(*tasks, return_exceptions=True)
    assert isinstance(done[2], asyncio.CancelledError)
    for i, r in enumerate(done):
        if i != 2:
            assert float(r["y"][0, 0]) == 2.0 * i  # type: ignore[index]


async def test_slow_model_batches_naturally_while_busy() -> None:
    """No wait window: the queue fills while the previous batch runs in a thread."""
    predictor = Doubler(delay=0.02)
    model = _model(predictor, BatchingConfig(max_batch_size=64, max_latency_ms=0.0))
    plane = DataPlane(_Repo(model))
    for _ in range(6):  # teach the plane the model is slow (after its warm-up calls), so it runs in a thread
        await plane.predict(model, {"x": np.ones((1, 2))})
    results = await asyncio.gather(*(plane.predict(model, {"x": np.full((1, 2), float(i))}) for i in range(50)))
    assert [float(r["y"][0, 0]) for r in results] == [2.0 * i for i in range(50)]
    assert any(name != "MainThread" for name in predictor.threads)
    assert len(predictor.sizes) < 3 + 50 / 2  # far fewer calls than requests


def test_batcher_rejects_pointless_size() -> None:
    async def run(batch: Batch, outputs: object) -> Batch:
        return batch

    with pytest.raises(ValueError, match="max_batch_size must be at least 2"):
        Batcher(run, 1)


async def test_auto_batching_gives_every_model_a_batcher_and_off_gives_none() -> None:
    cheap = _model(Doubler())
    plane = DataPlane(_Repo(cheap), BatchingPolicy(auto=True))
    results = await asyncio.gather(*(plane.predict(cheap, {"x": np.full((1, 2), float(i))}) for i in range(10)))
    assert [float(r["y"][0, 0]) for r in results] == [2.0 * i for i in range(10)]
    assert plane.batching_info(cheap)["enabled"] is True
    assert results[0]["n"].tolist() == [10]  # the ten concurrent requests shared one call
    off = DataPlane(_Repo(cheap), BatchingPolicy(default=BatchingConfig(max_batch_size=0), auto=False))
    await off.predict(cheap, {"x": np.ones((1, 2))})
    assert off.batching_info(cheap) == {"enabled": False}


async def test_http_concurrency_each_caller_checked() -> None:
    """Hundreds of concurrent HTTP requests with distinct inputs; a bad one fails alone."""
    predictor = Doubler()
    model = _model(predictor, BatchingConfig(max_batch_size=16, max_latency_ms=1.0))
    app = ModelportApp(_Repo(model))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:

        async def call(i: int) -> httpx.Response:
            data: list[Any] = [i, i + 0.5] if i != 77 else ["bad", 1]
            return await c.post(
                "/v2/models/dbl/infer",
                json={"inputs": [{"name": "x", "shape": [1, 2], "datatype": "FP64", "data": data}]},
            )

        responses = await asyncio.gather(*(call(i) for i in range(300)))
    for i, r in enumerate(responses):
        if i == 77:
            assert r.status_code == 400 and "must be FP64 numbers, got str value 'bad'" in r.json()["error"]
        else:
            assert r.status_code == 200
            assert r.json()["outputs"][0]["data"] == [2 * i, 2 * i + 1]


async def test_sequential_traffic_skips_the_queue_and_a_burst_brings_batching_back() -> None:
    from modelport.serving.batching import PROBE_EVERY, SOLO_AFTER

    predictor = Doubler()
    model = _model(predictor, BatchingConfig(max_batch_size=64, max_latency_ms=0.0))
    plane = DataPlane(_Repo(model))
    for i in range(SOLO_AFTER + 5):  # one client, one request at a time: nothing to coalesce
        out = await plane.predict(model, {"x": np.full((1, 2), float(i))})
        assert out["y"].tolist() == [[2.0 * i, 2.0 * i]]
    batcher = plane._state(model).batcher
    assert batcher is not None
    assert batcher.bypassing
    assert batcher.direct_runs == 5
    # Many clients at once: within PROBE_EVERY requests a probe queues, the burst coalesces, batching resumes.
    for _ in range(PROBE_EVERY // 50 + 2):
        results = await asyncio.gather(*(plane.predict(model, {"x": np.full((1, 2), float(i))}) for i in range(50)))
        assert [r["y"].tolist() for r in results] == [[[2.0 * i, 2.0 * i]] for i in range(50)]
    assert not batcher.bypassing
    assert max(predictor.sizes) > 1
    info = plane.batching_info(model)
    assert info["rows"] == SOLO_AFTER + 5 + 50 * (PROBE_EVERY // 50 + 2)


async def test_requests_arriving_during_a_direct_run_in_a_thread_queue_and_coalesce() -> None:
    """A slow model bypassing the queue still runs one call at a time; the callers behind it batch."""
    from modelport.serving.batching import SOLO_AFTER

    predictor = Doubler(delay=0.02)
    model = _model(predictor, BatchingConfig(max_batch_size=64, max_latency_ms=0.0))
    plane = DataPlane(_Repo(model))
    for _ in range(SOLO_AFTER + 2):
        await plane.predict(model, {"x": np.ones((1, 2))})
    batcher = plane._state(model).batcher
    assert batcher is not None and batcher.bypassing
    calls = len(predictor.sizes)
    results = await asyncio.gather(*(plane.predict(model, {"x": np.full((1, 2), float(i))}) for i in range(20)))
    assert [float(r["y"][0, 0]) for r in results] == [2.0 * i for i in range(20)]
    assert predictor.sizes[calls:] == [1, 19]  # the first ran directly; the rest waited and left together
    assert any(name != "MainThread" for name in predictor.threads)


async def test_batched_and_direct_calls_compute_only_the_outputs_their_callers_asked_for() -> None:
    """A request for 'y' alone must not make the model compute 'n' too, batched or not."""

    class Asked(Doubler):
        selects_outputs = True

        def __init__(self) -> None:
            super().__init__()
            self.asked: list[object] = []

        def predict(self, batch: Batch, outputs: object = None) -> Batch:  # type: ignore[override]
            self.asked.append(None if outputs is None else sorted(outputs))  # type: ignore[call-overload]
            out = super().predict(batch)
            return out if outputs is None else {k: out[k] for k in outputs}  # type: ignore[attr-defined]

    from modelport.serving.batching import SOLO_AFTER

    predictor = Asked()
    model = _model(predictor, BatchingConfig(max_batch_size=64, max_latency_ms=0.0))
    plane = DataPlane(_Repo(model))
    for _ in range(SOLO_AFTER + 2):  # sequential: queued first, then direct
        out = await plane.predict(model, {"x": np.ones((1, 2))}, ["y"])
        assert list(out) == ["y"]
    assert predictor.asked == [["y"]] * (SOLO_AFTER + 2)
    predictor.asked.clear()
    # A burst where one caller wants everything: the merged call computes everything, each gets its own.
    calls = [plane.predict(model, {"x": np.full((1, 2), float(i))}, ["y"]) for i in range(300)]
    calls.append(plane.predict(model, {"x": np.ones((1, 2))}))
    results = await asyncio.gather(*calls)
    assert all(list(r) == ["y"] for r in results[:-1]) and sorted(results[-1]) == ["n", "y"]
    assert ["n", "y"] in predictor.asked  # the call holding the caller that wanted every output
    assert predictor.asked.count(["n", "y"]) == 1
