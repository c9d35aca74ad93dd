"""OpenAPI 3.1 for every route, with each model's request schema derived from its signature.

The request schemas are as precise as JSON Schema allows, so a client generator or a fuzzer
(schemathesis, in the suite) that follows them builds requests the model answers: each input's
name, datatype, element type and range (float32's for a model that computes in float32) and
fixed dimensions. A V2 tensor's ``shape`` must match its ``data``, a relation JSON Schema cannot
state for any row count, so the V2 schema lists the shapes of one to ``V2_ROWS`` rows; more rows
are accepted all the same.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from modelport import __version__
from modelport.core.signature import DATATYPES, Signature, TensorSpec
from modelport.protocols.sparse import vector_outputs
from modelport.serving.repository import Repository

__all__ = ["build_openapi", "tensor_schema"]

_JSON_TYPES = {"BOOL": "boolean", "BYTES": "string", "FP16": "number", "FP32": "number", "FP64": "number"}

V2_ROWS = 3
"""Row counts the V2 request schema spells out (shape and data agree for 1..V2_ROWS rows)."""

# A free dimension other than the row gets this many entries in the generated shapes.
_FREE_DIM = 2


def _element(spec: TensorSpec, compute: str | None = None) -> dict[str, Any]:
    """One value: its JSON type and, for numbers, the range the model takes."""
    kind = _JSON_TYPES.get(spec.datatype, "integer")
    out: dict[str, Any] = {"type": kind}
    narrow = DATATYPES.get(compute or "") if kind == "number" else None
    dtype = spec.dtype
    if narrow is not None and narrow.kind == "f" and narrow.itemsize < dtype.itemsize:
        dtype = narrow
    if kind == "number" and dtype.itemsize < 8:
        top = float(np.finfo(dtype).max)
        out |= {"minimum": -top, "maximum": top}
    elif kind == "integer":
        info = np.iinfo(spec.dtype)
        out |= {"minimum": int(info.min), "maximum": int(info.max)}
    return out


def tensor_schema(spec: TensorSpec, compute: str | None = None) -> dict[str, Any]:
    """JSON Schema for one input's values: nested arrays following its shape."""
    schema = _element(spec, compute)
    for dim in reversed(spec.shape):
        schema = {"type": "array", "items": schema}
        if dim > 0:
            schema |= {"minItems": dim, "maxItems": dim}
        else:
            schema |= {"minItems": 1}
    return schema


def _v2_inputs(specs: tuple[TensorSpec, ...], rows: int, compute: str | None) -> dict[str, Any]:
    """The ``inputs`` list of a V2 request of ``rows`` rows: each input once, in order, shape and data agreeing."""
    tensors = []
    for spec in specs:
        shape = [rows, *(d if d > 0 else _FREE_DIM for d in spec.shape[1:])]
        size = int(np.prod(shape)) if shape else 1
        tensors.append(
            {
                "type": "object",
                "required": ["name", "shape", "datatype", "data"],
                "additionalProperties": False,
                "properties": {
                    "name": {"const": spec.name},
                    "datatype": {"const": spec.datatype},
                    "shape": {"const": shape},
                    # Flat, row-major (nested lists of the same shape are accepted too).
                    "data": {"type": "array", "items": _element(spec, compute), "minItems": size, "maxItems": size},
                },
            }
        )
    return {"type": "array", "prefixItems": tensors, "items": False, "minItems": len(tensors)}


def _v2_output_request(sig: Signature) -> dict[str, Any]:
    """One requested output: its name, and ``parameters.sparse`` for the vector outputs (protocols/sparse.py)."""
    plain: dict[str, Any] = {
        "type": "object",
        "properties": {"name": {"enum": sig.output_names}},
        "required": ["name"],
        "additionalProperties": False,
    }
    vectors = vector_outputs(sig)
    if not vectors:
        return plain
    sparse = {
        "type": "object",
        "properties": {
            "name": {"enum": vectors},
            "parameters": {
                "type": "object",
                "properties": {"sparse": {"type": "boolean", "description": "answer this vector output sparse"}},
                "additionalProperties": False,
            },
        },
        "required": ["name"],
        "additionalProperties": False,
    }
    return {"anyOf": [plain, sparse]}


