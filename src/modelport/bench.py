"""Response-time measurement against any HTTP endpoint (``modelport bench``).

The client must rarely be the bottleneck, so it does the least work it can: one
asyncio loop (uvloop when installed), raw keep-alive HTTP/1.1 connections, the
request bytes built once, and a response parser that reads only the status line,
``Content-Length`` / chunked framing and ``Connection: close``. The client also
times its own CPU: ``requests / client CPU seconds`` is its ceiling for this very
request on this machine, and a run that comes near it is flagged, because then the
numbers describe the client rather than the server.

Closed loop (``concurrency`` connections, each sending its next request when the
last one answered) measures service time and throughput. Open loop (``rate``)
schedules requests at fixed times and measures latency from the scheduled time,
so a slow server is not hidden by the client waiting for it (coordinated omission).
"""

from __future__ import annotations

import asyncio
import json
import math
import socket
import sys
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import numpy as np

from modelport.core.errors import ConfigError

__all__ = [
    "BenchResult",
    "Target",
    "body_from_metadata",
    "compare",
    "fetch_metadata",
    "format_result",
    "make_target",
    "plot_results",
    "run",
    "sweep",
]

# Above this share of one core spent in the client, the client may be what limits throughput.
CLIENT_BUSY_WARN = 0.7
PERCENTILES = (("median", 50.0), ("p90", 90.0), ("p99", 99.0), ("p99.9", 99.9))


@dataclass(frozen=True)
class Target:
    """One endpoint and the exact bytes of the request sent to it, built once."""

    url: str
    host: str
    port: int
    path: str
    method: str
    body: bytes
    request: bytes

    @property
    def label(self) -> str:
        return f"{self.method} {self.url}"


def make_target(
    url: str,
    body: bytes | None = None,
    method: str | None = None,
    headers: Sequence[tuple[str, str]] = (),
    content_type: str = "application/json",
) -> Target:
    """Parse ``url`` and pre-build the request; POST when there is a body, GET otherwise."""
    parts = urlsplit(url if "://" in url else f"http://{url}")
    if parts.scheme != "http":
        raise ConfigError(f"bench URL '{url}': scheme '{parts.scheme}' is not supported; use http:// (plain HTTP/1.1)")
    if not parts.hostname:
        raise ConfigError(f"bench URL '{url}' has no host; expected http://HOST[:PORT]/PATH")
    port = parts.port or 80
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    verb = (method or ("POST" if body is not None else "GET")).upper()
    host_header = parts.hostname if port == 80 else f"{parts.hostname}:{port}"
    lines = [f"{verb} {path} HTTP/1.1", f"Host: {host_header}", "User-Agent: modelport-bench"]
    names = {k.lower() for k, _ in headers}
    if body is not None:
        if "content-type" not in names:
            lines.append(f"Content-Type: {content_type}")
        lines.append(f"Content-Length: {len(body)}")
    lines.extend(f"{k}: {v}" for k, v in headers)
    request = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (body or b"")
    return Target(url, parts.hostname, port, path, verb, body or b"", request)


# --------------------------------------------------------------------------- connection


