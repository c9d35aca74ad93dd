"""Null vs NaN, and sparse vectors on request, on every protocol against a real server and real Spark.

One saved pipeline gives all the cases: SQLTransformer ``x * 2`` (null for a null ``x``, NaN for NaN,
inf for inf) and a CASE that is null for a null ``x``; a StringIndexer with ``skip`` (the row Spark
drops answers null); a OneHotEncoder whose null input gives a null vector; HashingTF (sparse). Answers
of every protocol are compared with Spark's rows and with the frame path (the in-process predict).
"""

from __future__ import annotations

import json
import math
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from modelport.core.nulls import null_mask
from modelport.core.signature import NULL, NULL_BITS
from tests.conftest import free_port
from tests.serving import RunningServer, run_server
from tests.tolerance import assert_close

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::FutureWarning")]

STATEMENT = (
    "SELECT *, x * 2 AS y, CASE WHEN x > 1 THEN 'big' WHEN x <= 1 THEN 'small' END AS size, "
    "coalesce(x, -1.0) AS filled FROM __THIS__"
)
# x: a number, null, NaN, inf; code: null gives OneHotEncoder's null vector; cat 'zz' is unseen (skip drops the row).
ROWS: list[tuple[Any, ...]] = [
    (1.5, 0.0, "a", "a b a"),
    (None, None, "b", "c"),
    (math.nan, 2.0, "a", ""),
    (math.inf, 1.0, "b", "b b"),
    (0.5, 1.0, "zz", "x"),
]
NAMES = ("x", "code", "cat", "text")
VECTORS = ("cat_vec", "code_vec", "tf")
OUTPUTS = ("y", "size", "filled", *VECTORS)
# Binary tensors and gRPC contents hold no null in requests: the rows without null inputs (the skipped row
# still answers null).
NO_NULL_ROWS = [r for r in ROWS if None not in r]


@dataclass
class Saved:
    root: Path
    spark_rows: dict[int, Any]
    """Spark's transformed row for each input row it kept, by input position."""


@pytest.fixture(scope="module")
def saved(spark: Any, tmp_path_factory: pytest.TempPathFactory) -> Saved:
    from pyspark.ml import Pipeline
    from pyspark.ml.feature import HashingTF, OneHotEncoder, SQLTransformer, StringIndexer, Tokenizer
    from pyspark.sql.types import DoubleType, LongType, StringType, StructField, StructType

    schema = StructType(
        [
            StructField("id", LongType()),
            StructField("x", DoubleType()),
            StructField("code", DoubleType()),
            StructField("cat", StringType()),
            StructField("text", StringType()),
        ]
    )
    df = spark.createDataFrame([(i, *r) for i, r in enumerate(ROWS)], schema)
    train = df.where("code IS NOT NULL AND cat != 'zz'")  # OneHotEncoder cannot fit on a null
    model = Pipeline(
        stages=[
            SQLTransformer(statement=STATEMENT),
            StringIndexer(inputCol="cat", outputCol="cat_idx", handleInvalid="skip"),
            OneHotEncoder(inputCols=["cat_idx", "code"], outputCols=["cat_vec", "code_vec"], handleInvalid="keep"),
            Tokenizer(inputCol="text", outputCol="words"),
            HashingTF(inputCol="words", outputCol="tf", numFeatures=16),
        ]
    ).fit(train)
    root = tmp_path_factory.mktemp("wire-nulls") / "models"
    model.save(str(root / "wire"))
    rows = model.transform(df).select("id", *OUTPUTS).collect()
    return Saved(root, {int(r["id"]): r for r in rows})


@pytest.fixture(scope="module")
def server(saved: Saved) -> Iterator[tuple[RunningServer, int]]:
    port = free_port()
    with run_server(saved.root, "--grpc-port", str(port)) as running:
        yield running, port


def _columns(rows: list[tuple[Any, ...]]) -> dict[str, list[Any]]:
    return {name: [r[i] for r in rows] for i, name in enumerate(NAMES)}


def _client_columns(rows: list[tuple[Any, ...]]) -> dict[str, np.ndarray]:
    """Inputs as modelport.client takes them: float64 with NULL for null (sent as null, NaN as "NaN")."""
    out: dict[str, np.ndarray] = {}
    for name, values in _columns(rows).items():
        number = name in ("x", "code")
        out[name] = np.array([NULL if v is None and number else v for v in values], float if number else object)
    return out


