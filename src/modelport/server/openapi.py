"""OpenAPI 3.1 for every route, with each model's request schema derived from its signature."""

from __future__ import annotations

from typing import Any

from modelport import __version__
from modelport.repository import Repository
from modelport.signature import TensorSpec

__all__ = ["build_openapi", "tensor_schema"]

_JSON_TYPES = {"BOOL": "boolean", "BYTES": "string", "FP16": "number", "FP32": "number", "FP64": "number"}


def _element(spec: TensorSpec) -> dict[str, Any]:
    kind = _JSON_TYPES.get(spec.datatype, "integer")
    return {"type": [kind, "null"]} if kind == "number" else {"type": kind}


def tensor_schema(spec: TensorSpec) -> dict[str, Any]:
    """JSON Schema for one input's values: nested arrays following its shape."""
    schema = _element(spec)
    for dim in reversed(spec.shape):
        schema = {"type": "array", "items": schema}
        if dim > 0:
            schema |= {"minItems": dim, "maxItems": dim}
    return schema


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
        "/v2": {"get": {"summary": "Server metadata", "tags": ["v2"], "responses": {"200": _json({"type": "object"})}}},
        "/v1/models": {
            "get": {"summary": "List models", "tags": ["v1"], "responses": {"200": _json({"type": "object"})}}
        },
        "/v2/repository/index": {
            "post": {
                "summary": "Every model version with its state (needs --admin-token)",
                "tags": ["repository"],
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
        try:
            model = repository.get(name)
        except Exception:  # a model that failed to load still gets its routes, without a schema
            model = None
        ref_name = "".join(c if c.isalnum() else "_" for c in name)
        if model is not None:
            sig = model.signature
            inputs_v2 = []
            for spec in sig.inputs:
                inputs_v2.append(
                    {
                        "type": "object",
                        "required": ["name", "shape", "datatype", "data"],
                        "properties": {
                            "name": {"const": spec.name},
                            "datatype": {"const": spec.datatype},
                            "shape": {"type": "array", "items": {"type": "integer"}},
                            "data": {"type": "array"},
                        },
                    }
                )
            schemas[f"{ref_name}_V2Request"] = {
                "type": "object",
                "required": ["inputs"],
                "properties": {
                    "id": {"type": "string"},
                    "parameters": {"type": "object"},
                    "inputs": {"type": "array", "items": {"oneOf": inputs_v2}, "minItems": len(inputs_v2)},
                    "outputs": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "properties": {"name": {"enum": sig.output_names}},
                            "required": ["name"],
                        },
                    },
                },
            }
            if len(sig.inputs) == 1:
                instance = tensor_schema(
                    TensorSpec(sig.inputs[0].name, sig.inputs[0].datatype, sig.inputs[0].shape[1:])
                )
            else:
                instance = {
                    "type": "object",
                    "properties": {
                        s.name: tensor_schema(TensorSpec(s.name, s.datatype, s.shape[1:])) for s in sig.inputs
                    },
                    "required": sig.input_names,
                }
            schemas[f"{ref_name}_V1Request"] = {
                "type": "object",
                "properties": {
                    "instances": {"type": "array", "items": instance, "minItems": 1},
                    "inputs": {"type": "object", "properties": {s.name: tensor_schema(s) for s in sig.inputs}},
                    "signature_name": {"type": "string"},
                },
            }
        v2_body = {"$ref": f"#/components/schemas/{ref_name}_V2Request"} if model else {"type": "object"}
        v1_body = {"$ref": f"#/components/schemas/{ref_name}_V1Request"} if model else {"type": "object"}
        errors = {"400": _error(), "401": _error(), "404": _error(), "413": _error(), "415": _error(), "500": _error()}
        for prefix in (f"/v2/models/{name}", f"/v2/models/{name}/versions/{{version}}"):
            versioned = "{version}" in prefix
            params = (
                [{"name": "version", "in": "path", "required": True, "schema": {"type": "string"}}] if versioned else []
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
                [{"name": "version", "in": "path", "required": True, "schema": {"type": "string"}}] if versioned else []
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
