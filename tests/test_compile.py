from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from sklearn.compose import ColumnTransformer
from sklearn.datasets import load_breast_cancer, load_diabetes, load_digits, load_iris, load_wine
from sklearn.ensemble import (
    ExtraTreesClassifier,
    ExtraTreesRegressor,
    GradientBoostingClassifier,
    GradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.impute import SimpleImputer
from sklearn.linear_model import (
    ElasticNet,
    Lasso,
    LinearRegression,
    LogisticRegression,
    Ridge,
    SGDClassifier,
    SGDRegressor,
)
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import MaxAbsScaler, MinMaxScaler, OneHotEncoder, RobustScaler, StandardScaler
from sklearn.svm import LinearSVC
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

import modelport
from modelport.cli import main
from modelport.core.errors import ModelFailed
from modelport.runtimes.compile import COMPILED, CompiledPredictor, compile_predictor, register_head
from modelport.runtimes.compile.check import compare
from modelport.runtimes.compile.kernels import HEADS, Fallback
from modelport.runtimes.flavors.sklearn import SklearnPredictor, predictor_for
from tests.tolerance import assert_close

Loader = Callable[..., Any]


@pytest.fixture(autouse=True, scope="module")
def _one_blas_thread() -> Iterator[None]:
    # Fitting with a BLAS thread per core on a busy 2-core machine is 100x slower, not faster.
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):
        yield


def _lgbm(kind: str, **params: Any) -> Any:
    import lightgbm

    return getattr(lightgbm, kind)(verbose=-1, n_jobs=1, random_state=0, **params)


CASES: list[tuple[str, Callable[[], Any], Loader]] = [
    ("lr-binary", lambda: make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)), load_breast_cancer),
    ("lr-multinomial", lambda: make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)), load_iris),
    ("lr-minmax-wine", lambda: make_pipeline(MinMaxScaler(), LogisticRegression(max_iter=2000)), load_wine),
    ("lr-digits", lambda: make_pipeline(MaxAbsScaler(), LogisticRegression(C=0.01, max_iter=1000)), load_digits),
    ("sgd-log", lambda: make_pipeline(StandardScaler(), SGDClassifier(loss="log_loss", random_state=0)), load_iris),
    ("linear-svc", lambda: make_pipeline(StandardScaler(), LinearSVC()), load_breast_cancer),
    ("linear-regression", LinearRegression, load_diabetes),
    ("ridge-robust", lambda: make_pipeline(RobustScaler(), Ridge()), load_diabetes),
    ("lasso", lambda: Lasso(alpha=0.1), load_diabetes),
    ("elastic-net", lambda: ElasticNet(alpha=0.01), load_diabetes),
    ("sgd-regressor", lambda: make_pipeline(StandardScaler(), SGDRegressor(random_state=0)), load_diabetes),
    ("tree-classifier", lambda: DecisionTreeClassifier(random_state=0), load_iris),
    ("tree-regressor", lambda: DecisionTreeRegressor(random_state=0), load_diabetes),
    ("forest-digits", lambda: RandomForestClassifier(n_estimators=15, random_state=0), load_digits),
    ("forest-regressor", lambda: RandomForestRegressor(n_estimators=15, random_state=0), load_diabetes),
    ("extra-trees-wine", lambda: ExtraTreesClassifier(n_estimators=15, random_state=0), load_wine),
    ("extra-trees-regressor", lambda: ExtraTreesRegressor(n_estimators=10, random_state=0), load_diabetes),
    ("gbt-binary", lambda: GradientBoostingClassifier(n_estimators=30, random_state=0), load_breast_cancer),
    ("gbt-multiclass", lambda: GradientBoostingClassifier(n_estimators=20, random_state=0), load_iris),
    ("gbt-regressor", lambda: GradientBoostingRegressor(n_estimators=30, random_state=0), load_diabetes),
    ("scaled-forest", lambda: make_pipeline(StandardScaler(), RandomForestClassifier(10, random_state=0)), load_wine),
    ("lightgbm-binary", lambda: _lgbm("LGBMClassifier", n_estimators=40), load_breast_cancer),
    ("lightgbm-multiclass", lambda: _lgbm("LGBMClassifier", n_estimators=20), load_iris),
    ("lightgbm-regressor", lambda: _lgbm("LGBMRegressor", n_estimators=30), load_diabetes),
    ("lightgbm-pipeline", lambda: make_pipeline(StandardScaler(), _lgbm("LGBMClassifier", n_estimators=10)), load_wine),
]