def _v1_request(specs: tuple[TensorSpec, ...], compute: str | None, vectors: Sequence[str]) -> dict[str, Any]:
    """Row format (``instances``) or columnar (``inputs``), exactly one of them."""
    if len(specs) == 1:
        instance = tensor_schema(TensorSpec(specs[0].name, specs[0].datatype, specs[0].shape[1:]), compute)
        columns: dict[str, Any] = tensor_schema(specs[0], compute)
    else:
        instance = {
            "type": "object",
            "properties": {s.name: tensor_schema(TensorSpec(s.name, s.datatype, s.shape[1:]), compute) for s in specs},
            "required": [s.name for s in specs],
            "additionalProperties": False,
        }
        columns = {
            "type": "object",
            "properties": {s.name: tensor_schema(s, compute) for s in specs},
            "required": [s.name for s in specs],
            "additionalProperties": False,
        }
    signature_name = {"type": "string"}
    extra: dict[str, Any] = {"signature_name": signature_name}
    if vectors:  # vector outputs answered as {"size", "indices", "values"} rows (protocols/sparse.py)
        extra["sparse_outputs"] = {
            "anyOf": [{"type": "boolean"}, {"type": "array", "items": {"enum": vectors}, "uniqueItems": True}]
        }
    return {
        "oneOf": [
            {
                "type": "object",
                "required": ["instances"],
                "additionalProperties": False,
                "properties": {"instances": {"type": "array", "items": instance, "minItems": 1}, **extra},
            },
            {
                "type": "object",
                "required": ["inputs"],
                "additionalProperties": False,
                "properties": {"inputs": columns, **extra},
            },
        ]
    }


def _error() -> dict[str, Any]:
    return {
        "description": "error",
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }


