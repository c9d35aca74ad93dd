"""modelport.aws_lambda.handler, invoked in-process with the event shapes AWS documents, answers as serve does."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from modelport.aws_lambda import make_handler
from tests.serving import RunningServer, run_server
from tests.tolerance import assert_close

ROOT = Path(__file__).resolve().parents[1]
WINE = ROOT / "examples" / "models" / "wine"
V1 = json.loads((ROOT / "examples" / "requests" / "wine_v1.json").read_text())
V2 = json.loads((ROOT / "examples" / "requests" / "wine_v2.json").read_text())
TOKEN = "s3cret"


class Context:
    function_name = "modelport"
    aws_request_id = "req-1"


def rest_v1(method: str, path: str, body: bytes | None, headers: dict[str, str], b64: bool = False) -> dict[str, Any]:
    """API Gateway REST API proxy integration event (payload format 1.0)."""
    return {
        "resource": "/{proxy+}",
        "path": path,
        "httpMethod": method,
        "headers": headers,
        "multiValueHeaders": {k: [v] for k, v in headers.items()},
        "queryStringParameters": None,
        "multiValueQueryStringParameters": None,
        "pathParameters": {"proxy": path.lstrip("/")},
        "stageVariables": None,
        "requestContext": {"resourcePath": "/{proxy+}", "httpMethod": method, "path": "/prod" + path, "stage": "prod"},
        "body": None if body is None else (base64.b64encode(body).decode() if b64 else body.decode()),
        "isBase64Encoded": b64,
    }


def http_v2(method: str, path: str, body: bytes | None, headers: dict[str, str], b64: bool = False) -> dict[str, Any]:
    """HTTP API / function URL event (payload format 2.0)."""
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": "",
        "headers": headers,
        "requestContext": {
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1", "userAgent": "t"},
            "requestId": "id",
            "routeKey": "$default",
            "stage": "$default",
        },
        "isBase64Encoded": b64,
    }
    if body is not None:
        event["body"] = base64.b64encode(body).decode() if b64 else body.decode()
    return event


@pytest.fixture(scope="module")
def handler() -> Any:
    return make_handler(str(WINE.parent), auth_token=TOKEN)


@pytest.fixture(scope="module")
def server() -> Iterator[RunningServer]:
    with run_server(WINE.parent, "--auth-token", TOKEN) as running:
        yield running


def _body(response: dict[str, Any]) -> bytes:
    body = response.get("body") or ""
    return base64.b64decode(body) if response.get("isBase64Encoded") else body.encode()


AUTH = {"authorization": f"Bearer {TOKEN}", "content-type": "application/json"}
CASES = [
    ("v1 predict", "POST", "/v1/models/wine:predict", json.dumps(V1).encode(), AUTH),
    ("v2 infer", "POST", "/v2/models/wine/infer", json.dumps(V2).encode(), AUTH),
    ("bad input", "POST", "/v2/models/wine/infer", b'{"inputs": [{"name": "input"}]}', AUTH),
    ("missing model", "POST", "/v2/models/nope/infer", json.dumps(V2).encode(), AUTH),
    ("no token", "POST", "/v2/models/wine/infer", json.dumps(V2).encode(), {"content-type": "application/json"}),
    ("metadata", "GET", "/v2/models/wine", None, AUTH),
    ("health", "GET", "/v2/health/ready", None, {}),
]


@pytest.mark.parametrize("event", [rest_v1, http_v2], ids=["rest-v1", "http-v2"])
@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
@pytest.mark.parametrize("b64", [False, True], ids=["text", "base64"])
def test_same_answers_as_the_http_server(
    handler: Any, server: RunningServer, event: Any, case: tuple[Any, ...], b64: bool
) -> None:
    _, method, path, body, headers = case
    got = handler(event(method, path, body, headers, b64 and body is not None), Context())
    want = httpx.request(method, server.url + path, content=body, headers=headers)
    assert got["statusCode"] == want.status_code
    if want.headers.get("content-type", "").startswith("application/json") and want.content:
        mine, theirs = json.loads(_body(got)), want.json()
        if "error" in theirs:
            assert mine == theirs  # the same message, word for word
        elif "outputs" in theirs and theirs["outputs"] and "data" in theirs["outputs"][0]:
            for a, b in zip(mine["outputs"], theirs["outputs"], strict=True):
                assert a["name"] == b["name"]
                assert_close(a["data"], b["data"], what=f"lambda vs http {a['name']}")
        elif "predictions" in theirs:
            for a, b in zip(mine["predictions"], theirs["predictions"], strict=True):
                for key in b:
                    assert_close(a[key], b[key], what=f"lambda vs http {key}")
        else:
            assert mine == theirs
    else:
        assert _body(got) == want.content


def test_binary_tensor_request_and_response(handler: Any) -> None:
    """The V2 binary extension: an octet-stream body in, a binary answer out, base64 both ways through Lambda."""
    import numpy as np

    x = np.asarray(V2["inputs"][0]["data"], dtype=np.float64)
    header = json.dumps(
        {
            "inputs": [
                {
                    "name": "input",
                    "datatype": "FP64",
                    "shape": V2["inputs"][0]["shape"],
                    "parameters": {"binary_data_size": x.nbytes},
                }
            ],
            "outputs": [{"name": "predict_proba", "parameters": {"binary_data": True}}],
        }
    ).encode()
    body = header + x.tobytes()
    headers = {
        "authorization": f"Bearer {TOKEN}",
        "content-type": "application/octet-stream",
        "inference-header-content-length": str(len(header)),
    }
    got = handler(http_v2("POST", "/v2/models/wine/infer", body, headers, b64=True), Context())
    assert got["statusCode"] == 200 and got["isBase64Encoded"] is True
    raw = _body(got)
    json_len = int(got["headers"]["inference-header-content-length"])
    meta = json.loads(raw[:json_len])
    shape = meta["outputs"][0]["shape"]
    proba = np.frombuffer(raw[json_len:], dtype=np.float64).reshape(shape)
    want = handler(http_v2("POST", "/v2/models/wine/infer", json.dumps(V2).encode(), AUTH), Context())
    expected = next(o for o in json.loads(want["body"])["outputs"] if o["name"] == "predict_proba")
    assert_close(proba.ravel(), np.asarray(expected["data"]), what="binary vs JSON predict_proba")


def test_models_load_once_per_container_at_init(tmp_path: Path) -> None:
    """In Lambda (AWS_LAMBDA_FUNCTION_NAME set) the import loads the models; events reuse them."""
    probe = (
        "import time, json; t = time.perf_counter(); import modelport.aws_lambda as m; took = time.perf_counter() - t\n"
        "first = m._handler\n"
        "ev = {'version': '2.0', 'rawPath': '/v2/health/ready', 'rawQueryString': '', 'headers': {}, "
        "'requestContext': {'http': {'method': 'GET', 'path': '/v2/health/ready', "
        "'protocol': 'HTTP/1.1', 'sourceIp': '1.2.3.4'}}, "
        "'isBase64Encoded': False}\n"
        "codes = [m.handler(ev, None)['statusCode'] for _ in range(3)]\n"
        "print(json.dumps({'loaded_at_import': first is not None, 'same': m._handler is first, "
        "'codes': codes, 'seconds': took}))\n"
    )
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT / "src"),
        "AWS_LAMBDA_FUNCTION_NAME": "modelport",
        "MODELPORT_MODELS": str(WINE.parent),
    }
    done = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["loaded_at_import"] and result["same"] and result["codes"] == [200, 200, 200]