@pytest.mark.parametrize(("case", "factory", "loader"), CASES, ids=[c[0] for c in CASES])
def test_compiled_kernel_agrees_with_sklearn(case: str, factory: Callable[[], Any], loader: Loader) -> None:
    X, y = loader(return_X_y=True)
    est = factory().fit(X, y)
    native = predictor_for(est)
    fast = compile_predictor(predictor_for(est))
    assert isinstance(fast, CompiledPredictor), fast.info
    assert fast.signature == native.signature
    assert fast.info["runtime"] == dict.fromkeys(native.signature.output_names, COMPILED)
    assert "agreed with the native model" in fast.info["compiled"]
    for rows in (X, X[:200], X[:1], X[-3:]):
        want, got = native.predict({"input": rows}), fast.predict({"input": rows})
        assert set(got) == set(want)
        for name in want:
            assert got[name].dtype == want[name].dtype and got[name].shape == want[name].shape
            if name == "predict" and hasattr(est, "classes_"):
                assert_close(got[name], want[name])
            else:
                assert_close(got[name], want[name])


def test_imputer_pipeline_compiles_and_fills_nan() -> None:
    X, y = load_breast_cancer(return_X_y=True)
    holes = X.copy()
    holes[np.random.default_rng(0).random(X.shape) < 0.05] = np.nan
    est = make_pipeline(SimpleImputer(strategy="median"), StandardScaler(), LogisticRegression(max_iter=2000))
    est.fit(holes, y)
    fast = compile_predictor(predictor_for(est))
    assert isinstance(fast, CompiledPredictor)
    got = fast.predict({"input": holes[:50]})
    assert_close(got["predict"], est.predict(holes[:50]))
    assert_close(got["predict_proba"], est.predict_proba(holes[:50]))


def test_estimator_without_kernel_stays_native_and_says_why(caplog: pytest.LogCaptureFixture) -> None:
    X, y = load_iris(return_X_y=True)
    predictor = predictor_for(KNeighborsClassifier().fit(X, y), source="knn.joblib")
    with caplog.at_level(logging.INFO, logger="modelport.compile"):
        out = compile_predictor(predictor)
    assert out is predictor
    assert out.info["runtime"] == {"predict": "scikit-learn", "predict_proba": "scikit-learn"}
    message = caplog.messages[-1]
    assert message.startswith(
        "knn.joblib: scikit-learn serves every output (not compiled: no kernel for KNeighborsClassifier"
    )
    assert (
        "supported estimators:" in message and "LogisticRegression" in message and "RandomForestClassifier" in message
    )


def test_xgboost_wrapper_stays_on_xgboost(caplog: pytest.LogCaptureFixture) -> None:
    xgboost = pytest.importorskip("xgboost")
    X, y = load_iris(return_X_y=True)
    est = xgboost.XGBClassifier(n_estimators=5, max_depth=2, n_jobs=1).fit(X, y)
    with caplog.at_level(logging.INFO, logger="modelport.compile"):
        out = compile_predictor(predictor_for(est, source="xgb.joblib"))
    assert isinstance(out, SklearnPredictor)
    assert caplog.messages[-1].startswith(
        "xgb.joblib: scikit-learn serves every output (not compiled: no kernel for XGBClassifier; supported estimators:"
    )
    assert "LGBMClassifier" in caplog.messages[-1]


class Drifting(LinearRegression):
    """A LinearRegression whose (test-only) kernel is off by one part in a million."""


class Mislabelling(LogisticRegression):
    """A LogisticRegression whose (test-only) kernel gets labels wrong but probabilities right."""


class Shy(LinearRegression):
    """A LinearRegression whose (test-only) kernel hands every batch back to the native model."""


