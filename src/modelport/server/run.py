"""Run the app under uvicorn: uvloop + httptools, TCP_NODELAY on every connection.

With ``workers > 1`` there are two ways to start the workers:

- **fork after load** (the default when it is safe): the parent binds the socket, loads the
  repository once, freezes the garbage collector's view of what it loaded, and forks the
  workers, which share those pages copy-on-write and each run uvicorn on the inherited
  socket. A worker starts in milliseconds instead of re-importing and re-loading everything.
  The parent supervises: SIGTERM/SIGINT are forwarded to every worker, a worker that dies
  is replaced.
- **fresh interpreters** (uvicorn's own multiprocess mode): each worker imports
  :func:`app_from_env` and loads the repository itself; the options travel in
  ``MODELPORT_SERVE_CONFIG``.

Forking is only safe when what the parent loaded has no threads or runtime state a child
cannot inherit: OpenMP pools (scikit-learn, XGBoost, LightGBM), onnxruntime's sessions,
a JVM. So after loading, if any of those frameworks is imported (or a thread other than the
log flusher runs), the parent re-executes itself in fresh-interpreter mode instead. With
the compile cache (:mod:`modelport.compile.cache`) a compiled scikit-learn or LightGBM
model loads without its framework: a load that filled the cache re-executes once more and
then forks; a repository that still cannot fork is remembered (in the cache directory), so
later starts skip the parent's load.
``MODELPORT_WORKER_START=spawn`` forces fresh interpreters.
"""

from __future__ import annotations

import asyncio
import gc
import hashlib
import importlib
import json
import logging
import os
import shutil
import signal
import socket
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, NoReturn

from modelport.config import BatchingConfig
from modelport.dataplane import BatchingPolicy
from modelport.repository import Repository
from modelport.server.app import DEFAULT_MAX_BODY, ModelportApp, ServerOptions

__all__ = ["ServeConfig", "app_from_env", "build_app", "serve"]

ENV = "MODELPORT_SERVE_CONFIG"
# "spawn": fresh interpreters; "fork" (default): fork after the load when safe; "retry": set on re-exec
START_ENV = "MODELPORT_WORKER_START"
# Imported after a load, these mean runtime state a forked child cannot inherit safely.
FORK_UNSAFE = ("sklearn", "onnxruntime", "xgboost", "lightgbm", "torch", "tensorflow", "pyspark", "py4j", "grpc")
log = logging.getLogger("modelport.server")


@dataclass
class ServeConfig:
    root: str
    host: str = "127.0.0.1"
    port: int = 8080
    workers: int = 1
    auth_token: str | None = None
    max_body: int = DEFAULT_MAX_BODY
    cors_origins: list[str] = field(default_factory=list)
    ssl_certfile: str | None = None
    ssl_keyfile: str | None = None
    compile: bool | None = None
    log_level: str = "info"
    grace_seconds: float = 10.0
    batching: str = "auto"  # "auto", "off", or "on" with the two values below
    max_batch_size: int = 64
    max_latency_ms: float = 0.0
    grpc_port: int | None = None
    log_format: str = "auto"
    access_log: bool = True
    metrics: bool = True
    payload_log: str | None = None
    payload_log_max_bytes: int = 64 * 1024 * 1024
    payload_log_max_seconds: float = 3600.0
    drain_seconds: float = 0.0
    poll_seconds: float = 5.0
    admin_token: str | None = None
    request_timeout: float | None = 60.0


def build_app(config: ServeConfig, repository: Repository | None = None) -> ModelportApp:
    """The app over ``repository`` (loaded here unless given: fork mode loads it in the parent)."""
    if repository is None:
        repository = Repository(config.root, compile=config.compile).load()
    # Each worker process polls and reloads on its own (see docs/versions-and-traffic.md).
    repository.watch(config.poll_seconds)
    options = ServerOptions(
        auth_token=config.auth_token,
        admin_token=config.admin_token,
        max_body=config.max_body,
        cors_origins=tuple(config.cors_origins),
        batching=batching_policy(config),
        grpc_host=config.host,
        grpc_port=config.grpc_port,
        drain_seconds=config.drain_seconds,
        request_timeout=config.request_timeout or None,
        ssl_certfile=config.ssl_certfile,
        ssl_keyfile=config.ssl_keyfile,
    )
    if config.metrics:
        from modelport.metrics import Metrics

        options.metrics = Metrics()
        options.observers.append(options.metrics)
    if config.access_log:
        from modelport.logs import AccessLog

        options.observers.append(AccessLog())
    if config.payload_log:
        from modelport.payload_log import PayloadLog

        metrics = options.metrics
        options.observers.append(
            PayloadLog(
                config.payload_log,
                max_bytes=config.payload_log_max_bytes,
                max_seconds=config.payload_log_max_seconds,
                on_depth=metrics.queue_depth.inc if metrics is not None else None,
                on_written=metrics.payload_records.inc if metrics is not None else None,
            )
        )
    return ModelportApp(repository, options)


