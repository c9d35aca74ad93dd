"""The bare baseline for a torch model: a V2 request parsed and the program run, nothing else (see bare.py).

The ``torch.export`` program from ``BENCH_MODEL`` runs under ``torch.inference_mode()`` with one
intra-op thread (as modelport sets it).
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import torch
from bare import v2_app

torch.set_num_threads(1)
PROGRAM = torch.export.load(os.environ["BENCH_MODEL"]).module()


def answer(tensor: dict[str, Any]) -> list[dict[str, Any]]:
    x = torch.from_numpy(np.asarray(tensor["data"], dtype=np.float32).reshape(tensor["shape"]))
    with torch.inference_mode():
        proba, digit = PROGRAM(x)
    outputs = []
    for name, datatype, value in (("softmax", "FP32", proba), ("argmax", "INT64", digit)):
        arr = value.numpy()
        outputs.append({"name": name, "datatype": datatype, "shape": list(arr.shape), "data": arr.ravel()})
    return outputs


app = v2_app("digits", answer)