@pytest.fixture
def bad_kernels() -> Iterator[None]:
    def drifting(est: Any) -> Any:
        return lambda x: {"predict": (x @ est.coef_ + est.intercept_) * (1 + 1e-6)}

    def mislabelling(est: Any) -> Any:
        def run(x: np.ndarray) -> dict[str, np.ndarray]:
            proba = est.predict_proba(x)
            return {"predict": est.classes_[np.argmin(proba, axis=1)], "predict_proba": proba}

        return run

    def shy(est: Any) -> Any:
        def run(x: np.ndarray) -> dict[str, np.ndarray]:
            raise Fallback

        return run

    register_head(Drifting, drifting)
    register_head(Mislabelling, mislabelling)
    register_head(Shy, shy)
    yield
    del HEADS[Drifting], HEADS[Mislabelling], HEADS[Shy]


@pytest.mark.usefixtures("bad_kernels")
def test_mismatching_kernel_is_refused(caplog: pytest.LogCaptureFixture) -> None:
    X, y = load_diabetes(return_X_y=True)
    predictor = predictor_for(Drifting().fit(X, y), source="drift.joblib")
    with caplog.at_level(logging.INFO, logger="modelport.compile"):
        out = compile_predictor(predictor)
    assert out is predictor and isinstance(out, SklearnPredictor)
    assert out.info["runtime"] == {"predict": "scikit-learn"}
    assert out.info["compiled"] == "compiled kernel refused by the agreement check"
    refusal = [m for m in caplog.messages if "stays on" in m]
    assert len(refusal) == 1
    assert refusal[0].startswith(
        "drift.joblib: output 'predict' stays on scikit-learn: the compiled kernel was refused: "
        "values differ beyond 1e-9 relative at "
    )
    assert refusal[0].endswith("validation rows")


@pytest.mark.usefixtures("bad_kernels")
def test_output_with_wrong_labels_stays_native_while_probabilities_compile(caplog: pytest.LogCaptureFixture) -> None:
    X, y = load_breast_cancer(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    est = Mislabelling(max_iter=2000).fit(X, y)
    with caplog.at_level(logging.INFO, logger="modelport.compile"):
        out = compile_predictor(predictor_for(est, source="labels.joblib"))
    assert isinstance(out, CompiledPredictor)
    assert out.info["runtime"] == {"predict": "scikit-learn", "predict_proba": COMPILED}
    assert any(
        m.startswith(
            "labels.joblib: output 'predict' stays on scikit-learn: the compiled kernel was refused: labels differ on"
        )
        for m in caplog.messages
    )
    got = out.predict({"input": X[:40]})
    assert_close(got["predict"], est.predict(X[:40]))
    assert_close(got["predict_proba"], est.predict_proba(X[:40]))


@pytest.mark.usefixtures("bad_kernels")
def test_kernel_never_compared_is_not_trusted(caplog: pytest.LogCaptureFixture) -> None:
    X, y = load_diabetes(return_X_y=True)
    with caplog.at_level(logging.INFO, logger="modelport.compile"):
        out = compile_predictor(predictor_for(Shy().fit(X, y), source="shy.joblib"))
    assert isinstance(out, SklearnPredictor)
    assert caplog.messages[-1] == (
        "shy.joblib: output 'predict' stays on scikit-learn: the compiled kernel was refused: "
        "no validation row was both accepted by the model and answered by the kernel"
    )


def _save(tmp_path: Path, est: Any, toml: str | None = None) -> Path:
    joblib.dump(est, tmp_path / "model.joblib")
    if toml is not None:
        (tmp_path / "modelport.toml").write_text(toml)
    return tmp_path / "model.joblib"


def test_load_model_compiles_by_default_and_can_be_turned_off(tmp_path: Path) -> None:
    X, y = load_breast_cancer(return_X_y=True)
    path = _save(tmp_path, make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)).fit(X, y))
    fast = modelport.load_model(path)
    assert fast.info["runtime"] == {"predict": COMPILED, "predict_proba": COMPILED}
    slow = modelport.load_model(path, compile=False)
    assert isinstance(slow.predictor, SklearnPredictor)
    assert slow.info["runtime"] == {"predict": "scikit-learn", "predict_proba": "scikit-learn"}
    assert_close(fast.predict({"input": X[:9]})["predict_proba"], slow.predict({"input": X[:9]})["predict_proba"])


def test_modelport_toml_compile_false(tmp_path: Path) -> None:
    X, y = load_iris(return_X_y=True)
    path = _save(tmp_path, DecisionTreeClassifier(random_state=0).fit(X, y), "compile = false\n")
    model = modelport.load_model(path)
    assert model.info["runtime"] == {"predict": "scikit-learn", "predict_proba": "scikit-learn"}
    assert "compiled" not in model.info


