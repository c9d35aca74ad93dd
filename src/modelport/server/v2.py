"""Open Inference Protocol V2 (KServe V2 / Triton / MLServer) over REST.

Spec: kserve/kserve docs/predict-api/v2/required_api.md. Requests name each input's
datatype and shape; data may be flat or nested, row-major.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import orjson

from modelport.dataplane import DataPlane
from modelport.errors import BadRequest
from modelport.model import Model
from modelport.server.binary import HEADER, encode_tensor, split_body, tensor_from_bytes
from modelport.server.http import Request, Response, dumps, json_response
from modelport.signature import Batch

__all__ = ["decode_infer", "encode_outputs", "infer", "model_metadata", "model_ready"]

PLATFORMS = {"onnx": "onnx_onnxv1"}


def model_metadata(plane: DataPlane, name: str, version: str | None) -> Response:
    model = plane.model(name, version)
    entry = plane.repository.entry(name)
    body = {
        "name": model.name,
        "versions": [str(v) for v in sorted(entry.versions)],
        "platform": PLATFORMS.get(model.flavor, f"modelport_{model.flavor}"),
        **model.signature.to_dict(),
    }
    chosen = [entry.versions[model.version]] if version is not None else list(entry.versions.values())
    if version is not None:
        body["versions"] = [str(model.version)]
    # Not in the spec's required fields: each version's lifecycle state, and the traffic split.
    body["version_states"] = [
        {"version": str(v.version), "state": v.state, "reason": v.reason}
        for v in sorted(chosen, key=lambda v: v.version)
    ]
    if version is None:
        body["traffic"] = {str(n): share for n, share in entry.route.shares().items()}
        if entry.route.shadow is not None:
            body["shadow_version"] = str(entry.route.shadow[0])
            stats = plane.shadow_stats.get((name, entry.route.shadow[0]))
            if stats is not None:
                body["shadow_stats"] = stats.to_dict()
    if entry.config_error:
        body["config_error"] = entry.config_error
    return json_response(body)


def model_ready(plane: DataPlane, name: str, version: str | None) -> Response:
    """200 when ready, 400 when not (the spec's "4xx means false"), 404 when unknown."""
    entry = plane.repository.entry(name)
    if version is None:
        ok = entry.latest() is not None
    else:
        if not version.isdigit() or int(version) not in entry.versions:
            plane.repository.get(name, version)  # raises UnknownVersion naming what exists
        ok = entry.versions[int(version)].state == "AVAILABLE"
    return Response(200 if ok else 400, b"")


def decode_infer(model: Model, body: Any, binary: memoryview | None = None) -> tuple[Batch, list[str] | None]:
    """A V2 infer body to a checked Batch and the requested output names."""
    if not isinstance(body, dict):
        raise BadRequest(f"model '{model.name}': the V2 infer body must be a JSON object with an 'inputs' list")
    inputs = body.get("inputs")
    if not isinstance(inputs, list):
        raise BadRequest(f"model '{model.name}': the V2 infer body needs 'inputs': a list of tensors")
    plan = model.plan
    batch: Batch = {}
    offset = 0
    for i, tensor in enumerate(inputs):
        if not isinstance(tensor, dict):
            raise BadRequest(f"model '{model.name}': inputs[{i}] must be an object with name, shape, datatype, data")
        params = tensor.get("parameters") or {}
        size = params.get("binary_data_size") if isinstance(params, dict) else None
        required = ("name", "shape", "datatype") if size is not None else ("name", "shape", "datatype", "data")
        missing = [k for k in required if k not in tensor]
        if missing:
            label = tensor.get("name", f"#{i}")
            raise BadRequest(f"model '{model.name}': input '{label}' lacks {', '.join(missing)}")
        name = tensor["name"]
        if name in batch:
            raise BadRequest(f"model '{model.name}': input '{name}' appears twice")
        data = tensor.get("data")
        if size is not None:
            if binary is None:
                raise BadRequest(
                    f"model '{model.name}': input '{name}' has binary_data_size but the request has no "
                    "Inference-Header-Content-Length header"
                )
            if not isinstance(size, int) or size < 0 or offset + size > len(binary):
                raise BadRequest(
                    f"model '{model.name}': input '{name}' declares binary_data_size {size!r}, but only "
                    f"{len(binary) - offset} binary bytes remain"
                )
            data = tensor_from_bytes(binary[offset : offset + size], name, str(tensor["datatype"]), tensor["shape"])
            offset += size
        batch[name] = plan.coerce_shaped(name, data, tensor["datatype"], tensor["shape"])
    plan.check(batch)
    outputs = None
    requested = body.get("outputs")
    if requested is not None:
        if not isinstance(requested, list) or not all(isinstance(o, dict) and "name" in o for o in requested):
            raise BadRequest(f"model '{model.name}': 'outputs' must be a list of objects with a 'name'")
        outputs = [o["name"] for o in requested]
    return batch, outputs


def _tensor_data(arr: np.ndarray) -> Any:
    if arr.dtype.kind in "OUS":
        return [v.decode("utf-8", "replace") if isinstance(v, bytes) else v for v in arr.reshape(-1).tolist()]
    if arr.dtype == np.float16:
        arr = arr.astype(np.float32)
    return np.ascontiguousarray(arr).reshape(-1)


def _binary_wanted(body: dict[str, Any]) -> tuple[bool, dict[str, bool]]:
    """The request's ``binary_data_output`` default and each output's own ``binary_data``."""
    params = body.get("parameters") or {}
    default = bool(params.get("binary_data_output", False)) if isinstance(params, dict) else False
    per: dict[str, bool] = {}
    for o in body.get("outputs") or ():
        p = o.get("parameters") or {}
        if isinstance(p, dict) and "binary_data" in p:
            per[o["name"]] = bool(p["binary_data"])
    return default, per


def encode_outputs(
    model: Model, result: Batch, binary: tuple[bool, dict[str, bool]] = (False, {})
) -> tuple[list[dict[str, Any]], list[bytes]]:
    datatypes = model.output_datatypes
    default, per = binary
    out = []
    raw: list[bytes] = []
    for name, arr in result.items():
        datatype = datatypes.get(name, "FP64")
        entry: dict[str, Any] = {"name": name, "datatype": datatype, "shape": list(arr.shape)}
        if per.get(name, default):
            chunk = encode_tensor(arr, datatype)
            entry["parameters"] = {"binary_data_size": len(chunk)}
            raw.append(chunk)
        else:
            entry["data"] = _tensor_data(arr)
        out.append(entry)
    return out, raw


async def infer(plane: DataPlane, request: Request, name: str, version: str | None) -> Response:
    request.protocol = "v2"
    model = request.model = plane.model(name, version, request.headers)
    header_length = request.header(HEADER)
    binary: memoryview | None = None
    if header_length is not None:
        head, binary = split_body(request.body, header_length)
        try:
            body = orjson.loads(head)
        except orjson.JSONDecodeError as exc:
            raise BadRequest(f"the JSON header of the binary request is not valid JSON: {exc}") from None
    else:
        body = request.json()
    params = body.get("parameters") if isinstance(body, dict) else None
    if isinstance(params, dict) and "signature_name" in params:
        model = model.for_signature(params["signature_name"])  # request.model keeps the lease
    batch, outputs = decode_infer(model, body, binary)
    request.inputs = batch
    result = request.outputs = await plane.infer(model, batch, outputs)
    if model is request.model:  # a shadow version is compared on the default signature only
        plane.shadow(model, batch, result)
    entries, raw = encode_outputs(model, result, _binary_wanted(body))
    response: dict[str, Any] = {"model_name": model.name, "model_version": model.version_text, "outputs": entries}
    if "id" in body:
        response["id"] = body["id"]
    version_header = model.version_header
    if not raw:
        return Response(200, dumps(response), extra_headers=[version_header])
    head = dumps(response)
    return Response(
        200,
        b"".join([head, *raw]),
        headers=((b"content-type", b"application/octet-stream"),),
        extra_headers=[version_header, (b"inference-header-content-length", str(len(head)).encode())],
    )
