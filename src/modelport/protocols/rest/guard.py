"""The ASGI wrapper every worker serves: a deadline on the request body.

granian bounds what happens before the app is called (``--header-timeout`` covers idle
keep-alive connections, a partial request line and dripping headers; ``--max-header-size``
the header block; ``--max-connections`` how many connections a worker holds). Once the
headers are in, the app reads the body through ``receive``; a client that sends part of a
body and stops would hold the request forever, so the whole body must arrive within
``--body-timeout`` of the first read, or the request ends with 408 and
``{"error": ...}``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from modelport.core.errors import ClientError

__all__ = ["BodyTimeout", "GuardedApp", "body_too_slow"]

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


class BodyTimeout(ClientError):
    """The client did not send its whole request body in time."""

    status = 408


def body_too_slow(limit: float) -> BodyTimeout:
    """The 408 for a body that did not arrive within ``limit`` seconds (ASGI here, RSGI in protocols/rest/rsgi.py)."""
    return BodyTimeout(f"the request body did not arrive within {limit:g} s; send it whole or raise --body-timeout")


class GuardedApp:
    """Calls ``app`` with a ``receive`` that gives up after ``body_timeout`` seconds in total."""

    def __init__(self, app: Callable[[Scope, Receive, Send], Awaitable[None]], body_timeout: float) -> None:
        self.app = app
        self.body_timeout = body_timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        # One timer per request, armed at the first read and disarmed when the body is complete
        # (a py-spy profile put an asyncio.timeout around every read at ~3 % of a one-row request).
        limit = self.body_timeout
        timer: asyncio.TimerHandle | None = None
        task: asyncio.Task[Any] | None = None
        reading = expired = False

        def expire() -> None:
            nonlocal expired
            expired = True
            if reading and task is not None:
                task.cancel()

        async def bounded() -> dict[str, Any]:
            nonlocal timer, task, reading
            if expired:
                raise body_too_slow(limit)
            if timer is None:
                loop = asyncio.get_running_loop()
                task = asyncio.current_task()
                timer = loop.call_at(loop.time() + limit, expire)
            reading = True
            try:
                message = await receive()
            except asyncio.CancelledError:
                if expired and task is not None:
                    task.uncancel()
                    raise body_too_slow(limit) from None
                raise
            finally:
                reading = False
            if not message.get("more_body", False):
                timer.cancel()
            return message

        try:
            await self.app(scope, bounded, send)
        finally:
            if timer is not None:
                timer.cancel()

    def __getattr__(self, name: str) -> Any:  # the wrapped app's attributes (repository, plane, ...)
        return getattr(self.app, name)
