"""The request pipeline every protocol shares: lease, decode, predict, shadow, encode, observe.

A codec (server/v1.py, v2.py, grpc.py) reads the envelope of a request and hands the
DataPlane an :class:`~modelport.serving.inference.InferCall`; everything after that is decided
here, once, for every protocol:

- **Version lease.** The traffic policy picks the version; the lease is a context manager,
  released on every path. A model call still running in a thread holds its own lease, so a
  version is never closed under it.
- **Where work runs.** Fast models run on the event loop: handing a 10 µs predict to a
  thread costs more than it saves. A model runs in a worker thread while it is new (its
  first ``WARMUP_CALLS`` + 1 calls: a model that hangs on its first call must not freeze
  the loop), when its recent predicts average more than ``THREAD_AFTER_S``, and for batches
  of more than ``INLINE_MAX_ROWS`` rows. Bodies over ``OFFLOAD_BYTES`` are also decoded and
  encoded in a thread, so health probes and small requests stay fast while they run.
- **Deadlines.** Each request has a budget: the model's ``[limits] request_timeout``, else
  the server's ``--request-timeout``, cut to the client's own deadline (gRPC). Past it the
  request gets 504 / DEADLINE_EXCEEDED and the server goes on; a call still running in its
  thread past the budget counts as *stuck* (``modelport_stuck_calls``) until it returns.
- **Batching.** ``[batching]`` in modelport.toml (or ``--batching on|off``) decides
  explicitly. Left on ``auto``, every model gets a batcher with ``DEFAULT_AUTO_BATCH``:
  concurrent requests share one predict call, and sequential traffic skips the queue
  (batching.py), so it costs nothing when it cannot help. Measured side by side at 64
  connections (docs/BENCHMARKS.md): 1.2x the requests/s of no batching for a compiled
  10 µs logistic regression, 3.2x for the same model in scikit-learn.
- **Shadow, readiness, metadata and observers** (metrics, access log, payload log).
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np

from modelport.core.config import BatchingConfig
from modelport.core.errors import DeadlineExceeded, ModelportError
from modelport.core.model import Model
from modelport.core.signature import Batch, TensorSpec, batch_rows
from modelport.observability.observe import Observer, RequestRecord
from modelport.serving.batching import Batcher
from modelport.serving.inference import InferCall, InferResponse, Trace
from modelport.serving.offload import Decoder
from modelport.serving.repository import Lease, ModelEntry, Repository, VersionEntry, parse_version
from modelport.serving.router import ShadowObserver, ShadowStats

__all__ = [
    "DEFAULT_AUTO_BATCH",
    "INLINE_MAX_ROWS",
    "OFFLOAD_BYTES",
    "THREAD_AFTER_S",
    "BatchingPolicy",
    "DataPlane",
    "ModelMetadata",
]

log = logging.getLogger("modelport.dataplane")
shadow_log = logging.getLogger("modelport.shadow")

MAX_SHADOW_INFLIGHT = 64
"""Shadow copies beyond this many at once are dropped (and counted): the shadow never slows serving."""

SHADOW_THREADS = 2

THREAD_AFTER_S = 0.002
WARMUP_CALLS = 3
INLINE_MAX_ROWS = 4096
"""A bigger batch runs in a thread whatever the model's per-call average says."""
OFFLOAD_BYTES = 256 * 1024
"""Bodies bigger than this are decoded and encoded off the event loop (a 32 MiB JSON body takes seconds)."""
DEFAULT_AUTO_BATCH = BatchingConfig(max_batch_size=64, max_latency_ms=0.0)

PLATFORMS = {"onnx": "onnx_onnxv1"}

Out = TypeVar("Out")


class _ModelState:
    __slots__ = ("batcher", "calls", "cost", "entry", "timeout")

    def __init__(self) -> None:
        self.cost = 0.0  # moving average of one predict call, seconds
        self.calls = 0
        self.batcher: Batcher | None = None
        self.timeout: float | None = None  # this version's request budget, seconds
        self.entry: VersionEntry | None = None  # a call in a thread holds this version while it runs


