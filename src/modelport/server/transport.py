"""One socket write per small response instead of two.

uvicorn writes a response's status line and headers when the app sends
``http.response.start`` and the body when it sends ``http.response.body``: two
``send`` syscalls and, with TCP_NODELAY, two TCP segments and two wake-ups of the
client. A py-spy profile of a one-row request put about half of the server's busy
samples in those two writes. This wrapper holds a header block back until the next
write (normally the body, in the same event-loop tick) and sends both together; a
``call_soon`` flush sends it alone if no body follows (HEAD, a 100 Continue).
"""

from __future__ import annotations

import asyncio
from typing import Any

__all__ = ["CoalescingTransport"]

_MAX_HEAD = 16 * 1024  # a header block larger than this is written at once
_MAX_JOIN = 64 * 1024  # a body larger than this is written after the head, not copied onto it


class CoalescingTransport:
    """Delegates to ``transport``; only ``write``, ``writelines`` and ``close`` behave differently."""

    __slots__ = ("_loop", "_pending", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._pending: bytes | None = None

    def write(self, data: bytes) -> None:
        pending = self._pending
        if pending is not None:
            self._pending = None
            if len(data) <= _MAX_JOIN:
                self._transport.write(pending + bytes(data))
                return
            self._transport.write(pending)
            self._transport.write(data)
            return
        if len(data) <= _MAX_HEAD and bytes(data[-4:]) == b"\r\n\r\n":
            self._pending = bytes(data)
            self._loop.call_soon(self._flush)
            return
        self._transport.write(data)

    def writelines(self, chunks: Any) -> None:
        self.write(b"".join(chunks))

    def _flush(self) -> None:
        pending = self._pending
        if pending is not None:
            self._pending = None
            if not self._transport.is_closing():
                self._transport.write(pending)

    def close(self) -> None:
        self._flush()
        self._transport.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)
