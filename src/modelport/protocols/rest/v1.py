"""KServe V1 = TensorFlow Serving REST API.

Spec: tensorflow/serving g3doc/api_rest.md and KServe's V1 protocol page. A request
is either row format ``{"instances": [...]}`` (every input shares dim 0) or columnar
``{"inputs": ...}``; answers are ``{"predictions": ...}`` / ``{"outputs": ...}``, and
with a single output its name is dropped.
"""

from __future__ import annotations

import base64
from functools import partial
from typing import Any

import numpy as np

from modelport.core.errors import BadRequest, InvalidInput
from modelport.core.nulls import json_numbers
from modelport.core.signature import Batch
from modelport.protocols.rest.http import Request, Response, dumps, json_response
from modelport.protocols.rest.v2 import parse_json, signature_name
from modelport.protocols.sparse import check_sparse, sparse_rows, vector_outputs
from modelport.serving.dataplane import DataPlane
from modelport.serving.inference import Decodable, InferCall, InferRequest, InferResponse, Trace

__all__ = [
    "decode_predict",
    "decode_request",
    "encode_response",
    "encode_predictions",
    "list_models",
    "metadata",
    "predict",
    "status",
]

# TensorFlow DataType names for the metadata a TF Serving client reads.
TF_DTYPES = {
    "BOOL": "DT_BOOL",
    "UINT8": "DT_UINT8",
    "UINT16": "DT_UINT16",
    "UINT32": "DT_UINT32",
    "UINT64": "DT_UINT64",
    "INT8": "DT_INT8",
    "INT16": "DT_INT16",
    "INT32": "DT_INT32",
    "INT64": "DT_INT64",
    "FP16": "DT_HALF",
    "FP32": "DT_FLOAT",
    "FP64": "DT_DOUBLE",
    "BYTES": "DT_STRING",
}


def list_models(plane: DataPlane) -> Response:
    return json_response({"models": plane.repository.names()})


def status(plane: DataPlane, name: str, version: str | None) -> Response:
    entry = plane.entry(name)
    if version is not None:
        model = plane.describe(name, version)
        chosen = [entry.versions[model.version]]
    else:
        chosen = sorted(entry.versions.values(), key=lambda v: -v.version)
    body = {
        "name": name,
        "ready": entry.latest() is not None if version is None else True,
        "model_version_status": [
            {
                "version": str(v.version),
                "state": {"FAILED": "END"}.get(v.state, v.state),
                "status": {
                    "error_code": "OK" if v.state != "FAILED" else "UNKNOWN",
                    "error_message": v.reason,
                },
            }
            for v in chosen
        ],
    }
    return json_response(body)


def _tf_tensor(spec: Any) -> dict[str, Any]:
    return {
        "dtype": TF_DTYPES[spec.datatype],
        "tensor_shape": {"dim": [{"size": str(d), "name": ""} for d in spec.shape], "unknown_rank": False},
        "name": spec.name,
    }


def _signature_def(sig: Any) -> dict[str, Any]:
    return {
        "inputs": {s.name: _tf_tensor(s) for s in sig.inputs},
        "outputs": {s.name: _tf_tensor(s) for s in sig.outputs},
        "method_name": "tensorflow/serving/predict",
    }


def metadata(plane: DataPlane, name: str, version: str | None) -> Response:
    model = plane.describe(name, version)
    sig = model.signature
    # A TensorFlow model lists every signature it serves; the one served by default takes serving_default's place.
    signatures = getattr(model.predictor, "signatures", None) or {}
    defs = {n: _signature_def(p.signature) for n, p in signatures.items() if p is not model.predictor}
    defs[getattr(model.predictor, "signature_name", "serving_default")] = _signature_def(sig)
    body = {
        "model_spec": {"name": model.name, "signature_name": "", "version": str(model.version)},
        "metadata": {"signature_def": {"signature_def": dict(sorted(defs.items()))}},
        # The same contract in V2 terms, for clients that prefer it.
        "inputs": [s.to_dict() for s in sig.inputs],
        "outputs": [s.to_dict() for s in sig.outputs],
        "flavor": model.flavor,
    }
    return json_response(body)


def _rows_to_batch(model: Decodable, rows: list[Any]) -> Batch:
    plan = model.plan
    names = plan.names
    if not rows:
        raise InvalidInput(f"model '{model.name}': 'instances' is empty (no rows)")
    first = rows[0]
    if isinstance(first, dict) and not (len(names) == 1 and "b64" in first and len(first) == 1):
        columns: dict[str, list[Any]] = {n: [] for n in first}
        for i, row in enumerate(rows):
            if not isinstance(row, dict) or row.keys() != columns.keys():
                raise InvalidInput(
                    f"model '{model.name}': instance {i} does not have the same keys as instance 0 "
                    f"({', '.join(columns)}); every instance must name the same inputs"
                )
            for key, value in row.items():
                columns[key].append(value)
        return plan.check({k: plan.coerce(k, v) for k, v in columns.items()})
    if len(names) == 1:
        return plan.check({names[0]: plan.coerce(names[0], rows)})
    # Several 1-D inputs sent as plain lists: match them by position, in signature order.
    width = len(names)
    if all(isinstance(r, list) and len(r) == width for r in rows):
        return plan.check({n: plan.coerce(n, [r[i] for r in rows]) for i, n in enumerate(names)})
    raise InvalidInput(
        f"model '{model.name}' has {width} inputs ({', '.join(names)}); send each instance as an object "
        f"keyed by input name, or as a list of {width} values in that order"
    )