@dataclass
class BatchingPolicy:
    """Server-wide default; a model's own ``[batching]`` wins. ``None`` = auto."""

    default: BatchingConfig | None = None
    auto: bool = True


@dataclass
class ModelMetadata:
    """What V2 REST and gRPC report about a model (one rule for both; each encodes it its own way)."""

    name: str
    versions: list[str]
    platform: str
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    version_states: list[dict[str, str]] = field(default_factory=list)
    traffic: dict[str, float] | None = None
    shadow_version: str | None = None
    shadow_stats: dict[str, Any] | None = None
    config_error: str = ""


class _Deadlines:
    """Request budgets without a timer per request: a tick every ``TICK_S`` cancels overdue ones.

    ``asyncio.timeout`` arms and cancels a timer for every request (~6 µs, a twentieth of a
    one-row request); most requests never wait for anything, so one shared tick is cheaper.
    A deadline is enforced at most ``TICK_S`` late.
    """

    TICK_S = 0.05

    def __init__(self) -> None:
        self._pending: dict[asyncio.Task[Any], float] = {}
        self._expired: set[asyncio.Task[Any]] = set()
        self._tick: asyncio.TimerHandle | None = None

    def add(self, task: asyncio.Task[Any], budget: float) -> None:
        loop = asyncio.get_running_loop()
        self._pending[task] = loop.time() + budget
        if self._tick is None:
            self._tick = loop.call_later(min(self.TICK_S, max(budget, 0.0)), self._check, loop)

    def remove(self, task: asyncio.Task[Any]) -> None:
        self._pending.pop(task, None)
        self._expired.discard(task)

    def expired(self, task: asyncio.Task[Any]) -> bool:
        """True (once) when the tick cancelled ``task``; its cancellation is then undone."""
        if task not in self._expired:
            return False
        self._expired.discard(task)
        task.uncancel()
        return True

    def _check(self, loop: asyncio.AbstractEventLoop) -> None:
        self._tick = None
        now = loop.time()
        for task, deadline in list(self._pending.items()):
            if deadline <= now:
                del self._pending[task]
                self._expired.add(task)
                task.cancel()
        if self._pending:
            self._tick = loop.call_later(self.TICK_S, self._check, loop)


def _timed_run(model: Model, batch: Batch, outputs: Sequence[str] | None) -> tuple[Batch, float]:
    # Timed in the thread, so queueing for a worker or for the loop is not billed to the model.
    start = time.perf_counter()
    result = model.run(batch, outputs)
    return result, time.perf_counter() - start


