"""Every client mistake gets a 4xx with a message naming the model, input and problem."""

from __future__ import annotations

import httpx
import pytest

from modelport.repository import Repository
from tests.server.conftest import make_client

ROW = [13.2, 1.8, 2.1, 15.0, 100.0, 2.4, 2.6, 0.3, 1.6, 4.7, 1.0, 3.2, 1050.0]


def v2(data: object, shape: list[int] | None = None, datatype: str = "FP64", name: str = "input") -> dict[str, object]:
    return {"inputs": [{"name": name, "shape": shape or [1, 13], "datatype": datatype, "data": data}]}


CASES = [
    # (method, path, body or raw bytes, status, exact message or prefix)
    ("POST", "/v2/models/wine/infer", b"{not json", 400, "the request body is not valid JSON"),
    ("POST", "/v2/models/wine/infer", b"", 400, "the request body is empty; expected a JSON object"),
    ("POST", "/v2/models/wine/infer", [1, 2], 400, "model 'wine': the V2 infer body must be a JSON object"),
    ("POST", "/v2/models/wine/infer", {"inputs": {}}, 400, "model 'wine': the V2 infer body needs 'inputs'"),
    (
        "POST",
        "/v2/models/wine/infer",
        {"inputs": [{"name": "input"}]},
        400,
        "model 'wine': input 'input' lacks shape, datatype, data",
    ),
    (
        "POST",
        "/v2/models/wine/infer",
        v2(ROW, name="x"),
        400,
        "model 'wine': unknown input 'x'; the model's inputs are: input",
    ),
    ("POST", "/v2/models/wine/infer", {"inputs": []}, 400, "model 'wine': missing input 'input'"),
    (
        "POST",
        "/v2/models/wine/infer",
        v2(["a"] * 13),
        400,
        "model 'wine': input 'input' must be FP64 numbers, got str value 'a'",
    ),
    (
        "POST",
        "/v2/models/wine/infer",
        v2(ROW, datatype="BYTES"),
        400,
        "model 'wine': input 'input' must have datatype FP64, got BYTES",
    ),
    (
        "POST",
        "/v2/models/wine/infer",
        v2(ROW, datatype="FLOAT"),
        400,
        "model 'wine': input 'input' has datatype 'FLOAT', which is not one of",
    ),
    (
        "POST",
        "/v2/models/wine/infer",
        v2(ROW[:12], shape=[1, 12]),
        400,
        "model 'wine': input 'input' has shape [1, 12], expected [-1, 13] (-1 = any size)",
    ),
    (
        "POST",
        "/v2/models/wine/infer",
        v2(ROW, shape=[2, 13]),
        400,
        "model 'wine': input 'input' has shape [2, 13], which needs 26 values, but its data holds 13",
    ),
    (
        "POST",
        "/v2/models/wine/infer",
        v2([ROW, ROW[:5]], shape=[2, 13]),
        400,
        "model 'wine': input 'input' has ragged rows",
    ),
    (
        "POST",
        "/v2/models/wine/infer",
        v2([], shape=[0, 13]),
        400,
        "model 'wine': the request has no rows (empty batch)",
    ),
    (
        "POST",
        "/v2/models/wine/infer",
        {**v2(ROW), "outputs": [{"name": "nope"}]},
        400,
        "model 'wine': unknown output 'nope'; the model's outputs are: predict, predict_proba",
    ),
    (
        "POST",
        "/v2/models/wyne/infer",
        v2(ROW),
        404,
        "unknown model 'wyne'; loaded models: breast_cancer, broken, diabetes",
    ),
    ("POST", "/v2/models/diabetes/versions/9/infer", v2(ROW), 404, "model 'diabetes' has no version 9; versions: 1, 2"),
    ("POST", "/v2/models/diabetes/versions/x/infer", v2(ROW), 404, "model 'diabetes': version 'x' is not an integer"),
    ("GET", "/v2/models/wine/infer", None, 405, "GET is not allowed on /v2/models/wine/infer; use POST"),
    ("GET", "/v2/nothing/here", None, 404, "no route for /v2/nothing/here"),
    (
        "POST",
        "/v1/models/wine:predict",
        {"instances": [ROW], "inputs": [ROW]},
        400,
        "model 'wine': the V1 body needs exactly one of 'instances' (row format) or 'inputs' (columnar)",
    ),
    ("POST", "/v1/models/wine:predict", {"instances": []}, 400, "model 'wine': 'instances' is empty (no rows)"),
    (
        "POST",
        "/v1/models/wine:predict",
        {"instances": [ROW, ROW[:3]]},
        400,
        "model 'wine': input 'input' has ragged rows",
    ),
    (
        "POST",
        "/v1/models/wine:predict",
        {"instances": [["x"] * 13]},
        400,
        "model 'wine': input 'input' must be FP64 numbers, got str value 'x'",
    ),
    (
        "POST",
        "/v1/models/wine_frame:predict",
        {"instances": [{"alcohol": 1.0}]},
        400,
        "model 'wine_frame': missing inputs 'malic_acid', 'region'",
    ),
    (
        "POST",
        "/v1/models/wine_frame:predict",
        {"instances": [{"alcohol": 1, "malic_acid": 1, "region": "n"}, {"alcohol": 1}]},
        400,
        "model 'wine_frame': instance 1 does not have the same keys as instance 0",
    ),
    (
        "POST",
        "/v1/models/wine_frame:predict",
        {"instances": [[1.0, 2.0]]},
        400,
        "model 'wine_frame' has 3 inputs (alcohol, malic_acid, region); send each instance as an object",
    ),
    (
        "POST",
        "/v1/models/wine_frame:predict",
        {"instances": [{"alcohol": 1, "malic_acid": 1, "region": {"b64": "%%"}}]},
        400,
        "model 'wine_frame': input 'region' has a 'b64' value that is not valid base64",
    ),
    (
        "POST",
        "/v1/models/wine:classify",
        {"examples": []},
        404,
        "the V1 verb ':classify' is not supported; use ':predict'",
    ),
    ("POST", "/v1/models/nope:predict", {"instances": [ROW]}, 404, "unknown model 'nope'"),
    (
        "POST",
        "/v2/models/exploding/infer",
        v2([1.0, 2.0], shape=[1, 2]),
        500,
        "model 'exploding' version 1 failed: RuntimeError: boom: the model's own failure",
    ),
]


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "message"), CASES, ids=[f"{c[3]}-{c[4][:40]}" for c in CASES]
)
async def test_client_mistakes(
    client: httpx.AsyncClient, method: str, path: str, body: object, status: int, message: str
) -> None:
    if isinstance(body, bytes):
        r = await client.request(method, path, content=body, headers={"content-type": "application/json"})
    elif body is None:
        r = await client.request(method, path)
    else:
        r = await client.request(method, path, json=body)
    assert r.status_code == status
    assert r.headers["content-type"] == "application/json"
    assert r.json()["error"].startswith(message), r.json()
    # the server keeps serving after every mistake and after a model failure
    ok = await client.post("/v2/models/wine/infer", json=v2(ROW))
    assert ok.status_code == 200


