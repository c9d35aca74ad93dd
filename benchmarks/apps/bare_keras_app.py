"""The floor for a Keras model: an ASGI app that parses a V2 request and calls the model, nothing else.

What a competent hand-written TensorFlow service costs: orjson in and out, one numpy reshape, the
Keras model called through one ``tf.function`` traced for any batch size (``model.predict`` adds
milliseconds of per-call set-up, so nobody serves with it), no validation beyond what a KeyError
gives. The model path comes from ``BENCH_MODEL``. GET on any path answers 200 (readiness).
"""

from __future__ import annotations

import os
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np
import orjson
import tensorflow as tf

MODEL = keras.saving.load_model(os.environ["BENCH_MODEL"], compile=False)
CALL = tf.function(lambda x: MODEL(x, training=False)).get_concrete_function(
    tf.TensorSpec([None, MODEL.inputs[0].shape[1]], tf.float32)
)
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
            x = np.asarray(tensor["data"], dtype=np.float32).reshape(tensor["shape"])
            result = {k: v.numpy() for k, v in CALL(tf.constant(x)).items()}
            payload = orjson.dumps(
                {
                    "model_name": "cancer",
                    "outputs": [
                        {"name": k, "datatype": "FP32", "shape": list(v.shape), "data": v.ravel()}
                        for k, v in sorted(result.items())
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