def _json(schema: dict[str, Any], description: str = "OK") -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def build_openapi(repository: Repository) -> dict[str, Any]:
    schemas: dict[str, Any] = {
        "Error": {"type": "object", "properties": {"error": {"type": "string"}}, "required": ["error"]},
        "V2Tensor": {
            "type": "object",
            "required": ["name", "shape", "datatype", "data"],
            "properties": {
                "name": {"type": "string"},
                "shape": {"type": "array", "items": {"type": "integer"}},
                "datatype": {"type": "string"},
                "parameters": {"type": "object"},
                "data": {"type": "array"},
            },
        },
        "V2InferResponse": {
            "type": "object",
            "properties": {
                "model_name": {"type": "string"},
                "model_version": {"type": "string"},
                "id": {"type": "string"},
                "outputs": {"type": "array", "items": {"$ref": "#/components/schemas/V2Tensor"}},
            },
        },
    }
    paths: dict[str, Any] = {
        "/v2/health/live": {
            "get": {"summary": "Liveness", "tags": ["health"], "responses": {"200": {"description": "live"}}}
        },
        "/v2/health/ready": {
            "get": {
                "summary": "Readiness: every model has an available version",
                "tags": ["health"],
                "responses": {"200": {"description": "ready"}, "503": {"description": "not ready"}},
            }
        },
        "/healthz": {
            "get": {"summary": "Liveness (alias)", "tags": ["health"], "responses": {"200": {"description": "live"}}}
        },
        "/readyz": {
            "get": {
                "summary": "Readiness (alias)",
                "tags": ["health"],
                "responses": {"200": {"description": "ready"}, "503": {"description": "not ready"}},
            }
        },
        "/metrics": {
            "get": {
                "summary": "Prometheus metrics (text exposition format)",
                "tags": ["health"],
                "responses": {
                    "200": {"description": "metrics", "content": {"text/plain": {"schema": {"type": "string"}}}},
                    "404": _error(),
                },
            }
        },
        "/openapi.json": {
            "get": {"summary": "This document", "tags": ["docs"], "responses": {"200": _json({"type": "object"})}}
        },
        "/v2": {"get": {"summary": "Server metadata", "tags": ["v2"], "responses": {"200": _json({"type": "object"})}}},
        "/v1/models": {
            "get": {"summary": "List models", "tags": ["v1"], "responses": {"200": _json({"type": "object"})}}
        },
        "/v2/repository/index": {
            "post": {
                "summary": "Every model version with its state (needs --admin-token)",
                "tags": ["repository"],
                "requestBody": {
                    "required": False,
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "properties": {"ready": {"type": "boolean"}},
                                "additionalProperties": False,
                            }
                        }
                    },
                },
                "responses": {"200": _json({"type": "array", "items": {"type": "object"}}), "401": _error()},
            }
        },
        "/v2/repository/models/{model}/load": {
            "post": {
                "summary": "Load or reload a model from the repository (needs --admin-token)",
                "tags": ["repository"],
                "parameters": [{"name": "model", "in": "path", "required": True, "schema": {"type": "string"}}],
                "responses": {"200": _json({"type": "object"}), "400": _error(), "404": _error()},
            }
        },
        "/v2/repository/models/{model}/unload": {
            "post": {
                "summary": "Drain and unload every version of a model (needs --admin-token)",
                "tags": ["repository"],
                "parameters": [{"name": "model", "in": "path", "required": True, "schema": {"type": "string"}}],
                "responses": {"200": _json({"type": "object"}), "404": _error()},
            }
        },
    }
    for entry in repository.entries():
        name = entry.name
        known = [str(v) for v in sorted(entry.versions)]
        version_schema: dict[str, Any] = (
            {"type": "string", "enum": known} if known else {"type": "string", "pattern": "^[0-9]{1,18}$"}
        )
        try:
            model = repository.get(name)
        except Exception:  # a model that failed to load still gets its routes, without a schema
            model = None
        ref_name = "".join(c if c.isalnum() else "_" for c in name)
        if model is not None:
            sig = model.signature
            compute = model.plan.compute_datatype
            schemas[f"{ref_name}_V2Request"] = {
                "type": "object",
                "required": ["inputs"],
                "additionalProperties": False,
                "properties": {
                    "id": {"type": "string"},
                    "inputs": {"oneOf": [_v2_inputs(sig.inputs, n, compute) for n in range(1, V2_ROWS + 1)]},
                    "outputs": {"type": "array", "uniqueItems": True, "items": _v2_output_request(sig)},
                },
            }
            schemas[f"{ref_name}_V1Request"] = _v1_request(sig.inputs, compute, vector_outputs(sig))
        v2_body = {"$ref": f"#/components/schemas/{ref_name}_V2Request"} if model else {"type": "object"}
        v1_body = {"$ref": f"#/components/schemas/{ref_name}_V1Request"} if model else {"type": "object"}
        errors = {"400": _error(), "401": _error(), "404": _error(), "413": _error(), "415": _error(), "500": _error()}
        for prefix in (f"/v2/models/{name}", f"/v2/models/{name}/versions/{{version}}"):
            versioned = "{version}" in prefix
            params = (
                [{"name": "version", "in": "path", "required": True, "schema": version_schema}] if versioned else []
            )
            paths[prefix] = {
                "get": {
                    "summary": f"Metadata of {name}",
                    "tags": ["v2"],
                    "parameters": params,
                    "responses": {"200": _json({"type": "object"}), "404": _error()},
                }
            }
            paths[f"{prefix}/ready"] = {
                "get": {
                    "summary": f"Is {name} ready",
                    "tags": ["v2"],
                    "parameters": params,
                    "responses": {"200": {"description": "ready"}, "400": {"description": "not ready"}},
                }
            }
            paths[f"{prefix}/infer"] = {
                "post": {
                    "summary": f"Infer with {name} (Open Inference Protocol V2)",
                    "tags": ["v2"],
                    "parameters": params,
                    "requestBody": {"required": True, "content": {"application/json": {"schema": v2_body}}},
                    "responses": {"200": _json({"$ref": "#/components/schemas/V2InferResponse"}), **errors},
                }
            }
        for prefix in (f"/v1/models/{name}", f"/v1/models/{name}/versions/{{version}}"):
            versioned = "{version}" in prefix
            params = (
                [{"name": "version", "in": "path", "required": True, "schema": version_schema}] if versioned else []
            )
            paths[prefix] = {
                "get": {
                    "summary": f"Status of {name}",
                    "tags": ["v1"],
                    "parameters": params,
                    "responses": {"200": _json({"type": "object"}), "404": _error()},
                }
            }
            paths[f"{prefix}/metadata"] = {
                "get": {
                    "summary": f"Signature of {name} (TF Serving format)",
                    "tags": ["v1"],
                    "parameters": params,
                    "responses": {"200": _json({"type": "object"})},
                }
            }
            paths[f"{prefix}:predict"] = {
                "post": {
                    "summary": f"Predict with {name} (KServe V1 / TF Serving)",
                    "tags": ["v1"],
                    "parameters": params,
                    "requestBody": {"required": True, "content": {"application/json": {"schema": v1_body}}},
                    "responses": {"200": _json({"type": "object"}), **errors},
                }
            }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "modelport",
            "version": __version__,
            "description": "KServe V1 (TensorFlow Serving REST) and Open Inference Protocol V2 endpoints.",
        },
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }
