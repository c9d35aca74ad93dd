"""The bare baseline for a torch model: an ASGI app that parses a V2 request and runs the program, nothing else.

orjson in and out, one numpy reshape, the ``torch.export`` program from ``BENCH_MODEL``
under ``torch.inference_mode()`` with one intra-op thread (as modelport sets it), no
validation beyond what a KeyError gives. GET on any path answers 200 (readiness).
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import orjson
import torch

torch.set_num_threads(1)
PROGRAM = torch.export.load(os.environ["BENCH_MODEL"]).module()
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
            x = torch.from_numpy(np.asarray(tensor["data"], dtype=np.float32).reshape(tensor["shape"]))
            with torch.inference_mode():
                proba, digit = PROGRAM(x)
            outputs = []
            for name, datatype, value in (("softmax", "FP32", proba), ("argmax", "INT64", digit)):
                arr = value.numpy()
                outputs.append({"name": name, "datatype": datatype, "shape": list(arr.shape), "data": arr.ravel()})
            payload = orjson.dumps({"model_name": "digits", "outputs": outputs}, option=orjson.OPT_SERIALIZE_NUMPY)
            status = 200
        except Exception as exc:  # a benchmark baseline: report, do not crash the worker
            status, payload = 400, orjson.dumps({"error": f"{type(exc).__name__}: {exc}"})
    headers = [*JSON, (b"content-length", str(len(payload)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})
