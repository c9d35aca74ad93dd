"""Every client mistake gets a 4xx with a message naming the model, input and problem."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from modelport.serving.repository import Repository
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
    # Versions are ASCII digits: '¹' and '١' pass str.isdigit() (and int() takes '١').
    ("GET", "/v2/models/wine/versions/%C2%B9/ready", None, 404, "model 'wine': version '¹' is not an integer"),
    ("GET", "/v2/models/diabetes/versions/%D9%A1", None, 404, "model 'diabetes': version '١' is not an integer"),
    ("GET", "/v1/models/diabetes/versions/%C2%B9/metadata", None, 404, "model 'diabetes': version '¹' is not"),
    ("POST", "/v2/models/diabetes/versions/+1/infer", v2(ROW), 404, "model 'diabetes': version '+1' is not"),
    ("GET", "/v2/models/nope/versions/%C2%B9/ready", None, 404, "unknown model 'nope'"),
    (
        "POST",
        "/v2/models/wine/infer",
        v2(ROW, datatype={}),  # type: ignore[arg-type]
        400,
        "model 'wine': input 'input' has datatype {}; 'datatype' must be a string, one of BOOL, UINT8",
    ),
    (
        "POST",
        "/v2/models/wine/infer",
        {"inputs": [{"name": {}, "shape": [1, 13], "datatype": "FP64", "data": ROW}]},
        400,
        "model 'wine': unknown input name {} (names are strings); the model's inputs are: input",
    ),
    # Finite FP64 values beyond float32, for a model computing in float32: refused before the model.
    (
        "POST",
        "/v1/models/wine_forest:predict",
        {"instances": [[2.08e270, *ROW[1:]]]},
        400,
        "model 'wine_forest': input 'input' has value 2.08e+270, beyond the range of FP32 (±3.403e+38) that the "
        "model computes in",
    ),
    # The framework's own check on the client's values: a 400 naming the model and quoting it.
    (
        "POST",
        "/v1/models/wine:predict",
        {"instances": [[None, *ROW[1:]]]},
        400,
        "model 'wine' version 1 rejected the input: sklearn says: Input X contains NaN.",
    ),
    (
        "POST",
        "/v1/models/wine_frame:predict",
        {"instances": [{"alcohol": 1, "malic_acid": 1, "region": "atlantis"}]},
        400,
        "model 'wine_frame' version 1 rejected the input: sklearn says: Found unknown categories ['atlantis']",
    ),
    # A model failing is a 500 that names the model and a request id, not the exception's internals.
    (
        "POST",
        "/v2/models/exploding/infer",
        v2([1.0, 2.0], shape=[1, 2]),
        500,
        "model 'exploding' version 1 failed while predicting (request id ",
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
    if status == 500:
        assert "boom" not in r.text and "RuntimeError" not in r.text  # the log has those, not the client
        assert f"(request id {r.headers['x-request-id']}; the server log has the details)" in r.json()["error"]
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


APP = "https://app.example"


def _preflight(method: str = "POST", headers: str | None = None, origin: str = APP) -> dict[str, str]:
    out = {"origin": origin, "access-control-request-method": method}
    if headers is not None:
        out["access-control-request-headers"] = headers
    return out


async def test_cors_preflight_allowed(repository: Repository) -> None:
    async with make_client(repository, cors_origins=(APP,)) as c:
        pre = await c.options("/v2/models/wine/infer", headers=_preflight("POST", "Content-Type, authorization"))
        assert pre.status_code == 204 and pre.content == b""
        assert pre.headers["access-control-allow-origin"] == APP
        assert pre.headers["vary"] == "Origin"
        assert pre.headers["access-control-allow-methods"] == "GET, HEAD, POST"
        # The allowed list itself, never an echo of what was asked.
        allowed = pre.headers["access-control-allow-headers"].split(", ")
        assert {"content-type", "authorization", "x-request-id", "inference-header-content-length"} <= set(allowed)
        assert pre.headers["access-control-max-age"] == "600"
        for method in ("GET", "HEAD", "post"):
            assert (await c.options("/v2/models/wine", headers=_preflight(method))).status_code == 204


async def test_cors_preflight_refuses_method_header_and_origin(repository: Repository) -> None:
    async with make_client(repository, cors_origins=(APP,)) as c:
        r = await c.options("/v2/models/wine/infer", headers=_preflight("DELETE"))
        assert r.status_code == 403
        assert r.json()["error"].startswith(
            "CORS preflight refused: method 'DELETE' is not allowed (allowed: GET, HEAD, POST); allowed headers: accept"
        )
        r = await c.options("/v2/models/wine/infer", headers=_preflight("POST", "content-type, x-evil, X-Other"))
        assert r.status_code == 403
        assert r.json()["error"].startswith("CORS preflight refused: headers x-evil, x-other not allowed;")
        assert "access-control-allow-methods" not in r.headers and "access-control-allow-headers" not in r.headers
        r = await c.options("/v2/models/wine/infer", headers=_preflight("PUT", "x-evil"))
        assert r.json()["error"].startswith(
            "CORS preflight refused: method 'PUT' is not allowed (allowed: GET, HEAD, POST); header x-evil not allowed"
        )
        r = await c.options("/v2/models/wine/infer", headers=_preflight(origin="https://evil.example"))
        assert r.status_code == 403
        assert r.json()["error"] == "origin 'https://evil.example' is not allowed; allowed origins: https://app.example"
        assert "access-control-allow-origin" not in r.headers


async def test_cors_sticky_header_is_allowed(tmp_path: Path) -> None:
    import joblib
    from sklearn.datasets import load_diabetes
    from sklearn.linear_model import LinearRegression

    X, y = load_diabetes(return_X_y=True)
    for version in (1, 2):
        (tmp_path / "m" / str(version)).mkdir(parents=True)
        joblib.dump(LinearRegression().fit(X, y), tmp_path / "m" / str(version) / "model.joblib")
    (tmp_path / "m" / "modelport.toml").write_text(
        '[traffic]\nweights = {1 = 50, 2 = 50}\nsticky_header = "X-User-Id"\n'
    )
    repo = Repository(str(tmp_path)).load()
    try:
        async with make_client(repo, cors_origins=(APP,)) as c:
            pre = await c.options("/v2/models/m/infer", headers=_preflight("POST", "x-user-id, content-type"))
            assert pre.status_code == 204
            assert "x-user-id" in pre.headers["access-control-allow-headers"].split(", ")
    finally:
        repo.close()


async def test_cors_simple_requests(repository: Repository) -> None:
    async with make_client(repository, cors_origins=(APP,)) as c:
        r = await c.post("/v2/models/wine/infer", json=v2(ROW), headers={"origin": APP})
        assert r.status_code == 200
        assert r.headers["access-control-allow-origin"] == APP and r.headers["vary"] == "Origin"
        assert "x-model-version" in r.headers["access-control-expose-headers"]
        # An error answer to an allowed page is readable too.
        r = await c.get("/v2/models/nope", headers={"origin": APP})
        assert r.status_code == 404 and r.headers["access-control-allow-origin"] == APP
        # Another origin gets the answer (the browser hides it) but no CORS headers.
        r = await c.post("/v2/models/wine/infer", json=v2(ROW), headers={"origin": "https://evil.example"})
        assert r.status_code == 200 and "access-control-allow-origin" not in r.headers
        # OPTIONS without Access-Control-Request-Method is not a preflight.
        r = await c.options("/v2/models/wine/infer", headers={"origin": APP})
        assert r.status_code == 405
    async with make_client(repository, cors_origins=("*",)) as c:
        r = await c.get("/v2/models/wine", headers={"origin": "https://any.example"})
        assert r.headers["access-control-allow-origin"] == "https://any.example"
        pre = await c.options("/v2/models/wine/infer", headers=_preflight("POST", "x-evil", "https://any.example"))
        assert pre.status_code == 403  # any origin, but still only the allowed headers
    async with make_client(repository) as c:  # no origins configured: no CORS headers at all
        r = await c.post("/v2/models/wine/infer", json=v2(ROW), headers={"origin": APP})
        assert "access-control-allow-origin" not in r.headers


async def test_request_id_is_echoed(client: httpx.AsyncClient) -> None:
    r = await client.get("/v2/models/wine", headers={"x-request-id": "abc-123"})
    assert r.headers["x-request-id"] == "abc-123"


async def test_model_failure_is_logged_with_the_request_id_and_counted(
    repository: Repository, caplog: pytest.LogCaptureFixture
) -> None:
    from modelport.observability.metrics import Metrics

    metrics = Metrics()
    async with make_client(repository, metrics=metrics, observers=[metrics]) as c:
        failed = await c.post("/v2/models/exploding/infer", json=v2([1.0, 2.0], shape=[1, 2]))
        refused = await c.post("/v1/models/wine:predict", json={"instances": [[None, *ROW[1:]]]})
        text = (await c.get("/metrics")).text
    assert failed.status_code == 500 and refused.status_code == 400
    rid = failed.headers["x-request-id"]
    # The operator finds the cause under the id the client was given.
    logged = [r for r in caplog.records if r.name == "modelport.server" and rid in r.getMessage()]
    assert len(logged) == 1
    assert logged[0].getMessage() == (
        f"request {rid}: model 'exploding' version 1 failed: RuntimeError: boom: the model's own failure"
    )
    assert logged[0].exc_info is not None and isinstance(logged[0].exc_info[1], RuntimeError)
    # A model failure is a 500 in the metrics; a refused input is the client's 400.
    assert 'modelport_requests_total{model="exploding",protocol="v2",status="500",version="1"} 1.0' in text
    assert 'modelport_requests_total{model="wine",protocol="v1",status="400",version="1"} 1.0' in text


async def test_outputs_a_kernel_returns_as_a_view_are_encoded(client: httpx.AsyncClient) -> None:
    """Found by the fuzzer: a compiled forest's columnar answer was a strided view, which the JSON encoder refused."""
    r = await client.post("/v1/models/wine_forest:predict", json={"inputs": [[True, False] * 6 + [True]] * 2})
    assert r.status_code == 200, r.text
    assert len(r.json()["outputs"]["predict_proba"]) == 2


@pytest.mark.parametrize("name", [["x"], {"a": 1}, 3, None])
async def test_an_output_name_that_is_not_a_string_is_a_400(client: httpx.AsyncClient, name: object) -> None:
    """Found in review: a list as an output name reached a dict key (500, unhashable type)."""
    body = {**v2(ROW, shape=[1, 13]), "outputs": [{"name": name, "parameters": {"binary_data": True}}]}
    r = await client.post("/v2/models/wine/infer", json=body)
    assert r.status_code == 400
    assert r.json() == {"error": "model 'wine': 'outputs' must be a list of objects with a string 'name'"}