def _json_inputs(rows: list[tuple[Any, ...]]) -> list[dict[str, Any]]:
    """V2 JSON inputs; NaN and inf as the strings JSON needs, null as null."""
    tensors = []
    for name, values in _columns(rows).items():
        if name in ("x", "code"):
            data: list[Any] = [
                None if v is None else "NaN" if v != v else "Infinity" if v == math.inf else v for v in values
            ]
            tensors.append({"name": name, "datatype": "FP64", "shape": [len(rows)], "data": data})
        else:
            tensors.append({"name": name, "datatype": "BYTES", "shape": [len(rows)], "data": values})
    return tensors


def _expected(saved: Saved, rows: list[tuple[Any, ...]]) -> list[Any]:
    """Spark's answer for each of ``rows`` (None where Spark dropped the row)."""
    ids = [ROWS.index(r) for r in rows]
    return [saved.spark_rows.get(i) for i in ids]


def _is_null_value(v: float) -> bool:
    return v != v and struct.unpack("<Q", struct.pack("<d", v))[0] == NULL_BITS


def _check_number(got: float, want: float | None, what: str) -> None:
    """One FP64 answer against Spark's: null where Spark has null, NaN (not null) where NaN."""
    if want is None:
        assert _is_null_value(got), f"{what}: Spark has null, got {got!r}"
    elif math.isnan(want):
        assert math.isnan(got) and not _is_null_value(got), f"{what}: Spark has NaN, got {got!r} (null: NULL payload)"
    else:
        assert_close(got, want, what=what)


def _check_batch(result: dict[str, np.ndarray], expected: list[Any], what: str) -> None:
    """A decoded answer (FP64 nulls as NULL, text nulls as None) against Spark's rows."""
    for i, row in enumerate(expected):
        for name in ("y", "filled"):  # filled: coalesce keeps a NaN (a value in Spark SQL) and fills a null
            _check_number(float(result[name][i]), None if row is None else row[name], f"{what} {name}[{i}]")
        assert result["size"][i] == (None if row is None else row["size"]), f"{what} size[{i}]"  # text: exact
        for name in VECTORS:
            vec = None if row is None else row[name]
            got = np.asarray(result[name][i], dtype=np.float64)
            if vec is None:
                assert (np.ascontiguousarray(got).view(np.uint64) == NULL_BITS).all(), f"{what} {name}[{i}] null"
            else:
                assert_close(got, vec.toArray(), what=f"{what} {name}[{i}]")


def _json_number(v: float | None) -> Any:
    """How an answer writes one FP64 value in JSON."""
    if v is None:
        return None
    if v != v:
        return "NaN"
    if v in (math.inf, -math.inf):
        return "Infinity" if v > 0 else "-Infinity"
    return v


def _assert_json_numbers(data: list[Any], want: list[float | None], what: str) -> None:
    """JSON numbers as answers write them: null for null, the special strings for NaN and infinities."""
    assert len(data) == len(want), what
    for i, (got, w) in enumerate(zip(data, want, strict=True)):
        form = _json_number(w)
        if form is None or isinstance(form, str):
            assert got == form, f"{what}[{i}]: {got!r} instead of {form!r}"
        else:
            assert_close(got, form, what=f"{what}[{i}]")


def _assert_same_nulls(got: np.ndarray, want: np.ndarray, what: str) -> None:
    g, w = null_mask(got), null_mask(want)
    assert (g is None and w is None) or (g is not None and w is not None and (g == w).all()), f"{what}: nulls differ"


def _frame(saved: Saved, rows: list[tuple[Any, ...]]) -> dict[str, np.ndarray]:
    import modelport

    model = modelport.load_model(saved.root / "wire")
    return model.predict(_columns(rows))


def test_frame_and_row_paths_answer_null_where_spark_does(saved: Saved) -> None:
    import modelport

    _check_batch(_frame(saved, ROWS), _expected(saved, ROWS), "frame path")
    model = modelport.load_model(saved.root / "wire")
    for row in ROWS:  # one row at a time: the row path where the pipeline has one
        _check_batch(model.predict(_columns([row])), _expected(saved, [row]), f"one row {row}")


