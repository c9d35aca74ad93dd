"""The compile cache: a kernel that passed the agreement check serves the next start without the framework."""

from __future__ import annotations

import json
import logging
import os
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import modelport
from modelport.runtimes.compile import COMPILED, CompiledPredictor
from modelport.runtimes.compile.cache import ENV, LazyNative, read_entry
from tests.tolerance import assert_close

ROOT = Path(__file__).resolve().parents[1]
BREAST = ROOT / "examples" / "models" / "breast_cancer" / "model.joblib"


@pytest.fixture()
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "cache"
    monkeypatch.setenv(ENV, str(path))
    return path


def _copy(tmp_path: Path, where: str) -> Path:
    target = tmp_path / where / "breast_cancer" / "model.joblib"
    target.parent.mkdir(parents=True)
    shutil.copy(BREAST, target)
    return target


def test_a_second_load_of_the_same_bytes_serves_from_the_cache_with_the_same_answers(
    cache: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    first = modelport.load_model(_copy(tmp_path, "a"))
    assert isinstance(first.predictor, CompiledPredictor)
    assert len(list(cache.glob("*.pkl"))) == 1
    caplog.set_level(logging.INFO, logger="modelport.compile")
    second = modelport.load_model(_copy(tmp_path, "b"))  # another path, same bytes
    assert isinstance(second.predictor, CompiledPredictor)
    assert isinstance(second.predictor.inner, LazyNative)
    assert second.predictor.inner.loaded is False
    assert "from the compile cache" in caplog.text and "agreed with the native model" in caplog.text
    assert second.signature == first.signature
    assert second.info["runtime"] == {"predict": COMPILED, "predict_proba": COMPILED}
    x = np.random.default_rng(0).normal(10, 5, size=(50, 30))
    a, b = first.predict({"input": x}), second.predict({"input": x})
    # The kernel from the cache is the kernel compiled before: the same arithmetic, so the same bits.
    assert_close(a["predict"], b["predict"], exact=True)
    assert_close(a["predict_proba"], b["predict_proba"], exact=True)
    assert second.predictor.inner.loaded is False


def test_the_native_model_loads_on_first_need_and_answers_as_it_always_did(cache: Path, tmp_path: Path) -> None:
    modelport.load_model(_copy(tmp_path, "a"))
    model = modelport.load_model(_copy(tmp_path, "b"))
    lazy = model.predictor.inner
    assert getattr(model.predictor, "close", None) is None  # not an attribute of the native predictor
    assert lazy.loaded is False
    x = np.ones((2, 30))
    x[1, 3] = np.inf  # the kernel hands this batch to the native model
    with pytest.raises(modelport.ModelportError, match="infinity"):
        model.predict({"input": x})
    assert lazy.loaded is True
    assert type(model.predictor.estimator).__name__ == "Pipeline"


def test_other_bytes_miss_the_cache(cache: Path, tmp_path: Path) -> None:
    import joblib
    from sklearn.datasets import load_breast_cancer
    from sklearn.linear_model import LogisticRegression

    modelport.load_model(_copy(tmp_path, "a"))
    X, y = load_breast_cancer(return_X_y=True)
    other = tmp_path / "other" / "model.joblib"
    other.parent.mkdir()
    joblib.dump(LogisticRegression(max_iter=5000).fit(X, y), other)
    model = modelport.load_model(other)
    assert not isinstance(model.predictor.inner, LazyNative)
    assert len(list(cache.glob("*.pkl"))) == 2


def test_a_model_without_a_serving_kernel_is_not_cached(cache: Path, tmp_path: Path) -> None:
    import joblib
    from sklearn.datasets import load_iris
    from sklearn.neighbors import KNeighborsClassifier

    X, y = load_iris(return_X_y=True)
    path = tmp_path / "knn" / "model.joblib"
    path.parent.mkdir()
    joblib.dump(KNeighborsClassifier().fit(X, y), path)
    modelport.load_model(path)
    assert not cache.exists() or not list(cache.glob("*.pkl"))


def test_off_writes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV, "off")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    model = modelport.load_model(_copy(tmp_path, "a"))
    assert isinstance(model.predictor, CompiledPredictor)
    assert not (tmp_path / "xdg").exists() and not (tmp_path / "home").exists()


