"""Sparse form on request for any model's vector outputs (a scikit-learn predict_proba here), V2 and V1."""

from __future__ import annotations

import httpx
import numpy as np
from sklearn.datasets import load_wine

from modelport.serving.repository import Repository
from tests.tolerance import assert_close

ROWS = load_wine(return_X_y=True)[0][:3]


def _dense(values: list[float], indices: list[int], size: int) -> np.ndarray:
    out = np.zeros(size)
    out[indices] = values
    return out


async def test_v2_sparse_round_trip_equals_the_dense_answer(client: httpx.AsyncClient, repository: Repository) -> None:
    want = repository.get("wine").predict({"input": ROWS})["predict_proba"]
    body = {
        "inputs": [{"name": "input", "datatype": "FP64", "shape": list(ROWS.shape), "data": ROWS.tolist()}],
        "outputs": [{"name": "predict_proba", "parameters": {"sparse": True}}],
    }
    answer = (await client.post("/v2/models/wine/infer", json=body)).json()
    values, indices = answer["outputs"]
    assert (values["name"], indices["name"], indices["datatype"]) == ("predict_proba", "predict_proba.indices", "INT64")
    params = values["parameters"]
    assert params["sparse"] is True and params["size"] == 3 and indices["parameters"]["lengths"] == params["lengths"]
    width = values["shape"][1]
    for i, n in enumerate(params["lengths"]):
        row_values = values["data"][i * width : i * width + n]
        row_indices = indices["data"][i * width : i * width + n]
        assert_close(_dense(row_values, row_indices, 3), want[i], what=f"sparse row {i}")


async def test_v1_sparse_outputs_and_the_400s(client: httpx.AsyncClient, repository: Repository) -> None:
    want = repository.get("wine").predict({"input": ROWS})["predict_proba"]
    r = await client.post("/v1/models/wine:predict", json={"instances": ROWS.tolist(), "sparse_outputs": True})
    rows = [p["predict_proba"] for p in r.json()["predictions"]]
    for i, row in enumerate(rows):
        assert row["size"] == 3
        assert_close(_dense(row["values"], row["indices"], 3), want[i], what=f"V1 sparse row {i}")
    bad = await client.post(
        "/v2/models/wine/infer",
        json={
            "inputs": [{"name": "input", "datatype": "FP64", "shape": list(ROWS.shape), "data": ROWS.tolist()}],
            "outputs": [{"name": "predict", "parameters": {"sparse": True}}],
        },
    )
    assert (bad.status_code, bad.json()) == (
        400,
        {
            "error": "model 'wine': output 'predict' is not a vector, so there is no sparse form; "
            "the vector outputs are: predict_proba"
        },
    )
