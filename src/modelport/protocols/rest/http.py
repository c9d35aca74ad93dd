"""Minimal request/response primitives for the hand-rolled ASGI app.

The predict path is a few microseconds of Python per request; a general framework's
routing, middleware stack and request objects would cost more than the model.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from modelport.core.errors import ModelportError

__all__ = ["Request", "Response", "error_response", "json_response"]

JSON_HEADERS = ((b"content-type", b"application/json"),)
_DUMP_OPTS = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS


@dataclass
class Request:
    method: str
    path: str
    query: bytes
    headers: dict[bytes, bytes]
    body: bytes = b""
    # Filled in by the handlers so observers (metrics, logs, payload log) can see them.
    protocol: str = "other"
    model: Any = None
    inputs: Any = None
    outputs: Any = None

    def header(self, name: bytes) -> bytes | None:
        return self.headers.get(name)

    def json(self) -> Any:
        from modelport.core.errors import BadRequest

        if not self.body:
            raise BadRequest("the request body is empty; expected a JSON object")
        try:
            return orjson.loads(self.body)
        except orjson.JSONDecodeError as exc:
            raise BadRequest(f"the request body is not valid JSON: {exc}") from None


@dataclass
class Response:
    status: int
    body: bytes
    headers: tuple[tuple[bytes, bytes], ...] = JSON_HEADERS
    extra_headers: list[tuple[bytes, bytes]] = field(default_factory=list)


def dumps(obj: Any) -> bytes:
    return orjson.dumps(obj, option=_DUMP_OPTS)


def json_response(obj: Any, status: int = 200) -> Response:
    return Response(status, dumps(obj))


def error_response(exc: ModelportError) -> Response:
    return Response(exc.status, dumps({"error": exc.message}))
