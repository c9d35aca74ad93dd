"""Open Inference Protocol V2 over the in-process ASGI app."""

from __future__ import annotations

import httpx
import joblib
import numpy as np
from sklearn.datasets import load_wine

from modelport.serving.repository import Repository
from tests.server.conftest import make_client
from tests.tolerance import assert_close


def _wine_rows(n: int = 2) -> np.ndarray:
    return load_wine(return_X_y=True)[0][:n]


async def test_health_and_server_metadata(client: httpx.AsyncClient, repo_dir: object) -> None:
    assert (await client.get("/v2/health/live")).status_code == 200
    async with make_client(Repository(f"{repo_dir}/wine").load()) as healthy:
        ready = await healthy.get("/v2/health/ready")
    assert ready.status_code == 200 and ready.content == b""
    meta = (await client.get("/v2")).json()
    assert meta["name"] == "modelport" and "version" in meta and isinstance(meta["extensions"], list)


async def test_model_metadata(client: httpx.AsyncClient) -> None:
    r = await client.get("/v2/models/wine")
    assert r.status_code == 200
    body = r.json()
    assert body["name"] == "wine" and body["versions"] == ["1"]
    assert body["inputs"] == [{"name": "input", "datatype": "FP64", "shape": [-1, 13]}]
    assert body["outputs"][1]["name"] == "predict_proba"
    versioned = (await client.get("/v2/models/diabetes/versions/1")).json()
    assert versioned["versions"] == ["1"]
    assert (await client.get("/v2/models/diabetes")).json()["versions"] == ["1", "2"]


async def test_infer_flat_and_nested(client: httpx.AsyncClient, repo_dir: object) -> None:
    rows = _wine_rows(2)
    est = joblib.load(f"{repo_dir}/wine/model.joblib")
    for data in (rows.reshape(-1).tolist(), rows.tolist()):
        body = {"id": "req-1", "inputs": [{"name": "input", "shape": [2, 13], "datatype": "FP64", "data": data}]}
        r = await client.post("/v2/models/wine/infer", json=body)
        assert r.status_code == 200, r.text
        out = r.json()
        assert out["model_name"] == "wine" and out["model_version"] == "1" and out["id"] == "req-1"
        by_name = {o["name"]: o for o in out["outputs"]}
        assert by_name["predict"]["shape"] == [2] and by_name["predict"]["datatype"] == "INT64"
        assert by_name["predict"]["data"] == est.predict(rows).tolist()
        assert_close(np.reshape(by_name["predict_proba"]["data"], (2, 3)), est.predict_proba(rows))
        assert r.headers["x-model-version"] == "1"


async def test_requested_outputs_and_fp32_input(client: httpx.AsyncClient) -> None:
    body = {
        "inputs": [{"name": "input", "shape": [1, 13], "datatype": "FP32", "data": _wine_rows(1)[0].tolist()}],
        "outputs": [{"name": "predict_proba"}],
    }
    r = await client.post("/v2/models/wine/infer", json=body)
    assert r.status_code == 200
    assert [o["name"] for o in r.json()["outputs"]] == ["predict_proba"]


async def test_versioned_infer(client: httpx.AsyncClient) -> None:
    x = [0.01] * 10
    body = {"inputs": [{"name": "input", "shape": [1, 10], "datatype": "FP64", "data": x}]}
    v1 = (await client.post("/v2/models/diabetes/versions/1/infer", json=body)).json()
    v2 = (await client.post("/v2/models/diabetes/versions/2/infer", json=body)).json()
    latest = (await client.post("/v2/models/diabetes/infer", json=body)).json()
    assert v1["model_version"] == "1" and v2["model_version"] == "2" and latest["model_version"] == "2"
    assert v1["outputs"][0]["data"] != v2["outputs"][0]["data"]


async def test_dataframe_model_with_bytes_input(client: httpx.AsyncClient) -> None:
    body = {
        "inputs": [
            {"name": "alcohol", "shape": [2], "datatype": "FP64", "data": [13.2, 12.1]},
            {"name": "malic_acid", "shape": [2], "datatype": "FP64", "data": [1.8, 3.1]},
            {"name": "region", "shape": [2], "datatype": "BYTES", "data": ["north", "east"]},
        ]
    }
    r = await client.post("/v2/models/wine_frame/infer", json=body)
    assert r.status_code == 200, r.text
    assert len(r.json()["outputs"][0]["data"]) == 2


async def test_model_ready_endpoints(client: httpx.AsyncClient) -> None:
    assert (await client.get("/v2/models/wine/ready")).status_code == 200
    assert (await client.get("/v2/models/diabetes/versions/2/ready")).status_code == 200
    assert (await client.get("/v2/models/broken/ready")).status_code == 400
    r = await client.get("/v2/models/diabetes/versions/7/ready")
    assert r.status_code == 404 and r.json() == {"error": "model 'diabetes' has no version 7; versions: 1, 2"}


async def test_broken_model_keeps_others_serving(repository: Repository, client: httpx.AsyncClient) -> None:
    entry = repository.entry("broken")
    assert entry.versions[1].state == "FAILED" and "model.joblib" in entry.versions[1].reason
    r = await client.post("/v2/models/broken/infer", json={"inputs": []})
    assert r.status_code == 503
    assert r.json()["error"].startswith("model 'broken' has no available version (1: FAILED")
    # readiness is false while a model has no available version
    assert (await client.get("/v2/health/ready")).status_code == 503
