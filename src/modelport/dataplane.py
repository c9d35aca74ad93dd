"""The transport-agnostic core: Batch in, Batch out. V1, V2 and the UI only translate.

Fast models run on the event loop: handing a 10 µs predict to a thread costs more
than it saves. A model whose recent predicts took longer than ``THREAD_AFTER_S``
moves to a worker thread so it cannot stall other requests.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any

from modelport.metrics import observe_inference
from modelport.model import Model
from modelport.repository import Repository
from modelport.signature import Batch, batch_rows

__all__ = ["DataPlane"]

THREAD_AFTER_S = 0.002
"""Predicts slower than this (moving average) run in a thread; see docs/ARCHITECTURE.md."""


class DataPlane:
    def __init__(self, repository: Repository) -> None:
        self.repository = repository
        self._cost: dict[int, float] = {}

    def model(self, name: str, version: str | None = None) -> Model:
        return self.repository.get(name, version)

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
        observe_inference(model.name, model.version, took, batch_rows(batch))
        self._cost[key] = took if cost == 0.0 else 0.8 * cost + 0.2 * took
        return result

    def server_metadata(self) -> dict[str, Any]:
        from modelport import __version__

        return {"name": "modelport", "version": __version__, "extensions": []}
