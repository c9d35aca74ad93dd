"""What a flavor's predict costs over calling the framework directly.

    PYTHONPATH=src python benchmarks/flavor_overhead.py

For each demo model in examples/models, times the flavor predictor's ``predict`` on an
already-validated Batch against the plain framework call a hand-written server would make
(for ONNX: ``session.run`` on the file as skl2onnx wrote it, ZipMap and all), at 1 and
100 rows. Prints microseconds per call (best of interleaved rounds; the machine is
shared) and the ratio flavor / framework.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import joblib
import numpy as np
from sklearn.datasets import load_breast_cancer

import modelport

MODELS = Path(__file__).resolve().parent.parent / "examples" / "models"


def _best(fns: dict[str, Callable[[], Any]], rounds: int = 7) -> dict[str, float]:
    best = dict.fromkeys(fns, float("inf"))
    for fn in fns.values():
        fn()
    for _ in range(rounds):
        for key, fn in fns.items():
            n, start = 0, time.perf_counter()
            while time.perf_counter() - start < 0.05:
                fn()
                n += 1
            best[key] = min(best[key], (time.perf_counter() - start) / n * 1e6)
    return best


def _framework(model_dir: str) -> Callable[[np.ndarray], Any]:
    if model_dir == "breast_cancer":
        est = joblib.load(MODELS / model_dir / "model.joblib")
        return lambda x: (est.predict(x), est.predict_proba(x))
    if model_dir == "breast_cancer_onnx":
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1
        session = ort.InferenceSession(str(MODELS / model_dir / "model.onnx"), opts)
        return lambda x: session.run(None, {"input": x.astype(np.float32)})
    if model_dir == "breast_cancer_xgb":
        import xgboost as xgb

        booster = xgb.Booster()
        booster.load_model(str(MODELS / model_dir / "model.json"))
        booster.set_param("nthread", 1)
        return lambda x: booster.inplace_predict(x)
    import lightgbm as lgb

    lbooster = lgb.Booster(model_file=str(MODELS / model_dir / "model.txt"))
    return lambda x: lbooster.predict(x)


def main() -> None:
    X, _ = load_breast_cancer(return_X_y=True)
    for model_dir in ("breast_cancer", "breast_cancer_onnx", "breast_cancer_xgb", "breast_cancer_lgbm"):
        model = modelport.load_model(MODELS / model_dir)
        direct = _framework(model_dir)
        for rows in (1, 100):
            batch = model.plan.coerce_batch({"input": X[:rows]})
            x = X[:rows]
            flavor, framework = model.predictor.predict, direct
            us = _best({"flavor": lambda f=flavor, b=batch: f(b), "framework": lambda f=framework, x=x: f(x)})
            print(
                f"{model_dir:20} rows={rows:4}  flavor {us['flavor']:8.1f} us  framework {us['framework']:8.1f} us  "
                f"ratio {us['flavor'] / us['framework']:.2f}"
            )


if __name__ == "__main__":
    main()
