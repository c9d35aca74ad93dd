"""KServe's Python model server (``kserve.ModelServer``) serving the joblib pipeline over V1.

KServe's own sklearnserver is not published on PyPI, so this is the documented
custom-model route: a ``kserve.Model`` whose ``predict`` calls ``predict_proba``.
Usage: python model.py --model_name breast_cancer --model_path M.joblib --http_port N --workers 2
"""

from __future__ import annotations

import argparse
from typing import Any

import joblib
import kserve
import numpy as np


class SklearnProba(kserve.Model):
    def __init__(self, name: str, path: str) -> None:
        super().__init__(name)
        self.path = path
        self.model: Any = None
        self.load()

    def load(self) -> bool:
        self.model = joblib.load(self.path)
        self.ready = True
        return self.ready

    def predict(self, payload: Any, headers: Any = None, **kwargs: Any) -> Any:
        x = np.asarray(payload["instances"], dtype=np.float64)
        return {"predictions": self.model.predict_proba(x).tolist()}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(parents=[kserve.model_server.parser])
    parser.add_argument("--model_path", required=True)
    args, _ = parser.parse_known_args()
    model = SklearnProba(args.model_name, args.model_path)
    kserve.ModelServer(http_port=args.http_port, grpc_port=args.grpc_port, workers=args.workers).start([model])
