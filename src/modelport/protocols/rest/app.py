"""The ASGI application: routing, auth, limits, CORS, and the error envelope.

Every failure leaves as ``{"error": "..."}`` with the status its error class
carries (errors.py); an exception nobody expected is a 500 and the server goes on.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from modelport.core.errors import (
    BadRequest,
    ConfigError,
    Forbidden,
    MethodNotAllowed,
    ModelLoadError,
    ModelportError,
    NotFound,
    PayloadTooLarge,
    UnsupportedMediaType,
)
from modelport.observability.activity import Activity
from modelport.observability.observe import Observer, new_request_id
from modelport.protocols.auth import check_bearer
from modelport.protocols.rest import ui, v1, v2
from modelport.protocols.rest.http import Request, Response, dumps, error_response, json_response
from modelport.serving.dataplane import BatchingPolicy, DataPlane
from modelport.serving.inference import Trace
from modelport.serving.repository import Repository

if TYPE_CHECKING:
    from modelport.observability.metrics import Metrics

__all__ = ["DEFAULT_MAX_BODY", "ModelportApp", "ServerOptions", "StartupFailed"]

log = logging.getLogger("modelport.server")

DEFAULT_MAX_BODY = 32 * 1024 * 1024

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
ReadBody = Callable[[int], Awaitable[bytes]]
"""Reads the whole request body, raising PayloadTooLarge past the limit it is given."""
Respond = Callable[[int, list[tuple[bytes, bytes]], bytes], Awaitable[None]]
"""Sends status, headers and body."""

_V2_MODEL = re.compile(r"^/v2/models/([^/]+)(?:/versions/([^/]+))?(?:/(ready|infer))?$")
_V1_MODEL = re.compile(r"^/v1/models/([^/:]+)(?:/versions/([^/:]+))?(?::(predict)|/(metadata))?$")
_REPO_MODEL = re.compile(r"^/v2/repository/models/([^/]+)/(load|unload)$")
_V1_VERB = re.compile(r"^/v1/models/[^/:]+(?:/versions/[^/:]+)?:([A-Za-z]+)$")

# Health answers stay open without a token so load balancers and kubelets can probe.
_OPEN_PATHS = frozenset({"/v2/health/live", "/v2/health/ready", "/healthz", "/readyz"})

# CORS: what a page on an allowed origin may do. OPTIONS is the preflight itself.
_CORS_METHODS = ("GET", "HEAD", "POST")
_CORS_HEADERS = (
    "accept",
    "accept-language",
    "content-language",
    "content-type",
    "authorization",
    "x-request-id",
    "inference-header-content-length",
)
_CORS_EXPOSE = b"x-model-version, x-request-id, inference-header-content-length"

_JSON_TYPES = (b"application/json", b"application/x-www-form-urlencoded", b"text/plain")
_ALLOWED_TYPES_TEXT = (
    "application/json (curl's default application/x-www-form-urlencoded and text/plain are read as JSON)"
)


@dataclass
class ServerOptions:
    auth_token: str | None = None
    admin_token: str | None = None
    max_body: int = DEFAULT_MAX_BODY
    cors_origins: tuple[str, ...] = ()
    observers: list[Observer] = field(default_factory=list)
    batching: BatchingPolicy | None = None
    grpc_host: str = "127.0.0.1"
    grpc_port: int | None = None
    # Serves /metrics and counts in-flight requests; also add it to ``observers``.
    metrics: Metrics | None = None
    # Seconds a request may take before it gets 504 (a model's [limits] request_timeout wins); None: no limit.
    request_timeout: float | None = None
    # TLS for the gRPC port too: TLS on one port means TLS on both.
    ssl_certfile: str | None = None
    ssl_keyfile: str | None = None


class StartupFailed(Exception):
    """A worker could not start what it serves besides HTTP (the message says what)."""


class ModelportApp:
    """ASGI app over a :class:`Repository`; ``options`` fixes auth, limits and CORS."""

    def __init__(self, repository: Repository, options: ServerOptions | None = None) -> None:
        self.repository = repository
        self.options = options or ServerOptions()
        # The operations view's last ten minutes; keeps payload previews only where the payload log is on.
        self.activity = Activity(keep_payloads=any(type(o).__name__ == "PayloadLog" for o in self.options.observers))
        self.plane = DataPlane(
            repository,
            self.options.batching,
            observers=[*self.options.observers, self.activity],
            request_timeout=self.options.request_timeout,
            on_inference=self.options.metrics.observe_inference if self.options.metrics is not None else None,
        )
        self._token = self.options.auth_token.encode() if self.options.auth_token else None
        self._admin = self.options.admin_token.encode() if self.options.admin_token else None
        self._origins = frozenset(o.encode() for o in self.options.cors_origins)
        self._any_origin = b"*" in self._origins
        self._openapi: bytes | None = None
        self._grpc_server: Any = None
        self._openapi_generation = -1
        self._observers = self.plane.observers
        self._metrics = self.options.metrics
        if self._metrics is not None:
            self._metrics.watch(repository)
            self.plane.on_stuck = self._metrics.add_stuck_calls

    # -- ASGI ------------------------------------------------------------------
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self.startup()
                except StartupFailed as exc:
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.shutdown()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def startup(self) -> None:
        """Start what a worker serves besides HTTP (the gRPC port); StartupFailed says why it could not."""
        if self.options.grpc_port is not None:
            from modelport.protocols.grpc.servicer import GrpcOptions, start_grpc

            grpc_options = GrpcOptions(
                host=self.options.grpc_host,
                port=self.options.grpc_port,
                max_message=self.options.max_body,
                auth_token=self.options.auth_token,
                ssl_certfile=self.options.ssl_certfile,
                ssl_keyfile=self.options.ssl_keyfile,
            )
            try:
                self._grpc_server = await start_grpc(self.plane, grpc_options)
            except Exception as exc:
                raise StartupFailed(f"gRPC: {exc}") from exc
            log.info("gRPC V2 on %s:%d", self.options.grpc_host, self.options.grpc_port)

    async def shutdown(self) -> None:
        """After the last request: stop gRPC, close the models and the observers (the payload log flushes)."""
        grpc_server, self._grpc_server = self._grpc_server, None
        if grpc_server is not None:
            await grpc_server.stop(grace=5.0)
        self.repository.close()
        self.plane.close()

    def ready(self) -> bool:
        """Every model has an available version and the server is not draining."""
        return self.plane.ready()

    @property
    def draining(self) -> bool:
        return self.plane.draining

    def start_draining(self) -> None:
        """Answer readiness with 503 from now on (REST and gRPC), so load balancers stop sending traffic."""
        self.plane.draining = True

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def read(limit: int) -> bytes:
            chunks = []
            size = 0
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    break
                chunk = message.get("body", b"")
                size += len(chunk)
                if size > limit:
                    raise PayloadTooLarge(f"the request body is over the limit of {limit:,} bytes (--max-body)")
                chunks.append(chunk)
                if not message.get("more_body", False):
                    break
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)

        async def respond(status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
            await send({"type": "http.response.start", "status": status, "headers": headers})
            await send({"type": "http.response.body", "body": body})

        await self.handle_http(
            scope["method"], scope["path"], scope.get("query_string", b""), dict(scope["headers"]), read, respond
        )

    async def handle_http(
        self,
        method: str,
        path: str,
        query: bytes,
        headers: dict[bytes, bytes],
        read: ReadBody,
        respond: Respond,
    ) -> None:
        """One HTTP request, whichever server interface carried it (ASGI here, RSGI in protocols/rest/rsgi.py).

        ``read(limit)`` returns the whole body or raises PayloadTooLarge past ``limit`` bytes;
        ``respond`` sends status, headers and body in one go.
        """
        metrics = self._metrics
        if metrics is not None:
            metrics.request_started()
            try:
                await self._handle(method, path, query, headers, read, respond)
            finally:
                metrics.request_finished()
        else:
            await self._handle(method, path, query, headers, read, respond)

    async def _handle(
        self, method: str, path: str, query: bytes, headers: dict[bytes, bytes], read: ReadBody, respond: Respond
    ) -> None:
        started = time.perf_counter()
        origin = headers.get(b"origin")
        cors = self._cors_headers(origin) if origin is not None and self._origins else []
        trace = Trace()
        error: str | None = None
        request_id = headers.get(b"x-request-id")
        try:
            if method == "OPTIONS" and origin is not None and b"access-control-request-method" in headers:
                response = self._preflight(origin, headers)
            else:
                self._authorize(path, headers)
                body = await self._read_body(headers, read) if method in ("POST", "PUT") else b""
                request = Request(method, path, query, headers, body)
                response = await self._dispatch(request, trace)
        except ModelportError as exc:
            error = exc.message
            if exc.status == 500:
                request_id = request_id or new_request_id()
                log.error("request %s: %s", request_id.decode("latin-1"), exc.message, exc_info=exc.__cause__ or exc)
                response = _server_error(exc.public, request_id)
            else:
                response = error_response(exc)
        except Exception as exc:  # never let one request take the server down
            request_id = request_id or new_request_id()
            log.exception("request %s: unhandled error on %s %s", request_id.decode("latin-1"), method, path)
            error = f"internal server error: {type(exc).__name__}: {exc}"
            response = _server_error("internal server error", request_id)
        if request_id is None and self._observers:
            request_id = new_request_id()
        out = [*response.headers, (b"content-length", str(len(response.body)).encode())]
        out.extend(response.extra_headers)
        out.extend(cors)
        if request_id is not None:
            out.append((b"x-request-id", request_id))
        if response.status == 401:
            out.append((b"www-authenticate", b'Bearer realm="modelport"'))
        await respond(response.status, out, response.body)
        if self._observers:
            rid = (request_id or b"").decode("latin-1")
            self.plane.observe(trace, method, path, response.status, started, rid, error)

    # -- cross-cutting ---------------------------------------------------------
    def _authorize(self, path: str, headers: dict[bytes, bytes]) -> None:
        if path.startswith("/v2/repository/"):
            # The repository extension changes what is served: its own token, never the inference one.
            if self._admin is None:
                raise Forbidden(
                    "the model repository extension is disabled; start the server with --admin-token "
                    "(or MODELPORT_ADMIN_TOKEN) to enable it"
                )
            _check_bearer(headers, self._admin, "admin ")
            return
        if self._token is None or path in _OPEN_PATHS or path in ui.OPEN_PAGES or path.startswith("/ui/static/"):
            return
        _check_bearer(headers, self._token, "")

    async def _read_body(self, headers: dict[bytes, bytes], read: ReadBody) -> bytes:
        limit = self.options.max_body
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise PayloadTooLarge(f"the request body is {int(declared):,} bytes; the limit is {limit:,} (--max-body)")
        ctype = headers.get(b"content-type")
        if ctype is not None:
            base = ctype.split(b";", 1)[0].strip().lower()
            binary = base == b"application/octet-stream" and b"inference-header-content-length" in headers
            if not binary and base not in _JSON_TYPES and not base.endswith(b"+json"):
                raise UnsupportedMediaType(
                    f"content type '{base.decode('latin-1')}' is not supported; send {_ALLOWED_TYPES_TEXT}"
                )
        return await read(limit)

    def _cors_headers(self, origin: bytes) -> list[tuple[bytes, bytes]]:
        """A simple (non-preflight) request from an allowed origin may read the response; others get nothing."""
        if self._any_origin or origin in self._origins:
            return [
                (b"access-control-allow-origin", origin),
                (b"vary", b"Origin"),
                (b"access-control-expose-headers", _CORS_EXPOSE),
            ]
        return []

    def _cors_allowed_headers(self) -> list[str]:
        """Request headers a page may send: the API's own, the safelisted ones, and models' sticky headers."""
        names = list(_CORS_HEADERS)
        for entry in self.repository.entries():
            sticky = entry.route.sticky_header
            if sticky is not None and sticky.decode("latin-1") not in names:
                names.append(sticky.decode("latin-1"))
        return names

    def _preflight(self, origin: bytes, headers: dict[bytes, bytes]) -> Response:
        """Answer a CORS preflight only when origin, method and every requested header are allowed.

        Like Starlette's CORSMiddleware: a preflight that asks for anything outside the lists is
        refused, and an allowed one is answered with the lists themselves (never an echo of what
        was asked).
        """
        if not (self._any_origin or origin in self._origins):
            allowed = ", ".join(sorted(o.decode("latin-1") for o in self._origins)) or "none (--cors-origin)"
            raise Forbidden(f"origin '{origin.decode('latin-1')}' is not allowed; allowed origins: {allowed}")
        problems = []
        method = headers.get(b"access-control-request-method", b"").decode("latin-1").strip()
        if method.upper() not in _CORS_METHODS:
            problems.append(f"method '{method}' is not allowed (allowed: {', '.join(_CORS_METHODS)})")
        allowed_headers = self._cors_allowed_headers()
        requested = headers.get(b"access-control-request-headers", b"").decode("latin-1")
        refused = [h for h in (p.strip().lower() for p in requested.split(",")) if h and h not in allowed_headers]
        if refused:
            problems.append(f"header{'s' if len(refused) > 1 else ''} {', '.join(refused)} not allowed")
        if problems:
            raise Forbidden(
                f"CORS preflight refused: {'; '.join(problems)}; allowed headers: {', '.join(allowed_headers)}"
            )
        return Response(
            204,
            b"",
            headers=(),
            extra_headers=[
                (b"access-control-allow-methods", ", ".join(_CORS_METHODS).encode()),
                (b"access-control-allow-headers", ", ".join(allowed_headers).encode("latin-1")),
                (b"access-control-max-age", b"600"),
            ],
        )

    # -- routing ---------------------------------------------------------------
    async def _dispatch(self, request: Request, trace: Trace) -> Response:
        path, method = request.path, request.method
        plane = self.plane
        if path.startswith("/v2/models/"):
            m = _V2_MODEL.match(path)
            if m is None:
                raise NotFound(f"no route for {path}; see /openapi.json")
            name, version, action = m.groups()
            if action == "infer":
                _expect(method, "POST", path)
                return await v2.infer(plane, request, name, version, trace)
            _expect(method, "GET", path)
            if action == "ready":
                return v2.model_ready(plane, name, version)
            return v2.model_metadata(plane, name, version)
        if path.startswith("/v1/models/"):
            m = _V1_MODEL.match(path)
            if m is None:
                verb = _V1_VERB.match(path)
                if verb is not None:
                    raise NotFound(f"the V1 verb ':{verb.group(1)}' is not supported; use ':predict'")
                raise NotFound(f"no route for {path}; see /openapi.json")
            name, version, verb_predict, meta = m.groups()
            if verb_predict:
                _expect(method, "POST", path)
                return await v1.predict(plane, request, name, version, trace)
            _expect(method, "GET", path)
            if meta:
                return v1.metadata(plane, name, version)
            return v1.status(plane, name, version)
        if path.startswith("/v2/repository/"):
            return await self._repository(request)
        if path.startswith("/ui/"):
            _expect(method, "GET", path)
            return await ui.route(self, path)
        route = self._static.get(path)
        if route is None:
            raise NotFound(f"no route for {path}; see /openapi.json or /docs")
        allowed, handler = route
        _expect(method, allowed, path)
        return handler(self)

    async def _repository(self, request: Request) -> Response:
        """The V2 model repository extension (Triton's shapes); loads run in a thread, never on the loop."""
        import asyncio

        path = request.path
        _expect(request.method, "POST", path)
        if path == "/v2/repository/index":
            body = request.json() if request.body else {}
            if not isinstance(body, dict) or not isinstance(body.get("ready", False), bool):
                raise BadRequest('the index body must be a JSON object, optionally {"ready": true|false}')
            return json_response(self.repository.index(ready_only=body.get("ready", False)))
        m = _REPO_MODEL.match(path)
        if m is None:
            raise NotFound(
                f"no route for {path}; the repository extension has /v2/repository/index and "
                "/v2/repository/models/{model}/load|unload"
            )
        name, action = m.groups()
        if action == "load":
            try:
                await asyncio.to_thread(self.repository.load_named, name)
            except (ModelLoadError, ConfigError) as exc:
                raise BadRequest(exc.message) from None
        else:
            await asyncio.to_thread(self.repository.unload_named, name)
        return Response(200, b"{}")

    def _live(self) -> Response:
        return Response(200, b"")

    def _ready(self) -> Response:
        return Response(200 if self.ready() else 503, b"")

    def _metrics_page(self) -> Response:
        from modelport.observability.metrics import CONTENT_TYPE

        if self._metrics is None:
            raise NotFound("metrics are off; start the server without --no-metrics")
        return Response(200, self._metrics.render(), headers=((b"content-type", CONTENT_TYPE.encode()),))

    def _server_meta(self) -> Response:
        return json_response(self.plane.server_metadata())

    def _v1_list(self) -> Response:
        return v1.list_models(self.plane)

    def _openapi_json(self) -> Response:
        generation = self.repository.generation
        if self._openapi is None or generation != self._openapi_generation:
            from modelport.protocols.rest.openapi import build_openapi

            self._openapi = dumps(build_openapi(self.repository))
            self._openapi_generation = generation
        return Response(200, self._openapi)

    def _docs(self) -> Response:
        return ui.docs_page()

    def _index(self) -> Response:
        return ui.index_page()

    _static: dict[str, tuple[str, Callable[[ModelportApp], Response]]] = {
        "/v2/health/live": ("GET", _live),
        "/v2/health/ready": ("GET", _ready),
        "/healthz": ("GET", _live),
        "/readyz": ("GET", _ready),
        "/v2": ("GET", _server_meta),
        "/v1/models": ("GET", _v1_list),
        "/openapi.json": ("GET", _openapi_json),
        "/metrics": ("GET", _metrics_page),
        "/docs": ("GET", _docs),
        "/": ("GET", _index),
    }


def _server_error(message: str, request_id: bytes) -> Response:
    """A 500 that says what failed, not how: the exception goes to the log under the request id."""
    rid = request_id.decode("latin-1")
    return json_response({"error": f"{message} (request id {rid}; the server log has the details)"}, 500)


def _check_bearer(headers: dict[bytes, bytes], expected: bytes, kind: str) -> None:
    check_bearer(headers.get(b"authorization"), expected, kind)


def _expect(method: str, allowed: str, path: str) -> None:
    if method != allowed and not (allowed == "GET" and method == "HEAD"):
        raise MethodNotAllowed(f"{method} is not allowed on {path}; use {allowed}")