def test_v2_json_writes_null_and_nan_apart(saved: Saved, server: tuple[RunningServer, int]) -> None:
    from modelport.client import Client

    url = server[0].url
    body = {"inputs": _json_inputs(ROWS)}
    answer = httpx.post(f"{url}/v2/models/wire/infer", json=body, timeout=60).json()
    got = {o["name"]: o for o in answer["outputs"]}
    expected = _expected(saved, ROWS)
    want_y = [None if r is None else r["y"] for r in expected]
    _assert_json_numbers(got["y"]["data"], want_y, "V2 JSON y")
    assert got["y"]["parameters"]["nulls"] == [i for i, v in enumerate(want_y) if v is None]
    assert got["size"]["data"] == [None if r is None else r["size"] for r in expected]
    assert got["size"]["parameters"]["nulls"] == [i for i, r in enumerate(expected) if r is None or r["size"] is None]
    width = saved.spark_rows[0]["code_vec"].size
    null_rows = [i for i, r in enumerate(expected) if r is None or r["code_vec"] is None]
    assert got["code_vec"]["parameters"]["nulls"] == [i * width + j for i in null_rows for j in range(width)]
    # modelport's client reads it back: NaN for NaN, NULL for null; equal to the frame path.
    with Client(url) as client:
        decoded = client.predict("wire", _client_columns(ROWS))
    _check_batch(decoded, expected, "V2 JSON via modelport.client")
    frame = _frame(saved, ROWS)
    for name in ("y", "filled", *VECTORS):
        _assert_same_nulls(decoded[name], frame[name], f"V2 JSON {name}")
        assert_close(decoded[name], frame[name], what=f"V2 JSON {name} vs frame path")


def _triton_inputs(module: Any, rows: list[tuple[Any, ...]], **options: Any) -> list[Any]:
    """The rows as tritonclient inputs (``module``: tritonclient.http or .grpc): numbers FP64, text BYTES."""
    inputs = []
    for name, values in _columns(rows).items():
        number = name in ("x", "code")
        inp = module.InferInput(name, [len(rows)], "FP64" if number else "BYTES")
        inp.set_data_from_numpy(np.array(values, dtype=np.float64 if number else object), **options)
        inputs.append(inp)
    return inputs


def test_tritonclient_reads_the_json_and_binary_answers(saved: Saved, server: tuple[RunningServer, int]) -> None:
    httpclient = pytest.importorskip("tritonclient.http")
    client = httpclient.InferenceServerClient(url=f"127.0.0.1:{server[0].port}")
    rows = NO_NULL_ROWS
    frame = _frame(saved, rows)
    expected = _expected(saved, rows)
    try:
        for binary in (False, True):
            inputs = _triton_inputs(httpclient, rows, binary_data=True)  # its JSON writer would send NaN bare
            outputs = [httpclient.InferRequestedOutput(n, binary_data=binary) for n in OUTPUTS]
            result = client.infer("wire", inputs, outputs=outputs)
            what = "binary" if binary else "JSON"
            y = result.as_numpy("y")
            assert_close(y, frame["y"], what=f"tritonclient {what} y")  # NaN where NaN (or null), inf as inf
            nulls = result.get_output("y")["parameters"]["nulls"]
            assert nulls == [i for i, r in enumerate(expected) if r is None]
            if binary:  # the raw FP64 keeps the NULL payload; NaN is another NaN
                bits = y.view(np.uint64)
                assert [i for i in range(len(rows)) if bits[i] == NULL_BITS] == nulls
            size = result.as_numpy("size")
            size_nulls = result.get_output("size")["parameters"]["nulls"]
            assert size_nulls == [i for i, r in enumerate(expected) if r is None or r["size"] is None]
            for i, r in enumerate(expected):
                if i not in size_nulls:
                    assert size[i] in (r["size"], r["size"].encode())  # JSON gives str, binary bytes
                elif binary:
                    assert size[i] == b""  # a null BYTES element is empty, listed in nulls
            for name in VECTORS:
                assert_close(result.as_numpy(name), frame[name], what=f"tritonclient {what} {name}")
    finally:
        client.close()


def test_grpc_lists_nulls_and_keeps_nan(saved: Saved, server: tuple[RunningServer, int]) -> None:
    grpcclient = pytest.importorskip("tritonclient.grpc")
    client = grpcclient.InferenceServerClient(url=f"127.0.0.1:{server[1]}")
    rows = NO_NULL_ROWS
    frame = _frame(saved, rows)
    expected = _expected(saved, rows)
    inputs = _triton_inputs(grpcclient, rows)
    result = client.infer("wire", inputs)
    y = result.as_numpy("y")
    assert_close(y, frame["y"], what="gRPC y")
    nulls = json.loads(result.get_output("y").parameters["nulls"].string_param)
    assert nulls == [i for i, r in enumerate(expected) if r is None]
    assert [i for i, r in enumerate(expected) if r is not None and math.isnan(r["y"])] == [
        i for i in range(len(rows)) if math.isnan(y[i]) and i not in nulls
    ]
    size_nulls = json.loads(result.get_output("size").parameters["nulls"].string_param)
    assert size_nulls == [i for i, r in enumerate(expected) if r is None or r["size"] is None]
    assert all(result.as_numpy("size")[i] == b"" for i in size_nulls)
    for name in VECTORS:
        assert_close(result.as_numpy(name), frame[name], what=f"gRPC {name}")


