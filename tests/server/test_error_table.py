"""One table of malformed requests, sent over every protocol to one real server (issue 10 item 1).

V2 JSON, the V2 binary extension and V2 gRPC (generated stubs on a real channel) carry the
same request, so they must answer with the same status and the same message, word for word;
V1 has no datatypes or output selection, so it answers its own message where its request
differs. gRPC codes follow the HTTP status (INVALID_ARGUMENT, NOT_FOUND, ...), never INTERNAL.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import grpc
import httpx
import pytest

from tests.conftest import free_port
from tests.obs_helpers import DIABETES_ROW, build_small_repository
from tests.serving import RunningServer, run_server

pytestmark = pytest.mark.slow
# tritonclient's generated stubs for the same service (importing modelport's own stubs too would
# register the "inference" package twice in protobuf's pool of the test process).
pb = pytest.importorskip("tritonclient.grpc.service_pb2")
pb_grpc = pytest.importorskip("tritonclient.grpc.service_pb2_grpc")

HTTP_TO_GRPC = {400: "INVALID_ARGUMENT", 404: "NOT_FOUND", 413: "RESOURCE_EXHAUSTED", 503: "UNAVAILABLE"}


@dataclass
class Case:
    """A malformed V2 request: (name, datatype, shape, values) per input; V1's equivalent, if it has one."""

    id: str
    status: int
    message: str
    model: str = "diabetes"
    version: str | None = None
    inputs: list[tuple[str, str, list[int], list[Any]]] = field(
        default_factory=lambda: [("input", "FP64", [1, 10], DIABETES_ROW)]
    )
    outputs: list[str] | None = None
    v1_body: Any = None  # None: V1 cannot express this request
    v1_message: str | None = None  # None: the same message as V2


CASES = [
    Case(
        "unknown model",
        404,
        "unknown model 'nope'; loaded models: broken, diabetes",
        model="nope",
        v1_body={"instances": [DIABETES_ROW]},
    ),
    Case(
        "unknown version",
        404,
        "model 'diabetes' has no version 7; versions: 1, 2",
        version="7",
        v1_body={"instances": [DIABETES_ROW]},
    ),
    Case(
        "wrong datatype",
        400,
        "model 'diabetes': input 'input' must have datatype FP64, got BYTES",
        inputs=[("input", "BYTES", [1, 10], ["x"] * 10)],
        v1_body={"instances": [["x"] * 10]},
        v1_message="model 'diabetes': input 'input' must be FP64 numbers, got str value 'x'",
    ),
    Case(
        "wrong shape",
        400,
        "model 'diabetes': input 'input' has shape [1, 9], expected [-1, 10] (-1 = any size)",
        inputs=[("input", "FP64", [1, 9], DIABETES_ROW[:9])],
        v1_body={"inputs": {"input": [DIABETES_ROW[:9]]}},
    ),
    Case(
        "unknown input",
        400,
        "model 'diabetes': unknown input 'other'; the model's inputs are: input",
        inputs=[("other", "FP64", [1, 10], DIABETES_ROW)],
        v1_body={"inputs": {"other": [DIABETES_ROW]}},
    ),
    Case(
        "missing input",
        400,
        "model 'diabetes': missing input 'input'; the model's inputs are: input",
        inputs=[],
        v1_body={"inputs": {}},
    ),
    Case(
        "unknown output",
        400,
        "model 'diabetes': unknown output 'nope'; the model's outputs are: predict",
        outputs=["nope"],
    ),
]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RunningServer, int]]:
    root = build_small_repository(tmp_path_factory.mktemp("errors"))
    port = free_port()
    with run_server(root, "--grpc-port", str(port), "--poll-seconds", "0") as running:
        yield running, port


def _path(case: Case, verb: str) -> str:
    version = f"/versions/{case.version}" if case.version else ""
    return f"/v2/models/{case.model}{version}/{verb}"


def _v2_json(url: str, case: Case) -> tuple[int, str]:
    body: dict[str, Any] = {"inputs": [{"name": n, "datatype": d, "shape": s, "data": v} for n, d, s, v in case.inputs]}
    if case.outputs is not None:
        body["outputs"] = [{"name": o} for o in case.outputs]
    answer = httpx.post(url + _path(case, "infer"), json=body)
    return answer.status_code, answer.json()["error"]


