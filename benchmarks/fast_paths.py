"""What each fast path buys (core/fastpaths.py): its per-call time against its reference, side by side.

PYTHONPATH=src python benchmarks/fast_paths.py [--rounds 7] [--calls 2000]

For each fast path the same calls go through the fast path and, switched off with
``fastpaths.use_reference``, through its reference computation, in alternating rounds in one
process (the machine is shared and noisy: the two sides see the same noise). Per side it prints
the median and p99 of the per-call time over all calls, and the ratio reference / fast.

- compiled: one-row ``Model.predict`` of the bundled breast_cancer pipeline (StandardScaler +
  LogisticRegression) and a 100-tree RandomForest on the same data, compiled kernels vs scikit-learn.
- sparkml-row: one-row ``Model.predict`` of the committed Spark 3.5 pipelines that have a row path
  (tests/fixtures/sparkml/spark35), per-row Python vs the columnar transform.
- access-log: ``AccessLog.observe`` of one request record into a JSON handler on /dev/null, the
  direct write vs a ``logging.LogRecord``.
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

import modelport
from modelport.core import fastpaths
from modelport.core.config import ModelConfig
from modelport.observability.logs import AccessLog, JsonFormatter
from modelport.observability.observe import RequestRecord

ROOT = Path(__file__).resolve().parents[1]
Builder = Callable[[], Callable[[], Any]]  # loads what it needs under the current switch, returns the call


def _times(call: Callable[[], Any], n: int) -> list[float]:
    out = []
    for _ in range(n):
        t0 = time.perf_counter_ns()
        call()
        out.append((time.perf_counter_ns() - t0) / 1000.0)
    return out


def _side_by_side(name: str, build: Builder, rounds: int, calls: int) -> dict[str, float]:
    """``build()`` makes the call (loading what it needs) under the current switch; built once per side."""
    fast_call = build()
    fastpaths.use_reference([name])
    try:
        reference_call = build()
    finally:
        fastpaths.reset()
    fast: list[float] = []
    reference: list[float] = []
    for _ in range(5):  # warm both
        fast_call()
        reference_call()
    for r in range(rounds):
        first, second = (fast_call, reference_call) if r % 2 == 0 else (reference_call, fast_call)
        a, b = _times(first, calls), _times(second, calls)
        (fast if first is fast_call else reference).extend(a)
        (reference if first is fast_call else fast).extend(b)

    def p99(v: list[float]) -> float:
        return sorted(v)[int(0.99 * (len(v) - 1))]

    return {
        "fast_p50_us": statistics.median(fast),
        "fast_p99_us": p99(fast),
        "reference_p50_us": statistics.median(reference),
        "reference_p99_us": p99(reference),
        "ratio_p50": statistics.median(reference) / statistics.median(fast),
    }


def _model_call(
    path: Path, batch: dict[str, Any], config: ModelConfig | None = None
) -> Callable[[], Callable[[], Any]]:
    def build() -> Callable[[], Any]:
        model = modelport.load_model(path, config=config, compile=None)
        return lambda: model.predict(batch)

    return build


def cases(tmp: Path) -> list[tuple[str, str, Builder]]:
    import joblib
    from sklearn.datasets import load_breast_cancer
    from sklearn.ensemble import RandomForestClassifier

    X, y = load_breast_cancer(return_X_y=True)
    row = {"input": X[:1]}
    forest = tmp / "forest.joblib"
    joblib.dump(RandomForestClassifier(n_estimators=100, random_state=0).fit(X, y), forest)
    out: list[tuple[str, str, Builder]] = [
        ("compiled", "breast_cancer LR, 1 row", _model_call(ROOT / "examples/models/breast_cancer/model.joblib", row)),
        ("compiled", "RandomForest x100, 1 row", _model_call(forest, row)),
    ]
    fixtures = ROOT / "tests" / "fixtures" / "sparkml" / "spark35"
    for case in sorted(p for p in fixtures.iterdir() if (p / "expected.json").is_file()):
        expected = json.loads((case / "expected.json").read_text())
        config = ModelConfig(outputs=tuple(expected["outputs"]))
        probe = modelport.load_model(case / "model", config=config)
        if getattr(probe.predictor, "one_row_path", None) != "row":
            continue
        batch: dict[str, Any] = {}
        for spec in probe.signature.inputs:
            value = expected["inputs"][spec.name][0]
            batch[spec.name] = [value] if spec.datatype == "BYTES" else np.array([value], dtype=np.float64)
        try:
            probe.predict(batch)
        except modelport.ModelportError:
            continue  # a null/NaN probe row Spark refuses: nothing to time
        out.append(("sparkml-row", f"{case.name}, 1 row", _model_call(case / "model", batch, config)))
    out.append(("access-log", "one JSON access line", _access_log))
    return out


def _access_log() -> Callable[[], Any]:
    logger = logging.getLogger("bench.fastpaths.access")
    logger.propagate = False
    if not logger.handlers:
        handler = logging.StreamHandler(open("/dev/null", "w"))
        handler.setFormatter(JsonFormatter())
        logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    access = AccessLog(logger)
    record = RequestRecord(
        "abc", "POST", "/v2/models/wine/infer", "v2", "wine", 1, 200, time.time(), 0.0004, None, None, None
    )
    return lambda: access.observe(record)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--calls", type=int, default=2000)
    args = parser.parse_args()
    import tempfile

    print("Each fast path against its reference computation, alternating rounds in one process.")
    print(f"{args.rounds} rounds x {args.calls} calls per side; times per call in microseconds.\n")
    print(f"{'fast path':12} {'case':38} {'fast p50':>9} {'p99':>8} {'ref p50':>9} {'p99':>8} {'ref/fast':>8}")
    with tempfile.TemporaryDirectory(prefix="modelport-bench-fastpaths-") as tmp:
        for name, label, build in cases(Path(tmp)):
            r = _side_by_side(name, build, args.rounds, args.calls)
            print(
                f"{name:12} {label:38} {r['fast_p50_us']:9.1f} {r['fast_p99_us']:8.1f} "
                f"{r['reference_p50_us']:9.1f} {r['reference_p99_us']:8.1f} {r['ratio_p50']:7.1f}x"
            )


if __name__ == "__main__":
    main()
