"""Graceful shutdown: on SIGTERM, fail readiness first, then let uvicorn stop.

Sequence in every worker process:

1. SIGTERM arrives: ``/v2/health/ready`` and ``/readyz`` answer 503 at once, while
   requests are still served, so a load balancer takes this instance out.
2. After ``--drain-seconds``, uvicorn's own handler runs: it closes the listening
   socket, lets in-flight requests finish for up to ``--grace-seconds``, then sends
   the lifespan shutdown, where the app closes models and flushes the payload log.
3. The process exits 0: the signal was handled, so it is not re-raised.

With ``--workers N`` the parent forwards SIGTERM to every worker, which each drain
the same way, and the parent waits for them.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
from types import FrameType
from typing import Any, Protocol

__all__ = ["install_drain"]

log = logging.getLogger("modelport.server")


class _Drainable(Protocol):
    def start_draining(self) -> None: ...


def install_drain(app: _Drainable, drain_seconds: float) -> bool:
    """Wrap the running server's SIGTERM handler (call from the event loop, main thread)."""
    if threading.current_thread() is not threading.main_thread():
        return False
    previous = signal.getsignal(signal.SIGTERM)
    if not callable(previous):  # nobody (uvicorn) is handling SIGTERM: leave the default
        return False
    loop = asyncio.get_running_loop()
    state = {"draining": False}

    def stop(sig: int, frame: FrameType | None) -> None:
        previous(sig, frame)
        _forget_signal(previous, sig)

    def on_term(sig: int, frame: FrameType | None) -> None:
        if state["draining"]:
            return
        state["draining"] = True
        app.start_draining()
        if drain_seconds <= 0:
            stop(sig, frame)
            return
        log.info("SIGTERM: readiness is now false; stopping in %.1f s (--drain-seconds)", drain_seconds)
        loop.call_soon_threadsafe(loop.call_later, drain_seconds, stop, sig, None)

    signal.signal(signal.SIGTERM, on_term)
    return True


def _forget_signal(handler: Any, sig: int) -> None:
    """uvicorn re-raises the signals it caught once it has stopped, which would end the
    process with -SIGTERM; a drained, flushed server should exit 0 instead."""
    owner = getattr(handler, "__self__", None)
    captured = getattr(owner, "_captured_signals", None)
    if isinstance(captured, list) and sig in captured:
        captured.remove(sig)
