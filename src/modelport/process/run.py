"""Run the app under granian, through its public Python API: one process model, no private hooks.

granian's main process binds the socket, supervises ``--workers`` worker processes (a worker
that dies is replaced) and on SIGTERM stops them gracefully; every worker runs the ASGI app.

The repository is loaded once, here, before granian starts. Then:

- **fork after the load** (when safe): workers are forked with the loaded models and share
  their pages copy-on-write; a worker is ready in milliseconds.
- **fresh interpreters** (``spawn``) when what was loaded has threads or runtime state a forked
  child cannot inherit (OpenMP pools of scikit-learn, XGBoost, LightGBM; onnxruntime sessions;
  a JVM): each worker loads the repository itself and the parent drops its copy.

Every worker gets its state as arguments (the config, the shared drain flag, the metrics
directory); nothing is steered by environment variables the program sets for itself, and the
process never re-executes itself (docs/operations.md, "Workers", says why that is enough).
"""

from __future__ import annotations

import gc
import logging
import multiprocessing
import os
import resource
import shutil
import sys
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from modelport.core import fastpaths
from modelport.core.config import BatchingConfig
from modelport.process.shutdown import DrainFlag, drain_on_sigterm, watch_drain
from modelport.protocols.rest.app import DEFAULT_MAX_BODY, ModelportApp, ServerOptions
from modelport.protocols.rest.guard import GuardedApp
from modelport.serving.dataplane import BatchingPolicy
from modelport.serving.repository import Repository

__all__ = ["ServeConfig", "build_app", "fork_unsafe", "serve"]

# Imported after a load, these mean runtime state a forked child cannot inherit safely.
FORK_UNSAFE = ("sklearn", "onnxruntime", "xgboost", "lightgbm", "torch", "tensorflow", "pyspark", "py4j", "grpc")
# Descriptors a worker keeps for itself (model files, logs, the payload log, gRPC) beyond its connections.
FD_RESERVE = 64
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
    # Connection bounds, applied before any request reaches auth (docs/operations.md, "Connection limits").
    header_timeout: float = 10.0  # idle keep-alive, partial request line, dripping headers
    body_timeout: float = 30.0  # the whole request body, from its first byte to its last
    max_connections: int = 1024  # across all workers
    max_header_bytes: int = 64 * 1024
    # Fast paths switched to their reference computation (core/fastpaths.py), in every process.
    reference_paths: tuple[str, ...] = ()
    # How granian calls the app: "rsgi" (protocols/rest/rsgi.py, its native interface: faster) or "asgi".
    interface: str = "rsgi"


def build_app(
    config: ServeConfig, repository: Repository | None = None, metrics_dir: str | None = None
) -> ModelportApp:
    """The app over ``repository`` (loaded here unless given); ``metrics_dir`` is shared by the workers."""
    fastpaths.use_reference(config.reference_paths)  # a spawned worker starts with every fast path on
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
        request_timeout=config.request_timeout or None,
        ssl_certfile=config.ssl_certfile,
        ssl_keyfile=config.ssl_keyfile,
    )
    if config.metrics:
        from modelport.observability.metrics import Metrics

        options.metrics = Metrics(metrics_dir)
        options.observers.append(options.metrics)
    if config.access_log:
        from modelport.observability.logs import AccessLog

        options.observers.append(AccessLog())
    if config.payload_log:
        from modelport.observability.payload_log import PayloadLog

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


def worker_app(
    config: ServeConfig, repository: Repository | None, drain: DrainFlag, metrics_dir: str | None
) -> Callable[..., Any]:
    """What each worker serves (granian calls this in the worker): the app, with the body timeout, watching the
    drain flag; over RSGI unless ``config.interface`` is "asgi"."""
    from modelport.observability.logs import configure_logging

    configure_logging(config.log_level, config.log_format)  # a handler (and flusher) of this process's own
    if repository is not None:
        # Forked after the parent's load: its fault counts (a version that failed to load) came along, and
        # every worker would show them again; the parent's log has them.
        from modelport.observability import faults

        faults.forget()
    app = build_app(config, repository, metrics_dir)
    watch_drain(drain, app)
    if config.interface == "rsgi":
        from modelport.protocols.rest.rsgi import RsgiApp  # imports granian: not where only the app is built (Lambda)

        return RsgiApp(app, body_timeout=config.body_timeout)
    return GuardedApp(app, body_timeout=config.body_timeout)


