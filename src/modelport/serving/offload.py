"""Decoding big request bodies in a helper process, so the event loop never waits for them.

Parsing a 32 MiB JSON body and turning its nested lists into arrays takes seconds in C calls
that hold the GIL the whole time (orjson, numpy), so a thread does not help: the event loop
cannot run until they return, and health probes and small requests wait behind them.
A helper process parses and checks the body and sends back the Batch (numpy arrays pickle
as flat buffers, fast). The process starts on the first big body and is reused.

The decoder runs against a :class:`ModelView`: the model's name and an ``InputPlan`` rebuilt
from its signature, so the same checks give the same messages as on the event loop.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass

from modelport.core.errors import ServerError
from modelport.core.signature import InputPlan, Signature
from modelport.serving.inference import Decodable, InferRequest

__all__ = ["Decoder", "ModelView"]

log = logging.getLogger("modelport.dataplane")

_plans: dict[tuple[str, int], tuple[Signature, InputPlan]] = {}


@dataclass(frozen=True)
class ModelView:
    """A model as a decoder sees it, in the helper process."""

    name: str
    plan: InputPlan


def _decode(decode: Callable[[Decodable], InferRequest], name: str, version: int, signature: Signature) -> InferRequest:
    cached = _plans.get((name, version))
    if cached is None or cached[0] != signature:
        cached = _plans[(name, version)] = (signature, InputPlan(name, signature))
    return decode(ModelView(name, cached[1]))


class Decoder:
    """One helper process (started when first needed) that decodes big bodies."""

    def __init__(self) -> None:
        self._pool: ProcessPoolExecutor | None = None
        self._unavailable = False

    async def decode(
        self, decode: Callable[[Decodable], InferRequest], name: str, version: int, signature: Signature
    ) -> InferRequest:
        if self._unavailable:
            return await asyncio.to_thread(_decode, decode, name, version, signature)
        if self._pool is None:
            try:
                # spawn, never fork: the server's threads and gRPC's state must not be copied into the helper.
                self._pool = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"))
            except (OSError, NotImplementedError) as exc:
                # No POSIX semaphores (AWS Lambda has no /dev/shm): decode in a thread, which stalls the
                # loop while it parses but answers; this process serves one request at a time there anyway.
                log.warning("big bodies are decoded in a thread: no helper process here (%s)", exc)
                self._unavailable = True
                return await asyncio.to_thread(_decode, decode, name, version, signature)
        pool = self._pool
        try:
            return await asyncio.get_running_loop().run_in_executor(pool, _decode, decode, name, version, signature)
        except BrokenProcessPool:
            if self._pool is pool:
                self._pool = None  # the next big body starts a fresh helper
            raise ServerError("the process decoding big request bodies stopped (out of memory?); retry") from None

    def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)