class DataPlane:
    """The one orchestrator between a codec's decode and its encode; see the module docstring."""

    def __init__(
        self,
        repository: Repository,
        batching: BatchingPolicy | None = None,
        *,
        observers: Sequence[Observer] = (),
        request_timeout: float | None = None,
        on_inference: Callable[[str, int, float, int], None] | None = None,
    ) -> None:
        self.repository = repository
        self.batching = batching or BatchingPolicy()
        self.request_timeout = request_timeout or None
        """Server-wide budget in seconds (``--request-timeout``); a model's ``[limits]`` wins. None: no limit."""
        self.observers: list[Observer] = list(observers)
        self.draining = False
        self.on_inference = on_inference
        """Told of every model call: (model, version, seconds, rows); the server's Metrics.observe_inference."""
        self._states: weakref.WeakKeyDictionary[Model, _ModelState] = weakref.WeakKeyDictionary()
        self.shadow_stats: dict[tuple[str, int], ShadowStats] = {}
        """Per (model, shadow version): calls, errors, drops, mismatches with the primary, latency."""
        self.shadow_observers: list[ShadowObserver] = []
        self._shadow_tasks: set[asyncio.Task[None]] = set()
        self._shadow_pool: ThreadPoolExecutor | None = None
        self._decoder = Decoder()
        self._deadlines = _Deadlines()
        self.stuck: dict[tuple[str, int], int] = {}
        """Model calls still running in their thread after their request's budget ran out."""
        self.on_stuck: Callable[[str, int, int], None] | None = None
        """Told (model, version, +1/-1) when a call becomes stuck and when it finally returns."""

    # -- readiness and metadata ---------------------------------------------------
    def ready(self) -> bool:
        """Every model has an available version and the server is not draining."""
        return self.repository.ready() and not self.draining

    def describe(self, name: str, version: str | None = None) -> Model:
        """The model that describes ``name`` (no lease): for metadata routes."""
        return self.repository.get(name, version)

    def model_ready(self, name: str, version: str | None) -> bool:
        """Unknown model or version: NotFound; otherwise whether it can answer now."""
        entry = self.repository.entry(name)
        if version is None or version == "":
            return entry.latest() is not None
        v = entry.versions.get(parse_version(name, version))
        if v is None:
            self.repository.get(name, version)  # raises UnknownVersion naming what exists
            raise AssertionError("unreachable")
        return v.state == "AVAILABLE"

    def model_metadata(self, name: str, version: str | None) -> ModelMetadata:
        model = self.repository.get(name, version)
        entry = self.repository.entry(name)
        if version:
            chosen = [entry.versions[model.version]]
            versions = [model.version_text]
        else:
            chosen = sorted(entry.versions.values(), key=lambda v: v.version)
            versions = [str(v.version) for v in chosen]
        meta = ModelMetadata(
            name=model.name,
            versions=versions,
            platform=PLATFORMS.get(model.flavor, f"modelport_{model.flavor}"),
            inputs=model.signature.inputs,
            outputs=model.signature.outputs,
            version_states=[{"version": str(v.version), "state": v.state, "reason": v.reason} for v in chosen],
            config_error=entry.config_error,
        )
        if not version:
            meta.traffic = {str(n): share for n, share in entry.route.shares().items()}
            if entry.route.shadow is not None:
                meta.shadow_version = str(entry.route.shadow[0])
                stats = self.shadow_stats.get((name, entry.route.shadow[0]))
                if stats is not None:
                    meta.shadow_stats = stats.to_dict()
        return meta

    def entry(self, name: str) -> ModelEntry:
        return self.repository.entry(name)

    def server_metadata(self) -> dict[str, Any]:
        from modelport import __version__

        return {"name": "modelport", "version": __version__, "extensions": ["binary_tensor_data", "model_repository"]}

    # -- the request pipeline -------------------------------------------------------
    async def infer(self, call: InferCall[Out], trace: Trace) -> Out:
        """Lease a version, decode, predict (batched, threaded or inline), shadow, encode.

        ``trace`` gets the model, inputs and outputs for the observers, whatever happens.
        """
        trace.protocol = call.protocol
        if self.repository.has(call.model_name):  # only names the server knows become labels
            trace.model_name = call.model_name
        with self.repository.lease(call.model_name, call.model_version, call.headers) as lease:
            model = trace.model = lease.model
            state = self._state(model, lease)
            budget = state.timeout
            if call.deadline is not None:
                left = call.deadline - time.monotonic()
                budget = left if budget is None else min(budget, left)
            big = call.size > OFFLOAD_BYTES
            if budget is None:
                return await self._infer(call, trace, model, state, big)
            task = asyncio.current_task()
            assert task is not None
            self._deadlines.add(task, budget)
            try:
                return await self._infer(call, trace, model, state, big)
            except asyncio.CancelledError:
                if not self._deadlines.expired(task):
                    raise  # cancelled by someone else: the client went away, or shutdown
                raise self._deadline_error(model, state, budget) from None
            finally:
                self._deadlines.remove(task)

    async def _infer(self, call: InferCall[Out], trace: Trace, model: Model, state: _ModelState, big: bool) -> Out:
        leased = model
        if call.signature_name is not None:  # the leased version through another of its signatures
            model = model.for_signature(call.signature_name)
            if model is not leased:
                state = self._state(model)
        if big:  # in the helper process: parsing holds the GIL, a thread would still stall the loop
            request = await self._decoder.decode(call.decode, model.name, model.version, model.signature)
        else:
            request = call.decode(model)
        request.headers = call.headers
        batch = trace.inputs = request.inputs
        outputs = trace.outputs = await self._predict(model, state, batch, request.outputs, big)
        if model is leased:  # a shadow version is compared on the default signature only
            self.shadow(model, batch, outputs)
        response = InferResponse(model, outputs, request.id)
        if big:  # a thread is enough: encoding big answers is Python-level work that yields the GIL
            return await asyncio.get_running_loop().run_in_executor(None, call.encode, request, response)
        return call.encode(request, response)

    def _deadline_error(self, model: Model, state: _ModelState, budget: float) -> DeadlineExceeded:
        if state.timeout is not None and budget >= state.timeout:
            where = "[limits] request_timeout" if self.request_timeout != state.timeout else "--request-timeout"
            return DeadlineExceeded(
                f"model '{model.name}' version {model.version} did not answer within {state.timeout:g} s "
                f"(the request timeout, {where}); the server goes on serving other requests"
            )
        return DeadlineExceeded(
            f"model '{model.name}' version {model.version} did not answer within the client's deadline "
            f"({max(budget, 0.0):.3g} s left when the request arrived)"
        )

    async def predict(self, model: Model, batch: Batch, outputs: Sequence[str] | None = None) -> Batch:
        """Predict on a checked Batch (no lease, no deadline): batched, threaded or inline as measured."""
        return await self._predict(model, self._state(model, None), batch, outputs, False)

    async def _predict(
        self, model: Model, state: _ModelState, batch: Batch, outputs: Sequence[str] | None, big: bool
    ) -> Batch:
        if state.batcher is not None and not big:
            if outputs is not None:
                model.check_outputs(outputs)
            return await state.batcher.submit(batch, batch_rows(batch), outputs)
        return await self._run(model, state, batch, outputs, big)

    def _state(self, model: Model, lease: Lease | None = None) -> _ModelState:
        state = self._states.get(model)
        if state is None:
            state = self._states[model] = _ModelState()
            config = model.batching or self.batching.default
            if config is None and self.batching.auto:
                config = DEFAULT_AUTO_BATCH
            if config is not None and config.enabled:
                state.batcher = self._batcher(model, state, config)
            state.timeout = self.request_timeout
            if lease is not None:
                state.entry = lease.entry
                limits = self.repository.entry(model.name).config.limits
                if limits is not None and limits.request_timeout is not None:
                    state.timeout = limits.request_timeout or None
        return state

    def _batcher(self, model: Model, state: _ModelState, config: BatchingConfig) -> Batcher:
        async def run(batch: Batch, outputs: Sequence[str] | None) -> Batch:
            return await self._run(model, state, batch, outputs, False)

        return Batcher(run, config.max_batch_size, config.max_latency_ms)

    async def _run(
        self, model: Model, state: _ModelState, batch: Batch, outputs: Sequence[str] | None, big: bool
    ) -> Batch:
        rows = batch_rows(batch)
        cost = state.cost
        if big or rows > INLINE_MAX_ROWS or cost > THREAD_AFTER_S or state.calls <= WARMUP_CALLS:
            result, took = await self._in_thread(model, state, batch, outputs)
        else:
            start = time.perf_counter()
            result = model.run(batch, outputs)
            took = time.perf_counter() - start
        if self.on_inference is not None:
            self.on_inference(model.name, model.version, took, rows)
        # The first calls pay for cold caches and lazy imports; they would skew the average
        # that decides threading and auto-batching, so the average starts after them.
        if state.calls >= WARMUP_CALLS:
            state.cost = took if state.calls == WARMUP_CALLS else 0.8 * cost + 0.2 * took
        state.calls += 1
        return result

    async def _in_thread(
        self, model: Model, state: _ModelState, batch: Batch, outputs: Sequence[str] | None
    ) -> tuple[Batch, float]:
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(None, _timed_run, model, batch, outputs)
        hold = Lease.take(state.entry, model) if state.entry is not None else None
        timer = loop.call_later(state.timeout, self._stuck, model, future) if state.timeout is not None else None

        def done(_: object) -> None:
            if timer is not None:
                timer.cancel()
            if hold is not None:
                hold.release()

        future.add_done_callback(done)
        # Shielded: a request that gives up (deadline, client gone) leaves the call running to its end.
        return await asyncio.shield(future)

    def _stuck(self, model: Model, future: asyncio.Future[Any]) -> None:
        if future.done():
            return
        key = (model.name, model.version)
        self.stuck[key] = self.stuck.get(key, 0) + 1
        log.warning(
            "model %s version %d: a call is still running after the request timeout; %d such calls now",
            model.name,
            model.version,
            self.stuck[key],
        )
        if self.on_stuck is not None:
            self.on_stuck(model.name, model.version, 1)

        def returned(_: object) -> None:
            self.stuck[key] -= 1
            log.warning("model %s version %d: a stuck call returned", model.name, model.version)
            if self.on_stuck is not None:
                self.on_stuck(model.name, model.version, -1)

        future.add_done_callback(returned)

    # -- shadow -------------------------------------------------------------------
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
            lease = self.repository.lease(model.name, target.version)
        except ModelportError:
            stats.dropped += 1
            return
        task = asyncio.get_running_loop().create_task(self._run_shadow(lease, batch, result, stats))
        self._shadow_tasks.add(task)
        task.add_done_callback(self._shadow_tasks.discard)

    async def _run_shadow(self, lease: Lease, batch: Batch, result: Batch | None, stats: ShadowStats) -> None:
        model = lease.model
        error: str | None = None
        matched: bool | None = None
        start = time.perf_counter()
        with lease:
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
        seconds = time.perf_counter() - start
        stats.record(seconds, error, matched)
        for observer in self.shadow_observers:
            try:
                observer(model.name, model.version, seconds, error, matched)
            except Exception:
                shadow_log.exception("shadow observer %r failed", observer)

    # -- observers ------------------------------------------------------------------
    def observe(
        self,
        trace: Trace,
        method: str,
        path: str,
        status: int,
        started: float,
        request_id: str,
        error: str | None,
    ) -> None:
        """Hand a finished request to every observer. ``started`` is its ``time.perf_counter()``."""
        duration = time.perf_counter() - started
        model = trace.model
        record = RequestRecord(
            request_id=request_id,
            method=method,
            path=path,
            protocol=trace.protocol,
            # An unknown name never reaches a metric label: it would let any client grow /metrics.
            model=model.name if model is not None else trace.model_name,
            version=model.version if model is not None else None,
            status=status,
            started=time.time() - duration,
            duration=duration,
            inputs=trace.inputs,
            outputs=trace.outputs,
            error=error,
        )
        for observer in self.observers:
            try:
                observer.observe(record)
            except Exception:  # an observer's bug must not fail requests
                log.exception("observer %r failed", observer)

    def close(self) -> None:
        """At shutdown: stop the decoding process and the shadow copies, and close the observers."""
        self._decoder.close()
        for task in list(self._shadow_tasks):
            task.cancel()
        pool, self._shadow_pool = self._shadow_pool, None
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)  # a hung shadow call must not hold up the exit
        self.close_observers()

    def close_observers(self) -> None:
        for observer in self.observers:
            close = getattr(observer, "close", None)
            if close is not None:
                try:
                    close()
                except Exception:
                    log.exception("observer %r failed to close", observer)

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
