"""Run the app under uvicorn: uvloop + httptools, TCP_NODELAY on every connection.

With ``workers > 1`` uvicorn starts worker processes that each import
:func:`app_from_env`; the options travel in ``MODELPORT_SERVE_CONFIG``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import shutil
import socket
import tempfile
from dataclasses import asdict, dataclass, field
from typing import Any

from modelport.config import BatchingConfig
from modelport.dataplane import BatchingPolicy
from modelport.repository import Repository
from modelport.server.app import DEFAULT_MAX_BODY, ModelportApp, ServerOptions

__all__ = ["ServeConfig", "app_from_env", "build_app", "serve"]

ENV = "MODELPORT_SERVE_CONFIG"
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


def build_app(config: ServeConfig) -> ModelportApp:
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
        "log_config": None,  # keep modelport.logs' handlers (JSON or text)
    }
    if config.workers > 1:
        os.environ[ENV] = json.dumps(asdict(config))
        metrics_dir = _multiprocess_metrics_dir(config)
        try:
            uvicorn.run("modelport.server.run:app_from_env", factory=True, workers=config.workers, **common)
        finally:
            if metrics_dir is not None:
                shutil.rmtree(metrics_dir, ignore_errors=True)
    else:
        if config.metrics and os.environ.get("PROMETHEUS_MULTIPROC_DIR"):  # set by the operator: honour it
            from modelport.metrics import prepare_multiprocess

            prepare_multiprocess(os.environ["PROMETHEUS_MULTIPROC_DIR"])
        app = build_app(config)
        _report(app, config)
        uvicorn.run(app, **common)


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


def _report(app: ModelportApp, config: ServeConfig) -> None:
    scheme = "https" if config.ssl_certfile else "http"
    for entry in app.repository.entries():
        for v in sorted(entry.versions.values(), key=lambda v: v.version):
            detail = f" ({v.reason})" if v.reason else f" in {v.load_seconds * 1000:.0f} ms"
            log.info("model %s version %d: %s%s", entry.name, v.version, v.state, detail)
    log.info("serving %s on %s://%s:%d  (web page /, API docs /docs)", config.root, scheme, config.host, config.port)