def serve(config: ServeConfig) -> None:
    """Load once, then serve with granian until SIGTERM/SIGINT (drained, then graceful)."""
    from granian.constants import HTTPModes, Interfaces, Loops, SSLProtocols
    from granian.http import HTTP1Settings
    from granian.server import Server

    from modelport.observability.logs import configure_logging

    fastpaths.use_reference(config.reference_paths)  # before the load: the trial child and forks inherit it
    per_worker = connection_cap(config)
    server = Server(
        "modelport.process.run:worker_app",
        address=config.host,
        port=config.port,
        interface=Interfaces.RSGI if config.interface == "rsgi" else Interfaces.ASGI,
        workers=config.workers,
        loop=Loops.auto,
        http=HTTPModes.http1,
        websockets=False,
        backpressure=per_worker,
        http1_settings=HTTP1Settings(
            header_read_timeout=max(1, min(60_000, round(config.header_timeout * 1000))),
            keep_alive=True,
            max_buffer_size=max(8192, config.max_header_bytes),
        ),
        log_level=config.log_level,  # type: ignore[arg-type]
        # granian's own logger goes to modelport's handler (JSON or text) like every other one; its
        # dictConfig closes the handlers it finds, so modelport's logging is set up again after it
        log_dictconfig={"handlers": {}, "loggers": {"_granian": {"propagate": True}}},
        log_access=False,  # modelport.access (logs.AccessLog) writes the access log, with the request id
        ssl_cert=Path(config.ssl_certfile) if config.ssl_certfile else None,
        ssl_key=Path(config.ssl_keyfile) if config.ssl_keyfile else None,
        ssl_protocol_min=SSLProtocols.tls12,  # what the server accepted before granian (TLS 1.2 and 1.3)
        respawn_failed_workers=True,
        respawn_interval=1.0,
        workers_kill_timeout=max(1, round(config.grace_seconds)),
    )
    configure_logging(config.log_level, config.log_format)  # granian's Server() re-read logging's config
    metrics_dir = tempfile.mkdtemp(prefix="modelport-metrics-") if config.metrics and config.workers > 1 else None
    try:  # the metrics directory goes whatever happens, a failed load included
        drain = DrainFlag()
        # A trial load in a short-lived child says whether forking after a load is safe, and fills the
        # compile cache, without leaving the frameworks it imported in this long-lived process.
        trial = trial_load(config)
        if trial is not None and trial[0] and trial[1]:
            # That load compiled kernels into the cache (importing their framework): one from the cache may not.
            trial = trial_load(config)
        repository: Repository | None = None
        if trial is None or not trial[0]:  # safe to fork (or the trial failed: this load raises what it hit)
            repository = Repository(config.root, compile=config.compile).load()
            _report(repository, config)
            unsafe = fork_unsafe(repository)
        else:
            unsafe = trial[0]
        if unsafe is None:
            multiprocessing.set_start_method("fork", force=True)
            loader = partial(worker_app, config, repository, drain, metrics_dir)
            if config.workers > 1:
                log.info("forking %d workers after the load", config.workers)
            gc.collect()
            _trim_heap()
            gc.freeze()  # what the parent loaded is never collected: workers will not touch (and copy) its pages
        else:
            # A forked worker would inherit the frameworks' threads without the threads themselves.
            log.info("workers start as fresh interpreters and load the repository themselves: %s", unsafe)
            multiprocessing.set_start_method("spawn", force=True)
            if repository is not None:
                repository.close()
            else:
                _report_plan(config)
            loader = partial(worker_app, config, None, drain, metrics_dir)
        server.on_startup(partial(drain_on_sigterm, drain, config.drain_seconds))
        server.on_startup(_flush_logs)  # the last thing before the workers fork: they must not inherit buffered lines
        server.serve(target_loader=loader, wrap_loader=False)
    finally:
        if metrics_dir is not None:
            shutil.rmtree(metrics_dir, ignore_errors=True)


