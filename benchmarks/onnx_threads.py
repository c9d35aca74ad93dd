"""How many intra-op threads should the onnx flavor give onnxruntime on a small machine?

    PYTHONPATH=src python benchmarks/onnx_threads.py

Times ``session.run`` (best of interleaved rounds) for the demo breast-cancer pipeline and a 100-tree forest on
digits, at 1, 8 and 1000 rows, with 1, 2 and onnxruntime's default (0 = all cores)
intra-op threads, and prints microseconds per call and the ratio to one thread.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
from skl2onnx import to_onnx
from sklearn.datasets import load_breast_cancer, load_digits
from sklearn.ensemble import RandomForestClassifier

from modelport.runtimes.flavors.onnx import _cut_zipmaps

ROOT = Path(__file__).resolve().parent.parent


def _models() -> dict[str, tuple[bytes, np.ndarray]]:
    X, _ = load_breast_cancer(return_X_y=True)
    cancer = (ROOT / "examples/models/breast_cancer_onnx/model.onnx").read_bytes()
    Xd, yd = load_digits(return_X_y=True)
    forest = RandomForestClassifier(n_estimators=100, max_depth=10, random_state=0).fit(Xd, yd)
    raw = to_onnx(forest, Xd[:1].astype(np.float32)).SerializeToString()
    return {"breast_cancer logreg": (cancer, X.astype(np.float32)), "digits forest100": (raw, Xd.astype(np.float32))}


def _session(raw: bytes, threads: int) -> ort.InferenceSession:
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    return ort.InferenceSession(_cut_zipmaps(raw)[0], opts, providers=["CPUExecutionProvider"])


def _round(session: ort.InferenceSession, feeds: dict[str, np.ndarray]) -> float:
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < 0.1:
        session.run(None, feeds)
        n += 1
    return (time.perf_counter() - start) / n * 1e6


def _time(sessions: dict[int, ort.InferenceSession], x: np.ndarray, rounds: int = 9) -> dict[int, float]:
    """Best of interleaved rounds: the machine is shared, so the minimum is the steadiest figure."""
    feeds = {next(iter(sessions.values())).get_inputs()[0].name: x}
    for s in sessions.values():
        for _ in range(10):
            s.run(None, feeds)
    best = dict.fromkeys(sessions, float("inf"))
    for _ in range(rounds):
        for t, s in sessions.items():
            best[t] = min(best[t], _round(s, feeds))
    return best


def main() -> None:
    for label, (raw, X) in _models().items():
        sessions = {t: _session(raw, t) for t in (1, 2, 0)}
        for rows in (1, 8, 1000):
            x = np.ascontiguousarray(np.resize(X, (rows, X.shape[1])))
            us = _time(sessions, x)
            print(
                f"{label:22} rows={rows:5}  1 thread {us[1]:9.1f} us   2 threads {us[2]:9.1f} us "
                f"({us[2] / us[1]:.2f}x)   default {us[0]:9.1f} us ({us[0] / us[1]:.2f}x)"
            )


if __name__ == "__main__":
    main()
