"""The HTTP floor: an ASGI app that answers every request with the same small JSON (run under uvicorn)."""

from __future__ import annotations

from typing import Any

BODY = (
    b'{"model_name":"constant","outputs":[{"name":"predict_proba","datatype":"FP64","shape":[1,2],"data":[0.1,0.9]}]}'
)
HEADERS = [(b"content-type", b"application/json"), (b"content-length", str(len(BODY)).encode())]


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    more = True
    while more:  # drain the request body
        more = (await receive()).get("more_body", False)
    await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
    await send({"type": "http.response.body", "body": BODY})
