"""Native scikit-learn vs modelport's compiled kernels (vs onnxruntime, for reference).

    PYTHONPATH=src python benchmarks/compile.py [--repeat 2000]

Times ``predict`` of the flavor's predictor (all outputs: predict and predict_proba)
on one row and on 1,000 rows, for a StandardScaler + LogisticRegression pipeline on
breast_cancer, a 100-tree random forest, a 100-stage gradient-boosted classifier and a
100-tree LGBMClassifier (one LightGBM thread).
BLAS is held to one thread, as a server worker runs it. onnxruntime (through skl2onnx,
double precision, one thread) is timed on the same rows when it converts the model.
Prints median and p99 in microseconds, and native / compiled ratios.
"""

from __future__ import annotations

import argparse
import time
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np


def timings(fn: Callable[[], Any], repeat: int) -> tuple[float, float]:
    for _ in range(min(20, repeat)):
        fn()
    out = np.empty(repeat)
    for i in range(repeat):
        t = time.perf_counter()
        fn()
        out[i] = time.perf_counter() - t
    return float(np.median(out) * 1e6), float(np.percentile(out, 99) * 1e6)


def onnx_session(est: Any, x: np.ndarray) -> Callable[[np.ndarray], Any] | None:
    """onnxruntime on the skl2onnx conversion in double, or None; prints how far it is from sklearn."""
    try:
        import onnxruntime as ort
        from skl2onnx import to_onnx

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            onx = to_onnx(
                est,
                x[:1].astype(np.float64),
                options={type(est.steps[-1][1] if hasattr(est, "steps") else est): {"zipmap": False}},
                target_opset={"": 18, "ai.onnx.ml": 3},
            )
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = opts.inter_op_num_threads = 1
        sess = ort.InferenceSession(onx.SerializeToString(), opts, providers=["CPUExecutionProvider"])
        name = sess.get_inputs()[0].name
        proba = np.asarray(sess.run(None, {name: x})[1], dtype=np.float64)
        want = est.predict_proba(x)
        gap = float(np.max(np.abs(proba - want)))
        labels = int((np.argmax(proba, axis=1) != np.argmax(want, axis=1)).sum())
        print(f"    onnxruntime vs sklearn on the data set: max |proba difference| {gap:.1e}, {labels} labels differ")
        return lambda rows: sess.run(None, {name: rows})
    except Exception as exc:  # not every model converts in double precision
        print(f"    (onnxruntime skipped: {type(exc).__name__}: {str(exc)[:100]})")
        return None


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=2000, help="timed calls per single-row case")
    args = parser.parse_args()

    from sklearn.datasets import load_breast_cancer
    from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from threadpoolctl import threadpool_limits

    from modelport.runtimes.compile import CompiledPredictor, compile_predictor
    from modelport.runtimes.flavors.sklearn import predictor_for

    X, y = load_breast_cancer(return_X_y=True)
    big = np.ascontiguousarray(np.resize(X, (1000, X.shape[1])))
    models = {
        "LR pipeline (StandardScaler + LogisticRegression)": make_pipeline(
            StandardScaler(), LogisticRegression(max_iter=2000)
        ),
        "RandomForestClassifier(100 trees)": RandomForestClassifier(n_estimators=100, random_state=0),
        "GradientBoostingClassifier(100 stages)": GradientBoostingClassifier(random_state=0),
    }
    try:
        import lightgbm

        models["LGBMClassifier(100 trees)"] = lightgbm.LGBMClassifier(verbose=-1, n_jobs=1, random_state=0)
    except ImportError:
        pass
    rows = []
    with threadpool_limits(1):
        for title, est in models.items():
            est.fit(X, y)
            native = predictor_for(est)
            fast = compile_predictor(predictor_for(est))
            assert isinstance(fast, CompiledPredictor), fast.info
            session = onnx_session(est, X)
            for label, data, repeat in (("1 row", X[:1], args.repeat), ("1,000 rows", big, max(50, args.repeat // 20))):
                batch = {"input": data}
                n_med, n_p99 = timings(lambda b=batch, p=native: p.predict(b), repeat)
                c_med, c_p99 = timings(lambda b=batch, p=fast: p.predict(b), repeat)
                o = timings(lambda d=data, s=session: s(d), repeat) if session else None
                rows.append((title, label, n_med, n_p99, c_med, c_p99, o))
                print(f"{title} [{label}] native {n_med:,.1f} µs, compiled {c_med:,.1f} µs, x{n_med / c_med:,.1f}")
    print()
    print(
        "| model | rows | sklearn median (p99) µs | compiled median (p99) µs | speed-up | onnxruntime median (p99) µs |"
    )
    print("| --- | --- | --- | --- | --- | --- |")
    for title, label, n_med, n_p99, c_med, c_p99, o in rows:
        ort = f"{o[0]:,.1f} ({o[1]:,.1f})" if o else "n/a"
        print(
            f"| {title} | {label} | {n_med:,.1f} ({n_p99:,.1f}) | {c_med:,.1f} ({c_p99:,.1f}) "
            f"| {n_med / c_med:,.1f}x | {ort} |"
        )


if __name__ == "__main__":
    main()
