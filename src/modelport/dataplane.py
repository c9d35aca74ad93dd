"""The transport-agnostic core: Batch in, Batch out. V1, V2 and the UI only translate.

Two decisions are made here per model version, from measurements:

- **Where predict runs.** Fast models run on the event loop: handing a 10 µs predict to
  a thread costs more than it saves. A model whose recent predicts average more than
  ``THREAD_AFTER_S`` moves to a worker thread so it cannot stall other requests.
- **Whether requests are batched.** ``[batching]`` in modelport.toml (or the server's
  ``--batching on|off``) decides explicitly. Left on ``auto``, every model gets a batcher
  with ``DEFAULT_AUTO_BATCH``: concurrent requests share one predict call, and sequential
  traffic skips the queue (batching.py), so it costs nothing when it cannot help. Measured
  side by side at 64 connections (docs/BENCHMARKS.md): 1.2x the requests/s of no batching
  for a compiled 10 µs logistic regression, 3.2x for the same model in scikit-learn.
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

from modelport.batching import Batcher
from modelport.config import BatchingConfig
from modelport.errors import ModelportError
from modelport.model import Model
from modelport.repository import Repository, VersionEntry
from modelport.router import ShadowObserver, ShadowStats
from modelport.signature import Batch, batch_rows

__all__ = ["DEFAULT_AUTO_BATCH", "THREAD_AFTER_S", "DataPlane"]

log = logging.getLogger("modelport.shadow")

MAX_SHADOW_INFLIGHT = 64
"""Shadow copies beyond this many at once are dropped (and counted): the shadow never slows serving."""

SHADOW_THREADS = 2

THREAD_AFTER_S = 0.002
WARMUP_CALLS = 3
DEFAULT_AUTO_BATCH = BatchingConfig(max_batch_size=64, max_latency_ms=0.0)


class _ModelState:
    __slots__ = ("batcher", "calls", "cost")

    def __init__(self) -> None:
        self.cost = 0.0  # moving average of one predict call, seconds
        self.calls = 0
        self.batcher: Batcher | None = None


@dataclass
class BatchingPolicy:
    """Server-wide default; a model's own ``[batching]`` wins. ``None`` = auto."""

    default: BatchingConfig | None = None
    auto: bool = True


class DataPlane:
    def __init__(
        self,
        repository: Repository,
        batching: BatchingPolicy | None = None,
        on_inference: Callable[[str, int, float, int], None] | None = None,
    ) -> None:
        self.repository = repository
        self.batching = batching or BatchingPolicy()
        self.on_inference = on_inference
        """Told of every model call: (model, version, seconds, rows); the server's Metrics.observe_inference."""
        self._states: weakref.WeakKeyDictionary[Model, _ModelState] = weakref.WeakKeyDictionary()
        self.shadow_stats: dict[tuple[str, int], ShadowStats] = {}
        """Per (model, shadow version): calls, errors, drops, mismatches with the primary, latency."""
        self.shadow_observers: list[ShadowObserver] = []
        self._shadow_tasks: set[asyncio.Task[None]] = set()
        self._shadow_pool: ThreadPoolExecutor | None = None

    def model(self, name: str, version: str | None = None, headers: Mapping[bytes, bytes] | None = None) -> Model:
        """The model to use for ``name``.

        With ``headers`` (an inference request) the traffic policy picks the version and the
        version is leased: call :meth:`release` when the request is done (the app does, for
        ``request.model``). Without headers it is a plain lookup for metadata.
        """
        if headers is None:
            return self.repository.get(name, version)
        entry = self.repository.lease(name, version, headers)
        assert entry.model is not None  # lease() checked it
        return entry.model

    def release(self, model: Model) -> None:
        self.repository.release(model)

    def shadow(self, model: Model, batch: Batch, result: Batch | None = None) -> None:
        """Send a copy of ``batch`` to the model's shadow version, off the response path.

        The shadow's answer is discarded; its latency, errors and whether it agreed with
        ``result`` go to :attr:`shadow_stats` and :attr:`shadow_observers`.
        """
        target = self.repository.shadow(model.name)
        if target is None or target.version == model.version:
            return
        stats = self.shadow_stats.get((model.name, target.version))
        if stats is None:
            stats = self.shadow_stats.setdefault((model.name, target.version), ShadowStats())
        if len(self._shadow_tasks) >= MAX_SHADOW_INFLIGHT:
            stats.dropped += 1
            return
        try:
            leased = self.repository.lease(model.name, target.version)
        except ModelportError:
            stats.dropped += 1
            return
        task = asyncio.get_running_loop().create_task(self._run_shadow(leased, batch, result, stats))
        self._shadow_tasks.add(task)
        task.add_done_callback(self._shadow_tasks.discard)

    async def _run_shadow(self, target: VersionEntry, batch: Batch, result: Batch | None, stats: ShadowStats) -> None:
        model = target.model
        assert model is not None
        error: str | None = None
        matched: bool | None = None
        start = time.perf_counter()
        try:
            if self._shadow_pool is None:
                # Its own threads: shadow copies never queue ahead of slow primary predicts.
                self._shadow_pool = ThreadPoolExecutor(SHADOW_THREADS, thread_name_prefix="modelport-shadow")
            answer = await asyncio.get_running_loop().run_in_executor(self._shadow_pool, model.run, batch, None)
            if result is not None:
                matched = all(
                    np.array_equal(np.asarray(answer[k]), np.asarray(v)) for k, v in result.items() if k in answer
                )
        except ModelportError as exc:
            error = exc.message
        except Exception as exc:  # the shadow's failure is measured, never raised
            error = f"{type(exc).__name__}: {exc}"
        finally:
            self.repository.release(model)
        seconds = time.perf_counter() - start
        stats.record(seconds, error, matched)
        for observer in self.shadow_observers:
            try:
                observer(model.name, model.version, seconds, error, matched)
            except Exception:
                log.exception("shadow observer %r failed", observer)

    def _state(self, model: Model) -> _ModelState:
        state = self._states.get(model)
        if state is None:
            state = self._states[model] = _ModelState()
            config = model.batching or self.batching.default
            if config is None and self.batching.auto:
                config = DEFAULT_AUTO_BATCH
            if config is not None and config.enabled:
                state.batcher = self._batcher(model, state, config)
        return state

    def _batcher(self, model: Model, state: _ModelState, config: BatchingConfig) -> Batcher:
        async def run(batch: Batch, outputs: Sequence[str] | None) -> Batch:
            return await self._run(model, state, batch, outputs)

        return Batcher(run, config.max_batch_size, config.max_latency_ms)

    async def infer(self, model: Model, batch: Batch, outputs: Sequence[str] | None = None) -> Batch:
        """Predict on a checked Batch: batched, threaded or inline as measured."""
        state = self._state(model)
        if state.batcher is not None:
            if outputs is not None:
                model.check_outputs(outputs)
            return await state.batcher.submit(batch, batch_rows(batch), outputs)
        return await self._run(model, state, batch, outputs)

    async def _run(self, model: Model, state: _ModelState, batch: Batch, outputs: Sequence[str] | None) -> Batch:
        cost = state.cost
        start = time.perf_counter()
        if cost > THREAD_AFTER_S:
            result = await asyncio.to_thread(model.run, batch, outputs)
        else:
            result = model.run(batch, outputs)
        took = time.perf_counter() - start
        if self.on_inference is not None:
            self.on_inference(model.name, model.version, took, batch_rows(batch))
        # The first calls pay for cold caches and lazy imports; they would skew the average
        # that decides threading and auto-batching, so the average starts after them.
        if state.calls >= WARMUP_CALLS:
            state.cost = took if state.calls == WARMUP_CALLS else 0.8 * cost + 0.2 * took
        state.calls += 1
        return result

    def batching_info(self, model: Model) -> dict[str, Any]:
        state = self._states.get(model)
        if state is None or state.batcher is None:
            return {"enabled": False}
        b = state.batcher
        return {
            "enabled": True,
            "max_batch_size": b.max_batch_size,
            "max_latency_ms": b.max_latency * 1000,
            "batches": b.batches_run,
            "rows": b.rows_run,
            # requests that skipped the queue because traffic was not coalescing (batching.py)
            "direct": b.direct_runs,
            "bypassing": b.bypassing,
        }

    def server_metadata(self) -> dict[str, Any]:
        from modelport import __version__

        return {"name": "modelport", "version": __version__, "extensions": ["binary_tensor_data", "model_repository"]}