class _Connection(asyncio.Protocol):
    """A keep-alive HTTP/1.1 connection that carries one request at a time."""

    def __init__(self, head_only: bool) -> None:
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.waiter: asyncio.Future[int] | None = None
        self.head_only = head_only
        self.closed = False
        self.started = 0.0
        self._status = 0
        self._need = -1  # body bytes still expected; -1 = headers not read yet
        self._chunked = False
        self._until_close = False
        self._close_after = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's transports are not subclasses
        sock = transport.get_extra_info("socket")
        if sock is not None:
            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:
                pass

    def send(self, request: bytes) -> asyncio.Future[int]:
        if self.transport is None:
            raise ConnectionError("connection is not open")
        loop = asyncio.get_running_loop()
        self.waiter = loop.create_future()
        self._need = -1
        self.started = loop.time()
        self.transport.write(request)
        return self.waiter

    def data_received(self, data: bytes) -> None:
        self.buf += data
        if self.waiter is not None:
            self._parse()

    def _parse(self) -> None:
        buf = self.buf
        if self._need < 0:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(buf[:end]).lower()
            del buf[: end + 4]
            try:
                self._status = int(head[9:12])
            except ValueError:
                self._fail(ConnectionError(f"not an HTTP response: {head[:40]!r}"))
                return
            self._chunked = b"transfer-encoding: chunked" in head
            self._close_after = b"connection: close" in head
            self._until_close = False
            if self.head_only or self._status in (204, 304) or 100 <= self._status < 200:
                self._need = 0
            elif self._chunked:
                self._need = 0
            else:
                at = head.find(b"content-length:")
                if at >= 0:
                    eol = head.find(b"\r\n", at)
                    self._need = int(head[at + 15 : eol if eol >= 0 else None])
                else:  # body runs to the end of the connection
                    self._need = 0
                    self._until_close = True
                    return
        if self._chunked:
            if not self._read_chunks():
                return
        elif self._until_close:
            return
        elif len(buf) < self._need:
            return
        else:
            del buf[: self._need]
        self._done()

    def _read_chunks(self) -> bool:
        buf = self.buf
        while True:
            eol = buf.find(b"\r\n")
            if eol < 0:
                return False
            size = int(bytes(buf[:eol]).split(b";")[0], 16)
            if size == 0:
                rest = buf[eol + 2 :]
                if rest.startswith(b"\r\n"):
                    del buf[: eol + 4]
                    return True
                trailer_end = rest.find(b"\r\n\r\n")
                if trailer_end < 0:
                    return False
                del buf[: eol + 2 + trailer_end + 4]
                return True
            if len(buf) < eol + 2 + size + 2:
                return False
            del buf[: eol + 2 + size + 2]

    def _done(self) -> None:
        waiter, self.waiter = self.waiter, None
        if self._close_after:
            self.closed = True
            if self.transport is not None:
                self.transport.close()
        if waiter is not None and not waiter.done():
            waiter.set_result(self._status)

    def _fail(self, exc: BaseException) -> None:
        waiter, self.waiter = self.waiter, None
        self.closed = True
        if self.transport is not None:
            self.transport.abort()
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)

    def timeout(self) -> None:
        self._fail(TimeoutError("no complete response within the timeout"))

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.waiter is not None and not self.waiter.done():
            if self._until_close and self._need >= 0:
                self._done()
            else:
                self.waiter.set_exception(
                    ConnectionResetError("server closed the connection before the response was complete")
                )
            self.waiter = None


async def _connect(target: Target) -> _Connection:
    loop = asyncio.get_running_loop()
    _, conn = await loop.create_connection(lambda: _Connection(target.method == "HEAD"), target.host, target.port)
    return conn


# --------------------------------------------------------------------------- results


@dataclass
class BenchResult:
    """What one run measured. Latencies are seconds, one per answered request."""

    target: Target
    concurrency: int
    rate: float | None
    latencies: list[float] = field(default_factory=list)
    ok_latencies: list[float] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    failures: Counter[str] = field(default_factory=Counter)
    elapsed: float = 0.0
    client_cpu: float = 0.0

    def merge(self, other: BenchResult) -> None:
        self.latencies.extend(other.latencies)
        self.ok_latencies.extend(other.ok_latencies)
        self.statuses.update(other.statuses)
        self.failures.update(other.failures)
        self.elapsed += other.elapsed
        self.client_cpu += other.client_cpu

    @property
    def completed(self) -> int:
        return len(self.latencies)

    @property
    def errors(self) -> dict[str, int]:
        """Non-2xx answers by status, and requests that got no answer by the reason."""
        out = {str(s): n for s, n in sorted(self.statuses.items()) if not 200 <= s < 300}
        out.update(sorted(self.failures.items()))
        return out

    @property
    def rps(self) -> float:
        return self.completed / self.elapsed if self.elapsed > 0 else 0.0

    @property
    def client_ceiling_rps(self) -> float | None:
        """Requests per CPU-second the client itself spent: the most it could send on this machine."""
        if self.client_cpu <= 0 or self.completed == 0:
            return None
        return self.completed / self.client_cpu

    @property
    def client_busy(self) -> float:
        return self.client_cpu / self.elapsed if self.elapsed > 0 else 0.0

    def latency_ms(self) -> dict[str, float]:
        """Statistics over 2xx answers (over every answer when there was none)."""
        values = self.ok_latencies or self.latencies
        if not values:
            return {}
        arr = np.asarray(values) * 1000.0
        out = {"mean": float(arr.mean()), "min": float(arr.min()), "max": float(arr.max())}
        for name, q in PERCENTILES:
            out[name] = float(np.percentile(arr, q))
        return out

    def warnings(self) -> list[str]:
        notes = []
        if self.completed >= 50 and self.client_busy >= CLIENT_BUSY_WARN:
            ceiling = self.client_ceiling_rps or 0.0
            notes.append(
                f"the client used {self.client_busy:.0%} of a core; its ceiling for this request is about "
                f"{ceiling:,.0f} req/s, so the measured {self.rps:,.0f} req/s may be limited by the client"
            )
        if self.completed == 0:
            notes.append("no request was answered")
        return notes

    def summary(self) -> dict[str, Any]:
        """The machine-readable form printed by ``--json``."""
        ceiling = self.client_ceiling_rps
        return {
            "url": self.target.url,
            "method": self.target.method,
            "body_bytes": len(self.target.body),
            "concurrency": self.concurrency,
            "rate": self.rate,
            "requests": self.completed + sum(self.failures.values()),
            "completed": self.completed,
            "ok": sum(n for s, n in self.statuses.items() if 200 <= s < 300),
            "errors": self.errors,
            "statuses": {str(s): n for s, n in sorted(self.statuses.items())},
            "duration_s": self.elapsed,
            "rps": self.rps,
            "latency_ms": self.latency_ms(),
            "client_cpu_share": self.client_busy,
            "client_ceiling_rps": ceiling,
            "warnings": self.warnings(),
        }