def trial_load(config: ServeConfig) -> tuple[str, bool] | None:
    """Load the repository in a forked child: (why forking after a load is unsafe, or ``""`` when it is
    safe; whether the load stored kernels in the compile cache), or None when the trial itself failed
    (the caller then loads here and reports the error).

    The child imports whatever the models need and fills the compile cache; this process imports
    nothing, so it stays small for its whole life and a compiled model loads here from the cache.
    """
    read_end, write_end = os.pipe()
    _flush_logs()
    pid = os.fork()
    if pid == 0:  # the child: load, say what was imported, leave without running any exit handler
        code = 1
        try:
            os.close(read_end)
            from modelport.runtimes.compile import cache

            repository = Repository(config.root, compile=config.compile).load()
            os.write(write_end, f"ok:{int(bool(cache.stored))}:{fork_unsafe(repository) or ''}".encode())
            repository.close()
            code = 0
        except BaseException:
            log.exception("the trial load failed")
        finally:
            _flush_logs()
            os._exit(code)
    os.close(write_end)
    chunks = []
    with os.fdopen(read_end, "rb") as answer:
        while chunk := answer.read():
            chunks.append(chunk)
    _, status = os.waitpid(pid, 0)
    text = b"".join(chunks).decode()
    if os.waitstatus_to_exitcode(status) != 0 or not text.startswith("ok:"):
        return None
    _, stored, reason = text.split(":", 2)
    return reason, stored == "1"


def connection_cap(config: ServeConfig) -> int:
    """Connections each worker holds at once (granian's backpressure), within the descriptors it may open.

    The soft descriptor limit is raised to the hard one; if that still cannot hold the cap plus
    what a worker needs for itself, the cap shrinks (and says so) rather than let accept() fail.
    """
    per_worker = max(1, -(-config.max_connections // config.workers))
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (ValueError, OSError):
            pass
    if soft != resource.RLIM_INFINITY and per_worker > soft - FD_RESERVE:
        fitted = max(1, soft - FD_RESERVE)
        log.warning(
            "--max-connections %d (%d per worker) does not fit the descriptor limit %d; each worker holds %d",
            config.max_connections,
            per_worker,
            soft,
            fitted,
        )
        per_worker = fitted
    return per_worker


def frameworks_loaded() -> list[str]:
    """The model frameworks this process has imported (see FORK_UNSAFE)."""
    return sorted(m for m in FORK_UNSAFE if m in sys.modules)


def fork_unsafe(repository: Repository | None = None) -> str | None:
    """Why this process must not fork workers now, or None when it may.

    Besides the frameworks imported and threads running, a loaded model's flavor may declare that
    what it holds cannot be inherited (``fork_safe = False``: torch, TensorFlow, MLflow pyfunc, a
    custom model); every reason found is given.
    """
    from modelport.core.model import fork_safe

    reasons = []
    loaded = frameworks_loaded()
    if loaded:
        reasons.append(
            f"the loaded models use {', '.join(loaded)}, whose threads or runtime state a forked worker cannot inherit"
        )
    declared = sorted(
        f"{m.name} v{m.version}" for m in (repository.models() if repository else []) if not fork_safe(m.predictor)
    )
    if declared:
        reasons.append(f"models whose flavor cannot be forked after loading: {', '.join(declared)}")
    others = [t.name for t in threading.enumerate() if t is not threading.main_thread()]
    others = [n for n in others if n != "modelport-log-flush"]  # flushed before the fork, re-made in each worker
    if others and not reasons:
        reasons.append(f"threads are running after the load ({', '.join(sorted(others))})")
    return "; ".join(reasons) or None


def _trim_heap() -> None:
    """Give the heap the load freed back to the system (glibc only), so no worker inherits it."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def _flush_logs() -> None:
    """Write out buffered log lines now (before a fork, which would copy them)."""
    for handler in logging.getLogger().handlers:
        getattr(handler, "flush_now", handler.flush)()


def _report_plan(config: ServeConfig) -> None:
    scheme = "https" if config.ssl_certfile else "http"
    log.info(
        "serving %s on %s://%s:%d with %d worker%s (web page /, API docs /docs)",
        config.root,
        scheme,
        config.host,
        config.port,
        config.workers,
        "" if config.workers == 1 else "s",
    )


def _report(repository: Repository, config: ServeConfig) -> None:
    for entry in repository.entries():
        for v in sorted(entry.versions.values(), key=lambda v: v.version):
            detail = f" ({v.reason})" if v.reason else f" in {v.load_seconds * 1000:.0f} ms"
            log.info("model %s version %d: %s%s", entry.name, v.version, v.state, detail)
    _report_plan(config)