def test_v1_writes_null_and_nan_apart(saved: Saved, server: tuple[RunningServer, int]) -> None:
    from modelport.client import Client

    url = server[0].url
    columns = _client_columns(ROWS)
    instances = [
        {
            k: (None if v is None else "NaN" if v != v else "Infinity" if v == math.inf else v)
            for k, v in zip(NAMES, row, strict=True)
        }
        for row in ROWS
    ]
    answer = httpx.post(f"{url}/v1/models/wire:predict", json={"instances": instances}, timeout=60).json()
    expected = _expected(saved, ROWS)
    _assert_json_numbers(
        [p["y"] for p in answer["predictions"]], [None if r is None else r["y"] for r in expected], "V1 y"
    )
    assert [p["size"] for p in answer["predictions"]] == [None if r is None else r["size"] for r in expected]
    with Client(url, protocol="v1") as client:
        decoded = client.predict("wire", columns)
    _check_batch(decoded, expected, "V1 via modelport.client")


def _spark_sparse(vec: Any) -> tuple[list[int], list[float]]:
    """A Spark vector's nonzero entries (a SparseVector's stored ones are nonzero here)."""
    dense = vec.toArray()
    idx = [int(i) for i in np.flatnonzero(dense != 0)]
    return idx, [float(dense[i]) for i in idx]


def _check_sparse_tensors(
    values: np.ndarray, indices: np.ndarray, lengths: list[int], size: int, want: list[Any], name: str, what: str
) -> None:
    assert values.shape == indices.shape == (len(want), max([0, *lengths]))
    for i, row in enumerate(want):
        vec = None if row is None else row[name]
        if vec is None:
            assert lengths[i] == -1, f"{what} {name}[{i}] is a null vector"
            continue
        assert size == vec.size
        idx, vals = _spark_sparse(vec)
        n = lengths[i]
        assert indices[i, :n].tolist() == idx and (indices[i, n:] == -1).all(), f"{what} {name}[{i}] indices"
        assert_close(values[i, :n], np.array(vals), what=f"{what} {name}[{i}] values")


def test_sparse_form_over_v2_json_and_binary(saved: Saved, server: tuple[RunningServer, int]) -> None:
    from tritonclient.http import InferResult

    url = server[0].url
    expected = _expected(saved, ROWS)
    for binary in (False, True):
        body: dict[str, Any] = {
            "inputs": _json_inputs(ROWS),
            "outputs": [{"name": n, "parameters": {"sparse": True}} for n in VECTORS] + [{"name": "y"}],
        }
        if binary:
            body["parameters"] = {"binary_data_output": True}
        r = httpx.post(f"{url}/v2/models/wire/infer", json=body, timeout=60)
        assert r.status_code == 200, r.text
        header = r.headers.get("inference-header-content-length")
        result = InferResult.from_response_body(r.content, header_length=int(header) if header else None)
        names = [o["name"] for o in result.get_response()["outputs"]]
        assert names == [m for n in VECTORS for m in (n, n + ".indices")] + ["y"]
        for name in VECTORS:
            params = result.get_output(name)["parameters"]
            assert params["sparse"] is True
            assert result.get_output(name + ".indices")["parameters"]["lengths"] == params["lengths"]
            _check_sparse_tensors(
                result.as_numpy(name),
                result.as_numpy(name + ".indices"),
                params["lengths"],
                params["size"],
                expected,
                name,
                "binary" if binary else "JSON",
            )


