"""What the server tells its observers after every request.

Metrics, access logs and the payload log subscribe here, so the request path knows
nothing about any of them: it builds one :class:`RequestRecord` and hands it over.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from modelport.signature import Batch

__all__ = ["Observer", "RequestRecord"]


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