def _raw(datatype: str, values: list[Any]) -> bytes:
    if datatype == "BYTES":
        return b"".join(struct.pack("<I", len(v.encode())) + v.encode() for v in values)
    return struct.pack(f"<{len(values)}d", *values)


def _v2_binary(url: str, case: Case) -> tuple[int, str]:
    raws = [_raw(d, v) for _, d, _, v in case.inputs]
    header: dict[str, Any] = {
        "inputs": [
            {"name": n, "datatype": d, "shape": s, "parameters": {"binary_data_size": len(raw)}}
            for (n, d, s, _), raw in zip(case.inputs, raws, strict=True)
        ]
    }
    if case.outputs is not None:
        header["outputs"] = [{"name": o} for o in case.outputs]
    head = json.dumps(header).encode()
    answer = httpx.post(
        url + _path(case, "infer"),
        content=head + b"".join(raws),
        headers={"content-type": "application/octet-stream", "inference-header-content-length": str(len(head))},
    )
    return answer.status_code, answer.json()["error"]


def _grpc(port: int, case: Case) -> tuple[str, str]:
    request = pb.ModelInferRequest(model_name=case.model, model_version=case.version or "")
    for name, datatype, shape, values in case.inputs:
        tensor = request.inputs.add(name=name, datatype=datatype, shape=shape)
        if datatype == "BYTES":
            tensor.contents.bytes_contents.extend(v.encode() for v in values)
        else:
            tensor.contents.fp64_contents.extend(values)
    for name in case.outputs or ():
        request.outputs.add(name=name)
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        with pytest.raises(grpc.RpcError) as info:
            pb_grpc.GRPCInferenceServiceStub(channel).ModelInfer(request, timeout=30)
    error: Any = info.value
    return error.code().name, error.details()


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_the_same_bad_request_gets_the_same_answer_everywhere(server: tuple[RunningServer, int], case: Case) -> None:
    url, port = server[0].url, server[1]
    assert _v2_json(url, case) == (case.status, case.message)
    assert _v2_binary(url, case) == (case.status, case.message)
    assert _grpc(port, case) == (HTTP_TO_GRPC[case.status], case.message)
    if case.v1_body is not None:
        version = f"/versions/{case.version}" if case.version else ""
        answer = httpx.post(f"{url}/v1/models/{case.model}{version}:predict", json=case.v1_body)
        assert (answer.status_code, answer.json()["error"]) == (case.status, case.v1_message or case.message)


@pytest.mark.parametrize(
    ("route", "headers", "message"),
    [
        ("/v2/models/diabetes/infer", {}, "the request body is not valid JSON: "),
        ("/v1/models/diabetes:predict", {}, "the request body is not valid JSON: "),
        (
            "/v2/models/diabetes/infer",
            {"inference-header-content-length": "9", "content-type": "application/octet-stream"},
            "the JSON header of the binary request is not valid JSON: ",
        ),
    ],
    ids=["v2 json", "v1", "v2 binary"],
)
def test_bad_json_is_a_400_naming_the_part_that_is_bad(
    server: tuple[RunningServer, int], route: str, headers: dict[str, str], message: str
) -> None:
    answer = httpx.post(server[0].url + route, content=b'{"inputs": [', headers=headers)
    assert answer.status_code == 400
    assert answer.json()["error"].startswith(message)


def test_not_ready_is_unavailable_on_both(server: tuple[RunningServer, int]) -> None:
    """The broken model failed to load: 503 over REST, UNAVAILABLE over gRPC, the same message."""
    case = Case("not ready", 503, "", model="broken")
    status, message = _v2_json(server[0].url, case)
    assert status == 503 and message.startswith("model 'broken' has no available version (1: FAILED ")
    assert _grpc(server[1], case) == ("UNAVAILABLE", message)


