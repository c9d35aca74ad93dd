"""Issue 12, vector stages: VectorIndexer, VectorSizeHint, VectorSlicer, RobustScaler, PolynomialExpansion,
Interaction, DCT and the three selectors, against pyspark on scikit-learn's wine data."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import scipy.sparse as sp

import modelport
from modelport.core.errors import InvalidInput, ModelLoadError
from tests.sparkml._stages import WINE_COLS, compare_all, save_stage, split, wine_df, wine_rows
from tests.sparkml._util import load_stage, run_stage, vector_df
from tests.sparkml.parity import collect, fit_save_load
from tests.tolerance import assert_close

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::FutureWarning")]


def test_vector_stages_pipeline(spark: Any, tmp_path: Path) -> None:
    from pyspark.ml.feature import (
        DCT,
        ChiSqSelector,
        Interaction,
        PolynomialExpansion,
        RobustScaler,
        StringIndexer,
        UnivariateFeatureSelector,
        VarianceThresholdSelector,
        VectorAssembler,
        VectorIndexer,
        VectorSlicer,
    )

    train, test = split(wine_rows())
    # a category value never seen in training goes to the extra "keep" index
    test = [*test, dict(test[0], cat=7.0), dict(test[1], grade="unseen")]
    stages = [
        StringIndexer(inputCol="grade", outputCol="grade_i", handleInvalid="keep"),
        VectorAssembler(inputCols=[*WINE_COLS[:3], "cat"], outputCol="va"),
        VectorIndexer(inputCol="va", outputCol="vi", maxCategories=4, handleInvalid="keep"),
        VectorSlicer(inputCol="vi", outputCol="sl", indices=[1], names=["cat", "alcohol"]),
        RobustScaler(inputCol="va", outputCol="rs", withCentering=True, lower=0.1, upper=0.8),
        RobustScaler(inputCol="va", outputCol="rs2"),
        PolynomialExpansion(inputCol="sl", outputCol="pe", degree=3),
        DCT(inputCol="va", outputCol="dct"),
        DCT(inputCol="va", outputCol="idct", inverse=True),
        Interaction(inputCols=["grade_i", "alcohol", "vi"], outputCol="ia"),
        ChiSqSelector(numTopFeatures=2, featuresCol="vi", outputCol="chi"),
        UnivariateFeatureSelector(featuresCol="va", outputCol="uni", selectionMode="numTopFeatures")
        .setFeatureType("continuous")
        .setLabelType("categorical")
        .setSelectionThreshold(2),
        VarianceThresholdSelector(featuresCol="va", outputCol="var", varianceThreshold=0.5),
    ]
    cols = ["vi", "sl", "rs", "rs2", "pe", "dct", "idct", "ia", "chi", "uni", "var"]
    fitted, model = fit_save_load(stages, wine_df(spark, train), tmp_path / "m", outputs=cols)
    got = compare_all(fitted, model, wine_df(spark, test), test, cols)
    # the unseen category (7.0 in slot 3, which has 3 known values) became index 3
    assert got["vi"][-2, 3] == 3.0
    sig = model.signature
    assert sig.output("pe").shape == (-1, 19)  # C(3 + 3, 3) - 1 terms of 3 features
    assert sig.output("ia").shape == (-1, 4 * 1 * (1 + 1 + 1 + 4))  # grade one-hot (keep: 4) x alcohol x vi
    assert sig.output("sl").shape == (-1, 3)
    assert any(s.startswith("VectorIndexerModel(va -> vi; 1 of 4 categorical") for s in model.info["stages"])


def test_vector_indexer_error_and_skip(spark: Any, tmp_path: Path) -> None:
    from pyspark.ml.feature import VectorIndexer

    x = np.array([[0.0, 1.5, 2.0], [1.0, 2.5, 2.0], [2.0, 3.5, 5.0], [0.0, 4.5, 5.0]] * 5)
    for mode in ("error", "skip"):
        est = VectorIndexer(inputCol="features", outputCol="vi", maxCategories=3, handleInvalid=mode)
        model = est.fit(vector_df(spark, x))
        stage = load_stage(save_stage(model, tmp_path / mode))
        probe = np.array([[1.0, 9.0, 5.0], [2.0, 9.0, 2.0], [0.0, 1.0, 2.0]])
        frame = run_stage(stage, probe)
        assert_close(frame["vi"], collect(model.transform(vector_df(spark, probe)), ["vi"])["vi"], what=mode)
        bad = np.array([[1.0, 9.0, 5.0], [3.0, 1.0, 2.0], [0.0, 1.0, 7.0]])
        if mode == "error":
            with pytest.raises(InvalidInput, match=r"value 3\.0 in feature 0 is not one of its categories"):
                run_stage(stage, bad)
        else:
            want = collect(model.transform(vector_df(spark, bad)), ["vi"])["vi"]
            frame = run_stage(stage, bad)
            assert frame.index.tolist() == [0]
            assert_close(frame["vi"], want, what="skip")
        # sparse input: stored values are looked up, sparse stays sparse
        xs = sp.csr_matrix(probe)
        frame = run_stage(stage, xs)
        assert_close(sp.csr_matrix(frame["vi"]).toarray(), collect(model.transform(vector_df(spark, xs)), ["vi"])["vi"])


def test_vector_size_hint(spark: Any, tmp_path: Path) -> None:
    from pyspark.ml.feature import StandardScaler, VectorAssembler, VectorSizeHint

    train, test = split(wine_rows())
    from pyspark.ml.linalg import Vectors

    def with_vec(rows: list[dict[str, Any]]) -> Any:
        data = [(Vectors.dense([r["alcohol"], r["malic"]]), r["ash"]) for r in rows]
        return spark.createDataFrame(data, ["vec", "ash"])

    stages = [
        VectorSizeHint(inputCol="vec", size=2, handleInvalid="error"),
        VectorAssembler(inputCols=["vec", "ash"], outputCol="features"),
        StandardScaler(inputCol="features", outputCol="scaled"),
    ]
    fitted, model = fit_save_load(stages, with_vec(train), tmp_path / "m")
    assert model.signature.input("vec").shape == (-1, 2)
    assert model.signature.output("scaled").shape == (-1, 3)
    rows = [{"vec": [r["alcohol"], r["malic"]], "ash": r["ash"]} for r in test]
    compare_all(fitted, model, with_vec(test), rows, ["scaled"])
    assert model.info["stages"][0] == "VectorSizeHint(vec; size 2, error)"
    with pytest.raises(InvalidInput, match="vector of size 3, VectorSizeHint says 2"):
        model.predictor.predict({"vec": np.ones((2, 3)), "ash": np.ones(2)})


def test_vector_slicer_unknown_name_fails_at_load(spark: Any, tmp_path: Path) -> None:
    from pyspark.ml.feature import StandardScaler, VectorAssembler, VectorSlicer

    train, _ = split(wine_rows())
    stages = [
        VectorAssembler(inputCols=WINE_COLS[:3], outputCol="va"),
        StandardScaler(inputCol="va", outputCol="scaled"),
        VectorSlicer(inputCol="scaled", outputCol="sl", names=["alcohol"]),
    ]
    with pytest.raises(
        ModelLoadError, match=r"VectorSlicer selects features by name \(alcohol\) but the feature names"
    ):
        fit_save_load(stages, wine_df(spark, train), tmp_path / "m")


def test_polynomial_expansion_and_dct_sparse_and_degrees(spark: Any, tmp_path: Path) -> None:
    from pyspark.ml.feature import DCT, PolynomialExpansion

    rng = np.random.default_rng(3)
    x = rng.normal(size=(40, 5))
    x[x < -0.5] = 0.0
    x[0, 1] = np.inf
    x[1, 2] = np.nan
    for degree in (1, 2, 4):
        t = PolynomialExpansion(inputCol="features", outputCol="pe", degree=degree)
        stage = load_stage(save_stage(t, tmp_path / f"pe{degree}"))
        for data in (x, sp.csr_matrix(x)):
            want = collect(t.transform(vector_df(spark, data)), ["pe"])["pe"]
            assert_close(sp.csr_matrix(run_stage(stage, data)["pe"]).toarray(), want, what=f"degree {degree}")
    d = DCT(inputCol="features", outputCol="dct")
    stage = load_stage(save_stage(d, tmp_path / "dct"))
    x2 = x[2:]
    assert_close(run_stage(stage, x2)["dct"], collect(d.transform(vector_df(spark, x2)), ["dct"])["dct"], what="dct")


def test_selectors_on_sparse_input(spark: Any, tmp_path: Path) -> None:
    from pyspark.ml.feature import ChiSqSelector, VarianceThresholdSelector
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    x, y = x[:300], y[:300]
    df = vector_df(spark, sp.csr_matrix(x), y)
    for name, est in (
        ("chi", ChiSqSelector(numTopFeatures=10, outputCol="out", selectorType="fpr", fpr=0.01)),
        ("var", VarianceThresholdSelector(outputCol="out", varianceThreshold=20.0)),
    ):
        model = est.fit(df)
        stage = load_stage(save_stage(model, tmp_path / name))
        assert stage.describe().endswith(f"(features -> out; {len(model.selectedFeatures)} features)")
        xs = sp.csr_matrix(x[:50])
        frame = run_stage(stage, xs)
        assert sp.issparse(frame["out"]) or frame["out"].shape[0] == 50
        want = collect(model.transform(vector_df(spark, xs)), ["out"])["out"]
        assert_close(sp.csr_matrix(frame["out"]).toarray(), want, what=name)
        with pytest.raises(InvalidInput, match="the selector keeps index"):
            run_stage(stage, x[:2, :3])


def test_unsupported_stage_names_class_uid_and_path(spark: Any, tmp_path: Path) -> None:
    from pyspark.ml.fpm import FPGrowth

    df = spark.createDataFrame([(["a", "b"],), (["a"],)], ["items"])
    model = FPGrowth(itemsCol="items", minSupport=0.5).fit(df)
    path = save_stage(model, tmp_path / "fp")
    with pytest.raises(ModelLoadError) as err:
        modelport.load_model(path)
    text = str(err.value)
    assert "org.apache.spark.ml.fpm.FPGrowthModel" in text and model.uid in text and str(path) in text
    assert "VectorIndexerModel" in text and "supported stages" in text