def test_cli_inspect_shows_runtime_and_no_compile(tmp_path: Path) -> None:
    X, y = load_iris(return_X_y=True)
    path = _save(tmp_path, RandomForestClassifier(n_estimators=5, random_state=0).fit(X, y))
    runner = CliRunner()
    fast = runner.invoke(main, ["inspect", str(path)])
    assert fast.exit_code == 0, fast.output
    assert "predict: INT64[-1]  runtime=numpy (compiled)" in fast.output
    assert "compiled: numpy kernel for RandomForestClassifier; agreed with the native model on" in fast.output
    slow = runner.invoke(main, ["inspect", str(path), "--no-compile"])
    assert slow.exit_code == 0, slow.output
    assert "predict: INT64[-1]  runtime=scikit-learn" in slow.output
    predicted = runner.invoke(
        main, ["predict", str(path), "--no-compile", "--input", '{"input": [[5.1, 3.5, 1.4, 0.2]]}']
    )
    assert predicted.exit_code == 0, predicted.output
    assert predicted.output.startswith('{"predict": [0], "predict_proba": [[')


def _frame() -> tuple[pd.DataFrame, np.ndarray]:
    data = load_wine(as_frame=True)
    frame = data.frame.iloc[:, :4].copy()
    frame.columns = ["alcohol", "malic_acid", "ash", "alcalinity"]
    frame["region"] = np.where(data.target == 0, "north", np.where(data.target == 1, "south", "east"))
    return frame, np.asarray(data.target)


@pytest.mark.parametrize("remainder", ["passthrough", "drop"])
def test_dataframe_model_with_text_column(tmp_path: Path, remainder: str) -> None:
    frame, y = _frame()
    pre = ColumnTransformer(
        [
            ("num", StandardScaler(), ["alcohol", "malic_acid", "ash"]),
            ("cat", OneHotEncoder(handle_unknown="ignore"), ["region"]),
        ],
        remainder=remainder,
    )
    est = make_pipeline(pre, LogisticRegression(max_iter=2000)).fit(frame, y)
    model = modelport.load_model(_save(tmp_path, est))
    assert model.info["runtime"] == {"predict": COMPILED, "predict_proba": COMPILED}
    rows = frame.iloc[::7].copy()
    rows.loc[rows.index[0], "region"] = "atlantis"  # unseen: encoded as all zeros
    got = model.predict({c: rows[c].tolist() for c in frame.columns})
    assert_close(got["predict"], est.predict(rows))
    assert_close(got["predict_proba"], est.predict_proba(rows))


def test_unknown_category_with_handle_unknown_error_gets_the_native_error(tmp_path: Path) -> None:
    frame, y = _frame()
    pre = ColumnTransformer([("cat", OneHotEncoder(drop="first"), ["region"])], remainder=MinMaxScaler())
    est = make_pipeline(pre, LogisticRegression(max_iter=2000)).fit(frame, y)
    path = _save(tmp_path, est)
    fast, slow = modelport.load_model(path), modelport.load_model(path, compile=False)
    assert fast.info["runtime"]["predict"] == COMPILED
    good = {c: frame[c].tolist()[:5] for c in frame.columns}
    assert_close(fast.predict(good)["predict"], est.predict(frame.iloc[:5]))
    bad = {**good, "region": ["north", "atlantis", "east", "south", "north"]}
    errors = []
    for model in (fast, slow):
        with pytest.raises(ModelFailed) as info:
            model.predict(bad)
        errors.append(str(info.value))
    assert errors[0] == errors[1]
    assert "Found unknown categories ['atlantis'] in column 0 during transform" in errors[0]


def test_nan_and_infinity_go_to_the_native_model() -> None:
    X, y = load_breast_cancer(return_X_y=True)
    lr = compile_predictor(predictor_for(make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)).fit(X, y)))
    forest_est = RandomForestClassifier(n_estimators=10, random_state=0).fit(X, y)
    forest = compile_predictor(predictor_for(forest_est))
    assert isinstance(lr, CompiledPredictor) and isinstance(forest, CompiledPredictor)
    rows = X[:3].copy()
    rows[1, 4] = np.nan
    with pytest.raises(ValueError, match="Input X contains NaN"):
        lr.predict({"input": rows})
    # Random forests route NaN down the branch they learnt; the native model answers.
    assert_close(forest.predict({"input": rows})["predict_proba"], forest_est.predict_proba(rows))
    rows[1, 4] = np.inf
    with pytest.raises(ValueError, match="Input X contains infinity"):
        forest.predict({"input": rows})