# --------------------------------------------------------------------------- running


class _Plan:
    """Hands out request slots until the count or the deadline is reached."""

    def __init__(self, requests: int | None, deadline: float | None) -> None:
        self.left = requests if requests is not None else math.inf
        self.deadline = deadline
        self.taken = 0

    def take(self, now: float) -> bool:
        if self.left <= 0 or (self.deadline is not None and now >= self.deadline):
            return False
        self.left -= 1
        self.taken += 1
        return True


class _Progress:
    """A one-line progress bar on stderr, only when stderr is a terminal."""

    def __init__(self, total: int | None, duration: float | None, label: str, enabled: bool) -> None:
        self.enabled = enabled and sys.stderr.isatty()
        self.total = total
        self.duration = duration
        self.label = label

    def show(self, done: int, elapsed: float) -> None:
        if not self.enabled:
            return
        fractions = []
        if self.total:
            fractions.append(done / self.total)
        if self.duration:
            fractions.append(elapsed / self.duration)
        frac = min(1.0, max(fractions)) if fractions else 0.0
        width = 30
        bar = "#" * int(frac * width)
        rps = done / elapsed if elapsed > 0 else 0.0
        sys.stderr.write(f"\r{self.label} [{bar:<{width}}] {done:>8,} done  {rps:>9,.0f} req/s")
        sys.stderr.flush()

    def close(self) -> None:
        if self.enabled:
            sys.stderr.write("\r" + " " * 90 + "\r")
            sys.stderr.flush()


def _record(result: BenchResult, status: int, latency: float) -> None:
    result.latencies.append(latency)
    result.statuses[status] += 1
    if 200 <= status < 300:
        result.ok_latencies.append(latency)