async def test_body_limit_and_content_type(repository: Repository) -> None:
    async with make_client(repository, max_body=1000) as c:
        r = await c.post("/v2/models/wine/infer", json={"inputs": [{"pad": "x" * 2000}]})
        assert r.status_code == 413
        assert r.json() == {"error": "the request body is 2,023 bytes; the limit is 1,000 (--max-body)"}
        r = await c.post("/v2/models/wine/infer", content=b"a,b\n1,2", headers={"content-type": "text/csv"})
        assert r.status_code == 415
        assert r.json()["error"].startswith("content type 'text/csv' is not supported; send application/json")
        # curl -d sends form-urlencoded by default: read it as JSON like TF Serving does
        r = await c.post(
            "/v2/models/wine/infer",
            content=b'{"inputs": []}',
            headers={"content-type": "application/x-www-form-urlencoded"},
        )
        assert r.status_code == 400 and "missing input 'input'" in r.json()["error"]


async def test_bearer_token(repository: Repository) -> None:
    async with make_client(repository, auth_token="s3cret") as c:
        assert (await c.get("/v2/health/live")).status_code == 200
        r = await c.get("/v2/models/wine")
        assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Bearer")
        assert r.json() == {"error": "missing bearer token: send 'Authorization: Bearer <token>'"}
        r = await c.get("/v2/models/wine", headers={"authorization": "Bearer wrong"})
        assert r.status_code == 401 and r.json()["error"].startswith("wrong bearer token")
        r = await c.post(
            "/v1/models/wine:predict", json={"instances": [ROW]}, headers={"authorization": "Bearer s3cret"}
        )
        assert r.status_code == 200


async def test_cors(repository: Repository) -> None:
    async with make_client(repository, cors_origins=("https://app.example",)) as c:
        pre = await c.options(
            "/v2/models/wine/infer",
            headers={
                "origin": "https://app.example",
                "access-control-request-method": "POST",
                "access-control-request-headers": "content-type, authorization",
            },
        )
        assert pre.status_code == 204
        assert pre.headers["access-control-allow-origin"] == "https://app.example"
        assert "POST" in pre.headers["access-control-allow-methods"]
        assert pre.headers["access-control-allow-headers"] == "content-type, authorization"
        r = await c.post("/v2/models/wine/infer", json=v2(ROW), headers={"origin": "https://app.example"})
        assert r.headers["access-control-allow-origin"] == "https://app.example"
        bad = await c.options(
            "/v2/models/wine/infer", headers={"origin": "https://evil.example", "access-control-request-method": "POST"}
        )
        assert bad.status_code == 403
        assert (
            bad.json()["error"] == "origin 'https://evil.example' is not allowed; allowed origins: https://app.example"
        )
        r = await c.post("/v2/models/wine/infer", json=v2(ROW), headers={"origin": "https://evil.example"})
        assert "access-control-allow-origin" not in r.headers
    async with make_client(repository) as c:  # no origins configured: no CORS headers at all
        r = await c.post("/v2/models/wine/infer", json=v2(ROW), headers={"origin": "https://app.example"})
        assert "access-control-allow-origin" not in r.headers


async def test_request_id_is_echoed(client: httpx.AsyncClient) -> None:
    r = await client.get("/v2/models/wine", headers={"x-request-id": "abc-123"})
    assert r.headers["x-request-id"] == "abc-123"
