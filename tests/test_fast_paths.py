"""Every fast path (core/fastpaths.py) gives its reference computation's answer, through its own off switch.

One test per entry of ``FAST_PATHS``: the same inputs go through the fast path and, switched off with
``use_reference``, through the reference; a fast path added without a case here fails
``test_every_fast_path_has_an_equivalence_case``. The deeper per-path suites stay where they are
(tests/test_compile.py, tests/sparkml/test_row_path.py, tests/test_logs.py).
"""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer, load_diabetes
from sklearn.ensemble import GradientBoostingClassifier, RandomForestRegressor
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import modelport
from modelport.core import fastpaths
from modelport.core.config import ModelConfig
from modelport.core.errors import ConfigError, ModelportError
from modelport.observability.logs import AccessLog, JsonFormatter, TextFormatter, _direct_handler
from modelport.runtimes.compile import COMPILED
from tests.obs_helpers import access_record
from tests.tolerance import assert_close

SPARK_FIXTURES = Path(__file__).resolve().parent / "fixtures" / "sparkml" / "spark35"


@pytest.fixture(autouse=True)
def _every_path_on() -> Iterator[None]:
    fastpaths.reset()
    yield
    fastpaths.reset()


def _both(name: str, run: Callable[[], Any]) -> tuple[Any, Any]:
    """``run()`` with the fast path on, then with its reference."""
    fast = run()
    fastpaths.use_reference([name])
    try:
        return fast, run()
    finally:
        fastpaths.reset()


def _same(fast: dict[str, Any], reference: dict[str, Any], what: str) -> None:
    assert fast.keys() == reference.keys(), what
    for key in fast:
        got, want = np.asarray(fast[key]), np.asarray(reference[key])
        if got.dtype == object or want.dtype == object:
            assert got.tolist() == want.tolist(), f"{what}: {key}"  # text: nothing to round
        else:
            assert_close(got, want, what=f"{what}: {key}")


def _compiled(tmp_path: Path) -> None:
    cases = [
        ("lr", make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)), load_breast_cancer),
        ("gbt", GradientBoostingClassifier(n_estimators=20, random_state=0), load_breast_cancer),
        ("forest", RandomForestRegressor(n_estimators=10, random_state=0), load_diabetes),
    ]
    for label, estimator, loader in cases:
        X, y = loader(return_X_y=True)
        path = tmp_path / f"{label}.joblib"
        joblib.dump(estimator.fit(X, y), path)
        fast, reference = _both("compiled", lambda p=path: modelport.load_model(p))  # type: ignore[misc]
        assert COMPILED in set(fast.info["runtime"].values()), f"{label}: the fast path was not taken"
        assert set(reference.info["runtime"].values()) == {"scikit-learn"}, f"{label}: the switch was ignored"
        _same(fast.predict({"input": X}), reference.predict({"input": X}), label)


def _outcome(predict: Callable[[dict[str, Any]], Any], row: dict[str, Any]) -> Any:
    """The answer, or the client error's status and message."""
    try:
        return predict(row)
    except ModelportError as exc:
        return f"{exc.status} {exc.message}"


def _spark_cases() -> list[Path]:
    return sorted(p for p in SPARK_FIXTURES.iterdir() if (p / "expected.json").is_file())


def _sparkml_row(tmp_path: Path) -> None:
    taken = 0
    for case in _spark_cases():
        expected = json.loads((case / "expected.json").read_text())
        config = ModelConfig(outputs=tuple(expected["outputs"]))
        fast, reference = _both("sparkml-row", lambda c=case, cfg=config: modelport.load_model(c / "model", config=cfg))  # type: ignore[misc]
        assert reference.predictor.one_row_path == "frame", f"{case.name}: the switch was ignored"
        if fast.predictor.one_row_path != "row":
            continue  # a stage without a row method: both answers come from the frame path
        taken += 1
        rows = len(next(iter(expected["inputs"].values())))
        for i in range(rows):
            row: dict[str, Any] = {}
            for spec in fast.signature.inputs:
                value = expected["inputs"][spec.name][i]
                row[spec.name] = [value] if spec.datatype == "BYTES" else np.array([value], dtype=np.float64)
            got, want = _outcome(fast.predict, row), _outcome(reference.predict, row)
            if isinstance(got, str) or isinstance(want, str):  # a row Spark refuses: the same 400 either way
                assert got == want, f"{case.name} row {i}"
            else:
                _same(got, want, f"{case.name} row {i}")
    assert taken >= 3, "too few committed Spark pipelines take the row path to compare it"