@pytest.mark.parametrize(
    ("version", "message"),
    [
        ("7", "model 'diabetes' has no version 7; versions: 1, 2"),
        (
            "¹",
            "model 'diabetes': version '¹' is not an integer; a version is written with the digits 0-9",
        ),  # a Unicode digit: isdigit() yes, int() no
    ],
)
def test_readiness_of_an_unknown_version_is_not_found_on_both(
    server: tuple[RunningServer, int], version: str, message: str
) -> None:
    answer = httpx.get(f"{server[0].url}/v2/models/diabetes/versions/{version}/ready")
    assert (answer.status_code, answer.json()["error"]) == (404, message)
    with grpc.insecure_channel(f"127.0.0.1:{server[1]}") as channel:
        stub = pb_grpc.GRPCInferenceServiceStub(channel)
        with pytest.raises(grpc.RpcError) as info:
            stub.ModelReady(pb.ModelReadyRequest(name="diabetes", version=version), timeout=30)
        error: Any = info.value
        assert (error.code().name, error.details()) == ("NOT_FOUND", message)
        assert stub.ModelReady(pb.ModelReadyRequest(name="diabetes", version="1"), timeout=30).ready is True
        assert stub.ModelReady(pb.ModelReadyRequest(name="broken"), timeout=30).ready is False


def _raw_request(**fields: Any) -> Any:
    return pb.ModelInferRequest(model_name="diabetes", **fields)


@pytest.mark.parametrize(
    ("build", "code", "message"),
    [
        (
            lambda: _with_raw(_raw_request(), [("input", "FP64", [1, 10])], [b"\0" * 80, b"\0" * 8]),
            "INVALID_ARGUMENT",
            "model 'diabetes': 1 inputs but 2 raw_input_contents entries",
        ),
        (
            lambda: _with_raw(_raw_request(), [("input", "FP64", [10**12, 10])], [b"\0" * 80]),
            "INVALID_ARGUMENT",
            "has shape [1000000000000, 10], which needs 10000000000000 values, but its data holds 10",
        ),
        (
            lambda: _with_raw(_raw_request(), [("input", "FP64", [1, 10])], [b"\0" * 79]),
            "INVALID_ARGUMENT",
            "input 'input': 79 bytes is not a whole number of FP64 values",
        ),
        (
            lambda: _with_raw(_raw_request(), [("input", "FP99", [1, 10])], [b"\0" * 80]),
            "INVALID_ARGUMENT",
            "input 'input': datatype 'FP99' is not one of",
        ),
        (
            lambda: _typed(_raw_request(), "FP99"),
            "INVALID_ARGUMENT",
            "model 'diabetes': input 'input' datatype 'FP99' cannot travel in 'contents'",
        ),
        (
            lambda: _with_raw(_raw_request(), [("input", "FP64", [1, 10])], [b"\0" * (33 * 2**20)]),
            "RESOURCE_EXHAUSTED",
            "larger than max",  # gRPC's own limit, set to --max-body
        ),
    ],
    ids=[
        "raw count",
        "huge shape claim",
        "ragged raw bytes",
        "unknown raw datatype",
        "unknown typed datatype",
        "oversize",
    ],
)
def test_hostile_grpc_requests_get_client_codes(
    server: tuple[RunningServer, int], build: Any, code: str, message: str
) -> None:
    with grpc.insecure_channel(
        f"127.0.0.1:{server[1]}", options=[("grpc.max_send_message_length", 64 * 2**20)]
    ) as channel:
        with pytest.raises(grpc.RpcError) as info:
            pb_grpc.GRPCInferenceServiceStub(channel).ModelInfer(build(), timeout=60)
    error: Any = info.value
    assert error.code().name == code, error.details()
    assert message in error.details()
    assert httpx.get(server[0].url + "/v2/health/live").status_code == 200


def _with_raw(request: Any, inputs: list[tuple[str, str, list[int]]], raw: list[bytes]) -> Any:
    for name, datatype, shape in inputs:
        request.inputs.add(name=name, datatype=datatype, shape=shape)
    request.raw_input_contents.extend(raw)
    return request


def _typed(request: Any, datatype: str) -> Any:
    request.inputs.add(name="input", datatype=datatype, shape=[1, 10])
    return request