def decode_predict(model: Decodable, body: Any) -> tuple[Batch, bool]:
    """A V1 body to a checked Batch; the flag says whether the request was row format."""
    if not isinstance(body, dict):
        raise BadRequest(f"model '{model.name}': the V1 body must be a JSON object with 'instances' or 'inputs'")
    has_rows, has_cols = "instances" in body, "inputs" in body
    if has_rows == has_cols:
        raise BadRequest(
            f"model '{model.name}': the V1 body needs exactly one of 'instances' (row format) or 'inputs' (columnar)"
        )
    if has_rows:
        rows = body["instances"]
        if not isinstance(rows, list):
            raise BadRequest(f"model '{model.name}': 'instances' must be a list")
        return _rows_to_batch(model, rows), True
    value = body["inputs"]
    plan = model.plan
    if isinstance(value, dict) and not (len(plan.names) == 1 and set(value) == {"b64"}):
        return plan.check({k: plan.coerce(k, v) for k, v in value.items()}), False
    if len(plan.names) != 1:
        raise InvalidInput(
            f"model '{model.name}' has {len(plan.names)} inputs ({', '.join(plan.names)}); "
            "columnar 'inputs' must be an object keyed by input name"
        )
    return plan.check({plan.names[0]: plan.coerce(plan.names[0], value)}), False


def _text(value: Any) -> Any:
    if isinstance(value, list):
        return [_text(v) for v in value]
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


def _b64(value: Any) -> Any:
    if isinstance(value, list):
        return [_b64(v) for v in value]
    raw = value.encode() if isinstance(value, str) else bytes(value)
    return {"b64": base64.b64encode(raw).decode("ascii")}


def _plain(arr: np.ndarray, name: str = "", sparse: frozenset[str] = frozenset()) -> Any:
    """JSON-ready values; text outputs whose name ends in ``_bytes`` go out as ``{"b64": ...}`` (TF Serving's rule).

    Numbers that are not finite go out as ``null`` (Spark's null), ``"NaN"``, ``"Infinity"``, ``"-Infinity"``;
    a vector output asked for in sparse form as one ``{"size", "indices", "values"}`` object per row.
    """
    if arr.dtype.kind in "OUS":
        return _b64(arr.tolist()) if name.endswith("_bytes") else _text(arr.tolist())
    if name in sparse:
        return [row if row is None else {**row, "values": json_numbers(row["values"])} for row in sparse_rows(arr)]
    return json_numbers(arr)


def _listed(value: Any) -> list[Any]:
    return value.tolist() if isinstance(value, np.ndarray) else value


def _sparse_wanted(model: Decodable, body: dict[str, Any]) -> frozenset[str]:
    """``sparse_outputs``: the vector outputs to answer in sparse form (a list of names, or true for all)."""
    value = body.get("sparse_outputs")
    if value is None or value is False:
        return frozenset()
    signature = model.plan.signature
    if value is True:
        return frozenset(vector_outputs(signature))
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise BadRequest(
            f"model '{model.name}': 'sparse_outputs' must be a list of output names or true (every vector output), "
            f"got {value!r}"
        )
    unknown = [v for v in value if v not in signature.output_names]
    if unknown:
        raise InvalidInput(
            f"model '{model.name}': 'sparse_outputs' names unknown output{'s' if len(unknown) > 1 else ''} "
            f"{', '.join(repr(u) for u in unknown)}; the model's outputs are: {', '.join(signature.output_names)}"
        )
    return check_sparse(model.name, signature, value)


def encode_predictions(result: Batch, row_format: bool, sparse: frozenset[str] = frozenset()) -> dict[str, Any]:
    if not row_format:
        if len(result) == 1:
            name, value = next(iter(result.items()))
            return {"outputs": _plain(value, name, sparse)}
        return {"outputs": {k: _plain(v, k, sparse) for k, v in result.items()}}
    if len(result) == 1:
        name, value = next(iter(result.items()))
        return {"predictions": _plain(value, name, sparse)}
    names = list(result)
    columns = [_listed(_plain(v, k, sparse)) for k, v in result.items()]
    return {"predictions": [dict(zip(names, row, strict=True)) for row in zip(*columns, strict=True)]}


def decode_request(name: str, version: str | None, body: bytes, model: Decodable) -> InferRequest:
    parsed = parse_json(body)
    batch, row_format = decode_predict(model, parsed)
    return InferRequest(name, version, batch, codec={"row_format": row_format, "sparse": _sparse_wanted(model, parsed)})


def encode_response(request: InferRequest, answer: InferResponse) -> Response:
    row_format = bool(request.codec.get("row_format", True))
    sparse: frozenset[str] = request.codec.get("sparse", frozenset())  # type: ignore[assignment]
    return Response(
        200,
        dumps(encode_predictions(answer.outputs, row_format, sparse)),
        extra_headers=[answer.model.version_header],
    )


async def predict(plane: DataPlane, request: Request, name: str, version: str | None, trace: Trace) -> Response:
    decode = partial(decode_request, name, version, request.body)
    call = InferCall("v1", name, version, request.headers, decode, encode_response, len(request.body))
    call.signature_name = signature_name(request.body, None, name, v1=True)
    return await plane.infer(call, trace)