def _access_log(tmp_path: Path) -> None:
    records = [
        access_record(),
        access_record(status=400, error="model 'diabetes': bad"),
        access_record(model=None, version=None),
    ]
    for formatter in (JsonFormatter, TextFormatter):
        logger = logging.getLogger(f"modelport.access.fastpath.{formatter.__name__}")
        stream = io.StringIO()
        handler = logging.StreamHandler(stream)
        handler.setFormatter(formatter())
        saved = logger.handlers[:]
        logger.handlers[:] = [handler]  # exactly one plain handler: the set-up the direct write is for
        logger.setLevel(logging.INFO)
        logger.propagate = False
        assert _direct_handler(logger) is handler, "the fast path would not be taken"

        def lines(s: io.StringIO = stream, lg: logging.Logger = logger) -> list[str]:
            s.seek(0)
            s.truncate()
            access = AccessLog(lg)  # made under the current switch, as build_app makes it
            for r in records:
                access.observe(r)
            return s.getvalue().splitlines()

        try:
            fast, reference = _both("access-log", lines)
        finally:
            logger.handlers[:] = saved
        assert len(fast) == len(reference) == len(records)

        def without_time(line: str, f: type = formatter) -> object:
            if f is JsonFormatter:
                data = json.loads(line)
                assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", data.pop("time"))
                return data
            return line.split(" ", 2)[2]  # after the local date and time

        assert [without_time(x) for x in fast] == [without_time(x) for x in reference], formatter.__name__


CASES: dict[str, Callable[[Path], None]] = {
    "compiled": _compiled,
    "sparkml-row": _sparkml_row,
    "access-log": _access_log,
}


def test_every_fast_path_has_an_equivalence_case() -> None:
    assert set(CASES) == set(fastpaths.FAST_PATHS)


@pytest.mark.parametrize("name", sorted(CASES))
def test_fast_path_gives_the_reference_answer(name: str, tmp_path: Path) -> None:
    CASES[name](tmp_path)


def test_an_unknown_fast_path_is_refused_with_the_list() -> None:
    with pytest.raises(ConfigError, match=r"unknown fast path\(s\) turbo; the fast paths are compiled, sparkml-row"):
        fastpaths.use_reference(["turbo"])
    assert all(fastpaths.enabled(name) for name in fastpaths.FAST_PATHS)


def test_serve_takes_the_switch_into_every_worker(tmp_path: Path) -> None:
    """``--reference-path compiled`` reaches each worker: the ops view reports the framework's own runtime."""
    import httpx

    from tests.serving import run_server

    X, y = load_breast_cancer(return_X_y=True)
    (tmp_path / "lr" / "1").mkdir(parents=True)
    joblib.dump(
        make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)).fit(X, y), tmp_path / "lr/1/model.joblib"
    )
    body = {"inputs": [{"name": "input", "datatype": "FP64", "shape": [2, 30], "data": X[:2].ravel().tolist()}]}
    runtimes = {}
    for args in ((), ("--reference-path", "compiled")):
        with run_server(tmp_path, "--workers", "2", *args) as server:
            seen: set[str] = set()
            workers: set[int] = set()
            for _ in range(200):  # a new connection per call: ask until both workers have answered
                ops = httpx.get(f"{server.url}/ui/api/ops", timeout=10).json()
                seen.update(ops["models"]["lr"]["versions"]["1"]["runtime"].values())
                workers.add(ops["worker_pid"])
                if len(workers) == 2:
                    break
            assert len(workers) == 2, "only one worker answered"
            answer = httpx.post(f"{server.url}/v2/models/lr/infer", json=body, timeout=10)
            assert answer.status_code == 200, answer.text
            runtimes[args] = seen
    assert runtimes[()] == {COMPILED}
    assert runtimes[("--reference-path", "compiled")] == {"scikit-learn"}


def test_serve_refuses_an_unknown_reference_path_with_the_list(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from modelport.cli import main

    result = CliRunner().invoke(main, ["serve", str(tmp_path), "--reference-path", "turbo"])
    assert result.exit_code == 2
    assert "Invalid value for '--reference-path': 'turbo' is not one of 'access-log', 'compiled', 'sparkml-row'" in (
        result.output
    )
