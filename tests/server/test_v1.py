"""KServe V1 / TensorFlow Serving REST over the in-process ASGI app."""

from __future__ import annotations

from pathlib import Path

import httpx
import joblib
import numpy as np
from sklearn.datasets import load_wine

from tests.tolerance import assert_close


async def test_list_and_status(client: httpx.AsyncClient) -> None:
    models = (await client.get("/v1/models")).json()["models"]
    assert {"wine", "diabetes", "wine_frame", "broken"} <= set(models)
    status = (await client.get("/v1/models/diabetes")).json()
    assert status["name"] == "diabetes" and status["ready"] is True
    assert [s["version"] for s in status["model_version_status"]] == ["2", "1"]
    assert status["model_version_status"][0]["state"] == "AVAILABLE"
    one = (await client.get("/v1/models/diabetes/versions/1")).json()
    assert [s["version"] for s in one["model_version_status"]] == ["1"]
    broken = (await client.get("/v1/models/broken")).json()
    assert broken["ready"] is False and broken["model_version_status"][0]["state"] == "END"
    assert "not a readable joblib/pickle file" in broken["model_version_status"][0]["status"]["error_message"]


async def test_tf_serving_metadata(client: httpx.AsyncClient) -> None:
    meta = (await client.get("/v1/models/wine/metadata")).json()
    sig = meta["metadata"]["signature_def"]["signature_def"]["serving_default"]
    assert sig["inputs"]["input"]["dtype"] == "DT_DOUBLE"
    assert [d["size"] for d in sig["inputs"]["input"]["tensor_shape"]["dim"]] == ["-1", "13"]
    assert sig["method_name"] == "tensorflow/serving/predict"
    assert meta["model_spec"] == {"name": "wine", "signature_name": "", "version": "1"}


async def test_row_format_single_output(client: httpx.AsyncClient, repo_dir: Path) -> None:
    X = load_wine(return_X_y=True)[0][:3]
    est = joblib.load(repo_dir / "diabetes" / "2" / "model.joblib")
    x = np.full((3, 10), 0.02)
    r = await client.post("/v1/models/diabetes:predict", json={"instances": x.tolist()})
    assert r.status_code == 200
    assert_close(r.json()["predictions"], est.predict(x))
    # several outputs: a list of objects keyed by output name (TF Serving row format)
    r = await client.post(
        "/v1/models/wine:predict", json={"signature_name": "serving_default", "instances": X.tolist()}
    )
    preds = r.json()["predictions"]
    assert len(preds) == 3 and set(preds[0]) == {"predict", "predict_proba"} and len(preds[0]["predict_proba"]) == 3


async def test_named_instances_and_columnar(client: httpx.AsyncClient) -> None:
    rows = [
        {"alcohol": 13.2, "malic_acid": 1.8, "region": "north"},
        {"alcohol": 12.0, "malic_acid": 3.0, "region": "east"},
    ]
    r = await client.post("/v1/models/wine_frame:predict", json={"instances": rows})
    assert r.status_code == 200, r.text
    by_rows = r.json()["predictions"]
    cols = {k: [row[k] for row in rows] for k in rows[0]}
    r = await client.post("/v1/models/wine_frame:predict", json={"inputs": cols})
    outputs = r.json()["outputs"]
    assert outputs["predict"] == [p["predict"] for p in by_rows]
    # positional lists for a several-input model, in signature order
    r = await client.post("/v1/models/wine_frame:predict", json={"instances": [[13.2, 1.8, "north"]]})
    assert r.json()["predictions"][0]["predict"] == by_rows[0]["predict"]


async def test_columnar_single_input_and_versions(client: httpx.AsyncClient) -> None:
    x = np.full((2, 10), 0.02).tolist()
    r1 = await client.post("/v1/models/diabetes/versions/1:predict", json={"inputs": x})
    r2 = await client.post("/v1/models/diabetes/versions/2:predict", json={"inputs": x})
    assert r1.headers["x-model-version"] == "1" and r2.headers["x-model-version"] == "2"
    assert len(r1.json()["outputs"]) == 2 and r1.json()["outputs"] != r2.json()["outputs"]


async def test_b64_text_values(client: httpx.AsyncClient) -> None:
    import base64

    region = {"b64": base64.b64encode(b"north").decode()}
    r = await client.post(
        "/v1/models/wine_frame:predict", json={"instances": [{"alcohol": 13.2, "malic_acid": 1.8, "region": region}]}
    )
    assert r.status_code == 200, r.text


async def test_signature_name_on_a_model_with_one_signature(client: httpx.AsyncClient) -> None:
    """Requests written for TF Serving name serving_default; any flavor answers to it, and to nothing else."""
    x = np.full((2, 10), 0.02).tolist()
    plain = await client.post("/v1/models/diabetes:predict", json={"instances": x})
    named = await client.post("/v1/models/diabetes:predict", json={"signature_name": "serving_default", "instances": x})
    assert named.status_code == 200 and named.json() == plain.json()
    r = await client.post("/v1/models/diabetes:predict", json={"signature_name": "predict", "instances": x})
    assert r.status_code == 400
    assert r.json() == {"error": "model 'diabetes' has no signature 'predict'; its signatures are: serving_default"}
    body = {
        "parameters": {"signature_name": "predict"},
        "inputs": [{"name": "input", "datatype": "FP64", "shape": [2, 10], "data": sum(x, [])}],
    }
    r = await client.post("/v2/models/diabetes/infer", json=body)
    assert r.status_code == 400 and "has no signature 'predict'" in r.json()["error"]
