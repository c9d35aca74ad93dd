"""What the server tells its observers after every request.

Metrics, access logs and the payload log subscribe here, so the request path knows
nothing about any of them: it builds one :class:`RequestRecord` and hands it over.
"""

from __future__ import annotations

import itertools
import os
from dataclasses import dataclass
from typing import Protocol

from modelport.core.signature import Batch

__all__ = ["Observer", "RequestRecord", "new_request_id"]


@dataclass(slots=True)
class RequestRecord:
    request_id: str
    method: str
    path: str
    protocol: str  # "v1", "v2", "grpc" or "other"
    model: str | None
    version: int | None
    status: int
    started: float  # time.time() when the request arrived
    duration: float  # seconds, arrival to response sent
    inputs: Batch | None
    outputs: Batch | None
    error: str | None


class Observer(Protocol):
    def observe(self, record: RequestRecord) -> None:
        """Called after the response is sent; must be quick and must not raise."""


_id_prefix = os.urandom(8).hex()
_id_counter = itertools.count()


def _new_prefix() -> None:
    global _id_prefix
    _id_prefix = os.urandom(8).hex()


os.register_at_fork(after_in_child=_new_prefix)  # a forked worker must not repeat its parent's ids


def new_request_id() -> bytes:
    """32 hex digits, unique across workers and restarts: a random prefix per process and a counter.

    A fraction of the cost of ``uuid.uuid4()``, which reads the OS's random source every time.
    """
    return f"{_id_prefix}{next(_id_counter):016x}".encode()
