"""The V2 binary tensor data extension, by hand and through tritonclient."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import httpx
import joblib
import numpy as np
import pytest
from sklearn.datasets import load_wine

from tests.serving import run_server
from tests.tolerance import assert_close

ROWS = load_wine(return_X_y=True)[0][:3]


def _binary_request(header: dict[str, object], *chunks: bytes) -> tuple[bytes, dict[str, str]]:
    head = json.dumps(header).encode()
    return head + b"".join(chunks), {
        "inference-header-content-length": str(len(head)),
        "content-type": "application/octet-stream",
    }


async def test_binary_input_and_output(client: httpx.AsyncClient, repo_dir: Path) -> None:
    """Shaped like the extension's example: FP inputs in binary, one output asked for in binary."""
    raw = ROWS.astype("<f4").tobytes()
    body, headers = _binary_request(
        {
            "inputs": [
                {"name": "input", "shape": [3, 13], "datatype": "FP32", "parameters": {"binary_data_size": len(raw)}}
            ],
            "outputs": [{"name": "predict_proba", "parameters": {"binary_data": True}}, {"name": "predict"}],
        },
        raw,
    )
    r = await client.post("/v2/models/wine/infer", content=body, headers=headers)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/octet-stream"
    n = int(r.headers["inference-header-content-length"])
    head = json.loads(r.content[:n])
    proba_entry, predict_entry = head["outputs"]
    assert proba_entry["parameters"] == {"binary_data_size": 3 * 3 * 8} and "data" not in proba_entry
    proba = np.frombuffer(r.content[n:], dtype="<f8").reshape(3, 3)
    est = joblib.load(repo_dir / "wine" / "model.joblib")
    assert_close(proba, est.predict_proba(ROWS.astype(np.float32)), rtol=1e-6)
    assert predict_entry["data"] == est.predict(ROWS.astype(np.float32)).tolist()


async def test_binary_output_for_all_and_bytes_input(client: httpx.AsyncClient) -> None:
    regions = [b"north", b"east"]
    raw_text = b"".join(struct.pack("<I", len(s)) + s for s in regions)
    nums = np.array([[13.2, 1.8], [12.0, 3.0]])
    alcohol, malic = nums[:, 0].astype("<f8").tobytes(), nums[:, 1].astype("<f8").tobytes()
    body, headers = _binary_request(
        {
            "parameters": {"binary_data_output": True},
            "inputs": [
                {"name": "alcohol", "shape": [2], "datatype": "FP64", "parameters": {"binary_data_size": 16}},
                {"name": "malic_acid", "shape": [2], "datatype": "FP64", "parameters": {"binary_data_size": 16}},
                {
                    "name": "region",
                    "shape": [2],
                    "datatype": "BYTES",
                    "parameters": {"binary_data_size": len(raw_text)},
                },
            ],
        },
        alcohol,
        malic,
        raw_text,
    )
    r = await client.post("/v2/models/wine_frame/infer", content=body, headers=headers)
    assert r.status_code == 200, r.text
    n = int(r.headers["inference-header-content-length"])
    head = json.loads(r.content[:n])
    assert all("data" not in o for o in head["outputs"])
    assert sum(o["parameters"]["binary_data_size"] for o in head["outputs"]) == len(r.content) - n


@pytest.mark.parametrize(
    ("header_len", "size", "message"),
    [
        ("abc", 8, "Inference-Header-Content-Length 'abc' is not an integer"),
        ("99999", 8, "Inference-Header-Content-Length is 99999 but the body has only"),
        (None, 999, "model 'wine': input 'input' declares binary_data_size 999, but only 312 binary bytes remain"),
    ],
)
async def test_binary_errors(client: httpx.AsyncClient, header_len: str | None, size: int, message: str) -> None:
    raw = ROWS.astype("<f8").tobytes()
    body, headers = _binary_request(
        {"inputs": [{"name": "input", "shape": [4, 13], "datatype": "FP64", "parameters": {"binary_data_size": size}}]},
        raw[: 4 * 13 * 8 if size == 8 else None],
    )
    if header_len is not None:
        headers["inference-header-content-length"] = header_len
    r = await client.post("/v2/models/wine/infer", content=body, headers=headers)
    assert r.status_code == 400
    assert r.json()["error"].startswith(message), r.json()


async def test_binary_size_without_header(client: httpx.AsyncClient) -> None:
    r = await client.post(
        "/v2/models/wine/infer",
        json={
            "inputs": [{"name": "input", "shape": [1, 13], "datatype": "FP64", "parameters": {"binary_data_size": 104}}]
        },
    )
    assert r.status_code == 400
    assert r.json()["error"] == (
        "model 'wine': input 'input' has binary_data_size but the request has no Inference-Header-Content-Length header"
    )


@pytest.mark.slow
def test_tritonclient_binary(repo_dir: Path) -> None:
    httpclient = pytest.importorskip("tritonclient.http")
    est = joblib.load(repo_dir / "wine" / "model.joblib")
    with run_server(repo_dir / "wine") as server:
        client = httpclient.InferenceServerClient(url=f"127.0.0.1:{server.port}")
        inp = httpclient.InferInput("input", list(ROWS.shape), "FP64")
        inp.set_data_from_numpy(ROWS, binary_data=True)
        outputs = [httpclient.InferRequestedOutput(n, binary_data=True) for n in ("predict", "predict_proba")]
        result = client.infer("wine", [inp], outputs=outputs)
        assert_close(result.as_numpy("predict"), est.predict(ROWS))
        assert_close(result.as_numpy("predict_proba"), est.predict_proba(ROWS))
        client.close()
