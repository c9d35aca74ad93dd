"""The transport-agnostic core: Batch in, Batch out. V1, V2 and the UI only translate.

Fast models run on the event loop: handing a 10 µs predict to a thread costs more
than it saves. A model whose recent predicts took longer than ``THREAD_AFTER_S``
moves to a worker thread so it cannot stall other requests.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from modelport.errors import ModelportError
from modelport.model import Model
from modelport.repository import Repository, VersionEntry
from modelport.router import ShadowObserver, ShadowStats
from modelport.signature import Batch

__all__ = ["DataPlane"]

log = logging.getLogger("modelport.shadow")

MAX_SHADOW_INFLIGHT = 64
"""Shadow copies beyond this many at once are dropped (and counted): the shadow never slows serving."""

SHADOW_THREADS = 2

THREAD_AFTER_S = 0.002
"""Predicts slower than this (moving average) run in a thread; see docs/ARCHITECTURE.md."""


class DataPlane:
    def __init__(self, repository: Repository) -> None:
        self.repository = repository
        self._cost: dict[int, float] = {}
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

    async def infer(self, model: Model, batch: Batch, outputs: Sequence[str] | None = None) -> Batch:
        """Predict on a checked Batch, off the event loop when the model is slow."""
        key = id(model)
        cost = self._cost.get(key, 0.0)
        start = time.perf_counter()
        if cost > THREAD_AFTER_S:
            result = await asyncio.to_thread(model.run, batch, outputs)
        else:
            result = model.run(batch, outputs)
        took = time.perf_counter() - start
        self._cost[key] = took if cost == 0.0 else 0.8 * cost + 0.2 * took
        return result

    def server_metadata(self) -> dict[str, Any]:
        from modelport import __version__

        return {"name": "modelport", "version": __version__, "extensions": ["model_repository"]}
