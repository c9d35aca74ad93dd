"""Graceful shutdown: on SIGTERM, fail readiness first, then let granian stop the workers.

Sequence:

1. SIGTERM reaches granian's main process. The handler installed here (wrapping granian's own,
   with the standard :mod:`signal` API) raises the shared drain flag: every worker's
   ``/v2/health/ready`` and ``/readyz`` answer 503 within ``POLL_S``, while requests are still
   served, so a load balancer takes this instance out.
2. After ``--drain-seconds`` granian's handler runs: it closes the listening socket, sends each
   worker SIGTERM; a worker finishes its in-flight requests, then runs the app's shutdown (the ASGI
   lifespan's, or RSGI's ``__rsgi_del__``), where the app closes models and flushes the payload log. A
   worker still busy
   after ``--grace-seconds`` is killed.
3. The main process exits 0.
"""

from __future__ import annotations

import logging
import multiprocessing
import signal
import threading
from types import FrameType
from typing import Any, Protocol

__all__ = ["POLL_S", "DrainFlag", "drain_on_sigterm", "watch_drain"]

log = logging.getLogger("modelport.server")

POLL_S = 0.05  # how often a worker looks at the drain flag


class _Drainable(Protocol):
    def start_draining(self) -> None: ...


class DrainFlag:
    """One shared byte: set by the main process on SIGTERM, read by every worker (forked or spawned)."""

    def __init__(self) -> None:
        self._value: Any = multiprocessing.get_context("spawn").RawValue("b", 0)

    def set(self) -> None:
        self._value.value = 1

    def is_set(self) -> bool:
        return bool(self._value.value)


def drain_on_sigterm(flag: DrainFlag, drain_seconds: float) -> None:
    """Wrap the SIGTERM handler granian installed: raise ``flag`` now, run granian's after ``drain_seconds``."""
    previous = signal.getsignal(signal.SIGTERM)
    if not callable(previous):  # nobody handles SIGTERM: leave the default
        return
    state = {"draining": False}

    def on_term(sig: int, frame: FrameType | None) -> None:
        if state["draining"]:
            return
        state["draining"] = True
        flag.set()
        if drain_seconds <= 0:
            previous(sig, frame)
            return
        log.info("SIGTERM: readiness is now false; stopping in %.1f s (--drain-seconds)", drain_seconds)
        timer = threading.Timer(drain_seconds, previous, (sig, None))
        timer.daemon = True
        timer.start()

    signal.signal(signal.SIGTERM, on_term)


def watch_drain(flag: DrainFlag, app: _Drainable) -> threading.Thread:
    """In a worker: turn ``app``'s readiness off once ``flag`` is raised."""

    def run() -> None:
        stop = threading.Event()
        while not stop.wait(POLL_S):
            if flag.is_set():
                app.start_draining()
                return

    thread = threading.Thread(target=run, name="modelport-drain-watch", daemon=True)
    thread.start()
    return thread
