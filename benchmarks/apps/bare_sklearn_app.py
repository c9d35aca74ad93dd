"""The bare baseline: an ASGI app that parses a V2 request and calls predict_proba, nothing else.

What a competent hand-written service costs: orjson in and out, one numpy reshape,
``predict_proba``, no validation beyond what a KeyError gives. The model path comes
from ``BENCH_MODEL``. GET on any path answers 200 (readiness).
"""

from __future__ import annotations

import os
from typing import Any

import joblib
import numpy as np
import orjson

MODEL = joblib.load(os.environ["BENCH_MODEL"])
JSON = [(b"content-type", b"application/json")]


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
            tensor = orjson.loads(body)["inputs"][0]
            x = np.asarray(tensor["data"], dtype=np.float64).reshape(tensor["shape"])
            proba = MODEL.predict_proba(x)
            payload = orjson.dumps(
                {
                    "model_name": "breast_cancer",
                    "outputs": [
                        {"name": "predict_proba", "datatype": "FP64", "shape": list(proba.shape), "data": proba.ravel()}
                    ],
                },
                option=orjson.OPT_SERIALIZE_NUMPY,
            )
            status = 200
        except Exception as exc:  # a benchmark baseline: report, do not crash the worker
            status, payload = 400, orjson.dumps({"error": f"{type(exc).__name__}: {exc}"})
    headers = [*JSON, (b"content-length", str(len(payload)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})