def batching_policy(config: ServeConfig) -> BatchingPolicy:
    """Server-wide batching default; each model's own [batching] table still wins."""
    if config.batching == "off":
        return BatchingPolicy(default=BatchingConfig(max_batch_size=0), auto=False)
    if config.batching == "on":
        return BatchingPolicy(default=BatchingConfig(config.max_batch_size, config.max_latency_ms), auto=False)
    return BatchingPolicy(auto=True)


def app_from_env() -> ModelportApp:
    """The factory each worker process calls."""
    from modelport.logs import configure_logging

    config = ServeConfig(**json.loads(os.environ[ENV]))
    configure_logging(config.log_level, config.log_format)
    return build_app(config)


try:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol as _BaseProtocol
except ImportError:  # httptools missing: the pure-Python parser
    from uvicorn.protocols.http.h11_impl import H11Protocol as _BaseProtocol  # type: ignore[assignment]


class NoDelayProtocol(_BaseProtocol):
    """uvicorn's HTTP protocol with TCP_NODELAY set on the accepted socket, headers and body written together.

    uvicorn's asyncio transports do not always set TCP_NODELAY (several workers on the
    plain loop lose it); without it each keep-alive response can wait ~40 ms on Nagle.
    With it, uvicorn's separate header and body writes become two segments, so the
    transport is wrapped to send them as one (server/transport.py).
    """

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        super().connection_made(transport)
        if transport.get_extra_info("sslcontext") is None:  # TLS records are framed by the SSL layer anyway
            from modelport.server.transport import CoalescingTransport

            self.transport = CoalescingTransport(transport, self.loop)  # type: ignore[assignment]


def serve(config: ServeConfig) -> None:
    import uvicorn

    try:
        import uvloop  # noqa: F401

        loop = "uvloop"
    except ImportError:
        loop = "asyncio"
    common: dict[str, Any] = {
        "host": config.host,
        "port": config.port,
        "loop": loop,
        "http": NoDelayProtocol,
        "log_level": config.log_level,
        "access_log": False,
        "ssl_certfile": config.ssl_certfile,
        "ssl_keyfile": config.ssl_keyfile,
        "timeout_graceful_shutdown": config.grace_seconds,
        "lifespan": "on",
        "ws": "none",  # the app speaks HTTP only: no websockets library in every worker
        "proxy_headers": False,  # nothing reads the client address or scheme: skip the middleware per request
        "log_config": None,  # keep modelport.logs' handlers (JSON or text)
    }
    if config.workers > 1:
        os.environ[ENV] = json.dumps(asdict(config))
        metrics_dir = _multiprocess_metrics_dir(config)
        try:
            start = os.environ.get(START_ENV, "fork") if hasattr(os, "fork") else "spawn"
            remembered = _remembered_unsafe(config) if start == "fork" else None
            if remembered is not None:
                log.info("workers start as fresh interpreters: %s (remembered from an earlier start)", remembered)
            elif start != "spawn":
                from modelport.compile import cache

                repository = Repository(config.root, compile=config.compile).load()
                unsafe = fork_unsafe()
                if unsafe is None:
                    _report(repository, config)
                    ForkedWorkers(config, common, repository).run()
                    return
                if cache.stored and start == "fork":
                    # This load compiled and cached kernels: the next one may need no framework.
                    log.info("workers start after one more load, from the compile cache: %s", unsafe)
                    start = "retry"
                else:
                    log.info("workers start as fresh interpreters: %s", unsafe)
                    _remember_unsafe(config, unsafe)
                    start = "spawn"
                _reexec(metrics_dir, start)  # returns only if it could not
                metrics_dir = _multiprocess_metrics_dir(config)
            uvicorn.run("modelport.server.run:app_from_env", factory=True, workers=config.workers, **common)
        finally:
            if metrics_dir is not None:
                shutil.rmtree(metrics_dir, ignore_errors=True)
    else:
        if config.metrics and os.environ.get("PROMETHEUS_MULTIPROC_DIR"):  # set by the operator: honour it
            from modelport.metrics import prepare_multiprocess

            prepare_multiprocess(os.environ["PROMETHEUS_MULTIPROC_DIR"])
        from modelport.compile import cache

        repository = Repository(config.root, compile=config.compile).load()
        loaded = frameworks_loaded()
        if cache.stored and loaded and os.environ.get(START_ENV) != "retry" and hasattr(os, "execv"):
            # The frameworks were imported only to compile and check kernels that now sit in the
            # cache: start again without them (seconds once, ~150 MB for the life of the process).
            log.info("restarting once to serve from the compile cache without %s", ", ".join(loaded))
            _reexec(None, "retry")  # returns only if it could not
        app = build_app(config, repository)
        _report(app.repository, config)
        uvicorn.run(app, **common)


