"""granian's RSGI interface over :class:`~modelport.protocols.rest.app.ModelportApp`: the same app, a thinner door.

RSGI is granian's native protocol: the request body comes in one ``await proto()`` and the
response leaves in one ``proto.response_bytes(...)`` call, where ASGI needs a receive and two
send messages, each a trip between granian's Rust side and the event loop. Measured side by
side (docs/BENCHMARKS.md), a constant app answers a one-row request faster over RSGI than over
ASGI, and modelport's own requests gain the same.

This module only translates: headers to the app's ``dict[bytes, bytes]``, the body read (with
``--max-body`` and ``--body-timeout``, as ``GuardedApp`` bounds it for ASGI) and the response.
Routing, auth, limits, CORS, the request pipeline and the observers are the app's, whichever
interface carries the request; ``modelport serve --interface asgi`` serves the ASGI app instead.
Startup and shutdown (the gRPC port, closing the models) run in granian's ``__rsgi_init__`` and
``__rsgi_del__`` hooks, where ASGI has its lifespan messages.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from granian.rsgi import HTTPProtocol, ProtocolClosed, Scope

from modelport.core.errors import PayloadTooLarge
from modelport.protocols.rest.app import ModelportApp, StartupFailed
from modelport.protocols.rest.guard import body_too_slow

__all__ = ["RsgiApp"]

log = logging.getLogger("modelport.server")


class RsgiApp:
    """Serves ``app`` over RSGI; the whole body must arrive within ``body_timeout`` seconds of the first read."""

    def __init__(self, app: ModelportApp, body_timeout: float) -> None:
        self.app = app
        self.body_timeout = body_timeout

    def __rsgi_init__(self, loop: asyncio.AbstractEventLoop) -> None:
        try:
            loop.run_until_complete(self.app.startup())
        except StartupFailed as exc:
            log.error("the worker could not start: %s", exc)
            raise SystemExit(1) from None

    def __rsgi_del__(self, loop: asyncio.AbstractEventLoop) -> None:
        loop.run_until_complete(self.app.shutdown())

    async def __call__(self, scope: Scope, proto: HTTPProtocol) -> None:
        """The RSGI entry point (granian looks for ``__rsgi__`` first: the same method)."""
        if scope.proto != "http":  # websockets are off in modelport serve
            return
        headers = {k.encode("latin-1"): v.encode("latin-1") for k, v in scope.headers.items()}
        timeout = self.body_timeout
        sized = b"content-length" in headers

        async def read(limit: int) -> bytes:
            loop = asyncio.get_running_loop()
            task = asyncio.current_task()
            expired = False

            def expire() -> None:
                nonlocal expired
                expired = True
                if task is not None:
                    task.cancel()

            timer = loop.call_at(loop.time() + timeout, expire)
            chunks: list[bytes] = []
            try:
                if sized:  # granian reads exactly Content-Length bytes (already checked against the limit)
                    return await proto()
                size = 0
                async for chunk in proto:  # chunked: count as it comes
                    size += len(chunk)
                    if size > limit:
                        raise PayloadTooLarge(f"the request body is over the limit of {limit:,} bytes (--max-body)")
                    chunks.append(chunk)
                return b"".join(chunks)
            except ProtocolClosed:  # the client went away mid-body: what came, as over ASGI
                return b"".join(chunks)
            except asyncio.CancelledError:
                if expired and task is not None:
                    task.uncancel()
                    raise body_too_slow(timeout) from None
                raise
            finally:
                timer.cancel()

        async def respond(status: int, out: list[tuple[bytes, bytes]], body: bytes) -> None:
            proto.response_bytes(status, [(k.decode("latin-1"), v.decode("latin-1")) for k, v in out], body)

        query: Any = scope.query_string
        await self.app.handle_http(scope.method, scope.path, query.encode("latin-1"), headers, read, respond)

    __rsgi__ = __call__