def test_transformer_only_pipeline_compiles_transform() -> None:
    X, y = load_wine(return_X_y=True)
    est = make_pipeline(SimpleImputer(), RobustScaler(), MaxAbsScaler()).fit(X)
    fast = compile_predictor(predictor_for(est))
    assert fast.info["runtime"] == {"transform": COMPILED}
    assert_close(fast.predict({"input": X[:5]})["transform"], est.transform(X[:5]))


def test_string_labels_come_back_as_objects() -> None:
    X, y = load_iris(return_X_y=True)
    names = np.array(["setosa", "versicolor", "virginica"])[y]
    est = GradientBoostingClassifier(n_estimators=5, random_state=0).fit(X, names)
    native, fast = predictor_for(est), compile_predictor(predictor_for(est))
    assert fast.signature.output("predict").datatype == "BYTES"
    got, want = fast.predict({"input": X[::10]}), native.predict({"input": X[::10]})
    assert got["predict"].dtype == object and got["predict"].tolist() == want["predict"].tolist()


def test_compare_tolerance() -> None:
    ref = np.array([1.0, 1e-20, -3.0, np.nan, 250.0])
    assert compare(ref, ref * (1 + 5e-10), exact=False) is None
    # Near zero the absolute floor (1e-12 x the largest value) applies, not the relative bound.
    assert compare(ref, ref + np.array([0, 1e-10, 0, 0, 0]), exact=False) is None
    assert compare(ref, ref * (1 + 2e-9), exact=False) == (
        "values differ beyond 1e-9 relative at 3 places (at [0]: np.float64(1.000000002) instead of np.float64(1.0))"
    )
    assert compare(np.array([0, 1, 2]), np.array([0, 1, 2]), exact=True) is None
    assert compare(np.array([0, 1, 2]), np.array([0, 2, 2]), exact=True) == (
        "labels differ on 1 of 3 rows (row 1: np.int64(2) instead of np.int64(1))"
    )
    assert compare(np.zeros((3, 2)), np.zeros(3), exact=False) == "shape [3] instead of [3, 2]"


def test_saved_sample_joins_the_validation_rows() -> None:
    X, y = load_wine(return_X_y=True)
    est = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)).fit(X, y)
    plain = compile_predictor(predictor_for(est))
    with_sample = compile_predictor(predictor_for(est), sample={"input": X[:30]})
    rows = [int(p.info["compiled"].split(" validation rows")[0].rsplit(" ", 1)[1]) for p in (plain, with_sample)]
    assert rows[1] == rows[0] + 30
    assert with_sample.estimator is est and with_sample.columns is None  # the flavor's attributes show through


@pytest.mark.parametrize(
    ("loader", "params"),
    [
        (load_breast_cancer, {"objective": "binary"}),
        (load_iris, {"objective": "multiclass", "num_class": 3}),
        (load_diabetes, {"objective": "regression"}),
    ],
    ids=["binary", "multiclass", "regression"],
)
def test_native_lightgbm_booster_compiles(tmp_path: Path, loader: Loader, params: dict[str, Any]) -> None:
    pytest.importorskip(
        "modelport.runtimes.flavors.lightgbm"
    )  # the lightgbm flavor lives on its own branch until merged
    import lightgbm

    X, y = loader(return_X_y=True)
    booster = lightgbm.train({**params, "verbose": -1, "num_threads": 1}, lightgbm.Dataset(X, y), num_boost_round=30)
    booster.save_model(tmp_path / "model.txt")
    fast, slow = (
        modelport.load_model(tmp_path / "model.txt"),
        modelport.load_model(tmp_path / "model.txt", compile=False),
    )
    assert set(fast.info["runtime"].values()) == {COMPILED}
    assert set(slow.info["runtime"].values()) == {"lightgbm"}
    for rows in (X, X[:1]):
        want, got = slow.predict({"input": rows}), fast.predict({"input": rows})
        for name in want:
            assert_close(got[name], want[name])