def frameworks_loaded() -> list[str]:
    """The model frameworks this process has imported (see FORK_UNSAFE)."""
    return sorted(m for m in FORK_UNSAFE if m in sys.modules)


def fork_unsafe() -> str | None:
    """Why this process must not fork workers now, or None when it may."""
    loaded = frameworks_loaded()
    if loaded:
        return (
            f"the loaded models use {', '.join(loaded)}, whose threads or runtime state a forked worker cannot inherit"
        )
    others = [t.name for t in threading.enumerate() if t is not threading.main_thread()]
    others = [n for n in others if n != "modelport-log-flush"]  # flushed before the fork, re-made in each worker
    if others:
        return f"threads are running after the load ({', '.join(sorted(others))})"
    return None


def _trim_heap() -> None:
    """Give the heap the load freed back to the system (glibc only), so no worker inherits it."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def _flush_logs() -> None:
    """Write out buffered log lines now (before exec, and before fork, which would copy them)."""
    for handler in logging.getLogger().handlers:
        getattr(handler, "flush_now", handler.flush)()


def _repository_stamp(config: ServeConfig) -> Path | None:
    """Where the fork verdict for this repository, as it is now, would be remembered (local roots only)."""
    from modelport.compile.cache import cache_dir, environment

    directory = cache_dir()
    root = Path(config.root)
    if directory is None or "://" in config.root or not root.exists():
        return None
    h = hashlib.sha256(str(root.resolve()).encode())
    h.update(str(config.compile).encode())
    h.update(environment().encode())  # a new modelport or library version may compile what this one could not
    try:
        for path in sorted(root.rglob("*")) if root.is_dir() else [root]:
            if path.is_file():
                st = path.stat()
                name = path.relative_to(root) if path != root else path.name
                h.update(f"{name}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    except OSError:
        return None
    return directory / "fork-unsafe" / h.hexdigest()


def _remembered_unsafe(config: ServeConfig) -> str | None:
    """The reason an earlier start of this very repository could not fork, so this one need not load twice."""
    stamp = _repository_stamp(config)
    try:
        return stamp.read_text() if stamp is not None else None
    except OSError:
        return None


def _remember_unsafe(config: ServeConfig, reason: str) -> None:
    stamp = _repository_stamp(config)
    if stamp is None:
        return
    try:
        stamp.parent.mkdir(parents=True, exist_ok=True)
        stamp.write_text(reason)
    except OSError:
        pass


def _reexec(metrics_dir: str | None, start: str) -> None:
    """Start this command again (same pid) with ``MODELPORT_WORKER_START=start``, without the memory the load took."""
    if metrics_dir is not None:
        shutil.rmtree(metrics_dir, ignore_errors=True)
        os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)  # the new image makes its own
    os.environ[START_ENV] = start
    _flush_logs()
    argv = list(getattr(sys, "orig_argv", []) or [sys.executable, *sys.argv])
    try:
        os.execv(sys.executable, [sys.executable, *argv[1:]])
    except OSError as exc:  # cannot re-execute: spawn from here, the parent keeping what it loaded
        log.warning("could not re-execute for fresh-interpreter workers (%s); starting them from this process", exc)


class ForkedWorkers:
    """The parent in fork mode: binds the socket, forks ``workers`` children and supervises them."""

    def __init__(self, config: ServeConfig, common: dict[str, Any], repository: Repository) -> None:
        self.config = config
        self.common = common
        self.repository = repository
        self.children: dict[int, float] = {}  # pid -> start time
        self.stopping = False

    def run(self) -> None:
        import uvicorn

        uv_config = uvicorn.Config("modelport.server.run:app_from_env", **self.common)
        sock = uv_config.bind_socket()  # logs "Uvicorn running on ..."
        # Import what every worker will need here, once, so the pages are shared.
        needed = ["uvicorn.server", "uvicorn.lifespan.on", "uvicorn.loops.auto"]
        if self.config.metrics:
            needed += ["prometheus_client", "modelport.metrics"]
        if self.config.payload_log:
            needed.append("modelport.payload_log")
        if self.common.get("loop") == "uvloop":
            needed += ["uvloop", "uvicorn.loops.uvloop"]
        for module in needed:
            importlib.import_module(module)
        gc.collect()
        _trim_heap()
        gc.freeze()  # what the parent loaded is never collected: workers will not touch (and copy) its pages
        previous = {sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
        log.info("Started parent process [%d]; forking %d workers after the load", os.getpid(), self.config.workers)
        try:
            for _ in range(self.config.workers):
                self._fork(sock)
            self._supervise(sock)
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            sock.close()

    def _on_signal(self, sig: int, frame: Any) -> None:
        if not self.stopping:
            log.info("%s: stopping %d workers", signal.Signals(sig).name, len(self.children))
        self.stopping = True
        for pid in list(self.children):
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass

    def _fork(self, sock: socket.socket) -> None:
        _flush_logs()
        pid = os.fork()
        if pid == 0:
            self._child(sock)  # never returns
        self.children[pid] = time.monotonic()

    def _child(self, sock: socket.socket) -> NoReturn:
        code = 1
        try:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            signal.signal(signal.SIGINT, signal.default_int_handler)
            import uvicorn

            from modelport.logs import configure_logging

            configure_logging(self.config.log_level, self.config.log_format)  # a handler (and flusher) of its own
            app = build_app(self.config, self.repository)
            server = uvicorn.Server(uvicorn.Config(app, **self.common))
            server.run(sockets=[sock])
            code = 0 if server.started else 3
        except KeyboardInterrupt:
            code = 0
        except BaseException:
            log.exception("worker %d failed", os.getpid())
        finally:
            try:
                logging.shutdown()
            finally:
                os._exit(code)

    def _supervise(self, sock: socket.socket) -> None:
        while self.children:
            try:
                pid, status = os.wait()
            except ChildProcessError:
                break
            started = self.children.pop(pid, None)
            if started is None or self.stopping:
                continue
            how = f"exit code {os.waitstatus_to_exitcode(status)}"
            log.warning("worker %d ended unexpectedly (%s); starting another", pid, how)
            if time.monotonic() - started < 1.0:  # dying at start: do not spin
                time.sleep(1.0)
            if not self.stopping:
                self._fork(sock)


def _multiprocess_metrics_dir(config: ServeConfig) -> str | None:
    """Workers share metrics through files in PROMETHEUS_MULTIPROC_DIR; make a fresh one
    for this server (returned, to remove on exit) unless the operator chose one."""
    if not config.metrics:
        return None
    from modelport.metrics import MULTIPROC_ENV, prepare_multiprocess

    chosen = os.environ.get(MULTIPROC_ENV)
    if chosen:
        prepare_multiprocess(chosen)
        return None
    made = tempfile.mkdtemp(prefix="modelport-metrics-")
    os.environ[MULTIPROC_ENV] = made
    return made


def _report(repository: Repository, config: ServeConfig) -> None:
    scheme = "https" if config.ssl_certfile else "http"
    for entry in repository.entries():
        for v in sorted(entry.versions.values(), key=lambda v: v.version):
            detail = f" ({v.reason})" if v.reason else f" in {v.load_seconds * 1000:.0f} ms"
            log.info("model %s version %d: %s%s", entry.name, v.version, v.state, detail)
    log.info("serving %s on %s://%s:%d  (web page /, API docs /docs)", config.root, scheme, config.host, config.port)
