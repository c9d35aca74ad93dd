"""The floor for a Keras model: a V2 request parsed and the model called, nothing else (see bare.py).

What a competent hand-written TensorFlow service costs: one numpy reshape, the Keras model called
through one ``tf.function`` traced for any batch size (``model.predict`` adds milliseconds of
per-call set-up, so nobody serves with it). The model path comes from ``BENCH_MODEL``.
"""

from __future__ import annotations

import os
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np
import tensorflow as tf
from bare import v2_app

MODEL = keras.saving.load_model(os.environ["BENCH_MODEL"], compile=False)
CALL = tf.function(lambda x: MODEL(x, training=False)).get_concrete_function(
    tf.TensorSpec([None, MODEL.inputs[0].shape[1]], tf.float32)
)


def answer(tensor: dict[str, Any]) -> list[dict[str, Any]]:
    x = np.asarray(tensor["data"], dtype=np.float32).reshape(tensor["shape"])
    result = {k: v.numpy() for k, v in CALL(tf.constant(x)).items()}
    return [
        {"name": k, "datatype": "FP32", "shape": list(v.shape), "data": v.ravel()} for k, v in sorted(result.items())
    ]


app = v2_app("cancer", answer)
