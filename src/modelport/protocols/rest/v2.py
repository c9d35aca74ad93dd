"""Open Inference Protocol V2 (KServe V2 / Triton / MLServer) over REST.

Spec: kserve/kserve docs/predict-api/v2/required_api.md. Requests name each input's
datatype and shape; data may be flat or nested, row-major.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import numpy as np
import orjson

from modelport.core.errors import BadRequest, InvalidInput
from modelport.core.model import Model
from modelport.core.nulls import all_finite, json_numbers, null_positions
from modelport.core.signature import Batch
from modelport.protocols.rest.binary import HEADER, encode_tensor, rectangular, split_body, tensor_from_bytes
from modelport.protocols.rest.http import Request, Response, dumps, json_response
from modelport.protocols.sparse import INDICES_SUFFIX, check_sparse, sparse_flag, sparse_tensors
from modelport.serving.dataplane import PLATFORMS, DataPlane
from modelport.serving.inference import NO_PARAMETERS, Decodable, InferCall, InferRequest, InferResponse, Trace

__all__ = [
    "PLATFORMS",
    "decode_infer",
    "decode_request",
    "encode_response",
    "parse_json",
    "encode_outputs",
    "infer",
    "model_metadata",
    "model_ready",
]


def model_metadata(plane: DataPlane, name: str, version: str | None) -> Response:
    meta = plane.model_metadata(name, version)
    body: dict[str, Any] = {
        "name": meta.name,
        "versions": meta.versions,
        "platform": meta.platform,
        "inputs": [s.to_dict() for s in meta.inputs],
        "outputs": [s.to_dict() for s in meta.outputs],
        # Not in the spec's required fields: each version's lifecycle state, and the traffic split.
        "version_states": meta.version_states,
    }
    if meta.traffic is not None:
        body["traffic"] = meta.traffic
    if meta.shadow_version is not None:
        body["shadow_version"] = meta.shadow_version
    if meta.shadow_stats is not None:
        body["shadow_stats"] = meta.shadow_stats
    if meta.config_error:
        body["config_error"] = meta.config_error
    return json_response(body)


def model_ready(plane: DataPlane, name: str, version: str | None) -> Response:
    """200 when ready, 400 when not (the spec's "4xx means false"), 404 when unknown."""
    return Response(200 if plane.model_ready(name, version) else 400, b"")


def decode_infer(model: Decodable, body: Any, binary: memoryview | None = None) -> tuple[Batch, list[str] | None]:
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
        if isinstance(name, str) and name in batch:  # a name of another type fails in coerce_shaped
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
        if not isinstance(requested, list) or not all(
            isinstance(o, dict) and isinstance(o.get("name"), str) for o in requested
        ):
            raise BadRequest(f"model '{model.name}': 'outputs' must be a list of objects with a string 'name'")
        outputs = [o["name"] for o in requested]
    return batch, outputs


def _tensor_data(arr: np.ndarray, finite: bool = False) -> Any:
    """Flat JSON data; ``finite`` says the floats are known finite (nothing to write as null or "NaN")."""
    if arr.dtype.kind in "OUS":
        return [v.decode("utf-8", "replace") if isinstance(v, bytes) else v for v in arr.reshape(-1).tolist()]
    if arr.dtype == np.float16:
        arr = arr.astype(np.float32)
    flat = np.ascontiguousarray(arr).reshape(-1)
    return flat if finite else json_numbers(flat)  # null, "NaN", "Infinity" where not finite


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


def _sparse_wanted(model: Decodable, body: dict[str, Any]) -> frozenset[str]:
    """The outputs whose ``parameters.sparse`` is true (protocols/sparse.py); 400 for one that is not a vector."""
    names = []
    for o in body.get("outputs") or ():
        p = o.get("parameters")
        if isinstance(p, dict) and "sparse" in p and sparse_flag(model.name, o["name"], p["sparse"]):
            names.append(o["name"])
    return check_sparse(model.name, model.plan.signature, names)


def _sparse_entries(name: str, datatype: str, arr: np.ndarray) -> list[tuple[str, str, np.ndarray, dict[str, Any]]]:
    """A vector output in sparse form: the values and the ``<name>.indices`` companion (protocols/sparse.py)."""
    values, indices, lengths, size = sparse_tensors(arr)
    return [
        (name, datatype, values, {"sparse": True, "size": size, "lengths": lengths}),
        (name + INDICES_SUFFIX, "INT64", indices, {"lengths": lengths}),
    ]


def encode_outputs(
    model: Model,
    result: Batch,
    binary: tuple[bool, dict[str, bool]] = (False, {}),
    sparse: frozenset[str] = frozenset(),
) -> tuple[list[dict[str, Any]], list[bytes]]:
    datatypes = model.output_datatypes
    default, per = binary
    out = []
    raw: list[bytes] = []
    for name, arr in result.items():
        datatype = datatypes.get(name, "FP64")
        if name in sparse:
            for entry_name, entry_type, data, params in _sparse_entries(name, datatype, arr):
                out.append(_entry(entry_name, entry_type, data, params, per.get(name, default), raw))
            continue
        arr, lengths = rectangular(arr)
        entry: dict[str, Any] = {"name": name, "datatype": datatype, "shape": list(arr.shape)}
        parameters: dict[str, Any] = {} if lengths is None else {"lengths": lengths}
        finite = arr.dtype.kind == "f" and all_finite(arr)  # the common case: no null, NaN or inf to mark
        nulls = None if finite else null_positions(arr)
        if nulls is not None:  # where Spark's nulls are: binary data has none, and JSON readers get the same list
            parameters["nulls"] = nulls
        if per.get(name, default):
            chunk = encode_tensor(arr, datatype)
            parameters["binary_data_size"] = len(chunk)
            raw.append(chunk)
        else:
            entry["data"] = _tensor_data(arr, finite)
        if parameters:
            entry["parameters"] = parameters
        out.append(entry)
    return out, raw


def _entry(
    name: str, datatype: str, arr: np.ndarray, parameters: dict[str, Any], binary: bool, raw: list[bytes]
) -> dict[str, Any]:
    """One output tensor entry (JSON data, or a binary chunk appended to ``raw``)."""
    entry: dict[str, Any] = {"name": name, "datatype": datatype, "shape": list(arr.shape), "parameters": parameters}
    if binary:
        chunk = encode_tensor(arr, datatype)
        parameters["binary_data_size"] = len(chunk)
        raw.append(chunk)
    else:
        entry["data"] = _tensor_data(arr)
    return entry


def parse_json(body: bytes | memoryview, what: str = "the request body") -> Any:
    """The body as JSON, or BadRequest saying why not (the same text on the loop and in the decoding process)."""
    if not body:
        raise BadRequest(f"{what} is empty; expected a JSON object")
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"{what} is not valid JSON: {exc}") from None