def test_an_entry_that_would_import_a_framework_is_refused_and_the_model_loads_the_long_way(
    cache: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    modelport.load_model(_copy(tmp_path, "a"))
    (entry,) = cache.glob("*.pkl")
    import sklearn.preprocessing

    # The same key, but an entry holding a scikit-learn object: a hit must not import the framework.
    entry.write_bytes(pickle.dumps({"format": 1, "kernel": sklearn.preprocessing.StandardScaler()}))
    caplog.set_level(logging.WARNING, logger="modelport.compile")
    assert read_entry(entry.stem) is None
    assert "unreadable compile cache entry ignored" in caplog.text and "sklearn.preprocessing" in caplog.text
    model = modelport.load_model(_copy(tmp_path, "b"))
    assert isinstance(model.predictor, CompiledPredictor)
    assert not isinstance(model.predictor.inner, LazyNative)


def test_a_damaged_entry_is_ignored(cache: Path, tmp_path: Path) -> None:
    modelport.load_model(_copy(tmp_path, "a"))
    (entry,) = cache.glob("*.pkl")
    entry.write_bytes(b"not a pickle")
    model = modelport.load_model(_copy(tmp_path, "b"))
    assert not isinstance(model.predictor.inner, LazyNative)
    x = np.ones((1, 30))
    assert model.predict({"input": x})["predict_proba"].shape == (1, 2)


def test_a_cache_hit_imports_neither_scikit_learn_nor_pandas_nor_scipy_stats(cache: Path, tmp_path: Path) -> None:
    modelport.load_model(_copy(tmp_path, "a"))
    script = (
        "import sys, json, numpy as np, modelport\n"
        f"m = modelport.load_model({str(_copy(tmp_path, 'b'))!r})\n"
        "out = m.predict({'input': np.ones((3, 30))})\n"
        "heavy = [n for n in ('sklearn', 'pandas', 'scipy.stats', 'scipy.sparse', 'pyarrow') if n in sys.modules]\n"
        "print(json.dumps({'heavy': heavy, 'proba': out['predict_proba'].tolist()}))\n"
    )
    env = {**os.environ, ENV: str(cache), "PYTHONPATH": str(ROOT / "src")}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, check=True)
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["heavy"] == []
    native = modelport.load_model(BREAST, compile=False)
    assert_close(seen["proba"], native.predict({"input": np.ones((3, 30))})["predict_proba"], what="cached vs native")


def test_a_model_from_the_cache_still_refuses_values_beyond_float32(cache: Path, tmp_path: Path) -> None:
    """A forest computes in float32: the range check must hold without the native model loaded to ask."""
    import joblib
    from sklearn.datasets import load_breast_cancer
    from sklearn.ensemble import RandomForestClassifier

    X, y = load_breast_cancer(return_X_y=True)
    path = tmp_path / "a" / "forest.joblib"
    path.parent.mkdir()
    joblib.dump(RandomForestClassifier(n_estimators=5, random_state=0).fit(X, y), path)
    first = modelport.load_model(path)
    assert first.plan.compute_datatype == "FP32"
    other = tmp_path / "b" / "forest.joblib"
    other.parent.mkdir()
    shutil.copy(path, other)
    second = modelport.load_model(other)
    assert isinstance(second.predictor.inner, LazyNative)
    assert second.plan.compute_datatype == "FP32"
    x = X[:2].copy()
    x[0, 4] = 1e39
    with pytest.raises(modelport.ModelportError, match=r"beyond the range of FP32") as err:
        second.predict({"input": x})
    assert err.value.status == 400
    assert second.predictor.inner.loaded is False  # refused before any model ran