def test_sparse_form_over_grpc(saved: Saved, server: tuple[RunningServer, int]) -> None:
    import grpc

    grpcclient = pytest.importorskip("tritonclient.grpc")
    pb = pytest.importorskip("tritonclient.grpc.service_pb2")
    pb_grpc = pytest.importorskip("tritonclient.grpc.service_pb2_grpc")
    from tritonclient.utils import serialize_byte_tensor

    rows = NO_NULL_ROWS
    expected = _expected(saved, rows)
    request = pb.ModelInferRequest(model_name="wire")
    # Raw tensors, so the answer is raw too: tritonclient reads numbers from raw_output_contents only.
    for name, values in _columns(rows).items():
        number = name in ("x", "code")
        request.inputs.add(name=name, shape=[len(rows)], datatype="FP64" if number else "BYTES")
        arr = np.array(values, dtype=np.float64 if number else object)
        request.raw_input_contents.append(arr.tobytes() if number else serialize_byte_tensor(arr).item())
    for name in VECTORS:
        out = request.outputs.add(name=name)
        out.parameters["sparse"].bool_param = True
    with grpc.insecure_channel(f"127.0.0.1:{server[1]}") as channel:
        response = pb_grpc.GRPCInferenceServiceStub(channel).ModelInfer(request, timeout=60)
        result = grpcclient.InferResult(response)
        for name in VECTORS:
            params = result.get_output(name).parameters
            assert params["sparse"].bool_param
            lengths = json.loads(params["lengths"].string_param)
            _check_sparse_tensors(
                result.as_numpy(name),
                result.as_numpy(name + ".indices"),
                lengths,
                params["size"].int64_param,
                expected,
                name,
                "gRPC",
            )
        # Sparse asked for an output that is not a vector: INVALID_ARGUMENT with the REST message.
        request.outputs.add(name="size").parameters["sparse"].bool_param = True
        with pytest.raises(grpc.RpcError) as err:
            pb_grpc.GRPCInferenceServiceStub(channel).ModelInfer(request, timeout=60)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert err.value.details() == NOT_A_VECTOR.format(name="size")


def test_sparse_form_over_v1(saved: Saved, server: tuple[RunningServer, int]) -> None:
    url = server[0].url
    expected = _expected(saved, ROWS)
    body = {"inputs": {i["name"]: i["data"] for i in _json_inputs(ROWS)}, "sparse_outputs": ["tf", "code_vec"]}
    answer = httpx.post(f"{url}/v1/models/wire:predict", json=body, timeout=60).json()["outputs"]
    for name in ("tf", "code_vec"):
        for i, row in enumerate(expected):
            vec = None if row is None else row[name]
            got = answer[name][i]
            if vec is None:
                assert got is None, f"V1 {name}[{i}] is a null vector"
                continue
            idx, vals = _spark_sparse(vec)
            assert got["size"] == vec.size and got["indices"] == idx
            assert_close(np.array(got["values"]), np.array(vals), what=f"V1 {name}[{i}]")
    assert np.asarray(answer["cat_vec"]).shape == (len(ROWS), 2)  # not asked for: dense


NOT_A_VECTOR = "model 'wire': output '{name}' is not a vector, so there is no sparse form; the vector outputs are: " + (
    ", ".join(VECTORS)
)


def test_sparse_requests_that_cannot_be_answered_are_400s(server: tuple[RunningServer, int]) -> None:
    url = server[0].url
    inputs = _json_inputs(ROWS[:1])
    cases: list[tuple[str, dict[str, Any], str]] = [
        (
            "v2",
            {"inputs": inputs, "outputs": [{"name": "y", "parameters": {"sparse": True}}]},
            NOT_A_VECTOR.format(name="y"),
        ),
        (
            "v2",
            {"inputs": inputs, "outputs": [{"name": "tf", "parameters": {"sparse": "yes"}}]},
            "model 'wire': output 'tf' parameter 'sparse' must be true or false, got 'yes'",
        ),
        (
            "v1",
            {"inputs": {i["name"]: i["data"] for i in inputs}, "sparse_outputs": ["size"]},
            NOT_A_VECTOR.format(name="size"),
        ),
        (
            "v1",
            {"inputs": {i["name"]: i["data"] for i in inputs}, "sparse_outputs": "tf"},
            "model 'wire': 'sparse_outputs' must be a list of output names or true (every vector output), got 'tf'",
        ),
        (
            "v1",
            {"inputs": {i["name"]: i["data"] for i in inputs}, "sparse_outputs": ["nope"]},
            "model 'wire': 'sparse_outputs' names unknown output 'nope'; the model's outputs are: "
            + ", ".join(OUTPUTS),
        ),
    ]
    for protocol, body, message in cases:
        path = "/v2/models/wire/infer" if protocol == "v2" else "/v1/models/wire:predict"
        r = httpx.post(url + path, json=body, timeout=60)
        assert (r.status_code, r.json()) == (400, {"error": message}), body
