"""One model, every way a client reaches it: in-process, V1, V2 JSON, V2 binary, gRPC and ``score``.

The framework flavors (custom Python, skops, MLflow pyfunc, PyTorch) are each checked with
:func:`check_every_surface` against the answer the framework gives in-process, so a flavor
that serves is known to serve on all surfaces, not only through ``Model.predict``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

import modelport
from modelport.offline.score import score_files
from tests.conftest import free_port
from tests.serving import run_server
from tests.tolerance import assert_close

__all__ = ["check_every_surface"]


def _jsonable(value: Any) -> Any:
    return value.tolist() if hasattr(value, "tolist") else value


def _v2_tensor(name: str, arr: np.ndarray, datatype: str) -> dict[str, Any]:
    return {"name": name, "shape": list(arr.shape), "datatype": datatype, "data": arr.reshape(-1).tolist()}


def _compare(got: dict[str, Any], want: dict[str, np.ndarray], surface: str) -> None:
    for name, expected in want.items():
        assert name in got, f"{surface}: no output '{name}' in {sorted(got)}"
        text = expected.dtype.kind in "OUS"
        # Numbers as the model's dtype: JSON carries a float32 as its shortest decimal, exact only in float32.
        value = np.asarray(got[name], dtype=object if text else expected.dtype)
        if text:
            value = np.array([v.decode() if isinstance(v, bytes) else v for v in value.reshape(-1)], dtype=object)
            value = value.reshape(expected.shape)
        assert_close(value, expected, what=f"{surface} output '{name}'")


def _score(root: Path, name: str, inputs: dict[str, np.ndarray], want: dict[str, np.ndarray], tmp: Path) -> None:
    """``modelport score`` over a Parquet file: 2-D inputs spread over columns and mapped back."""
    columns: dict[str, Any] = {}
    mapping = []
    for key, arr in inputs.items():
        if arr.ndim == 1:
            columns[key] = arr.tolist() if arr.dtype.kind in "OUS" else arr
        else:
            flat = arr.reshape(arr.shape[0], -1)
            names = tuple(f"{key}__{i}" for i in range(flat.shape[1]))
            for i, col in enumerate(names):
                columns[col] = flat[:, i]
            mapping.append((key, names))
    src = tmp / f"{name}-input.parquet"
    out = tmp / f"{name}-scored.parquet"
    pq.write_table(pa.table(columns), src)
    score_files(str(_newest(root / name)), [str(src)], str(out), keep=[], mapping=tuple(mapping), workers=1)
    table = pq.read_table(out)
    got = {}
    for key, expected in want.items():
        values = table.column(key).to_pylist()
        got[key] = np.array(values, dtype=object if expected.dtype.kind in "OUS" else np.float64).reshape(
            expected.shape
        )
    _compare(got, want, "score")


def check_every_surface(
    root: Path,
    name: str,
    inputs: dict[str, np.ndarray],
    want: dict[str, np.ndarray],
    tmp: Path,
    *,
    datatypes: dict[str, str] | None = None,
) -> None:
    """Ask the model ``root/name`` for ``want``'s outputs on ``inputs`` every way, and compare.

    ``datatypes`` gives the V2 datatype each input is sent as (default: the model's own).
    """
    import tritonclient.grpc as grpcclient
    import tritonclient.http as httpclient

    model = modelport.load_model(_newest(root / name))
    _compare(model.predict(inputs), want, "in-process")
    sent = datatypes or {s.name: s.datatype for s in model.signature.inputs}
    _score(root, name, inputs, want, tmp)

    grpc_port = free_port()
    with run_server(root, "--grpc-port", str(grpc_port), log_dir=tmp) as server:
        rows = len(next(iter(inputs.values())))
        # V1 row format: one object per row, keyed by input name.
        instances = [{k: _jsonable(v[i]) for k, v in inputs.items()} for i in range(rows)]
        r = httpx.post(f"{server.url}/v1/models/{name}:predict", json={"instances": instances}, timeout=30)
        assert r.status_code == 200, r.text
        predictions = r.json()["predictions"]
        if len(model.signature.outputs) == 1:
            got = {model.signature.output_names[0]: predictions}
        else:
            got = {k: [p[k] for p in predictions] for k in want}
        _compare(got, want, "V1 row format")
        # V1 columnar.
        r = httpx.post(
            f"{server.url}/v1/models/{name}:predict", json={"inputs": {k: _jsonable(v) for k, v in inputs.items()}}
        )
        assert r.status_code == 200, r.text
        outputs = r.json()["outputs"]
        got = outputs if isinstance(outputs, dict) else {model.signature.output_names[0]: outputs}
        _compare(got, want, "V1 columnar")
        # V2 JSON.
        body = {"inputs": [_v2_tensor(k, v, sent[k]) for k, v in inputs.items()]}
        r = httpx.post(f"{server.url}/v2/models/{name}/infer", json=body, timeout=30)
        assert r.status_code == 200, r.text
        got = {o["name"]: np.asarray(o["data"], dtype=object).reshape(o["shape"]) for o in r.json()["outputs"]}
        _compare(got, want, "V2 JSON")
        # V2 binary tensors (tritonclient's HTTP client).
        client = httpclient.InferenceServerClient(url=f"127.0.0.1:{server.port}")
        try:
            tensors = []
            for k, v in inputs.items():
                tensor = httpclient.InferInput(k, list(v.shape), sent[k])
                tensor.set_data_from_numpy(_for_triton(v, sent[k]), binary_data=True)
                tensors.append(tensor)
            asked = [httpclient.InferRequestedOutput(k, binary_data=True) for k in want]
            result = client.infer(name, tensors, outputs=asked)
            _compare({k: result.as_numpy(k) for k in want}, want, "V2 binary")
        finally:
            client.close()
        # gRPC (tritonclient's gRPC client).
        gclient = grpcclient.InferenceServerClient(url=f"127.0.0.1:{grpc_port}")
        try:
            tensors = []
            for k, v in inputs.items():
                tensor = grpcclient.InferInput(k, list(v.shape), sent[k])
                tensor.set_data_from_numpy(_for_triton(v, sent[k]))
                tensors.append(tensor)
            result = gclient.infer(name, tensors, outputs=[grpcclient.InferRequestedOutput(k) for k in want])
            _compare({k: result.as_numpy(k) for k in want}, want, "gRPC")
        finally:
            gclient.close()


def _newest(directory: Path) -> Path:
    """The newest version directory of a model, or the model directory when it has none."""
    versions = [p for p in directory.iterdir() if p.is_dir() and p.name.isdigit()] if directory.is_dir() else []
    return max(versions, key=lambda p: int(p.name)) if versions else directory


def _for_triton(arr: np.ndarray, datatype: str) -> np.ndarray:
    if datatype == "BYTES":
        return np.array([str(v).encode() for v in arr.reshape(-1)], dtype=object).reshape(arr.shape)
    from modelport.core.signature import DATATYPES

    return arr.astype(DATATYPES[datatype])