async def _watchdog(conns: list[_Connection], timeout: float, stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    while not stop.is_set():
        now = loop.time()
        for conn in conns:
            if conn.waiter is not None and now - conn.started > timeout:
                conn.timeout()
        try:
            await asyncio.wait_for(stop.wait(), min(0.25, timeout / 4))
        except TimeoutError:
            pass


async def _progress_loop(progress: _Progress, result: BenchResult, t0: float, stop: asyncio.Event) -> None:
    while not stop.is_set():
        progress.show(result.completed, time.perf_counter() - t0)
        try:
            await asyncio.wait_for(stop.wait(), 0.2)
        except TimeoutError:
            pass


async def _closed_loop(
    target: Target,
    result: BenchResult,
    requests: int | None,
    duration: float | None,
    timeout: float,
    progress: _Progress,
) -> None:
    concurrency = result.concurrency
    conns: list[_Connection] = []
    opened = await asyncio.gather(*(_connect(target) for _ in range(concurrency)), return_exceptions=True)
    for item in opened:
        if isinstance(item, BaseException):
            result.failures[f"connect: {type(item).__name__}"] += 1
        else:
            conns.append(item)
    if not conns:
        return
    perf = time.perf_counter
    t0 = perf()
    cpu0 = time.thread_time()
    plan = _Plan(requests, t0 + duration if duration else None)
    stop = asyncio.Event()
    watchdog = asyncio.create_task(_watchdog(conns, timeout, stop))
    ticker = asyncio.create_task(_progress_loop(progress, result, t0, stop))

    async def worker(index: int) -> None:
        conn = conns[index]
        request = target.request
        while plan.take(perf()):
            start = perf()
            try:
                if conn.closed:
                    conn = await _connect(target)
                    conns[index] = conn
                status = await conn.send(request)
            except (OSError, ConnectionError, TimeoutError) as exc:
                result.failures[type(exc).__name__] += 1
                conn.closed = True
                continue
            _record(result, status, perf() - start)

    await asyncio.gather(*(worker(i) for i in range(len(conns))))
    result.elapsed = perf() - t0
    result.client_cpu = time.thread_time() - cpu0
    stop.set()
    await asyncio.gather(watchdog, ticker)
    for conn in conns:
        if conn.transport is not None:
            conn.transport.close()


async def _open_loop(
    target: Target,
    result: BenchResult,
    requests: int | None,
    duration: float | None,
    timeout: float,
    progress: _Progress,
) -> None:
    rate = float(result.rate or 0)
    total = requests if requests is not None else int(rate * (duration or 0))
    if duration is not None and requests is not None:
        total = min(requests, int(rate * duration))
    idle: list[_Connection] = []
    conns: list[_Connection] = []
    free = asyncio.Condition()
    perf = time.perf_counter
    stop = asyncio.Event()
    watchdog = asyncio.create_task(_watchdog(conns, timeout, stop))

    async def one(scheduled: float) -> None:
        async with free:
            while not idle and len(conns) >= result.concurrency:
                await free.wait()
            conn = idle.pop() if idle else None
            if conn is None:
                conn = _Connection(False)  # placeholder holds the slot while connecting
                conns.append(conn)
        try:
            if conn.transport is None or conn.closed:
                fresh = await _connect(target)
                conns[conns.index(conn)] = fresh
                conn = fresh
            start = min(scheduled, perf())  # a request sent early is timed from when it was sent
            status = await conn.send(target.request)
            _record(result, status, perf() - start)
        except (OSError, ConnectionError, TimeoutError) as exc:
            result.failures[type(exc).__name__] += 1
            conn.closed = True
        async with free:
            idle.append(conn)
            free.notify()

    t0 = perf()
    cpu0 = time.thread_time()
    ticker = asyncio.create_task(_progress_loop(progress, result, t0, stop))
    tasks: set[asyncio.Task[None]] = set()
    for i in range(total):
        scheduled = t0 + i / rate
        delay = scheduled - perf()
        if delay > 0.0005:
            await asyncio.sleep(delay)
        task = asyncio.create_task(one(scheduled))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    if tasks:
        await asyncio.gather(*tasks)
    result.elapsed = perf() - t0
    result.client_cpu = time.thread_time() - cpu0
    stop.set()
    await asyncio.gather(watchdog, ticker)
    for conn in conns:
        if conn.transport is not None:
            conn.transport.close()


def _run_loop(coro_factory: Callable[[], Any]) -> None:
    try:
        import uvloop

        factory: Callable[[], asyncio.AbstractEventLoop] | None = uvloop.new_event_loop
    except ImportError:
        factory = None
    with asyncio.Runner(loop_factory=factory) as runner:
        runner.run(coro_factory())


def run(
    target: Target,
    requests: int | None = None,
    concurrency: int = 1,
    rate: float | None = None,
    duration: float | None = None,
    warmup: int = 0,
    timeout: float = 30.0,
    progress: bool = False,
) -> BenchResult:
    """Send requests to ``target`` and measure them.

    Closed loop with ``concurrency`` connections unless ``rate`` (requests/s) is given;
    then open loop with at most ``concurrency`` connections. Stops after ``requests``
    or ``duration`` seconds, whichever comes first (1,000 requests when neither is given).
    ``warmup`` requests go first and are not counted.
    """
    if concurrency < 1:
        raise ConfigError(f"bench: concurrency must be at least 1, got {concurrency}")
    if rate is not None and rate <= 0:
        raise ConfigError(f"bench: --rate must be positive, got {rate}")
    if requests is not None and requests < 1:
        raise ConfigError(f"bench: -n must be at least 1, got {requests}")
    if duration is not None and duration <= 0:
        raise ConfigError(f"bench: --duration must be positive, got {duration}")
    if requests is None and duration is None:
        requests = 1000
    result = BenchResult(target, concurrency, rate)
    bar = _Progress(requests, duration, f"c={concurrency}" if rate is None else f"{rate:g}/s", progress)

    async def main() -> None:
        if warmup:
            scratch = BenchResult(target, concurrency, None)
            await _closed_loop(target, scratch, warmup, None, timeout, _Progress(None, None, "", False))
        if rate is None:
            await _closed_loop(target, result, requests, duration, timeout, bar)
        else:
            await _open_loop(target, result, requests, duration, timeout, bar)

    try:
        _run_loop(main)
    finally:
        bar.close()
    return result


def sweep(target: Target, levels: Sequence[int], **kwargs: Any) -> list[BenchResult]:
    """One closed-loop run per concurrency level, same request count or duration each."""
    return [run(target, concurrency=c, **kwargs) for c in levels]


def compare(
    a: Target, b: Target, rounds: int = 6, requests: int | None = None, duration: float | None = None, **kwargs: Any
) -> tuple[BenchResult, BenchResult]:
    """Run ``a`` and ``b`` in alternating rounds (ABBA...) so drift on the machine hits both alike."""
    if rounds < 1:
        raise ConfigError(f"bench: --rounds must be at least 1, got {rounds}")
    if requests is None and duration is None:
        requests = 1000
    per_requests = max(1, math.ceil(requests / rounds)) if requests is not None else None
    per_duration = duration / rounds if duration is not None else None
    total = {
        "a": BenchResult(a, kwargs.get("concurrency", 1), kwargs.get("rate")),
        "b": BenchResult(b, kwargs.get("concurrency", 1), kwargs.get("rate")),
    }
    for r in range(rounds):
        order = ("a", "b") if r % 2 == 0 else ("b", "a")
        for key in order:
            target = a if key == "a" else b
            total[key].merge(run(target, requests=per_requests, duration=per_duration, **kwargs))
    return total["a"], total["b"]


def ratios(a: BenchResult, b: BenchResult) -> dict[str, float | None]:
    """``b / a`` for each latency statistic and for throughput."""
    la, lb = a.latency_ms(), b.latency_ms()
    out: dict[str, float | None] = {}
    for key in ("mean", "median", "p90", "p99", "p99.9"):
        out[key] = lb[key] / la[key] if la.get(key) and key in lb else None
    out["rps"] = b.rps / a.rps if a.rps else None
    return out


# --------------------------------------------------------------------------- request bodies


def fetch_metadata(base_url: str, model: str, timeout: float = 10.0) -> dict[str, Any]:
    """GET ``/v2/models/{model}`` from the server at ``base_url``."""
    url = f"{_base(base_url)}/v2/models/{model}"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            data = json.loads(response.read())
    except urllib.error.HTTPError as exc:
        raise ConfigError(
            f"bench: GET {url} answered {exc.code}; --model needs a server with Open Inference Protocol V2 "
            "metadata (otherwise give the request body with --body @FILE)"
        ) from exc
    except (urllib.error.URLError, OSError) as exc:
        raise ConfigError(f"bench: could not GET {url}: {exc}") from exc
    except ValueError as exc:
        raise ConfigError(f"bench: GET {url} did not return JSON: {exc}") from exc
    if not isinstance(data, dict) or not isinstance(data.get("inputs"), list):
        raise ConfigError(f"bench: GET {url} returned no 'inputs' list; is it a V2 model metadata endpoint?")
    return data


def _base(url: str) -> str:
    parts = urlsplit(url if "://" in url else f"http://{url}")
    return f"{parts.scheme}://{parts.netloc}"


_NUMERIC = {"FP16", "FP32", "FP64"}
_INTEGER = {"INT8", "INT16", "INT32", "INT64", "UINT8", "UINT16", "UINT32", "UINT64"}
_WORDS = ("good", "fine", "ok", "great", "bad")


def _sample_values(datatype: str, count: int, seed: int) -> list[Any]:
    if datatype in _NUMERIC:
        return [round(0.1 + ((seed + i) * 37 % 100) / 10.0, 2) for i in range(count)]
    if datatype in _INTEGER:
        return [(seed + i) % 5 + 1 for i in range(count)]
    if datatype == "BOOL":
        return [(seed + i) % 2 == 0 for i in range(count)]
    if datatype == "BYTES":
        return [_WORDS[(seed + i) % len(_WORDS)] for i in range(count)]
    raise ConfigError(
        f"bench: input datatype '{datatype}' has no sample values; supported: BOOL, BYTES, "
        f"{', '.join(sorted(_NUMERIC | _INTEGER))}"
    )


def body_from_metadata(metadata: dict[str, Any], rows: int = 1, mode: str = "v2") -> dict[str, Any]:
    """A valid request of ``rows`` rows for the signature in a V2 metadata document.

    Free dimensions after the first become 1. ``v2`` makes an infer request;
    ``v1`` makes ``{"instances": [...]}`` rows (a dict per row for several inputs).
    """
    if rows < 1:
        raise ConfigError(f"bench: --rows must be at least 1, got {rows}")
    name = metadata.get("name", "?")
    inputs = metadata.get("inputs") or []
    if not inputs:
        raise ConfigError(f"bench: model '{name}' lists no inputs in its metadata")
    tensors = []
    for k, spec in enumerate(inputs):
        if not isinstance(spec, dict) or "name" not in spec or "datatype" not in spec:
            raise ConfigError(f"bench: model '{name}': input #{k} in the metadata needs 'name' and 'datatype'")
        shape = [int(d) for d in spec.get("shape") or [-1]]
        shape = [rows] + [d if d > 0 else 1 for d in shape[1:]]
        count = math.prod(shape)
        tensors.append((spec["name"], str(spec["datatype"]).upper(), shape, _sample_values(spec["datatype"], count, k)))
    if mode == "v2":
        return {"inputs": [{"name": n, "datatype": dt, "shape": shape, "data": data} for n, dt, shape, data in tensors]}
    if mode == "v1":
        per_row: list[list[Any]] = []
        for _, _, shape, data in tensors:
            arr = np.asarray(data, dtype=object).reshape(shape)
            per_row.append([_plain(arr[r]) for r in range(rows)])
        if len(tensors) == 1:
            return {"instances": per_row[0]}
        return {"instances": [{t[0]: per_row[i][r] for i, t in enumerate(tensors)} for r in range(rows)]}
    raise ConfigError(f"bench: no body generation for mode '{mode}'; supported: v1, v2")


def _plain(value: Any) -> Any:
    return value.tolist() if isinstance(value, np.ndarray) else value


def endpoint_url(url: str, model: str | None, mode: str) -> str:
    """The URL to hit: ``url`` itself when it has a path, else the model's V1/V2 predict route."""
    parts = urlsplit(url if "://" in url else f"http://{url}")
    if parts.path not in ("", "/") or model is None or mode == "raw":
        return url if "://" in url else f"http://{url}"
    if mode == "v2":
        return f"{_base(url)}/v2/models/{model}/infer"
    return f"{_base(url)}/v1/models/{model}:predict"


# --------------------------------------------------------------------------- output


def format_result(result: BenchResult, title: str | None = None) -> str:
    """The human-readable report of one run."""
    lat = result.latency_ms()
    load = (
        f"rate={result.rate:g}/s (max {result.concurrency} connections)" if result.rate else f"c={result.concurrency}"
    )
    body = f", {len(result.target.body):,}-byte body" if result.target.body else ""
    lines = [title or f"{result.target.label}  ({load}{body})"]
    errors = result.errors
    err_count = sum(errors.values())
    lines.append(
        f"  requests  {result.completed:,} answered in {result.elapsed:.2f} s   {result.rps:,.1f} req/s   "
        f"errors {err_count:,}"
    )
    if lat:
        which = "2xx" if result.ok_latencies else "all answers"
        lines.append(
            f"  latency   mean {lat['mean']:.2f}  median {lat['median']:.2f}  min {lat['min']:.2f}  "
            f"max {lat['max']:.2f}  p90 {lat['p90']:.2f}  p99 {lat['p99']:.2f}  p99.9 {lat['p99.9']:.2f}  ms ({which})"
        )
    if result.statuses:
        lines.append("  status    " + "  ".join(f"{s}: {n:,}" for s, n in sorted(result.statuses.items())))
    if result.failures:
        lines.append("  failed    " + "  ".join(f"{k}: {n:,}" for k, n in sorted(result.failures.items())))
    ceiling = result.client_ceiling_rps
    if ceiling:
        lines.append(f"  client    {result.client_busy:.0%} of one core; its ceiling here ~{ceiling:,.0f} req/s")
    lines.extend(f"  warning   {w}" for w in result.warnings())
    return "\n".join(lines)


def format_sweep(results: Sequence[BenchResult]) -> str:
    lines = [f"{'c':>5} {'req/s':>10} {'mean':>8} {'median':>8} {'p90':>8} {'p99':>8} {'p99.9':>8} {'errors':>7}"]
    for r in results:
        lat = r.latency_ms()
        cells = "".join(f" {lat.get(k, float('nan')):8.2f}" for k in ("mean", "median", "p90", "p99", "p99.9"))
        lines.append(f"{r.concurrency:>5} {r.rps:>10,.1f}{cells} {sum(r.errors.values()):>7,}")
    notes = [f"c={r.concurrency}: {w}" for r in results for w in r.warnings()]
    return "\n".join(lines + [f"warning: {n}" for n in notes])


def format_compare(a: BenchResult, b: BenchResult) -> str:
    parts = [format_result(a, f"A  {a.target.label}"), format_result(b, f"B  {b.target.label}")]
    r = ratios(a, b)
    cells = "  ".join(f"{k} {v:.2f}x" for k, v in r.items() if v is not None)
    parts.append(f"B / A     {cells}")
    return "\n".join(parts)


def plot_results(
    path: str, results: Sequence[BenchResult], labels: Sequence[str] | None = None, sweep_results: bool = False
) -> None:
    """Latency histogram and CDF; for a sweep also throughput and p99 against concurrency."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        import matplotlib.ticker
    except ImportError as exc:
        raise ConfigError("bench: --plot needs matplotlib (pip install matplotlib)") from exc
    labels = list(labels) if labels is not None else [r.target.label for r in results]
    panels = 3 if sweep_results else 2
    fig, axes = plt.subplots(1, panels, figsize=(5.5 * panels, 4.2))
    hist_ax, cdf_ax = axes[0], axes[1]
    series = [np.sort(np.asarray(r.ok_latencies or r.latencies) * 1000.0) for r in results]
    present = [v for v in series if v.size]
    if present:  # shared log-spaced bins, so runs of different speed stay comparable
        low = max(min(float(v[0]) for v in present), 1e-3)
        high = max(float(np.percentile(v, 99.5)) for v in present)
        bins = np.geomspace(low, max(high, low * 1.01), 60)
        for values, label in zip(series, labels, strict=True):
            if values.size:
                hist_ax.hist(values[values <= high], bins=bins, alpha=0.55, label=label)
                cdf_ax.plot(values, np.arange(1, values.size + 1) / values.size, label=label)
    hist_ax.set_xscale("log")
    hist_ax.set_xlabel("latency (ms), up to p99.5")
    hist_ax.set_ylabel("requests")
    hist_ax.set_title("latency histogram")
    cdf_ax.set_xscale("log")
    cdf_ax.set_xlabel("latency (ms)")
    cdf_ax.set_ylabel("fraction of requests")
    cdf_ax.set_title("latency CDF")
    cdf_ax.grid(True, alpha=0.3)
    for ax in (hist_ax, cdf_ax):
        ax.xaxis.set_major_formatter(matplotlib.ticker.FormatStrFormatter("%g"))
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.legend(fontsize=7)
    if sweep_results:
        ax = axes[2]
        levels = [r.concurrency for r in results]
        ax.plot(levels, [r.rps for r in results], marker="o", color="tab:blue")
        ax.set_xscale("log", base=2)
        ax.set_xticks(levels, [str(c) for c in levels])
        ax.set_xlabel("concurrency")
        ax.set_ylabel("req/s", color="tab:blue")
        ax.set_title("throughput and p99 vs concurrency")
        twin = ax.twinx()
        twin.plot(levels, [r.latency_ms().get("p99", float("nan")) for r in results], marker="s", color="tab:red")
        twin.set_ylabel("p99 latency (ms)", color="tab:red")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
