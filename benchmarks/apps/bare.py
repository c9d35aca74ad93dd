"""The shared shell of the bare baselines: an ASGI app that reads a V2 request and writes the answer.

What a competent hand-written service costs around its model: the body read, orjson in and out,
one tensor taken from ``inputs[0]``, no validation beyond what a KeyError gives. GET on any path
answers 200 (readiness). Each ``bare_*_app.py`` supplies only the model call.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import orjson

JSON = [(b"content-type", b"application/json")]
Answer = Callable[[dict[str, Any]], list[dict[str, Any]]]  # the request's first tensor -> V2 outputs


def v2_app(model_name: str, answer: Answer) -> Callable[[dict[str, Any], Any, Any], Awaitable[None]]:
    """An ASGI app answering V2 requests for ``model_name`` with ``answer``."""

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = b""
        more = True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        if scope["method"] == "GET":
            status, payload = 200, b'{"ready":true}'
        else:
            try:
                outputs = answer(orjson.loads(body)["inputs"][0])
                payload = orjson.dumps(
                    {"model_name": model_name, "outputs": outputs}, option=orjson.OPT_SERIALIZE_NUMPY
                )
                status = 200
            except Exception as exc:  # a benchmark baseline: report, do not crash the worker
                status, payload = 400, orjson.dumps({"error": f"{type(exc).__name__}: {exc}"})
        headers = [*JSON, (b"content-length", str(len(payload)).encode())]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": payload})

    return app