def decode_request(
    name: str, version: str | None, body: bytes, header_length: bytes | None, model: Decodable
) -> InferRequest:
    """A V2 REST infer body (JSON, or a JSON header and binary tensors) to an InferRequest."""
    binary: memoryview | None = None
    if header_length is not None:
        head, binary = split_body(body, header_length)
        parsed = parse_json(head, "the JSON header of the binary request")
    else:
        parsed = parse_json(body)
    batch, outputs = decode_infer(model, parsed, binary)
    params = parsed.get("parameters")
    rid = parsed.get("id")
    return InferRequest(
        name,
        version,
        batch,
        outputs,
        params if isinstance(params, dict) else NO_PARAMETERS,
        None if rid is None else str(rid),
        codec={
            "binary": _binary_wanted(parsed),
            "id": rid,
            "has_id": "id" in parsed,
            "sparse": _sparse_wanted(model, parsed),
        },
    )


def encode_response(request: InferRequest, answer: InferResponse) -> Response:
    model = answer.model
    binary = request.codec.get("binary", (False, {}))
    sparse = request.codec.get("sparse", frozenset())
    entries, raw = encode_outputs(model, answer.outputs, binary, sparse)  # type: ignore[arg-type]
    response: dict[str, Any] = {"model_name": model.name, "model_version": model.version_text, "outputs": entries}
    if request.codec.get("has_id"):
        response["id"] = request.codec["id"]  # echoed as sent
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


def signature_name(body: bytes, header_length: bytes | None, model: str, *, v1: bool = False) -> str | None:
    """TF Serving's ``signature_name`` (V1: a body field; V2: a request parameter), if the request names one.

    Read before the version's input plan decodes the body, since it chooses that plan. Only a body
    that contains the key is parsed here, so requests without it pay one substring search.
    """
    if b"signature_name" not in body:
        return None
    head = split_body(body, header_length)[0] if header_length is not None else body
    try:
        parsed = orjson.loads(head)
    except orjson.JSONDecodeError:
        return None  # the decoder reports the broken JSON with its usual message
    if not isinstance(parsed, dict):
        return None
    value = parsed.get("signature_name") if v1 else (parsed.get("parameters") or {}).get("signature_name")
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidInput(f"model '{model}': signature_name must be a string, got {value!r}")
    return value


async def infer(plane: DataPlane, request: Request, name: str, version: str | None, trace: Trace) -> Response:
    header_length = request.header(HEADER)
    decode = partial(decode_request, name, version, request.body, header_length)
    call = InferCall("v2", name, version, request.headers, decode, encode_response, len(request.body))
    call.signature_name = signature_name(request.body, header_length, name)
    return await plane.infer(call, trace)
